//! Test support: protofuse servers started in-process or as the real binary, three cluster nodes (`cluster.rs`),
//! a web visitor (`web.rs`), a headless browser on a site's page with the widget (`browser.rs`), a proxy that
//! refuses WebSocket upgrades (`proxy.rs`); the rest (a private MariaDB, receivers, the WeChat signer) comes from
//! `protofuse-testkit`.

pub(crate) mod browser;
pub(crate) mod cluster;
pub(crate) mod proxy;
pub(crate) mod server;
pub(crate) mod web;
pub(crate) use protofuse_testkit::{mariadb, receiver, wechat};
