//! Grouped k-fold cross-validation over the training split, and the small hyperparameter search behind
//! `protofuse-triage-train --search`.
//!
//! The validation split is a poor guide for choices: later seed batches were written from its errors. So the
//! settings are chosen here, on the training split alone: its first-batch seed groups are dealt into folds
//! (stratified by language and intent, never splitting a group), and each fold's model is trained on the other
//! folds plus every pinned example (later batches, vocabulary) and measured on the fold's held-out first-batch
//! groups only, the same kind of data as the test split. Deterministic: seeded order, no clock. Must never look at
//! the validation or test split.

use std::collections::BTreeMap;

use serde::Serialize;

use protofuse_triage::features::{self, SparseVec};

use super::data::{Example, mix};
use super::linear::{Linear, Sgd, fit_temperature, softmax};

/// Folds of the cross-validation.
pub(crate) const FOLDS: usize = 5;

/// The grid `--search` tries: every dimension × learning rate × L2, each scored after every epoch count in
/// `EPOCHS` (one run per setting: the learning-rate schedule depends only on the step).
pub(crate) const DIMS: [usize; 2] = [1 << 14, 1 << 16];
/// Learning rates tried.
pub(crate) const LEARNING_RATES: [f32; 3] = [0.5, 1.0, 2.0];
/// L2 penalties tried.
pub(crate) const L2S: [f32; 5] = [1e-6, 1e-5, 1e-4, 3e-4, 1e-3];
/// Epoch counts scored.
pub(crate) const EPOCHS: [usize; 4] = [10, 20, 30, 50];
/// Settings within this much of the best min(en, zh) CV accuracy count as tied (about the noise between settings);
/// among them the smallest dimension wins (latency, size), then the fewest epochs, then the higher accuracy.
pub(crate) const TIE: f64 = 0.002;

/// The fold each training example is held out in; `None` for pinned examples (always trained on, never
/// measured). Within each (language, intent) the groups are ordered by a seeded hash and dealt round-robin.
pub(crate) fn folds(train: &[Example], k: usize, seed: u64) -> Vec<Option<usize>> {
    let pinned = |e: &Example| e.split.as_deref() == Some("train");
    let mut strata: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for e in train.iter().filter(|e| !pinned(e)) {
        let groups = strata.entry((&e.lang, &e.intent)).or_default();
        if !groups.contains(&e.group.as_str()) {
            groups.push(&e.group);
        }
    }
    let mut fold_of: BTreeMap<&str, usize> = BTreeMap::new();
    for groups in strata.values_mut() {
        groups.sort_by_key(|g| mix(seed ^ 0xf01d, g));
        for (i, g) in groups.iter().enumerate() {
            fold_of.insert(g, i % k);
        }
    }
    train
        .iter()
        .map(|e| {
            if pinned(e) {
                None
            } else {
                fold_of.get(e.group.as_str()).copied()
            }
        })
        .collect()
}

/// One fold's held-out `(example index, logits)` after one checkpoint.
type Held = Vec<(usize, Vec<f32>)>;

/// Out-of-fold logits after each epoch count in `checkpoints`: `result[c][i]` is example `i`'s logits from the
/// model that never saw its group (after `checkpoints[c]` epochs), `None` for pinned examples. Folds run on up to
/// two threads; the result does not depend on the thread count.
pub(crate) fn out_of_fold(
    x: &[(SparseVec, usize)],
    fold: &[Option<usize>],
    dim: usize,
    classes: usize,
    sgd: Sgd,
    checkpoints: &[usize],
) -> Vec<Vec<Option<Vec<f32>>>> {
    let k = fold.iter().flatten().max().map_or(0, |m| m + 1);
    let run = |f: usize| {
        let train: Vec<usize> = (0..x.len()).filter(|&i| fold[i] != Some(f)).collect();
        let held: Vec<usize> = (0..x.len()).filter(|&i| fold[i] == Some(f)).collect();
        let epochs = checkpoints.iter().copied().max().unwrap_or(sgd.epochs);
        let mut scored: Vec<Held> = Vec::new();
        Linear::fit_subset(x, train, dim, classes, Sgd { epochs, ..sgd }, |epoch, model| {
            if checkpoints.contains(&epoch) {
                scored.push(held.iter().map(|&i| (i, model.logits(&x[i].0))).collect());
            }
        });
        scored
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 2);
    let per_fold: Vec<Vec<Held>> = std::thread::scope(|s| {
        let run = &run;
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t..k).step_by(threads).map(|f| (f, run(f))).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        all.sort_by_key(|(f, _)| *f);
        all.into_iter().map(|(_, s)| s).collect()
    });
    let mut out = vec![vec![None; x.len()]; checkpoints.len()];
    for fold_scores in per_fold {
        for (c, scored) in fold_scores.into_iter().enumerate() {
            for (i, logits) in scored {
                out[c][i] = Some(logits);
            }
        }
    }
    out
}

/// One row of the search table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Feature dimension.
    pub dim: usize,
    /// The SGD settings (epochs included).
    pub sgd: Sgd,
    /// Out-of-fold accuracy, English.
    pub en: f64,
    /// Out-of-fold accuracy, Chinese.
    pub zh: f64,
    /// Standard deviation of the per-fold accuracy (both languages), for the noise.
    pub fold_sd: f64,
}

impl Row {
    /// The selection criterion: the worse language.
    pub fn score(&self) -> f64 {
        self.en.min(self.zh)
    }
}

/// Runs the grid and returns every row (in grid order) and the index of the winner.
pub(crate) fn search(
    train: &[Example],
    labels: &[String],
    seed: u64,
    mut progress: impl FnMut(&Row),
) -> (Vec<Row>, usize) {
    let fold = folds(train, FOLDS, seed);
    let index = |intent: &str| labels.iter().position(|l| l == intent).unwrap_or_default();
    let mut rows = Vec::new();
    for dim in DIMS {
        let x: Vec<(SparseVec, usize)> = train
            .iter()
            .map(|e| (features::features(&e.text, dim), index(&e.intent)))
            .collect();
        for learning_rate in LEARNING_RATES {
            for l2 in L2S {
                let sgd = Sgd {
                    epochs: 0,
                    learning_rate,
                    l2,
                    seed,
                };
                let oof = out_of_fold(&x, &fold, dim, labels.len(), sgd, &EPOCHS);
                for (epochs, logits) in EPOCHS.iter().zip(&oof) {
                    let row = score(train, &x, &fold, logits, dim, Sgd { epochs: *epochs, ..sgd });
                    progress(&row);
                    rows.push(row);
                }
            }
        }
    }
    let winner = choose(&rows);
    (rows, winner)
}

/// One row: the out-of-fold accuracy of `sgd` at `dim` (the row `search` would print for these settings).
pub(crate) fn evaluate(train: &[Example], labels: &[String], dim: usize, sgd: Sgd) -> Row {
    evaluate_logits(train, labels, dim, sgd).0
}

/// The row of [`evaluate`] and the out-of-fold logits behind it (`None` for pinned examples).
fn evaluate_logits(train: &[Example], labels: &[String], dim: usize, sgd: Sgd) -> (Row, Vec<Option<Vec<f32>>>) {
    let fold = folds(train, FOLDS, sgd.seed);
    let index = |intent: &str| labels.iter().position(|l| l == intent).unwrap_or_default();
    let x: Vec<(SparseVec, usize)> = train
        .iter()
        .map(|e| (features::features(&e.text, dim), index(&e.intent)))
        .collect();
    let mut oof = out_of_fold(&x, &fold, dim, labels.len(), sgd, &[sgd.epochs]);
    let logits = oof.swap_remove(0);
    (score(train, &x, &fold, &logits, dim, sgd), logits)
}

/// One out-of-fold misclassification: a held-out first-batch training example and what the fold model that
/// never saw its group predicted. A line of `protofuse-triage-train --cv-errors FILE`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Miss<'a> {
    /// The message.
    pub(crate) text: &'a str,
    /// The gold intent.
    pub(crate) intent: &'a str,
    /// The predicted intent.
    pub(crate) predicted: &'a str,
    /// Probability of `predicted`, calibrated with a temperature fitted on the same out-of-fold predictions.
    pub(crate) confidence: f32,
    /// Seed group.
    pub(crate) group: &'a str,
    /// `zh` or `en`.
    pub(crate) lang: &'a str,
}

/// The row of [`evaluate`] and every out-of-fold misclassification behind it, in data order. Training split
/// only: nothing here sees validation or test.
pub(crate) fn misses<'a>(train: &'a [Example], labels: &'a [String], dim: usize, sgd: Sgd) -> (Row, Vec<Miss<'a>>) {
    let (row, logits) = evaluate_logits(train, labels, dim, sgd);
    let index = |intent: &str| labels.iter().position(|l| l == intent).unwrap_or_default();
    let scored: Vec<(&Example, Vec<f32>)> = train.iter().zip(logits).filter_map(|(e, l)| Some((e, l?))).collect();
    let calibration: Vec<(Vec<f32>, usize)> = scored.iter().map(|(e, l)| (l.clone(), index(&e.intent))).collect();
    let temperature = fit_temperature(&calibration);
    let misses = scored
        .iter()
        .filter_map(|(e, l)| {
            let (best, confidence) = crate::linear::argmax(&softmax(l, temperature));
            (labels[best] != e.intent).then(|| Miss {
                text: &e.text,
                intent: &e.intent,
                predicted: &labels[best],
                confidence,
                group: &e.group,
                lang: &e.lang,
            })
        })
        .collect();
    (row, misses)
}

/// The winner: among rows within `TIE` of the best score, the smallest dimension, then fewest epochs, then the
/// best score.
pub(crate) fn choose(rows: &[Row]) -> usize {
    let best = rows.iter().map(Row::score).fold(0.0, f64::max);
    (0..rows.len())
        .filter(|&i| rows[i].score() >= best - TIE)
        .min_by(|&a, &b| {
            let (ra, rb) = (&rows[a], &rows[b]);
            ra.dim
                .cmp(&rb.dim)
                .then(ra.sgd.epochs.cmp(&rb.sgd.epochs))
                .then(rb.score().total_cmp(&ra.score()))
        })
        .unwrap_or_default()
}

fn score(
    train: &[Example],
    x: &[(SparseVec, usize)],
    fold: &[Option<usize>],
    logits: &[Option<Vec<f32>>],
    dim: usize,
    sgd: Sgd,
) -> Row {
    // (lang, fold) → (right, total)
    let mut counts: BTreeMap<(&str, usize), (u32, u32)> = BTreeMap::new();
    for (((e, (_, truth)), f), l) in train.iter().zip(x).zip(fold).zip(logits) {
        let (Some(f), Some(l)) = (f, l) else { continue };
        let c = counts.entry((&e.lang, *f)).or_default();
        c.0 += u32::from(crate::linear::argmax(l).0 == *truth);
        c.1 += 1;
    }
    let pooled = |lang: &str| {
        let (r, n) = counts
            .iter()
            .filter(|((l, _), _)| *l == lang)
            .fold((0, 0), |(r, n), (_, (a, b))| (r + a, n + b));
        f64::from(r) / f64::from(n.max(1))
    };
    let per_fold: Vec<f64> = counts
        .values()
        .map(|(r, n)| f64::from(*r) / f64::from((*n).max(1)))
        .collect();
    let mean = per_fold.iter().sum::<f64>() / per_fold.len().max(1) as f64;
    let var = per_fold.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (per_fold.len().max(2) - 1) as f64;
    Row {
        dim,
        sgd,
        en: pooled("en"),
        zh: pooled("zh"),
        fold_sd: var.sqrt(),
    }
}

/// The search table as text, the winner marked `*`.
pub(crate) fn table(rows: &[Row], winner: usize) -> String {
    let mut out = format!(
        "grouped {FOLDS}-fold CV on the training split (held-out first-batch groups; pinned batches always trained on)\n\
         {:<3}{:>6} {:>5} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8}\n",
        "", "dim", "lr", "l2", "epochs", "en", "zh", "min", "fold-sd"
    );
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "{:<3}{:>6} {:>5} {:>7.0e} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4}\n",
            if i == winner { "*" } else { "" },
            format!("2^{}", r.dim.trailing_zeros()),
            r.sgd.learning_rate,
            r.sgd.l2,
            r.sgd.epochs,
            r.en,
            r.zh,
            r.score(),
            r.fold_sd
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_keep_groups_whole_and_skip_pinned() {
        let examples: Vec<Example> = (0..200)
            .map(|i| Example {
                text: format!("t{i}"),
                intent: ["a", "b"][(i / 4) % 2].to_owned(),
                lang: "en".to_owned(),
                group: format!("g{}", i / 4),
                split: (i >= 180).then(|| "train".to_owned()),
            })
            .collect();
        let fold = folds(&examples, 5, 7);
        assert!(fold[180..].iter().all(Option::is_none));
        assert!(fold[..180].iter().all(Option::is_some));
        for chunk in fold[..180].chunks(4) {
            assert!(chunk.iter().all(|f| *f == chunk[0]));
        }
        assert_eq!(fold, folds(&examples, 5, 7));
        assert!((0..5).all(|f| fold.contains(&Some(f))));
    }

    #[test]
    fn misses_are_the_held_out_errors() {
        // Groups of four; every tenth group is written in the other intent's words, so the fold model that
        // never saw it gets it wrong. The last five groups are pinned: trained on, never reported.
        let words = ["want my money back refund", "where is my parcel tracking"];
        let examples: Vec<Example> = (0..200)
            .map(|i| {
                let (group, intent) = (i / 4, (i / 4) % 2);
                let written_as = if group % 10 == 3 { 1 - intent } else { intent };
                Example {
                    text: format!("{} {}", words[written_as], ["please", "now", "today", "thanks"][i % 4]),
                    intent: ["refund", "logistics"][intent].to_owned(),
                    lang: "en".to_owned(),
                    group: format!("g{group}"),
                    split: (i >= 180).then(|| "train".to_owned()),
                }
            })
            .collect();
        let labels = ["refund".to_owned(), "logistics".to_owned()];
        let sgd = Sgd {
            epochs: 3,
            learning_rate: 1.0,
            l2: 1e-4,
            seed: 7,
        };
        let (row, misses) = misses(&examples, &labels, 1 << 10, sgd);
        let groups: Vec<&str> = misses.iter().map(|m| m.group).collect();
        assert_eq!(misses.len(), 20, "{groups:?}");
        assert!(groups.iter().all(|g| ["g3", "g13", "g23", "g33", "g43"].contains(g)));
        assert!(
            misses
                .iter()
                .all(|m| m.predicted != m.intent && m.confidence > 0.5 && m.lang == "en")
        );
        assert!((row.en - 160.0 / 180.0).abs() < 1e-9);
    }
}
