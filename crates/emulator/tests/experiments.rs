//! Experiments: create, validation, list (pagination, expand, filter, lifecycleState), get, createIteration,
//! and determinism of ids and timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::*;

#[test]
fn create_answers_201_with_the_iteration_as_draft() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    let r = create(&mut s, "production", &body);
    assert_eq!(r.status, 201);
    let e = r.body.unwrap();
    assert_eq!(e["key"], "cb");
    assert_eq!(e["environmentKey"], "production");
    assert!(e["_maintainerId"].is_string());
    assert!(e["_creationDate"].is_i64());
    assert_eq!(e["_links"]["self"]["href"], "/api/v2/projects/demo/environments/production/experiments/cb");
    assert!(e.get("currentIteration").is_none());
    let draft = &e["draftIteration"];
    assert_eq!(draft["status"], "not_started");
    assert_eq!(draft["randomizationUnit"], "user");
    assert_eq!(draft["flags"]["checkout-button"]["targetingRule"], "fallthrough");
    assert_eq!(draft["flags"]["checkout-button"]["flagConfigVersion"], 1);
    assert_eq!(draft["primarySingleMetric"]["key"], "checkout-conversion");
    let treatments = draft["treatments"].as_array().unwrap();
    assert_eq!(treatments.len(), 2);
    assert!(treatments.iter().all(|t| t["_id"].as_str().is_some_and(|id| id.len() == 36)));
    assert_eq!(treatments[0]["allocationPercent"], "50");
    let metrics: Vec<(&str, bool)> = draft["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap(), m["isGroup"].as_bool().unwrap()))
        .collect();
    assert_eq!(metrics, [("checkout-conversion", false), ("page-load-ms", false), ("checkout-funnel", true)]);
    insta::assert_json_snapshot!("created_experiment", e);
}

/// An edit of a valid `ExperimentPost`.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn invalid_creates_answer_400_and_change_nothing() {
    let mut cases: Vec<(&str, Mutation)> = vec![
        (
            "metric `nope` does not exist in project `demo`",
            Box::new(|b| b["iteration"]["metrics"][0]["key"] = json!("nope")),
        ),
        (
            "flag `nope` does not exist",
            Box::new(|b| {
                let f = b["iteration"]["flags"]["checkout-button"].take();
                b["iteration"]["flags"] = json!({ "nope": f });
            }),
        ),
        (
            "variationId `v` is not a variation of flag `checkout-button`",
            Box::new(|b| {
                b["iteration"]["treatments"][0]["parameters"][0]["variationId"] = json!("v");
            }),
        ),
        (
            "ruleId `r1` is not a rule of flag `checkout-button` in environment `production`",
            Box::new(|b| {
                b["iteration"]["flags"]["checkout-button"]["ruleId"] = json!("r1");
            }),
        ),
        (
            "add up to 110%, more than 100%",
            Box::new(|b| b["iteration"]["treatments"][0]["allocationPercent"] = json!("60")),
        ),
        (
            "exactly one treatment must be the baseline",
            Box::new(|b| b["iteration"]["treatments"][1]["baseline"] = json!(true)),
        ),
        (
            "either primarySingleMetricKey or primaryFunnelKey must be present",
            Box::new(|b| {
                b["iteration"].as_object_mut().unwrap().remove("primarySingleMetricKey");
            }),
        ),
        ("randomization unit `device`", Box::new(|b| b["iteration"]["randomizationUnit"] = json!("device"))),
        ("an iteration needs at least one metric", Box::new(|b| b["iteration"]["metrics"] = json!([]))),
        ("experiment key `a b`", Box::new(|b| b["key"] = json!("a b"))),
        (
            "has no parameter for flag `checkout-button`",
            Box::new(|b| b["iteration"]["treatments"][1]["parameters"] = json!([])),
        ),
        (
            "primaryFunnelKey `checkout-funnel`",
            Box::new(|b| {
                b["iteration"].as_object_mut().unwrap().remove("primarySingleMetricKey");
                b["iteration"]["primaryFunnelKey"] = json!("checkout-funnel");
                b["iteration"]["metrics"] = json!([{ "key": "checkout-conversion" }]);
            }),
        ),
    ];
    cases.push((
        "methodology `magic` is not one of bayesian, frequentist, export_only",
        Box::new(|b| b["methodology"] = json!("magic")),
    ));
    for (expected, mutate) in cases {
        let mut s = demo();
        let mut body = checkout_post(&mut s, "cb");
        mutate(&mut body);
        let before = s.to_json();
        let r = create(&mut s, "production", &body);
        assert_eq!(r.status, 400, "{expected}: {:?}", r.body);
        assert_eq!(r.code(), Some("invalid_request"));
        assert!(r.message().unwrap().contains(expected), "{expected} not in {:?}", r.message());
        assert_eq!(s.to_json(), before, "{expected}: state changed");
    }
}

#[test]
fn a_duplicate_key_is_rejected_and_unknown_environments_are_404() {
    let mut s = demo();
    let body = checkout_post(&mut s, "search-ranking");
    let r = create(&mut s, "production", &body);
    assert_eq!(r.status, 400);
    assert_eq!(r.message(), Some("an experiment with key `search-ranking` already exists in environment `production`"));
    let r = create(&mut s, "qa", &body);
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), Some("Unknown environment key qa in project demo"));
    let r = get(&mut s, "/api/v2/projects/nope/environments/production/experiments");
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), Some("Unknown project key nope"));
}

#[test]
fn lists_paginate_with_limit_offset_next_and_total_count() {
    let mut s = demo();
    for i in 0..6 {
        let body = checkout_post(&mut s, &format!("e{i}"));
        assert_eq!(create(&mut s, "production", &body).status, 201);
    }
    let mut keys = Vec::new();
    let mut offset = 0;
    loop {
        let page = ok(get(&mut s, &format!("{PE}/experiments?limit=3&offset={offset}")));
        assert_eq!(page["total_count"], 7);
        let items = page["items"].as_array().unwrap();
        keys.extend(items.iter().map(|e| e["key"].as_str().unwrap().to_owned()));
        match page["_links"].get("next") {
            Some(next) => {
                assert_eq!(items.len(), 3);
                let href = next["href"].as_str().unwrap();
                assert!(href.contains(&format!("offset={}", offset + 3)), "{href}");
                offset += 3;
            }
            None => break,
        }
    }
    // Creation order: the seeded experiment first.
    assert_eq!(keys, ["search-ranking", "e0", "e1", "e2", "e3", "e4", "e5"]);
    let page = ok(get(&mut s, &format!("{PE}/experiments")));
    assert_eq!(page["items"].as_array().unwrap().len(), 7, "default limit is 20");
    let r = get(&mut s, &format!("{PE}/experiments?limit=0"));
    assert_eq!(r.status, 400);
}

#[test]
fn unexpanded_and_empty_expanded_fields_are_omitted() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    create(&mut s, "production", &body);
    let plain = ok(get(&mut s, &format!("{PE}/experiments/cb")));
    assert!(plain.get("draftIteration").is_none());
    assert!(plain.get("previousIterations").is_none());
    let draft_only = ok(get(&mut s, &format!("{PE}/experiments/cb?expand=draftIteration")));
    assert!(draft_only["draftIteration"].get("treatments").is_none());
    assert!(draft_only["draftIteration"].get("secondaryMetrics").is_none());
    assert!(draft_only["draftIteration"].get("metrics").is_some());
    let full = ok(get(
        &mut s,
        &format!(
            "{PE}/experiments/cb?expand=draftIteration,previousIterations,treatments,secondaryMetrics,analysisConfig"
        ),
    ));
    assert_eq!(full["draftIteration"]["treatments"].as_array().unwrap().len(), 2);
    assert_eq!(full["draftIteration"]["secondaryMetrics"][0]["key"], "page-load-ms");
    // Requested but empty: omitted, not [] or null.
    assert!(full.get("previousIterations").is_none());
    assert!(full.get("analysisConfig").is_none());
    // The current iteration is always there once started, treatments only when expanded.
    let running = ok(get(&mut s, &format!("{PE}/experiments/search-ranking")));
    assert_eq!(running["currentIteration"]["status"], "running");
    assert!(running["currentIteration"].get("treatments").is_none());
}

#[test]
fn filter_and_lifecycle_state_select_experiments() {
    let mut s = demo();
    for k in ["a", "b"] {
        let body = checkout_post(&mut s, k);
        create(&mut s, "production", &body);
    }
    ok(patch_experiment(&mut s, "b", json!([{ "kind": "archiveExperiment" }])));
    let keys = |s: &mut ldexp_emulator::State, q: &str| -> Vec<String> {
        let page = ok(get(s, &format!("{PE}/experiments?{q}")));
        page["items"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(keys(&mut s, ""), ["search-ranking", "a"]);
    assert_eq!(keys(&mut s, "lifecycleState=archived"), ["b"]);
    assert_eq!(keys(&mut s, "lifecycleState=active,archived"), ["search-ranking", "a", "b"]);
    assert_eq!(keys(&mut s, "filter=status:running"), ["search-ranking"]);
    assert_eq!(keys(&mut s, "filter=status:not_started"), ["a"]);
    assert_eq!(keys(&mut s, "filter=flagKey:checkout-button&lifecycleState=active,archived"), ["a", "b"]);
    assert_eq!(keys(&mut s, "filter=metricKey:search-clicks"), ["search-ranking"]);
    assert_eq!(keys(&mut s, "filter=metricKey:page-view"), ["a"], "metrics inside groups count");
    assert_eq!(keys(&mut s, "filter=flagKey:checkout-button,status:running"), Vec::<String>::new());
    let r = get(&mut s, &format!("{PE}/experiments?filter=owner:me"));
    assert_eq!(r.status, 400);
    assert_eq!(r.message(), Some("unsupported filter field `owner` (flagKey, metricKey, status)"));
    let r = get(&mut s, &format!("{PE}/experiments?lifecycleState=deleted"));
    assert_eq!(r.status, 400);
}

#[test]
fn the_any_environment_list_spans_environments() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    create(&mut s, "staging", &body);
    let page = ok(get(&mut s, "/api/v2/projects/demo/experiments"));
    let keys: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["environmentKey"].as_str().unwrap().to_owned(), e["key"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        keys,
        [
            ("production".into(), "search-ranking".into()),
            ("staging".into(), "signup-flow".into()),
            ("staging".into(), "cb".into())
        ]
    );
    assert_eq!(page["total_count"], 3);
}

#[test]
fn create_iteration_replaces_the_draft_and_keeps_the_current_iteration() {
    let mut s = demo();
    let before = ok(get(&mut s, &format!("{PE}/experiments/search-ranking?expand=draftIteration")));
    assert!(before.get("draftIteration").is_none());
    let base = variation(&mut s, "search-ranking", "baseline");
    let sem = variation(&mut s, "search-ranking", "semantic");
    let input = json!({
        "hypothesis": "v2",
        "metrics": [{ "key": "search-clicks" }],
        "primarySingleMetricKey": "search-clicks",
        "treatments": [
            { "name": "Baseline", "baseline": true, "allocationPercent": "50", "parameters": [{ "flagKey": "search-ranking", "variationId": base }] },
            { "name": "Semantic", "baseline": false, "allocationPercent": "50", "parameters": [{ "flagKey": "search-ranking", "variationId": sem }] }
        ],
        "flags": { "search-ranking": { "ruleId": "fallthrough", "flagConfigVersion": 1 } }
    });
    let path = format!("{PE}/experiments/search-ranking/iterations");
    let first = ok(s.handle(&req("POST", &path).header("content-type", "application/json").json(&input)));
    assert_eq!(first["status"], "not_started");
    let second = ok(s.handle(&req("POST", &path).header("content-type", "application/json").json(&input)));
    assert_ne!(first["_id"], second["_id"], "a replaced draft's id is never reused");
    let after = ok(get(&mut s, &format!("{PE}/experiments/search-ranking?expand=draftIteration")));
    assert_eq!(after["draftIteration"]["_id"], second["_id"]);
    assert_eq!(after["currentIteration"], before["currentIteration"]);
    let missing = s.handle(&req("POST", &format!("{PE}/experiments/nope/iterations")).json(&input));
    assert_eq!(missing.status, 404);
}

fn scripted_run() -> (Vec<ldexp_emulator::Response>, Value) {
    let mut s = demo();
    let mut out = Vec::new();
    let body = checkout_post(&mut s, "cb");
    out.push(create(&mut s, "production", &body));
    out.push(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    out.push(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    out.push(get(&mut s, &format!("{PE}/experiments?expand=draftIteration,previousIterations,treatments")));
    out.push(patch_flag(&mut s, "pricing-banner", &json!([{ "op": "replace", "path": "/description", "value": "x" }])));
    (out, s.to_json())
}

#[test]
fn the_same_requests_give_the_same_responses_and_state() {
    let (r1, s1) = scripted_run();
    let (r2, s2) = scripted_run();
    assert_eq!(r1, r2);
    assert_eq!(s1, s2);
    // Error ids are deterministic too.
    assert_eq!(r1[2].status, 400);
    assert!(r1[2].body.as_ref().unwrap()["id"].is_string());
    let state_text = serde_json::to_string_pretty(&s1).unwrap();
    assert!(!state_text.contains(ldexp_emulator::DEFAULT_TOKEN), "the token never appears in the state");
}
