//! The managed view of remote objects: the fields some spec owns, which is all a plan's `remoteFingerprint` covers.
//!
//! A saved plan is stale when a managed field moved, even if the requests it would send are still the same: a
//! colleague's rename must not be overwritten by a plan that showed another rename. Fields no spec owns, and
//! volatile ones (`_links`, dates, result counters, a flag's targeting and version, which every start and stop
//! moves), stay out, so they never make a plan stale.

use serde::Serialize;

use crate::api::{AnalysisConfig, Experiment, IterationRep, IterationStatus, LegacyExperiments};
use crate::design::Design;
use crate::digest::fingerprint;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManagedExperiment<'a> {
    key: &'a str,
    name: &'a str,
    // An absent description reads as the empty one, as the planner compares it.
    description: &'a str,
    maintainer_id: &'a str,
    tags: &'a [String],
    methodology: Option<&'a str>,
    data_source: Option<&'a str>,
    analysis_config: Option<&'a AnalysisConfig>,
    holdout_id: Option<&'a str>,
    archived: bool,
    current: Option<ManagedIteration<'a>>,
    draft: Option<ManagedIteration<'a>>,
    // Whether an iteration ran before decides if a start needs a justification.
    previous_iterations: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManagedIteration<'a> {
    id: Option<&'a str>,
    status: IterationStatus,
    design: Design,
    winning_treatment_id: Option<&'a str>,
    winning_reason: Option<&'a str>,
}

impl<'a> ManagedIteration<'a> {
    fn of(it: &'a IterationRep) -> Self {
        ManagedIteration {
            id: it.id.as_deref(),
            status: it.status,
            design: Design::from_iteration(it),
            winning_treatment_id: it.winning_treatment_id.as_deref(),
            winning_reason: it.winning_reason.as_deref(),
        }
    }
}

/// `blake3:<hex>` of the fields of `e` that specs own.
pub fn experiment_fingerprint(e: &Experiment) -> String {
    fingerprint(&ManagedExperiment {
        key: &e.key,
        name: &e.name,
        description: e.description.as_deref().unwrap_or(""),
        maintainer_id: &e.maintainer_id,
        tags: &e.tags,
        methodology: e.methodology.as_deref(),
        data_source: e.data_source.as_deref(),
        analysis_config: e.analysis_config.as_ref(),
        holdout_id: e.holdout_id.as_deref(),
        archived: e.is_archived(),
        current: e.current_iteration.as_deref().map(ManagedIteration::of),
        draft: e.draft_iteration.as_deref().map(ManagedIteration::of),
        previous_iterations: e.previous_iterations.len(),
    })
}

/// `blake3:<hex>` of a flag's legacy `experiments` property, the only part of a flag a spec owns.
pub fn legacy_fingerprint(experiments: &LegacyExperiments) -> String {
    fingerprint(experiments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn experiment(v: serde_json::Value) -> Experiment {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "_id": "x1", "key": "e", "name": "E", "_maintainerId": "m", "_creationDate": 1,
            "_links": {"self": {"href": "/a"}},
            "currentIteration": {
                "_id": "i1", "hypothesis": "h", "status": "running", "createdAt": 1, "startedAt": 2,
                "randomizationUnit": "user",
                "flags": {"f": {"ruleId": "fallthrough", "flagConfigVersion": 3}},
                "treatments": [{"_id": "t", "name": "A", "baseline": true, "allocationPercent": "100",
                                "parameters": [{"flagKey": "f", "variationId": "v"}]}]
            }
        })
    }

    #[test]
    fn volatile_fields_never_move_the_fingerprint() {
        let a = experiment_fingerprint(&experiment(base()));
        let mut v = base();
        v["_links"] = json!({"self": {"href": "/b"}, "parent": {"href": "/p"}});
        v["_creationDate"] = json!(99);
        v["currentIteration"]["startedAt"] = json!(77);
        v["currentIteration"]["flags"]["f"]["flagConfigVersion"] = json!(9);
        assert_eq!(experiment_fingerprint(&experiment(v)), a);
    }

    #[test]
    fn every_managed_field_moves_the_fingerprint() {
        let a = experiment_fingerprint(&experiment(base()));
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 6] = [
            ("name", |v| v["name"] = json!("F")),
            ("description", |v| v["description"] = json!("d")),
            ("archived", |v| v["archivedDate"] = json!(5)),
            ("status", |v| v["currentIteration"]["status"] = json!("stopped")),
            ("allocation", |v| v["currentIteration"]["treatments"][0]["allocationPercent"] = json!("50")),
            ("draft", |v| v["draftIteration"] = v["currentIteration"].clone()),
        ];
        for (what, edit) in edits {
            let mut v = base();
            edit(&mut v);
            assert_ne!(experiment_fingerprint(&experiment(v)), a, "{what}");
        }
    }
}
