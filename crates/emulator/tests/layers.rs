//! Layers: create and list (`LayerRep`), the `updateLayer` instructions, and the traffic bookkeeping: at most 100%
//! per environment, zero only until the iteration starts, one layer per experiment, atomic patches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Response, State};
use serde_json::{Value, json};
use support::*;

const LAYERS: &str = "/api/v2/projects/demo/layers";

fn post_layer(s: &mut State, body: &Value) -> Response {
    s.handle(&req("POST", LAYERS).header("content-type", "application/json").json(body))
}

fn patch_layer(s: &mut State, key: &str, body: Value) -> Response {
    s.handle(&req("PATCH", &format!("{LAYERS}/{key}")).header("content-type", SEMANTIC).json(&body))
}

fn reserve(s: &mut State, layer: &str, exp: &str, percent: Value) -> Response {
    patch_layer(
        s,
        layer,
        json!({ "environmentKey": "production", "instructions": [
            { "kind": "updateExperimentReservation", "experimentKey": exp, "reservationPercent": percent } ] }),
    )
}

/// Asserts a 400 `invalid_request` whose message contains `part`, and an untouched state.
fn refused(s: &mut State, f: impl FnOnce(&mut State) -> Response, part: &str) {
    let before = s.to_json();
    let r = f(s);
    assert_eq!((r.status, r.code()), (400, Some("invalid_request")), "{:?}", r.body);
    assert!(r.message().unwrap().contains(part), "{:?} lacks {part}", r.message());
    assert_eq!(s.to_json(), before, "a refusal changes nothing");
}

/// The demo with a `surface` layer and drafts `a`, `b` and `c` in production.
fn with_layer() -> State {
    let mut s = demo();
    let body = json!({ "key": "surface", "name": "Checkout surface", "description": "shared" });
    assert_eq!(post_layer(&mut s, &body).status, 201);
    for key in ["a", "b", "c"] {
        let body = checkout_post(&mut s, key);
        assert_eq!(create(&mut s, "production", &body).status, 201);
    }
    s
}

fn reservations(layer: &Value) -> Vec<(String, i64)> {
    layer["environments"]["production"]["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["experimentKey"].as_str().unwrap().to_owned(), r["reservationPercent"].as_i64().unwrap()))
        .collect()
}

#[test]
fn create_answers_a_layer_rep_with_every_environment_empty() {
    let mut s = demo();
    let l = ok(post_layer(&mut s, &json!({ "key": "surface", "name": "Surface", "description": "d" })));
    assert_eq!(
        (l["key"].as_str(), l["name"].as_str(), l["description"].as_str()),
        (Some("surface"), Some("Surface"), Some("d"))
    );
    assert!(l["createdAt"].is_i64());
    assert_eq!(l["environments"], json!({ "production": { "reservations": [] }, "staging": { "reservations": [] } }));
    let list = ok(get(&mut s, LAYERS));
    assert_eq!((list["totalCount"].as_i64(), list["items"][0]["key"].as_str()), (Some(1), Some("surface")));
    assert_eq!(list["_links"]["self"]["href"], LAYERS);
}

#[test]
fn create_refusals() {
    let mut s = demo();
    ok(post_layer(&mut s, &json!({ "key": "surface", "name": "Surface", "description": "d" })));
    let taken = json!({ "key": "surface", "name": "Again", "description": "d" });
    refused(&mut s, |s| post_layer(s, &taken), "already exists");
    refused(&mut s, |s| post_layer(s, &json!({ "key": "x", "name": "X" })), "`description` is required");
    refused(&mut s, |s| post_layer(s, &json!({ "key": "x", "description": "d" })), "`name` is required");
    refused(&mut s, |s| post_layer(s, &json!({ "key": "a b", "name": "X", "description": "d" })), "layer key");
    let elsewhere = s.handle(
        &req("POST", "/api/v2/projects/nope/layers")
            .header("content-type", "application/json")
            .json(&json!({ "key": "x", "name": "X", "description": "d" })),
    );
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn reservations_add_up_to_at_most_100_per_environment() {
    let mut s = with_layer();
    ok(reserve(&mut s, "surface", "a", json!(40)));
    let l = ok(reserve(&mut s, "surface", "b", json!(30)));
    assert_eq!(reservations(&l), [("a".to_owned(), 40), ("b".to_owned(), 30)]);
    assert_eq!(l["environments"]["production"]["reservations"][0]["flagKey"], "checkout-button");
    refused(&mut s, |s| reserve(s, "surface", "c", json!(31)), "would add up to 101%");
    refused(&mut s, |s| reserve(s, "surface", "a", json!(71)), "would add up to 101%");
    let l = ok(reserve(&mut s, "surface", "c", json!(30)));
    assert_eq!(reservations(&l).iter().map(|r| r.1).sum::<i64>(), 100);
    // Staging is counted on its own.
    let body = checkout_post(&mut s, "a");
    assert_eq!(create(&mut s, "staging", &body).status, 201);
    let staging = json!({ "environmentKey": "staging", "instructions": [
        { "kind": "updateExperimentReservation", "experimentKey": "a", "reservationPercent": 100 } ] });
    let l = ok(patch_layer(&mut s, "surface", staging));
    assert_eq!(l["environments"]["staging"]["reservations"][0]["reservationPercent"], 100);
    // Lowering one and raising another in one patch works when the lower comes first; the other order is refused.
    let order = |first: (&str, i64), second: (&str, i64)| {
        json!({ "environmentKey": "production", "instructions": [
            { "kind": "updateExperimentReservation", "experimentKey": first.0, "reservationPercent": first.1 },
            { "kind": "updateExperimentReservation", "experimentKey": second.0, "reservationPercent": second.1 } ] })
    };
    refused(&mut s, |s| patch_layer(s, "surface", order(("b", 40), ("a", 30))), "instruction 0");
    let l = ok(patch_layer(&mut s, "surface", order(("a", 30), ("b", 40))));
    assert_eq!(reservations(&l), [("a".to_owned(), 30), ("b".to_owned(), 40), ("c".to_owned(), 30)]);
}

#[test]
fn reservation_instructions_need_an_integer_an_environment_and_an_experiment() {
    let mut s = with_layer();
    for bad in [json!("20"), json!(20.5), json!(-1), json!(101), Value::Null] {
        refused(&mut s, |s| reserve(s, "surface", "a", bad), "reservationPercent");
    }
    refused(&mut s, |s| reserve(s, "surface", "ghost", json!(10)), "experiment `ghost` does not exist");
    let no_env = json!({ "instructions": [
        { "kind": "updateExperimentReservation", "experimentKey": "a", "reservationPercent": 10 } ] });
    refused(&mut s, |s| patch_layer(s, "surface", no_env), "`environmentKey` is required");
    let wrong_env = json!({ "environmentKey": "nowhere", "instructions": [
        { "kind": "removeExperiment", "experimentKey": "a" } ] });
    refused(&mut s, |s| patch_layer(s, "surface", wrong_env), "Unknown environment key nowhere");
    // `a` exists only in production.
    let staging = json!({ "environmentKey": "staging", "instructions": [
        { "kind": "updateExperimentReservation", "experimentKey": "a", "reservationPercent": 10 } ] });
    refused(&mut s, |s| patch_layer(s, "surface", staging), "does not exist in environment `staging`");
}

#[test]
fn an_experiment_is_in_at_most_one_layer() {
    let mut s = with_layer();
    ok(post_layer(&mut s, &json!({ "key": "other", "name": "Other", "description": "" })));
    ok(reserve(&mut s, "surface", "a", json!(10)));
    refused(&mut s, |s| reserve(s, "other", "a", json!(10)), "already in layer `surface`");
    let remove = json!({ "environmentKey": "production", "instructions": [
        { "kind": "removeExperiment", "experimentKey": "a" } ] });
    let l = ok(patch_layer(&mut s, "surface", remove.clone()));
    assert!(reservations(&l).is_empty());
    ok(reserve(&mut s, "other", "a", json!(10)));
    // Removing what the layer does not hold is refused.
    refused(&mut s, |s| patch_layer(s, "surface", remove), "holds no reservation for experiment `a`");
    let filtered = ok(s.handle(&req("GET", LAYERS).query("filter", "reservations.experimentKey contains a")));
    assert_eq!((filtered["totalCount"].as_i64(), filtered["items"][0]["key"].as_str()), (Some(1), Some("other")));
    assert_eq!(s.handle(&req("GET", LAYERS).query("filter", "name:x")).status, 400);
}

#[test]
fn zero_is_allowed_only_until_the_iteration_starts() {
    let mut s = with_layer();
    ok(reserve(&mut s, "surface", "a", json!(0)));
    let before = s.to_json();
    let r = patch_experiment(&mut s, "a", json!([{ "kind": "startIteration" }]));
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().unwrap().contains("reservation of 0% in layer `surface`"), "{:?}", r.message());
    assert_eq!(s.to_json(), before);
    ok(reserve(&mut s, "surface", "a", json!(10)));
    ok(patch_experiment(&mut s, "a", json!([{ "kind": "startIteration" }])));
    refused(&mut s, |s| reserve(s, "surface", "a", json!(0)), "must be above 0");
    ok(reserve(&mut s, "surface", "a", json!(20)));
}

#[test]
fn name_description_and_the_patch_rules() {
    let mut s = with_layer();
    let rename = json!({ "instructions": [
        { "kind": "updateName", "name": "Renamed" }, { "kind": "updateDescription", "description": "new" } ] });
    let l = ok(patch_layer(&mut s, "surface", rename.clone()));
    assert_eq!((l["name"].as_str(), l["description"].as_str()), (Some("Renamed"), Some("new")));
    // Already true: nothing changes, not even the clock.
    let before = s.to_json();
    ok(patch_layer(&mut s, "surface", rename));
    assert_eq!(s.to_json(), before);
    refused(&mut s, |s| patch_layer(s, "surface", json!({ "instructions": [] })), "at least one instruction");
    refused(&mut s, |s| patch_layer(s, "surface", json!({ "instructions": [{ "kind": "archive" }] })), "unknown");
    let empty = json!({ "instructions": [{ "kind": "updateName", "name": " " }] });
    refused(&mut s, |s| patch_layer(s, "surface", empty), "must not be empty");
    // Atomic: the valid first instruction is not kept when the second fails.
    let half = json!({ "environmentKey": "production", "instructions": [
        { "kind": "updateName", "name": "Half" },
        { "kind": "updateExperimentReservation", "experimentKey": "ghost", "reservationPercent": 1 } ] });
    refused(&mut s, |s| patch_layer(s, "surface", half), "instruction 1 (updateExperimentReservation)");
    let json_patch = s.handle(
        &req("PATCH", &format!("{LAYERS}/surface"))
            .header("content-type", "application/json")
            .json(&json!({ "instructions": [{ "kind": "updateName", "name": "X" }] })),
    );
    assert_eq!(json_patch.status, 400);
    assert_eq!(patch_layer(&mut s, "ghost", json!({ "instructions": [] })).status, 404);
    assert_eq!(s.handle(&req("GET", &format!("{LAYERS}/surface"))).status, 405);
}

#[test]
fn layers_survive_the_state_document() {
    let mut s = with_layer();
    ok(reserve(&mut s, "surface", "a", json!(25)));
    let doc = s.to_json();
    let mut back = State::from_json(&doc).unwrap();
    assert_eq!(back.to_json(), doc);
    assert_eq!(reservations(&ok(get(&mut back, LAYERS))["items"][0]), [("a".to_owned(), 25)]);
}
