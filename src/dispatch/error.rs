//! [`DispatchError`]: why the dispatcher's destinations could not be built (at start, or for a reload).

/// Why the dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A legacy destination names an adapter that is not loaded or has no `[outbound]` section.
    #[error("dispatch.destinations `{destination}`: no legacy adapter `{adapter}` with an [outbound] section")]
    UnknownAdapter {
        /// The destination.
        destination: String,
        /// The adapter named.
        adapter: String,
    },
    /// A `wechat_kf` destination names an account without an AppID and AppSecret.
    #[error("dispatch.destinations `{destination}`: wechat account `{account}` has no app_id/app_secret")]
    NoWechatApi {
        /// The destination.
        destination: String,
        /// The account named.
        account: String,
    },
    /// A `triage` destination was configured but triage was not loaded.
    #[error("dispatch.destinations `{0}`: triage is not loaded")]
    TriageNotLoaded(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}
