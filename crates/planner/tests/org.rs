//! Layers and holdouts: golden plans for every cell (a layer created, renamed, pruned; a reservation added,
//! changed, left, archived; a holdout created, joined, left, ended) and every refusal, with the order the requests
//! and changes must run in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_core::api::{Experiment, Holdout, Layer};
use ldexp_core::plan::{Action, Address, Plan};
use ldexp_core::remote::RemoteState;
use ldexp_planner::{PlanOptions, plan, plan_with};
use serde_json::json;

const LAYER: &str = "kind: Layer
project: demo
key: checkout-surface
name: Checkout surface
description: Experiments on the checkout page share this layer.";

const HOLDOUT: &str = "kind: Holdout
project: demo
environment: production
key: q4-holdout
name: Q4 holdout
randomizationUnit: user
holdoutAmount: 5
primaryMetric: checkout-completed
metrics: [checkout-completed]
maintainerId: member-1";

fn in_layer(state: &str, percent: u8) -> String {
    format!("{}layer: {{key: checkout-surface, reservationPercent: {percent}}}\n", experiment_yaml(state))
}

fn in_holdout(state: &str) -> String {
    format!("{}holdout: q4-holdout\n", experiment_yaml(state))
}

/// Another experiment `key` in production, a draft (one experiment runs per flag rule), as LaunchDarkly shows it.
fn other(key: &str) -> Experiment {
    let mut e = experiment(None, Some(iteration(&format!("{key}-it"), "not_started", D::Same)), false);
    e.key = key.to_owned();
    e.id = Some(format!("id-{key}"));
    e
}

fn layer(reservations: &[(&str, i64)]) -> Layer {
    serde_json::from_value(json!({
        "key": "checkout-surface",
        "name": "Checkout surface",
        "description": "Experiments on the checkout page share this layer.",
        "createdAt": 1_700_000_000_000_i64,
        "environments": {
            "production": {"reservations": reservations.iter().map(|(k, p)| json!({
                "experimentKey": k, "flagKey": "checkout-button", "reservationPercent": p
            })).collect::<Vec<_>>()},
            "staging": {"reservations": []}
        }
    }))
    .unwrap()
}

fn holdout(status: &str, experiments: &[&str]) -> Holdout {
    serde_json::from_value(json!({
        "_id": "h-1",
        "key": "q4-holdout",
        "name": "Q4 holdout",
        "status": status,
        "holdoutAmount": "5",
        "experiments": experiments.iter().map(|k| json!({"key": k, "environment": "production"})).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn with_org(mut remote: RemoteState, layers: Vec<Layer>, holdouts: Vec<Holdout>) -> RemoteState {
    let p = remote.projects.get_mut("demo").unwrap().as_mut().unwrap();
    p.layers = Some(layers.into_iter().map(|l| (l.key.clone(), l)).collect());
    p.holdouts.insert("production".into(), holdouts.into_iter().map(|h| (h.key().to_owned(), h)).collect());
    remote
}

fn plan_of(text: &str, remote: &RemoteState) -> Plan {
    plan(&specs("specs/org.yaml", text), remote).unwrap()
}

fn problems(text: &str, remote: &RemoteState) -> Vec<String> {
    plan(&specs("specs/org.yaml", text), remote)
        .unwrap_err()
        .problems()
        .iter()
        .map(|p| format!("{}: {}: {}", p.location, p.address, p.message))
        .collect()
}

/// Each change's address, action and dependencies, and each request's method, path and instruction kinds.
fn outline(p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for c in &p.changes {
        let deps: Vec<String> = c.depends_on.iter().map(Address::to_string).collect();
        out.push(format!("{} {} after [{}]", c.action, c.address, deps.join(", ")));
        for r in &c.requests {
            let kinds: Vec<String> = r
                .body
                .as_ref()
                .and_then(|b| b.get("instructions"))
                .and_then(|i| i.as_array())
                .map(|a| a.iter().filter_map(|i| i["kind"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let env = r.body.as_ref().and_then(|b| b.get("environmentKey")).and_then(|e| e.as_str());
            let on = r.object.as_ref().map(|o| format!(" on {o}")).unwrap_or_default();
            let env = env.map(|e| format!(" in {e}")).unwrap_or_default();
            out.push(format!("  {} {} [{}]{env}{on}", r.method, r.path, kinds.join(", ")));
        }
    }
    out
}

#[test]
fn a_new_layer_is_created_and_a_new_experiment_reserves_in_it_between_create_and_start() {
    let p = plan_of(&format!("{LAYER}\n---\n{}", in_layer("running", 40)), &with_org(remote(vec![]), vec![], vec![]));
    insta::assert_snapshot!(outline(&p).join("\n"));
    insta::assert_json_snapshot!(p);
}

#[test]
fn reservation_cells_add_change_leave_and_archive() {
    let running = state("running-same").unwrap();
    // add: a running experiment not in the layer joins it.
    let add = plan_of(&in_layer("running", 20), &with_org(remote(vec![running.clone()]), vec![layer(&[])], vec![]));
    // change: 40 → 30.
    let change = plan_of(
        &in_layer("running", 30),
        &with_org(remote(vec![running.clone()]), vec![layer(&[("checkout", 40)])], vec![]),
    );
    // leave: the spec names no layer any more.
    let leave = plan_of(
        &experiment_yaml("running"),
        &with_org(remote(vec![running.clone()]), vec![layer(&[("checkout", 40)])], vec![]),
    );
    // archive: the reservation goes first, then the stop and the archive.
    let archive =
        plan_of(&in_layer("archived", 40), &with_org(remote(vec![running]), vec![layer(&[("checkout", 40)])], vec![]));
    let all = [("add", add), ("change", change), ("leave", leave), ("archive", archive)]
        .iter()
        .map(|(name, p)| format!("{name}:\n{}", outline(p).join("\n")))
        .collect::<Vec<_>>()
        .join("\n\n");
    insta::assert_snapshot!(all);
}

#[test]
fn the_same_reservation_plans_nothing() {
    let running = state("running-same").unwrap();
    let p = plan_of(
        &format!("{LAYER}\n---\n{}", in_layer("running", 40)),
        &with_org(remote(vec![running]), vec![layer(&[("checkout", 40)])], vec![]),
    );
    assert!(p.is_empty(), "{:#?}", p.changes);
}

#[test]
fn raising_one_reservation_waits_for_lowering_another_in_the_same_layer() {
    let text = format!(
        "{}\n---\n{}",
        in_layer("running", 60),
        in_layer("draft", 30)
            .replace("key: checkout\n", "key: banner\n")
            .replace("name: Checkout button", "name: Banner")
    );
    let mut banner = other("banner");
    banner.name = "Banner".into();
    let remote = with_org(
        remote(vec![state("running-same").unwrap(), banner]),
        vec![layer(&[("checkout", 40), ("banner", 60)])],
        vec![],
    );
    let p = plan_of(&text, &remote);
    let raise = p.changes.iter().find(|c| c.address.to_string().ends_with("/checkout")).unwrap();
    assert_eq!(
        raise.depends_on,
        [Address::Experiment { project: "demo".into(), environment: "production".into(), key: "banner".into() }]
    );
    insta::assert_snapshot!(outline(&p).join("\n"));
}

#[test]
fn layer_refusals_over_100_percent_zero_once_started_and_an_unknown_layer() {
    let stray = remote(vec![state("running-same").unwrap(), other("stray")]);
    let over = problems(&in_layer("running", 70), &with_org(stray, vec![layer(&[("stray", 40)])], vec![]));
    let zero = problems(
        &in_layer("draft", 0),
        &with_org(remote(vec![state("running-same").unwrap()]), vec![layer(&[("checkout", 20)])], vec![]),
    );
    let unknown = problems(&in_layer("draft", 10), &with_org(remote(vec![]), vec![], vec![]));
    insta::assert_snapshot!([over, zero, unknown].concat().join("\n"));
}

#[test]
fn a_zero_reservation_is_fine_for_a_draft_that_never_started() {
    let p = plan_of(&format!("{LAYER}\n---\n{}", in_layer("draft", 0)), &with_org(remote(vec![]), vec![], vec![]));
    assert_eq!(p.changes.len(), 2);
}

#[test]
fn a_layer_rename_is_an_update_layer() {
    let text = LAYER.replace("name: Checkout surface", "name: Checkout page");
    let p = plan_of(&text, &with_org(remote(vec![]), vec![layer(&[])], vec![]));
    insta::assert_json_snapshot!(p.changes);
}

#[test]
fn an_experiment_created_in_a_new_holdout_binds_its_id_and_waits_for_it() {
    let p = plan_of(&format!("{HOLDOUT}\n---\n{}", in_holdout("running")), &with_org(remote(vec![]), vec![], vec![]));
    insta::assert_snapshot!(outline(&p).join("\n"));
    insta::assert_json_snapshot!(p);
}

#[test]
fn an_experiment_created_in_an_existing_holdout_sends_its_id() {
    let p = plan_of(&in_holdout("draft"), &with_org(remote(vec![]), vec![], vec![holdout("created", &[])]));
    let post = &p.changes[0].requests[0];
    assert_eq!(post.body.as_ref().unwrap()["holdoutId"], "h-1");
    assert!(post.bind.is_empty());
}

#[test]
fn ending_a_holdout_waits_for_the_experiment_that_leaves_it() {
    let mut member = state("running-same").unwrap();
    member.holdout_id = Some("h-1".into());
    let text =
        format!("{}\n---\n{}", HOLDOUT.replace("maintainerId: member-1", "state: ended"), experiment_yaml("running"));
    let p = plan_of(&text, &with_org(remote(vec![member]), vec![], vec![holdout("running", &["checkout"])]));
    insta::assert_snapshot!(outline(&p).join("\n"));
}

#[test]
fn holdout_refusals_ended_is_final_joining_after_creation_and_missing_create_fields() {
    let back = problems(HOLDOUT, &with_org(remote(vec![]), vec![], vec![holdout("ended", &[])]));
    let missing = problems(
        &HOLDOUT.replace("primaryMetric: checkout-completed\n", "").replace("metrics: [checkout-completed]\n", ""),
        &with_org(remote(vec![]), vec![], vec![]),
    );
    let unknown = problems(&in_holdout("draft"), &with_org(remote(vec![]), vec![], vec![]));
    let ended = problems(&in_holdout("draft"), &with_org(remote(vec![]), vec![], vec![holdout("ended", &[])]));
    insta::assert_snapshot!([back, missing, unknown, ended].concat().join("\n"));
    // Joining after creation is a difference no request can remove: the experiment is refused.
    let p = plan_of(
        &in_holdout("running"),
        &with_org(remote(vec![state("running-same").unwrap()]), vec![], vec![holdout("running", &[])]),
    );
    assert!(p.is_empty());
    assert_eq!(p.refused_addresses().len(), 1);
    insta::assert_json_snapshot!(p.divergences);
}

#[test]
fn prune_empties_layers_of_experiments_no_spec_declares_and_ends_unmanaged_holdouts() {
    let workspace = "kind: Workspace
projects:
  - key: demo
    environments: [production]
    owns: [layers, holdouts]";
    let remote = with_org(
        remote(vec![state("running-same").unwrap(), other("stray")]),
        vec![layer(&[("checkout", 40), ("stray", 30)])],
        vec![holdout("enabled", &["stray"])],
    );
    let text = format!("{workspace}\n---\n{}", in_layer("running", 40));
    let reported = plan_of(&text, &remote);
    assert!(reported.is_empty());
    let unmanaged: Vec<String> = reported.unmanaged.iter().map(|u| format!("{} ({})", u.address, u.state)).collect();
    assert_eq!(
        unmanaged,
        [
            "experiment/demo/production/stray (draft)",
            "layer/demo/checkout-surface (layer)",
            "holdout/demo/production/q4-holdout (enabled)"
        ]
    );
    let pruned = plan_with(&specs("specs/org.yaml", &text), &remote, &PlanOptions { prune: true }).unwrap();
    insta::assert_snapshot!(outline(&pruned).join("\n"));
    assert!(pruned.changes.iter().any(|c| c.action == Action::Stop));
}

#[test]
fn prune_does_not_delete_a_metric_a_declared_holdout_measures() {
    let text = format!(
        "kind: Workspace\nprojects:\n  - key: demo\n    environments: [production]\n    owns: [metrics]\n---\n{}",
        HOLDOUT.replace("checkout-completed", "revenue")
    );
    let remote = with_org(remote(vec![]), vec![], vec![holdout("created", &[])]);
    let err = plan_with(&specs("specs/org.yaml", &text), &remote, &PlanOptions { prune: true }).unwrap_err();
    let messages: Vec<&str> = err.problems().iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("cannot delete metric `revenue`") && m.contains("holdout spec q4-holdout")),
        "{messages:?}"
    );
}
