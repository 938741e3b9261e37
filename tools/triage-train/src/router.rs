//! The department router: the same linear model over the same features as the intent model, trained on a
//! store's own history (customer messages labelled with their conversation's department) instead of the seed
//! files. Split by conversation, so no conversation is on both sides; calibrated on its own split; figures per
//! department on the held-out test split. Writes `router.onnx` (the intent model's format, so the server loads
//! it with the same code) and `router.json`.
//!
//! Must never read a store or a file: the caller hands it the examples (`protofuse triage train --from-store`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use protofuse_triage::ROUTER_ELSEWHERE;
use protofuse_triage::eval::{self, Confusion};
use protofuse_triage::features::{self, DEFAULT_DIM, SparseVec};

use crate::data::{self, Example};
use crate::error::TrainError;
use crate::export;
use crate::linear::{self, Linear, softmax};
use crate::settings::SGD;

/// One labelled customer message from the store.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The message text.
    pub text: String,
    /// Its conversation's department, as the store holds it.
    pub department: String,
    /// Its conversation's id: the unit of the split.
    pub conversation: String,
}

/// Training choices a caller may change.
#[derive(Debug, Clone, Copy)]
pub struct RouterOptions {
    /// A department with fewer labelled conversations is left out: its held-out figure would be one or two
    /// conversations' worth of noise, and the model would mostly learn to never predict it.
    pub min_conversations: usize,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self { min_conversations: 10 }
    }
}

/// `router.json`.
#[derive(Debug, Serialize)]
pub struct RouterMetrics {
    /// Written into the model's metadata; changes with the history it was trained on.
    pub version: String,
    /// Departments, in output order.
    pub labels: Vec<String>,
    /// Departments left out, and why.
    pub left_out: BTreeMap<String, String>,
    /// Calibration temperature (fitted on the calibration split, folded into the graph).
    pub temperature: f32,
    /// Examples per split.
    pub examples: BTreeMap<&'static str, usize>,
    /// Conversations per split.
    pub conversations: BTreeMap<&'static str, usize>,
    /// Held-out test accuracy over every message.
    pub accuracy: f64,
    /// Held-out test macro-F1.
    pub macro_f1: f64,
    /// Held-out test expected calibration error.
    pub ece: f64,
    /// Held-out test figures per department.
    pub departments: BTreeMap<String, DepartmentFigures>,
}

/// One department's held-out figures.
#[derive(Debug, Serialize)]
pub struct DepartmentFigures {
    /// Test messages labelled with it.
    pub examples: usize,
    /// Of those, the share routed to it (recall).
    pub accuracy: f64,
    /// Of the test messages routed to it, the share labelled with it.
    pub precision: f64,
}

/// Trains the router on `history` and writes `router.onnx` and `router.json` into `out`.
pub fn train_router(history: Vec<Labelled>, out: &Path, options: RouterOptions) -> Result<RouterMetrics, TrainError> {
    let (examples, left_out) = keep_trainable(history, options);
    let labels: Vec<String> = examples
        .iter()
        .map(|e| e.intent.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.len() < 2 {
        return Err(TrainError::NotEnoughData(
            "fewer than two departments with enough labelled conversations",
        ));
    }
    let digest = digest(&examples);
    let split = data::split(examples, SGD.seed);
    // Validation has no use here (no offset to set, settings are the intent model's): it trains.
    let train: Vec<Example> = split.train.iter().chain(&split.val).cloned().collect();
    if split.calibration.is_empty() || split.test.is_empty() {
        return Err(TrainError::NotEnoughData("the calibration or test split is empty"));
    }
    let encode = |set: &[Example]| -> Vec<(SparseVec, usize)> {
        set.iter()
            .map(|e| {
                let y = labels.iter().position(|l| *l == e.intent).unwrap_or_default();
                (features::features(&e.text, DEFAULT_DIM), y)
            })
            .collect()
    };
    let model = Linear::fit(&encode(&train), DEFAULT_DIM, labels.len(), SGD);
    let score = |set: &[Example]| -> Vec<(Vec<f32>, usize)> {
        encode(set).iter().map(|(x, y)| (model.logits(x), *y)).collect()
    };
    let temperature = linear::fit_temperature(&score(&split.calibration));
    let mut confusion = Confusion::new(&labels);
    let mut confidences = Vec::new();
    for (logits, truth) in score(&split.test) {
        let (best, p) = linear::argmax(&softmax(&logits, temperature));
        confusion.add(truth, best);
        confidences.push((p, best == truth));
    }
    let departments = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let examples: u32 = confusion.counts[i].iter().sum();
            let figures = DepartmentFigures {
                examples: examples as usize,
                accuracy: ratio(confusion.counts[i][i], examples),
                precision: confusion.precision(i),
            };
            (label.clone(), figures)
        })
        .collect();
    let conversations = |set: &[Example]| set.iter().map(|e| &e.group).collect::<BTreeSet<_>>().len();
    let metrics = RouterMetrics {
        version: format!("router-f{}-{digest:08x}", features::VERSION),
        temperature,
        examples: [
            ("train", train.len()),
            ("calibration", split.calibration.len()),
            ("test", split.test.len()),
        ]
        .into(),
        conversations: [
            ("train", conversations(&train)),
            ("calibration", conversations(&split.calibration)),
            ("test", conversations(&split.test)),
        ]
        .into(),
        accuracy: confusion.accuracy(),
        macro_f1: confusion.macro_f1(),
        ece: eval::ece(&confidences),
        departments,
        left_out,
        labels,
    };
    write(out, &model, &metrics)?;
    Ok(metrics)
}

/// The examples the router learns from and is measured on, and the departments left out with why.
///
/// Departments too thin to learn are not dropped: together they become one class, [`ROUTER_ELSEWHERE`], when
/// they have at least two conversations. Without it, a router that knows only Support and Billing is sure a
/// shipping question is one of the two (with two classes one of them is always at least 0.5); with it, the
/// history itself teaches that such messages go elsewhere, and the server keeps the intent's route for them.
fn keep_trainable(history: Vec<Labelled>, options: RouterOptions) -> (Vec<Example>, BTreeMap<String, String>) {
    let mut conversations: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in &history {
        conversations.entry(&l.department).or_default().insert(&l.conversation);
    }
    let mut left_out = BTreeMap::new();
    let mut elsewhere = BTreeSet::new();
    for (department, set) in &conversations {
        if department.contains(',') || *department == ROUTER_ELSEWHERE {
            // The model's metadata lists labels comma-separated, and the catch-all's name is taken.
            left_out.insert((*department).to_owned(), "its name cannot be a label".to_owned());
        } else if set.len() < options.min_conversations {
            left_out.insert(
                (*department).to_owned(),
                format!(
                    "{} labelled conversations, fewer than {}; learned as {ROUTER_ELSEWHERE}",
                    set.len(),
                    options.min_conversations
                ),
            );
            elsewhere.extend(set.iter().copied());
        }
    }
    let catch_all = elsewhere.len() >= 2;
    if !catch_all {
        for why in left_out.values_mut() {
            if let Some(cut) = why.find("; learned as") {
                why.truncate(cut);
            }
        }
    }
    let examples = history
        .into_iter()
        .filter(|l| !features::is_blank(&l.text))
        .filter_map(|l| {
            let label = match left_out.get(&l.department) {
                None => l.department,
                Some(_) if catch_all && !l.department.contains(',') && l.department != ROUTER_ELSEWHERE => {
                    ROUTER_ELSEWHERE.to_owned()
                }
                Some(_) => return None,
            };
            Some(Example {
                lang: language(&l.text).to_owned(),
                text: l.text,
                intent: label,
                group: l.conversation,
                split: None,
            })
        })
        .collect();
    (examples, left_out)
}

/// `zh` when the text holds a CJK ideograph, else `en`: only to stratify the split, so each language's share of a
/// department is the same on both sides.
fn language(text: &str) -> &'static str {
    if text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
        "zh"
    } else {
        "en"
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// FNV-1a over the examples in order: the same history gives the same version.
fn digest(examples: &[Example]) -> u32 {
    examples
        .iter()
        .flat_map(|e| [e.group.as_bytes(), e.intent.as_bytes(), e.text.as_bytes(), b"\n"])
        .flatten()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn write(out: &Path, model: &Linear, metrics: &RouterMetrics) -> Result<(), TrainError> {
    std::fs::create_dir_all(out).map_err(|e| TrainError::Io(out.to_path_buf(), e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        // Written beside and renamed over, so a server reloading meanwhile never reads half a model.
        let partial = out.join(format!(".{name}.partial"));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| TrainError::Io(path, e))
    };
    let json = serde_json::to_string_pretty(metrics).unwrap_or_default() + "\n";
    write("router.json", json.as_bytes())?;
    write(
        "router.onnx",
        &export::encode(model, metrics.temperature, &metrics.labels, &metrics.version),
    )
}

/// The figures as text: overall, then one line per department, then what was left out.
pub fn router_summary(metrics: &RouterMetrics) -> String {
    let mut out = format!(
        "router {} (T = {:.3}): held-out test accuracy {:.4}, macro-F1 {:.4}, ECE {:.4}\n\
         examples: train {}, calibration {}, test {} (conversations: {}, {}, {})\n{:<32} {:>6} {:>9} {:>9}\n",
        metrics.version,
        metrics.temperature,
        metrics.accuracy,
        metrics.macro_f1,
        metrics.ece,
        metrics.examples["train"],
        metrics.examples["calibration"],
        metrics.examples["test"],
        metrics.conversations["train"],
        metrics.conversations["calibration"],
        metrics.conversations["test"],
        "department",
        "n",
        "accuracy",
        "precision"
    );
    for (department, f) in &metrics.departments {
        out.push_str(&format!(
            "{department:<32} {:>6} {:>9.4} {:>9.4}\n",
            f.examples, f.accuracy, f.precision
        ));
    }
    for (department, why) in &metrics.left_out {
        out.push_str(&format!("left out {department}: {why}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(departments: &[(&str, &[&str])], conversations: usize) -> Vec<Labelled> {
        let mut out = Vec::new();
        for (department, phrases) in departments {
            for c in 0..conversations {
                for (i, phrase) in phrases.iter().enumerate() {
                    out.push(Labelled {
                        text: format!("{phrase} order {c} note {i}"),
                        department: (*department).to_owned(),
                        conversation: format!("{department}-{c}"),
                    });
                }
            }
        }
        out
    }

    #[test]
    fn learns_departments_and_leaves_out_the_thin_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = history(
            &[
                ("billing", &["my invoice is wrong", "charged twice on my card"]),
                ("shipping", &["where is my parcel", "the courier never came"]),
            ],
            30,
        );
        data.extend(history(&[("legal", &["gdpr request"])], 3));
        data.push(Labelled {
            text: "x".to_owned(),
            department: "a,b".to_owned(),
            conversation: "odd".to_owned(),
        });
        let metrics = train_router(data, dir.path(), RouterOptions::default()).unwrap();
        assert_eq!(metrics.labels, [ROUTER_ELSEWHERE, "billing", "shipping"]);
        assert!(metrics.accuracy > 0.9, "{}", router_summary(&metrics));
        assert_eq!(metrics.left_out.len(), 2, "{:?}", metrics.left_out);
        assert!(metrics.left_out["legal"].contains("3 labelled conversations, fewer than 10; learned as (other)"));
        let model = protofuse_triage::IntentModel::load(&dir.path().join("router.onnx")).unwrap();
        assert_eq!(model.labels(), [ROUTER_ELSEWHERE, "billing", "shipping"]);
        assert_eq!(model.version(), metrics.version);
    }

    #[test]
    fn one_department_is_not_enough() {
        let dir = tempfile::tempdir().unwrap();
        let data = history(&[("billing", &["my invoice is wrong"])], 30);
        assert!(matches!(
            train_router(data, dir.path(), RouterOptions::default()),
            Err(TrainError::NotEnoughData(_))
        ));
    }
}
