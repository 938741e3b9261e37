//! Integration tests, one binary (links once): real sockets, real SQLite files, a real MariaDB.

// Nothing in a test binary is reachable from outside, so `pub` here only means "shared between test modules".
#![allow(unreachable_pub)]

mod cli;
mod cluster;
mod cluster_failover;
mod dispatch;
mod dispatch_crash;
mod edge;
mod grpc;
mod jsonrpc;
mod legacy;
mod lifecycle;
mod llm;
mod overload;
mod reload;
mod rest_api;
mod resume;
mod store;
mod support;
mod triage;
mod web_channel;
mod web_console;
mod web_stream;
mod web_widget;
mod wechat;
mod wechat_hostile;
mod wechat_late;
