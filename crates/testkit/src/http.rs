//! Small HTTP helpers the tests of several crates use.

use std::net::TcpListener;

/// GETs `url` and parses the JSON answer, whatever its status.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The text of every message in a page of the native API.
pub fn texts(page: &serde_json::Value) -> Vec<String> {
    let items = page["items"].as_array().expect("a page has items");
    items
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
