//! Accuracy, macro-F1, per-label precision, confusion matrix and expected calibration error. Pure arithmetic over
//! counts and confidences; must never see a model or a file.

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

/// Expected calibration error over 10 equal-width bins: per bin |Σ confidence − Σ right| / n, summed.
pub fn ece(confidences: &[(f32, bool)]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for &(c, right) in confidences {
        let bin = &mut bins[((c * 10.0) as usize).min(9)];
        bin.0 += f64::from(c);
        bin.1 += f64::from(u8::from(right));
        bin.2 += 1;
    }
    let n = confidences.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|(conf, right, _)| (conf - right).abs() / n)
        .sum()
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
}
