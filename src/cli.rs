//! The `protofuse` command line: `serve`, `check-config`, `triage`, `dead-letters` and `api-key`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// A protocol fuse for customer-service platforms.
#[derive(Debug, Parser)]
#[command(name = "protofuse", version = crate::telemetry::VERSION, about)]
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
        /// Configuration file (TOML). Without it, built-in defaults apply: every listener on loopback, SQLite
        /// under ./data, no WeChat accounts, no legacy routes (config/default.toml adds the demo account and the
        /// sample adapters).
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
    /// Triage a message (the decision and why) or evaluate a labelled file. Training is the separate
    /// `protofuse-triage-train` tool.
    Triage(crate::triage_cli::TriageArgs),
    /// Make API keys for `[[api.keys]]` (the configuration keeps only their SHA-256).
    ApiKey(crate::api_key_cli::ApiKeyArgs),
    /// Print a shell completion script, e.g. `protofuse completions bash > /etc/bash_completion.d/protofuse`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `protofuse man > /usr/share/man/man1/protofuse.1`.
    Man,
    /// List, inspect, replay or discard dead letters (deliveries that gave up), directly in the store named by
    /// the configuration. Safe while `serve` runs: a replayed delivery is picked up by its worker.
    DeadLetters {
        /// Configuration file naming the store.
        #[arg(long, short, env = "PROTOFUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

/// `protofuse dead-letters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// One line per dead letter, oldest first.
    List {
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter with its message, as JSON.
    Show {
        /// Its id.
        id: i64,
    },
    /// Queue dead letters for delivery again (attempts reset).
    Replay {
        /// These ids.
        #[arg(long = "id", required_unless_present_any = ["destination", "all"])]
        ids: Vec<i64>,
        /// Every dead letter of this destination.
        #[arg(long)]
        destination: Option<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with_all = ["ids", "destination"])]
        all: bool,
    },
    /// Delete dead letters (their messages stay in the store).
    Discard {
        /// These ids.
        #[arg(long = "id", required = true)]
        ids: Vec<i64>,
    },
}
