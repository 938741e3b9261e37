//! The transports, a folder or file per protocol. Each owns its socket framing and its protocol's answers, and
//! calls the one [`crate::service::Service`]; none stores, validates or publishes by itself.
//!
//! - `http.rs`: the HTTP listener and router (`listen.rs` serves it, `stream.rs` the event streams outside
//!   hyper), with `observe.rs` (per-route metrics, request deadline),
//!   `body.rs` (size-limited body reading) and `error.rs` (the one JSON error shape). On it: `rest.rs`
//!   (`/v1`), [`jsonrpc`] (`/rpc`, HTTP and WebSocket), `wechat.rs` (`/wechat/{account}`), `legacy.rs` (one
//!   route per adapter file), `health.rs` (`/healthz`, `/readyz`, `/metrics`), [`web`] (`/web/…`: visitors over
//!   WebSocket, or SSE plus POST, when `[web] enabled`).
//! - [`grpc`]: the gRPC listener (tonic), with its edge layer (API keys, deadlines).
//! - [`admin`]: the admin listener (health, metrics, `/admin/` API for destinations and dead letters).
//! - `console.rs`: the agent console (`/console`, on the API listener), a static page calling `/v1`.
//! - `pages.rs`: static files compiled into the binary, served with an `ETag` (widget, console, dashboard).
//! - `config.rs`: the listeners' sections; `state.rs`: what HTTP handlers reach.
//!
//! Assembly and shutdown order are `crate::app`'s.

pub(crate) mod admin;
mod auth;
mod body;
mod config;
mod console;
pub mod error;
pub(crate) mod grpc;
mod health;
pub(crate) mod http;
pub mod jsonrpc;
mod legacy;
mod listen;
pub(crate) mod observe;
mod pages;
mod rest;
mod state;
mod stream;
mod tls;
pub mod web;
mod wechat;

pub(crate) use config::rpc_issues;
pub use config::{AdminConfig, GrpcConfig, JsonRpcConfig, ServerConfig, TlsConfig};
pub(crate) use legacy::LegacyRoutes;
pub(crate) use listen::Limits;
pub(crate) use state::{AppParts, AppState};
pub(crate) use stream::Streams;
pub use tls::TlsError;
pub(crate) use tls::acceptor as tls_acceptor;
