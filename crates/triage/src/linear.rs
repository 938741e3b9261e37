//! The intent model's graph evaluated directly when it is the linear model the trainer writes: `Gather` of the
//! active rows of `W`, `Mul` by the values, `ReduceSum`, `Add(B)`, `Div(T)`, `Softmax`. tract still decodes,
//! checks and optimises every model file, and runs any graph that is not exactly this shape.
//!
//! Why not tract for every message: tract's fixed cost per run (a state, six ops, a tensor per op) measured about
//! 11 µs p50 against 3–4 µs for the features themselves (`cargo bench -p protofuse-triage`), for arithmetic of
//! ~70 rows × 10 multiply-adds; the mixed-request check runs the model once more per clause. At load the direct
//! evaluation is compared with tract's on probe inputs and not used if they disagree.
//!
//! Must never be used for a graph it did not recognise node by node, nor read past `W`'s rows (the caller checks
//! every index against the dimension first).

use tract_onnx::pb::{ModelProto, TensorProto};

use crate::features::SparseVec;

/// ONNX `TensorProto.DataType` FLOAT.
const FLOAT: i32 = 1;

/// The weights of a recognised linear graph.
#[derive(Debug)]
pub(crate) struct Linear {
    /// `dim × classes`, row-major: the row of feature `i` is `w[i * classes..(i + 1) * classes]`.
    w: Vec<f32>,
    b: Vec<f32>,
    temperature: f32,
    classes: usize,
}

impl Linear {
    /// The weights, if `proto`'s graph is exactly the trainer's sparse linear model over `dim` features and
    /// `classes` labels.
    pub(crate) fn recognise(proto: &ModelProto, dim: usize, classes: usize) -> Option<Self> {
        let graph = proto.graph.as_ref()?;
        let ops: Vec<(&str, Vec<&str>)> = graph
            .node
            .iter()
            .map(|n| (n.op_type.as_str(), n.input.iter().map(String::as_str).collect()))
            .collect();
        let [
            ("Gather", gather),
            ("Mul", _),
            ("ReduceSum", _),
            ("Add", add),
            ("Div", div),
            ("Softmax", _),
        ] = ops.as_slice()
        else {
            return None;
        };
        let init = |name: &str| graph.initializer.iter().find(|t| t.name == name);
        let w = floats(init(gather.first()?)?)?;
        let b = floats(init(add.get(1)?)?)?;
        let t = floats(init(div.get(1)?)?)?;
        (w.len() == dim * classes && b.len() == classes && t.len() == 1 && t[0] > 0.0).then(|| Self {
            w,
            b,
            temperature: t[0],
            classes,
        })
    }

    /// Probabilities, one per class: the graph's arithmetic in its order.
    pub(crate) fn predict(&self, x: &SparseVec) -> Vec<f32> {
        let mut logits = vec![0f32; self.classes];
        for (&i, &v) in x.indices.iter().zip(&x.values) {
            let row = &self.w[i as usize * self.classes..(i as usize + 1) * self.classes];
            logits.iter_mut().zip(row).for_each(|(l, w)| *l += w * v);
        }
        for (l, b) in logits.iter_mut().zip(&self.b) {
            *l = (*l + b) / self.temperature;
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        logits.iter_mut().for_each(|l| *l = (*l - max).exp());
        let sum: f32 = logits.iter().sum();
        logits.iter_mut().for_each(|l| *l /= sum);
        logits
    }
}

/// A float tensor's values, from `raw_data` (little-endian, as the trainer writes) or `float_data`.
fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != FLOAT {
        return None;
    }
    if t.raw_data.is_empty() {
        return Some(t.float_data.clone());
    }
    let chunks = t.raw_data.chunks_exact(4);
    chunks
        .remainder()
        .is_empty()
        .then(|| chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
