//! The service's rules beyond the spec (contract §9): starting and stopping rewrite the flag, one running
//! experiment per flag rule, stale `flagConfigVersion`s, fixed flags, restart justifications, metrics that fit the
//! unit, service tokens and the caller identity, and creates that answer a `not_started` current iteration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Request, Response, Seed, ServerConfig, State};
use serde_json::{Value, json};
use support::*;

const PATH: &str = "/api/v2/projects/demo/environments/production/experiments";

fn conflict(r: &Response, needles: &[&str]) {
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.code(), Some("optimistic_locking_error"));
    let m = r.message().unwrap();
    for n in needles {
        assert!(m.contains(n), "`{n}` in: {m}");
    }
}

fn bad(r: &Response, needles: &[&str]) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.code(), Some("invalid_request"));
    let m = r.message().unwrap();
    for n in needles {
        assert!(m.contains(n), "`{n}` in: {m}");
    }
}

fn versions(s: &mut State, key: &str) -> (i64, i64) {
    let f = flag(s, key);
    (f["environments"]["production"]["version"].as_i64().unwrap(), f["_version"].as_i64().unwrap())
}

fn new_iteration(s: &mut State, key: &str, body: &Value) -> Response {
    s.handle(&req("POST", &format!("{PATH}/{key}/iterations")).header("content-type", "application/json").json(body))
}

/// The `Beta users` rule of checkout-button in production: 10% control, 20% above the fold, the rest untracked on
/// above-fold.
fn on_beta_rule(s: &mut State, key: &str) -> (Value, String) {
    let rule = flag(s, "checkout-button")["environments"]["production"]["rules"][0]["_id"].as_str().unwrap().to_owned();
    let above = variation(s, "checkout-button", "above-fold");
    let mut body = checkout_post(s, key);
    let it = &mut body["iteration"];
    it["treatments"][0]["allocationPercent"] = json!("10");
    it["treatments"][1]["allocationPercent"] = json!("20");
    it["flags"]["checkout-button"] =
        json!({ "ruleId": rule, "flagConfigVersion": 1, "notInExperimentVariationId": above });
    (body, rule)
}

#[test]
fn starting_makes_the_rule_an_experiment_rollout_and_stopping_serves_the_winner() {
    let mut s = demo();
    let (body, rule) = on_beta_rule(&mut s, "cb");
    ok(create(&mut s, "production", &body));
    let (v, fv) = versions(&mut s, "checkout-button");
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let f = flag(&mut s, "checkout-button");
    let r = &f["environments"]["production"]["rules"][0];
    assert_eq!(r["_id"], rule.as_str());
    assert!(r.get("variation").is_none(), "{r}");
    assert_eq!(
        r["rollout"],
        json!({
            "variations": [
                { "variation": 0, "weight": 10000 },
                { "variation": 1, "weight": 20000 },
                { "variation": 1, "weight": 70000, "_untracked": true }
            ],
            "experimentAllocation": { "defaultVariation": 1, "canReshuffle": true },
            "contextKind": "user"
        })
    );
    assert_eq!(
        f["environments"]["production"]["fallthrough"],
        json!({ "variation": 0 }),
        "the fallthrough is untouched"
    );
    assert_eq!(versions(&mut s, "checkout-button"), (v + 1, fv + 1));
    assert_eq!(
        flag(&mut s, "checkout-button")["environments"]["staging"]["version"],
        1,
        "other environments keep theirs"
    );

    let winner = e["currentIteration"]["treatments"][1]["_id"].as_str().unwrap().to_owned();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "stopIteration", "winningTreatmentId": winner }])));
    let r = flag(&mut s, "checkout-button")["environments"]["production"]["rules"][0].clone();
    assert_eq!(r["variation"], 1);
    assert!(r.get("rollout").is_none(), "{r}");
    assert_eq!(versions(&mut s, "checkout-button"), (v + 2, fv + 2));
}

#[test]
fn a_full_allocation_on_the_fallthrough_has_no_untracked_share() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    ok(create(&mut s, "production", &body));
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let ft = flag(&mut s, "checkout-button")["environments"]["production"]["fallthrough"].clone();
    assert_eq!(
        ft["rollout"]["variations"],
        json!([{ "variation": 0, "weight": 50000 }, { "variation": 1, "weight": 50000 }])
    );
    assert_eq!(ft["rollout"]["experimentAllocation"]["defaultVariation"], 0, "the baseline when none is named");
}

#[test]
fn a_running_iteration_holds_its_rule_against_other_starts_and_flag_patches() {
    let mut s = demo();
    // The seed's search-ranking runs on the fallthrough in production: it holds it without any rewrite.
    assert_eq!(flag(&mut s, "search-ranking")["environments"]["production"]["fallthrough"], json!({ "variation": 0 }));
    let base = variation(&mut s, "search-ranking", "baseline");
    let sem = variation(&mut s, "search-ranking", "semantic");
    let rival = json!({ "key": "rival", "name": "Rival", "iteration": {
        "hypothesis": "h", "metrics": [{ "key": "search-clicks" }], "primarySingleMetricKey": "search-clicks",
        "treatments": [
            { "name": "A", "baseline": true, "allocationPercent": "50", "parameters": [{ "flagKey": "search-ranking", "variationId": base }] },
            { "name": "B", "baseline": false, "allocationPercent": "50", "parameters": [{ "flagKey": "search-ranking", "variationId": sem }] }
        ],
        "flags": { "search-ranking": { "ruleId": "fallthrough", "flagConfigVersion": 1 } } } });
    ok(create(&mut s, "production", &rival));
    let before = s.to_json();
    let r = patch_experiment(&mut s, "rival", json!([{ "kind": "startIteration" }]));
    conflict(&r, &["search-ranking", "fallthrough", "production"]);
    assert_eq!(s.to_json(), before);
    // In another environment the same rule is free.
    ok(create(&mut s, "staging", &rival));

    let held =
        json!([{ "op": "replace", "path": "/environments/production/fallthrough", "value": { "variation": 1 } }]);
    conflict(&patch_flag(&mut s, "search-ranking", &held), &["changes the fallthrough", "search-ranking"]);
    let dry = s.handle(
        &req("PATCH", "/api/v2/flags/demo/search-ranking").query("dryRun", "true").json(&json!({ "patch": held })),
    );
    assert_eq!(dry.status, 409, "a dry run is refused alike");
    ok(patch_flag(
        &mut s,
        "search-ranking",
        &json!([{ "op": "replace", "path": "/environments/staging/fallthrough", "value": { "variation": 1 } }]),
    ));
    ok(patch_flag(&mut s, "search-ranking", &json!([{ "op": "replace", "path": "/description", "value": "d" }])));
    ok(patch_flag(
        &mut s,
        "search-ranking",
        &json!([{ "op": "add", "path": "/experiments/items/0", "value": { "metricKey": "page-view", "environments": [] } }]),
    ));

    // A held rule can neither change nor go; other rules can.
    let (body, _) = on_beta_rule(&mut s, "cb");
    ok(create(&mut s, "production", &body));
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let removal = json!([{ "op": "remove", "path": "/environments/production/rules/0" }]);
    conflict(&patch_flag(&mut s, "checkout-button", &removal), &["removes rule", "`cb`"]);
    let edit = json!([{ "op": "replace", "path": "/environments/production/rules/0/description", "value": "x" }]);
    conflict(&patch_flag(&mut s, "checkout-button", &edit), &["changes rule", "`cb`"]);
    let other_rule = json!([{ "op": "add", "path": "/environments/production/rules/1", "value": { "variation": 0, "clauses": [] } }]);
    ok(patch_flag(&mut s, "checkout-button", &other_rule));
    ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/production/fallthrough", "value": { "variation": 1 } }]),
    ));
}

#[test]
fn a_stale_flag_config_version_is_a_conflict() {
    let mut s = demo();
    let mut body = checkout_post(&mut s, "cb");
    body["iteration"]["flags"]["checkout-button"]["flagConfigVersion"] = json!(7);
    let before = s.to_json();
    conflict(&create(&mut s, "production", &body), &["`checkout-button`", "version 1", "version 7"]);
    assert_eq!(s.to_json(), before);
    body["iteration"]["flags"]["checkout-button"]["flagConfigVersion"] = json!(1);
    ok(create(&mut s, "production", &body));
    ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/production/offVariation", "value": 1 }]),
    ));
    ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/production/on", "value": false }]),
    ));
    conflict(&new_iteration(&mut s, "cb", &body["iteration"]), &["`checkout-button`", "version 3", "version 1"]);
    body["iteration"]["flags"]["checkout-button"]["flagConfigVersion"] = json!(3);
    ok(new_iteration(&mut s, "cb", &body["iteration"]));
}

#[test]
fn the_flags_of_an_experiment_are_fixed() {
    let mut s = demo();
    let base = variation(&mut s, "search-ranking", "baseline");
    let classic = variation(&mut s, "signup-flow", "classic");
    let wider = json!({
        "hypothesis": "h", "metrics": [{ "key": "search-clicks" }], "primarySingleMetricKey": "search-clicks",
        "treatments": [{ "name": "A", "baseline": true, "allocationPercent": "100", "parameters": [
            { "flagKey": "search-ranking", "variationId": base }, { "flagKey": "signup-flow", "variationId": classic }
        ] }],
        "flags": {
            "search-ranking": { "ruleId": "fallthrough", "flagConfigVersion": 1 },
            "signup-flow": { "ruleId": "fallthrough", "flagConfigVersion": 1 }
        }
    });
    let before = s.to_json();
    let r = new_iteration(&mut s, "search-ranking", &wider);
    bad(&r, &["first iteration uses `search-ranking` but", "this iteration uses `search-ranking`, `signup-flow`"]);
    assert_eq!(s.to_json(), before);
}

#[test]
fn restarting_after_any_started_iteration_needs_a_justification() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    ok(create(&mut s, "production", &body));
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let winner = e["currentIteration"]["treatments"][0]["_id"].as_str().unwrap().to_owned();
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "stopIteration", "winningTreatmentId": winner }])));
    let mut it = checkout_post(&mut s, "cb")["iteration"].clone();
    it["flags"]["checkout-button"]["flagConfigVersion"] = json!(flag_version(&mut s, "checkout-button", "production"));
    ok(new_iteration(&mut s, "cb", &it));
    for justification in [json!(null), json!(""), json!("  ")] {
        let r =
            patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration", "changeJustification": justification }]));
        bad(&r, &["changeJustification is required", "already run one"]);
    }
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration", "changeJustification": "v2" }])));
    assert_eq!(e["currentIteration"]["status"], "running");
    assert_eq!(e["previousIterations"][0]["status"], "stopped");
}

const UNIT_SEED: &str = r"
projects:
  - key: demo
    environments: [production]
    randomizationUnits: [user, organization]
    metrics:
      - { key: any-unit }
      - { key: org-only, randomizationUnits: [organization] }
    metricGroups:
      - { key: mixed, kind: standard, metrics: [any-unit, org-only] }
    flags:
      - key: f
        variations: [ { name: a, value: 1 }, { name: b, value: 2 } ]
        environments: { production: { on: true } }
";

fn unit_post(metric: &str, is_group: bool, unit: &str) -> Value {
    json!({ "key": "e", "name": "E", "iteration": {
        "hypothesis": "h", "randomizationUnit": unit,
        "metrics": [{ "key": "any-unit" }, { "key": metric, "isGroup": is_group }],
        "primarySingleMetricKey": "any-unit",
        "treatments": [{ "name": "A", "baseline": true, "allocationPercent": "100",
                         "parameters": [{ "flagKey": "f", "variationId": "a" }] }],
        "flags": { "f": { "ruleId": "fallthrough", "flagConfigVersion": 1 } } } })
}

#[test]
fn metrics_must_list_the_iteration_unit() {
    let mut s = State::from_seed(&Seed::from_str(UNIT_SEED).unwrap()).unwrap();
    let a = variation(&mut s, "f", "a");
    let with_ids = |mut v: Value| {
        v["iteration"]["treatments"][0]["parameters"][0]["variationId"] = json!(a);
        v
    };
    // A seed metric without units fits every unit of the project.
    assert_eq!(ok(get(&mut s, "/api/v2/metrics/demo/any-unit"))["randomizationUnits"], json!(["user", "organization"]));
    let r = create(&mut s, "production", &with_ids(unit_post("org-only", false, "user")));
    bad(&r, &["metric `org-only`", "randomization unit `user`", "[organization]"]);
    let r = create(&mut s, "production", &with_ids(unit_post("mixed", true, "user")));
    bad(&r, &["metric `org-only` (in metric group `mixed`)", "randomization unit `user`"]);
    ok(create(&mut s, "production", &with_ids(unit_post("mixed", true, "organization"))));
    let mut it = with_ids(unit_post("org-only", false, "user"))["iteration"].clone();
    bad(&new_iteration(&mut s, "e", &it), &["metric `org-only`"]);
    it["randomizationUnit"] = json!("organization");
    ok(new_iteration(&mut s, "e", &it));
}

fn as_caller(token: &str, method: &str, path: &str) -> Request {
    let version = if ldexp_core::requests::is_beta_route(path) { "beta" } else { "20240415" };
    Request::new(method, path).header("authorization", token).header("ld-api-version", version)
}

#[test]
fn a_service_token_is_known_to_the_caller_identity_and_must_name_a_maintainer() {
    let mut s = demo().with_service_token("svc-secret-1");
    let me = ok(get(&mut s, "/api/v2/caller-identity"));
    assert_eq!((me["tokenKind"].as_str(), me["serviceToken"].as_bool()), (Some("personal"), Some(false)));
    assert_eq!(me["memberId"], "569f183514f4432160000007");
    let svc = ok(s.handle(&as_caller("svc-secret-1", "GET", "/api/v2/caller-identity")));
    assert_eq!((svc["tokenKind"].as_str(), svc["serviceToken"].as_bool()), (Some("service"), Some(true)));
    assert!(svc.get("memberId").is_none());
    assert_eq!(s.handle(&as_caller("nope", "GET", "/api/v2/caller-identity")).status, 401);

    let mut body = checkout_post(&mut s, "cb");
    let r = s.handle(&as_caller("svc-secret-1", "POST", PATH).json(&body));
    bad(&r, &["maintainerId is required", "service token"]);
    body["maintainerId"] = json!("5f0000000000000000000001");
    let e = ok(s.handle(&as_caller("svc-secret-1", "POST", PATH).json(&body)));
    assert_eq!(e["_maintainerId"], "5f0000000000000000000001");

    let config = ServerConfig { service_token: Some("svc-secret-1".into()), ..ServerConfig::default() };
    let shown = format!("{s:?} {config:?}");
    assert!(!shown.contains("svc-secret-1") && shown.contains("[redacted]"), "{shown}");
}

#[test]
fn creates_can_answer_a_not_started_current_iteration() {
    let mut s = demo().with_create_as_current(true);
    let body = checkout_post(&mut s, "cb");
    let e = ok(create(&mut s, "production", &body));
    assert_eq!(e["currentIteration"]["status"], "not_started");
    assert!(e.get("draftIteration").is_none());
    let id = e["currentIteration"]["_id"].clone();
    let listed = ok(get(&mut s, &format!("{PATH}?filter=status:not_started")));
    assert_eq!(listed["items"][0]["key"], "cb");
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    assert_eq!((e["currentIteration"]["_id"].clone(), e["currentIteration"]["status"].clone()), (id, json!("running")));
    assert!(e.get("previousIterations").is_none());
    // A later iteration is a draft as usual.
    let mut it = checkout_post(&mut s, "cb")["iteration"].clone();
    it["flags"]["checkout-button"]["flagConfigVersion"] = json!(flag_version(&mut s, "checkout-button", "production"));
    assert_eq!(ok(new_iteration(&mut s, "cb", &it))["status"], "not_started");
    let e = ok(get(&mut s, &format!("{PATH}/cb?expand=draftIteration")));
    assert_eq!(
        (e["currentIteration"]["status"].as_str(), e["draftIteration"]["status"].as_str()),
        (Some("running"), Some("not_started"))
    );

    // A newer draft replaces a never-started current iteration when it starts.
    let mut s = demo().with_create_as_current(true);
    let body = checkout_post(&mut s, "cb");
    ok(create(&mut s, "production", &body));
    let body = checkout_post(&mut s, "cb");
    ok(new_iteration(&mut s, "cb", &body["iteration"]));
    let e = ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    assert_eq!(e["currentIteration"]["status"], "running");
    assert!(e.get("previousIterations").is_none() && e.get("draftIteration").is_none());
}

#[test]
fn the_create_as_current_option_is_in_seeds_and_state_documents() {
    let seed = Seed::from_str("options: { createAsCurrent: true }\nprojects: []").unwrap();
    let s = State::from_seed(&seed).unwrap();
    assert!(s.create_as_current());
    let doc = s.to_json();
    assert_eq!(doc["options"], json!({ "createAsCurrent": true }));
    assert!(State::from_json(&doc).unwrap().create_as_current());
    let plain = demo();
    assert!(plain.to_json().get("options").is_none(), "off, the document is unchanged");
    assert!(!State::from_json(&plain.to_json()).unwrap().create_as_current());
}
