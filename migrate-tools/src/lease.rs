//! One follower per mapping: `follow` holds a lease on its mapping's name in the target (`import_lease`),
//! renewed while it runs. A second `follow` of the same mapping refuses, naming the holder, or with
//! `--wait-for-lease` waits and takes over once the first stops or dies (its lease then runs out).
//!
//! A holder on the same host whose process is gone (killed, crashed, restarted by its supervisor) is taken over
//! at once instead of after its lease runs out.
//!
//! Why a lease in the target and not a lock on the source: the target is what two followers would corrupt
//! together (one checkpoint, two writers), and every follower of a mapping already shares it. Must never let
//! a follower go on writing after its lease was taken: a failed renewal stops the follow.

use std::time::Duration;

use tokio::sync::watch;

use crate::sink::{Target, TargetError};

/// Why the lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Another follower holds it.
    #[error(
        "mapping `{name}` is being followed by {holder} (its lease runs until {until}); stop that follower, or \
         start this one with --wait-for-lease to take over when it stops"
    )]
    Held {
        /// The mapping's name.
        name: String,
        /// The other follower (`host:pid:…`).
        holder: String,
        /// When its lease ends unless renewed.
        until: String,
    },
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// A held lease; [`Lease::release`] gives it up.
#[derive(Debug)]
pub struct Lease {
    target: Target,
    name: String,
    holder: String,
    ttl: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn until(ttl: Duration) -> i64 {
    now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Lease {
    /// Takes the lease on mapping `name` for `ttl`, or fails naming its holder; with `wait`, polls once a
    /// second until it is free.
    pub async fn take(target: &Target, name: &str, ttl: Duration, wait: bool) -> Result<Self, LeaseError> {
        let holder = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let mut announced = false;
        let mut dead: Option<String> = None;
        loop {
            match target
                .take_lease(name, &holder, dead.as_deref(), now_ms(), until(ttl))
                .await?
            {
                Ok(()) => {
                    tracing::info!(mapping = name, holder, "took the follow lease");
                    return Ok(Self {
                        target: target.clone(),
                        name: name.to_owned(),
                        holder,
                        ttl,
                    });
                }
                Err((other, _)) if dead.as_deref() != Some(other.as_str()) && died_here(&other) => {
                    // A follower of this host that no longer runs (killed, crashed, restarted by systemd): no
                    // need to wait for its lease to run out. Taken only from that holder, so two waiting
                    // followers cannot both take it.
                    tracing::info!(
                        mapping = name,
                        holder = other,
                        "the lease's holder no longer runs; taking over"
                    );
                    dead = Some(other);
                }
                Err((other, expires)) => {
                    let until = chrono::DateTime::from_timestamp_millis(expires)
                        .map_or_else(|| expires.to_string(), |t| t.to_rfc3339());
                    if !wait {
                        return Err(LeaseError::Held {
                            name: name.to_owned(),
                            holder: other,
                            until,
                        });
                    }
                    if !announced {
                        tracing::info!(mapping = name, holder = other, until, "waiting for the follow lease");
                        announced = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Renews the lease every third of its time, until `stop`; when another follower has taken it, sends
    /// `lost` so the follow stops. A target that fails to answer is tried again at the next period.
    pub fn keeper(
        &self,
        mut stop: watch::Receiver<bool>,
        lost: watch::Sender<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (target, name, holder, ttl) = (self.target.clone(), self.name.clone(), self.holder.clone(), self.ttl);
        async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(ttl / 3) => {}
                }
                match target.renew_lease(&name, &holder, until(ttl)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(mapping = %name, "the follow lease was taken by another follower; stopping");
                        let _ = lost.send(true);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "follow lease not renewed; trying again"),
                }
            }
        }
    }

    /// Gives the lease up, so a waiting follower takes over at once.
    pub async fn release(self) {
        if let Err(e) = self.target.release_lease(&self.name, &self.holder).await {
            tracing::warn!(error = %e, "follow lease not released; it runs out by itself");
        }
    }
}

/// Whether `holder` (`host:pid:…`) names a process of this host that no longer runs.
fn died_here(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    host == hostname()
        && pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned())
}
