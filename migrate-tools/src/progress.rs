//! Progress for long copies: a bar (rows done/total, rate, ETA) on a terminal, a log line every few seconds
//! otherwise (CI logs, systemd), and a Prometheus counter either way.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress of one snapshot.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    /// Starts tracking `total` rows (an estimate: rows may come and go while copying).
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            done: 0,
            started: now,
            last_log: now,
        }
    }

    /// Names the table being copied.
    pub fn table(&self, table: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(table.to_owned());
        }
        tracing::info!(table, "snapshot: copying");
    }

    /// Counts copied rows.
    pub fn advance(&mut self, rows: u64) {
        self.done += rows;
        metrics::counter!("protofuse_migrate_snapshot_rows_total").increment(rows);
        if let Some(bar) = &self.bar {
            bar.inc(rows);
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            tracing::info!(
                done = self.done,
                total = self.total,
                rows_per_sec = self.rate() as u64,
                "snapshot progress"
            );
        }
    }

    /// Rows per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// Ends the bar and logs the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        tracing::info!(
            rows = self.done,
            secs = self.started.elapsed().as_secs_f64(),
            rows_per_sec = self.rate() as u64,
            "snapshot finished"
        );
    }
}
