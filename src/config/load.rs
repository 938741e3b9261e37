//! Reading the configuration: the TOML file, then `PROTOFUSE__SECTION__KEY` environment overrides, then
//! validation.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::{Config, ConfigIssue};

/// Prefix of environment overrides; `__` separates sections, e.g. `PROTOFUSE__SERVER__LISTEN=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "PROTOFUSE__";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment override does not parse, has an unknown key or a value of the wrong type.
    /// The message names the key and where its value came from.
    #[error("{0}")]
    Parse(#[from] Box<figment::Error>),
    /// The values parse but break rules; every broken rule is listed.
    #[error("invalid configuration:\n{}", list(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

/// Loads `path` (or only defaults and the environment when `None`), applies environment overrides and
/// validates the result.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = path {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    let mut config: Config = figment.extract().map_err(Box::new)?;
    if let Some(dir) = path.and_then(Path::parent) {
        // Paths inside a configuration file are relative to that file, so it works from any directory.
        for adapter in &mut config.legacy.adapters {
            if adapter.is_relative() {
                *adapter = dir.join(&*adapter);
            }
        }
    }
    config.validate().map_err(ConfigError::Invalid)?;
    Ok(config)
}
