//! Metric-group writes (beta): `createMetricGroup`, `patchMetricGroup` (JSON patch, `test` guards, read-only and
//! creation-only fields, re-validation) and `deleteMetricGroup` (refused while an experiment uses the group).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{DEFAULT_TOKEN, Request, Response, State};
use serde_json::{Value, json};
use support::*;

const GROUPS: &str = "/api/v2/projects/demo/metric-groups";
const ADA: &str = "569f183514f4432160000007";

fn post(s: &mut State, body: &Value) -> Response {
    s.handle(&req("POST", GROUPS).header("content-type", "application/json").json(body))
}

fn patch(s: &mut State, key: &str, ops: &Value) -> Response {
    s.handle(&req("PATCH", &format!("{GROUPS}/{key}")).header("content-type", "application/json").json(ops))
}

fn delete(s: &mut State, key: &str) -> Response {
    s.handle(&req("DELETE", &format!("{GROUPS}/{key}")))
}

fn bad(r: &Response, needle: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.code(), Some("invalid_request"));
    let m = r.message().unwrap();
    assert!(m.contains(needle), "`{needle}` in: {m}");
}

fn signup_funnel(key: &str) -> Value {
    json!({
        "key": key, "name": "Signup funnel", "kind": "funnel", "description": "From landing to signup",
        "maintainerId": ADA, "tags": ["growth"],
        "metrics": [
            { "key": "page-view", "nameInGroup": "Step 1: landing" },
            { "key": "signup-completed", "nameInGroup": "Step 2: signed up" }
        ]
    })
}

#[test]
fn a_created_group_answers_201_with_its_metrics_named_in_the_group() {
    let mut s = demo();
    let r = post(&mut s, &signup_funnel("signup-funnel"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let g = r.body.unwrap();
    for field in [
        "_id",
        "key",
        "name",
        "kind",
        "_links",
        "tags",
        "_creationDate",
        "_lastModified",
        "maintainer",
        "metrics",
        "_version",
    ] {
        assert!(g.get(field).is_some(), "MetricGroupRep requires {field}");
    }
    assert_eq!((g["_version"].as_i64(), g["description"].as_str()), (Some(1), Some("From landing to signup")));
    assert_eq!(g["_creationDate"], g["_lastModified"]);
    assert_eq!(g["maintainer"]["member"]["_id"], ADA);
    assert_eq!(g["tags"], json!(["growth"]));
    let steps: Vec<(&str, &str, &str)> = g["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap(), m["nameInGroup"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("page-view", "Step 1: landing", "Page view"), ("signup-completed", "Step 2: signed up", "Signup completed")]
    );
    assert_eq!(g["metrics"][1]["_links"]["self"]["href"], "/api/v2/metrics/demo/signup-completed");
    assert_eq!(ok(get(&mut s, &format!("{GROUPS}/signup-funnel"))), g);
    let list = ok(get(&mut s, GROUPS));
    assert_eq!((list["totalCount"].as_u64(), &list["items"][1]), (Some(2), &g));

    // A standard group may hold one metric; another maintainer is shown as a member with that id.
    let one = json!({ "key": "solo", "name": "Solo", "kind": "standard", "maintainerId": "5e1a00000000000000000001",
        "tags": [], "metrics": [ { "key": "page-load-ms", "nameInGroup": "Load" } ] });
    let g = ok(post(&mut s, &one));
    assert_eq!(g["maintainer"]["member"]["_id"], "5e1a00000000000000000001");
    assert!(g.get("description").is_none());
    // The group's names show in experiments that measure it.
    let mut body = checkout_post(&mut s, "funnel-user");
    body["iteration"]["metrics"] = json!([{ "key": "signup-funnel", "isGroup": true }]);
    body["iteration"].as_object_mut().unwrap().remove("primarySingleMetricKey");
    body["iteration"]["primaryFunnelKey"] = json!("signup-funnel");
    let e = ok(create(&mut s, "production", &body));
    assert_eq!(e["draftIteration"]["metrics"][0]["metrics"][0]["nameInGroup"], "Step 1: landing");
}

#[test]
fn group_writes_are_beta_routes() {
    let mut s = demo();
    for (method, path) in [
        ("POST", GROUPS.to_owned()),
        ("PATCH", format!("{GROUPS}/checkout-funnel")),
        ("DELETE", format!("{GROUPS}/checkout-funnel")),
    ] {
        let r = Request::new(method, &path)
            .header("authorization", DEFAULT_TOKEN)
            .header("ld-api-version", "20240415")
            .json(&json!([]));
        assert_eq!((r.method.as_str(), s.handle(&r).status), (method, 403));
    }
    assert_eq!(s.handle(&req("PUT", GROUPS)).status, 405);
}

#[test]
fn every_group_rule_is_a_400_that_stores_nothing() {
    let mut s = demo();
    let without = |field: &str| {
        let mut b = signup_funnel("g");
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let with = |field: &str, value: Value| {
        let mut b = signup_funnel("g");
        b[field] = value;
        b
    };
    let cases = [
        (without("key"), "`key` is required".to_owned()),
        (without("name"), "`name` is required".to_owned()),
        (without("kind"), "`kind` is required".to_owned()),
        (without("maintainerId"), "`maintainerId` is required".to_owned()),
        (without("tags"), "`tags` is required".to_owned()),
        (without("metrics"), "`metrics` is required".to_owned()),
        (with("kind", json!("ladder")), "`kind` `ladder` is not one of funnel, standard".to_owned()),
        (with("key", json!("a b")), "metric group key `a b` must be non-empty".to_owned()),
        (with("name", json!("")), "`name` must not be empty".to_owned()),
        (with("metrics", json!({})), "`metrics` must be an array of {key, nameInGroup}".to_owned()),
        (with("metrics", json!([])), "metric group `g` needs at least one metric".to_owned()),
        (with("metrics", json!([{ "key": "page-view" }])), "`metrics[0]`: `nameInGroup` is required".to_owned()),
        (with("metrics", json!(["page-view"])), "`metrics[0]`: must be an object {key, nameInGroup}".to_owned()),
        (
            with(
                "metrics",
                json!([{ "key": "nope", "nameInGroup": "a" }, { "key": "gone", "nameInGroup": "b" }, { "key": "page-view", "nameInGroup": "c" }]),
            ),
            "metric group `g` names metrics that do not exist in project `demo`: `nope`, `gone`".to_owned(),
        ),
        (
            with(
                "metrics",
                json!([{ "key": "page-view", "nameInGroup": "a" }, { "key": "page-view", "nameInGroup": "b" }]),
            ),
            "metric `page-view` is listed twice in metric group `g`".to_owned(),
        ),
        (
            with("metrics", json!([{ "key": "page-view", "nameInGroup": "a" }])),
            "funnel metric group `g` needs at least two metrics (its steps), but it has 1".to_owned(),
        ),
        (
            signup_funnel("checkout-funnel"),
            "a metric group with key `checkout-funnel` already exists in project `demo`".to_owned(),
        ),
    ];
    let before = s.to_json();
    for (body, message) in cases {
        bad(&post(&mut s, &body), &message);
    }
    assert_eq!(s.to_json(), before);
    let r = s.handle(&req("POST", "/api/v2/projects/nope/metric-groups").json(&signup_funnel("g")));
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
}

#[test]
fn a_patch_edits_the_group_and_bumps_its_version() {
    let mut s = demo();
    let created = ok(post(&mut s, &signup_funnel("sf")));
    let r = ok(patch(
        &mut s,
        "sf",
        &json!([
            { "op": "test", "path": "/metrics/0/key", "value": "page-view" },
            { "op": "replace", "path": "/name", "value": "Signup steps" },
            { "op": "replace", "path": "/metrics/1/nameInGroup", "value": "Step 3: signed up" },
            { "op": "add", "path": "/metrics/1", "value": { "key": "checkout-conversion", "nameInGroup": "Step 2: checkout" } },
            { "op": "replace", "path": "/maintainerId", "value": "5e1a00000000000000000001" },
            { "op": "remove", "path": "/description" }
        ]),
    ));
    assert_eq!(r["name"], "Signup steps");
    let steps: Vec<&str> =
        r["metrics"].as_array().unwrap().iter().map(|m| m["nameInGroup"].as_str().unwrap()).collect();
    assert_eq!(steps, ["Step 1: landing", "Step 2: checkout", "Step 3: signed up"]);
    assert_eq!(r["maintainer"]["member"]["_id"], "5e1a00000000000000000001");
    assert!(r.get("description").is_none());
    assert_eq!(r["_version"], 2);
    assert!(r["_lastModified"].as_i64() > created["_lastModified"].as_i64());
    assert_eq!(r["_creationDate"], created["_creationDate"]);
    assert_eq!(ok(get(&mut s, &format!("{GROUPS}/sf"))), r);
    // Moving a step moves the whole shown item, read-only fields and all.
    let moved = ok(patch(&mut s, "sf", &json!([{ "op": "move", "from": "/metrics/2", "path": "/metrics/0" }])));
    assert_eq!(moved["metrics"][0]["key"], "signup-completed");
    assert_eq!(moved["_version"], 3);
    // Nothing to change: nothing bumps.
    let same = ok(patch(&mut s, "sf", &json!([{ "op": "replace", "path": "/name", "value": "Signup steps" }])));
    assert_eq!(same, moved);
    // A seed group patches like any other.
    let seeded = ok(patch(&mut s, "checkout-funnel", &json!([{ "op": "add", "path": "/tags/-", "value": "core" }])));
    assert_eq!((seeded["tags"].clone(), seeded["_version"].as_i64()), (json!(["core"]), Some(2)));
}

#[test]
fn a_group_patch_is_refused_whole_and_changes_nothing() {
    let mut s = demo();
    ok(post(&mut s, &signup_funnel("sf")));
    let before = s.to_json();
    let cases = [
        (
            json!([{ "op": "replace", "path": "/name", "value": "x" }, { "op": "test", "path": "/_version", "value": 1 }]),
            "`/_version`: fields starting with `_` are not editable",
        ),
        (
            json!([{ "op": "replace", "path": "/metrics/0/_links", "value": {} }]),
            "fields starting with `_` are not editable",
        ),
        (
            json!([{ "op": "replace", "path": "/name", "value": "x" }, { "op": "test", "path": "/name", "value": "y" }]),
            "Test operation 1 failed: the value at `/name` does not match",
        ),
        (
            json!([{ "op": "replace", "path": "/key", "value": "other" }]),
            "`/key` cannot be changed: it identifies the metric group",
        ),
        (
            json!([{ "op": "replace", "path": "/kind", "value": "standard" }]),
            "`/kind` cannot be changed: a metric group's kind is set when it is created",
        ),
        (
            json!([{ "op": "replace", "path": "/maintainer", "value": {} }]),
            "`/maintainer` is not an editable field of a metric group",
        ),
        (
            json!([{ "op": "remove", "path": "/metrics/1" }]),
            "the patched metric group is not valid: funnel metric group `sf` needs at least two metrics",
        ),
        (
            json!([{ "op": "add", "path": "/metrics/-", "value": { "key": "nope", "nameInGroup": "x" } }]),
            "names metrics that do not exist in project `demo`: `nope`",
        ),
        (
            json!([{ "op": "add", "path": "/metrics/-", "value": { "key": "page-view", "nameInGroup": "again" } }]),
            "metric `page-view` is listed twice",
        ),
        (
            json!([{ "op": "add", "path": "/metrics/-", "value": { "key": "page-load-ms" } }]),
            "`metrics[2]`: `nameInGroup` is required",
        ),
        (
            json!([{ "op": "replace", "path": "/metrics/0/name", "value": "Renamed" }]),
            "`/metrics/0/name` is not editable: a metric group's metrics take only `key` and `nameInGroup`",
        ),
        (
            json!([{ "op": "replace", "path": "/metrics/0/key", "value": "page-load-ms" }]),
            "`/metrics/0/isNumeric` is not editable",
        ),
        (json!([{ "op": "remove", "path": "/maintainerId" }]), "`maintainerId` is required"),
        (json!([{ "op": "remove", "path": "/tags" }]), "`tags` is required"),
        (json!({ "patch": [] }), "expected a JSON patch"),
    ];
    for (ops, message) in cases {
        bad(&patch(&mut s, "sf", &ops), message);
    }
    assert_eq!(s.to_json(), before, "no refused patch changed anything, not even the clock");
    assert_eq!(patch(&mut s, "nope", &json!([])).status, 404);
}

#[test]
fn deletes_answer_204_unless_an_experiment_uses_the_group() {
    let mut s = demo();
    ok(post(&mut s, &signup_funnel("sf")));
    // The group holds its metrics: they cannot go first.
    bad(&s.handle(&req("DELETE", "/api/v2/metrics/demo/signup-completed")), "metric group `sf`");
    let r = delete(&mut s, "sf");
    assert_eq!((r.status, r.body), (204, None));
    assert_eq!(get(&mut s, &format!("{GROUPS}/sf")).status, 404);
    assert_eq!(delete(&mut s, "sf").message(), Some("Unknown metric group key sf in project demo"));

    // checkout_post measures checkout-funnel (a metric entry with isGroup); another experiment makes it primary.
    let body = checkout_post(&mut s, "measures");
    ok(create(&mut s, "production", &body));
    let before = s.to_json();
    bad(
        &delete(&mut s, "checkout-funnel"),
        "metric group `checkout-funnel` cannot be deleted while it is in use: experiment `measures` (environment \
         `production`)",
    );
    let mut primary = checkout_post(&mut s, "primary");
    primary["iteration"]["metrics"] = json!([{ "key": "checkout-funnel", "isGroup": true }]);
    primary["iteration"].as_object_mut().unwrap().remove("primarySingleMetricKey");
    primary["iteration"]["primaryFunnelKey"] = json!("checkout-funnel");
    ok(create(&mut s, "staging", &primary));
    bad(&delete(&mut s, "checkout-funnel"), "experiment `primary` (environment `staging`)");
    assert_eq!(s.to_json()["projects"]["demo"]["metricGroups"], before["projects"]["demo"]["metricGroups"]);
}
