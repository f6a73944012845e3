//! Metrics, metric groups and experimentation settings: golden plans for every cell (create, update,
//! creation-only, prune-delete, delete refused while used, a cross-kind create) and the order they depend on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_core::api::{Metric, MetricSummary};
use ldexp_core::plan::{Action, Address};
use ldexp_planner::{PlanOptions, plan, plan_with};

const UNIT_METRIC_GROUP: &str = "kind: ExperimentationSettings
project: demo
randomizationUnits:
  - randomizationUnit: user
    default: true
  - randomizationUnit: organization
---
kind: Metric
project: demo
key: checkout-conversion
name: Checkout conversion
eventKind: custom
eventKey: checkout-completed
isNumeric: false
randomizationUnits: [user, organization]
tags: [checkout]
---
kind: MetricGroup
project: demo
key: checkout-funnel
name: Checkout funnel
groupKind: funnel
metrics:
  - key: checkout-completed
    nameInGroup: Landing
  - key: checkout-conversion
    nameInGroup: Purchase
maintainerId: member-1";

fn experiment_using_them() -> String {
    experiment_yaml("draft").replace("  randomizationUnit: user\n", "  randomizationUnit: organization\n").replace(
        "    - key: purchase-funnel\n      group: true\n",
        "    - checkout-conversion\n    - key: checkout-funnel\n      group: true\n",
    )
}

fn address(a: &Address) -> String {
    a.to_string()
}

#[test]
fn a_unit_a_metric_a_funnel_and_the_experiment_are_created_in_dependency_order() {
    let text = format!("{UNIT_METRIC_GROUP}\n---\n{}", experiment_using_them());
    let specs = specs("specs/catalog.yaml", &text);
    let p = plan(&specs, &remote(Vec::new())).unwrap();
    let order: Vec<(String, Action, Vec<String>)> =
        p.changes.iter().map(|c| (address(&c.address), c.action, c.depends_on.iter().map(address).collect())).collect();
    assert_eq!(
        order,
        [
            ("experimentation-settings/demo".into(), Action::Update, vec![]),
            ("metric/demo/checkout-conversion".into(), Action::Create, vec!["experimentation-settings/demo".into()]),
            (
                "metric-group/demo/checkout-funnel".into(),
                Action::Create,
                vec!["metric/demo/checkout-conversion".into()]
            ),
            (
                "experiment/demo/production/checkout".into(),
                Action::Create,
                vec![
                    "experimentation-settings/demo".into(),
                    "metric/demo/checkout-conversion".into(),
                    "metric-group/demo/checkout-funnel".into()
                ]
            ),
        ]
    );
    insta::assert_json_snapshot!(p);
}

fn remote_with_catalog() -> ldexp_core::remote::RemoteState {
    let mut r = remote(Vec::new());
    let project = r.projects.get_mut("demo").unwrap().as_mut().unwrap();
    let conversion: Metric = serde_json::from_value(serde_json::json!({
        "_id": "m-conv", "key": "checkout-conversion", "name": "Conversion", "kind": "custom",
        "eventKey": "checkout-completed", "isNumeric": false, "randomizationUnits": ["organization", "user"],
        "tags": ["checkout"], "maintainerId": "member-1", "experimentCount": 0
    }))
    .unwrap();
    project.metrics.insert(conversion.key.clone(), conversion);
    project
        .settings
        .as_mut()
        .unwrap()
        .randomization_units
        .push(ldexp_core::api::RandomizationUnit { randomization_unit: "organization".into(), ..Default::default() });
    r
}

#[test]
fn an_update_is_a_json_patch_guarded_by_the_old_values_and_sets_compare_without_order() {
    let specs = specs("specs/catalog.yaml", UNIT_METRIC_GROUP.split("\n---\n").nth(1).unwrap());
    let p = plan(&specs, &remote_with_catalog()).unwrap();
    assert_eq!(p.changes.len(), 1, "{:#?}", p.changes);
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Update);
    // Only the name differs: the units came back in another order.
    assert_eq!(
        c.requests[0].body.as_ref().unwrap(),
        &serde_json::json!([
            {"op": "test", "path": "/name", "value": "Conversion"},
            {"op": "replace", "path": "/name", "value": "Checkout conversion"}
        ])
    );
    insta::assert_json_snapshot!(p);
}

#[test]
fn a_changed_event_kind_or_key_refuses_the_metric() {
    let doc =
        UNIT_METRIC_GROUP.split("\n---\n").nth(1).unwrap().replace("eventKey: checkout-completed", "eventKey: bought");
    let specs = specs("specs/catalog.yaml", &doc);
    let p = plan(&specs, &remote_with_catalog()).unwrap();
    assert!(p.changes.is_empty(), "a refused object plans nothing, not even its name");
    assert_eq!(p.refused_addresses().len(), 1);
    insta::assert_json_snapshot!(p.divergences);
}

const OWNS: &str = "kind: Workspace
projects:
  - key: demo
    environments: [production]
    owns: [experiments, metrics, metricGroups]";

#[test]
fn unmanaged_metrics_are_listed_and_pruned_only_where_the_workspace_owns_them_and_nothing_uses_them() {
    let mut r = remote(Vec::new());
    let project = r.projects.get_mut("demo").unwrap().as_mut().unwrap();
    // `purchase-funnel` holds `revenue`: the group goes first, then the metric it held.
    project.metric_groups.get_mut("purchase-funnel").unwrap().metrics =
        vec![MetricSummary { key: "revenue".into(), ..MetricSummary::default() }];
    // Its legacy experiments use two of the metrics (see `a_delete_is_refused_while_an_experiment_uses_the_object`).
    project.flags.remove("hero-banner");
    // No spec uses anything: every metric and group of the project is unmanaged.
    let specs = specs("specs/catalog.yaml", OWNS);
    let listed = plan(&specs, &r).unwrap();
    let unmanaged: Vec<String> = listed.unmanaged.iter().map(|u| address(&u.address)).collect();
    assert_eq!(
        unmanaged,
        [
            "metric-group/demo/purchase-funnel",
            "metric/demo/checkout-completed",
            "metric/demo/page-load-ms",
            "metric/demo/revenue"
        ]
    );
    assert!(listed.changes.iter().all(|c| c.action != Action::Delete), "without --prune nothing is deleted");
    let pruned = plan_with(&specs, &r, &PlanOptions { prune: true }).unwrap();
    let deletes: Vec<(String, Vec<String>)> = pruned
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (address(&c.address), c.depends_on.iter().map(address).collect()))
        .collect();
    assert_eq!(
        deletes,
        [
            ("metric-group/demo/purchase-funnel".into(), vec![]),
            ("metric/demo/revenue".into(), vec!["metric-group/demo/purchase-funnel".into()]),
            ("metric/demo/page-load-ms".into(), vec![]),
            ("metric/demo/checkout-completed".into(), vec![]),
        ]
    );
    insta::assert_json_snapshot!(pruned);
}

#[test]
fn a_delete_is_refused_while_an_experiment_uses_the_object() {
    let text = format!("{OWNS}\n---\n{}", experiment_yaml("draft"));
    let mut r = remote(vec![state("draft-same").unwrap()]);
    let project = r.projects.get_mut("demo").unwrap().as_mut().unwrap();
    project.metrics.get_mut("page-load-ms").unwrap().experiment_count = Some(2);
    let specs = specs("specs/catalog.yaml", &text);
    let err = plan_with(&specs, &r, &PlanOptions { prune: true }).unwrap_err();
    let messages: Vec<String> = err.problems().iter().map(|p| format!("{}: {}", p.address, p.message)).collect();
    insta::assert_json_snapshot!(messages);
}

#[test]
fn a_group_is_not_created_without_a_maintainer() {
    let doc = UNIT_METRIC_GROUP.split("\n---\n").nth(2).unwrap().replace("\nmaintainerId: member-1", "");
    let specs = specs("specs/catalog.yaml", &doc);
    let err = plan(&specs, &remote(Vec::new())).unwrap_err();
    let messages: Vec<String> =
        err.problems().iter().map(|p| format!("{} {}: {}", p.location, p.address, p.message)).collect();
    assert_eq!(
        messages,
        [
            "specs/catalog.yaml:3:6 metric-group/demo/checkout-funnel: LaunchDarkly requires `maintainerId` to create a metric group"
        ]
    );
}
