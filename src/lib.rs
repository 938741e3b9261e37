//! protofuse: a protocol fuse for customer-service platforms.
//!
//! # Layout
//! - [`config`]: the TOML configuration, environment overrides and validation.
//! - [`legacy`]: loading the legacy REST adapter files and the HMAC replay guard.
//! - [`events`]: the conversation event bus behind every protocol's subscriptions.
//! - [`reload`]: configuration changes without a restart (SIGHUP, `POST /admin/reload`).
//! - [`resume`]: a conversation subscription resumed after a message id (stored messages, then live events).
//! - [`cluster`]: cluster mode (`[cluster]`): events and HMAC nonces shared over NATS JetStream.
//! - [`dispatch`]: the dispatcher: routes, per-destination fuses, outbox workers, dead letters.
//! - [`service`]: the application service every protocol calls (send, get, list, change status).
//! - [`conversation`]: the conversation status rules (closed is final), shared by the service and triage.
//! - [`server`]: transports: the HTTP listener (REST API, JSON-RPC at `/rpc`, health, metrics), the gRPC
//!   listener and the admin listener.
//! - [`telemetry`]: logs (tracing) and metrics (Prometheus).
//! - [`wechat`]: WeChat Official Accounts: accounts, answer budget, late delivery via the customer-service API.
//! - [`respond`]: the [`respond::Responder`] seam that produces answers (keywords, webhook, triage).
//! - [`triage_cli`]: `protofuse triage TEXT`, `eval FILE` and `train --from-store URL` over the
//!   `protofuse_triage` crate (built-in AI triage: intent model, rules, routing, knowledge base, hand-off).
//! - [`app`]: the one place the application is assembled from config (`serve` and `check-config`).
//! - [`cli`]: the `protofuse` command line; [`api_key_cli`] and [`dead_letters`] run two of its commands.
//! - [`auth`]: API keys (digests, scopes, per-key rate limits) for REST, JSON-RPC and gRPC.
//! - [`redact`]: URL secrets out of every error text that leaves the process.
//!
//! The path of a message: socket → [`server`] (decode with `protofuse_adapter`) → [`service::Service::send`]
//! (validate) → [`protofuse_store::Store::insert_message`] (idempotent write) → the acknowledgement back to the caller.

pub mod api_key_cli;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod conversation;
pub mod dead_letters;
pub mod decisions;
pub mod dispatch;
pub mod events;
pub mod legacy;
pub mod redact;
pub mod reload;
pub mod respond;
pub mod resume;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod triage_cli;
pub mod wechat;
