//! The gRPC listener: `protofuse.v1.ConversationService` over the application service (`service.rs`), behind
//! the edge layer (`edge.rs`: API keys, deadlines, size refusals).

mod edge;
mod service;

pub(crate) use service::spawn;
