//! Who answers a customer: the [`Responder`] seam between a stored inbound message and the reply a protocol
//! sends back: [`Keywords`] (a table from config), [`TriageResponder`] (built-in triage), [`LlmResponder`] (a chat
//! model behind its own fuse, grounded on triage's knowledge) and [`Webhook`] (a backend asked over HTTP), tried
//! in order by [`Chain`].
//!
//! This module owns the shape of an answer, not its delivery: a responder never talks to WeChat, never stores
//! anything and never decides whether its answer arrives in time. The caller (e.g. `crate::wechat`) races it
//! against its budget and delivers the answer passively or later.

mod answer;
mod keywords;
mod llm;
mod responder;
mod triage;
mod webhook;

pub use answer::{Answer, NewsArticle};
pub use keywords::{AutoReply, Keywords, MatchKind};
pub use llm::{ChatClient, ChatError, ChatMessage, LlmConfig, LlmResponder};
pub use responder::{Chain, RespondError, Responder};
pub use triage::TriageResponder;
pub use webhook::Webhook;
