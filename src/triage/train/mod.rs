//! `protofuse triage train`: data files → split by seed group → SGD → temperature on validation → figures on
//! the held-out test split per language → `model.onnx`, `metrics.json`, `MODEL_CARD.md`.
//!
//! Deterministic: the same data, seed and binary give the same bytes, so a retrained model can be diffed.

pub mod data;
mod export;
pub mod linear;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use export::{INPUT, META_DIM, META_LABELS, META_VERSION, OUTPUT};

use crate::triage::features::{self, DEFAULT_DIM, SparseVec};
use data::Example;
use linear::{Linear, Sgd, softmax};
use metrics::{Confusion, Figures};

/// Settings chosen by validation accuracy on the shipped data (never by the test split).
const SGD: Sgd = Sgd {
    epochs: 30,
    learning_rate: 1.0,
    l2: 1e-6,
    seed: 20_261_201,
};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A data file or output could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A data line is not `{"text", "intent", ...}`.
    #[error("{file}:{line}: not a labelled example")]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Nothing to train on, or a split came out empty.
    #[error("not enough data: {0}")]
    NotEnoughData(&'static str),
}

/// Everything `metrics.json` holds.
#[derive(Debug, Serialize)]
pub struct Metrics {
    /// The model version written into the ONNX metadata.
    pub version: String,
    /// Feature dimension.
    pub dim: usize,
    /// Intent ids, in output order.
    pub labels: Vec<String>,
    /// Calibration temperature fitted on validation.
    pub temperature: f32,
    /// Examples per split.
    pub examples: BTreeMap<&'static str, usize>,
    /// Seed groups per split.
    pub groups: BTreeMap<&'static str, usize>,
    /// Validation figures per language (and `all`).
    pub validation: BTreeMap<String, Figures>,
    /// Held-out test figures per language (and `all`), calibrated.
    pub test: BTreeMap<String, Figures>,
    /// Held-out ECE before calibration (T = 1), for comparison.
    pub test_ece_uncalibrated: BTreeMap<String, f64>,
}

/// Trains on every `*.jsonl` under `data` and writes the model, metrics and card into `out`.
pub fn train(data: &Path, out: &Path) -> Result<Metrics, TrainError> {
    let (examples, digest) = read_dir(data)?;
    let mut labels: Vec<String> = Vec::new();
    for e in &examples {
        if !labels.contains(&e.intent) {
            labels.push(e.intent.clone());
        }
    }
    let split = data::split(examples, SGD.seed);
    if split.train.is_empty() || split.val.is_empty() || split.test.is_empty() {
        return Err(TrainError::NotEnoughData("a split is empty"));
    }
    let encode = |set: &[Example]| -> Vec<(SparseVec, usize)> {
        let index = |intent: &str| labels.iter().position(|l| l == intent).unwrap_or_default();
        set.iter()
            .map(|e| (features::features(&e.text, DEFAULT_DIM), index(&e.intent)))
            .collect()
    };
    let (train_x, val_x, test_x) = (encode(&split.train), encode(&split.val), encode(&split.test));
    let mut model = Linear::fit(&train_x, DEFAULT_DIM, labels.len(), SGD);
    if let Some(human) = labels.iter().position(|l| l == "human") {
        let offset = human_offset(&model, human, &split.val, &val_x);
        model.b[human] += offset;
    }
    let score = |set: &[(SparseVec, usize)]| -> Vec<(Vec<f32>, usize)> {
        set.iter().map(|(x, y)| (model.logits(x), *y)).collect()
    };
    let (val_scored, test_scored) = (score(&val_x), score(&test_x));
    let temperature = linear::fit_temperature(&val_scored);
    let version = format!("lr{}-{digest:08x}", DEFAULT_DIM.trailing_zeros());
    let count_groups = |set: &[Example]| {
        set.iter()
            .map(|e| &e.group)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let metrics = Metrics {
        version,
        dim: DEFAULT_DIM,
        temperature,
        examples: [
            ("train", split.train.len()),
            ("validation", split.val.len()),
            ("test", split.test.len()),
        ]
        .into(),
        groups: [
            ("train", count_groups(&split.train)),
            ("validation", count_groups(&split.val)),
            ("test", count_groups(&split.test)),
        ]
        .into(),
        validation: by_language(&labels, &split.val, &val_scored, temperature),
        test: by_language(&labels, &split.test, &test_scored, temperature),
        test_ece_uncalibrated: by_language(&labels, &split.test, &test_scored, 1.0)
            .into_iter()
            .map(|(lang, f)| (lang, f.ece.unwrap_or_default()))
            .collect(),
        labels,
    };
    write_outputs(out, &model, &metrics)?;
    Ok(metrics)
}

/// Handing a conversation to a person by mistake costs an agent's time, so `human` must be precise: the
/// smallest downward shift of its bias that brings validation precision to `HUMAN_PRECISION` in every language.
const HUMAN_PRECISION: f64 = 0.97;

fn human_offset(model: &Linear, human: usize, val: &[Example], val_x: &[(SparseVec, usize)]) -> f32 {
    let logits: Vec<Vec<f32>> = val_x.iter().map(|(x, _)| model.logits(x)).collect();
    let precise = |offset: f32, lang: &str| {
        let (mut predicted, mut right) = (0u32, 0u32);
        for ((e, l), (_, truth)) in val.iter().zip(&logits).zip(val_x) {
            let mut l = l.clone();
            l[human] += offset;
            if e.lang == lang && argmax(&l).0 == human {
                predicted += 1;
                right += u32::from(*truth == human);
            }
        }
        predicted == 0 || f64::from(right) / f64::from(predicted) >= HUMAN_PRECISION
    };
    let mut langs: Vec<&str> = val.iter().map(|e| e.lang.as_str()).collect();
    langs.sort_unstable();
    langs.dedup();
    (0..=40)
        .map(|i| -0.1 * i as f32)
        .find(|&o| langs.iter().all(|lang| precise(o, lang)))
        .unwrap_or(-4.0)
}

/// Reads the data files in name order, with an FNV digest of their bytes (part of the version).
fn read_dir(dir: &Path) -> Result<(Vec<Example>, u32), TrainError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::Io(dir.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut examples = Vec::new();
    let mut digest: u32 = 0x811c_9dc5;
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| TrainError::Io(file.clone(), e))?;
        digest = bytes
            .iter()
            .fold(digest, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        examples.extend(data::read_jsonl(file)?);
    }
    if examples.is_empty() {
        return Err(TrainError::NotEnoughData("no examples in *.jsonl"));
    }
    Ok((examples, digest))
}

fn by_language(
    labels: &[String],
    set: &[Example],
    scored: &[(Vec<f32>, usize)],
    temperature: f32,
) -> BTreeMap<String, Figures> {
    let mut langs: Vec<String> = set.iter().map(|e| e.lang.clone()).collect();
    langs.sort();
    langs.dedup();
    langs.push("all".to_owned());
    langs
        .into_iter()
        .map(|lang| {
            let mut confusion = Confusion::new(labels);
            let mut confidences = Vec::new();
            for (e, (logits, truth)) in set.iter().zip(scored) {
                if lang != "all" && e.lang != lang {
                    continue;
                }
                let probs = softmax(logits, temperature);
                let (best, p) = argmax(&probs);
                confusion.add(*truth, best);
                confidences.push((p, best == *truth));
            }
            let figures = confusion.figures(Some(&confidences));
            (lang, figures)
        })
        .collect()
}

/// Index and value of the largest probability.
pub fn argmax(probs: &[f32]) -> (usize, f32) {
    probs
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

fn write_outputs(out: &Path, model: &Linear, metrics: &Metrics) -> Result<(), TrainError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| TrainError::Io(path, e))
    };
    std::fs::create_dir_all(out).map_err(|e| TrainError::Io(out.to_path_buf(), e))?;
    write(
        "model.onnx",
        &export::encode(model, metrics.temperature, &metrics.labels, &metrics.version),
    )?;
    let json = serde_json::to_string_pretty(metrics).unwrap_or_default() + "\n";
    write("metrics.json", json.as_bytes())?;
    write("MODEL_CARD.md", card(metrics).as_bytes())
}

/// The figures as a text table, one line per split and language.
pub fn summary(metrics: &Metrics) -> String {
    let mut out = format!(
        "model {} (dim {}, T = {:.3})\n{:<12} {:<4} {:>6} {:>8} {:>8} {:>8} {:>6}\n",
        metrics.version,
        metrics.dim,
        metrics.temperature,
        "split",
        "lang",
        "n",
        "accuracy",
        "macro-f1",
        "human-p",
        "ece"
    );
    for (split, figures) in [("validation", &metrics.validation), ("test", &metrics.test)] {
        for (lang, f) in figures {
            out.push_str(&format!(
                "{split:<12} {lang:<4} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>6.4}\n",
                f.examples,
                f.accuracy,
                f.macro_f1,
                f.human_precision,
                f.ece.unwrap_or_default()
            ));
        }
    }
    out
}

fn card(metrics: &Metrics) -> String {
    format!(
        include_str!("card.md"),
        version = metrics.version,
        labels = metrics.labels.join(", "),
        dim = metrics.dim,
        examples = serde_json::to_string(&metrics.examples).unwrap_or_default(),
        groups = serde_json::to_string(&metrics.groups).unwrap_or_default(),
        summary = summary(metrics),
    )
}
