//! The `protofuse-migrate` binary: parses the command line and runs one command.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::cli::{Cli, Command, VerifyMode, load_mapping};
use protofuse_migrate::lease::Lease;
use protofuse_migrate::mapping::Mapping;
use protofuse_migrate::sink::{Target, TargetOptions};
use protofuse_migrate::source::{self, Source};
use protofuse_migrate::{check, follow, redact, snapshot, verify};
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// See `Cargo.toml` for why not the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Log lines go through the progress bars' writer, which prints them above the bar instead of through it;
    // only spans marked `indicatif.pb_show` (the snapshot's) get a bar.
    let bars = IndicatifLayer::new().with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(bars.get_stderr_writer())
        // Colour codes only for a person at a terminal, never in log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()));
    tracing_subscriber::registry()
        .with(logs)
        .with(bars.with_filter(IndicatifFilter::new(false)))
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let mapping = load_mapping(
        cli.mapping
            .as_deref()
            .context("--mapping is required (a file or preset:NAME)")?,
    )?;
    if let Command::CheckMapping = cli.command {
        return check_mapping(&mapping, cli.source.as_deref()).await;
    }
    let source = Source::new(cli.source.as_deref().context("--source is required")?)?;
    // Before the target is even opened: a mapping that does not fit the source must not write anything.
    if !matches!(cli.command, Command::Status { .. }) {
        refuse_unfit(&source, &mapping).await?;
    }
    let mapper = Mapper::new(mapping);
    let target_url = cli.target.as_deref().context("--target is required")?;
    let options = TargetOptions {
        binlog: !cli.no_target_binlog,
    };
    let target = Target::open_with(target_url, options)
        .await
        .map_err(|e| anyhow::anyhow!(redact::text(&e.to_string(), target_url)))?;
    if let Some(addr) = cli.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
    }
    match cli.command {
        Command::Snapshot(args) => {
            let at = snapshot::run(&source, &target, &mapper, &args.options()).await?;
            println!("snapshot finished; follow from {}:{}", at.file, at.pos);
        }
        Command::Follow(args) => follow_until_signal(&source, &target, &mapper, &args).await?,
        Command::Run { snapshot, follow } => {
            snapshot::run(&source, &target, &mapper, &snapshot.options()).await?;
            follow_until_signal(&source, &target, &mapper, &follow).await?;
        }
        Command::Status { json } => status(&source, &target, &mapper, json).await?,
        Command::Verify {
            json,
            mode: VerifyMode::Source,
            sample,
        } => {
            let reports = verify::fields::run(&source, &target, &mapper, sample).await?;
            print_field_reports(&reports, json)?;
            if !reports.iter().all(verify::fields::FieldReport::ok) {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Verify { json, .. } => {
            let reports = verify::run(&source, &target, &mapper).await?;
            print_table_reports(&reports, json)?;
            if !reports.iter().all(verify::TableReport::ok) {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Resync { table, wait_secs } => {
            return resync(&target, &mapper, &table, Duration::from_secs(wait_secs)).await;
        }
        Command::CheckMapping => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_table_reports(reports: &[verify::TableReport], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
        return Ok(());
    }
    for r in reports {
        println!(
            "{:<50} source {:>10} target {:>10} chunks {:>6} mismatched {:>4} {}",
            r.source,
            r.source_rows,
            r.target_rows,
            r.chunks,
            r.mismatched_chunks,
            if r.ok() {
                "ok".to_owned()
            } else {
                format!("MISMATCH keys {:?}", r.sample_keys)
            }
        );
    }
    Ok(())
}

/// Files a request for the running `follow` and waits for its answer in the target.
async fn resync(
    target: &Target,
    mapper: &Mapper,
    table: &str,
    wait: Duration,
) -> anyhow::Result<std::process::ExitCode> {
    let mapping = mapper.mapping();
    let known = mapping.for_table(table).next().is_some()
        || mapping
            .tables
            .iter()
            .flat_map(|t| t.lookups.values())
            .any(|l| l.table == table);
    if !known {
        let mut tables: Vec<&str> = mapping.tables.iter().map(|t| t.table.as_str()).collect();
        tables.dedup();
        bail!(
            "table {table:?} is not read by mapping {:?} (its tables: {})",
            mapping.name,
            tables.join(", ")
        );
    }
    target.request_resync(&mapping.name, table).await?;
    println!("requested a copy of {table}; waiting for `follow` to make it");
    // The answer is a row another process writes: looked for twice a second, under the deadline.
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(rows) = target.resync_done(&mapping.name, table).await? {
            println!("{table} copied again: {rows} rows; `follow` goes on from where it was");
            return Ok(std::process::ExitCode::SUCCESS);
        }
        if tokio::time::Instant::now() >= deadline {
            println!(
                "no running `follow` copied {table} within {} s; the request stands, and the next `follow` copies \
                 it before streaming",
                wait.as_secs()
            );
            return Ok(std::process::ExitCode::from(1));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Follows until done, or until SIGTERM or ctrl-c ask it to stop, then says where the import stands.
async fn follow_until_signal(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    args: &protofuse_migrate::cli::FollowArgs,
) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(args.lease_secs);
    let lease = Lease::take(target, &mapper.mapping().name, ttl, args.wait_for_lease).await?;
    let (lease_lost, lost) = tokio::sync::watch::channel(false);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let keeper = tokio::spawn(lease.keeper(stopped.clone(), lease_lost));
    let signal = follow_leased(source, target, mapper, &args.options(), (stop.clone(), stopped), lost).await;
    // Given up however the follow ended (a refusal or an error too), so the next follower starts at once.
    let _ = stop.send(true);
    let _ = keeper.await;
    lease.release().await;
    let signal = signal?;
    let status = target.status(&mapper.mapping().name).await?;
    let at = format!("{}:{}", status.file.unwrap_or_default(), status.pos.unwrap_or(0));
    match signal {
        Some(signal) => tracing::info!(signal, "stopped at position {at}"),
        None => tracing::info!("caught up; stopped at position {at}"),
    }
    Ok(())
}

/// Follows until caught up (with `--until-caught-up`), a signal (its name is returned), or the lease is lost.
async fn follow_leased(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    options: &follow::FollowOptions,
    (stop, stopped): (tokio::sync::watch::Sender<bool>, tokio::sync::watch::Receiver<bool>),
    mut lost: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<&'static str>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signalled = async {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "ctrl-c",
        }
    };
    let followed = follow::run_until(source, target, mapper, options, stopped);
    tokio::pin!(followed);
    tokio::select! {
        result = &mut followed => {
            result?;
            Ok(None)
        }
        signal = signalled => {
            tracing::info!(signal, "stopping: committing the transactions read so far");
            let _ = stop.send(true);
            followed.await?;
            Ok(Some(signal))
        }
        _ = lost.wait_for(|l| *l) => {
            let _ = stop.send(true);
            followed.await?;
            bail!("another follower took this mapping's lease (this one could not renew it in time); stopped");
        }
    }
}

async fn refuse_unfit(source: &Source, mapping: &Mapping) -> anyhow::Result<()> {
    let issues = check::against_source(source, mapping).await?;
    if !issues.is_empty() {
        bail!(
            "the mapping does not fit the source; nothing was written:\n{}\n\
             if the source's schema changed since the snapshot (a mapped column dropped or renamed), update the \
             mapping to the new schema and import again into a fresh target with `run`",
            issues.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// Offline without a source; with one, also against its schema and values. Every problem on its own line.
async fn check_mapping(mapping: &Mapping, source: Option<&str>) -> anyhow::Result<std::process::ExitCode> {
    let Some(url) = source else {
        println!("mapping {:?}: {} tables, ok", mapping.name, mapping.tables.len());
        return Ok(std::process::ExitCode::SUCCESS);
    };
    let source = Source::new(url)?;
    let issues = check::against_source(&source, mapping).await?;
    if issues.is_empty() {
        println!(
            "mapping {:?}: {} tables, ok against {}",
            mapping.name,
            mapping.tables.len(),
            source.redacted()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    for issue in &issues {
        println!("{issue}");
    }
    eprintln!(
        "mapping {:?}: {} problem(s) against {}",
        mapping.name,
        issues.len(),
        source.redacted()
    );
    Ok(std::process::ExitCode::from(1))
}

fn print_field_reports(reports: &[verify::fields::FieldReport], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
        return Ok(());
    }
    for r in reports {
        for m in &r.mismatches {
            println!(
                "MISMATCH {} key {} {}: source {} stored {}",
                r.source, m.key, m.field, m.source, m.stored
            );
        }
        println!(
            "{:<50} rows {:>10} mismatches {:>6} {}",
            r.source,
            r.rows,
            r.mismatch_count,
            if r.ok() { "ok" } else { "MISMATCH" }
        );
    }
    Ok(())
}

async fn status(source: &Source, target: &Target, mapper: &Mapper, json: bool) -> anyhow::Result<()> {
    let status = target.status(&mapper.mapping().name).await?;
    // The source is optional here: status must work while the source is down.
    let (head, events_behind) = match source.connect().await {
        Ok(mut conn) => {
            let head = source::master_position(&mut conn).await.ok();
            let behind = match (&status.file, status.pos) {
                (Some(file), Some(pos)) => source::events_behind(&mut conn, file, pos).await.ok(),
                _ => None,
            };
            (head, behind)
        }
        Err(_) => (None, None),
    };
    let caught_up = head
        .as_ref()
        .is_some_and(|(f, p)| status.file.as_deref() == Some(f.as_str()) && status.pos == Some(*p));
    let now = chrono::Utc::now().timestamp();
    let next_change = match (&status.file, status.pos) {
        (Some(file), Some(pos)) if !caught_up => follow::next_change_time(source, file, pos).await.ok(),
        _ => None,
    };
    // Seconds behind the source: since the first change not applied yet was written (0 when there is none).
    let lag_seconds = match next_change {
        _ if caught_up => Some(0),
        Some(next) => Some(next.map_or(0, |t| (now - t).max(0))),
        None => status.last_event_at.map(|t| (now - t).max(0)),
    };
    let lag_bytes = match (&head, &status.file, status.pos) {
        (Some((f, p)), Some(file), Some(pos)) if f == file => Some(p.saturating_sub(pos)),
        _ => None,
    };
    if json {
        let value = serde_json::json!({
            "checkpoint": status,
            "source_head": head.as_ref().map(|(f, p)| format!("{f}:{p}")),
            "lag_seconds": lag_seconds,
            "lag_bytes": lag_bytes,
            "lag_events": events_behind,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let Some(file) = &status.file else {
        bail!("no import named {:?} in this target yet", mapper.mapping().name);
    };
    println!(
        "position      {file}:{} gtid {}",
        status.pos.unwrap_or(0),
        status.gtid.as_deref().unwrap_or("-")
    );
    println!(
        "source head   {}",
        head.map_or("unreachable".to_owned(), |(f, p)| format!("{f}:{p}"))
    );
    println!(
        "snapshot      {}",
        if status.snapshot_done { "done" } else { "not finished" }
    );
    println!(
        "lag           {} s, {} events, {} bytes",
        opt(lag_seconds),
        opt(events_behind),
        opt(lag_bytes)
    );
    println!("rows applied  {}", status.rows_applied);
    println!("events        {}", status.events_applied);
    println!(
        "errors        {} {}",
        status.errors,
        status.last_error.as_deref().unwrap_or("")
    );
    Ok(())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("?".to_owned(), |v| v.to_string())
}
