//! The remote snapshot the planner diffs against, and what must be fetched to build it.
//!
//! Absence is explicit: `None` means LaunchDarkly answered 404, which the planner reports as a missing
//! project, environment or flag. Anything not needed by the specs is simply not in the maps.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Experiment, ExperimentationSettings, FeatureFlag, Holdout, Layer, Metric, MetricGroup};
use crate::json_text::JsonText;
use crate::spec::SpecSet;

/// Everything fetched for one plan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RemoteState {
    /// Project key → its state; `None` when the project does not exist.
    pub projects: BTreeMap<String, Option<ProjectState>>,
    /// Projects the token may not read (401, contract §9.8), with LaunchDarkly's message; their specs are refused,
    /// the other projects still plan.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forbidden: BTreeMap<String, String>,
}

impl RemoteState {
    /// The fetched experiment an experiment address names, if the project, the environment and the experiment
    /// exist; `None` for other addresses.
    pub fn experiment(&self, address: &crate::plan::Address) -> Option<&crate::api::Experiment> {
        let crate::plan::Address::Experiment { project, environment, key } = address else { return None };
        self.projects.get(project)?.as_ref()?.environments.get(environment)?.as_ref()?.get(key)
    }
}

/// One project's fetched state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectState {
    /// Environment key → experiments by key (active and archived); `None` when the environment does not exist.
    pub environments: BTreeMap<String, Option<BTreeMap<String, Experiment>>>,
    /// Flag key → flag; `None` when the flag does not exist.
    pub flags: BTreeMap<String, Option<FlagSnapshot>>,
    /// Metrics by key.
    pub metrics: BTreeMap<String, Metric>,
    /// Metric groups by key.
    pub metric_groups: BTreeMap<String, MetricGroup>,
    /// Experimentation settings, when fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ExperimentationSettings>,
    /// Layers by key, when read: `None` when no spec of the project mentions layers, and memberships are then
    /// left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<BTreeMap<String, Layer>>,
    /// Environment key → its holdouts by key, for the environments whose holdouts were read (a declared holdout
    /// merged with its detail).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holdouts: BTreeMap<String, BTreeMap<String, Holdout>>,
}

impl ProjectState {
    /// The holdout of `env` whose `_id` is `id`, when that environment's holdouts were read.
    pub fn holdout_by_id(&self, env: &str, id: &str) -> Option<&Holdout> {
        self.holdouts.get(env)?.values().find(|h| h.id == id)
    }
}

/// A flag as fetched: the typed view for resolving references, and the raw JSON a JSON patch is checked against.
///
/// The raw JSON is kept as compact text and parsed again only for the few flags a legacy spec patches: as a
/// `Value` tree, every referenced flag's rules and targets cost several times their size on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct FlagSnapshot {
    raw: JsonText,
    pub flag: FeatureFlag,
}

impl FlagSnapshot {
    /// Parses the typed view out of the raw JSON.
    pub fn from_json(raw: Value) -> Result<Self, serde_json::Error> {
        let flag = FeatureFlag::deserialize(&raw)?;
        Ok(FlagSnapshot { raw: JsonText::from(&raw), flag })
    }

    /// The flag's JSON as fetched.
    pub fn raw(&self) -> Value {
        self.raw.value()
    }
}

impl TryFrom<Value> for FlagSnapshot {
    type Error = serde_json::Error;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        Self::from_json(v)
    }
}

impl From<FlagSnapshot> for Value {
    fn from(f: FlagSnapshot) -> Value {
        f.raw()
    }
}

/// What to fetch for a set of specs: nothing more, so `plan` makes the fewest requests a correct plan can.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirements {
    /// `(project, environment)` pairs whose experiment lists are needed.
    pub experiment_lists: BTreeSet<(String, String)>,
    /// `(project, flag)` pairs; one GET returns every environment.
    pub flags: BTreeSet<(String, String)>,
    /// `(project, environment)` pairs whose flag configuration the specs read, should the flags be listed one
    /// environment at a time rather than read one by one.
    pub flag_environments: BTreeSet<(String, String)>,
    /// Projects whose metrics and metric groups are needed.
    pub metrics: BTreeSet<String>,
    /// Projects whose experimentation settings are needed (a spec names a randomization unit).
    pub settings: BTreeSet<String>,
    /// Projects whose layers are needed: a spec declares a layer or puts an experiment in one, or a Workspace owns
    /// layers.
    pub layers: BTreeSet<String>,
    /// `(project, environment)` pairs whose holdout lists are needed. Environments where an experiment of a spec
    /// turns out to be in a holdout are read afterwards (it may have to leave it).
    pub holdouts: BTreeSet<(String, String)>,
    /// `(project, environment, key)` of every declared holdout: its detail holds what the list leaves out.
    pub holdout_details: BTreeSet<(String, String, String)>,
}

impl Requirements {
    /// The fetches `specs` need.
    pub fn of(specs: &SpecSet) -> Self {
        let mut r = Requirements::default();
        for e in &specs.experiments {
            let s = &e.spec;
            for env in s.target_environments() {
                r.experiment_lists.insert((s.project.clone(), env.to_owned()));
            }
            for flag in s.iteration.flags.keys() {
                r.flags.insert((s.project.clone(), flag.clone()));
            }
            for env in s.target_environments() {
                r.flag_environments.insert((s.project.clone(), env.to_owned()));
            }
            r.metrics.insert(s.project.clone());
            if s.iteration.randomization_unit.is_some() {
                r.settings.insert(s.project.clone());
            }
            if s.layer.is_some() {
                r.layers.insert(s.project.clone());
            }
            if s.holdout.is_some() {
                for env in s.target_environments() {
                    r.holdouts.insert((s.project.clone(), env.to_owned()));
                }
            }
        }
        for l in &specs.layers {
            r.layers.insert(l.spec.project.clone());
        }
        for h in &specs.holdouts {
            let s = &h.spec;
            for env in s.target_environments() {
                r.holdouts.insert((s.project.clone(), env.to_owned()));
                r.holdout_details.insert((s.project.clone(), env.to_owned(), s.key.clone()));
            }
            // The metrics it measures and its randomization unit are checked against the project's.
            r.metrics.insert(s.project.clone());
            r.settings.insert(s.project.clone());
            if let Some(f) = &s.prerequisite_flag {
                r.flags.insert((s.project.clone(), f.clone()));
            }
        }
        for l in &specs.legacy {
            r.flags.insert((l.spec.project.clone(), l.spec.flag.clone()));
            // Their environments are checked against the flag's.
            for env in l.spec.metrics.iter().flat_map(|m| &m.environments) {
                r.flag_environments.insert((l.spec.project.clone(), env.clone()));
            }
            if !l.spec.metrics.is_empty() {
                r.metrics.insert(l.spec.project.clone());
            }
        }
        for m in &specs.metrics {
            r.metrics.insert(m.spec.project.clone());
            // A metric's units are checked against the project's.
            r.settings.insert(m.spec.project.clone());
        }
        for g in &specs.metric_groups {
            r.metrics.insert(g.spec.project.clone());
        }
        for x in &specs.settings {
            r.settings.insert(x.spec.project.clone());
        }
        // A Workspace's environments are the managed scope even where no spec targets them: the unmanaged report
        // and `--prune` look there too.
        for w in &specs.workspaces {
            for p in &w.spec.projects {
                for env in &p.environments {
                    r.experiment_lists.insert((p.key.clone(), env.clone()));
                }
                if p.owns.iter().any(|o| matches!(o, crate::spec::Owned::Metrics | crate::spec::Owned::MetricGroups)) {
                    r.metrics.insert(p.key.clone());
                }
                if p.owns.contains(&crate::spec::Owned::Layers) {
                    r.layers.insert(p.key.clone());
                }
                if p.owns.contains(&crate::spec::Owned::Holdouts) {
                    for env in &p.environments {
                        r.holdouts.insert((p.key.clone(), env.clone()));
                    }
                }
            }
        }
        r
    }

    /// Every project named by any requirement.
    pub fn projects(&self) -> BTreeSet<String> {
        self.experiment_lists
            .iter()
            .map(|(p, _)| p.clone())
            .chain(self.flags.iter().map(|(p, _)| p.clone()))
            .chain(self.metrics.iter().cloned())
            .chain(self.settings.iter().cloned())
            .chain(self.layers.iter().cloned())
            .chain(self.holdouts.iter().map(|(p, _)| p.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_flag_snapshot_gives_back_the_json_it_was_read_from() {
        let raw = json!({"key": "f", "_version": 4, "variations": [{"_id": "v0", "value": true}],
            "environments": {"production": {"on": true, "rules": [{"_id": "r1", "clauses": []}]}},
            "experiments": {"baselineIdx": 0, "items": []}, "extra": {"kept": [1, "two", null]}});
        let snap = FlagSnapshot::from_json(raw.clone()).unwrap();
        assert_eq!(snap.raw(), raw);
        assert_eq!((snap.flag.version, snap.flag.variations.len()), (4, 1));
        assert_eq!(serde_json::to_value(&snap).unwrap(), raw, "serialized as the flag itself");
        let back: FlagSnapshot = serde_json::from_value(raw).unwrap();
        assert_eq!(back, snap);
    }
}
