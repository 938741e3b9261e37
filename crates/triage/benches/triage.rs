//! Built-in triage on one core: per-message latency (p50/p99) and messages/s of the full decision (rules →
//! model → routing → knowledge base → hand-off), against baselines measured in the same run: feature extraction
//! alone and a rules-only pass. Also the model's size and load time.
//!
//! Run: `cargo bench -p protofuse-triage --bench triage` (env: `BENCH_SECONDS` per target, default 5;
//! `BENCH_OTHER_MODEL=path.onnx` adds the full decision with that model, e.g. an older dense one, to the same run).
//! Messages are the texts of `config/triage/data/train.jsonl`, cycled.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use protofuse_triage::features::{DEFAULT_DIM, features, normalize};
use protofuse_triage::{ConversationContext, Triage, TriageConfig};

struct Outcome {
    name: &'static str,
    messages: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

/// Runs `f` over the messages, one at a time, for `budget`; latency in nanoseconds.
fn measure(name: &'static str, texts: &[String], budget: Duration, mut f: impl FnMut(&str)) -> Outcome {
    for text in texts.iter().take(500) {
        f(text);
    }
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    let mut messages = 0u64;
    while started.elapsed() < budget {
        for text in texts.iter().take(1000) {
            let t = Instant::now();
            f(text);
            latency.record(t.elapsed().as_nanos() as u64).unwrap();
        }
        messages += texts.len().min(1000) as u64;
    }
    Outcome {
        name,
        messages,
        seconds: started.elapsed().as_secs_f64(),
        latency,
    }
}

fn main() {
    // The repository root, where the shipped model and data live (this crate is `crates/triage`).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let budget = Duration::from_secs(seconds);
    let config = TriageConfig {
        model: root.join("config/triage/model.onnx"),
        knowledge: Some(root.join("config/triage/knowledge.toml")),
        ..TriageConfig::default()
    };
    let started = Instant::now();
    let triage = Triage::load(&config).expect("the shipped model loads");
    let load = started.elapsed();
    let data = std::fs::read_to_string(root.join("config/triage/data/train.jsonl")).unwrap();
    let mut texts: Vec<String> = data
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    // Interleave languages and intents instead of running one block of similar messages.
    let n = texts.len();
    texts = (0..n).map(|i| texts[(i * 7919) % n].clone()).collect();
    let ctx = ConversationContext::default();
    let rules_only = protofuse_triage::Rules::compile(&config.rules).unwrap();
    let other = std::env::var_os("BENCH_OTHER_MODEL").map(|path| {
        Triage::load(&TriageConfig {
            model: path.into(),
            ..config.clone()
        })
        .expect("BENCH_OTHER_MODEL loads")
    });
    let mut outcomes = vec![
        measure("features only (baseline)", &texts, budget, |t| {
            black_box(features(t, DEFAULT_DIM));
        }),
        measure("rules only", &texts, budget, |t| {
            black_box(rules_only.first_match(t, &normalize(t)).is_some());
        }),
        measure("model only (features + model)", &texts, budget, |t| {
            black_box(triage.classify(t));
        }),
        measure("full triage decision", &texts, budget, |t| {
            black_box(triage.triage(t, &ctx));
        }),
    ];
    if let Some(other) = &other {
        outcomes.push(measure("full decision, BENCH_OTHER_MODEL", &texts, budget, |t| {
            black_box(other.triage(t, &ctx));
        }));
    }
    report(&triage, load, &outcomes);
}

fn report(triage: &Triage, load: Duration, outcomes: &[Outcome]) {
    let model = triage.model();
    println!(
        "model {}: {:.2} MB, dim {}, {} labels; Triage::load {:.1} ms (model decode + optimise {:.1} ms)\n",
        model.version(),
        model.size_bytes() as f64 / 1e6,
        model.dim(),
        model.labels().len(),
        load.as_secs_f64() * 1e3,
        model.load_time().as_secs_f64() * 1e3
    );
    println!("| target | msgs/s (1 core) | p50 µs | p99 µs | max µs | p50 vs baseline | p99 vs baseline |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let base = &outcomes[0].latency;
    for o in outcomes {
        let us = |q: f64| o.latency.value_at_quantile(q) as f64 / 1e3;
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1}x | {:.1}x |",
            o.name,
            o.messages as f64 / o.seconds,
            us(0.5),
            us(0.99),
            o.latency.max() as f64 / 1e3,
            o.latency.value_at_quantile(0.5) as f64 / base.value_at_quantile(0.5) as f64,
            o.latency.value_at_quantile(0.99) as f64 / base.value_at_quantile(0.99) as f64
        );
    }
}
