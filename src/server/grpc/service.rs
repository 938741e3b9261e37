//! The gRPC listener: `protofuse.v1.ConversationService` (wire mapping in `protofuse-grpc`), the standard
//! `grpc.health.v1.Health` and server reflection, on `[grpc] listen`.
//!
//! Owns: translating calls into [`Service`] operations and [`ServiceError`]s into gRPC status codes. Must
//! never: hold a business rule (the service does) or outlive shutdown (streams end when the stop signal fires).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use protofuse_grpc::pb::conversation_service_server::{ConversationService, ConversationServiceServer};
use protofuse_grpc::pb::{self, subscribe_response};
use protofuse_grpc::{
    decode_send, decode_subscribe, encode_conversation, encode_message, encode_status, model_order, model_status,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

use super::edge::EdgeLayer;
use crate::auth::Authenticator;
use crate::events::{Event, EventFilter, Received};
use crate::resume::{Events, Resumed};
use crate::server::GrpcConfig;
use crate::service::{ErrorClass, Service, ServiceError};
use protofuse_store::{ConversationFilter, Order, PageRequest};

/// The generated service's implementation over the application service.
pub(super) struct GrpcApi {
    service: Service,
    stop: watch::Receiver<bool>,
}

fn service_status(e: &ServiceError) -> Status {
    let message = match e {
        ServiceError::Invalid(v) => v.to_string(),
        other => other.to_string(),
    };
    match e.class() {
        ErrorClass::Invalid => Status::invalid_argument(message),
        ErrorClass::NotFound => Status::not_found(message),
        ErrorClass::AlreadyExists => Status::already_exists(message),
        ErrorClass::FailedPrecondition => Status::failed_precondition(message),
        ErrorClass::Unavailable => Status::unavailable(message),
    }
}

fn decode_status(e: &protofuse_adapter::DecodeError) -> Status {
    use protofuse_adapter::Rejection;
    match e.rejection() {
        Rejection::Unauthorized => Status::unauthenticated(e.to_string()),
        Rejection::PayloadTooLarge => Status::resource_exhausted(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

fn conversation_id(raw: &str) -> Result<protofuse_model::ConversationId, Status> {
    raw.parse()
        .map_err(|_| Status::invalid_argument("conversation_id must be a UUID"))
}

fn page(size: u32, token: &str, order: i32, default: Order) -> Result<PageRequest, Status> {
    let order = match model_order(order).map_err(|e| decode_status(&e))? {
        None => default,
        Some(true) => Order::Ascending,
        Some(false) => Order::Descending,
    };
    if size > PageRequest::MAX_LIMIT {
        return Err(Status::invalid_argument("page_size must be at most 500"));
    }
    let after = match token {
        "" => None,
        t => Some(uuid::Uuid::try_parse(t).map_err(|_| Status::invalid_argument("unknown page_token"))?),
    };
    let limit = if size == 0 { PageRequest::DEFAULT_LIMIT } else { size };
    Ok(PageRequest { after, limit, order })
}

fn token(cursor: Option<uuid::Uuid>) -> String {
    cursor.map(|c| c.simple().to_string()).unwrap_or_default()
}

fn event_response(received: Received) -> pb::SubscribeResponse {
    let event = match received {
        Received::Lagged(n) => subscribe_response::Event::Lagged(n),
        Received::Event(Event::MessageStored { message, .. }) => {
            subscribe_response::Event::MessageStored(encode_message((*message).clone()))
        }
        Received::Event(Event::StatusChanged {
            conversation_id,
            from,
            to,
            ..
        }) => subscribe_response::Event::StatusChanged(pb::StatusChanged {
            conversation_id: conversation_id.to_string(),
            from: encode_status(from).into(),
            to: encode_status(to).into(),
        }),
    };
    pb::SubscribeResponse { event: Some(event) }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConversationService for GrpcApi {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let key = match request.metadata().get("idempotency-key") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| Status::invalid_argument("idempotency-key metadata must be visible ASCII"))?
                    .to_owned(),
            ),
        };
        let envelope = decode_send(request.into_inner(), key.as_deref()).map_err(|e| decode_status(&e))?;
        let outcome = self.service.send(envelope).await.map_err(|e| service_status(&e))?;
        Ok(Response::new(pb::SendMessageResponse {
            duplicate: outcome.duplicate,
            message: Some(encode_message(outcome.message)),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let id = conversation_id(&request.get_ref().conversation_id)?;
        let conversation = self.service.conversation(id).await.map_err(|e| service_status(&e))?;
        Ok(Response::new(pb::GetConversationResponse {
            conversation: Some(encode_conversation(conversation)),
        }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let r = request.into_inner();
        let page = page(r.page_size, &r.page_token, r.order, Order::Ascending)?;
        let found = self
            .service
            .messages(conversation_id(&r.conversation_id)?, page)
            .await
            .map_err(|e| service_status(&e))?;
        Ok(Response::new(pb::ListMessagesResponse {
            next_page_token: token(found.next_cursor),
            messages: found.items.into_iter().map(encode_message).collect(),
        }))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let r = request.into_inner();
        let filter = ConversationFilter {
            customer_id: Some(r.customer_id).filter(|c| !c.is_empty()),
            status: model_status(r.status).map_err(|e| decode_status(&e))?,
        };
        let page = page(r.page_size, &r.page_token, r.order, Order::Descending)?;
        let found = self
            .service
            .conversations(&filter, page)
            .await
            .map_err(|e| service_status(&e))?;
        Ok(Response::new(pb::ListConversationsResponse {
            next_page_token: token(found.next_cursor),
            conversations: found.items.into_iter().map(encode_conversation).collect(),
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<EventStream>, Status> {
        let wanted = decode_subscribe(request.into_inner()).map_err(|e| decode_status(&e))?;
        let mut events = match (wanted.after, wanted.conversation_id) {
            (Some(after), Some(conversation)) => Events::Resumed(Box::new(
                Resumed::open(self.service.clone(), conversation, wanted.customer_id, after)
                    .await
                    .map_err(|e| service_status(&e))?,
            )),
            _ => Events::Live(self.service.subscribe(EventFilter {
                conversation_id: wanted.conversation_id,
                customer_id: wanted.customer_id,
            })),
        };
        let mut stop = self.stop.clone();
        // A small buffer: the bus already buffers per subscriber; this only decouples the socket.
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = events.next() => next,
                    () = tx.closed() => return,
                    _ = stop.wait_for(|stopping| *stopping) => return,
                };
                // A failed store read ends the stream with its status; the client resumes with its cursor.
                let item = match next {
                    None => return,
                    Some(Ok(received)) => Ok(event_response(received)),
                    Some(Err(e)) => Err(service_status(&e)),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Binds `[grpc] listen` and serves until `stop` turns true; health turns NOT_SERVING first, then in-flight
/// calls finish (the caller bounds that by the shutdown grace).
pub(crate) async fn spawn(
    config: &GrpcConfig,
    service: Service,
    auth: Arc<Authenticator>,
    mut draining: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let limit = config.max_message_bytes;
    let api = ConversationServiceServer::new(GrpcApi {
        service,
        stop: stop.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .accept_compressed(CompressionEncoding::Zstd)
    .send_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Zstd)
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ConversationServiceServer<GrpcApi>>().await;
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(protofuse_grpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .expect("the embedded descriptor sets decode");
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .expect("the embedded descriptor sets decode");
    let server = tonic::transport::Server::builder()
        .layer(EdgeLayer::new(config.request_timeout, auth))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let task = tokio::spawn(async move {
        let signal = async move {
            // Not serving from the start of the drain, while calls are still answered; stop at the end.
            let _ = draining.wait_for(|d| *d).await;
            health.set_service_status("", ServingStatus::NotServing).await;
            health.set_not_serving::<ConversationServiceServer<GrpcApi>>().await;
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        match server.serve_with_incoming_shutdown(incoming, signal).await {
            Ok(()) => tracing::info!("gRPC server stopped"),
            Err(e) => tracing::error!(error = %e, "gRPC server failed"),
        }
    });
    tracing::info!(%addr, "serving gRPC");
    Ok((addr, task))
}
