//! Progress of a snapshot, counted in rows committed to the target (what `status` counts too), never rows
//! merely read: a bar on a terminal, a log line every few seconds otherwise (CI logs, systemd), and a Prometheus
//! counter either way. The bar belongs to a tracing span drawn by `tracing-indicatif`, whose writer the binary
//! logs through, so log lines print above the bar instead of breaking it.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressState, ProgressStyle};
use tracing::Span;
use tracing_indicatif::span_ext::IndicatifSpanExt as _;

const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress of one snapshot, shared by the reader (which names the table) and the writers (which count).
#[derive(Debug)]
pub struct Progress {
    span: Span,
    terminal: bool,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// Starts tracking `total` rows (an estimate: rows may come and go while copying).
    pub fn new(total: u64) -> Self {
        let span = tracing::info_span!("snapshot", indicatif.pb_show = true);
        span.pb_set_style(&style());
        span.pb_set_length(total);
        // The bar appears when its span is first entered and stays until the span closes (with `self`).
        span.in_scope(|| ());
        let now = Instant::now();
        Self {
            span,
            terminal: std::io::stderr().is_terminal(),
            total,
            done: AtomicU64::new(0),
            started: now,
            last_log: Mutex::new(now),
        }
    }

    /// Names the table being copied.
    pub fn table(&self, table: &str) {
        self.span.pb_set_message(table);
        tracing::info!(table, "snapshot: copying");
    }

    /// Counts rows of a committed batch.
    pub fn committed(&self, rows: u64) {
        let done = self.done.fetch_add(rows, Ordering::Relaxed) + rows;
        metrics::counter!("protofuse_migrate_snapshot_rows_total").increment(rows);
        self.span.pb_inc(rows);
        if self.terminal {
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            tracing::info!(
                committed = done,
                total = self.total,
                rows_per_sec = self.rate() as u64,
                "snapshot progress"
            );
        }
    }

    /// Rows committed per second so far.
    pub fn rate(&self) -> f64 {
        self.done.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// Logs the summary; the bar goes with `self`.
    pub fn finish(&self) {
        tracing::info!(
            rows = self.done.load(Ordering::Relaxed),
            secs = format!("{:.1}", self.started.elapsed().as_secs_f64()),
            rows_per_sec = self.rate() as u64,
            "snapshot finished"
        );
    }
}

/// `ost_thread_entry [=====>    ] 41,800/100,000 rows committed, 41,838 rows/s, ETA 1s`.
fn style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} rows committed, {rate}, ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{} rows/s", HumanCount(state.per_sec() as u64));
        })
        .progress_chars("=> ")
}
