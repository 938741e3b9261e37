//! Several `protofuse serve` nodes for the cluster tests (`cluster.rs`, `cluster_failover.rs`): one shared
//! store, the machine's NATS JetStream under a prefix of the test's own, and the removal of its streams.

use std::path::Path;

use protofuse_testkit::binary::Binary;

/// The machine's NATS with JetStream.
pub const NATS: &str = "nats://127.0.0.1:4222";

/// A stream prefix no other test run uses.
pub fn prefix() -> String {
    format!("pft{}", uuid::Uuid::now_v7().simple())
}

/// Three nodes (`a`, `b`, `c`) sharing `store` and the cluster `prefix`, each with `extra` configuration.
pub async fn nodes(dir: &Path, store: &str, prefix: &str, extra: &str) -> Vec<Binary> {
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/adapters/java-crm.toml");
    let mut nodes = Vec::new();
    for node in ["a", "b", "c"] {
        let config = dir.join(format!("{node}.toml"));
        std::fs::write(
            &config,
            format!(
                "[store]\nurl = \"{store}\"\n[legacy]\nadapters = [\"{}\"]\n\
                 [cluster]\nnats = \"{NATS}\"\nnode = \"{node}\"\nprefix = \"{prefix}\"\n{extra}",
                adapter.display()
            ),
        )
        .unwrap();
        nodes.push(Binary::serve(Path::new(env!("CARGO_BIN_EXE_protofuse")), &config, dir, &[]).await);
    }
    nodes
}

/// Removes this test's streams from the shared NATS.
pub async fn remove(prefix: &str) {
    let client = async_nats::connect(NATS).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream(format!("{prefix}_events")).await;
    let _ = js.delete_stream(format!("{prefix}_nonces")).await;
    let _ = js.delete_stream(format!("{prefix}_tokens")).await;
}
