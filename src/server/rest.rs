//! The native REST API under `/v1`: the canonical model over JSON.
//!
//! - `POST /v1/messages`: a [`NewMessage`](protofuse_model::NewMessage) in, `{"duplicate", "message"}` out;
//!   201 when stored, 200 with `Idempotent-Replayed: true` when the idempotency key was stored before.
//! - `GET /v1/conversations/{id}`: one conversation.
//! - `GET /v1/conversations/{id}/messages?limit=&cursor=&order=asc|desc`: a page of its messages.
//! - `GET /v1/conversations?customer=&status=&limit=&cursor=&order=`: a page of conversations, newest first.
//! - `PUT /v1/conversations/{id}/status`: `{"status", "department"?, "assigned_agent"?}` moves it (an agent takes
//!   or closes it); 409 `conversation_closed` once closed.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protofuse_adapter::native;
use protofuse_model::{ConversationId, ConversationStatus, Message};
use serde::{Deserialize, Serialize};

use super::body;
use super::error::ApiError;
use super::state::AppState;
use protofuse_store::{ConversationFilter, Order, Page, PageRequest};

/// Routes of the native API.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/messages", post(post_message))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/messages", get(list_messages))
        .route("/v1/conversations/{id}/status", axum::routing::put(put_status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: ConversationStatus,
    department: Option<String>,
    assigned_agent: Option<String>,
    /// Compare-and-set: apply only while this agent (`null`: nobody) is assigned, else `409 assignee_changed`;
    /// absent applies the change whoever is assigned.
    #[serde(default, deserialize_with = "present")]
    expected_assignee: Option<Option<String>>,
}

/// A field that is present, `null` included (`Some(None)`), as opposed to absent (`None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(field).map(Some)
}

async fn put_status(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    body::require_json(&headers)?;
    let bytes = body::read_limited(&headers, body, app.body_limit).await?;
    let request: StatusBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.to_string()))?;
    let change = protofuse_store::StatusChange {
        status: request.status,
        department: request.department,
        assigned_agent: request.assigned_agent,
        if_assignee: request
            .expected_assignee
            .map(|expected| protofuse_store::Assignee::of(expected.as_deref())),
    };
    let conversation = app.service.change_status(conversation_id(&id)?, change).await?;
    Ok(Json(conversation).into_response())
}

#[derive(Serialize)]
struct Sent {
    duplicate: bool,
    message: Message,
}

async fn post_message(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    body::require_json(&headers)?;
    let bytes = body::read_limited(&headers, body, app.body_limit).await?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid_header", "Idempotency-Key must be visible ASCII"))?,
        ),
    };
    let envelope = native::decode(&bytes, key)?;
    let outcome = app.service.send(envelope).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let location = format!("/v1/conversations/{}/messages", outcome.message.conversation_id);
    let mut response = (
        status,
        Json(Sent {
            duplicate: outcome.duplicate,
            message: outcome.message,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    if outcome.duplicate {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Query parameters shared by the list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
    order: Option<String>,
    customer: Option<String>,
    status: Option<String>,
}

#[derive(Serialize)]
struct PageBody<T> {
    items: Vec<T>,
    /// Opaque; pass as `cursor` to read the next page. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl<T> From<Page<T>> for PageBody<T> {
    fn from(page: Page<T>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor.map(|c| c.simple().to_string()),
        }
    }
}

impl ListParams {
    fn page(&self, default_order: Order) -> Result<PageRequest, ApiError> {
        let order = match self.order.as_deref() {
            None => default_order,
            Some("asc") => Order::Ascending,
            Some("desc") => Order::Descending,
            Some(_) => {
                return Err(ApiError::bad_request("invalid_query", "order must be asc or desc"));
            }
        };
        let after = self
            .cursor
            .as_deref()
            .map(|c| uuid::Uuid::try_parse(c).map_err(|_| ApiError::bad_request("invalid_cursor", "unknown cursor")))
            .transpose()?;
        let limit = self.limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
        if limit == 0 || limit > PageRequest::MAX_LIMIT {
            let max = PageRequest::MAX_LIMIT;
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {max}"),
            ));
        }
        Ok(PageRequest { after, limit, order })
    }
}

fn query(params: Result<Query<ListParams>, QueryRejection>) -> Result<ListParams, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "conversation id must be a UUID"))
}

async fn get_conversation(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let conversation = app.service.conversation(conversation_id(&id)?).await?;
    Ok(Json(conversation).into_response())
}

async fn list_messages(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    if params.customer.is_some() || params.status.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "customer and status filter conversations, not messages",
        ));
    }
    let page = app
        .service
        .messages(conversation_id(&id)?, params.page(Order::Ascending)?)
        .await?;
    Ok(Json(PageBody::from(page)).into_response())
}

async fn list_conversations(
    State(app): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            ConversationStatus::parse(s)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "status must be bot, queued, assigned or closed"))
        })
        .transpose()?;
    let filter = ConversationFilter {
        customer_id: params.customer.clone(),
        status,
    };
    let page = app
        .service
        .conversations(&filter, params.page(Order::Descending)?)
        .await?;
    Ok(Json(PageBody::from(page)).into_response())
}
