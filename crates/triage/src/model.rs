//! The ONNX intent model, loaded and run by tract, and the metadata keys a model file carries (the contract with
//! the training tool, which writes them). Must never write or change a model; it refuses a model whose tokenizer
//! version differs from this build's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, Tensor, TypedRunnableModel, tvec};

use super::TriageError;
use super::features::SparseVec;

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
        Ok(Self {
            plan,
            layout,
            labels,
            version: meta(META_VERSION).unwrap_or_else(|| "unknown".to_owned()),
            dim,
            size_bytes: bytes.len(),
            load_time: started.elapsed(),
        })
    }

    /// Calibrated probabilities, one per label, in label order.
    pub fn predict(&self, x: &SparseVec) -> Result<Vec<f32>, TriageError> {
        let run = |e: tract_onnx::prelude::TractError| TriageError::Run(e.into());
        // tract panics on an out-of-range Gather index, so every index is checked here first.
        if let Some(&outside) = x.indices.iter().find(|&&i| i as usize >= self.dim) {
            return Err(TriageError::Run(
                format!("feature index {outside} is outside the model's dimension {}", self.dim).into(),
            ));
        }
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
        let outputs = self.plan.run(inputs).map_err(run)?;
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
