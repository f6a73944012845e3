//! `fetch_remote` over the HTTP client: the snapshot is complete, every read runs concurrently, and the number of
//! requests is the minimum (one per page, nothing repeated), which is what the plan benchmark counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use client_support::{Captured, Mock, Reply};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::remote::Requirements;
use serde_json::{Value, json};

fn offset_of(c: &Captured) -> usize {
    c.query().iter().find(|(k, _)| k == "offset").map_or(0, |(_, v)| v.parse().unwrap())
}

fn experiment(env: &str, i: usize) -> Value {
    json!({"key": format!("{env}-{i:03}"), "name": "x", "_maintainerId": "m", "_creationDate": 1,
           "environmentKey": env, "_links": {}})
}

/// demo: 120 experiments per environment, 51 metrics, 1 group, settings, flag `f` (absent `g`).
/// gone: every route 404.
fn answer(c: &Captured) -> Reply {
    let p = c.path.as_str();
    let off = offset_of(c);
    if p.contains("/gone") {
        return Reply::json(404, json!({"code": "not_found", "message": "Unknown project"}));
    }
    let body = if p == "/api/v2/projects/demo/experiments" {
        // Every environment's experiments in one listing, 120 each.
        let envs = ["production", "staging", "qa"];
        let items: Vec<Value> = (off..(off + 50).min(360)).map(|i| experiment(envs[i / 120], i % 120)).collect();
        json!({"items": items, "total_count": 360, "_links": {}})
    } else if let Some(rest) = p.strip_prefix("/api/v2/projects/demo/environments/") {
        let env = rest.split('/').next().unwrap();
        let items: Vec<Value> = (off..(off + 50).min(120)).map(|i| experiment(env, i)).collect();
        json!({"items": items, "total_count": 120, "_links": {}})
    } else if p == "/api/v2/metrics/demo" {
        let items: Vec<Value> = (off..(off + 50).min(51)).map(|i| json!({"key": format!("m{i:02}")})).collect();
        json!({"items": items, "totalCount": 51, "_links": {}})
    } else if p == "/api/v2/projects/demo/metric-groups" {
        json!({"items": [{"key": "funnel"}], "totalCount": 1, "_links": {}})
    } else if p == "/api/v2/projects/demo/experimentation-settings" {
        json!({"randomizationUnits": [{"randomizationUnit": "user", "default": true}]})
    } else if p == "/api/v2/flags/demo/f" {
        json!({"key": "f", "_version": 2, "environments": {"production": {"on": true, "version": 5}}})
    } else {
        return Reply::json(404, json!({"code": "not_found", "message": "Unknown"}));
    };
    Reply::json(200, body)
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_snapshot_takes_one_request_per_page_all_concurrent() {
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (o, pk) = (Arc::clone(&open), Arc::clone(&peak));
    let mock = Mock::start(move |c: &Captured, _| {
        let now = o.fetch_add(1, Ordering::SeqCst) + 1;
        pk.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(15));
        o.fetch_sub(1, Ordering::SeqCst);
        answer(c)
    })
    .await;
    let client = mock.client();
    let req = Requirements {
        experiment_lists: [pair("demo", "production"), pair("demo", "staging"), pair("demo", "qa"), pair("gone", "x")]
            .into(),
        flags: [pair("demo", "f"), pair("demo", "g")].into(),
        flag_environments: [pair("demo", "production"), pair("demo", "staging"), pair("demo", "qa")].into(),
        metrics: ["demo".to_owned(), "gone".to_owned()].into(),
        settings: ["demo".to_owned()].into(),
        ..Requirements::default()
    };
    let state = fetch_remote(&client, &req).await.unwrap();

    // demo's three environments in one listing of 360 (8 pages), gone's one list (missing), 2 flags by GET (fewer
    // than the environments the list would read them in), metrics (2 pages) + groups for demo, metrics + groups
    // for gone, settings.
    let expected = 8 + 1 + 2 + (2 + 1) + 2 + 1;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), expected);
    assert_eq!(client.requests_sent(), expected as u64);
    let mut per_route: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reqs {
        *per_route.entry(r.line()).or_default() += 1;
    }
    assert!(per_route.values().all(|n| *n == 1), "a request was repeated: {per_route:?}");
    assert!(peak.load(Ordering::SeqCst) >= 4, "reads must overlap (peak {})", peak.load(Ordering::SeqCst));
    assert!(peak.load(Ordering::SeqCst) <= 8, "the default bound is 8 (peak {})", peak.load(Ordering::SeqCst));

    assert_eq!(state.projects["gone"], None);
    let demo = state.projects["demo"].as_ref().unwrap();
    for env in ["production", "staging", "qa"] {
        let list = demo.environments[env].as_ref().unwrap();
        assert_eq!(list.len(), 120, "{env}");
        assert!(list.contains_key(&format!("{env}-119")));
    }
    assert_eq!(demo.metrics.len(), 51);
    assert_eq!(demo.metric_groups.keys().collect::<Vec<_>>(), ["funnel"]);
    assert_eq!(demo.flags["f"].as_ref().unwrap().flag.environments["production"].version, 5);
    assert_eq!(demo.flags["g"], None);
    assert_eq!(demo.settings.as_ref().unwrap().randomization_units[0].randomization_unit, "user");
}
