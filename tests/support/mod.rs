//! Test support: a private MariaDB, and protofuse servers started in-process or as the real binary.

pub(crate) mod mariadb;
pub(crate) mod receiver;
pub(crate) mod server;
pub(crate) mod wechat;
