//! The code generated from `proto/protofuse/v1/*.proto` by `build.rs`.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::uninlined_format_args,
    clippy::semicolon_if_nothing_returned,
    clippy::too_many_lines,
    clippy::needless_pass_by_value
)]

tonic::include_proto!("protofuse.v1");
