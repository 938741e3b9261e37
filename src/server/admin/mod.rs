//! The admin listener (`listener.rs`) and the operators' API under `/admin/` (`api.rs`): destinations and
//! breakers, dead letters.

mod api;
mod listener;

pub(crate) use listener::spawn;
