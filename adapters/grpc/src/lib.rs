//! The gRPC face of protofuse: the code generated from `proto/protofuse/v1/*.proto` ([`pb`]) and the pure
//! mapping between those wire types and the canonical model ([`decode_send`], [`encode_message`], ...).
//!
//! Owns: the wire ↔ model mapping for gRPC, and the descriptor set served by reflection. Must never: do I/O,
//! read the clock, or hold a business rule (validation is the model's, storing is the application service's).
//! The transport (sockets, interceptors, status codes for service errors) lives in `protofuse::server::grpc`.

mod convert;
/// Generated protobuf types, server and client for package `protofuse.v1`.
pub mod pb;

pub use convert::{
    SubscribeFilter, decode_send, decode_subscribe, encode_content, encode_conversation, encode_message, encode_status,
    model_order, model_status,
};

/// The encoded `FileDescriptorSet` of every proto file, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/protofuse_v1_descriptor.bin"));
