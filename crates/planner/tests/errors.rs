//! Plan errors: every reference problem and every creation-only difference, all reported together with
//! the `file:line:col` of the spec field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_planner::plan;

fn problems(yaml: &str, remote_experiments: Vec<ldexp_core::api::Experiment>) -> Vec<String> {
    let e = plan(&specs("specs/bad.yaml", yaml), &remote(remote_experiments)).unwrap_err();
    e.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn every_reference_error_is_reported_together() {
    let yaml = "kind: Experiment
project: demo
environments: [production, nowhere]
key: broken
name: Broken
state: running
iteration:
  hypothesis: Everything is wrong
  randomizationUnit: org
  primaryMetric: ghost-metric
  metrics:
    - revenue
    - key: checkout-completed
      group: true
    - purchase-funnel
    - missing-metric
    - key: ghost-group
      group: true
  flags:
    checkout-button:
      rule: vip users
      notInExperimentVariation: purple
    missing-flag:
      rule: fallthrough
  treatments:
    - name: Control
      baseline: true
      allocationPercent: 50
      variations:
        checkout-button: blue
        missing-flag: on
    - name: Orange
      allocationPercent: 50
      variations:
        checkout-button: orange
        missing-flag: off
---
kind: Experiment
project: nope
environment: production
key: lost
name: Lost
state: draft
iteration:
  hypothesis: The project is missing
  primaryMetric: revenue
  metrics: [revenue]
  flags:
    checkout-button: {}
  treatments:
    - name: Control
      baseline: true
      allocationPercent: 100
      variations:
        checkout-button: Control
---
kind: Experiment
project: demo
environment: qa
key: off-flag
name: Off flag
state: running
iteration:
  hypothesis: The flag is off in qa
  primaryMetric: revenue
  metrics: [revenue]
  flags:
    checkout-button:
      ruleId: rule-gone
  treatments:
    - name: Control
      baseline: true
      allocationPercent: 100
      variations:
        checkout-button: Control
---
kind: LegacyFlagExperiments
project: demo
flag: hero-banner
baseline: Maybe
metrics:
  - key: revenue
    environments: [production, moon]
  - key: nonexistent
    environments: []
---
kind: LegacyFlagExperiments
project: demo
flag: gone-flag
baseline: 0
metrics: []
";
    insta::assert_snapshot!(problems(yaml, vec![]).join("\n"));
}

#[test]
fn the_flag_being_off_only_matters_when_the_plan_starts_an_iteration() {
    let yaml = experiment_yaml("running").replace("environment: production", "environment: qa");
    let got = problems(&yaml, vec![]);
    assert_eq!(
        got,
        ["specs/bad.yaml:7:8: experiment/demo/qa/checkout: state: running, but flag `checkout-button` is off in \
          environment `qa`, so startIteration would fail (hint: turn `checkout-button` on in `qa` first, or use \
          state: draft)"]
    );
    // A draft in the same environment is fine.
    let yaml = experiment_yaml("draft").replace("environment: production", "environment: qa");
    assert!(plan(&specs("specs/ok.yaml", &yaml), &remote(vec![])).is_ok());
}

#[test]
fn creation_only_differences_refuse_only_their_object() {
    let yaml = experiment_yaml("running").replace(
        "state: running",
        "maintainerId: maint-2
tags: [checkout, q3]
methodology: frequentist
dataSource: snowflake
holdoutId: holdout-9
analysisConfig:
  bayesianThreshold: 95
  sequentialTestingEnabled: true
state: running",
    );
    // A second experiment in the same file still plans: only the first is refused.
    let other = experiment_yaml("draft").replace("key: checkout", "key: other");
    let yaml = format!("{}\n---\n{other}", yaml.trim_end());
    let mut remote_exp = state("running-same").unwrap();
    remote_exp.tags = vec!["checkout".into()];
    remote_exp.analysis_config = Some(
        serde_json::from_value(serde_json::json!({"bayesianThreshold": "90", "sequentialTestingEnabled": true}))
            .unwrap(),
    );
    let p = plan(&specs("specs/bad.yaml", &yaml), &remote(vec![remote_exp])).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].address.to_string(), "experiment/demo/production/other");
    assert_eq!(p.refused_addresses().len(), 1);
    assert_eq!(p.summary.refused, 1);
    assert!(p.divergences.iter().all(|d| d.refuses));
    let lines: Vec<String> = p
        .divergences
        .iter()
        .map(|d| {
            format!(
                "{} {} {}: remote {} spec {} ({})",
                d.location,
                d.address,
                d.field,
                serde_json::to_string(&d.remote).unwrap(),
                serde_json::to_string(&d.spec).unwrap(),
                d.hint.as_deref().unwrap_or_default()
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn a_creation_only_field_removed_from_the_spec_is_a_difference_to_the_empty_value() {
    // The spec names no tags, methodology or analysis settings: the API's empty values.
    let mut remote_exp = state("running-same").unwrap();
    remote_exp.tags = vec!["checkout".into()];
    remote_exp.methodology = Some("frequentist".into());
    remote_exp.analysis_config =
        Some(serde_json::from_value(serde_json::json!({"sequentialTestingEnabled": true})).unwrap());
    let p = plan(&specs("specs/bad.yaml", &experiment_yaml("running")), &remote(vec![remote_exp])).unwrap();
    let got: Vec<(&str, String, String)> = p
        .divergences
        .iter()
        .map(|d| (d.field.as_str(), serde_json::to_string(&d.remote).unwrap(), serde_json::to_string(&d.spec).unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("analysisConfig.sequentialTestingEnabled", "\"true\"".to_owned(), "null".to_owned()),
            ("methodology", "\"frequentist\"".to_owned(), "\"bayesian\"".to_owned()),
            ("tags", "[\"checkout\"]".to_owned(), "[]".to_owned()),
        ]
    );
    assert!(p.changes.is_empty());
    // The maintainer is the one exception: LaunchDarkly always has one, so a spec without it does not compare it.
    let mut remote_exp = state("running-same").unwrap();
    remote_exp.maintainer_id = "someone-else".into();
    let p = plan(&specs("specs/ok.yaml", &experiment_yaml("running")), &remote(vec![remote_exp])).unwrap();
    assert!(p.divergences.is_empty() && p.is_empty());
}

#[test]
fn creation_only_fields_equal_to_the_remote_are_fine() {
    let yaml = experiment_yaml("running")
        .replace("state: running", "maintainerId: maint-1\nmethodology: bayesian\nstate: running");
    let p = plan(&specs("specs/ok.yaml", &yaml), &remote(vec![state("running-same").unwrap()])).unwrap();
    assert!(p.is_empty());
}

#[test]
fn two_specs_for_one_experiment_conflict() {
    let yaml = format!("{}\n---\n{}", experiment_yaml("draft").trim_end(), experiment_yaml("draft"));
    let got = problems(&yaml, vec![]);
    assert_eq!(
        got,
        ["specs/bad.yaml:34:6: experiment/demo/production/checkout: another spec already manages this experiment, at \
          specs/bad.yaml:4:6 (hint: each experiment key may appear once per project and environment)"]
    );
}

#[test]
fn diagnostics_carry_the_location_and_hint() {
    let yaml = experiment_yaml("draft").replace("checkout-button: green", "checkout-button: teal");
    let e = plan(&specs("specs/bad.yaml", &yaml), &remote(vec![])).unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!((d.file.as_str(), d.line, d.column), ("specs/bad.yaml", 29, 26));
    assert_eq!(
        d.message,
        "experiment/demo/production/checkout: flag `checkout-button` has no variation with name, value or _id `teal`"
    );
    assert_eq!(
        d.help.as_deref(),
        Some(
            "candidates: name `Control`, value \"blue\", _id `v-blue`; name `Green`, value \"green\", _id `v-green`; value \"red\", _id `v-red`"
        )
    );
}

#[test]
fn an_archived_flag_cannot_start_an_iteration() {
    let yaml = experiment_yaml("running").replace("environment: production", "environment: staging");
    let mut state = remote(vec![]);
    let project = state.projects.get_mut("demo").unwrap().as_mut().unwrap();
    let mut raw = checkout_flag();
    raw["environments"]["staging"]["archived"] = serde_json::json!(true);
    project.flags.insert("checkout-button".into(), Some(ldexp_core::remote::FlagSnapshot::from_json(raw).unwrap()));
    let e = plan(&specs("specs/bad.yaml", &yaml), &state).unwrap_err();
    assert_eq!(
        e.problems()[0].message,
        "state: running, but flag `checkout-button` is archived in environment `staging`, so startIteration would fail"
    );
}
