//! Metric writes: `postMetric` (every `MetricPost` rule), `patchMetric` (JSON patch with `test` guards, read-only and
//! creation-only fields, re-validation, version bumps) and `deleteMetric` (refused while anything uses the metric).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Response, State};
use serde_json::{Value, json};
use support::*;

const METRICS: &str = "/api/v2/metrics/demo";

fn post(s: &mut State, body: &Value) -> Response {
    s.handle(&req("POST", METRICS).header("content-type", "application/json").json(body))
}

fn patch(s: &mut State, key: &str, ops: &Value) -> Response {
    s.handle(&req("PATCH", &format!("{METRICS}/{key}")).header("content-type", "application/json").json(ops))
}

fn delete(s: &mut State, key: &str) -> Response {
    s.handle(&req("DELETE", &format!("{METRICS}/{key}")))
}

fn bad(r: &Response, needle: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.code(), Some("invalid_request"));
    let m = r.message().unwrap();
    assert!(m.contains(needle), "`{needle}` in: {m}");
}

fn conversion(key: &str) -> Value {
    json!({ "key": key, "kind": "custom", "eventKey": format!("{key}-event"), "isNumeric": false })
}

fn numeric(key: &str) -> Value {
    json!({
        "key": key, "name": "Revenue per user", "description": "Order value", "kind": "custom",
        "eventKey": "order-placed", "isNumeric": true, "unit": "USD", "successCriteria": "HigherThanBaseline",
        "unitAggregationType": "sum", "analysisType": "percentile", "percentileValue": 95,
        "eventDefault": { "disabled": true, "value": 0 }, "randomizationUnits": ["user", "organization"],
        "tags": ["revenue"], "maintainerId": "5e1a00000000000000000001",
        "filters": { "type": "eventProperty", "attribute": "currency", "op": "in", "values": ["USD"], "negate": false }
    })
}

#[test]
fn a_created_metric_answers_201_and_reads_back_with_every_field() {
    let mut s = demo();
    let r = post(&mut s, &numeric("revenue"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let m = r.body.unwrap();
    for field in ["_id", "_versionId", "key", "name", "kind", "_links", "tags", "_creationDate", "dataSource"] {
        assert!(m.get(field).is_some(), "MetricRep requires {field}");
    }
    assert_eq!(m["_version"], 1);
    assert_eq!(m["_links"]["self"]["href"], "/api/v2/metrics/demo/revenue");
    assert_eq!(m["dataSource"], json!({ "key": "launchdarkly", "_name": "LaunchDarkly" }));
    for (field, value) in [
        ("name", json!("Revenue per user")),
        ("description", json!("Order value")),
        ("eventKey", json!("order-placed")),
        ("isNumeric", json!(true)),
        ("unit", json!("USD")),
        ("successCriteria", json!("HigherThanBaseline")),
        ("unitAggregationType", json!("sum")),
        ("analysisType", json!("percentile")),
        ("percentileValue", json!(95)),
        ("eventDefault", json!({ "disabled": true, "value": 0 })),
        ("randomizationUnits", json!(["user", "organization"])),
        ("tags", json!(["revenue"])),
        ("maintainerId", json!("5e1a00000000000000000001")),
        ("filters", numeric("x")["filters"].clone()),
    ] {
        assert_eq!(m[field], value, "{field}");
    }
    assert_eq!(ok(get(&mut s, &format!("{METRICS}/revenue"))), m);
    let list = ok(get(&mut s, &format!("{METRICS}?limit=50")));
    assert_eq!(list["totalCount"], 6);
    assert_eq!(list["items"][5], m, "listed last, in creation order, with the same fields");

    // Defaults: the caller's member maintains it, the name is the key, tags are empty, mean analysis, and the
    // project's default randomization unit.
    let m = ok(post(&mut s, &conversion("signups")));
    assert_eq!(m["maintainerId"], "569f183514f4432160000007");
    assert_eq!((m["name"].as_str(), m["tags"].clone()), (Some("signups"), json!([])));
    assert_eq!((m["analysisType"].as_str(), m["randomizationUnits"].clone()), (Some("mean"), json!(["user"])));
    assert!(m.get("unit").is_none() && m.get("percentileValue").is_none());

    let page = json!({ "key": "landing", "kind": "pageview",
        "urls": [ { "kind": "exact", "url": "https://example.com/" }, { "kind": "regex", "pattern": "^/shop/.*" } ] });
    assert_eq!(ok(post(&mut s, &page))["urls"], page["urls"]);
    let click = json!({ "key": "buy-click", "kind": "click", "selector": ".buy",
        "urls": [ { "kind": "substring", "substring": "/checkout" }, { "kind": "canonical", "url": "https://example.com/c" } ] });
    let c = ok(post(&mut s, &click));
    assert_eq!((c["selector"].clone(), c["urls"].clone()), (click["selector"].clone(), click["urls"].clone()));
    assert_eq!(c["isNumeric"], false);
    assert!(c.get("eventKey").is_none());
}

#[test]
fn every_metric_post_rule_is_a_400_that_stores_nothing() {
    let mut s = demo();
    let with = |mut base: Value, patch: Value| {
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    };
    let page = json!({ "key": "p", "kind": "pageview", "urls": [ { "kind": "exact", "url": "https://e.com" } ] });
    let click = json!({ "key": "c", "kind": "click", "selector": "a", "urls": page["urls"] });
    let cases = [
        (json!([conversion("x")]), "a metric must be a JSON object"),
        (with(conversion("x"), json!({ "key": null })), "`key` is required"),
        (with(conversion("x"), json!({ "key": "has space" })), "metric key `has space` must be non-empty"),
        (with(conversion("x"), json!({ "kind": null })), "`kind` is required (pageview, click or custom)"),
        (with(conversion("x"), json!({ "kind": "scroll" })), "`kind` `scroll` is not one of pageview, click, custom"),
        (with(conversion("x"), json!({ "name": 7 })), "`name` must be a string"),
        (with(conversion("x"), json!({ "eventKey": null })), "`eventKey` is required for custom metrics"),
        (with(conversion("x"), json!({ "isNumeric": null })), "`isNumeric` is required for custom metrics"),
        (with(conversion("x"), json!({ "isNumeric": "no" })), "`isNumeric` must be true or false"),
        (with(conversion("x"), json!({ "unit": "ms" })), "`unit` applies only to numeric custom metrics"),
        (with(conversion("x"), json!({ "urls": page["urls"] })), "`urls` applies only to click and pageview metrics"),
        (with(conversion("x"), json!({ "selector": "a" })), "`selector` applies only to click metrics"),
        (with(numeric("x"), json!({ "successCriteria": null })), "`successCriteria` is required for numeric custom"),
        (with(conversion("x"), json!({ "successCriteria": "Higher" })), "`successCriteria` `Higher` is not one of"),
        (with(numeric("x"), json!({ "unitAggregationType": "median" })), "`unitAggregationType` `median` is not one"),
        (with(numeric("x"), json!({ "analysisType": "mode" })), "`analysisType` `mode` is not one of mean, percentile"),
        (with(numeric("x"), json!({ "percentileValue": null })), "`percentileValue` is required when `analysisType`"),
        (with(numeric("x"), json!({ "percentileValue": 101 })), "`percentileValue` must be an integer from 0 to 100"),
        (with(numeric("x"), json!({ "percentileValue": 99.5 })), "`percentileValue` must be an integer"),
        (with(numeric("x"), json!({ "analysisType": "mean" })), "`percentileValue` is allowed only when"),
        (with(conversion("x"), json!({ "analysisType": "percentile", "percentileValue": 50 })), "needs a numeric"),
        (with(numeric("x"), json!({ "eventDefault": { "value": 3 } })), "`eventDefault.value` can only be 0"),
        (with(numeric("x"), json!({ "eventDefault": { "disabled": "yes" } })), "`eventDefault`: `disabled` must be"),
        (with(conversion("x"), json!({ "randomizationUnits": ["device"] })), "`device` is not a context kind"),
        (with(conversion("x"), json!({ "randomizationUnits": [] })), "must name at least one unit"),
        (with(conversion("x"), json!({ "randomizationUnits": ["user", "user"] })), "`user` is listed twice"),
        (with(conversion("x"), json!({ "tags": "a" })), "`tags` must be an array of strings"),
        (with(conversion("x"), json!({ "dataSource": {} })), "`dataSource`: `key` is required"),
        (with(conversion("x"), json!({ "dataSource": { "key": "k", "environmentKey": "qa" } })), "`qa` is not an env"),
        (
            with(numeric("x"), json!({ "filters": { "type": "x", "op": "in", "values": [], "negate": false } })),
            "`filters`: `type` `x`",
        ),
        (
            with(numeric("x"), json!({ "filters": { "type": "group", "op": "and", "values": [] } })),
            "`filters`: `negate` is required",
        ),
        (with(page.clone(), json!({ "filters": numeric("x")["filters"] })), "`filters` applies only to custom metrics"),
        (with(page.clone(), json!({ "urls": null })), "`urls` is required for pageview metrics"),
        (with(page.clone(), json!({ "urls": [] })), "needs at least one URL matcher"),
        (with(page.clone(), json!({ "urls": [ { "kind": "exact" } ] })), "`urls[0]`: kind `exact` needs `url`"),
        (
            with(page.clone(), json!({ "urls": [ { "kind": "regex", "url": "u" } ] })),
            "`urls[0]`: kind `regex` needs `pattern`",
        ),
        (
            with(page.clone(), json!({ "urls": [ { "kind": "glob", "url": "u" } ] })),
            "`urls[0]`: `kind` `glob` is not one",
        ),
        (
            with(page.clone(), json!({ "urls": [ { "kind": "exact", "url": "u", "pattern": "p" } ] })),
            "takes `url`, not `pattern`",
        ),
        (with(page.clone(), json!({ "eventKey": "e" })), "`eventKey` applies only to custom metrics"),
        (with(page.clone(), json!({ "isNumeric": true })), "`isNumeric` can be true only for custom metrics"),
        (with(click.clone(), json!({ "selector": null })), "`selector` is required for click metrics"),
        (with(click.clone(), json!({ "urls": null })), "`urls` is required for click metrics"),
        (with(click, json!({ "selector": " " })), "`selector` must not be empty"),
    ];
    let before = s.to_json();
    for (body, message) in cases {
        bad(&post(&mut s, &body), message);
    }
    assert_eq!(s.to_json(), before, "no refused create changed anything");
}

#[test]
fn a_taken_key_is_409_and_an_unknown_project_404() {
    let mut s = demo();
    let r = post(&mut s, &conversion("page-view"));
    assert_eq!((r.status, r.code()), (409, Some("conflict")));
    assert_eq!(r.message(), Some("a metric with key `page-view` already exists in project `demo`"));
    let r = s.handle(&req("POST", "/api/v2/metrics/nope").json(&conversion("x")));
    assert_eq!((r.status, r.message()), (404, Some("Unknown project key nope")));
    assert_eq!(s.handle(&req("PUT", &format!("{METRICS}/page-view"))).status, 405);
}

#[test]
fn a_service_token_must_name_the_maintainer() {
    let mut s = demo().with_service_token("svc");
    let as_service =
        |s: &mut State, body: &Value| s.handle(&req("POST", METRICS).header("authorization", "svc").json(body));
    bad(&as_service(&mut s, &conversion("a")), "maintainerId is required when the caller uses a service token");
    let mut body = conversion("a");
    body["maintainerId"] = json!("5e1a00000000000000000001");
    assert_eq!(ok(as_service(&mut s, &body))["maintainerId"], "5e1a00000000000000000001");
}

#[test]
fn a_patch_edits_fields_and_bumps_the_version_once_per_change() {
    let mut s = demo();
    let created = ok(post(&mut s, &numeric("revenue")));
    let r = ok(patch(
        &mut s,
        "revenue",
        &json!([
            { "op": "test", "path": "/name", "value": "Revenue per user" },
            { "op": "replace", "path": "/name", "value": "Revenue" },
            { "op": "replace", "path": "/percentileValue", "value": 90 },
            { "op": "add", "path": "/tags/-", "value": "money" },
            { "op": "remove", "path": "/unit" }
        ]),
    ));
    assert_eq!((r["name"].as_str(), r["percentileValue"].as_i64()), (Some("Revenue"), Some(90)));
    assert_eq!(r["tags"], json!(["revenue", "money"]));
    assert!(r.get("unit").is_none());
    assert_eq!(r["_version"], 2);
    assert_ne!(r["_versionId"], created["_versionId"]);
    assert_eq!(
        (r["_id"].clone(), r["_creationDate"].clone()),
        (created["_id"].clone(), created["_creationDate"].clone())
    );
    assert_eq!(ok(get(&mut s, &format!("{METRICS}/revenue"))), r);
    // The same values again change nothing and bump nothing.
    let clock = s.to_json()["clock"].clone();
    let same = ok(patch(&mut s, "revenue", &json!([{ "op": "replace", "path": "/name", "value": "Revenue" }])));
    assert_eq!(same, r);
    assert_eq!(s.to_json()["clock"], clock);
    // Switching to mean analysis takes the percentile with it.
    let r = ok(patch(
        &mut s,
        "revenue",
        &json!([{ "op": "replace", "path": "/analysisType", "value": "mean" }, { "op": "remove", "path": "/percentileValue" }]),
    ));
    assert_eq!((r["analysisType"].as_str(), r["_version"].as_i64()), (Some("mean"), Some(3)));
    // A seed metric can be patched too: its hand-written form got the URL matcher a pageview needs.
    let r = ok(patch(&mut s, "page-view", &json!([{ "op": "replace", "path": "/name", "value": "Any page" }])));
    assert_eq!(r["urls"], json!([{ "kind": "substring", "substring": "/" }]));
    assert_eq!(r["_version"], 2);
}

#[test]
fn a_failed_test_answers_400_and_leaves_the_metric_unchanged() {
    let mut s = demo();
    ok(post(&mut s, &numeric("revenue")));
    let before = s.to_json();
    let r = patch(
        &mut s,
        "revenue",
        &json!([
            { "op": "replace", "path": "/name", "value": "Changed" },
            { "op": "test", "path": "/percentileValue", "value": 50 }
        ]),
    );
    bad(&r, "Test operation 1 failed: the value at `/percentileValue` does not match");
    assert_eq!(s.to_json(), before, "nothing changed, not even the clock");
    assert_eq!(ok(get(&mut s, &format!("{METRICS}/revenue")))["name"], "Revenue per user");
}

#[test]
fn read_only_creation_only_and_invalid_results_are_refused() {
    let mut s = demo();
    ok(post(&mut s, &numeric("revenue")));
    let before = s.to_json();
    let cases = [
        (
            json!([{ "op": "replace", "path": "/_version", "value": 9 }]),
            "`/_version`: fields starting with `_` are not editable",
        ),
        (json!([{ "op": "test", "path": "/_version", "value": 1 }]), "fields starting with `_` are not editable"),
        (
            json!([{ "op": "replace", "path": "/dataSource/_name", "value": "x" }]),
            "fields starting with `_` are not editable",
        ),
        (
            json!([{ "op": "replace", "path": "/key", "value": "other" }]),
            "`/key` cannot be changed: it identifies the metric",
        ),
        (
            json!([{ "op": "replace", "path": "/kind", "value": "pageview" }]),
            "`/kind` cannot be changed: a metric's kind is set when it is created",
        ),
        (json!([{ "op": "replace", "path": "/eventKey", "value": "e2" }]), "`/eventKey` cannot be changed"),
        (json!([{ "op": "replace", "path": "/isNumeric", "value": false }]), "`/isNumeric` cannot be changed"),
        (json!([{ "op": "move", "from": "/eventKey", "path": "/description" }]), "`/eventKey` cannot be changed"),
        (json!([{ "op": "replace", "path": "", "value": {} }]), "a patch cannot replace the whole metric"),
        (
            json!([{ "op": "replace", "path": "/archived", "value": true }]),
            "`/archived` is not an editable field of a metric",
        ),
        (json!([{ "op": "add", "path": "/colour", "value": "red" }]), "`/colour` is not an editable field of a metric"),
        (
            json!([{ "op": "remove", "path": "/successCriteria" }]),
            "the patched metric is not valid: `successCriteria` is required",
        ),
        (
            json!([{ "op": "remove", "path": "/percentileValue" }]),
            "the patched metric is not valid: `percentileValue` is required",
        ),
        (
            json!([{ "op": "replace", "path": "/randomizationUnits", "value": ["device"] }]),
            "`device` is not a context kind",
        ),
        (json!([{ "op": "remove", "path": "/maintainerId" }]), "`maintainerId` cannot be removed"),
        (json!([{ "op": "replace", "path": "/nope", "value": 1 }]), "cannot apply the JSON patch"),
        (json!({ "comment": "c", "patch": [] }), "expected a JSON patch: an array of {op, path, value} operations"),
        (json!([{ "op": "frobnicate", "path": "/name" }]), "invalid JSON patch"),
    ];
    for (ops, message) in cases {
        bad(&patch(&mut s, "revenue", &ops), message);
    }
    let page = patch(&mut s, "page-view", &json!([{ "op": "remove", "path": "/urls" }]));
    bad(&page, "the patched metric is not valid: `urls` is required for pageview metrics");
    let semantic = s.handle(
        &req("PATCH", &format!("{METRICS}/revenue"))
            .header("content-type", SEMANTIC)
            .json(&json!({ "instructions": [] })),
    );
    bad(&semantic, "patchMetric takes a JSON patch (RFC 6902)");
    assert_eq!(s.to_json(), before, "no refused patch changed anything");
    assert_eq!(patch(&mut s, "nope", &json!([])).status, 404);
}

#[test]
fn an_unused_metric_is_deleted_with_204() {
    let mut s = demo();
    ok(post(&mut s, &conversion("temp")));
    let r = delete(&mut s, "temp");
    assert_eq!((r.status, r.body), (204, None));
    assert_eq!(get(&mut s, &format!("{METRICS}/temp")).status, 404);
    let again = delete(&mut s, "temp");
    assert_eq!((again.status, again.message()), (404, Some("Unknown metric key temp in project demo")));
    // The seed's page-load-ms is measured by nothing until an experiment names it.
    assert_eq!(delete(&mut s, "page-load-ms").status, 204);
    // A metric created again under the same key is another metric.
    let first = ok(post(&mut s, &conversion("temp")));
    assert_eq!(delete(&mut s, "temp").status, 204);
    let second = ok(post(&mut s, &conversion("temp")));
    assert_ne!(first["_id"], second["_id"]);
    assert_ne!(first["_versionId"], second["_versionId"]);
}

#[test]
fn a_metric_in_use_cannot_be_deleted_and_the_answer_names_its_users() {
    let mut s = demo();
    let before = s.to_json();
    // The running seed experiment in production measures search-clicks.
    bad(&delete(&mut s, "search-clicks"), "experiment `search-ranking` (environment `production`)");
    // page-view: a step of the checkout funnel, and the legacy experiment of pricing-banner.
    let r = delete(&mut s, "page-view");
    bad(&r, "metric `page-view` cannot be deleted while it is in use: ");
    bad(&r, "the legacy experiments of flag `pricing-banner`, metric group `checkout-funnel`");
    assert_eq!(s.to_json(), before);

    // An experiment only drafted, then archived, still holds its metrics.
    ok(post(&mut s, &conversion("fresh")));
    let mut body = checkout_post(&mut s, "uses-fresh");
    body["iteration"]["metrics"] = json!([{ "key": "fresh" }]);
    body["iteration"]["primarySingleMetricKey"] = json!("fresh");
    assert_eq!(create(&mut s, "staging", &body).status, 201);
    ok(patch_experiment_in(&mut s, "staging", "uses-fresh", json!([{ "kind": "archiveExperiment" }])));
    bad(
        &delete(&mut s, "fresh"),
        "metric `fresh` cannot be deleted while it is in use: experiment `uses-fresh` (environment `staging`)",
    );
}

fn patch_experiment_in(s: &mut State, env: &str, key: &str, instructions: Value) -> Response {
    s.handle(
        &req("PATCH", &format!("/api/v2/projects/demo/environments/{env}/experiments/{key}"))
            .header("content-type", SEMANTIC)
            .json(&json!({ "comment": "test", "instructions": instructions })),
    )
}

#[test]
fn state_documents_from_before_metric_writes_still_load() {
    let mut doc = demo().to_json();
    let project = &mut doc["projects"]["demo"];
    for list in ["metrics", "metricGroups"] {
        for item in project[list].as_array_mut().unwrap() {
            for field in ["version", "maintainerId", "analysisType", "urls", "selector", "namesInGroup", "lastModified"]
            {
                item.as_object_mut().unwrap().remove(field);
            }
        }
    }
    let mut s = State::from_json(&doc).unwrap();
    let m = ok(get(&mut s, &format!("{METRICS}/page-view")));
    assert_eq!((m["_version"].as_i64(), m["analysisType"].as_str()), (Some(1), Some("mean")));
    assert_eq!(m["maintainerId"], "569f183514f4432160000007");
    let g = ok(get(&mut s, "/api/v2/projects/demo/metric-groups/checkout-funnel"));
    assert_eq!((g["_version"].as_i64(), g["metrics"][0]["nameInGroup"].as_str()), (Some(1), Some("Page view")));
}
