//! The admin listener (`listener.rs`) and the operators' API under `/admin/` (`api.rs`): destinations and
//! breakers, dead letters; the operator dashboard over that API (`dashboard.rs`, `/dashboard`).

mod api;
mod dashboard;
mod listener;

pub(crate) use listener::spawn;
