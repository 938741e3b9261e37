//! The admin listener (`listener.rs`) and the operators' API under `/admin/` (`api.rs`): destinations and
//! breakers, dead letters; importers' progress (`importers.rs`); the operator dashboard over that API
//! (`dashboard.rs`, `/dashboard`).

mod api;
mod dashboard;
mod importers;
mod listener;

pub(crate) use listener::spawn;
