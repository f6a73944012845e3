//! Legacy flag experiments: add, remove, environment changes and baseline, each one guarded JSON patch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_core::api::LegacyExperiments;
use ldexp_core::design::legacy_equivalent;
use ldexp_core::plan::{Change, Expectation, Plan};
use ldexp_planner::plan;

fn legacy_yaml(baseline: &str, metrics: &str) -> String {
    format!("kind: LegacyFlagExperiments\nproject: demo\nflag: hero-banner\nbaseline: {baseline}\nmetrics:\n{metrics}")
}

fn run(baseline: &str, metrics: &str) -> Plan {
    let p = plan(&specs("specs/legacy.yaml", &legacy_yaml(baseline, metrics)), &remote(vec![])).unwrap();
    assert!(p.unmanaged.is_empty());
    p
}

/// Applies the planned patch to the fetched flag, as LaunchDarkly would, and checks the expectation holds.
fn applied(change: &Change) -> LegacyExperiments {
    let body = change.requests[0].body.as_ref().unwrap();
    assert_eq!(body["comment"], "ldexp: patch-legacy legacy/demo/hero-banner");
    let patch: json_patch::Patch = serde_json::from_value(body["patch"].clone()).unwrap();
    let mut flag = legacy_flag();
    json_patch::patch(&mut flag, &patch).unwrap();
    let got: LegacyExperiments = serde_json::from_value(flag["experiments"].clone()).unwrap();
    let Expectation::FlagExperiments { experiments } = &change.requests[0].expect[0] else { panic!("expectation") };
    assert!(legacy_equivalent(&got, experiments));
    got
}

const SAME: &str = "  - key: checkout-completed\n    environments: [production]\n  - key: revenue\n    environments: [production, staging]\n";

#[test]
fn matching_experiments_in_another_order_are_no_change() {
    let p = run(
        "Off",
        "  - key: revenue\n    environments: [staging, production]\n  - key: checkout-completed\n    environments: [production]\n",
    );
    assert!(p.changes.is_empty());
}

#[test]
fn legacy_add_appends_a_metric() {
    let p = run("Off", &format!("{SAME}  - key: page-load-ms\n    environments: [staging]\n"));
    assert_eq!(p.summary.patch_legacy, 1);
    assert!(p.changes[0].risks.is_empty());
    insta::assert_json_snapshot!(p.changes[0]);
    assert_eq!(applied(&p.changes[0]).items.len(), 3);
}

#[test]
fn legacy_remove_is_guarded_by_a_test_of_the_metric_key() {
    let p = run("Off", "  - key: revenue\n    environments: [production, staging]\n");
    insta::assert_json_snapshot!(p.changes[0]);
    assert_eq!(applied(&p.changes[0]).items.len(), 1);
}

#[test]
fn legacy_environment_changes_add_and_remove_environments() {
    let p = run(
        "Off",
        "  - key: checkout-completed\n    environments: [production, staging]\n  - key: revenue\n    environments: [staging]\n",
    );
    insta::assert_json_snapshot!(p.changes[0]);
    let got = applied(&p.changes[0]);
    assert_eq!(got.items[1].environments, ["staging"]);
}

#[test]
fn legacy_baseline_resolves_by_name_value_or_index() {
    for baseline in ["On", "true", "1"] {
        let p = run(baseline, SAME);
        assert_eq!(
            serde_json::to_value(&p.changes[0].requests[0].body.as_ref().unwrap()["patch"]).unwrap(),
            serde_json::json!([
                {"op": "test", "path": "/experiments/baselineIdx", "value": 0},
                {"op": "replace", "path": "/experiments/baselineIdx", "value": 1}
            ]),
            "baseline {baseline}"
        );
    }
    insta::assert_json_snapshot!(run("On", SAME).changes[0].fields);
}

#[test]
fn removing_a_metric_without_environments_still_shows_as_a_field() {
    let p = run("Off", &format!("{SAME}  - key: page-load-ms\n    environments: []\n"));
    assert_eq!(
        serde_json::to_value(&p.changes[0].fields).unwrap(),
        serde_json::json!([{"field": "items.page-load-ms.environments", "after": []}])
    );
}

#[test]
fn everything_else_in_the_flag_is_untouched() {
    let p = run("On", "  - key: page-load-ms\n    environments: []\n");
    let body = p.changes[0].requests[0].body.as_ref().unwrap();
    let patch: json_patch::Patch = serde_json::from_value(body["patch"].clone()).unwrap();
    let mut flag = legacy_flag();
    json_patch::patch(&mut flag, &patch).unwrap();
    let before = legacy_flag();
    for key in before.as_object().unwrap().keys().filter(|k| *k != "experiments") {
        assert_eq!(flag[key], before[key], "{key}");
    }
    assert_eq!(
        flag["experiments"],
        serde_json::json!({"baselineIdx": 1, "items": [{"metricKey": "page-load-ms", "environments": []}]})
    );
}

#[test]
fn a_numeric_baseline_on_a_flag_with_numeric_values_warns_and_says_how_it_was_read() {
    let mut state = remote(vec![]);
    let mut raw = legacy_flag();
    raw["variations"] = serde_json::json!([
        {"_id": "n-1", "value": 1, "name": "One"},
        {"_id": "n-2", "value": 2, "name": "Two"}
    ]);
    let project = state.projects.get_mut("demo").unwrap().as_mut().unwrap();
    project.flags.insert("hero-banner".into(), Some(ldexp_core::remote::FlagSnapshot::from_json(raw).unwrap()));
    let warning = |baseline: &str| {
        let p = plan(&specs("specs/legacy.yaml", &legacy_yaml(baseline, SAME)), &state).unwrap();
        p.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        warning("1"),
        ["`baseline: 1` is ambiguous on a flag with numeric values (a value or an index); it was read as the \
          variation whose value it is: `One`, value 1, index 0. Write the variation's name to say which"]
    );
    assert_eq!(
        warning("0"),
        ["`baseline: 0` is ambiguous on a flag with numeric values (a value or an index); it was read as an index: \
          `One`, value 1, index 0. Write the variation's name to say which"]
    );
    // A name is never ambiguous, and neither is a number on a flag whose values are not numbers.
    assert!(warning("Two").is_empty());
    assert!(run("1", SAME).warnings.is_empty());
}
