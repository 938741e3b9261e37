//! Reading the configuration: the TOML file, then `PROTOFUSE__SECTION__KEY` environment overrides, then
//! validation.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::{Config, ConfigIssue};

/// Prefix of environment overrides; `__` separates sections, e.g. `PROTOFUSE__SERVER__LISTEN=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "PROTOFUSE__";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment override does not parse, has an unknown key or a value of the wrong type.
    /// The message names the key and where its value came from, with a suggestion where one helps.
    #[error("{0}")]
    Parse(String),
    /// The values parse but break rules; every broken rule is listed.
    #[error("invalid configuration:\n{}", list(.0))]
    Invalid(Vec<ConfigIssue>),
}

/// Files the configuration file names (adapter files, the triage model and knowledge base) are relative to that
/// file, so it works from any working directory. Only paths written in the file move; a built-in default or an
/// environment override stays relative to the working directory. The store URL never moves: like any database
/// URL it names where the service keeps its data, relative to where it runs (the unit file's working directory).
fn resolve_paths(config: &mut Config, path: &Path) {
    let Some(dir) = path.parent() else { return };
    let written = Figment::from(Toml::file_exact(path));
    let in_file = |key: &str| written.extract_inner::<PathBuf>(key).ok();
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    if written.extract_inner::<Vec<PathBuf>>("legacy.adapters").is_ok() {
        config.legacy.adapters.iter_mut().for_each(resolve);
    }
    if in_file("triage.model").as_ref() == Some(&config.triage.model) {
        resolve(&mut config.triage.model);
    }
    if let Some(tls) = &mut config.server.tls {
        for (key, path) in [("server.tls.cert", &mut tls.cert), ("server.tls.key", &mut tls.key)] {
            if in_file(key).as_ref() == Some(&*path) {
                resolve(path);
            }
        }
    }
    if let Some(knowledge) = &mut config.triage.knowledge
        && in_file("triage.knowledge").as_ref() == Some(knowledge)
    {
        resolve(knowledge);
    }
    if let Some(router) = &mut config.triage.router
        && in_file("triage.router.model").as_ref() == Some(&router.model)
    {
        resolve(&mut router.model);
    }
}

/// Every error figment found, each with what would fix it where we can tell: the closest known key for an
/// unknown one, the expected form of a listen address.
fn explain(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let mut line = e.to_string();
            match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    if let Some(best) = expected
                        .iter()
                        .min_by_key(|known| strsim::levenshtein(field, known))
                        .filter(|known| strsim::levenshtein(field, known) <= 3)
                    {
                        line.push_str(&format!(" (did you mean `{best}`?)"));
                    }
                }
                _ if line.contains("invalid socket address syntax") => {
                    line.push_str(
                        " (an IP address and a port, e.g. 127.0.0.1:8080 or [::1]:8080; host names are not resolved)",
                    );
                }
                _ => {}
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    let mut config: Config = figment.extract().map_err(|e| ConfigError::Parse(explain(e)))?;
    if let Some(path) = path {
        resolve_paths(&mut config, path);
    }
    config.validate().map_err(ConfigError::Invalid)?;
    Ok(config)
}
