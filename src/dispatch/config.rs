//! `[dispatch]`: where accepted messages go after they are stored, and the fuse guarding each destination.
//!
//! ```toml
//! [[dispatch.destinations]]
//! name = "crm"
//! kind = "webhook"
//! url = "http://127.0.0.1:9000/hooks/protofuse"
//! timeout = "2s"
//!
//! [[dispatch.routes]]
//! channels = ["wechat"]          # empty: any channel
//! directions = ["inbound"]
//! destinations = ["crm"]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `[dispatch]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// How often an idle worker looks for due retries (new messages wake it at once).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// On shutdown, how long in-flight deliveries may finish; the rest stay in the outbox for the next start.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// The destinations.
    pub destinations: Vec<DestinationConfig>,
    /// Which messages go where.
    pub routes: Vec<RouteConfig>,
}

/// Fast enough that a retry is late by at most this, rare enough that idle polling costs nothing measurable.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            drain_timeout: Duration::from_secs(10),
            destinations: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// One `[[dispatch.routes]]`: messages matching every non-empty filter go to all of `destinations`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Channels (`wechat`, `rest`, `grpc`, ...); empty: any.
    pub channels: Vec<String>,
    /// Accounts (e.g. a WeChat account name); empty: any.
    pub accounts: Vec<String>,
    /// `inbound` and/or `outbound`; empty: any.
    pub directions: Vec<String>,
    /// Sender roles (`customer`, `agent`, `bot`, `system`); empty: any.
    pub roles: Vec<String>,
    /// Destination names.
    pub destinations: Vec<String>,
}

/// What a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    /// POST the canonical message as JSON to `url`, with an `Idempotency-Key` header.
    Webhook,
    /// Render the message with the `[outbound]` section of the legacy adapter named `adapter` (its format,
    /// charset and signature) and send it.
    Legacy,
    /// Send the message to the WeChat user through the customer-service API of the WeChat account `account`
    /// (which needs `app_id` and `app_secret`). Route agents' outbound messages on the `wechat` channel here.
    WechatKf,
    /// Built-in triage (`[triage]`): stores intent, department and decision on each inbound customer text message
    /// and queues the conversation for a human on a hand-off.
    Triage,
}

/// One `[[dispatch.destinations]]`. Fields are flat (not a tagged enum) because serde cannot combine `flatten`
/// with `deny_unknown_fields`; validation checks that each kind has what it needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique name, used in routes, metrics, the admin API and the outbox.
    pub name: String,
    /// What it is.
    pub kind: DestinationKind,
    /// `webhook`: where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// `webhook`: extra headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `legacy`: the adapter's `name`, from one of the `[legacy] adapters` files.
    #[serde(default)]
    pub adapter: Option<String>,
    /// `wechat_kf`: the WeChat account (`wechat.accounts[].account`).
    #[serde(default)]
    pub account: Option<String>,
    /// The fuse.
    #[serde(default)]
    pub fuse: FuseSettings,
    /// Retries.
    #[serde(default)]
    pub retry: RetrySettings,
}

impl DestinationConfig {
    /// The destination that sends WeChat account `account`'s customer-service messages when the configuration
    /// names none for it: every account with an AppID and AppSecret has one, so a late answer always goes out
    /// behind a fuse, with retries and dead letters. Named `wechat_kf:<account>`, with default fuse and retries.
    pub fn implicit_wechat_kf(account: &str) -> Self {
        Self {
            name: format!("wechat_kf:{account}"),
            kind: DestinationKind::WechatKf,
            url: None,
            headers: BTreeMap::new(),
            adapter: None,
            account: Some(account.to_owned()),
            fuse: FuseSettings::default(),
            retry: RetrySettings::default(),
        }
    }
}

/// A destination's fuse: timeout, slow-call threshold, bulkhead and breaker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FuseSettings {
    /// A call longer than this is abandoned and counts as a failure.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A successful call longer than this still counts toward opening the breaker.
    #[serde(with = "humantime_serde")]
    pub slow_call: Duration,
    /// Calls in flight at once (bulkhead).
    pub concurrency: u32,
    /// Callers that may wait for a slot; beyond that, calls are refused at once.
    pub queue: u32,
    /// The breaker.
    pub breaker: BreakerSettings,
}

impl Default for FuseSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            slow_call: Duration::from_secs(2),
            concurrency: 16,
            queue: 64,
            breaker: BreakerSettings::default(),
        }
    }
}

/// When the breaker opens and how it recovers. It opens on either policy: `consecutive_failures` in a row, or a
/// failure rate above `failure_rate` over `window` once `min_calls` were made.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Failure rate (0..1) over the window that opens the breaker.
    pub failure_rate: f64,
    /// The failure-rate window (at least 1 s), kept as ten buckets that slide a tenth at a time.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Calls in the window before the failure rate is judged.
    pub min_calls: u32,
    /// First open period; doubles (with jitter) on each re-open, up to `open_max`.
    #[serde(with = "humantime_serde")]
    pub open_initial: Duration,
    /// Longest open period.
    #[serde(with = "humantime_serde")]
    pub open_max: Duration,
    /// Calls let through at once while half-open, so a recovering destination is not stampeded.
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(30),
            min_calls: 20,
            open_initial: Duration::from_secs(5),
            open_max: Duration::from_secs(120),
            half_open_probes: 1,
        }
    }
}

/// Retries of one destination's deliveries.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Longest delay between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Retries allowed as a share of first attempts (the retry budget), so retries cannot multiply load on a
    /// struggling destination.
    pub budget_ratio: f64,
    /// Retries per second always allowed, so a quiet destination can still retry.
    pub budget_min_per_second: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            budget_ratio: 0.2,
            budget_min_per_second: 5.0,
        }
    }
}

impl DispatchConfig {
    /// Every problem, each with its key.
    pub(crate) fn issues(&self) -> Vec<crate::config::ConfigIssue> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let key = |k: &str| format!("dispatch.destinations[{i}].{k}");
            if d.name.is_empty()
                || d.name.len() > 64
                || !d
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                out.push((key("name"), "must be 1-64 characters of A-Z a-z 0-9 - _ . :".to_owned()));
            }
            if !seen.insert(d.name.as_str()) {
                out.push((key("name"), format!("duplicate destination name `{}`", d.name)));
            }
            match (d.kind, &d.url, &d.adapter) {
                (DestinationKind::Webhook, None, _) => out.push((key("url"), "a webhook needs a url".to_owned())),
                (DestinationKind::Webhook, Some(url), _) if !is_http_url(url) => {
                    out.push((
                        key("url"),
                        format!("`{}` is not an http:// or https:// URL", crate::redact::url(url)),
                    ));
                }
                (DestinationKind::Legacy, _, None) => {
                    out.push((key("adapter"), "a legacy destination needs an adapter name".to_owned()));
                }
                (DestinationKind::WechatKf, _, _) if d.account.is_none() => {
                    out.push((
                        key("account"),
                        "a wechat_kf destination needs a wechat account name".to_owned(),
                    ));
                }
                _ => {}
            }
            fuse_issues(&d.fuse, &key, &mut out);
            if d.retry.max_attempts == 0 {
                out.push((key("retry.max_attempts"), "must be at least 1".to_owned()));
            }
            if !(0.0..=10.0).contains(&d.retry.budget_ratio) {
                out.push((key("retry.budget_ratio"), "must be between 0 and 10".to_owned()));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            for name in &r.destinations {
                if !seen.contains(name.as_str()) {
                    out.push((
                        format!("dispatch.routes[{i}].destinations"),
                        format!("unknown destination `{name}`"),
                    ));
                }
            }
            for d in &r.directions {
                if d != "inbound" && d != "outbound" {
                    out.push((
                        format!("dispatch.routes[{i}].directions"),
                        format!("`{d}` is not inbound or outbound"),
                    ));
                }
            }
        }
        out.into_iter()
            .map(|(key, message)| crate::config::ConfigIssue::new(key, message))
            .collect()
    }
}

/// An absolute http(s) URL with a host and nothing a browser would have to guess around (no spaces).
fn is_http_url(url: &str) -> bool {
    !url.chars().any(char::is_whitespace)
        && reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn fuse_issues(f: &FuseSettings, key: &dyn Fn(&str) -> String, out: &mut Vec<(String, String)>) {
    if f.concurrency == 0 {
        out.push((key("fuse.concurrency"), "must be at least 1".to_owned()));
    }
    if f.timeout.is_zero() {
        out.push((key("fuse.timeout"), "must be positive".to_owned()));
    }
    let b = &f.breaker;
    if !(0.0..=1.0).contains(&b.failure_rate) || b.failure_rate == 0.0 {
        out.push((key("fuse.breaker.failure_rate"), "must be in (0, 1]".to_owned()));
    }
    // A rate over less than a second of calls swings with every call; 1 s is also what configs were held to when
    // the breaker counted its window in whole seconds.
    if b.window < Duration::from_secs(1) {
        out.push((key("fuse.breaker.window"), "must be at least 1s".to_owned()));
    }
    if b.consecutive_failures == 0 {
        out.push((
            key("fuse.breaker.consecutive_failures"),
            "must be at least 1".to_owned(),
        ));
    }
    if b.half_open_probes == 0 {
        out.push((key("fuse.breaker.half_open_probes"), "must be at least 1".to_owned()));
    }
    if b.open_initial.is_zero() || b.open_max < b.open_initial {
        out.push((
            key("fuse.breaker.open_max"),
            "open_initial must be positive and at most open_max".to_owned(),
        ));
    }
}
