//! The `protofuse` binary: parses the command line and runs the chosen command. Errors are reported here, with
//! their causes, and turned into a non-zero exit status.

use anyhow::Context;
use clap::{CommandFactory, Parser};
use protofuse::cli::{Cli, Command};
use protofuse::{app, config, telemetry};

/// See `Cargo.toml` for why not the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refusal for the operator to act on, not a crash: the message and its causes once each, no
            // backtrace whatever RUST_BACKTRACE says.
            eprintln!("error: {}", explain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `e` and its causes, each on its own line, skipping a cause whose text the line above already says.
fn explain(e: &anyhow::Error) -> String {
    let mut lines: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if lines.last().is_none_or(|last| !last.contains(&text)) {
            lines.push(text);
        }
    }
    lines.join("\n  caused by: ")
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CheckConfig { file } => {
            let config = config::load(Some(&file))?;
            app::check(&config)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::DeadLetters { config, action } => {
            let config = config::load(config.as_deref())?;
            let store = protofuse_store::open(&config.store)
                .await
                .context("opening the store")?;
            protofuse::dead_letters::run(store.as_ref(), action, &mut std::io::stdout().lock()).await?;
            Ok(())
        }
        Command::Triage(args) => Ok(protofuse::triage_cli::run(args).await?),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "protofuse", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?),
        Command::ApiKey(args) => Ok(protofuse::api_key_cli::run(
            args.action,
            std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
        )?),
        Command::Serve {
            config: config_file,
            log_format,
        } => {
            let config = config::load(config_file.as_deref())?;
            telemetry::init_logging(log_format.unwrap_or(config.log.format), &config.log.filter);
            // Boxed: starting holds every component's setup (the cluster's included) in one large future.
            let running = Box::pin(app::start_from(&config, config_file.as_deref()))
                .await
                .context("starting the server")?;
            shutdown_signal().await;
            running.shutdown().await;
            Ok(())
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
