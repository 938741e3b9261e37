//! Multinomial logistic regression over sparse features, trained with plain SGD. Must never draw randomness
//! from outside its seed: the same data and settings give the same weights, bit for bit.

use protofuse_triage::features::SparseVec;

/// Weights feature-major (`w[f * classes + c]`), the layout of the ONNX MatMul's [D, C] initializer.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// Feature dimension.
    pub(crate) dim: usize,
    /// Number of classes.
    pub(crate) classes: usize,
    /// Weights, `dim * classes`.
    pub(crate) w: Vec<f32>,
    /// Biases, `classes`.
    pub(crate) b: Vec<f32>,
}

/// SGD settings. Chosen by grouped cross-validation on the training split (`train --search`), never on the test
/// split.
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
    pub(crate) fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let mut out = self.b.clone();
        for (&f, &v) in x.indices.iter().zip(&x.values) {
            let row = &self.w[f as usize * self.classes..][..self.classes];
            out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
        }
        out
    }

    /// Fits on `(features, class)` pairs, deterministically for a given seed.
    pub(crate) fn fit(data: &[(SparseVec, usize)], dim: usize, classes: usize, sgd: Sgd) -> Self {
        Self::fit_subset(data, (0..data.len()).collect(), dim, classes, sgd, |_, _| {})
    }

    /// Fits on the examples `subset` indexes (in that initial order), calling `after_epoch(epoch, model)` after
    /// each pass (1-based). The learning rate depends only on the step, so the model after epoch `e` of a longer
    /// run is exactly the model of an `e`-epoch run: cross-validation scores several epoch counts in one run.
    pub(crate) fn fit_subset(
        data: &[(SparseVec, usize)],
        subset: Vec<usize>,
        dim: usize,
        classes: usize,
        sgd: Sgd,
        mut after_epoch: impl FnMut(usize, &Self),
    ) -> Self {
        let mut model = Self {
            dim,
            classes,
            w: vec![0.0; dim * classes],
            b: vec![0.0; classes],
        };
        let mut order = subset;
        let n = order.len().max(1) as f32;
        let mut rng = sgd.seed | 1;
        let mut step = 0usize;
        for epoch in 1..=sgd.epochs {
            shuffle(&mut order, &mut rng);
            for &i in &order {
                let lr = sgd.learning_rate / (1.0 + step as f32 / n);
                model.step(&data[i].0, data[i].1, lr, sgd.l2);
                step += 1;
            }
            after_epoch(epoch, &model);
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
pub(crate) fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
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
pub(crate) fn fit_temperature(scored: &[(Vec<f32>, usize)]) -> f32 {
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

/// Index and value of the largest probability.
pub(crate) fn argmax(probs: &[f32]) -> (usize, f32) {
    probs
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protofuse_triage::features::features;

    #[test]
    fn an_epoch_checkpoint_is_the_shorter_run() {
        let data: Vec<(SparseVec, usize)> = ["refund please", "where is it", "money back", "parcel late"]
            .iter()
            .enumerate()
            .map(|(i, t)| (features(t, 256), i % 2))
            .collect();
        let sgd = Sgd {
            epochs: 5,
            learning_rate: 1.0,
            l2: 1e-4,
            seed: 3,
        };
        let short = Linear::fit(&data, 256, 2, Sgd { epochs: 2, ..sgd });
        let mut at_two = None;
        let long = Linear::fit_subset(&data, vec![0, 1, 2, 3], 256, 2, sgd, |e, m| {
            if e == 2 {
                at_two = Some(m.w.clone());
            }
        });
        assert_eq!(at_two, Some(short.w));
        assert_eq!(long.w, Linear::fit(&data, 256, 2, sgd).w);
    }
}
