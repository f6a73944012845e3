//! Golden scenarios: one per cell of the lifecycle table, plus legacy, rename, creation-only, reference
//! errors and prune. Each plan is snapshotted as JSON and was reviewed request by request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_core::plan::Plan;
use ldexp_planner::{PlanError, plan};

fn run(remote_state: &str, spec_state: &str) -> Result<Plan, PlanError> {
    let specs = specs("specs/checkout.yaml", &experiment_yaml(spec_state));
    plan(&specs, &remote(state(remote_state).into_iter().collect()))
}

fn ok(remote_state: &str, spec_state: &str) -> Plan {
    let p = run(remote_state, spec_state).unwrap_or_else(|e| panic!("{e}: {:#?}", e.problems()));
    // Deterministic: a second run gives the same bytes.
    let again = run(remote_state, spec_state).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), serde_json::to_string(&again).unwrap());
    p
}

fn err(remote_state: &str, spec_state: &str) -> Vec<String> {
    match run(remote_state, spec_state) {
        Ok(p) => panic!("expected an error, got {p:#?}"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

/// The warnings about the object, leaving out the one about environments no spec covers (the fixture's project has
/// three, the scenarios target one).
fn object_warnings(p: &Plan) -> Vec<&str> {
    p.warnings.iter().filter(|w| w.address.is_some()).map(|w| w.message.as_str()).collect()
}

fn no_requests(remote_state: &str, spec_state: &str) -> Plan {
    let p = ok(remote_state, spec_state);
    assert!(p.is_empty(), "{p:#?}");
    assert!(p.changes.is_empty());
    p
}

// ---- absent ----------------------------------------------------------------------------------

#[test]
fn absent_to_draft_creates() {
    insta::assert_json_snapshot!(ok("absent", "draft"));
}

#[test]
fn absent_to_running_creates_and_starts() {
    insta::assert_json_snapshot!(ok("absent", "running"));
}

#[test]
fn absent_to_stopped_is_an_error() {
    assert_eq!(
        err("absent", "stopped"),
        ["specs/checkout.yaml:7:8: experiment/demo/production/checkout: state: stopped, but the experiment does not \
          exist, so there is nothing to stop (hint: create it with state: draft or running first)"]
    );
}

#[test]
fn absent_to_archived_does_nothing_with_a_note() {
    let p = no_requests("absent", "archived");
    assert_eq!(object_warnings(&p), ["state: archived and the experiment does not exist; nothing to do"]);
}

// ---- draft -----------------------------------------------------------------------------------

#[test]
fn draft_same_design_to_draft_is_no_change() {
    let p = no_requests("draft-same", "draft");
    assert!(object_warnings(&p).is_empty());
}

#[test]
fn draft_same_design_to_running_starts() {
    insta::assert_json_snapshot!(ok("draft-same", "running"));
}

#[test]
fn draft_to_stopped_is_an_error_never_ran() {
    let expected =
        ["specs/checkout.yaml:7:8: experiment/demo/production/checkout: state: stopped, but the experiment \
                     never ran, so there is nothing to stop (hint: use state: running to start it, or state: archived \
                     to retire it)"];
    assert_eq!(err("draft-same", "stopped"), expected);
    assert_eq!(err("draft-new", "stopped"), expected);
}

#[test]
fn draft_same_design_to_archived_archives() {
    insta::assert_json_snapshot!(ok("draft-same", "archived"));
}

#[test]
fn draft_new_design_to_draft_posts_an_iteration() {
    insta::assert_json_snapshot!(ok("draft-new", "draft"));
}

#[test]
fn draft_new_design_to_running_posts_and_starts() {
    insta::assert_json_snapshot!(ok("draft-new", "running"));
}

#[test]
fn draft_new_design_to_archived_archives_without_an_iteration() {
    let p = ok("draft-new", "archived");
    assert_eq!(p.changes[0].requests, ok("draft-same", "archived").changes[0].requests);
    assert_eq!(p.changes[0].requests.len(), 1);
    assert_eq!(
        p.changes[0].requests[0].body.as_ref().unwrap()["instructions"],
        serde_json::json!([{"kind": "archiveExperiment"}])
    );
}

// ---- running ---------------------------------------------------------------------------------

#[test]
fn running_same_design_to_draft_is_an_error() {
    assert_eq!(
        err("running-same", "draft"),
        ["specs/checkout.yaml:7:8: experiment/demo/production/checkout: state: draft, but the experiment is running \
          and LaunchDarkly cannot un-start it (hint: use state: running, stopped or archived; a new design in a draft \
          spec is prepared as the next iteration)"]
    );
}

#[test]
fn running_same_design_to_running_is_no_change() {
    no_requests("running-same", "running");
}

#[test]
fn running_same_design_to_stopped_stops_with_the_winner() {
    insta::assert_json_snapshot!(ok("running-same", "stopped"));
}

#[test]
fn running_same_design_to_archived_stops_then_archives() {
    insta::assert_json_snapshot!(ok("running-same", "archived"));
}

#[test]
fn running_new_design_to_draft_posts_an_iteration_and_keeps_running() {
    insta::assert_json_snapshot!(ok("running-new", "draft"));
}

#[test]
fn running_new_design_to_running_restarts() {
    insta::assert_json_snapshot!(ok("running-new", "running"));
}

#[test]
fn running_new_design_without_justification_is_an_error() {
    let yaml = experiment_yaml("running").replace("  changeJustification: New hypothesis after the Q3 review\n", "");
    let e =
        plan(&specs("specs/checkout.yaml", &yaml), &remote(state("running-new").into_iter().collect())).unwrap_err();
    assert_eq!(
        e.problems().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["specs/checkout.yaml:8:1: experiment/demo/production/checkout: the design of a running experiment changed, \
          which restarts it, but `iteration.changeJustification` is missing (hint: add `changeJustification` \
          explaining why data collection restarts)"]
    );
}

#[test]
fn running_with_a_pending_draft_of_the_spec_design_only_starts_it() {
    // A crashed apply of `running_new_design_to_running_restarts` after its POST: the rest is an exact suffix.
    let remote_exp =
        experiment(Some(iteration("it-1", "running", D::Old)), Some(iteration("it-2", "not_started", D::Same)), false);
    let specs = specs("specs/checkout.yaml", &experiment_yaml("running"));
    let resumed = plan(&specs, &remote(vec![remote_exp])).unwrap();
    let original = ok("running-new", "running");
    assert_eq!(resumed.changes[0].requests.len(), 1);
    assert_eq!(resumed.changes[0].requests[..], original.changes[0].requests[1..]);
}

#[test]
fn running_new_design_to_stopped_stops_and_warns() {
    insta::assert_json_snapshot!(ok("running-new", "stopped"));
}

#[test]
fn running_new_design_to_archived_stops_then_archives() {
    let p = ok("running-new", "archived");
    let kinds: Vec<_> =
        p.changes[0].requests.iter().map(|r| r.body.as_ref().unwrap()["instructions"][0]["kind"].clone()).collect();
    assert_eq!(kinds, ["stopIteration", "archiveExperiment"]);
}

// ---- stopped ---------------------------------------------------------------------------------

#[test]
fn stopped_to_draft_posts_an_iteration_when_the_design_differs() {
    insta::assert_json_snapshot!(ok("stopped", "draft"));
}

#[test]
fn stopped_to_running_posts_and_starts_a_new_run() {
    insta::assert_json_snapshot!(ok("stopped", "running"));
}

#[test]
fn stopped_to_stopped_reports_a_winner_it_cannot_change() {
    let yaml = experiment_yaml("stopped")
        .replace("winner: Green", "winner: Control")
        .replace("reason: clear win", "reason: tie");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(state("stopped").into_iter().collect())).unwrap();
    assert!(p.is_empty());
    assert!(object_warnings(&p).is_empty());
    // Not refused (nothing else is wrong), but reported: `drift` counts these.
    assert!(p.divergences.iter().all(|d| !d.refuses));
    insta::assert_json_snapshot!(p.divergences);
}

#[test]
fn stopped_to_archived_archives() {
    insta::assert_json_snapshot!(ok("stopped", "archived"));
}

// ---- archived --------------------------------------------------------------------------------

#[test]
fn archived_draft_to_running_restores_then_starts() {
    insta::assert_json_snapshot!(ok("archived-draft", "running"));
}

#[test]
fn archived_running_to_stopped_restores_then_stops() {
    let p = ok("archived-running", "stopped");
    let kinds: Vec<_> =
        p.changes[0].requests.iter().map(|r| r.body.as_ref().unwrap()["instructions"][0]["kind"].clone()).collect();
    assert_eq!(kinds, ["restoreExperiment", "stopIteration"]);
    assert_eq!(p.changes[0].action.as_str(), "restore");
}

#[test]
fn archived_stopped_to_draft_only_restores() {
    insta::assert_json_snapshot!(ok("archived-stopped", "draft"));
}

#[test]
fn archived_to_archived_is_no_change() {
    for s in ["archived-draft", "archived-running", "archived-stopped"] {
        no_requests(s, "archived");
    }
}

#[test]
fn archived_draft_to_stopped_is_the_rows_error() {
    assert_eq!(err("archived-draft", "stopped").len(), 1);
}

// ---- name and description ------------------------------------------------------------------

#[test]
fn rename_alone_is_its_own_update_request() {
    let yaml = experiment_yaml("running").replace("name: Checkout button", "name: Checkout CTA colour");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(state("running-same").into_iter().collect())).unwrap();
    insta::assert_json_snapshot!(p);
}

#[test]
fn rename_and_description_join_the_start_patch() {
    let yaml = experiment_yaml("running")
        .replace("name: Checkout button", "name: Checkout CTA colour")
        .replace("description: Does a green button sell more?", "description: Green vs blue, round two");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(state("draft-same").into_iter().collect())).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action.as_str(), "start");
    assert_eq!(p.changes[0].requests.len(), 1);
    let r = &p.changes[0].requests[0];
    assert_eq!(
        r.body.as_ref().unwrap(),
        &serde_json::json!({
            "comment": "ldexp: start experiment/demo/production/checkout",
            "instructions": [
                {"kind": "updateName", "value": "Checkout CTA colour"},
                {"kind": "updateDescription", "value": "Green vs blue, round two"},
                {"kind": "startIteration"}
            ]
        })
    );
    let expect = serde_json::to_value(&r.expect).unwrap();
    assert_eq!(expect[0]["kind"], "runningDesign");
    assert_eq!(expect[0]["design"]["hypothesis"], "Green converts better");
    assert_eq!(
        expect.as_array().unwrap()[1..],
        [
            serde_json::json!({"kind": "name", "value": "Checkout CTA colour"}),
            serde_json::json!({"kind": "description", "value": "Green vs blue, round two"})
        ]
    );
}

#[test]
fn rename_on_restore_goes_after_the_restore_instruction() {
    let yaml = experiment_yaml("draft").replace("name: Checkout button", "name: Renamed");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(state("archived-draft").into_iter().collect())).unwrap();
    let r = &p.changes[0].requests[0];
    assert_eq!(
        r.body.as_ref().unwrap()["instructions"],
        serde_json::json!([{"kind": "restoreExperiment"}, {"kind": "updateName", "value": "Renamed"}])
    );
}

// ---- several environments ------------------------------------------------------------------

#[test]
fn one_spec_in_two_environments_resolves_each_environment() {
    let yaml = experiment_yaml("draft")
        .replace("environment: production", "environments: [production, staging]")
        .replace("rule: fallthrough", "rule: fallthrough\n      notInExperimentVariation: red");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(vec![])).unwrap();
    let addresses: Vec<String> = p.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(addresses, ["experiment/demo/production/checkout", "experiment/demo/staging/checkout"]);
    let flags = |i: usize| p.changes[i].requests[0].body.as_ref().unwrap()["iteration"]["flags"].clone();
    assert_eq!(
        flags(0),
        serde_json::json!({"checkout-button": {"ruleId": "fallthrough", "flagConfigVersion": 12, "notInExperimentVariationId": "v-red"}})
    );
    assert_eq!(flags(1)["checkout-button"]["flagConfigVersion"], 4);
}

#[test]
fn fields_label_rule_and_variation_ids_for_reviewers() {
    let yaml = experiment_yaml("draft")
        .replace("rule: fallthrough", "rule: beta users")
        .replace("checkout-button: green", "checkout-button: red");
    let p = plan(&specs("specs/checkout.yaml", &yaml), &remote(state("draft-same").into_iter().collect())).unwrap();
    let fields: Vec<(String, serde_json::Value, serde_json::Value)> = p.changes[0]
        .fields
        .iter()
        .filter(|f| f.before != f.after)
        .map(|f| (f.field.clone(), f.before.clone().unwrap(), f.after.clone().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("flags.checkout-button.flagConfigVersion".into(), 11.into(), 12.into()),
            ("flags.checkout-button.ruleId".into(), "fallthrough".into(), "rule `beta users` (rule-beta)".into()),
            ("treatments.Green.variations.checkout-button".into(), "Green (v-green)".into(), "\"red\" (v-red)".into()),
        ]
    );
    // Unchanged values the body sends are listed too, labelled the same way.
    let control = p.changes[0].fields.iter().find(|f| f.field == "treatments.Control.variations.checkout-button");
    assert_eq!(control.and_then(|f| f.after.clone()), Some("Control (v-blue)".into()));
    // The design itself keeps the ids.
    assert_eq!(p.changes[0].after.as_ref().unwrap().value()["flags"]["checkout-button"]["ruleId"], "rule-beta");
}
