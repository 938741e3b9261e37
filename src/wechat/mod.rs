//! WeChat Official Accounts, the application side: the configured accounts ([`Wechat`]), who answers them
//! ([`crate::respond`]), the answer budget and late delivery ([`answer`]), and the customer-service API client
//! ([`kf`]). The HTTP framing lives in `server/wechat.rs`; the pure codec in `protofuse-wechat`.
//!
//! This module owns the decision of what a callback answers and when. It never parses or verifies callback
//! bytes (the codec does, before anything here runs), and never answers a duplicate delivery with anything but
//! the first delivery's passive answer or `success`.

mod accounts;
mod answer;
mod config;
pub mod kf;
mod memory;
mod render;

pub use accounts::{Account, Accounts, Wechat, WechatError, kf_clients, kf_clients_keeping};
pub use config::{
    AccountConfig, DEFAULT_ANSWER_BUDGET, DEFAULT_API_BASE_URL, DEFAULT_API_TIMEOUT, WebhookConfig, WechatSection,
};
pub use render::passive_reply;
pub(crate) use render::reply_body;
