//! Auth, the `LD-API-Version` gate, routing errors, metrics and metric groups, experimentation settings, results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Request, Seed, State};
use serde_json::{Value, json};
use support::*;

#[test]
fn a_missing_or_wrong_token_is_401() {
    let mut s = demo();
    for r in [
        Request::new("GET", "/api/v2/flags/demo/checkout-button"),
        Request::new("GET", "/api/v2/flags/demo/checkout-button").header("authorization", "wrong"),
        Request::new("GET", "/api/v2/flags/demo/checkout-button").header("authorization", "Bearer ld-emulator-token"),
    ] {
        let resp = s.handle(&r);
        assert_eq!(resp.status, 401);
        assert_eq!(resp.code(), Some("unauthorized"));
        assert_eq!(resp.message(), Some("Invalid access token"));
        assert!(resp.body.unwrap()["id"].is_string());
    }
    let mut other = demo().with_token("t-123");
    assert_eq!(other.handle(&req("GET", "/api/v2/flags/demo/checkout-button")).status, 401);
    let ok_req = Request::new("GET", "/api/v2/flags/demo/checkout-button").header("authorization", "t-123");
    assert_eq!(other.handle(&ok_req).status, 200);
    assert!(!format!("{other:?} {ok_req:?}").contains("t-123"), "Debug never shows the token");
}

#[test]
fn beta_routes_need_the_beta_header() {
    let mut s = demo();
    let beta_paths = [
        format!("{PE}/experiments"),
        format!("{PE}/experiments/search-ranking"),
        "/api/v2/projects/demo/experiments".to_owned(),
        "/api/v2/projects/demo/experimentation-settings".to_owned(),
        "/api/v2/projects/demo/metric-groups".to_owned(),
        format!("{PE}/experiments/search-ranking/metrics/search-clicks/results"),
        "/api/v2/flags/demo/pricing-banner/experiments/production/page-view".to_owned(),
    ];
    for path in &beta_paths {
        for version in [None, Some("20240415"), Some("20240415, beta")] {
            let mut r = Request::new("GET", path).header("authorization", ldexp_emulator::DEFAULT_TOKEN);
            if let Some(v) = version {
                r = r.header("ld-api-version", v);
            }
            let resp = s.handle(&r);
            assert_eq!(resp.status, 403, "{path} {version:?}");
            assert_eq!(resp.code(), Some("forbidden"));
        }
        let r = Request::new("GET", path)
            .header("authorization", ldexp_emulator::DEFAULT_TOKEN)
            .header("ld-api-version", "beta, 20240415");
        assert_eq!(s.handle(&r).status, 200, "{path}: the first value counts");
    }
    // Flags and metrics take the dated version, tolerate beta, and need neither.
    for path in ["/api/v2/flags/demo/checkout-button", "/api/v2/metrics/demo", "/api/v2/metrics/demo/page-view"] {
        for version in [None, Some("20240415"), Some("beta")] {
            let mut r = Request::new("GET", path).header("authorization", ldexp_emulator::DEFAULT_TOKEN);
            if let Some(v) = version {
                r = r.header("ld-api-version", v);
            }
            assert_eq!(s.handle(&r).status, 200, "{path} {version:?}");
        }
    }
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405() {
    let mut s = demo();
    let r = get(&mut s, "/api/v2/projects/demo/flags");
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
    let r = s.handle(&req("DELETE", &format!("{PE}/experiments/search-ranking")));
    assert_eq!((r.status, r.code()), (405, Some("method_not_allowed")));
    // X-HTTP-Method-Override tunnels PATCH through POST.
    let r = s.handle(
        &req("POST", &format!("{PE}/experiments/search-ranking"))
            .header("x-http-method-override", "PATCH")
            .header("content-type", SEMANTIC)
            .json(&json!({ "instructions": [{ "kind": "updateName", "value": "Tunnelled" }] })),
    );
    assert_eq!(ok(r)["name"], "Tunnelled");
    let r = s.handle(&req("POST", &format!("{PE}/experiments")).header("content-type", "application/json"));
    assert_eq!(r.message(), Some("a JSON experiment body is required"));
    let mut bad = req("POST", &format!("{PE}/experiments"));
    bad.body = Some(b"{not json".to_vec());
    assert!(s.handle(&bad).message().unwrap().starts_with("the request body is not valid JSON"));
}

fn many_metrics(n: usize) -> State {
    let metrics: Vec<Value> = (0..n).map(|i| json!({ "key": format!("m{i:02}"), "kind": "custom" })).collect();
    let seed = json!({ "projects": [{ "key": "demo", "environments": ["production"], "metrics": metrics }] });
    State::from_seed(&Seed::from_str(&seed.to_string()).unwrap()).unwrap()
}

#[test]
fn metrics_page_with_a_limit_of_at_most_50() {
    let mut s = many_metrics(60);
    let page = ok(get(&mut s, "/api/v2/metrics/demo?limit=100"));
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    assert_eq!(page["totalCount"], 60);
    assert!(page["_links"]["next"]["href"].as_str().unwrap().contains("offset=50"));
    let page = ok(get(&mut s, "/api/v2/metrics/demo?limit=50&offset=50"));
    let keys: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["m50", "m51", "m52", "m53", "m54", "m55", "m56", "m57", "m58", "m59"]);
    assert!(page["_links"].get("next").is_none());
    let page = ok(get(&mut s, "/api/v2/metrics/demo"));
    assert_eq!(page["items"].as_array().unwrap().len(), 20, "default limit");
}

#[test]
fn metric_and_group_representations_carry_their_required_fields() {
    let mut s = demo();
    let m = ok(get(&mut s, "/api/v2/metrics/demo/checkout-conversion"));
    for field in ["_id", "_versionId", "key", "name", "kind", "_links", "tags", "_creationDate", "dataSource"] {
        assert!(m.get(field).is_some(), "metric lacks {field}");
    }
    assert_eq!((m["eventKey"].as_str(), m["isNumeric"].as_bool()), (Some("checkout-completed"), Some(false)));
    let g = ok(get(&mut s, "/api/v2/projects/demo/metric-groups/checkout-funnel"));
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
        assert!(g.get(field).is_some(), "group lacks {field}");
    }
    let steps: Vec<&str> = g["metrics"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap()).collect();
    assert_eq!(steps, ["page-view", "checkout-conversion"]);
    let list = ok(get(&mut s, "/api/v2/projects/demo/metric-groups"));
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["items"][0], g);
    assert_eq!(get(&mut s, "/api/v2/projects/demo/metric-groups/nope").status, 404);
    assert_eq!(get(&mut s, "/api/v2/metrics/demo/nope").status, 404);
}

#[test]
fn settings_round_trip_and_validate() {
    let mut s = demo();
    let path = "/api/v2/projects/demo/experimentation-settings";
    let got = ok(get(&mut s, path));
    assert_eq!(got["_projectKey"], "demo");
    let units: Vec<(&str, bool)> = got["randomizationUnits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["randomizationUnit"].as_str().unwrap(), u["default"].as_bool().unwrap()))
        .collect();
    assert_eq!(units, [("user", true), ("organization", false)]);
    let put =
        |s: &mut State, body: Value| s.handle(&req("PUT", path).header("content-type", "application/json").json(&body));
    let r = put(&mut s, json!({ "randomizationUnits": [{ "randomizationUnit": "device" }] }));
    assert_eq!(
        r.message(),
        Some("randomization unit `device` is not a context kind of project `demo` (organization, user)")
    );
    let r = put(
        &mut s,
        json!({ "randomizationUnits": [{ "randomizationUnit": "user", "default": true }, { "randomizationUnit": "organization", "default": true }] }),
    );
    assert_eq!(r.message(), Some("at most one randomization unit can be the default"));
    let r =
        ok(put(&mut s, json!({ "randomizationUnits": [{ "randomizationUnit": "organization", "default": true }] })));
    assert_eq!(r["randomizationUnits"].as_array().unwrap().len(), 1);
    assert_eq!(ok(get(&mut s, path)), r);
    // An experiment randomised by a unit no longer in the settings is refused.
    let mut body = checkout_post(&mut s, "cb");
    body["iteration"]["randomizationUnit"] = json!("user");
    assert_eq!(
        create(&mut s, "production", &body).message(),
        Some("randomization unit `user` is not in the experimentation settings of project `demo`")
    );
}

#[test]
fn settings_answer_the_default_unit_first_whatever_order_was_sent() {
    let mut s = demo();
    let path = "/api/v2/projects/demo/experimentation-settings";
    let body = json!({ "randomizationUnits": [
        { "randomizationUnit": "user", "default": false },
        { "randomizationUnit": "organization", "default": true }
    ] });
    let units = |v: &Value| -> Vec<(String, bool)> {
        v["randomizationUnits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["randomizationUnit"].as_str().unwrap().to_owned(), u["default"].as_bool().unwrap()))
            .collect()
    };
    let put = ok(s.handle(&req("PUT", path).header("content-type", "application/json").json(&body)));
    let expected = [("organization".to_owned(), true), ("user".to_owned(), false)];
    assert_eq!(units(&put), expected, "the PUT's answer is reordered too");
    assert_eq!(units(&ok(get(&mut s, path))), expected);
    // Still as strict as before: a duplicate is refused and nothing changes.
    let twice = json!({ "randomizationUnits": [{ "randomizationUnit": "user" }, { "randomizationUnit": "user" }] });
    let r = s.handle(&req("PUT", path).header("content-type", "application/json").json(&twice));
    assert_eq!((r.status, r.message()), (400, Some("randomization unit `user` is listed twice")));
    assert_eq!(units(&ok(get(&mut s, path))), expected);
}

#[test]
fn results_are_synthetic_deterministic_and_follow_the_iteration() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    create(&mut s, "production", &body);
    let path = format!("{PE}/experiments/cb/metrics/checkout-conversion/results");
    let draft = ok(get(&mut s, &path));
    assert_eq!(draft["metricSeen"]["ever"], false);
    assert!(draft["results"][0]["treatmentResults"].as_array().unwrap().iter().all(|t| t["units"] == 0));
    ok(patch_experiment(&mut s, "cb", json!([{ "kind": "startIteration" }])));
    let running = ok(get(&mut s, &format!("{path}?expand=traffic")));
    assert_eq!(running["metricSeen"]["ever"], true);
    let rows = running["results"][0]["treatmentResults"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let p_best: f64 = rows.iter().map(|t| t["pBest"].as_f64().unwrap()).sum();
    assert!((p_best - 1.0).abs() < 1e-5, "pBest sums to 1: {p_best}");
    for t in rows {
        assert!(t["units"].as_i64().unwrap() > 0);
        assert_eq!(t["traffic"], t["units"]);
        let (lo, mean, hi) = (
            t["credibleInterval"]["lower"].as_f64().unwrap(),
            t["mean"].as_f64().unwrap(),
            t["credibleInterval"]["upper"].as_f64().unwrap(),
        );
        assert!(lo < mean && mean < hi && (0.0..=1.0).contains(&mean), "a conversion rate with its interval");
        assert_eq!(t["model"], "bayesianBeta");
    }
    assert!(rows[1]["relativeDifferences"][0]["fromTreatmentId"] == rows[0]["treatmentId"]);
    assert_eq!(ok(get(&mut s, &format!("{path}?expand=traffic"))), running, "same state, same numbers");
    let numeric = ok(get(&mut s, &format!("{PE}/experiments/cb/metrics/page-load-ms/results")));
    assert_eq!(numeric["results"][0]["treatmentResults"][0]["model"], "bayesianNormal");
    let group = ok(get(&mut s, &format!("{PE}/experiments/cb/metric-groups/checkout-funnel/results")));
    let members: Vec<&str> =
        group["metrics"].as_array().unwrap().iter().map(|m| m["metric"]["key"].as_str().unwrap()).collect();
    assert_eq!(members, ["page-view", "checkout-conversion"]);
    assert_eq!(
        group["metrics"][1]["results"]["results"],
        running["results"]
            .as_array()
            .map(|r| {
                let mut r = r.clone();
                r[0]["treatmentResults"].as_array_mut().unwrap().iter_mut().for_each(|t| {
                    t.as_object_mut().unwrap().remove("traffic");
                });
                Value::Array(r)
            })
            .unwrap()
    );
    assert_eq!(get(&mut s, &format!("{PE}/experiments/cb/metrics/search-clicks/results")).status, 404);
    let r = get(&mut s, &format!("{path}?iterationId=nope"));
    assert_eq!(r.message(), Some("Unknown iteration nope of experiment cb"));
}

#[test]
fn legacy_results_and_their_reset() {
    let mut s = demo();
    let path = "/api/v2/flags/demo/pricing-banner/experiments/production/page-view";
    let first = ok(get(&mut s, path));
    let totals = first["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 2);
    assert!(totals.iter().all(|t| t["cumulativeImpressionCount"].as_i64().unwrap() >= 1_000));
    assert_eq!(first["metadata"], json!([{ "key": "off" }, { "key": "on" }]));
    // Not recording in staging: zero impressions.
    let staging = ok(get(&mut s, "/api/v2/flags/demo/pricing-banner/experiments/staging/page-view"));
    assert!(staging["totals"].as_array().unwrap().iter().all(|t| t["cumulativeImpressionCount"] == 0));
    let reset = s.handle(&req("DELETE", &format!("{path}/results")));
    assert_eq!((reset.status, reset.body), (204, None));
    let after = ok(get(&mut s, path));
    assert_ne!(after["totals"], first["totals"], "a reset starts fresh numbers");
    assert_eq!(
        s.handle(&req("DELETE", "/api/v2/flags/demo/pricing-banner/experiments/production/signup-completed/results"))
            .status,
        404
    );
    assert_eq!(get(&mut s, "/api/v2/flags/demo/checkout-button/experiments/production/page-view").status, 404);
}

#[test]
fn seeds_are_validated_with_the_object_named() {
    let cases = [
        ("projects: [{ key: p, environments: [a, a] }]", "seed project `p`: environment `a` is listed twice"),
        (
            "projects: [{ key: p, environments: [a], metricGroups: [{ key: g, metrics: [m] }] }]",
            "seed project `p`: metric group `g` names unknown metric `m`",
        ),
        (
            "projects: [{ key: p, environments: [a], flags: [{ key: f, variations: [{value: 1}], environments: { b: { on: true } } }] }]",
            "seed project `p`: flag `f`: environment `b` is not an environment of the project",
        ),
        (
            "projects: [{ key: p, environments: [a], experiments: { a: [ { key: e, name: E, currentIteration: { hypothesis: h, status: running, flags: { f: {} } } } ] } }]",
            "seed project `p`: experiments.a: experiment `e`: flag `f` does not exist",
        ),
    ];
    for (text, message) in cases {
        let err = State::from_seed(&Seed::from_str(text).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let err = Seed::from_str("projects: [{ key: p, environments: [a], colour: red }]").unwrap_err();
    assert!(err.to_string().starts_with("seed: projects[0]: unknown field `colour`"), "{err}");
    let json = "{\n\t\"projects\": [{\"key\": \"p\", \"environments\": [\"a\"]}]\n}";
    assert_eq!(Seed::from_str(json).unwrap().projects[0].key, "p", "tab-indented JSON");
    let err = Seed::from_path(std::path::Path::new("/nonexistent/seed.yaml")).unwrap_err();
    assert_eq!(err.to_string(), "seed file /nonexistent/seed.yaml");
    let reason = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(reason.contains("No such file"), "the OS reason is the source: {reason}");
}

#[test]
fn seed_experiments_may_name_rules_and_variations() {
    let seed = r"
projects:
  - key: demo
    environments: [production]
    metrics: [ { key: m } ]
    flags:
      - key: f
        variations: [ { name: a, value: 1 }, { name: b, value: 2 } ]
        environments: { production: { on: true, rules: [ { description: Beta users, variation: 1 } ] } }
    experiments:
      production:
        - key: e
          name: E
          draftIteration:
            hypothesis: h
            status: not_started
            metrics: [ { key: m } ]
            flags: { f: { targetingRule: Beta users } }
            treatments:
              - { name: A, baseline: true, allocationPercent: 50, parameters: [ { flagKey: f, variationId: a } ] }
              - { name: B, allocationPercent: 50, parameters: [ { flagKey: f, variationId: b } ] }
";
    let mut s = State::from_seed(&Seed::from_str(seed).unwrap()).unwrap();
    let flag = ok(get(&mut s, "/api/v2/flags/demo/f"));
    let e = ok(get(&mut s, &format!("{PE}/experiments/e?expand=draftIteration,treatments")));
    let draft = &e["draftIteration"];
    assert_eq!(draft["flags"]["f"]["targetingRule"], flag["environments"]["production"]["rules"][0]["_id"]);
    assert_eq!(draft["flags"]["f"]["targetingRuleDescription"], "Beta users");
    assert_eq!(draft["flags"]["f"]["flagConfigVersion"], 1);
    assert_eq!(draft["treatments"][1]["parameters"][0]["variationId"], flag["variations"][1]["_id"]);
    assert_eq!(draft["primarySingleMetric"]["key"], "m");
    assert_eq!(draft["randomizationUnit"], "user");
    // The seeded draft starts like any other.
    let e = ok(patch_experiment(&mut s, "e", json!([{ "kind": "startIteration" }])));
    assert_eq!(e["currentIteration"]["status"], "running");
}

#[test]
fn the_example_seed_has_what_the_examples_plan_against() {
    let mut s = demo();
    let running = ok(get(&mut s, &format!("{PE}/experiments/search-ranking?expand=treatments")));
    assert_eq!(running["currentIteration"]["status"], "running");
    let baseline = variation(&mut s, "search-ranking", "baseline");
    assert_eq!(running["currentIteration"]["treatments"][0]["parameters"][0]["variationId"], baseline.as_str());
    let metrics = ok(get(&mut s, "/api/v2/metrics/demo"));
    let keys: Vec<&str> = metrics["items"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["checkout-conversion", "page-load-ms", "page-view", "search-clicks", "signup-completed"]);
    for f in ["checkout-button", "search-ranking", "signup-flow", "pricing-banner"] {
        let flag = ok(get(&mut s, &format!("/api/v2/flags/demo/{f}")));
        assert_eq!(flag["environments"]["production"]["on"], true, "{f}");
        assert_eq!(flag["environments"]["staging"]["on"], true, "{f}");
    }
}

#[test]
fn the_documented_seed_example_loads() {
    let doc =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let section = doc.find("### Seed format").expect("README.md has a seed format section");
    let start = section + doc[section..].find("```yaml\n").expect("README.md has a seed example") + "```yaml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let mut s = State::from_seed(&Seed::from_str(&doc[start..end]).unwrap()).unwrap();
    let e = ok(get(&mut s, &format!("{PE}/experiments/search-ranking?expand=treatments")));
    assert_eq!(e["currentIteration"]["treatments"][1]["name"], "Semantic");
    let settings = ok(get(&mut s, "/api/v2/projects/demo/experimentation-settings"));
    assert_eq!(settings["randomizationUnits"][0]["randomizationUnit"], "user");
}

/// The server answers reads under a shared lock through `State::read`: it must answer every read exactly as
/// `State::handle` does (auth, beta gate, 404s and bodies), and refuse to write.
#[test]
fn reads_under_a_shared_borrow_answer_as_handle_does() {
    let mut s = demo();
    let reads = [
        req("GET", &format!("{PE}/experiments?expand=draftIteration,previousIterations,treatments,secondaryMetrics")),
        req("GET", "/api/v2/projects/demo/experiments?lifecycleState=active,archived&limit=1&offset=1"),
        req("GET", "/api/v2/flags/demo?env=production&summary=0&limit=2"),
        req("GET", "/api/v2/flags/demo/checkout-button"),
        req("GET", "/api/v2/flags/demo/no-such-flag"),
        req("GET", "/api/v2/metrics/demo"),
        Request::new("GET", "/api/v2/metrics/demo").header("authorization", "wrong"),
        Request::new("GET", &format!("{PE}/experiments")).header("authorization", ldexp_emulator::DEFAULT_TOKEN),
    ];
    for r in &reads {
        assert!(ldexp_emulator::is_read(r));
        let shared = s.read(r, 1);
        let alone = s.handle(r);
        assert_eq!(
            (shared.status, shared.body.clone().map(|mut b| strip_id(&mut b))),
            (alone.status, alone.body.map(|mut b| strip_id(&mut b))),
            "{}",
            r.path
        );
    }
    let before = s.clone();
    let write = req("POST", &format!("{PE}/experiments")).json(&json!({"key": "x"}));
    assert!(!ldexp_emulator::is_read(&write));
    assert_eq!(s.read(&write, 2).status, 405);
    let tunnelled = req("POST", "/api/v2/flags/demo/checkout-button").header("x-http-method-override", "PATCH");
    assert!(!ldexp_emulator::is_read(&tunnelled));
    assert_eq!(s.to_json(), before.to_json(), "a refused write changes nothing");
}

/// Error bodies carry a request id that differs between the two paths; everything else must match.
fn strip_id(body: &mut Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
    }
    body.clone()
}
