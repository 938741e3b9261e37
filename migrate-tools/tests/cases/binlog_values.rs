//! Issue 22, findings 2 and 7: values mysql_common decodes wrongly from a row image. A signed MEDIUMINT lost its
//! sign (-1 became 16777215), and a negative TIME(1|2) with a fraction came out as garbage, which stopped the
//! follower at the same event on every restart. The snapshot path (ground truth) always read them right.

use std::time::Duration;

use protofuse_migrate::sink::Target;
use protofuse_store::PageRequest;
use serde_json::{Value, json};

use super::importer::Importer;

/// (MEDIUMINT, MEDIUMINT UNSIGNED, TIME(1), TIME(2)) as inserted, then as the store must hold them.
const CASES: &[(&str, &str, &str, &str)] = &[
    ("-1", "16777215", "-01:00:00.5", "-01:00:00.50"),
    ("-8388608", "0", "-838:59:58.9", "-838:59:58.99"),
    ("-123456", "8388608", "-00:00:00.1", "-00:00:00.01"),
    ("8388607", "1", "12:00:00.5", "838:59:59.99"),
    ("0", "5", "-00:20:38.0", "-700:00:00.10"),
];

fn expected(case: usize) -> Value {
    let want = [
        json!([-1, 16_777_215, "-01:00:00.500000", "-01:00:00.500000"]),
        json!([-8_388_608, 0, "-838:59:58.900000", "-838:59:58.990000"]),
        json!([-123_456, 8_388_608, "-00:00:00.100000", "-00:00:00.010000"]),
        json!([8_388_607, 1, "12:00:00.500000", "838:59:59.990000"]),
        json!([0, 5, "-00:20:38", "-700:00:00.100000"]),
    ];
    want[case].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_mediumint_and_negative_fractional_time_follow_as_the_snapshot_reads_them() {
    let f = super::fixture(20, 61).await;
    sqlx::raw_sql(
        "ALTER TABLE message ADD COLUMN m24 MEDIUMINT NULL, ADD COLUMN um24 MEDIUMINT UNSIGNED NULL, \
         ADD COLUMN t1 TIME(1) NULL, ADD COLUMN t2 TIME(2) NULL",
    )
    .execute(&f.pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    for (i, (m24, um24, t1, t2)) in CASES.iter().enumerate() {
        sqlx::raw_sql(&format!(
            "INSERT INTO message (kefu_id, visitor_id, content, m24, um24, t1, t2) \
             VALUES ('agent1', 'v1', 'edge {i}', {m24}, {um24}, '{t1}', '{t2}')"
        ))
        .execute(&f.pool)
        .await
        .unwrap();
    }
    let args = [
        "follow",
        "--until-caught-up",
        "--server-id",
        "5102",
        "--heartbeat-ms",
        "300",
    ];
    let followed = importer.run(&args, Duration::from_secs(60)).await;
    assert!(followed.status.success(), "{followed}");
    // Against the snapshot path's reading of the same rows...
    super::assert_verified(&f, &Target::open(&target_url).await.unwrap()).await;
    // ...and against the values written.
    let raw = stored_raw(&target_url, &f).await;
    for (i, _) in CASES.iter().enumerate() {
        let text = format!("edge {i}");
        let (_, row) = raw
            .iter()
            .find(|(t, _)| *t == text)
            .unwrap_or_else(|| panic!("message {text:?} not stored"));
        let got = json!([row["m24"], row["um24"], row["t1"], row["t2"]]);
        assert_eq!(got, expected(i), "edge {i}");
    }
}

/// Text and `source.raw` of every stored message of visitor v1, read back through protofuse's own store.
async fn stored_raw(store_url: &str, f: &super::Fixture) -> Vec<(String, serde_json::Map<String, Value>)> {
    let store = protofuse_store::open(&protofuse_store::StoreConfig {
        url: store_url.to_owned(),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        sqlite_synchronous: protofuse_store::Synchronous::Normal,
        ..protofuse_store::StoreConfig::default()
    })
    .await
    .unwrap();
    let all = PageRequest {
        limit: PageRequest::MAX_LIMIT,
        ..PageRequest::default()
    };
    let page = store
        .messages(f.mapper.conversation_id("visitor", "v1"), all)
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|m| {
            let text = match &m.content {
                protofuse_model::Content::Text { text } => text.clone(),
                _ => String::new(),
            };
            (text, m.source.raw)
        })
        .collect()
}
