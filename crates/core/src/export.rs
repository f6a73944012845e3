//! Export: turns LaunchDarkly's remote state into spec documents, so teams can adopt ldexp for what exists. Pure,
//! but for [`fetch`] (module `reads`), which reads that state.
//!
//! The exported spec is the one whose plan against the same remote is empty. That fixes every choice here:
//! - the iteration described is the pending draft for a draft experiment, else the current iteration: the
//!   planner compares a running or stopped experiment with its current iteration, and a stopped spec's winner
//!   must be one of the described treatments. A draft waiting behind a running or stopped iteration is not
//!   exported (a spec describes one iteration);
//! - references are written the way a person would, but only when they resolve back to the same object under the
//!   planner's rules (name, else value, else `_id`; see `ldexp_planner`), so a duplicate name falls back to the
//!   value, then to the `_id`;
//! - fields equal to LaunchDarkly's defaults are omitted (`canReshuffleTraffic: true`, `randomizationUnit: user`,
//!   `methodology: bayesian`, `dataSource: launchdarkly`); creation-only fields that are set are kept, since the
//!   planner only compares what a spec sets.
//!
//! Metrics, metric groups and experimentation settings are exported by module `catalog`, layers, holdouts and an
//! experiment's place in them by module `org`, under the same rule.

mod catalog;
mod org;
mod reads;

pub use catalog::{export_group, export_metric, export_settings};
pub use org::{export_holdout, export_layer, place};
pub use reads::{Fetched, Kinds, fetch};

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;
use crate::api::{AnalysisConfig, Experiment, FeatureFlag, IterationRep, IterationStatus, Variation};
use crate::design::{DEFAULT_RANDOMIZATION_UNIT, Design, DesignMetric};
use crate::percent::Percent;
use crate::spec::{
    AnalysisConfigSpec, CorrectionMethod, CorrectionScope, DataSource, ExperimentSpec, ExperimentState, FlagMap,
    FlagSpec, IterationSpec, LegacyFlagExperimentsSpec, LegacyMetricSpec, Methodology, MetricRef, MetricRefDetailed,
    SpecDocument, StopSpec, TreatmentSpec, VariationRef,
};

/// The spec that describes `exp` (an experiment of `project`, in its `environmentKey`). `flags` holds every flag
/// of the experiment's iteration by key; their variations and rules turn ids into names.
pub fn export_experiment(
    exp: &Experiment,
    flags: &BTreeMap<String, FeatureFlag>,
    project: &str,
) -> Result<ExperimentSpec, Error> {
    let env = exp.environment_key.as_str();
    let resource = format!("experiment {project}/{env}/{}", exp.key);
    let fail = |message: String| Error::Export { resource: resource.clone(), message };
    let current = exp.current_iteration.as_ref();
    let class = match current.map(|c| c.status) {
        Some(IterationStatus::Running) => ExperimentState::Running,
        Some(IterationStatus::Stopped) => ExperimentState::Stopped,
        _ => ExperimentState::Draft,
    };
    let iteration = match class {
        ExperimentState::Draft => {
            exp.draft_iteration.as_ref().or_else(|| current.filter(|c| c.status == IterationStatus::NotStarted))
        }
        _ => current,
    }
    .ok_or_else(|| fail("it has no iteration to describe".to_owned()))?;

    let stop = if class == ExperimentState::Stopped && !exp.is_archived() {
        let winner = iteration
            .winning_treatment_id
            .as_ref()
            .and_then(|id| iteration.treatments.iter().find(|t| t.id.as_ref() == Some(id)))
            .ok_or_else(|| {
                fail(format!(
                    "it stopped without a winner among its treatments (winningTreatmentId {}), which a spec cannot \
                     express",
                    iteration.winning_treatment_id.as_deref().unwrap_or("unset")
                ))
            })?;
        Some(StopSpec { winner: winner.name.clone(), reason: iteration.winning_reason.clone() })
    } else {
        None
    };

    Ok(ExperimentSpec {
        project: project.to_owned(),
        environment: Some(env.to_owned()),
        environments: None,
        key: exp.key.clone(),
        name: exp.name.clone(),
        description: exp.description.clone(),
        maintainer_id: Some(exp.maintainer_id.clone()).filter(|m| !m.is_empty()),
        tags: Some(exp.tags.clone()).filter(|t| !t.is_empty()),
        methodology: match exp.methodology.as_deref() {
            None | Some("bayesian") => None,
            Some(m) => Some(parse_enum::<Methodology>(m).ok_or_else(|| fail(format!("unknown methodology `{m}`")))?),
        },
        analysis_config: match &exp.analysis_config {
            Some(a) => analysis_config(a).map_err(fail)?,
            None => None,
        },
        data_source: match exp.data_source.as_deref() {
            None | Some("launchdarkly") => None,
            Some(d) => Some(parse_enum::<DataSource>(d).ok_or_else(|| fail(format!("unknown data source `{d}`")))?),
        },
        holdout_id: exp.holdout_id.clone(),
        holdout: None,
        layer: None,
        state: if exp.is_archived() { ExperimentState::Archived } else { class },
        iteration: iteration_spec(iteration, flags, env).map_err(fail)?,
        stop,
    })
}

fn iteration_spec(
    it: &IterationRep,
    flags: &BTreeMap<String, FeatureFlag>,
    env: &str,
) -> Result<IterationSpec, String> {
    // The design is what the planner compares, so the spec is read off it rather than off the raw iteration.
    let design = Design::from_iteration(it);
    let primary = design.primary_metric.clone().ok_or("its iteration has no primary metric")?;
    let mut metrics: Vec<MetricRef> = Vec::new();
    // Primary first, as LaunchDarkly's UI lists it, then the rest in key order.
    let mut rest: Vec<&DesignMetric> = design.metrics.iter().filter(|m| m.key != primary).collect();
    rest.sort();
    rest.dedup();
    let ordered = design.metrics.iter().filter(|m| m.key == primary).take(1).chain(rest);
    for m in ordered {
        metrics.push(if m.group {
            MetricRef::Detailed(MetricRefDetailed { key: m.key.clone(), group: true })
        } else {
            MetricRef::Key(m.key.clone())
        });
    }
    let flag = |key: &str| flags.get(key).ok_or_else(|| format!("flag `{key}` of its iteration was not fetched"));

    let mut flag_specs = FlagMap::new();
    for (key, f) in &design.flags {
        let fl = flag(key)?;
        let mut spec = FlagSpec::default();
        if f.rule_id == "fallthrough" {
            spec.rule = Some("fallthrough".to_owned());
        } else {
            let rules = fl.environments.get(env).map(|e| e.rules.as_slice()).unwrap_or_default();
            let description = rules
                .iter()
                .find(|r| r.id.as_deref() == Some(f.rule_id.as_str()))
                .and_then(|r| r.description.as_deref())
                .filter(|d| !d.is_empty() && *d != "fallthrough")
                .filter(|d| rules.iter().filter(|r| r.description.as_deref() == Some(*d)).count() == 1);
            match description {
                Some(d) => spec.rule = Some(d.to_owned()),
                None => spec.rule_id = Some(f.rule_id.clone()),
            }
        }
        if let Some(id) = &f.not_in_experiment_variation_id {
            spec.not_in_experiment_variation = Some(variation_ref(fl, id)?);
        }
        flag_specs.insert(key.clone(), spec);
    }

    let mut treatments = Vec::new();
    for t in &it.treatments {
        let mut variations = FlagMap::new();
        let variations_of = design.treatments.iter().find(|d| d.name == t.name).map(|d| &d.variations);
        for (flag_key, variation_id) in variations_of.into_iter().flatten() {
            variations.insert(flag_key.clone(), variation_ref(flag(flag_key)?, variation_id)?);
        }
        treatments.push(TreatmentSpec {
            name: t.name.clone(),
            baseline: t.baseline,
            allocation_percent: t.allocation_percent.canonical(),
            variations,
        });
    }

    Ok(IterationSpec {
        hypothesis: design.hypothesis.clone(),
        can_reshuffle_traffic: Some(false).filter(|_| !design.can_reshuffle_traffic),
        randomization_unit: Some(design.randomization_unit.clone()).filter(|u| u != DEFAULT_RANDOMIZATION_UNIT),
        // Sorted: LaunchDarkly's order is not meaningful, and a stable file diffs well.
        attributes: Some(design.attributes.iter().cloned().collect::<std::collections::BTreeSet<_>>())
            .filter(|a| !a.is_empty())
            .map(|a| a.into_iter().collect()),
        change_justification: None,
        primary_metric: primary,
        metrics,
        flags: flag_specs,
        treatments,
    })
}

/// The friendliest reference to variation `id` of `flag` that resolves back to it.
fn variation_ref(flag: &FeatureFlag, id: &str) -> Result<VariationRef, String> {
    let index = flag
        .variations
        .iter()
        .position(|v| v.id.as_deref() == Some(id))
        .ok_or_else(|| format!("flag `{}` has no variation with _id `{id}`", flag.key))?;
    best_ref(flag, index, false).ok_or_else(|| {
        format!("variation `{id}` of flag `{}` shares its name, value and _id with another variation", flag.key)
    })
}

/// The first of name, value and `_id` (and, for the legacy baseline, the index) that names only variation `index`.
///
/// A reference is taken when it is unique against the union of every way a reference can match: stricter than
/// the planner's tiered resolution, so it resolves to `index` there whatever the tier. Failing that, one that the
/// tiered resolution itself sends to `index`.
fn best_ref(flag: &FeatureFlag, index: usize, with_index: bool) -> Option<VariationRef> {
    let v = flag.variations.get(index)?;
    let mut candidates = Vec::new();
    if let Some(n) = v.name.as_ref().filter(|n| !n.is_empty()) {
        candidates.push(VariationRef::Text(n.clone()));
    }
    match &v.value {
        Value::String(s) => candidates.push(VariationRef::Text(s.clone())),
        Value::Bool(b) => candidates.push(VariationRef::Bool(*b)),
        Value::Number(n) => candidates.push(VariationRef::Number(n.clone())),
        _ => {}
    }
    if let Some(id) = &v.id {
        candidates.push(VariationRef::Text(id.clone()));
    }
    if with_index {
        candidates.push(VariationRef::Number(index.into()));
    }
    let loose_unique = |r: &VariationRef| {
        let matching: Vec<usize> = flag
            .variations
            .iter()
            .enumerate()
            .filter(|(i, other)| loose_match(other, *i, r, with_index))
            .map(|(i, _)| i)
            .collect();
        matching == [index]
    };
    let tiered = |r: &VariationRef| tiered_resolve(flag, r, with_index) == Some(index);
    candidates.iter().find(|r| loose_unique(r)).or_else(|| candidates.iter().find(|r| tiered(r))).cloned()
}

/// The planner's resolution, tier by tier: name, value, `_id`, then (legacy) the index when no tier matched.
/// A tier with several matches is ambiguous.
fn tiered_resolve(flag: &FeatureFlag, r: &VariationRef, with_index: bool) -> Option<usize> {
    let text = r.to_string();
    let value_matches = |v: &Value| match (v, r.to_json()) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
        (value @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => written_as(value, &s),
        (value, wanted) => *value == wanted,
    };
    let tiers: [&dyn Fn(&Variation) -> bool; 3] =
        [&|v| v.name.as_deref() == Some(text.as_str()), &|v| value_matches(&v.value), &|v| {
            v.id.as_deref() == Some(text.as_str())
        }];
    for tier in tiers {
        let found: Vec<usize> = flag.variations.iter().enumerate().filter(|(_, v)| tier(v)).map(|(i, _)| i).collect();
        match found.as_slice() {
            [] => {}
            [one] => return Some(*one),
            _ => return None,
        }
    }
    match r {
        VariationRef::Number(n) if with_index => {
            n.as_u64().and_then(|i| usize::try_from(i).ok()).filter(|i| *i < flag.variations.len())
        }
        _ => None,
    }
}

/// Whether `r` could name `v` by any rule: name, `_id`, JSON-equal value (numbers numerically), a text
/// reference written like a scalar value, or (legacy) the index.
fn loose_match(v: &Variation, index: usize, r: &VariationRef, with_index: bool) -> bool {
    let text = r.to_string();
    let by_value = match (&v.value, r.to_json()) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => *a == b,
        (value @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => written_as(value, &s),
        (Value::String(a), _) => *a == text,
        (value, wanted) => *value == wanted,
    };
    let by_index = with_index && matches!(r, VariationRef::Number(n) if n.as_f64() == Some(index as f64));
    v.name.as_deref() == Some(text.as_str()) || v.id.as_deref() == Some(text.as_str()) || by_value || by_index
}

/// Whether a scalar `value` is written `s` (`42`, `true`).
fn written_as(value: &Value, s: &str) -> bool {
    let shown = value.to_string();
    shown == s
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

fn analysis_config(a: &AnalysisConfig) -> Result<Option<AnalysisConfigSpec>, String> {
    let spec = AnalysisConfigSpec {
        bayesian_threshold: a.bayesian_threshold.as_ref().map(Percent::canonical),
        significance_threshold: a.significance_threshold.as_ref().map(Percent::canonical),
        test_direction: a.test_direction.clone(),
        multiple_comparison_correction_method: a
            .multiple_comparison_correction_method
            .as_deref()
            .map(|m| {
                parse_enum::<CorrectionMethod>(m)
                    .ok_or_else(|| format!("unknown analysisConfig.multipleComparisonCorrectionMethod `{m}`"))
            })
            .transpose()?,
        multiple_comparison_correction_scope: a
            .multiple_comparison_correction_scope
            .as_deref()
            .map(|m| {
                parse_enum::<CorrectionScope>(m)
                    .ok_or_else(|| format!("unknown analysisConfig.multipleComparisonCorrectionScope `{m}`"))
            })
            .transpose()?,
        sequential_testing_enabled: a.sequential_testing_enabled,
    };
    Ok(Some(spec).filter(|s| *s != AnalysisConfigSpec::default()))
}

/// The legacy experiments of `flag` (of `project`) as a spec; `None` when it has none.
pub fn export_legacy(flag: &FeatureFlag, project: &str) -> Option<LegacyFlagExperimentsSpec> {
    let ex = &flag.experiments;
    if ex.items.is_empty() {
        return None;
    }
    let baseline = usize::try_from(ex.baseline_idx)
        .ok()
        .and_then(|i| best_ref(flag, i, true))
        // Out of range: write it as it is, and let the planner name the problem.
        .unwrap_or_else(|| VariationRef::Number(ex.baseline_idx.into()));
    Some(LegacyFlagExperimentsSpec {
        project: project.to_owned(),
        flag: flag.key.clone(),
        baseline,
        metrics: ex
            .items
            .iter()
            .map(|i| LegacyMetricSpec { key: i.metric_key.clone(), environments: i.environments.clone() })
            .collect(),
    })
}

/// One YAML document, opening with a `yaml-language-server` modeline that points editors at `schema_path`.
pub fn to_yaml(doc: &SpecDocument, schema_path: &str) -> String {
    let body = match serde_yaml::to_string(doc) {
        Ok(b) => b,
        // Unreachable for these types (every map key is a string); kept as a visible comment, never a panic.
        Err(e) => format!("# ldexp could not write this document: {e}\n"),
    };
    format!("# yaml-language-server: $schema={schema_path}\n{}", quote_yaml11_booleans(&body))
}

/// Quotes the plain scalars that YAML 1.1 readers (PyYAML, many editors) take for booleans: serde_yaml writes
/// YAML 1.2, where `off` is a string, but a variation named `off` must stay one for every reader. Lines inside
/// block scalars (multi-line text) are left as they are.
fn quote_yaml11_booleans(yaml: &str) -> String {
    let ambiguous = |t: &str| matches!(t.to_ascii_lowercase().as_str(), "y" | "n" | "yes" | "no" | "on" | "off");
    let quote = |t: &str| if ambiguous(t) { format!("'{t}'") } else { t.to_owned() };
    let mut out = String::with_capacity(yaml.len() + 16);
    // Indentation of the line that opened the block scalar being copied, if any.
    let mut block: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(b) = block {
            if line.trim().is_empty() || indent > b {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block = None;
        }
        let (lead, mut rest) = line.split_at(indent);
        let mut fixed = lead.to_owned();
        while let Some(r) = rest.strip_prefix("- ") {
            fixed.push_str("- ");
            rest = r;
        }
        // serde_yaml quotes any key that is not plain, and a plain key never holds ": ".
        let plain_key = !rest.starts_with(['\'', '"', '?']);
        match rest.split_once(": ").filter(|_| plain_key) {
            Some((k, v)) => {
                fixed.push_str(&quote(k));
                fixed.push_str(": ");
                fixed.push_str(&quote(v));
            }
            None => match rest.strip_suffix(':').filter(|_| plain_key) {
                Some(k) => {
                    fixed.push_str(&quote(k));
                    fixed.push(':');
                }
                None => fixed.push_str(&quote(rest)),
            },
        }
        let tail = fixed.trim_end();
        if tail.ends_with(['|', '>']) || tail.ends_with("|-") || tail.ends_with("|+") || tail.ends_with(">-") {
            block = Some(indent);
        }
        out.push_str(&fixed);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag() -> FeatureFlag {
        serde_json::from_value(json!({
            "key": "checkout-button", "_version": 3,
            "variations": [
                {"_id": "v-green", "value": "green", "name": "Green"},
                {"_id": "v-blue", "value": "blue", "name": "Blue"},
                {"_id": "v-off", "value": "grey"}
            ],
            "environments": {"production": {"on": true, "version": 7, "rules": [
                {"_id": "r-1", "description": "Beta users", "variation": 0},
                {"_id": "r-2", "description": "Same", "variation": 0},
                {"_id": "r-3", "description": "Same", "variation": 1}
            ]}},
            "experiments": {"baselineIdx": 0, "items": []}
        }))
        .unwrap()
    }

    fn flags() -> BTreeMap<String, FeatureFlag> {
        BTreeMap::from([("checkout-button".to_owned(), flag())])
    }

    fn iteration(status: &str, rule: &str) -> Value {
        json!({
            "_id": format!("it-{status}"), "hypothesis": "Green converts better\nthan blue.", "status": status,
            "createdAt": 1, "canReshuffleTraffic": true, "randomizationUnit": "user",
            "flags": {"checkout-button": {"targetingRule": rule, "flagConfigVersion": 7,
                "notInExperimentVariationId": "v-off", "_links": {}}},
            "primarySingleMetric": {"key": "orders", "name": "Orders", "kind": "custom", "_links": {}},
            "metrics": [
                {"key": "revenue", "name": "Revenue", "kind": "custom", "_links": {}},
                {"key": "funnel", "name": "Funnel", "kind": "funnel", "isGroup": true, "_links": {}},
                {"key": "orders", "name": "Orders", "kind": "custom", "_links": {}}
            ],
            "treatments": [
                {"_id": "t-blue", "name": "Control", "allocationPercent": "50", "baseline": true,
                 "parameters": [{"flagKey": "checkout-button", "variationId": "v-blue"}]},
                {"_id": "t-green", "name": "Green", "allocationPercent": "50", "baseline": false,
                 "parameters": [{"flagKey": "checkout-button", "variationId": "v-green"}]}
            ],
            "winningTreatmentId": "t-green", "winningReason": "clear lift"
        })
    }

    fn experiment(extra: Value) -> Experiment {
        let mut e = json!({"key": "checkout", "name": "Checkout button", "_maintainerId": "m-1", "_creationDate": 1,
            "environmentKey": "production", "_links": {}});
        if let (Some(e), Value::Object(x)) = (e.as_object_mut(), extra) {
            e.extend(x);
        }
        serde_json::from_value(e).unwrap()
    }

    #[test]
    fn a_running_experiment_becomes_a_readable_spec() {
        let e = experiment(json!({"description": "Owned by growth", "tags": ["web"],
            "currentIteration": iteration("running", "r-1")}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!(
            to_yaml(&SpecDocument::Experiment(spec), "../schema/ldexp.schema.json"),
            "# yaml-language-server: $schema=../schema/ldexp.schema.json
kind: Experiment
project: demo
environment: production
key: checkout
name: Checkout button
description: Owned by growth
maintainerId: m-1
tags:
- web
state: running
iteration:
  hypothesis: |-
    Green converts better
    than blue.
  primaryMetric: orders
  metrics:
  - orders
  - key: funnel
    group: true
  - revenue
  flags:
    checkout-button:
      rule: Beta users
      notInExperimentVariation: grey
  treatments:
  - name: Control
    baseline: true
    allocationPercent: 50.0
    variations:
      checkout-button: Blue
  - name: Green
    baseline: false
    allocationPercent: 50.0
    variations:
      checkout-button: Green
"
        );
    }

    #[test]
    fn a_stopped_experiment_names_its_winner_and_an_archived_one_only_its_state() {
        let e = experiment(json!({"currentIteration": iteration("stopped", "fallthrough"),
            "draftIteration": {"hypothesis": "next", "status": "not_started", "createdAt": 2}}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!(spec.state, ExperimentState::Stopped);
        assert_eq!(spec.stop, Some(StopSpec { winner: "Green".into(), reason: Some("clear lift".into()) }));
        assert_eq!(spec.iteration.hypothesis, "Green converts better\nthan blue.");
        assert_eq!(spec.iteration.flags["checkout-button"].rule.as_deref(), Some("fallthrough"));

        let e = experiment(json!({"currentIteration": iteration("stopped", "r-1"), "archivedDate": 5}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!(spec.state, ExperimentState::Archived);
        assert_eq!(spec.stop, None);
    }

    #[test]
    fn a_draft_is_read_from_the_pending_iteration() {
        let e = experiment(json!({"draftIteration": iteration("not_started", "r-1")}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!(spec.state, ExperimentState::Draft);
        assert_eq!(spec.iteration.treatments.len(), 2);
        let e = experiment(json!({"currentIteration": iteration("not_started", "r-1")}));
        assert_eq!(export_experiment(&e, &flags(), "demo").unwrap().state, ExperimentState::Draft);
        let e = experiment(json!({}));
        assert_eq!(
            export_experiment(&e, &flags(), "demo").unwrap_err().to_string(),
            "experiment demo/production/checkout: cannot export: it has no iteration to describe"
        );
    }

    #[test]
    fn an_ambiguous_rule_description_falls_back_to_the_rule_id() {
        let e = experiment(json!({"currentIteration": iteration("running", "r-2")}));
        let f = &export_experiment(&e, &flags(), "demo").unwrap().iteration.flags["checkout-button"];
        assert_eq!((f.rule.as_deref(), f.rule_id.as_deref()), (None, Some("r-2")));
    }

    #[test]
    fn defaults_are_omitted_and_other_values_kept() {
        let mut it = iteration("running", "r-1");
        it["canReshuffleTraffic"] = json!(false);
        it["randomizationUnit"] = json!("organization");
        it["attributes"] = json!(["country"]);
        let e = experiment(json!({"currentIteration": it, "methodology": "frequentist", "dataSource": "launchdarkly",
            "analysisConfig": {"significanceThreshold": "5", "multipleComparisonCorrectionMethod": "bonferroni"}}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!(spec.iteration.can_reshuffle_traffic, Some(false));
        assert_eq!(spec.iteration.randomization_unit.as_deref(), Some("organization"));
        assert_eq!(spec.iteration.attributes, Some(vec!["country".to_owned()]));
        assert_eq!(spec.methodology, Some(Methodology::Frequentist));
        assert_eq!(spec.data_source, None);
        let a = spec.analysis_config.unwrap();
        assert_eq!(a.significance_threshold, crate::percent::Percent::new(5.0));
        assert_eq!(a.multiple_comparison_correction_method, Some(CorrectionMethod::Bonferroni));

        let e = experiment(json!({"currentIteration": iteration("running", "r-1"), "methodology": "bayesian",
            "analysisConfig": {}}));
        let spec = export_experiment(&e, &flags(), "demo").unwrap();
        assert_eq!((spec.methodology, spec.analysis_config), (None, None));
        assert_eq!((spec.iteration.can_reshuffle_traffic, spec.iteration.randomization_unit), (None, None));

        let e = experiment(json!({"currentIteration": iteration("running", "r-1"), "dataSource": "bigquery"}));
        assert_eq!(
            export_experiment(&e, &flags(), "demo").unwrap_err().to_string(),
            "experiment demo/production/checkout: cannot export: unknown data source `bigquery`"
        );
    }

    #[test]
    fn unresolvable_references_and_winners_are_errors_naming_the_experiment() {
        let e = experiment(json!({"currentIteration": iteration("running", "r-1")}));
        assert_eq!(
            export_experiment(&e, &BTreeMap::new(), "demo").unwrap_err().to_string(),
            "experiment demo/production/checkout: cannot export: flag `checkout-button` of its iteration was not fetched"
        );
        let mut it = iteration("stopped", "r-1");
        it["winningTreatmentId"] = json!("t-gone");
        let e = experiment(json!({"currentIteration": it}));
        assert_eq!(
            export_experiment(&e, &flags(), "demo").unwrap_err().to_string(),
            "experiment demo/production/checkout: cannot export: it stopped without a winner among its treatments \
             (winningTreatmentId t-gone), which a spec cannot express"
        );
    }

    fn variations(vs: Value) -> FeatureFlag {
        serde_json::from_value(json!({"key": "f", "variations": vs})).unwrap()
    }

    #[test]
    fn variation_references_fall_back_from_name_to_value_to_id() {
        let f = variations(json!([
            {"_id": "a", "value": "x", "name": "Same"},
            {"_id": "b", "value": "y", "name": "Same"},
            {"_id": "c", "value": "y", "name": "C"},
            {"_id": "d", "value": true},
            {"_id": "e", "value": "true", "name": "E"},
            {"_id": "g", "value": {"o": 1}},
            {"_id": "h", "value": 42, "name": "a"}
        ]));
        let r = |id: &str| variation_ref(&f, id).unwrap().to_string();
        assert_eq!(r("a"), "x"); // duplicate name → value
        assert_eq!(r("b"), "b"); // duplicate name and value → _id
        assert_eq!(r("c"), "C");
        assert_eq!(r("d"), "d"); // `true` would also name the string value "true"
        assert_eq!(r("e"), "E");
        assert_eq!(r("g"), "g"); // objects cannot be written as a reference
        assert_eq!(r("h"), "42"); // its name `a` is another variation's _id
        assert_eq!(variation_ref(&f, "zz").unwrap_err(), "flag `f` has no variation with _id `zz`");
        let twins = variations(json!([{"_id": "a", "value": "x"}, {"_id": "a", "value": "x"}]));
        assert!(variation_ref(&twins, "a").unwrap_err().contains("shares its name, value and _id"));
    }

    #[test]
    fn words_yaml_1_1_reads_as_booleans_are_quoted_everywhere_but_in_text() {
        let mut f = variations(json!([{"_id": "a", "value": false, "name": "off"}, {"_id": "b", "value": true}]));
        f.key = "on".into();
        f.experiments.items =
            vec![crate::api::LegacyExperiment { metric_key: "yes".into(), environments: vec!["N".into()] }];
        let doc = SpecDocument::LegacyFlagExperiments(export_legacy(&f, "no").unwrap());
        let yaml = to_yaml(&doc, "s.json");
        assert_eq!(
            yaml,
            "# yaml-language-server: $schema=s.json\nkind: LegacyFlagExperiments\nproject: 'no'\nflag: 'on'\n\
             baseline: 'off'\nmetrics:\n- key: 'yes'\n  environments:\n  - 'N'\n"
        );
        assert_eq!(serde_yaml::from_str::<SpecDocument>(&yaml).unwrap(), doc);

        let e = experiment(json!({"currentIteration": iteration("running", "r-1")}));
        let mut spec = export_experiment(&e, &flags(), "demo").unwrap();
        spec.iteration.hypothesis = "first line\noff\n- yes\nkey: on".into();
        spec.iteration.flags.insert("on".into(), FlagSpec { rule: Some("fallthrough".into()), ..FlagSpec::default() });
        let doc = SpecDocument::Experiment(spec);
        let yaml = to_yaml(&doc, "s.json");
        assert!(
            yaml.contains("  hypothesis: |-\n    first line\n    off\n    - yes\n    key: on\n  primaryMetric:"),
            "{yaml}"
        );
        assert!(yaml.contains("\n    'on':\n      rule: fallthrough\n"), "{yaml}");
        assert_eq!(serde_yaml::from_str::<SpecDocument>(&yaml).unwrap(), doc);
    }

    #[test]
    fn legacy_experiments_export_with_a_named_baseline() {
        let mut f = flag();
        assert_eq!(export_legacy(&f, "demo"), None);
        f.experiments = serde_json::from_value(json!({"baselineIdx": 1, "items": [
            {"metricKey": "clicks", "environments": ["production"], "_environmentSettings": {}},
            {"metricKey": "signups", "environments": []}
        ]}))
        .unwrap();
        let spec = export_legacy(&f, "demo").unwrap();
        assert_eq!(spec.baseline, VariationRef::Text("Blue".into()));
        assert_eq!(
            to_yaml(&SpecDocument::LegacyFlagExperiments(spec), "schema.json"),
            "# yaml-language-server: $schema=schema.json
kind: LegacyFlagExperiments
project: demo
flag: checkout-button
baseline: Blue
metrics:
- key: clicks
  environments:
  - production
- key: signups
  environments: []
"
        );
        // Numeric values that collide with indices: the index is the last resort and must stay unique too.
        let mut n = variations(json!([{"value": 1}, {"value": 0}]));
        n.experiments.items = f.experiments.items.clone();
        n.experiments.baseline_idx = 0;
        assert_eq!(export_legacy(&n, "demo").unwrap().baseline, VariationRef::Number(1.into()));
        n.experiments.baseline_idx = 9;
        assert_eq!(export_legacy(&n, "demo").unwrap().baseline, VariationRef::Number(9.into()));
    }
}
