//! Configuration: one TOML file (`config/default.toml` runs as shipped), every key overridable by an
//! environment variable `PROTOFUSE__SECTION__KEY`, validated before anything starts.
//!
//! Parsing ([`load`]) and validation ([`Config::validate`]) are separate: validation is pure and reports every
//! problem at once, each naming its key, so `protofuse check-config` and start-up give the same answer.

mod issue;
mod load;
mod sections;
mod validate;

pub use issue::ConfigIssue;
pub use load::{ConfigError, ENV_PREFIX, load};
pub use sections::Config;
