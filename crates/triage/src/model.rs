//! The ONNX intent model, loaded and run by tract, and the metadata keys a model file carries (the contract with
//! the training tool, which writes them). Must never write or change a model; it refuses a model whose tokenizer
//! version differs from this build's.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use tract_onnx::prelude::{
    Framework, InferenceModelExt, IntoRunnable, Tensor, TypedRunnableModel, TypedSimpleState, tvec,
};

use super::TriageError;
use super::features::{self, SparseVec};
use super::linear::Linear;

/// Metadata keys the server reads back.
pub const META_LABELS: &str = "protofuse.labels";
/// The model version string.
pub const META_VERSION: &str = "protofuse.version";
/// The feature dimension.
pub const META_DIM: &str = "protofuse.dim";
/// The tokenizer version the model was trained on ([`crate::features::VERSION`]).
pub const META_FEATURES: &str = "protofuse.features";
/// A department router's label for "none of the departments it routes": the history's departments too thin to
/// learn, trained as one class so that their kind of message falls through to the intent's route instead of
/// being forced into a learned department.
pub const ROUTER_ELSEWHERE: &str = "(other)";
/// A sparse model's input: the active feature ids, int64 `[n]`.
pub const INPUT_IDS: &str = "feature_ids";
/// A sparse model's input: the active features' values, float `[n, 1]`.
pub const INPUT_VALUES: &str = "feature_values";

/// How a model takes its features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `feature_ids` + `feature_values`: only the active rows of the weights are read.
    Sparse,
    /// One dense float `[1, dim]` input (models trained before sparse inference; still served).
    Dense,
}

/// A loaded model: the optimised tract plan and the metadata the trainer wrote.
pub struct IntentModel {
    plan: Arc<TypedRunnableModel>,
    /// Run states kept between inferences: `plan.run` builds a fresh state (every node's slot, a session) per
    /// call, a fixed cost as large as the arithmetic of a sparse message. One per concurrent caller at most.
    states: Mutex<Vec<TypedSimpleState>>,
    /// The graph evaluated directly, when it is the trainer's linear model and agrees with tract (`linear.rs`).
    direct: Option<Linear>,
    layout: Layout,
    labels: Vec<String>,
    version: String,
    dim: usize,
    size_bytes: usize,
    load_time: Duration,
}

impl std::fmt::Debug for IntentModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentModel")
            .field("version", &self.version)
            .field("labels", &self.labels)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl IntentModel {
    /// Reads and optimises the model at `path`.
    pub fn load(path: &Path) -> Result<Self, TriageError> {
        let bytes = std::fs::read(path).map_err(|e| TriageError::Read(path.to_path_buf(), e))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            TriageError::Model(_, cause) => TriageError::Model(path.display().to_string(), cause),
            other => other,
        })
    }

    /// Decodes and optimises an ONNX model held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TriageError> {
        let started = Instant::now();
        let invalid = |what: &str| TriageError::Model(String::new(), what.into());
        let proto = tract_onnx::pb::ModelProto::decode(bytes).map_err(|e| invalid(&e.to_string()))?;
        let meta = |key: &str| {
            proto
                .metadata_props
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.value.clone())
        };
        let labels: Vec<String> = meta(META_LABELS)
            .ok_or_else(|| invalid("no labels in metadata"))?
            .split(',')
            .map(str::to_owned)
            .collect();
        let dim: usize = meta(META_DIM)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| invalid("no feature dimension in metadata"))?;
        // Models from before the tokenizer was versioned carry no key: version 1.
        let trained_on: u32 = meta(META_FEATURES).and_then(|v| v.parse().ok()).unwrap_or(1);
        if trained_on != super::features::VERSION {
            return Err(invalid(&format!(
                "trained on tokenizer version {trained_on}, but this build computes version {}; retrain it with \
                 `protofuse-triage-train` (formerly `protofuse triage train`)",
                super::features::VERSION
            )));
        }
        let inputs: Vec<&str> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.as_str()).collect())
            .unwrap_or_default();
        let layout = match inputs.as_slice() {
            [ids, values] if *ids == INPUT_IDS && *values == INPUT_VALUES => Layout::Sparse,
            [_] => Layout::Dense,
            _ => {
                return Err(invalid(
                    "inputs are neither (feature_ids, feature_values) nor one dense vector",
                ));
            }
        };
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .and_then(|m| m.into_optimized())
            .and_then(IntoRunnable::into_runnable)
            .map_err(|e| TriageError::Model(String::new(), e.into()))?;
        let direct = match layout {
            Layout::Sparse => Linear::recognise(&proto, dim, labels.len()),
            Layout::Dense => None,
        };
        let mut model = Self {
            plan,
            states: Mutex::new(Vec::new()),
            direct,
            layout,
            labels,
            version: meta(META_VERSION).unwrap_or_else(|| "unknown".to_owned()),
            dim,
            size_bytes: bytes.len(),
            load_time: started.elapsed(),
        };
        if model.direct.is_some() && !model.direct_agrees_with_tract() {
            tracing::warn!(version = %model.version, "the model's direct evaluation disagrees with tract; tract runs it");
            model.direct = None;
        }
        model.load_time = started.elapsed();
        Ok(model)
    }

    /// Whether the direct evaluation gives tract's probabilities (within float rounding: the sums may run in
    /// another order) on probe messages, including one with no active feature.
    fn direct_agrees_with_tract(&self) -> bool {
        let Some(direct) = &self.direct else { return false };
        ["", "我要退货", "where is my parcel??", "refund pls 谢谢 order #12345"]
            .iter()
            .map(|text| features::features(text, self.dim))
            .all(|x| match self.run_tract(&x) {
                Ok(expected) => {
                    let got = direct.predict(&x);
                    got.len() == expected.len() && got.iter().zip(&expected).all(|(a, b)| (a - b).abs() <= 1e-5)
                }
                Err(_) => false,
            })
    }

    /// Calibrated probabilities, one per label, in label order.
    pub fn predict(&self, x: &SparseVec) -> Result<Vec<f32>, TriageError> {
        // tract panics on an out-of-range Gather index, and the direct evaluation would read another row, so
        // every index is checked here first.
        if let Some(&outside) = x.indices.iter().find(|&&i| i as usize >= self.dim) {
            return Err(TriageError::Run(
                format!("feature index {outside} is outside the model's dimension {}", self.dim).into(),
            ));
        }
        match &self.direct {
            Some(direct) => Ok(direct.predict(x)),
            None => self.run_tract(x),
        }
    }

    /// Whether predictions skip tract's per-run cost (the graph was recognised and agreed with tract at load).
    pub fn evaluated_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// The probabilities as tract computes them (indices already checked).
    fn run_tract(&self, x: &SparseVec) -> Result<Vec<f32>, TriageError> {
        let run = |e: tract_onnx::prelude::TractError| TriageError::Run(e.into());
        let inputs = match self.layout {
            Layout::Sparse => {
                // No active feature: one zero-valued row, so the sum is the bias alone, as the dense model's is.
                let (ids, values): (Vec<i64>, Vec<f32>) = if x.indices.is_empty() {
                    (vec![0], vec![0.0])
                } else {
                    (x.indices.iter().map(|&i| i64::from(i)).collect(), x.values.clone())
                };
                let n = ids.len();
                let ids = Tensor::from_shape(&[n], &ids).map_err(run)?;
                let values = Tensor::from_shape(&[n, 1], &values).map_err(run)?;
                tvec!(ids.into(), values.into())
            }
            Layout::Dense => {
                let mut dense = vec![0f32; self.dim];
                x.scatter(&mut dense);
                tvec!(Tensor::from_shape(&[1, self.dim], &dense).map_err(run)?.into())
            }
        };
        // The pool's lock is held only to take or return a state, never while running; a poisoned pool only
        // ever held whole states.
        let pool = || self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let taken = pool().pop();
        let mut state = match taken {
            Some(state) => state,
            None => TypedSimpleState::new(&self.plan).map_err(run)?,
        };
        let outputs = state.run(inputs).map_err(run)?;
        pool().push(state);
        Ok(outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(run)?
            .iter()
            .copied()
            .collect())
    }

    /// Intent ids, in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The version the trainer wrote.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Size of the ONNX file, bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// How long decoding and optimising took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct evaluation gives tract's probabilities for the shipped model on the training file (every 5th
    /// example), and the same best intent.
    #[test]
    fn the_direct_evaluation_is_tracts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let model = IntentModel::load(&root.join("config/triage/model.onnx")).unwrap();
        assert!(model.evaluated_directly());
        let data = std::fs::read_to_string(root.join("config/triage/data/train.jsonl")).unwrap();
        let mut compared = 0;
        for line in data.lines().step_by(5) {
            let text = line
                .split("\"text\": \"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap();
            let x = features::features(text, model.dim());
            let (direct, tract) = (model.predict(&x).unwrap(), model.run_tract(&x).unwrap());
            let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
            assert_eq!(argmax(&direct), argmax(&tract), "{line}");
            let gap = direct
                .iter()
                .zip(&tract)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0_f32, f32::max);
            assert!(gap <= 1e-5, "{line}: {direct:?} vs {tract:?}");
            compared += 1;
        }
        assert!(compared > 10_000, "{compared}");
    }
}
