//! JSON-RPC 2.0 at `/rpc` on the HTTP listener, over HTTP POST and WebSocket upgrade (jsonrpsee).
//!
//! Methods mirror the REST API and call the same [`Service`]: `message.send`, `conversation.get`,
//! `conversation.messages`, `conversation.list`; WebSocket clients can `conversation.subscribe` (notifications
//! `conversation.event`) and `conversation.unsubscribe`. Params are by name and use the REST API's JSON forms.
//! jsonrpsee does the framing (batches, notifications, ids, -32700/-32600/-32601/-32602/-32603); this module
//! owns the methods and the application error codes in [`code`]; the HTTP/WebSocket glue is in
//! `jsonrpc_http.rs`. Must never: hold a business rule.

use std::sync::Arc;

use crate::events::{Event, EventFilter, Received};
use crate::resume::{Events, Resumed};
use crate::service::{Service, ServiceError};
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use protofuse_model::{ConversationId, ConversationStatus, MessageId, NewMessage, Protocol};
use protofuse_store::{ConversationFilter, Order, Page, PageRequest};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use serde_json::{Value, json};

/// Application error codes (JSON-RPC's server range), documented in the README.
pub mod code {
    /// The conversation does not exist.
    pub const CONVERSATION_NOT_FOUND: i32 = -32001;
    /// The idempotency key was used before for a different message.
    pub const IDEMPOTENCY_KEY_REUSED: i32 = -32002;
    /// The store is unavailable; retry later.
    pub const STORE_UNAVAILABLE: i32 = -32003;
    /// The message breaks a rule of the canonical model.
    pub const INVALID_MESSAGE: i32 = -32004;
    /// The conversation is closed and cannot change.
    pub const CONVERSATION_CLOSED: i32 = -32005;
    /// The API key lacks the scope this method needs (`message.send` needs `write`).
    pub const FORBIDDEN: i32 = -32006;
}

/// Refuses unless the caller (authenticated on the HTTP request or WebSocket upgrade, see `server/auth.rs`) may
/// write. Without an authenticated caller in the extensions nothing was configured to check.
fn may_write(extensions: &jsonrpsee::Extensions) -> Result<(), ErrorObjectOwned> {
    match extensions.get::<Caller>() {
        Some(caller) => caller
            .require(Scope::Write)
            .map_err(|e| error(code::FORBIDDEN, e.to_string())),
        None => Err(error(code::FORBIDDEN, "no authenticated caller")),
    }
}

type RpcResult = Result<Value, ErrorObjectOwned>;

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, None::<()>)
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(jsonrpsee::types::error::INVALID_PARAMS_CODE, message)
}

/// The error object for `e`: its stable code's number in [`code`], and its message.
fn service_error(e: &ServiceError) -> ErrorObjectOwned {
    let number = match e.code() {
        "conversation_not_found" => code::CONVERSATION_NOT_FOUND,
        "idempotency_key_reused" => code::IDEMPOTENCY_KEY_REUSED,
        "store_unavailable" => code::STORE_UNAVAILABLE,
        "conversation_closed" => code::CONVERSATION_CLOSED,
        _ => code::INVALID_MESSAGE,
    };
    let message = match &e {
        ServiceError::Invalid(v) => v.to_string(),
        other => other.to_string(),
    };
    error(number, message)
}

/// Params by name, or one positional object.
fn params<T: serde::de::DeserializeOwned>(p: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    let parsed = if p.as_str().is_some_and(|s| s.trim_start().starts_with('[')) {
        p.one::<T>()
    } else {
        p.parse::<T>()
    };
    parsed.map_err(|e| invalid_params(e.message().to_owned()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdParams {
    id: ConversationId,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListParams {
    id: Option<ConversationId>,
    customer: Option<String>,
    status: Option<ConversationStatus>,
    limit: Option<u32>,
    cursor: Option<uuid::Uuid>,
    order: Option<String>,
}

impl ListParams {
    fn page(&self, default: Order) -> Result<PageRequest, ErrorObjectOwned> {
        let order = match self.order.as_deref() {
            None => default,
            Some("asc") => Order::Ascending,
            Some("desc") => Order::Descending,
            Some(_) => return Err(invalid_params("order must be asc or desc")),
        };
        let limit = self.limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
        if limit == 0 || limit > PageRequest::MAX_LIMIT {
            return Err(invalid_params("limit must be between 1 and 500"));
        }
        Ok(PageRequest {
            after: self.cursor,
            limit,
            order,
        })
    }
}

fn page_json<T: serde::Serialize>(page: &Page<T>) -> Value {
    let mut body = json!({ "items": page.items });
    if let Some(c) = page.next_cursor {
        body["next_cursor"] = json!(c.simple().to_string());
    }
    body
}

async fn send(p: Params<'static>, service: Arc<Service>) -> RpcResult {
    let posted: NewMessage = params(&p)?;
    let envelope = posted
        .into_envelope(Protocol::Jsonrpc, None)
        .map_err(|e| error(code::INVALID_MESSAGE, e.to_string()))?;
    let outcome = service.send(envelope).await.map_err(|e| service_error(&e))?;
    Ok(json!({ "duplicate": outcome.duplicate, "message": outcome.message }))
}

async fn get(p: Params<'static>, service: Arc<Service>) -> RpcResult {
    let IdParams { id } = params(&p)?;
    let conversation = service.conversation(id).await.map_err(|e| service_error(&e))?;
    Ok(json!(conversation))
}

async fn messages(p: Params<'static>, service: Arc<Service>) -> RpcResult {
    let list: ListParams = params(&p)?;
    let id = list.id.ok_or_else(|| invalid_params("id is required"))?;
    if list.customer.is_some() || list.status.is_some() {
        return Err(invalid_params("customer and status filter conversations, not messages"));
    }
    let found = service
        .messages(id, list.page(Order::Ascending)?)
        .await
        .map_err(|e| service_error(&e))?;
    Ok(page_json(&found))
}

async fn list(p: Params<'static>, service: Arc<Service>) -> RpcResult {
    let list: ListParams = if p.is_object() || p.as_str().is_some() {
        params(&p)?
    } else {
        ListParams::default()
    };
    if list.id.is_some() {
        return Err(invalid_params("id names one conversation: use conversation.get"));
    }
    let filter = ConversationFilter {
        customer_id: list.customer.clone(),
        status: list.status,
    };
    let found = service
        .conversations(&filter, list.page(Order::Descending)?)
        .await
        .map_err(|e| service_error(&e))?;
    Ok(page_json(&found))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubscribeParams {
    conversation_id: Option<ConversationId>,
    customer: Option<String>,
    /// Resume after this message id (stored messages first, then live events); needs `conversation_id`.
    after: Option<MessageId>,
}

fn event_json(received: Received) -> Value {
    match received {
        Received::Lagged(missed) => json!({ "type": "lagged", "missed": missed }),
        Received::Event(Event::MessageStored { message, .. }) => {
            json!({ "type": "message_stored", "message": &*message })
        }
        Received::Event(Event::StatusChanged {
            conversation_id,
            from,
            to,
            ..
        }) => json!({ "type": "status_changed", "conversation_id": conversation_id, "from": from, "to": to }),
    }
}

/// The subscription `wanted` asks for: resumed after its cursor, or live only.
async fn open_events(wanted: SubscribeParams, service: &Service) -> Result<Events, ErrorObjectOwned> {
    match (wanted.after, wanted.conversation_id) {
        (Some(after), Some(conversation)) => Resumed::open(service.clone(), conversation, wanted.customer, after)
            .await
            .map(|r| Events::Resumed(Box::new(r)))
            .map_err(|e| service_error(&e)),
        (Some(_), None) => Err(invalid_params(
            "after resumes one conversation: conversation_id is required with it",
        )),
        (None, _) => Ok(Events::Live(service.subscribe(EventFilter {
            conversation_id: wanted.conversation_id,
            customer_id: wanted.customer,
        }))),
    }
}

async fn subscribe(p: Params<'static>, pending: PendingSubscriptionSink, service: Arc<Service>) {
    let wanted: Result<SubscribeParams, _> = if p.as_str().is_some() {
        params(&p)
    } else {
        Ok(SubscribeParams::default())
    };
    let opened = match wanted {
        Ok(w) => open_events(w, &service).await,
        Err(e) => Err(e),
    };
    let mut events = match opened {
        Ok(events) => events,
        Err(e) => return pending.reject(e).await,
    };
    let Ok(sink) = pending.accept().await else { return };
    loop {
        let received = tokio::select! {
            received = events.next() => received,
            () = sink.closed() => return,
        };
        // A failed store read ends the subscription with an `error` event; the client resumes with its cursor.
        let (event, last) = match received {
            None => return,
            Some(Ok(received)) => (event_json(received), false),
            Some(Err(e)) => (
                json!({ "type": "error", "code": e.code(), "message": e.to_string() }),
                true,
            ),
        };
        let Ok(raw) = serde_json::value::to_raw_value(&event) else {
            return;
        };
        if sink.send(SubscriptionMessage::from(raw)).await.is_err() || last {
            return;
        }
    }
}

/// Every method, over `service`.
pub(super) fn module(service: Service) -> RpcModule<Service> {
    let mut module = RpcModule::new(service);
    let registered = [
        module
            .register_async_method("message.send", |p, s, extensions| async move {
                may_write(&extensions)?;
                send(p, s).await
            })
            .map(|_| ()),
        module
            .register_async_method("conversation.get", |p, s, _| get(p, s))
            .map(|_| ()),
        module
            .register_async_method("conversation.messages", |p, s, _| messages(p, s))
            .map(|_| ()),
        module
            .register_async_method("conversation.list", |p, s, _| list(p, s))
            .map(|_| ()),
        module
            .register_subscription(
                "conversation.subscribe",
                "conversation.event",
                "conversation.unsubscribe",
                |p, pending, s, _| subscribe(p, pending, s),
            )
            .map(|_| ()),
    ];
    for r in registered {
        r.expect("method names are distinct");
    }
    module
}
