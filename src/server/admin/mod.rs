//! The admin listener (`listener.rs`) and the operators' API under `/admin/` (`api.rs`): destinations and
//! breakers, dead letters, triage models; the configuration's reload (`reload.rs`).

mod api;
mod listener;
mod reload;

pub(crate) use api::Commands;
pub(crate) use listener::spawn;
