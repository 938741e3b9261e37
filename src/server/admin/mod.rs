//! The admin listener (`listener.rs`) and the operators' API under `/admin/` (`api.rs`): destinations and
//! breakers, dead letters, triage models; importers' progress (`importers.rs`); the operator dashboard over
//! that API (`dashboard.rs`, `/dashboard`); the configuration's reload (`reload.rs`).

mod api;
mod dashboard;
mod importers;
mod listener;
mod reload;

pub(crate) use api::Commands;
pub(crate) use listener::spawn;
