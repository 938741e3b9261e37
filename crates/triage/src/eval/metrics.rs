//! Accuracy, macro-F1, per-label precision, confusion matrix, expected calibration error and the reliability table
//! behind it. Pure arithmetic over counts and confidences; must never see a model or a file.

use std::fmt::Write as _;

use serde::Serialize;

/// A confusion matrix over a fixed label list: `counts[truth][predicted]`.
#[derive(Debug, Clone)]
pub struct Confusion {
    /// Label ids, in index order.
    pub labels: Vec<String>,
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<u32>>,
}

/// The figures reported for one slice of data.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Examples.
    pub examples: usize,
    /// Fraction predicted right.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1 over labels present in truth or prediction.
    pub macro_f1: f64,
    /// Precision of the `human` label (1.0 when never predicted).
    pub human_precision: f64,
    /// Expected calibration error (10 equal-width confidence bins), when confidences were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
}

impl Confusion {
    /// An empty matrix.
    pub fn new(labels: &[String]) -> Self {
        Self {
            labels: labels.to_vec(),
            counts: vec![vec![0; labels.len()]; labels.len()],
        }
    }

    /// Counts one prediction.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    fn total(&self) -> u32 {
        self.counts.iter().flatten().sum()
    }

    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let right: u32 = (0..self.labels.len()).map(|i| self.counts[i][i]).sum();
        f64::from(right) / f64::from(self.total().max(1))
    }

    /// Precision of label `i` (1.0 when never predicted).
    pub fn precision(&self, i: usize) -> f64 {
        let predicted: u32 = self.counts.iter().map(|row| row[i]).sum();
        if predicted == 0 {
            1.0
        } else {
            f64::from(self.counts[i][i]) / f64::from(predicted)
        }
    }

    fn recall(&self, i: usize) -> f64 {
        let actual: u32 = self.counts[i].iter().sum();
        if actual == 0 {
            1.0
        } else {
            f64::from(self.counts[i][i]) / f64::from(actual)
        }
    }

    /// Mean F1 over the labels that occur (in truth or prediction).
    pub fn macro_f1(&self) -> f64 {
        let present: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.counts[i].iter().sum::<u32>() + self.counts.iter().map(|r| r[i]).sum::<u32>() > 0)
            .collect();
        let f1 = |i: usize| {
            let (p, r) = (self.precision(i), self.recall(i));
            if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
        };
        present.iter().map(|&i| f1(i)).sum::<f64>() / present.len().max(1) as f64
    }

    /// The headline figures; `confidences` pairs (confidence of the prediction, was it right).
    pub fn figures(&self, confidences: Option<&[(f32, bool)]>) -> Figures {
        let human = self.labels.iter().position(|l| l == "human");
        Figures {
            examples: self.total() as usize,
            accuracy: self.accuracy(),
            macro_f1: self.macro_f1(),
            human_precision: human.map_or(1.0, |i| self.precision(i)),
            ece: confidences.map(ece),
        }
    }

    /// The matrix as an aligned text table, rows = truth, columns = prediction.
    pub fn table(&self) -> String {
        let width = self.labels.iter().map(String::len).max().unwrap_or(4).max(5);
        let mut out = format!("{:>width$}", "truth\\pred");
        for label in &self.labels {
            let _ = write!(out, " {:>w$}", abbreviate(label), w = 5);
        }
        for (label, row) in self.labels.iter().zip(&self.counts) {
            let _ = write!(out, "\n{label:>width$}");
            for n in row {
                let _ = write!(out, " {n:>5}");
            }
        }
        out
    }
}

fn abbreviate(label: &str) -> String {
    label.chars().take(5).collect()
}

/// Equal-width confidence bins of the reliability table and of [`ece`]. Ten, as every figure since the first model
/// was reported with: more bins leave the top ones (where most predictions are) thin on a 1,400-example split.
pub const BINS: usize = 10;

/// One bin of a reliability table: the predictions whose confidence fell in `[low, high)` (the last bin
/// includes 1.0), their mean confidence and how many were right.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub low: f64,
    /// Upper edge.
    pub high: f64,
    /// Predictions in the bin.
    pub examples: usize,
    /// Their mean confidence (0 when empty).
    pub confidence: f64,
    /// Fraction of them that were right (0 when empty).
    pub accuracy: f64,
}

/// The reliability table of `confidences` (confidence of a prediction, was it right): [`BINS`] bins, empty ones
/// included, so tables of two models line up.
pub fn reliability(confidences: &[(f32, bool)]) -> Vec<Bin> {
    let mut sums = [(0.0f64, 0.0f64, 0usize); BINS];
    for &(c, right) in confidences {
        let bin = &mut sums[((c * BINS as f32) as usize).min(BINS - 1)];
        bin.0 += f64::from(c);
        bin.1 += f64::from(u8::from(right));
        bin.2 += 1;
    }
    sums.iter()
        .enumerate()
        .map(|(i, &(conf, right, n))| {
            let mean = |sum: f64| if n == 0 { 0.0 } else { sum / n as f64 };
            Bin {
                low: i as f64 / BINS as f64,
                high: (i + 1) as f64 / BINS as f64,
                examples: n,
                confidence: mean(conf),
                accuracy: mean(right),
            }
        })
        .collect()
}

/// Expected calibration error over [`BINS`] equal-width bins: Σ over bins of (n_bin / n) · |mean confidence −
/// accuracy|.
pub fn ece(confidences: &[(f32, bool)]) -> f64 {
    let n = confidences.len().max(1) as f64;
    reliability(confidences)
        .iter()
        .map(|b| b.examples as f64 / n * (b.confidence - b.accuracy).abs())
        .sum()
}

/// A reliability table as aligned text: one line per bin, with the gap a calibrated model keeps near zero.
pub fn reliability_table(bins: &[Bin]) -> String {
    let mut out = format!(
        "{:<11} {:>6} {:>10} {:>8} {:>7}\n",
        "confidence", "n", "mean conf", "accuracy", "gap"
    );
    for b in bins {
        let range = format!("{:.1}–{:.1}", b.low, b.high);
        if b.examples == 0 {
            let _ = writeln!(out, "{range:<11} {:>6} {:>10} {:>8} {:>7}", 0, "-", "-", "-");
        } else {
            let _ = writeln!(
                out,
                "{range:<11} {:>6} {:>10.3} {:>8.3} {:>+7.3}",
                b.examples,
                b.confidence,
                b.accuracy,
                b.accuracy - b.confidence
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_small_matrix() {
        let labels = ["a".to_owned(), "human".to_owned()];
        let mut m = Confusion::new(&labels);
        m.add(0, 0);
        m.add(0, 1);
        m.add(1, 1);
        m.add(1, 1);
        assert!((m.accuracy() - 0.75).abs() < 1e-9);
        assert!((m.precision(1) - 2.0 / 3.0).abs() < 1e-9);
        assert!(ece(&[(1.0, true), (0.5, false)]) > 0.2);
        assert!(m.table().contains("human"));
    }

    #[test]
    fn reliability_bins_and_ece_agree() {
        // 0.95 bin: 4 predictions, 3 right (gap 0.2); 0.35 bin: 2, 1 right (gap 0.15).
        let confidences = [
            (0.95, true),
            (0.95, true),
            (0.95, true),
            (1.0, false),
            (0.32, true),
            (0.38, false),
        ];
        let bins = reliability(&confidences);
        assert_eq!(bins.len(), BINS);
        assert_eq!(
            bins.iter().map(|b| b.examples).collect::<Vec<_>>(),
            [0, 0, 0, 2, 0, 0, 0, 0, 0, 4]
        );
        assert!((bins[9].confidence - 0.9625).abs() < 1e-6 && (bins[9].accuracy - 0.75).abs() < 1e-9);
        assert!((bins[3].confidence - 0.35).abs() < 1e-6 && (bins[3].accuracy - 0.5).abs() < 1e-9);
        let expected = 4.0 / 6.0 * (0.9625 - 0.75) + 2.0 / 6.0 * (0.5 - 0.35);
        assert!((ece(&confidences) - expected).abs() < 1e-6, "{}", ece(&confidences));
        let table = reliability_table(&bins);
        assert!(
            table.contains("0.9–1.0") && table.contains("      4      0.962    0.750  -0.21"),
            "{table}"
        );
        assert_eq!(table.lines().count(), BINS + 1);
    }
}
