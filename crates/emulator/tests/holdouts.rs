//! Holdouts: create (lower-case body fields), the list and the reads by key and id, the derived status
//! (`created` → `enabled` → `running` → `ended`), experiments joining with `holdoutId`, and `patchHoldout`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Response, State};
use serde_json::{Value, json};
use support::*;

fn holdouts() -> String {
    format!("{PE}/holdouts")
}

fn post_holdout(s: &mut State, body: &Value) -> Response {
    s.handle(&req("POST", &holdouts()).header("content-type", "application/json").json(body))
}

fn patch_holdout(s: &mut State, key: &str, instructions: Value) -> Response {
    s.handle(
        &req("PATCH", &format!("{}/{key}", holdouts()))
            .header("content-type", SEMANTIC)
            .json(&json!({ "comment": "test", "instructions": instructions })),
    )
}

fn q4() -> Value {
    json!({
        "key": "q4", "name": "Q4 holdout", "description": "everything in Q4",
        "randomizationunit": "user", "attributes": ["country"], "holdoutamount": "5",
        "primarymetrickey": "checkout-conversion",
        "metrics": [ { "key": "checkout-conversion" }, { "key": "checkout-funnel", "isGroup": true } ],
        "prerequisiteflagkey": "checkout-button"
    })
}

/// Asserts a 400 `invalid_request` whose message contains `part`, and an untouched state.
fn refused(s: &mut State, f: impl FnOnce(&mut State) -> Response, part: &str) {
    let before = s.to_json();
    let r = f(s);
    assert_eq!((r.status, r.code()), (400, Some("invalid_request")), "{:?}", r.body);
    assert!(r.message().unwrap().contains(part), "{:?} lacks {part}", r.message());
    assert_eq!(s.to_json(), before, "a refusal changes nothing");
}

/// The demo with holdout `q4`; answers its `_id`.
fn with_holdout(s: &mut State) -> String {
    let h = post_holdout(s, &q4());
    assert_eq!(h.status, 201, "{:?}", h.body);
    h.body.unwrap()["_id"].as_str().unwrap().to_owned()
}

fn in_holdout(s: &mut State, key: &str, holdout: &str) -> Response {
    let mut body = checkout_post(s, key);
    body["holdoutId"] = json!(holdout);
    create(s, "production", &body)
}

fn by_key(s: &mut State, key: &str) -> Value {
    ok(get(s, &format!("{}/{key}", holdouts())))
}

#[test]
fn create_answers_a_holdout_rep_in_status_created() {
    let mut s = demo();
    let h = ok(post_holdout(&mut s, &q4()));
    assert_eq!((h["status"].as_str(), h["holdoutAmount"].as_str()), (Some("created"), Some("5")));
    assert_eq!(h["experiments"], json!([]));
    assert_eq!(h["description"], "everything in Q4");
    assert_eq!(h["createdAt"], h["updatedAt"]);
    let base = &h["baseExperiment"];
    assert_eq!(
        (base["key"].as_str(), base["name"].as_str(), base["type"].as_str()),
        (Some("q4"), Some("Q4 holdout"), Some("holdout"))
    );
    assert_eq!((base["_id"].clone(), base["environmentKey"].as_str()), (h["_id"].clone(), Some("production")));
    let list = ok(get(&mut s, &holdouts()));
    assert_eq!(list["total_count"], 1);
    let item = &list["items"][0];
    assert_eq!(
        (item["key"].as_str(), item["name"].as_str(), item["status"].as_str()),
        (Some("q4"), Some("Q4 holdout"), Some("created"))
    );
    let by_id = ok(get(&mut s, &format!("{}/id/{}", holdouts(), h["_id"].as_str().unwrap())));
    assert_eq!(by_id, h);
    let detail = by_key(&mut s, "q4");
    assert_eq!((detail["isDirty"].as_bool(), detail["relatedExperiments"].clone()), (Some(false), json!([])));
    assert_eq!(get(&mut s, &format!("{}/id/nope", holdouts())).status, 404);
    assert_eq!(get(&mut s, &format!("{}/nope", holdouts())).status, 404);
    // Holdouts live in one environment.
    assert_eq!(ok(get(&mut s, "/api/v2/projects/demo/environments/staging/holdouts"))["total_count"], 0);
}

#[test]
fn create_refusals() {
    let mut s = demo();
    with_holdout(&mut s);
    refused(&mut s, |s| post_holdout(s, &q4()), "already exists");
    let with = |field: &str, value: Value| {
        let mut b = q4();
        b["key"] = json!("other");
        if value.is_null() {
            b.as_object_mut().unwrap().remove(field);
        } else {
            b[field] = value;
        }
        b
    };
    let cases = [
        (with("holdoutamount", json!(5)), "`holdoutamount` must be a string"),
        (with("holdoutamount", json!("0")), "must be a number above 0"),
        (with("holdoutamount", json!("101")), "must be a number above 0"),
        (with("holdoutamount", Value::Null), "`holdoutamount` is required"),
        (with("holdoutAmount", json!("5")), "`holdoutAmount`"),
        (with("randomizationunit", json!("device")), "not a randomization unit"),
        (with("primarymetrickey", json!("ghost")), "primary metric `ghost` does not exist"),
        (with("primarymetrickey", json!("page-view")), "must be one of `metrics`"),
        (with("metrics", json!([{ "key": "ghost" }])), "metric `ghost` does not exist"),
        (with("prerequisiteflagkey", json!("ghost")), "prerequisite flag `ghost`"),
        (with("name", Value::Null), "`name` is required"),
    ];
    for (body, part) in cases {
        if part == "`holdoutAmount`" {
            // The camelCase name is not the contract's: the lower-case one is still missing.
            let mut b = body;
            b.as_object_mut().unwrap().remove("holdoutamount");
            refused(&mut s, |s| post_holdout(s, &b), "`holdoutamount` is required");
        } else {
            refused(&mut s, |s| post_holdout(s, &body), part);
        }
    }
    // The list and the create declare no 404: an unknown environment is a 400.
    let elsewhere = s.handle(
        &req("POST", "/api/v2/projects/demo/environments/nowhere/holdouts")
            .header("content-type", "application/json")
            .json(&q4()),
    );
    assert_eq!(elsewhere.status, 400);
    assert_eq!(get(&mut s, "/api/v2/projects/demo/environments/nowhere/holdouts").status, 400);
}

#[test]
fn experiments_join_with_holdout_id_and_move_the_status() {
    let mut s = demo();
    let id = with_holdout(&mut s);
    let e = ok(in_holdout(&mut s, "a", &id));
    assert_eq!(e["holdoutId"], id.as_str());
    let h = ok(get(&mut s, &format!("{}/id/{id}", holdouts())));
    assert_eq!(h["status"], "enabled");
    assert_eq!(h["experiments"], json!([{ "key": "a", "name": "Experiment a", "environment": "production" }]));
    ok(patch_experiment(&mut s, "a", json!([{ "kind": "startIteration" }])));
    let detail = by_key(&mut s, "q4");
    assert_eq!((detail["status"].as_str(), detail["isDirty"].as_bool()), (Some("running"), Some(true)));
    assert_eq!(detail["relatedExperiments"][0]["key"], "a");
    // Unexpanded fields are left out, as in experiment reads.
    assert!(detail["relatedExperiments"][0]["currentIteration"].get("treatments").is_none());
    let expanded = ok(get(&mut s, &format!("{}/q4?expand=rel-treatments", holdouts())));
    assert_eq!(expanded["relatedExperiments"][0]["currentIteration"]["treatments"].as_array().unwrap().len(), 2);
    // An unknown holdout, or one of another environment, is refused.
    refused(&mut s, |s| in_holdout(s, "b", "no-such-id"), "is not a holdout in environment `production`");
    let mut staging = checkout_post(&mut s, "b");
    staging["holdoutId"] = json!(id);
    refused(&mut s, |s| create(s, "staging", &staging), "is not a holdout in environment `staging`");
}

#[test]
fn remove_experiment_takes_it_out_of_the_holdout() {
    let mut s = demo();
    let id = with_holdout(&mut s);
    ok(in_holdout(&mut s, "a", &id));
    ok(in_holdout(&mut s, "b", &id));
    let h = ok(patch_holdout(&mut s, "q4", json!([{ "kind": "removeExperiment", "value": "a" }])));
    assert_eq!(h["experiments"], json!([{ "key": "b", "name": "Experiment b", "environment": "production" }]));
    assert!(ok(get(&mut s, &format!("{PE}/experiments/a"))).get("holdoutId").is_none());
    refused(
        &mut s,
        |s| patch_holdout(s, "q4", json!([{ "kind": "removeExperiment", "value": "a" }])),
        "not in holdout",
    );
    let twice = json!([{ "kind": "removeExperiment", "value": "b" }, { "kind": "removeExperiment", "value": "b" }]);
    refused(&mut s, |s| patch_holdout(s, "q4", twice), "instruction 1 (removeExperiment)");
    ok(patch_holdout(&mut s, "q4", json!([{ "kind": "removeExperiment", "value": "b" }])));
    assert_eq!(by_key(&mut s, "q4")["status"], "created");
}

#[test]
fn ended_is_final() {
    let mut s = demo();
    let id = with_holdout(&mut s);
    ok(in_holdout(&mut s, "a", &id));
    let h = ok(patch_holdout(&mut s, "q4", json!([{ "kind": "endHoldout" }])));
    assert_eq!(h["status"], "ended");
    assert!(h["updatedAt"].as_i64() > h["createdAt"].as_i64());
    for ins in [
        json!({ "kind": "endHoldout" }),
        json!({ "kind": "updateName", "value": "Later" }),
        json!({ "kind": "updateDescription", "value": "later" }),
        json!({ "kind": "removeExperiment", "value": "a" }),
    ] {
        refused(&mut s, |s| patch_holdout(s, "q4", json!([ins])), "has ended");
    }
    refused(&mut s, |s| in_holdout(s, "b", &id), "has ended");
    // Within one patch, nothing follows an endHoldout.
    let mut s = demo();
    with_holdout(&mut s);
    let after = json!([{ "kind": "endHoldout" }, { "kind": "updateName", "value": "Later" }]);
    refused(&mut s, |s| patch_holdout(s, "q4", after), "instruction 1 (updateName)");
}

#[test]
fn name_description_and_the_patch_rules() {
    let mut s = demo();
    with_holdout(&mut s);
    let rename = json!([{ "kind": "updateName", "value": "Renamed" }, { "kind": "updateDescription", "value": "new" }]);
    let h = ok(patch_holdout(&mut s, "q4", rename.clone()));
    assert_eq!((h["baseExperiment"]["name"].as_str(), h["description"].as_str()), (Some("Renamed"), Some("new")));
    assert_eq!(ok(get(&mut s, &holdouts()))["items"][0]["name"], "Renamed");
    let before = s.to_json();
    ok(patch_holdout(&mut s, "q4", rename));
    assert_eq!(s.to_json(), before, "an instruction that already holds changes nothing, not even the clock");
    refused(&mut s, |s| patch_holdout(s, "q4", json!([])), "at least one instruction");
    refused(&mut s, |s| patch_holdout(s, "q4", json!([{ "kind": "updateName", "name": "X" }])), "`value` is required");
    refused(&mut s, |s| patch_holdout(s, "q4", json!([{ "kind": "startHoldout" }])), "unknown instruction kind");
    let json_patch = s.handle(
        &req("PATCH", &format!("{}/q4", holdouts()))
            .header("content-type", "application/json")
            .json(&json!({ "instructions": [{ "kind": "endHoldout" }] })),
    );
    assert_eq!(json_patch.status, 400);
    assert_eq!(patch_holdout(&mut s, "nope", json!([{ "kind": "endHoldout" }])).status, 404);
}

#[test]
fn holdouts_survive_the_state_document() {
    let mut s = demo();
    let id = with_holdout(&mut s);
    ok(in_holdout(&mut s, "a", &id));
    let doc = s.to_json();
    let mut back = State::from_json(&doc).unwrap();
    assert_eq!(back.to_json(), doc);
    assert_eq!(by_key(&mut back, "q4")["status"], "enabled");
}

#[test]
fn a_metric_or_group_a_holdout_measures_cannot_be_deleted() {
    let mut s = demo();
    let mut body = q4();
    body["metrics"] = json!([{ "key": "page-view" }, { "key": "checkout-funnel", "isGroup": true }]);
    body["primarymetrickey"] = json!("page-view");
    ok(post_holdout(&mut s, &body));
    refused(
        &mut s,
        |s| s.handle(&req("DELETE", "/api/v2/metrics/demo/page-view")),
        "holdout `q4` (environment `production`)",
    );
    refused(
        &mut s,
        |s| s.handle(&req("DELETE", "/api/v2/projects/demo/metric-groups/checkout-funnel")),
        "holdout `q4` (environment `production`)",
    );
}
