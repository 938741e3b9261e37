//! The department router learned from the store's own history (`protofuse triage train --from-store`): which
//! department handled conversations worded like this one. Consulted after rules and before the intent's route;
//! its department is taken only when it is confident enough, else the intent's route decides as before.
//!
//! Must never invent a department: every answer is a label it was trained on (the departments the imported
//! history names), renamed by `[triage.router.departments]` where the operator maps them.

use std::collections::BTreeMap;

use crate::TriageError;
use crate::config::RouterConfig;
use crate::features::Analyzed;
use crate::model::{IntentModel, ROUTER_ELSEWHERE};

/// A loaded router.
#[derive(Debug)]
pub(crate) struct Router {
    model: IntentModel,
    min_confidence: f32,
    names: BTreeMap<String, String>,
}

impl Router {
    /// Loads the model `config` names.
    pub(crate) fn load(config: &RouterConfig) -> Result<Self, TriageError> {
        Ok(Self {
            model: IntentModel::load(&config.model)?,
            min_confidence: config.min_confidence,
            names: config.departments.clone(),
        })
    }

    /// The department for the message and the router's calibrated confidence in it, when that reaches
    /// `min_confidence` and the router does not judge it to belong elsewhere ([`ROUTER_ELSEWHERE`]). A failed inference is logged and routes nothing (the intent's route applies).
    pub(crate) fn route(&self, analyzed: &Analyzed) -> Option<(String, f32)> {
        let x = analyzed.features(self.model.dim());
        let probs = self
            .model
            .predict(&x)
            .inspect_err(|e| tracing::warn!(error = %e, "department router failed"))
            .ok()?;
        let (best, confidence) = probs.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
        if confidence < self.min_confidence {
            return None;
        }
        let label = self.model.labels().get(best).filter(|l| *l != ROUTER_ELSEWHERE)?;
        let department = self.names.get(label).unwrap_or(label).clone();
        Some((department, confidence))
    }

    /// The version the trainer wrote.
    pub(crate) fn version(&self) -> &str {
        self.model.version()
    }
}
