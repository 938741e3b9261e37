//! JSON-RPC 2.0 at `/rpc`: the methods and subscription (`methods.rs`), the HTTP/WebSocket transport on the
//! axum router (`http.rs`), and running notifications that jsonrpsee would drop (`notify.rs`).

mod http;
mod ids;
mod methods;
mod notify;

pub(crate) use http::Endpoint;
pub use methods::code;
