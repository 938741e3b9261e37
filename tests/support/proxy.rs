//! A reverse proxy in front of a test server that refuses WebSocket upgrades, as some corporate proxies do,
//! and passes every other request through, streaming its answer (so Server-Sent Events flow as they come).

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// The largest request body passed on (the web channel's are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// Starts the proxy in front of `upstream` (`http://127.0.0.1:<port>`) and returns its base URL.
pub async fn refusing_upgrades(upstream: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.to_owned();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| forward(client.clone(), upstream.clone(), request));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn forward(client: reqwest::Client, upstream: String, request: Request) -> Response {
    if request.headers().contains_key(header::UPGRADE) {
        return (StatusCode::FORBIDDEN, "upgrades are not allowed here").into_response();
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = axum::body::to_bytes(body, MAX_BODY).await.unwrap();
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    let sent = client
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        // Hop-by-hop: this side frames its own answer.
        if name != header::TRANSFER_ENCODING && name != header::CONNECTION && name != header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    response.body(Body::from_stream(answer.bytes_stream())).unwrap()
}
