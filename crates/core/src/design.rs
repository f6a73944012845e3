//! The normalised experiment "design": what ldexp compares between a spec and a remote iteration.
//!
//! Normalisation lives here, not in the planner, because the applier also needs it: after a lost
//! response it re-reads the experiment and checks whether the iteration it meant to create is there.
//! Every collection is ordered, so a reordered server response is never a diff, and allocations are
//! compared as canonical decimals. `flagConfigVersion` is deliberately absent: it moves whenever the
//! flag changes and says nothing about the experiment.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{IterationRep, LegacyExperiments, NumString, ParameterRep};
use crate::flag_map::FlagMap;

/// LaunchDarkly's default randomization unit when an iteration does not name one.
pub const DEFAULT_RANDOMIZATION_UNIT: &str = "user";

/// The design of one iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Design {
    pub hypothesis: String,
    pub can_reshuffle_traffic: bool,
    pub randomization_unit: String,
    pub attributes: BTreeSet<String>,
    pub metrics: BTreeSet<DesignMetric>,
    pub primary_metric: Option<String>,
    /// Sorted vectors, not B-trees: the planner builds a design for every spec in every environment, and an
    /// 11-slot node for each of these one-to-three-entry maps was most of what that allocated.
    pub treatments: FlagMap<DesignTreatment>,
    pub flags: FlagMap<DesignFlag>,
}

/// A metric or metric group measured by an iteration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignMetric {
    pub key: String,
    pub group: bool,
}

/// A treatment, keyed by name in [`Design::treatments`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignTreatment {
    pub baseline: bool,
    /// Canonical decimal text (see [`NumString::canonical`]).
    pub allocation_percent: String,
    /// Flag key → variation `_id`.
    pub variations: FlagMap<String>,
}

/// A flag's role, keyed by flag key in [`Design::flags`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignFlag {
    /// A rule `_id` or `"fallthrough"`.
    pub rule_id: String,
    pub not_in_experiment_variation_id: Option<String>,
}

impl Design {
    /// The design LaunchDarkly holds for an iteration, with the API's defaults filled in.
    pub fn from_iteration(it: &IterationRep) -> Self {
        // Older representations list only secondary metrics plus a primary; merge every source so the set is whole.
        let mut metrics: BTreeSet<DesignMetric> = it
            .metrics
            .iter()
            .chain(it.secondary_metrics.iter())
            .map(|m| DesignMetric { key: m.key.clone(), group: m.is_group.unwrap_or(false) })
            .collect();
        let primary = primary_of(it);
        if let Some((key, group)) = primary
            && !metrics.iter().any(|m| m.key == key)
        {
            metrics.insert(DesignMetric { key: key.to_owned(), group });
        }
        let treatments = it
            .treatments
            .iter()
            .map(|t| {
                let variations =
                    t.parameters.iter().filter_map(|p| pair(p).map(|(f, v)| (f.to_owned(), v.to_owned()))).collect();
                (
                    t.name.clone(),
                    DesignTreatment {
                        baseline: t.baseline,
                        allocation_percent: t.allocation_percent.canonical(),
                        variations,
                    },
                )
            })
            .collect();
        let flags = it
            .flags
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    DesignFlag {
                        rule_id: f.targeting_rule.clone().unwrap_or_else(|| "fallthrough".to_owned()),
                        not_in_experiment_variation_id: f.not_in_experiment_variation_id.clone(),
                    },
                )
            })
            .collect();
        Design {
            hypothesis: it.hypothesis.clone(),
            can_reshuffle_traffic: it.can_reshuffle_traffic.unwrap_or(true),
            randomization_unit: it.randomization_unit.clone().unwrap_or_else(|| DEFAULT_RANDOMIZATION_UNIT.to_owned()),
            attributes: it.attributes.iter().cloned().collect(),
            metrics,
            primary_metric: primary.map(|(k, _)| k.to_owned()),
            treatments,
            flags,
        }
    }

    /// Whether `Design::from_iteration(it) == *self`, decided without building that design: the planner asks
    /// this of every managed experiment on every plan, and materialising the remote design (a dozen strings and
    /// B-tree maps) was a fifth of planning time at 10,000 experiments. `matches_iteration_agrees_with_from_iteration`
    /// holds the two to the same answer.
    pub fn matches_iteration(&self, it: &IterationRep) -> bool {
        if self.hypothesis != it.hypothesis
            || self.can_reshuffle_traffic != it.can_reshuffle_traffic.unwrap_or(true)
            || self.randomization_unit != it.randomization_unit.as_deref().unwrap_or(DEFAULT_RANDOMIZATION_UNIT)
        {
            return false;
        }
        if !same_set(it.attributes.iter().map(String::as_str).collect(), self.attributes.iter().map(String::as_str)) {
            return false;
        }
        let mut metrics: Vec<(&str, bool)> = it
            .metrics
            .iter()
            .chain(it.secondary_metrics.iter())
            .map(|m| (m.key.as_str(), m.is_group.unwrap_or(false)))
            .collect();
        let primary = primary_of(it);
        if let Some((key, group)) = primary
            && !metrics.iter().any(|(k, _)| *k == key)
        {
            metrics.push((key, group));
        }
        if self.primary_metric.as_deref() != primary.map(|(k, _)| k)
            || !same_set(metrics, self.metrics.iter().map(|m| (m.key.as_str(), m.group)))
        {
            return false;
        }
        // Collected into a map, a repeated name keeps its last treatment, and a repeated flag its last parameter.
        let ts = &it.treatments;
        let last_treatments = ts.iter().enumerate().filter(|(i, t)| !ts[i + 1..].iter().any(|u| u.name == t.name));
        let mut names = 0;
        for (_, t) in last_treatments {
            names += 1;
            let Some(d) = self.treatments.get(&t.name) else { return false };
            if d.baseline != t.baseline || !t.allocation_percent.canonical_eq(&d.allocation_percent) {
                return false;
            }
            let ps = &t.parameters;
            let mut flags = 0;
            for (i, (flag, variation)) in ps.iter().enumerate().filter_map(|(i, p)| Some((i, pair(p)?))) {
                if ps[i + 1..].iter().filter_map(pair).any(|(f, _)| f == flag) {
                    continue;
                }
                flags += 1;
                if d.variations.get(flag).map(String::as_str) != Some(variation) {
                    return false;
                }
            }
            if flags != d.variations.len() {
                return false;
            }
        }
        if names != self.treatments.len() || it.flags.len() != self.flags.len() {
            return false;
        }
        it.flags.iter().all(|(k, f)| {
            self.flags.get(k).is_some_and(|d| {
                d.rule_id == f.targeting_rule.as_deref().unwrap_or("fallthrough")
                    && d.not_in_experiment_variation_id == f.not_in_experiment_variation_id
            })
        })
    }

    /// Canonical allocation text for a spec value.
    pub fn canonical_allocation(v: f64) -> String {
        NumString::from_f64(v).0
    }
}

/// A treatment parameter's flag and variation, when it names both: only those count, in both comparisons.
fn pair(p: &ParameterRep) -> Option<(&str, &str)> {
    Some((p.flag_key.as_deref()?, p.variation_id.as_deref()?))
}

/// The primary metric an iteration names, whichever representation carries it, and whether it is a group.
fn primary_of(it: &IterationRep) -> Option<(&str, bool)> {
    it.primary_single_metric
        .as_ref()
        .map(|m| (m.key.as_str(), false))
        .or_else(|| it.primary_funnel.as_ref().map(|m| (m.key.as_str(), true)))
        .or_else(|| it.primary_metric.as_ref().map(|m| (m.key.as_str(), m.is_group.unwrap_or(false))))
}

/// Whether the distinct items of `items` are exactly `sorted`, a strictly ascending sequence (a `BTreeSet`'s).
fn same_set<T: Ord + Copy>(mut items: Vec<T>, sorted: impl ExactSizeIterator<Item = T>) -> bool {
    items.sort_unstable();
    items.dedup();
    items.len() == sorted.len() && items.into_iter().eq(sorted)
}

/// Whether two legacy `experiments` values mean the same thing: the same `baselineIdx`, and the same metrics with
/// the same environments, whatever the order of items or of environments. A metric listed twice is kept twice, so
/// a duplicate is always a difference. The planner decides with this whether a flag needs a patch; the applier
/// checks the `FlagExperiments` expectation with it.
pub fn legacy_equivalent(a: &LegacyExperiments, b: &LegacyExperiments) -> bool {
    a.baseline_idx == b.baseline_idx && legacy_items(a) == legacy_items(b)
}

/// The items of a legacy `experiments` value as sorted `(metricKey, environments)` pairs.
pub fn legacy_items(e: &LegacyExperiments) -> Vec<(&str, BTreeSet<&str>)> {
    let mut items: Vec<(&str, BTreeSet<&str>)> =
        e.items.iter().map(|i| (i.metric_key.as_str(), i.environments.iter().map(String::as_str).collect())).collect();
    items.sort();
    items
}

#[cfg(test)]
mod legacy_tests {
    use super::*;
    use crate::api::LegacyExperiment;

    fn item(k: &str, envs: &[&str]) -> LegacyExperiment {
        LegacyExperiment { metric_key: k.to_owned(), environments: envs.iter().map(|e| (*e).to_owned()).collect() }
    }

    #[test]
    fn order_of_items_and_environments_is_not_a_difference() {
        let a = LegacyExperiments { baseline_idx: 1, items: vec![item("a", &["p", "s"]), item("b", &[])] };
        let b = LegacyExperiments { baseline_idx: 1, items: vec![item("b", &[]), item("a", &["s", "p"])] };
        assert!(legacy_equivalent(&a, &b));
    }

    #[test]
    fn baseline_environments_and_duplicates_are_differences() {
        let a = LegacyExperiments { baseline_idx: 0, items: vec![item("a", &["p"])] };
        assert!(!legacy_equivalent(&a, &LegacyExperiments { baseline_idx: 1, ..a.clone() }));
        assert!(!legacy_equivalent(&a, &LegacyExperiments { baseline_idx: 0, items: vec![item("a", &["s"])] }));
        let dup = LegacyExperiments { baseline_idx: 0, items: vec![item("a", &["p"]), item("a", &["p"])] };
        assert!(!legacy_equivalent(&a, &dup));
    }
}
