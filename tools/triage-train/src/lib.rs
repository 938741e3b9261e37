//! protofuse-triage-train: trains the triage intent model the server ships. Data files → split by seed group →
//! SGD with settings chosen by grouped cross-validation on the training split (`--search`, `cv`) → temperature on
//! the calibration split (held out, used for nothing else) → figures on the held-out test split per language →
//! `model.onnx` (temperature inside the graph), `metrics.json`, `MODEL_CARD.md`.
//!
//! Deterministic: the same data, seed and binary give the same bytes, so a retrained model can be diffed.
//!
//! Also trains the department router on a store's own history ([`train_router`]), which
//! `protofuse triage train --from-store` calls: the server binary links this library for that command only, so
//! an operator needs no second tool to train on what they imported.
//!
//! Owns the training pipeline; the tokenizer, the model's metadata keys and the evaluation figures belong to
//! `protofuse-triage`, which the server runs, so training and serving share one copy. Must never do I/O other
//! than reading the seed files and writing its outputs (the router's examples come from the caller), and must
//! never compute features or figures of its own.
//!
//! # Layout
//! - `data`: the split by seed group: train, validation, calibration, test (reading the files is
//!   `protofuse_triage::eval::read_jsonl`).
//! - `linear`: multinomial logistic regression, SGD, softmax, the calibration temperature.
//! - `cv`: grouped k-fold cross-validation and the hyperparameter search.
//! - `export`: the ONNX file.
//! - `router`: the department router trained on a store's history.
//! - `card.md`: the model card's template.

mod cv;
mod data;
mod error;
mod export;
mod linear;
mod router;
mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use cv::Row;
pub use error::TrainError;
pub use export::OUTPUT;
pub use linear::Sgd;
pub use router::{DepartmentFigures, Labelled, RouterMetrics, RouterOptions, router_summary, train_router};
pub use settings::SGD;

use data::Example;
use linear::{Linear, softmax};
use protofuse_triage::eval::{self, Bin, Confusion, Figures};
use protofuse_triage::features::{self, DEFAULT_DIM, SparseVec};

/// Everything `metrics.json` holds.
#[derive(Debug, Serialize)]
pub struct Metrics {
    /// The model version written into the ONNX metadata.
    pub version: String,
    /// Feature dimension.
    pub dim: usize,
    /// Intent ids, in output order.
    pub labels: Vec<String>,
    /// SGD settings (chosen by `--search`).
    pub sgd: Settings,
    /// Calibration temperature, fitted on the calibration split (minimum negative log-likelihood) and folded into
    /// the model's graph, so the server applies exactly the calibration measured here.
    pub temperature: f32,
    /// The temperature the out-of-fold predictions would give (how the model was calibrated before the
    /// calibration split), for the comparison in `test_ece_compared`.
    pub out_of_fold_temperature: f32,
    /// Downward shift of the `human` bias (precision rule).
    pub human_offset: f32,
    /// Examples per split.
    pub examples: BTreeMap<&'static str, usize>,
    /// Seed groups per split.
    pub groups: BTreeMap<&'static str, usize>,
    /// Out-of-fold figures of the grouped cross-validation on the training split (first-batch groups only),
    /// calibrated, with the `human` offset.
    pub cross_validation: BTreeMap<String, Figures>,
    /// Validation figures per language (and `all`).
    pub validation: BTreeMap<String, Figures>,
    /// Calibration-split figures per language (and `all`): the data the temperature was fitted on, so its ECE is
    /// in-sample.
    pub calibration: BTreeMap<String, Figures>,
    /// Held-out test figures per language (and `all`), calibrated.
    pub test: BTreeMap<String, Figures>,
    /// Held-out test ECE per language under other temperatures, for comparison with `test`: `uncalibrated`
    /// (T = 1) and `out_of_fold` ([`Metrics::out_of_fold_temperature`]).
    pub test_ece_compared: BTreeMap<&'static str, BTreeMap<String, f64>>,
    /// Figures per language (and `all`, no ECE: half of it is the temperature's own data) on the whole held-out
    /// 15 % (test and calibration together): the split the test figures were reported on before calibration had
    /// its own half, so accuracy and `human` precision can be compared with the models before it.
    pub held_out: BTreeMap<String, Figures>,
    /// The reliability table of the held-out test split (all languages), calibrated.
    pub test_reliability: Vec<Bin>,
}

/// The SGD settings as recorded in `metrics.json`.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Passes over the training set.
    pub epochs: usize,
    /// Initial learning rate.
    pub learning_rate: f32,
    /// L2 penalty.
    pub l2: f32,
    /// Cross-validation folds (selection, and the `human` offset).
    pub folds: usize,
}

/// `train --search`: the cross-validation table over the grid in `cv` and the winner, from the training split
/// only (no model is written, nothing is measured on validation or test). `progress` sees each row as it comes.
pub fn search(data: &Path, progress: impl FnMut(&Row)) -> Result<String, TrainError> {
    let (train, labels) = training_split(data)?;
    let (rows, winner) = cv::search(&train, &labels, SGD.seed, progress);
    let w = &rows[winner];
    Ok(format!(
        "{}
winner (best min(en, zh); within {} of it: smallest dim, then fewest epochs): dim 2^{}, epochs {}, \
         learning rate {}, l2 {:e}\n",
        cv::table(&rows, winner),
        cv::TIE,
        w.dim.trailing_zeros(),
        w.sgd.epochs,
        w.sgd.learning_rate,
        w.sgd.l2
    ))
}

/// `train --cv`: the out-of-fold accuracy of the current settings ([`SGD`], [`DEFAULT_DIM`]) and features, from the
/// training split only, as one row of the `--search` table. Seconds, where `--search` takes minutes: the way to
/// compare a change of the features.
pub fn cross_validate(data: &Path) -> Result<String, TrainError> {
    let (train, labels) = training_split(data)?;
    let row = cv::evaluate(&train, &labels, DEFAULT_DIM, SGD);
    Ok(cv::table(&[row], usize::MAX))
}

/// `train --cv-errors FILE`: the same cross-validation as [`cross_validate`], and its out-of-fold
/// misclassifications written to `file` as JSONL (`cv::Miss`: text, gold intent, predicted, confidence, group,
/// lang), for writing new seeds from the training split's errors instead of validation's. Writes no model.
pub fn cv_errors(data: &Path, file: &Path) -> Result<String, TrainError> {
    let (train, labels) = training_split(data)?;
    let (row, misses) = cv::misses(&train, &labels, DEFAULT_DIM, SGD);
    let mut jsonl = String::new();
    let mut per_lang: BTreeMap<&str, usize> = BTreeMap::new();
    for miss in &misses {
        jsonl.push_str(&serde_json::to_string(miss).unwrap_or_default());
        jsonl.push('\n');
        *per_lang.entry(miss.lang).or_default() += 1;
    }
    std::fs::write(file, jsonl).map_err(|e| TrainError::Io(file.to_path_buf(), e))?;
    let counts: Vec<String> = per_lang.iter().map(|(lang, n)| format!("{lang} {n}")).collect();
    Ok(format!(
        "{}wrote {} out-of-fold misclassifications ({}) to {}\n",
        cv::table(&[row], usize::MAX),
        misses.len(),
        counts.join(", "),
        file.display()
    ))
}

/// The training split of the data in `data` and the labels, for the commands that look at nothing else
/// (`--search`, `--cv`, `--cv-errors`).
fn training_split(data: &Path) -> Result<(Vec<Example>, Vec<String>), TrainError> {
    let (examples, _) = read_dir(data)?;
    let labels = labels(&examples);
    let split = data::split(examples, SGD.seed);
    if split.train.is_empty() {
        return Err(TrainError::NotEnoughData("the training split is empty"));
    }
    Ok((split.train, labels))
}

fn labels(examples: &[Example]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for e in examples {
        if !labels.contains(&e.intent) {
            labels.push(e.intent.clone());
        }
    }
    labels
}

/// `size` of each split, by name.
fn split_sizes(split: &data::Split, size: impl Fn(&[Example]) -> usize) -> [(&'static str, usize); 4] {
    [
        ("train", size(&split.train)),
        ("validation", size(&split.val)),
        ("calibration", size(&split.calibration)),
        ("test", size(&split.test)),
    ]
}

/// Conversation groups in `set`.
fn count_groups(set: &[Example]) -> usize {
    set.iter()
        .map(|e| &e.group)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Trains on every `*.jsonl` under `data` and writes the model, metrics and card into `out`.
pub fn train(data: &Path, out: &Path) -> Result<Metrics, TrainError> {
    let (examples, digest) = read_dir(data)?;
    let labels = labels(&examples);
    let split = data::split(examples, SGD.seed);
    if split.train.is_empty() || split.val.is_empty() || split.calibration.is_empty() || split.test.is_empty() {
        return Err(TrainError::NotEnoughData("a split is empty"));
    }
    let encode = |set: &[Example]| -> Vec<(SparseVec, usize)> {
        let index = |intent: &str| labels.iter().position(|l| l == intent).unwrap_or_default();
        set.iter()
            .map(|e| (features::features(&e.text, DEFAULT_DIM), index(&e.intent)))
            .collect()
    };
    let (train_x, val_x) = (encode(&split.train), encode(&split.val));
    let (calibration_x, test_x) = (encode(&split.calibration), encode(&split.test));
    // Out-of-fold predictions of the same settings: each first-batch training group scored by the fold model
    // that never saw it. They set the `human` offset with validation; they no longer calibrate (see `data::split`).
    let fold = cv::folds(&split.train, cv::FOLDS, SGD.seed);
    let oof = cv::out_of_fold(&train_x, &fold, DEFAULT_DIM, labels.len(), SGD, &[SGD.epochs]);
    let (oof_set, mut oof_scored): (Vec<Example>, Vec<(Vec<f32>, usize)>) = split
        .train
        .iter()
        .zip(&train_x)
        .zip(oof.into_iter().flatten())
        .filter_map(|((e, (_, y)), l)| Some((e.clone(), (l?, *y))))
        .unzip();
    let mut model = Linear::fit(&train_x, DEFAULT_DIM, labels.len(), SGD);
    let score = |model: &Linear, set: &[(SparseVec, usize)]| -> Vec<(Vec<f32>, usize)> {
        set.iter().map(|(x, y)| (model.logits(x), *y)).collect()
    };
    let mut offset = 0.0;
    if let Some(human) = labels.iter().position(|l| l == "human") {
        let val_scored = score(&model, &val_x);
        offset = human_offset(human, &[(&split.val, &val_scored), (&oof_set, &oof_scored)]);
        model.b[human] += offset;
        oof_scored.iter_mut().for_each(|(l, _)| l[human] += offset);
    }
    let (val_scored, test_scored) = (score(&model, &val_x), score(&model, &test_x));
    // The final model (offset included) on groups nothing else has seen: the temperature the server applies.
    let calibration_scored = score(&model, &calibration_x);
    let temperature = linear::fit_temperature(&calibration_scored);
    let out_of_fold_temperature = linear::fit_temperature(&oof_scored);
    let test_ece = |t: f32| -> BTreeMap<String, f64> {
        by_language(&labels, &split.test, &test_scored, t)
            .into_iter()
            .map(|(lang, f)| (lang, f.ece.unwrap_or_default()))
            .collect()
    };
    let test_ece_compared = [
        ("uncalibrated", test_ece(1.0)),
        ("out_of_fold", test_ece(out_of_fold_temperature)),
    ]
    .into();
    let test_reliability = eval::reliability(&confidences(&test_scored, temperature));
    let held_out: Vec<Example> = split.test.iter().chain(&split.calibration).cloned().collect();
    let held_out_scored: Vec<(Vec<f32>, usize)> = test_scored.iter().chain(&calibration_scored).cloned().collect();
    let mut held_out = by_language(&labels, &held_out, &held_out_scored, temperature);
    held_out.values_mut().for_each(|f| f.ece = None);
    let version = format!("lr{}-f{}-{digest:08x}", DEFAULT_DIM.trailing_zeros(), features::VERSION);
    let metrics = Metrics {
        version,
        dim: DEFAULT_DIM,
        sgd: Settings {
            epochs: SGD.epochs,
            learning_rate: SGD.learning_rate,
            l2: SGD.l2,
            folds: cv::FOLDS,
        },
        temperature,
        out_of_fold_temperature,
        human_offset: offset,
        examples: split_sizes(&split, <[Example]>::len).into(),
        groups: split_sizes(&split, count_groups).into(),
        cross_validation: by_language(&labels, &oof_set, &oof_scored, temperature),
        validation: by_language(&labels, &split.val, &val_scored, temperature),
        calibration: by_language(&labels, &split.calibration, &calibration_scored, temperature),
        test: by_language(&labels, &split.test, &test_scored, temperature),
        test_ece_compared,
        held_out,
        test_reliability,
        labels,
    };
    write_outputs(out, &model, &metrics)?;
    Ok(metrics)
}

/// Handing a conversation to a person by mistake costs an agent's time, so `human` must be precise: the
/// smallest downward shift of its bias that brings `human` precision to `HUMAN_PRECISION` in every language of
/// every scored set given (validation, by the final model, and the out-of-fold CV predictions).
const HUMAN_PRECISION: f64 = 0.97;

type Scored<'a> = (&'a [Example], &'a [(Vec<f32>, usize)]);

fn human_offset(human: usize, sets: &[Scored<'_>]) -> f32 {
    let precise = |offset: f32, (set, scored): Scored<'_>, lang: &str| {
        let (mut predicted, mut right) = (0u32, 0u32);
        for (e, (l, truth)) in set.iter().zip(scored) {
            let mut l = l.clone();
            l[human] += offset;
            if e.lang == lang && linear::argmax(&l).0 == human {
                predicted += 1;
                right += u32::from(*truth == human);
            }
        }
        predicted == 0 || f64::from(right) / f64::from(predicted) >= HUMAN_PRECISION
    };
    let mut langs: Vec<&str> = sets
        .iter()
        .flat_map(|(set, _)| set.iter().map(|e| e.lang.as_str()))
        .collect();
    langs.sort_unstable();
    langs.dedup();
    (0..=40)
        .map(|i| -0.1 * i as f32)
        .find(|&o| sets.iter().all(|&set| langs.iter().all(|lang| precise(o, set, lang))))
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
        examples.extend(eval::read_jsonl(file)?);
    }
    if examples.is_empty() {
        return Err(TrainError::NotEnoughData("no examples in *.jsonl"));
    }
    Ok((examples, digest))
}

/// (confidence of the prediction, was it right) of each scored example at `temperature`.
fn confidences(scored: &[(Vec<f32>, usize)], temperature: f32) -> Vec<(f32, bool)> {
    scored
        .iter()
        .map(|(logits, truth)| {
            let (best, p) = linear::argmax(&softmax(logits, temperature));
            (p, best == *truth)
        })
        .collect()
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
                let (best, p) = linear::argmax(&probs);
                confusion.add(*truth, best);
                confidences.push((p, best == *truth));
            }
            let figures = confusion.figures(Some(&confidences));
            (lang, figures)
        })
        .collect()
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
        "model {} (dim {}, epochs {}, lr {}, l2 {:e}, T = {:.3}, human offset {:.1})\n{:<12} {:<4} {:>6} {:>8} {:>8} {:>8} {:>6}\n",
        metrics.version,
        metrics.dim,
        metrics.sgd.epochs,
        metrics.sgd.learning_rate,
        metrics.sgd.l2,
        metrics.temperature,
        metrics.human_offset,
        "split",
        "lang",
        "n",
        "accuracy",
        "macro-f1",
        "human-p",
        "ece"
    );
    for (split, figures) in [
        ("cv-oof", &metrics.cross_validation),
        ("validation", &metrics.validation),
        ("calibration", &metrics.calibration),
        ("test", &metrics.test),
    ] {
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
    for (name, temperature) in [("uncalibrated", 1.0), ("out_of_fold", metrics.out_of_fold_temperature)] {
        let ece = &metrics.test_ece_compared[name];
        let langs: Vec<String> = ece.iter().map(|(lang, e)| format!("{lang} {e:.4}")).collect();
        out.push_str(&format!(
            "test ece with T = {temperature:.3} ({name}): {}\n",
            langs.join(", ")
        ));
    }
    for (lang, f) in &metrics.held_out {
        out.push_str(&format!(
            "held-out (test + calibration) {lang:<4} {:>6} {:>8.4} {:>8.4} {:>8.4}\n",
            f.examples, f.accuracy, f.macro_f1, f.human_precision
        ));
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
        folds = metrics.sgd.folds,
        settings = format!(
            "dim {}, {} epochs, learning rate {}, L2 {:e}",
            metrics.dim, metrics.sgd.epochs, metrics.sgd.learning_rate, metrics.sgd.l2
        ),
        summary = summary(metrics),
        reliability = eval::reliability_table(&metrics.test_reliability),
    )
}
