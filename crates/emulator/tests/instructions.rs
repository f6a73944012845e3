//! The six semantic-patch instructions: every precondition, atomicity, already-satisfied instructions, and the
//! content type the semantic patch requires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::State;
use serde_json::{Value, json};
use support::*;

/// The demo with a `cb` draft on checkout-button in production.
fn with_draft() -> State {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    assert_eq!(create(&mut s, "production", &body).status, 201);
    s
}

fn experiment(s: &mut State, key: &str) -> Value {
    ok(get(s, &format!("{PE}/experiments/{key}?expand=draftIteration,previousIterations,treatments")))
}

/// Asserts a 400 with `message` and an untouched state.
fn rejected(s: &mut State, key: &str, instructions: Value, message: &str) {
    let before = s.to_json();
    let r = patch_experiment(s, key, instructions);
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.code(), Some("invalid_request"));
    assert_eq!(r.message(), Some(message));
    assert_eq!(s.to_json(), before);
}

#[test]
fn start_iteration_promotes_the_draft() {
    let mut s = with_draft();
    let draft_id = experiment(&mut s, "cb")["draftIteration"]["_id"].clone();
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    assert!(e.get("draftIteration").is_none());
    assert_eq!(e["currentIteration"]["_id"], draft_id);
    assert_eq!(e["currentIteration"]["status"], "running");
    assert!(e["currentIteration"]["startedAt"].is_i64());
}

#[test]
fn start_iteration_needs_a_draft() {
    let mut s = demo();
    rejected(
        &mut s,
        "search-ranking",
        json!([{ "kind": "startIteration", "changeJustification": "again" }]),
        "instruction 0 (startIteration): there is no draft iteration to start; create one with POST …/iterations",
    );
}

#[test]
fn start_iteration_needs_the_flag_on_and_not_archived() {
    let mut s = with_draft();
    ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/production/on", "value": false }]),
    ));
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): flag `checkout-button` must be on in environment `production` to start an iteration",
    );
    ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/production/on", "value": true }]),
    ));
    ok(patch_flag(&mut s, "checkout-button", &json!([{ "op": "replace", "path": "/archived", "value": true }])));
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): flag `checkout-button` is archived",
    );
}

#[test]
fn start_iteration_needs_a_randomization_unit() {
    // The API always defaults the unit, so the precondition is reached through a state document.
    let s = with_draft();
    let mut doc = s.to_json();
    doc["projects"]["demo"]["experiments"]["production"]["cb"]["draftIteration"]
        .as_object_mut()
        .unwrap()
        .remove("randomizationUnit");
    let mut s = State::from_json(&doc).unwrap();
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): the draft iteration has no randomizationUnit",
    );
}

#[test]
fn start_iteration_needs_a_non_zero_allocation() {
    let mut s = demo();
    let mut body = checkout_post(&mut s, "zero");
    body["iteration"]["treatments"][0]["allocationPercent"] = json!("0");
    body["iteration"]["treatments"][1]["allocationPercent"] = json!(0);
    assert_eq!(create(&mut s, "production", &body).status, 201);
    rejected(
        &mut s,
        "zero",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): at least one treatment needs a non-zero allocationPercent",
    );
}

#[test]
fn restarting_a_running_experiment_needs_a_change_justification() {
    let mut s = with_draft();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let first = experiment(&mut s, "cb")["currentIteration"]["_id"].clone();
    let mut input = checkout_post(&mut s, "cb")["iteration"].clone();
    input["flags"]["checkout-button"]["flagConfigVersion"] =
        json!(flag_version(&mut s, "checkout-button", "production"));
    ok(s.handle(&req("POST", &format!("{PE}/experiments/cb/iterations")).json(&input)));
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): changeJustification is required to start an iteration while another one is running",
    );
    let e =
        ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration", "changeJustification": "new design" }])));
    assert_eq!(e["currentIteration"]["status"], "running");
    assert_ne!(e["currentIteration"]["_id"], first);
    let previous = &e["previousIterations"][0];
    assert_eq!(previous["_id"], first);
    assert_eq!(previous["status"], "stopped");
    assert_eq!(previous["endedAt"], e["currentIteration"]["startedAt"]);
}

#[test]
fn archived_experiments_cannot_start_until_restored() {
    let mut s = with_draft();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "archiveExperiment" }])));
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "startIteration" }]),
        "instruction 0 (startIteration): the experiment is archived; restore it before starting an iteration",
    );
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "restoreExperiment" }, { "kind": "startIteration" }])));
    assert!(e.get("archivedDate").is_none());
    assert_eq!(e["currentIteration"]["status"], "running");
}

#[test]
fn stop_iteration_needs_a_running_iteration_and_a_winner_of_it() {
    let mut s = with_draft();
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "stopIteration", "winningTreatmentId": "x" }]),
        "instruction 0 (stopIteration): the experiment has no running iteration to stop",
    );
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let winner = e["currentIteration"]["treatments"][1]["_id"].as_str().unwrap().to_owned();
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "stopIteration" }]),
        "instruction 0 (stopIteration): winningTreatmentId is required to stop an iteration (declare the baseline if inconclusive)",
    );
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "stopIteration", "winningTreatmentId": "not-a-treatment" }]),
        "instruction 0 (stopIteration): winningTreatmentId `not-a-treatment` is not a treatment of the running iteration",
    );
    let e = ok(patch_experiment(
        &mut s,
        "cb",
        json!([{ "kind": "stopIteration", "winningTreatmentId": winner, "winningReason": "clear lift" }]),
    ));
    let current = &e["currentIteration"];
    assert_eq!(current["status"], "stopped");
    assert_eq!(current["winningTreatmentId"], winner.as_str());
    assert_eq!(current["winningReason"], "clear lift");
    assert!(current["endedAt"].is_i64());
    // A stopped iteration cannot be stopped again.
    rejected(
        &mut s,
        "cb",
        json!([{ "kind": "stopIteration", "winningTreatmentId": winner }]),
        "instruction 0 (stopIteration): the current iteration is not running",
    );
}

#[test]
fn patches_are_atomic() {
    let mut s = with_draft();
    rejected(
        &mut s,
        "cb",
        json!([
            { "kind": "updateName", "value": "Renamed" },
            { "kind": "archiveExperiment" },
            { "kind": "stopIteration", "winningTreatmentId": "x" }
        ]),
        "instruction 2 (stopIteration): the experiment has no running iteration to stop",
    );
    let e = experiment(&mut s, "cb");
    assert_eq!(e["name"], "Experiment cb");
    assert!(e.get("archivedDate").is_none());
}

#[test]
fn already_satisfied_instructions_change_nothing() {
    let mut s = with_draft();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "archiveExperiment" }])));
    let archived = s.to_json();
    let date = experiment(&mut s, "cb")["archivedDate"].clone();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "archiveExperiment" }])));
    assert_eq!(s.to_json(), archived, "archive when archived");
    assert_eq!(experiment(&mut s, "cb")["archivedDate"], date);
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "restoreExperiment" }])));
    let active = s.to_json();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "restoreExperiment" }])));
    assert_eq!(s.to_json(), active, "restore when active");
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "updateName", "value": "Experiment cb" }])));
    assert_eq!(s.to_json(), active, "updateName to the same name");
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "updateDescription", "value": "why" }])));
    assert_eq!(experiment(&mut s, "cb")["description"], "why");
    let described = s.to_json();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "updateDescription", "value": "why" }])));
    assert_eq!(s.to_json(), described, "updateDescription to the same text");
}

#[test]
fn semantic_patches_need_their_content_type_and_known_kinds() {
    let mut s = with_draft();
    let body = json!({ "instructions": [{ "kind": "archiveExperiment" }] });
    let r =
        s.handle(&req("PATCH", &format!("{PE}/experiments/cb")).header("content-type", "application/json").json(&body));
    assert_eq!(r.status, 400);
    assert!(r.message().unwrap().starts_with("the body was read as a JSON patch"), "{:?}", r.message());
    let r = patch_experiment(&mut s, "cb", json!([{ "kind": "deleteExperiment" }]));
    assert_eq!(r.status, 400);
    assert!(r.message().unwrap().contains("unknown variant `deleteExperiment`"), "{:?}", r.message());
    let r = patch_experiment(&mut s, "cb", json!([]));
    assert_eq!(r.message(), Some("a semantic patch needs at least one instruction"));
    let r = patch_experiment(&mut s, "nope", json!([{ "kind": "archiveExperiment" }]));
    assert_eq!(r.status, 404);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn instruction() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!({ "kind": "startIteration" })),
            Just(json!({ "kind": "startIteration", "changeJustification": "because" })),
            Just(json!({ "kind": "stopIteration", "winningTreatmentId": "nope" })),
            Just(json!({ "kind": "archiveExperiment" })),
            Just(json!({ "kind": "restoreExperiment" })),
            Just(json!({ "kind": "updateName", "value": "A" })),
            Just(json!({ "kind": "updateName", "value": "B" })),
            Just(json!({ "kind": "updateDescription", "value": "d" })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any patch either succeeds or leaves the state byte-identical; a success repeated is either
        /// a no-op or fails (start without a new draft), never a partial change.
        #[test]
        fn every_patch_is_all_or_nothing(patches in prop::collection::vec(prop::collection::vec(instruction(), 1..4), 1..6)) {
            let mut s = with_draft();
            for p in patches {
                let before = s.to_json();
                let r = patch_experiment(&mut s, "cb", Value::Array(p.clone()));
                if r.status != 200 {
                    prop_assert_eq!(r.status, 400);
                    prop_assert_eq!(s.to_json(), before);
                }
                let e = ok(get(&mut s, &format!("{PE}/experiments/cb?expand=draftIteration")));
                // Invariant: a draft and a running current iteration never share an id.
                if let (Some(d), Some(c)) = (e.get("draftIteration"), e.get("currentIteration")) {
                    prop_assert_ne!(&d["_id"], &c["_id"]);
                }
            }
        }
    }
}
