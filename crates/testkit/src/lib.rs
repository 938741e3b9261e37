//! `protofuse-testkit`: what the tests of every protofuse crate share. Dev-only: no crate depends on it
//! outside `[dev-dependencies]`, and it depends on no protofuse crate but the pure WeChat codec, so a tool's
//! tests (the importer's) can use it without pulling in the server.
//!
//! # Layout
//! - [`mariadb`]: a private, throwaway `mariadbd` per test process (never the machine's shared server).
//! - [`binary`]: a workspace binary run as a child process (`protofuse serve`), ready when `/readyz` is.
//! - [`http`]: small HTTP helpers (free ports, JSON GETs, the texts of a page of messages).
//! - [`receiver`]: an HTTP receiver standing in for a webhook destination, with modes (ok, fail, hang).
//! - [`wechat`]: a WeChat Official Account signer/sealer, callback XML builders, a fake WeChat API and a fake
//!   responder backend.
//!
//! Test helpers panic on failure: a panic is a failed test with its message, which is what a test wants.

pub mod binary;
pub mod http;
pub mod mariadb;
pub mod receiver;
pub mod wechat;
