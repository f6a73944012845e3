//! The exact wire shape of every call the client makes (method, path, query, headers, body), pagination, 404
//! handling and error mapping, against a byte-recording mock server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use client_support::{Captured, Mock, Reply, TOKEN};
use ldexp_core::api::{ExperimentPatch, ExperimentPost, ExperimentationSettingsPut, IterationInput, PatchWithComment};
use ldexp_core::client::{CatalogReads, ExportReads, PlanReads, ResultsReads, Writer};
use ldexp_core::{Error, requests};
use serde_json::{Value, json};

const EXPAND: &str = "draftIteration,previousIterations,treatments,secondaryMetrics,analysisConfig";

fn user_agent() -> String {
    format!("ldexp/{}", env!("CARGO_PKG_VERSION"))
}

/// Headers every request carries: the raw token, one `LD-API-Version`, the user agent.
fn assert_headers(c: &Captured, version: &str) {
    assert_eq!(c.one("authorization"), TOKEN, "{}", c.line());
    assert_eq!(c.one("ld-api-version"), version, "{}", c.line());
    assert_eq!(c.one("user-agent"), user_agent());
    assert_eq!(c.one("accept"), "application/json");
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    v.sort();
    v
}

fn experiment(key: &str) -> Value {
    json!({"key": key, "name": key, "_maintainerId": "m", "_creationDate": 1, "environmentKey": "production", "_links": {}})
}

/// Answers each read route with a minimal valid representation.
fn read_responder(c: &Captured, _: usize) -> Reply {
    let p = c.path.as_str();
    let body = if p.ends_with("/experiments") {
        json!({"items": [experiment("a")], "total_count": 1, "_links": {}})
    } else if p.contains("/metrics/") && p.ends_with("/results") {
        json!({"results": [], "_links": {}})
    } else if p.ends_with("/results") {
        json!({"metrics": [], "_links": {}})
    } else if p.contains("/experiments/") && p.starts_with("/api/v2/flags/") {
        json!({"totals": [], "_links": {}})
    } else if p.contains("/experiments/") {
        experiment("checkout")
    } else if p.starts_with("/api/v2/flags/") {
        json!({"key": "checkout-button", "_version": 7, "environments": {"production": {"on": true, "version": 3}}})
    } else if p.starts_with("/api/v2/metrics/") && p.matches('/').count() == 4 {
        json!({"items": [{"key": "m1"}], "totalCount": 1, "_links": {}})
    } else if p.starts_with("/api/v2/metrics/") {
        json!({"key": "m1", "_id": "i", "_versionId": "v", "name": "M", "kind": "custom"})
    } else if p.ends_with("/metric-groups") {
        json!({"items": [{"key": "g1"}], "totalCount": 1, "_links": {}})
    } else if p.contains("/metric-groups/") {
        json!({"key": "g1", "_id": "i", "name": "G", "kind": "funnel", "metrics": []})
    } else if p.ends_with("/experimentation-settings") {
        json!({"_projectKey": "demo", "randomizationUnits": [{"randomizationUnit": "user", "default": true}]})
    } else {
        return Reply::empty(500);
    };
    Reply::json(200, body)
}

#[tokio::test]
async fn every_read_has_its_exact_path_query_and_headers() {
    let mock = Mock::start(read_responder).await;
    let c = mock.client();

    let list = c.list_experiments("demo", "production").await.unwrap().unwrap();
    assert_eq!(list[0].key, "a");
    let e = c.get_experiment("demo", "production", "checkout").await.unwrap().unwrap();
    assert_eq!(e.key, "checkout");
    let f = c.get_flag("demo", "checkout-button").await.unwrap().unwrap();
    assert_eq!((f.flag.version, f.raw()["_version"].as_i64()), (7, Some(7)));
    assert_eq!(c.list_metrics("demo").await.unwrap().unwrap()[0].key, "m1");
    assert_eq!(c.list_metric_groups("demo").await.unwrap().unwrap()[0].key, "g1");
    assert_eq!(c.get_settings("demo").await.unwrap().unwrap().randomization_units[0].randomization_unit, "user");
    c.experiment_results("demo", "production", "checkout", "m1", Some("it-1")).await.unwrap().unwrap();
    c.metric_group_results("demo", "production", "checkout", "g1", None).await.unwrap().unwrap();
    c.legacy_results("demo", "checkout-button", "production", "m1").await.unwrap().unwrap();
    assert_eq!(c.list_experiments_any_env("demo").await.unwrap().unwrap().len(), 1);
    assert_eq!(c.get_metric("demo", "m1").await.unwrap().unwrap().key, "m1");
    assert_eq!(c.get_metric_group("demo", "g1").await.unwrap().unwrap().key, "g1");

    let reqs = mock.requests();
    let pe = "/api/v2/projects/demo/environments/production";
    let list_q = q(&[("limit", "50"), ("offset", "0"), ("expand", EXPAND), ("lifecycleState", "active,archived")]);
    type Expected<'a> = (&'a str, String, Vec<(String, String)>, &'a str);
    let expected: Vec<Expected> = vec![
        ("GET", format!("{pe}/experiments"), list_q.clone(), "beta"),
        ("GET", format!("{pe}/experiments/checkout"), q(&[("expand", EXPAND)]), "beta"),
        ("GET", "/api/v2/flags/demo/checkout-button".into(), vec![], "20240415"),
        ("GET", "/api/v2/metrics/demo".into(), q(&[("limit", "50"), ("offset", "0")]), "20240415"),
        ("GET", "/api/v2/projects/demo/metric-groups".into(), q(&[("limit", "50"), ("offset", "0")]), "beta"),
        ("GET", "/api/v2/projects/demo/experimentation-settings".into(), vec![], "beta"),
        ("GET", format!("{pe}/experiments/checkout/metrics/m1/results"), q(&[("iterationId", "it-1")]), "beta"),
        ("GET", format!("{pe}/experiments/checkout/metric-groups/g1/results"), vec![], "beta"),
        ("GET", "/api/v2/flags/demo/checkout-button/experiments/production/m1".into(), vec![], "beta"),
        ("GET", "/api/v2/projects/demo/experiments".into(), list_q, "beta"),
        ("GET", "/api/v2/metrics/demo/m1".into(), vec![], "20240415"),
        ("GET", "/api/v2/projects/demo/metric-groups/g1".into(), vec![], "beta"),
    ];
    assert_eq!(reqs.len(), expected.len());
    for (r, (method, path, query, version)) in reqs.iter().zip(expected) {
        assert_eq!((r.method.as_str(), r.path.as_str()), (method, path.as_str()));
        assert_eq!(r.query(), query, "{}", r.line());
        assert_headers(r, version);
        assert!(r.body.is_empty() && r.all("content-type").is_empty(), "{}", r.line());
    }
    // Commas in `expand` travel form-encoded; servers decode them.
    assert_eq!(
        reqs[1].raw_query.as_deref(),
        Some("expand=draftIteration%2CpreviousIterations%2Ctreatments%2CsecondaryMetrics%2CanalysisConfig")
    );
}

#[tokio::test]
async fn api_versions_are_configurable() {
    let mock = Mock::start(read_responder).await;
    let mut cfg = mock.config();
    cfg.api_version = "20250101".into();
    cfg.api_version_beta = "beta2".into();
    let c = ldexp_core::client::HttpClient::new(cfg).unwrap();
    c.get_flag("demo", "f").await.unwrap();
    c.get_settings("demo").await.unwrap();
    let reqs = mock.requests();
    assert_eq!(reqs[0].one("ld-api-version"), "20250101");
    assert_eq!(reqs[1].one("ld-api-version"), "beta2");
    let mut cfg = mock.config();
    cfg.api_version_beta = "beta\n".into();
    let e = ldexp_core::client::HttpClient::new(cfg).unwrap_err();
    assert_eq!(e.to_string(), r#""beta\n" is not a valid LD-API-Version value"#);
    assert_eq!(e.hint().as_deref(), Some("check --api-version-beta"));
}

fn post_body() -> ExperimentPost {
    serde_json::from_value(json!({
        "name": "Checkout", "key": "checkout",
        "iteration": {
            "hypothesis": "h", "metrics": [{"key": "m1", "isGroup": false}], "primarySingleMetricKey": "m1",
            "treatments": [
                {"name": "control", "baseline": true, "allocationPercent": "50",
                 "parameters": [{"flagKey": "checkout-button", "variationId": "v0"}]},
                {"name": "new", "baseline": false, "allocationPercent": "50",
                 "parameters": [{"flagKey": "checkout-button", "variationId": "v1"}]}
            ],
            "flags": {"checkout-button": {"ruleId": "fallthrough", "flagConfigVersion": 3}},
            "randomizationUnit": "user"
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn every_write_is_sent_exactly_as_planned() {
    let mock = Mock::start(|c: &Captured, _| match c.method.as_str() {
        "POST" if c.path.ends_with("/experiments") => Reply::json(201, experiment("checkout")),
        "POST" => Reply::json(200, json!({"hypothesis": "h", "status": "not_started", "createdAt": 1})),
        "DELETE" => Reply::empty(204),
        _ => Reply::json(200, json!({"ok": true})),
    })
    .await;
    let c = mock.client();
    let post = post_body();
    let iteration: IterationInput = post.iteration.clone();
    let patch: ExperimentPatch = serde_json::from_value(json!({
        "comment": "ldexp apply",
        "instructions": [{"kind": "updateName", "value": "Checkout 2"}, {"kind": "startIteration", "changeJustification": "new design"}]
    }))
    .unwrap();
    let flag_patch: PatchWithComment = serde_json::from_value(json!({
        "comment": "ldexp: legacy experiments",
        "patch": [{"op": "test", "path": "/experiments/items/0/metricKey", "value": "m1"},
                  {"op": "remove", "path": "/experiments/items/0/environments/0"}]
    }))
    .unwrap();
    let settings: ExperimentationSettingsPut =
        serde_json::from_value(json!({"randomizationUnits": [{"randomizationUnit": "user", "default": true}]}))
            .unwrap();

    let mut dry_run = requests::patch_flag("demo", "checkout-button", &flag_patch);
    dry_run.query.insert("dryRun".into(), "true".into());
    let planned = [
        requests::create_experiment("demo", "production", &post),
        requests::patch_experiment("demo", "production", "checkout", &patch),
        requests::create_iteration("demo", "production", "checkout", &iteration),
        requests::patch_flag("demo", "checkout-button", &flag_patch),
        dry_run,
        requests::put_settings("demo", &settings),
        requests::reset_legacy_results("demo", "checkout-button", "production", "m1"),
    ];
    let mut answers = Vec::new();
    for p in &planned {
        answers.push(c.send(p, "test object").await.unwrap());
    }
    assert_eq!(answers[0].as_ref().unwrap()["key"], "checkout");
    assert_eq!(answers[2].as_ref().unwrap()["status"], "not_started");
    assert_eq!(answers[6], None, "204 has no body");

    let reqs = mock.requests();
    assert_eq!(reqs.len(), planned.len(), "no write is sent twice");
    let pe = "/api/v2/projects/demo/environments/production";
    let json_ct = "application/json";
    let semantic = "application/json; domain-model=launchdarkly.semanticpatch";
    let expected = [
        ("POST", format!("{pe}/experiments"), Some(json_ct), "beta"),
        ("PATCH", format!("{pe}/experiments/checkout"), Some(semantic), "beta"),
        ("POST", format!("{pe}/experiments/checkout/iterations"), Some(json_ct), "beta"),
        ("PATCH", "/api/v2/flags/demo/checkout-button".into(), Some(json_ct), "20240415"),
        ("PATCH", "/api/v2/flags/demo/checkout-button".into(), Some(json_ct), "20240415"),
        ("PUT", "/api/v2/projects/demo/experimentation-settings".into(), Some(json_ct), "beta"),
        ("DELETE", "/api/v2/flags/demo/checkout-button/experiments/production/m1/results".into(), None, "beta"),
    ];
    for ((r, p), (method, path, ct, version)) in reqs.iter().zip(&planned).zip(expected) {
        assert_eq!((r.method.as_str(), r.path.as_str()), (method, path.as_str()));
        assert_headers(r, version);
        match ct {
            Some(ct) => {
                assert_eq!(r.one("content-type"), ct, "{}", r.line());
                assert_eq!(r.json(), *p.body.as_ref().unwrap(), "{}", r.line());
            }
            None => assert!(r.body.is_empty() && r.all("content-type").is_empty()),
        }
    }
    assert_eq!(reqs[4].raw_query.as_deref(), Some("dryRun=true"));
    assert_eq!(reqs[0].json()["iteration"]["treatments"][0]["allocationPercent"], "50");
    assert_eq!(
        reqs[1].json()["instructions"][1],
        json!({"kind": "startIteration", "changeJustification": "new design"})
    );
    assert_eq!(
        reqs[3].json()["patch"][0],
        json!({"op": "test", "path": "/experiments/items/0/metricKey", "value": "m1"})
    );
}

#[tokio::test]
async fn a_404_read_is_none() {
    let mock =
        Mock::start(|_: &Captured, _| Reply::json(404, json!({"code": "not_found", "message": "Unknown"}))).await;
    let c = mock.client();
    assert!(c.list_experiments("demo", "nope").await.unwrap().is_none());
    assert!(c.get_experiment("demo", "production", "nope").await.unwrap().is_none());
    assert!(c.get_flag("demo", "nope").await.unwrap().is_none());
    assert!(c.list_metrics("nope").await.unwrap().is_none());
    assert!(c.get_settings("nope").await.unwrap().is_none());
    assert!(c.legacy_results("demo", "f", "production", "m").await.unwrap().is_none());
    assert_eq!(mock.requests().len(), 6, "a 404 is not retried");
}

fn page(prefix: &str, from: usize, n: usize, total: Option<usize>, next: Option<&str>) -> Value {
    let items: Vec<Value> = (from..from + n).map(|i| json!({"key": format!("{prefix}{i:03}")})).collect();
    let mut links = json!({"self": {"href": "/x"}});
    if let Some(n) = next {
        links["next"] = json!({"href": n, "type": "application/json"});
    }
    let mut v = json!({"items": items, "_links": links});
    if let Some(t) = total {
        v[if prefix == "e" { "total_count" } else { "totalCount" }] = json!(t);
    }
    v
}

fn offset_of(c: &Captured) -> usize {
    c.query().iter().find(|(k, _)| k == "offset").map_or(0, |(_, v)| v.parse().unwrap())
}

#[tokio::test]
async fn known_totals_fetch_the_remaining_pages_by_offset_one_get_each() {
    let mock = Mock::start(|c: &Captured, _| {
        let off = offset_of(c);
        if c.path.ends_with("/experiments") {
            let items: Vec<Value> = (off..(off + 50).min(120)).map(|i| experiment(&format!("e{i:03}"))).collect();
            Reply::json(200, json!({"items": items, "total_count": 120, "_links": {}}))
        } else {
            Reply::json(200, page("m", off, 51usize.saturating_sub(off).min(50), Some(51), None))
        }
    })
    .await;
    let c = mock.client();
    let list = c.list_experiments("demo", "production").await.unwrap().unwrap();
    let keys: Vec<String> = list.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, (0..120).map(|i| format!("e{i:03}")).collect::<Vec<_>>(), "every item, in order");
    let metrics = c.list_metrics("demo").await.unwrap().unwrap();
    assert_eq!(metrics.len(), 51);

    let reqs = mock.requests();
    let mut exp_offsets: Vec<usize> = reqs.iter().filter(|r| r.path.ends_with("/experiments")).map(offset_of).collect();
    exp_offsets.sort_unstable();
    assert_eq!(exp_offsets, [0, 50, 100]);
    let metric_offsets: Vec<usize> =
        reqs.iter().filter(|r| r.path.starts_with("/api/v2/metrics")).map(offset_of).collect();
    assert_eq!(metric_offsets, [0, 50]);
    assert_eq!(c.requests_sent(), 5);
}

#[tokio::test]
async fn a_server_capping_the_page_size_is_still_read_completely() {
    let mock = Mock::start(|c: &Captured, _| {
        let off = offset_of(c);
        Reply::json(200, page("m", off, 45usize.saturating_sub(off).min(20), Some(45), None))
    })
    .await;
    let metrics = mock.client().list_metrics("demo").await.unwrap().unwrap();
    assert_eq!(metrics.iter().map(|m| m.key.as_str()).collect::<Vec<_>>().len(), 45);
    assert_eq!(metrics.last().unwrap().key, "m044");
    let mut offsets: Vec<usize> = mock.requests().iter().map(offset_of).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 20, 40]);
}

#[tokio::test]
async fn without_a_total_links_next_is_followed() {
    let mock = Mock::start(|c: &Captured, _| match offset_of(c) {
        0 => Reply::json(200, page("g", 0, 2, None, Some("/api/v2/projects/demo/metric-groups?limit=2&offset=2"))),
        2 => Reply::json(200, page("g", 2, 2, None, Some("/api/v2/projects/demo/metric-groups?limit=2&offset=4"))),
        _ => Reply::json(200, page("g", 4, 1, None, None)),
    })
    .await;
    let groups = mock.client().list_metric_groups("demo").await.unwrap().unwrap();
    assert_eq!(groups.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), ["g000", "g001", "g002", "g003", "g004"]);
    let lines: Vec<String> = mock.requests().iter().map(Captured::line).collect();
    assert_eq!(
        lines,
        [
            "GET /api/v2/projects/demo/metric-groups?limit=50&offset=0",
            "GET /api/v2/projects/demo/metric-groups?limit=2&offset=2",
            "GET /api/v2/projects/demo/metric-groups?limit=2&offset=4",
        ]
    );
    for r in mock.requests() {
        assert_headers(&r, "beta");
    }
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let mock = Mock::start(|_: &Captured, _| {
        Reply::json(
            200,
            page("g", 0, 1, None, Some("https://evil.example/api/v2/projects/demo/metric-groups?offset=1")),
        )
    })
    .await;
    let e = mock.client().list_metric_groups("demo").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "metric groups of project demo: unexpected response body: _links.next points to another host \
         (https://evil.example/api/v2/projects/demo/metric-groups?offset=1); not following it with the token"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn error_answers_become_typed_errors_with_hints() {
    let mock = Mock::start(|c: &Captured, _| match (c.method.as_str(), c.path.as_str()) {
        ("PATCH", p) if p.contains("/experiments/") => Reply::json(
            409,
            json!({"code": "optimistic_locking_error", "message": "Conflict. Optimistic lock error.", "id": "req-9"}),
        ),
        ("PATCH", _) => Reply::json(405, json!({"code": "method_not_allowed", "message": "approval required"})),
        (_, p) if p.ends_with("/experimentation-settings") => {
            Reply::json(403, json!({"message": "beta version required"}))
        }
        (_, p) if p.starts_with("/api/v2/metrics") => {
            Reply::json(401, json!({"code": "unauthorized", "message": "bad"}))
        }
        _ => Reply::Respond { status: 400, headers: vec![], body: "<html>nope</html>".into() },
    })
    .await;
    let c = mock.client();
    let patch: ExperimentPatch =
        serde_json::from_value(json!({"instructions": [{"kind": "archiveExperiment"}]})).unwrap();
    let req = requests::patch_experiment("demo", "production", "checkout", &patch);
    let Error::Api(e) = c.send(&req, "experiment demo/production/checkout").await.unwrap_err() else { panic!() };
    assert_eq!(
        (e.status, e.code.as_deref(), e.request_id.as_deref()),
        (409, Some("optimistic_locking_error"), Some("req-9"))
    );
    assert_eq!(
        e.to_string(),
        "experiment demo/production/checkout: PATCH /api/v2/projects/demo/environments/production/experiments/checkout \
         failed with HTTP 409 optimistic_locking_error: Conflict. Optimistic lock error. (request id req-9)"
    );
    assert!(e.hint().contains("optimistic locking"));

    let flag_patch: PatchWithComment = serde_json::from_value(json!({"patch": []})).unwrap();
    let Error::Api(e) = c.send(&requests::patch_flag("demo", "f", &flag_patch), "flag demo/f").await.unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.status, 405);
    assert_eq!(e.hint(), "this environment requires approvals for flag changes; ldexp cannot bypass them");

    let Error::Api(e) = c.get_settings("demo").await.unwrap_err() else { panic!() };
    assert_eq!((e.status, e.code.as_deref(), e.message.as_str()), (403, None, "beta version required"));
    assert!(e.hint().contains("beta"));

    let Error::Api(e) = c.list_metrics("demo").await.unwrap_err() else { panic!() };
    assert_eq!(e.status, 401);
    assert!(e.hint().starts_with("no permission for this project, or the token is invalid"));

    let Error::Api(e) = c.get_flag("demo", "f").await.unwrap_err() else { panic!() };
    assert_eq!((e.status, e.code.as_deref(), e.message.as_str()), (400, None, "<html>nope</html>"));
    assert_eq!(mock.requests().len(), 5, "4xx answers are final");
}

#[tokio::test]
async fn a_2xx_with_an_unparseable_body_is_a_decode_error() {
    let mock =
        Mock::start(|_: &Captured, _| Reply::Respond { status: 200, headers: vec![], body: "{\"key\": 5".into() })
            .await;
    let e = mock.client().get_experiment("demo", "production", "x").await.unwrap_err();
    assert!(matches!(&e, Error::Decode { resource, .. } if resource == "experiment demo/production/x"), "{e:?}");
}

#[tokio::test]
async fn the_flag_list_is_read_page_by_page_until_a_short_page_or_no_next_link() {
    // The total is wrong on purpose: it must not end the paging (contract §9.10).
    let mock = Mock::start(|c: &Captured, _| {
        let off = offset_of(c);
        let next = format!("/api/v2/flags/demo?limit=50&offset={}", off + 50);
        match off {
            0 | 50 => Reply::json(200, page("f", off, 50, Some(10), Some(&next))),
            _ => Reply::json(200, page("f", off, 3, Some(10), Some(&next))),
        }
    })
    .await;
    let flags = mock.client().list_flags("demo").await.unwrap().unwrap();
    assert_eq!(flags.len(), 103);
    assert_eq!((flags[0].key.as_str(), flags[102].key.as_str()), ("f000", "f102"));
    let lines: Vec<String> = mock.requests().iter().map(Captured::line).collect();
    assert_eq!(
        lines,
        [
            "GET /api/v2/flags/demo?limit=50&offset=0",
            "GET /api/v2/flags/demo?limit=50&offset=50",
            "GET /api/v2/flags/demo?limit=50&offset=100",
        ]
    );
    for r in mock.requests() {
        assert_headers(&r, "20240415");
    }

    // A full page without `_links.next` is the last one; a missing project is `None`.
    let mock = Mock::start(|c: &Captured, _| match c.path.as_str() {
        "/api/v2/flags/demo" => Reply::json(200, page("f", 0, 50, None, None)),
        _ => Reply::json(404, json!({"code": "not_found", "message": "Unknown project"})),
    })
    .await;
    let c = mock.client();
    assert_eq!(c.list_flags("demo").await.unwrap().unwrap().len(), 50);
    assert!(c.list_flags("nope").await.unwrap().is_none());
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn a_filtered_experiment_list_sends_the_filter_and_follows_next_links_with_it() {
    use ldexp_core::api::IterationStatus;
    use ldexp_core::client::ListReads;
    use ldexp_core::views::ExperimentFilter;

    let item = |i: usize| {
        json!({"key": format!("x{i:02}"), "name": "x", "_maintainerId": "m", "_creationDate": 1,
               "environmentKey": "production", "_links": {}})
    };
    // No total: the client goes by `_links.next`, which carries the query on, as LaunchDarkly's does.
    let mock = Mock::start(move |c: &Captured, _| {
        let query = c.raw_query.as_deref().unwrap_or_default();
        let body = match c.path.as_str() {
            "/api/v2/projects/demo/experiments" if query.contains("offset=50") => {
                json!({"items": (50..53).map(item).collect::<Vec<_>>(), "_links": {}})
            }
            "/api/v2/projects/demo/experiments" => {
                let next = format!("/api/v2/projects/demo/experiments?{}", query.replace("offset=0", "offset=50"));
                json!({"items": (0..50).map(item).collect::<Vec<_>>(), "_links": {"next": {"href": next}}})
            }
            "/api/v2/projects/demo/environments/staging/experiments" => json!({"items": [], "_links": {}}),
            _ => return Reply::json(404, json!({"code": "not_found", "message": "Unknown environment"})),
        };
        Reply::json(200, body)
    })
    .await;
    let c = mock.client();
    let filter = ExperimentFilter {
        status: Some(IterationStatus::Running),
        flag: Some("checkout-button".into()),
        metric: None,
        archived: true,
    };
    assert_eq!(c.list_experiments_where("demo", None, &filter).await.unwrap().unwrap().len(), 53);
    assert!(
        c.list_experiments_where("demo", Some("staging"), &ExperimentFilter::default())
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(c.list_experiments_where("demo", Some("nowhere"), &filter).await.unwrap().is_none());

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4);
    let expected = |offset: &str, filter: Option<&str>, lifecycle: &str| {
        let mut pairs = vec![
            ("limit", "50"),
            ("offset", offset),
            ("expand", "draftIteration,previousIterations"),
            ("lifecycleState", lifecycle),
        ];
        pairs.extend(filter.map(|f| ("filter", f)));
        q(&pairs)
    };
    let filtered = Some("status:running,flagKey:checkout-button");
    assert_eq!(reqs[0].query(), expected("0", filtered, "archived"), "{}", reqs[0].line());
    assert_eq!(
        reqs[1].query(),
        expected("50", filtered, "archived"),
        "the next link keeps the filter: {}",
        reqs[1].line()
    );
    assert_eq!(reqs[2].query(), expected("0", None, "active"), "{}", reqs[2].line());
    assert_eq!(reqs[2].path, "/api/v2/projects/demo/environments/staging/experiments");
    // The filter's `:` and `,` travel form-encoded; servers decode them.
    assert!(
        reqs[0]
            .raw_query
            .as_deref()
            .unwrap_or_default()
            .contains("filter=status%3Arunning%2CflagKey%3Acheckout-button"),
        "{}",
        reqs[0].line()
    );
    for r in &reqs {
        assert_headers(r, "beta");
    }
}
