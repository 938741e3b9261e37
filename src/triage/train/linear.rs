//! Multinomial logistic regression over sparse features, trained with plain SGD.

use crate::triage::features::SparseVec;

/// Weights feature-major (`w[f * classes + c]`), the layout of the ONNX MatMul's [D, C] initializer.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Feature dimension.
    pub dim: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weights, `dim * classes`.
    pub w: Vec<f32>,
    /// Biases, `classes`.
    pub b: Vec<f32>,
}

/// SGD settings. Chosen on the validation split, never on the test split.
#[derive(Debug, Clone, Copy)]
pub struct Sgd {
    /// Passes over the training set.
    pub epochs: usize,
    /// Initial learning rate, decayed as 1 / (1 + t / n).
    pub learning_rate: f32,
    /// L2 penalty, applied to the rows an example touches.
    pub l2: f32,
    /// Shuffle seed.
    pub seed: u64,
}

impl Linear {
    /// The logits of `x`.
    pub fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let mut out = self.b.clone();
        for (&f, &v) in x.indices.iter().zip(&x.values) {
            let row = &self.w[f as usize * self.classes..][..self.classes];
            out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
        }
        out
    }

    /// Fits on `(features, class)` pairs, deterministically for a given seed.
    pub fn fit(data: &[(SparseVec, usize)], dim: usize, classes: usize, sgd: Sgd) -> Self {
        let mut model = Self {
            dim,
            classes,
            w: vec![0.0; dim * classes],
            b: vec![0.0; classes],
        };
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = sgd.seed | 1;
        let mut step = 0usize;
        for _ in 0..sgd.epochs {
            shuffle(&mut order, &mut rng);
            for &i in &order {
                let lr = sgd.learning_rate / (1.0 + step as f32 / data.len() as f32);
                model.step(&data[i].0, data[i].1, lr, sgd.l2);
                step += 1;
            }
        }
        model
    }

    fn step(&mut self, x: &SparseVec, label: usize, lr: f32, l2: f32) {
        let mut grad = softmax(&self.logits(x), 1.0);
        grad[label] -= 1.0;
        for (&f, &v) in x.indices.iter().zip(&x.values) {
            let row = &mut self.w[f as usize * self.classes..][..self.classes];
            for (w, g) in row.iter_mut().zip(&grad) {
                *w -= lr * (g * v + l2 * *w);
            }
        }
        self.b.iter_mut().zip(&grad).for_each(|(b, g)| *b -= lr * g);
    }
}

/// Softmax of `logits / temperature`.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| ((l - max) / temperature).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Fisher–Yates with xorshift64: no dependency whose stream could change between versions.
fn shuffle(order: &mut [usize], rng: &mut u64) {
    for i in (1..order.len()).rev() {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        order.swap(i, (*rng % (i as u64 + 1)) as usize);
    }
}

/// The temperature minimising negative log-likelihood on `(logits, class)` pairs (log-spaced grid search:
/// one parameter, so a grid is exact enough and cannot diverge).
pub fn fit_temperature(scored: &[(Vec<f32>, usize)]) -> f32 {
    let nll = |t: f32| -> f32 {
        scored
            .iter()
            .map(|(l, y)| -softmax(l, t)[*y].max(1e-12).ln())
            .sum::<f32>()
            / scored.len().max(1) as f32
    };
    (0..=120)
        .map(|i| 0.05 * 10f32.powf(i as f32 / 60.0))
        .min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
        .unwrap_or(1.0)
}
