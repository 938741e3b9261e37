//! The `protofuse` command line: `serve`, `check-config` and `triage`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// A protocol fuse for customer-service platforms.
#[derive(Debug, Parser)]
#[command(name = "protofuse", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every configured protocol until SIGINT or SIGTERM.
    Serve {
        /// Configuration file (TOML). Without it, built-in defaults (the same as config/default.toml) apply.
        /// Every key can be overridden with PROTOFUSE__SECTION__KEY environment variables.
        #[arg(long, short, env = "PROTOFUSE_CONFIG")]
        config: Option<PathBuf>,
        /// Log format; overrides `log.format` from the configuration.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Parse and validate a configuration file (with environment overrides), report every problem, and exit
    /// non-zero if there is any.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Triage a message (the decision and why), evaluate a labelled file, or train the intent model.
    Triage(crate::triage::command::TriageArgs),
}
