//! The normalised experiment "design": what ldexp compares between a spec and a remote iteration, and what makes
//! the iteration body a create or a new iteration sends.
//!
//! Normalisation lives here, not in the planner, because the applier also needs it: after a lost
//! response it re-reads the experiment and checks whether the iteration it meant to create is there.
//! A design keeps its lists in the order they are sent (the spec's), and compares them as sets, so a reordered
//! server response is never a diff; allocations are [`Percent`]s, compared by value. `flagConfigVersion` is
//! deliberately absent: it moves whenever the flag changes and says nothing about the experiment, so the body
//! takes it from the flag at hand ([`Design::input`]).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::{
    FlagInput, IterationInput, IterationRep, LegacyExperiments, MetricInput, ParameterRep, Percent, TreatmentInput,
    TreatmentParameterInput,
};
use crate::flag_map::FlagMap;

/// LaunchDarkly's default randomization unit when an iteration does not name one.
pub const DEFAULT_RANDOMIZATION_UNIT: &str = "user";

/// The design of one iteration.
///
/// Serialised (in plans, as `before`/`after` and in postconditions) in a canonical form: attributes and metrics
/// sorted, treatments keyed by name. Equality is equality of that form.
#[derive(Debug, Clone)]
pub struct Design {
    pub hypothesis: String,
    pub can_reshuffle_traffic: bool,
    pub randomization_unit: String,
    /// In the order they are sent.
    pub attributes: Vec<String>,
    /// Metrics and metric groups in the order they are sent; the primary metric is among them.
    pub metrics: Vec<DesignMetric>,
    pub primary_metric: Option<String>,
    /// In the order they are sent, names distinct.
    pub treatments: Vec<DesignTreatment>,
    /// Sorted vectors, not B-trees: the planner builds a design for every spec in every environment, and an
    /// 11-slot node for each of these one-to-three-entry maps was most of what that allocated.
    pub flags: FlagMap<DesignFlag>,
}

/// A metric or metric group measured by an iteration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignMetric {
    pub key: String,
    pub group: bool,
}

/// A treatment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesignTreatment {
    pub name: String,
    pub baseline: bool,
    pub allocation_percent: Percent,
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

/// The canonical form of a design: how it is written in plans, and what equality compares.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Design", description = "The design of one iteration, in canonical form.")]
struct Canonical<'a> {
    hypothesis: std::borrow::Cow<'a, str>,
    can_reshuffle_traffic: bool,
    randomization_unit: std::borrow::Cow<'a, str>,
    attributes: BTreeSet<std::borrow::Cow<'a, str>>,
    metrics: BTreeSet<DesignMetric>,
    primary_metric: Option<String>,
    treatments: BTreeMap<String, CanonicalTreatment>,
    flags: FlagMap<DesignFlag>,
}

/// A treatment in the canonical form, keyed by its name.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "DesignTreatment")]
struct CanonicalTreatment {
    baseline: bool,
    allocation_percent: Percent,
    /// Flag key → variation `_id`.
    variations: FlagMap<String>,
}

impl Design {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            hypothesis: self.hypothesis.as_str().into(),
            can_reshuffle_traffic: self.can_reshuffle_traffic,
            randomization_unit: self.randomization_unit.as_str().into(),
            attributes: self.attributes.iter().map(|a| a.as_str().into()).collect(),
            metrics: self.metrics.iter().cloned().collect(),
            primary_metric: self.primary_metric.clone(),
            treatments: self
                .treatments
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        CanonicalTreatment {
                            baseline: t.baseline,
                            allocation_percent: t.allocation_percent.clone(),
                            variations: t.variations.clone(),
                        },
                    )
                })
                .collect(),
            flags: self.flags.clone(),
        }
    }

    /// The iteration body that creates this design, with each flag's `flagConfigVersion` from `flag_version`
    /// (the version of the flag in the experiment's environment now). Defaults are written out, so the iteration
    /// LaunchDarkly stores never depends on its defaults.
    pub fn input(&self, flag_version: impl Fn(&str) -> i64) -> IterationInput {
        let primary_group =
            self.metrics.iter().find(|m| Some(&m.key) == self.primary_metric.as_ref()).is_some_and(|m| m.group);
        IterationInput {
            hypothesis: self.hypothesis.clone(),
            can_reshuffle_traffic: Some(self.can_reshuffle_traffic),
            metrics: self.metrics.iter().map(|m| MetricInput { key: m.key.clone(), is_group: m.group }).collect(),
            primary_single_metric_key: self.primary_metric.clone().filter(|_| !primary_group),
            primary_funnel_key: self.primary_metric.clone().filter(|_| primary_group),
            treatments: self
                .treatments
                .iter()
                .map(|t| TreatmentInput {
                    name: t.name.clone(),
                    baseline: t.baseline,
                    allocation_percent: t.allocation_percent.clone(),
                    parameters: t
                        .variations
                        .iter()
                        .map(|(f, v)| TreatmentParameterInput { flag_key: f.clone(), variation_id: v.clone() })
                        .collect(),
                })
                .collect(),
            flags: self
                .flags
                .iter()
                .map(|(k, f)| {
                    (
                        k.clone(),
                        FlagInput {
                            rule_id: f.rule_id.clone(),
                            flag_config_version: flag_version(k),
                            not_in_experiment_variation_id: f.not_in_experiment_variation_id.clone(),
                        },
                    )
                })
                .collect(),
            randomization_unit: Some(self.randomization_unit.clone()),
            attributes: (!self.attributes.is_empty()).then(|| self.attributes.clone()),
        }
    }

    /// The design LaunchDarkly holds for an iteration, with the API's defaults filled in.
    pub fn from_iteration(it: &IterationRep) -> Self {
        // Older representations list only secondary metrics plus a primary; merge every source so the set is whole.
        let mut metrics: Vec<DesignMetric> = Vec::new();
        for m in it.metrics.iter().chain(it.secondary_metrics.iter()) {
            let m = DesignMetric { key: m.key.clone(), group: m.is_group.unwrap_or(false) };
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        let primary = primary_of(it);
        if let Some((key, group)) = primary
            && !metrics.iter().any(|m| m.key == key)
        {
            metrics.push(DesignMetric { key: key.to_owned(), group });
        }
        // A repeated name keeps its last treatment, as the comparison does.
        let mut treatments: Vec<DesignTreatment> = Vec::with_capacity(it.treatments.len());
        for t in &it.treatments {
            let d = DesignTreatment {
                name: t.name.clone(),
                baseline: t.baseline,
                allocation_percent: t.allocation_percent.canonical(),
                variations: t
                    .parameters
                    .iter()
                    .filter_map(|p| pair(p).map(|(f, v)| (f.to_owned(), v.to_owned())))
                    .collect(),
            };
            match treatments.iter_mut().find(|x| x.name == d.name) {
                Some(x) => *x = d,
                None => treatments.push(d),
            }
        }
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
            attributes: it.attributes.clone(),
            metrics,
            primary_metric: primary.map(|(k, _)| k.to_owned()),
            treatments,
            flags,
        }
    }

    /// Whether `Design::from_iteration(it) == *self`, decided without building that design: the planner asks
    /// this of every managed experiment on every plan, and materialising the remote design (a dozen strings and
    /// maps) was a fifth of planning time at 10,000 experiments. `matches_iteration_agrees_with_from_iteration`
    /// holds the two to the same answer.
    pub fn matches_iteration(&self, it: &IterationRep) -> bool {
        if self.hypothesis != it.hypothesis
            || self.can_reshuffle_traffic != it.can_reshuffle_traffic.unwrap_or(true)
            || self.randomization_unit != it.randomization_unit.as_deref().unwrap_or(DEFAULT_RANDOMIZATION_UNIT)
        {
            return false;
        }
        if !same_set(
            it.attributes.iter().map(String::as_str).collect(),
            self.attributes.iter().map(String::as_str).collect(),
        ) {
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
            || !same_set(metrics, self.metrics.iter().map(|m| (m.key.as_str(), m.group)).collect())
        {
            return false;
        }
        // Collected into a map, a repeated name keeps its last treatment, and a repeated flag its last parameter.
        let ts = &it.treatments;
        let last_treatments = ts.iter().enumerate().filter(|(i, t)| !ts[i + 1..].iter().any(|u| u.name == t.name));
        let mut names = 0;
        for (_, t) in last_treatments {
            names += 1;
            let Some(d) = self.treatments.iter().find(|d| d.name == t.name) else { return false };
            if d.baseline != t.baseline || d.allocation_percent != t.allocation_percent {
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
}

impl PartialEq for Design {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for Design {}

impl Serialize for Design {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.canonical().serialize(s)
    }
}

/// Read back from a plan: lists in canonical order, which is all a postcondition needs.
impl<'de> Deserialize<'de> for Design {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = Canonical::deserialize(d)?;
        Ok(Design {
            hypothesis: c.hypothesis.into_owned(),
            can_reshuffle_traffic: c.can_reshuffle_traffic,
            randomization_unit: c.randomization_unit.into_owned(),
            attributes: c.attributes.into_iter().map(std::borrow::Cow::into_owned).collect(),
            metrics: c.metrics.into_iter().collect(),
            primary_metric: c.primary_metric,
            treatments: c
                .treatments
                .into_iter()
                .map(|(name, t)| DesignTreatment {
                    name,
                    baseline: t.baseline,
                    allocation_percent: t.allocation_percent,
                    variations: t.variations,
                })
                .collect(),
            flags: c.flags,
        })
    }
}

impl JsonSchema for Design {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Canonical::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Canonical::json_schema(generator)
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

/// Whether `a` and `b` hold the same distinct items, in any order.
fn same_set<T: Ord + Copy>(mut a: Vec<T>, mut b: Vec<T>) -> bool {
    for v in [&mut a, &mut b] {
        v.sort_unstable();
        v.dedup();
    }
    a == b
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
