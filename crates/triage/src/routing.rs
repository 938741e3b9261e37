//! Intent → department, with department paths resolved to the longest configured prefix: a route or rule may
//! name `after-sales/returns/damaged`, and while only `after-sales/returns` exists that is where it goes. Must
//! never invent a department: every answer is a configured one or the default.

use std::collections::BTreeMap;

use crate::TriageConfig;

/// The routing table.
#[derive(Debug, Clone)]
pub(crate) struct Routing {
    departments: Vec<String>,
    routes: BTreeMap<String, String>,
    default: String,
}

impl Routing {
    /// From `[triage]`.
    pub(crate) fn new(config: &TriageConfig) -> Self {
        Self {
            departments: config.departments.clone(),
            routes: config.routes.clone(),
            default: config.default_department.clone(),
        }
    }

    /// The department for `intent`.
    pub(crate) fn for_intent(&self, intent: &str) -> String {
        self.routes
            .get(intent)
            .map_or_else(|| self.default.clone(), |target| self.resolve(target))
    }

    /// The longest configured department that is `target` or a path prefix of it, else the default.
    pub(crate) fn resolve(&self, target: &str) -> String {
        self.departments
            .iter()
            .filter(|d| {
                target == d.as_str()
                    || target
                        .strip_prefix(d.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|d| d.len())
            .map_or_else(|| self.default.clone(), Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_unknown_falls_back() {
        let routing = Routing::new(&TriageConfig::default());
        assert_eq!(routing.for_intent("refund"), "after-sales/returns");
        assert_eq!(routing.resolve("after-sales/returns/damaged"), "after-sales/returns");
        assert_eq!(routing.resolve("after-sales/warranty"), "after-sales");
        assert_eq!(routing.resolve("after-salesx"), "service-desk");
        assert_eq!(routing.for_intent("greeting"), "service-desk");
    }
}
