//! The `/rpc` transport: the jsonrpsee server as a tower service on the axum router, so HTTP POST and the
//! WebSocket upgrade share one URL and one port with REST; plus the HTTP detail of answering notifications with
//! nothing. Must never: define methods (they are in `methods.rs`).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use jsonrpsee::server::{BatchRequestConfig, PingConfig, ServerConfig, StopHandle, TowerServiceBuilder};
use tower::ServiceExt;
use tower::layer::util::{Identity, Stack};

use super::methods::module;
use super::notify::RunNotificationsLayer;
use crate::server::JsonRpcConfig;
use crate::service::Service;

/// The `/rpc` endpoint: a jsonrpsee tower service per request (so each WebSocket gets its own connection id).
#[derive(Clone)]
pub(crate) struct Endpoint {
    builder: TowerServiceBuilder<Stack<RunNotificationsLayer, Identity>, Identity>,
    methods: jsonrpsee::Methods,
    stop: StopHandle,
    max_request_bytes: usize,
}

impl Endpoint {
    pub(crate) fn new(config: &JsonRpcConfig, service: Service, stop: StopHandle) -> Self {
        let server_config = ServerConfig::builder()
            .max_request_body_size(config.max_request_bytes)
            .max_response_body_size(config.max_response_bytes)
            .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
            .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
            .enable_ws_ping(
                PingConfig::new()
                    .ping_interval(config.ws_ping_interval)
                    .inactive_limit(config.ws_inactive_limit),
            )
            .build();
        let builder = jsonrpsee::server::Server::builder()
            .set_config(server_config)
            .set_rpc_middleware(
                jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer(RunNotificationsLayer),
            )
            .to_service_builder()
            .max_connections(config.max_connections);
        Self {
            builder,
            methods: module(service).into(),
            stop,
            max_request_bytes: config.max_request_bytes as usize,
        }
    }

    /// Serves one HTTP request or WebSocket upgrade on `/rpc`.
    pub(crate) async fn call(&self, request: axum::extract::Request) -> Response {
        let (request, refused) = if request.method() == axum::http::Method::POST {
            match super::ids::screen(request, self.max_request_bytes).await {
                Ok(screened) => screened,
                Err(response) => return response,
            }
        } else {
            (Some(request), Vec::new())
        };
        let Some(request) = request else {
            return super::ids::only_refusals(&refused);
        };
        let service = self.builder.clone().build(self.methods.clone(), self.stop.clone());
        match service.oneshot(request).await {
            Ok(response) if refused.is_empty() => no_answer_for_notifications(response).await,
            Ok(response) => super::ids::with_refusals(response, &refused).await,
            Err(e) => {
                tracing::error!(error = %e, "JSON-RPC transport failed");
                crate::server::error::ApiError::internal().into_response()
            }
        }
    }
}

/// jsonrpsee answers a lone notification (or a batch of only notifications) over HTTP with the body `null`; the
/// spec says a notification gets no response at all, so it becomes `204 No Content`. Only a 4-byte body is inspected, so nothing else is buffered.
async fn no_answer_for_notifications(response: jsonrpsee::server::HttpResponse) -> Response {
    use http_body_util::BodyExt;
    if response.status() != axum::http::StatusCode::OK
        || axum::body::HttpBody::size_hint(response.body()).exact() != Some(4)
    {
        return response.map(Body::new).into_response();
    }
    let (parts, body) = response.into_parts();
    match body.collect().await.map(http_body_util::Collected::to_bytes) {
        Ok(bytes) if bytes.as_ref() == b"null" => axum::http::StatusCode::NO_CONTENT.into_response(),
        Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
        Err(_) => crate::server::error::ApiError::internal().into_response(),
    }
}
