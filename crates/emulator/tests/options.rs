//! The server options that model awkward real-service behaviour (contract §9.8, 9.10–9.12), through a real client:
//! a misreported `total_count`, the account-wide rate limit, bare 429s, injected 409s and project-scoped tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use ldexp_emulator::{RunningServer, ServerConfig, serve};
use reqwest::Method;
use serde_json::{Value, json};
use support::{PE, checkout_post, create, ok, patch_experiment};

const TOKEN: &str = "options-test-token";
const SCOPED: &str = "scoped-canary-token";

async fn start(edit: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    support::serve_seeded(TOKEN, edit).await
}

fn client() -> reqwest::Client {
    support::http_client()
}

async fn send(
    server: &RunningServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let beta = ldexp_core::requests::is_beta_route(path);
    let mut r = client()
        .request(method, format!("{}{path}", server.url()))
        .header("Authorization", token)
        .header("LD-API-Version", if beta { "beta" } else { "20240415" });
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b.to_string());
    }
    r.send().await.unwrap()
}

async fn get(server: &RunningServer, path: &str) -> reqwest::Response {
    send(server, TOKEN, Method::GET, path, None).await
}

async fn admin(server: &RunningServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut r = client().request(method, format!("{}{path}", server.url()));
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).unwrap_or_else(|| panic!("no {name} in {:?}", r.headers())).to_str().unwrap()
}

/// Experiments `a`, `b`, `c` created in production besides the seeded `search-ranking`; `b` and `c` archived.
fn with_archived_experiments() -> Value {
    let mut s = support::demo();
    for k in ["a", "b", "c"] {
        let body = checkout_post(&mut s, k);
        ok(create(&mut s, "production", &body));
    }
    for k in ["b", "c"] {
        ok(patch_experiment(&mut s, k, json!([{ "kind": "archiveExperiment" }])));
    }
    s.to_json()
}

/// Every key a reader following `_links.next` sees, and the `total_count` of each page.
async fn walk(server: &RunningServer, first: &str) -> (Vec<String>, Vec<u64>) {
    let (mut keys, mut totals) = (Vec::new(), Vec::new());
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page: Value = get(server, &path).await.json().await.unwrap();
        keys.extend(page["items"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_owned()));
        totals.push(page["total_count"].as_u64().unwrap());
        next = page["_links"]["next"]["href"].as_str().map(str::to_owned);
    }
    (keys, totals)
}

#[tokio::test]
async fn a_misreported_total_count_counts_only_active_experiments_while_the_links_reach_every_one() {
    let server = start(|c| c.misreport_total_count = true).await;
    admin(&server, Method::PUT, "/_emulator/state", Some(with_archived_experiments())).await;
    let all = format!("{PE}/experiments?lifecycleState=active,archived&limit=2");
    let (keys, totals) = walk(&server, &all).await;
    assert_eq!(keys, ["search-ranking", "a", "b", "c"], "items and _links.next stay truthful");
    assert_eq!(totals, [2, 2], "total_count counts the two active experiments only");
    let (keys, totals) = walk(&server, &format!("{PE}/experiments?lifecycleState=archived")).await;
    assert_eq!((keys.len(), totals), (2, vec![0]));
    // Without archived experiments in the question the count is right.
    let (keys, totals) = walk(&server, &format!("{PE}/experiments?limit=1")).await;
    assert_eq!((keys.len(), totals), (2, vec![2, 2]));
    server.shutdown().await;

    // The same account without the option reports every experiment it lists.
    let server = start(|_| {}).await;
    admin(&server, Method::PUT, "/_emulator/state", Some(with_archived_experiments())).await;
    let (keys, totals) = walk(&server, &all).await;
    assert_eq!((keys.len(), totals), (4, vec![4, 4]));
    server.shutdown().await;
}

#[tokio::test]
async fn the_global_rate_limit_spans_every_route_and_every_answer_reports_it() {
    let server = start(|c| c.rate_limit_global = Some(3)).await;
    let start_ms = now_ms();
    let mut remaining = Vec::new();
    for path in ["/api/v2/metrics/demo", "/api/v2/flags/demo/checkout-button", "/api/v2/caller-identity"] {
        let r = get(&server, path).await;
        assert_eq!(r.status(), 200, "{path}");
        remaining.push(header(&r, "x-ratelimit-global-remaining").to_owned());
        let reset: u64 = header(&r, "x-ratelimit-reset").parse().unwrap();
        assert!(reset > start_ms && reset <= now_ms() + 10_000, "reset {reset} is the window's end in epoch ms");
        assert!(r.headers().get("x-ratelimit-route-remaining").is_none(), "no per-route limit on this server");
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // A fourth route, never called before, is refused too: the window is account-wide.
    let refused = get(&server, "/api/v2/metrics/demo/page-view").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "x-ratelimit-global-remaining"), "0");
    assert!(header(&refused, "x-ratelimit-reset").parse::<u64>().unwrap() > start_ms);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(
        body["message"],
        "You've exceeded the API rate limit: the account-wide window (3 requests per 10 s) is used up. Try again later."
    );
    // Unauthenticated answers are API answers too.
    let unauth = client().get(format!("{}/api/v2/metrics/demo", server.url())).send().await.unwrap();
    assert_eq!(unauth.status(), 429);
    let stats = admin(&server, Method::GET, "/_emulator/stats", None).await;
    assert_eq!((stats["rateLimited"].as_u64(), stats["rateLimitedGlobal"].as_u64()), (Some(2), Some(2)));
    server.shutdown().await;
}

#[tokio::test]
async fn the_route_and_global_windows_apply_together_and_the_message_names_the_one_that_refused() {
    let server = start(|c| {
        c.rate_limit = Some(1);
        c.rate_limit_global = Some(3);
    })
    .await;
    let first = get(&server, "/api/v2/metrics/demo").await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        (header(&first, "x-ratelimit-route-remaining"), header(&first, "x-ratelimit-global-remaining")),
        ("0", "2")
    );
    let refused = get(&server, "/api/v2/metrics/demo").await;
    assert_eq!(refused.status(), 429);
    // A refused request is counted in no window.
    assert_eq!(
        (header(&refused, "x-ratelimit-route-remaining"), header(&refused, "x-ratelimit-global-remaining")),
        ("0", "2")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["message"],
        "You've exceeded the API rate limit: the window of `GET /api/v2/metrics/{projectKey}` (1 requests per 10 s) \
         is used up. Try again later."
    );
    for path in ["/api/v2/flags/demo/checkout-button", "/api/v2/caller-identity"] {
        assert_eq!(get(&server, path).await.status(), 200, "{path}");
    }
    let both = get(&server, "/api/v2/metrics/demo").await;
    let message = both.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("the window of `GET /api/v2/metrics/{projectKey}`"), "{message}");
    assert!(message.contains("and the account-wide window (3 requests per 10 s)"), "{message}");
    let stats = server.stats();
    assert_eq!((stats.rate_limited, stats.rate_limited_global), (2, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn bare_429s_carry_no_rate_limit_headers_and_no_retry_after() {
    let server = start(|c| {
        c.rate_limit = Some(1);
        c.rate_limit_global = Some(2);
        c.rate_limit_bare = true;
    })
    .await;
    let passed = get(&server, "/api/v2/metrics/demo").await;
    assert_eq!(passed.status(), 200);
    assert!(passed.headers().contains_key("x-ratelimit-reset"), "only the 429s are bare");
    // Refused by the route window, then twice by both: the unbare server would add Retry-After to the first of each.
    for path in ["/api/v2/metrics/demo", "/api/v2/caller-identity", "/api/v2/metrics/demo", "/api/v2/metrics/demo"] {
        let r = get(&server, path).await;
        if r.status() == 200 {
            continue;
        }
        assert_eq!(r.status(), 429, "{path}");
        let names: Vec<&str> = r.headers().keys().map(|k| k.as_str()).collect();
        assert!(names.iter().all(|n| !n.starts_with("x-ratelimit") && *n != "retry-after"), "{path}: {names:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
    }
    assert_eq!(server.stats().rate_limited, 3);
    server.shutdown().await;
    let err = serve(ServerConfig { rate_limit_bare: true, ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(err.to_string(), "emulator server: --rate-limit-bare needs --rate-limit or --rate-limit-global");
    let err = serve(ServerConfig { rate_limit_global: Some(0), ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(err.to_string(), "emulator server: --rate-limit-global must be at least 1");
}

#[tokio::test]
async fn injected_409s_answer_writes_without_handling_them() {
    let server = start(|c| c.fault_409 = 1.0).await;
    let before = server.state().to_json();
    // Built on an in-process copy of the same seed, which accepts the default token.
    let body = checkout_post(&mut support::demo(), "conflicted");
    let post = send(&server, TOKEN, Method::POST, &format!("{PE}/experiments"), Some(body)).await;
    assert_eq!(post.status(), 409);
    let err: Value = post.json().await.unwrap();
    assert_eq!(err["code"], "optimistic_locking_error");
    assert_eq!(
        err["message"],
        "injected fault: Conflict. Optimistic lock error. Try again later. (The emulator did not handle the request.)"
    );
    let patch = json!([{ "op": "replace", "path": "/description", "value": "changed" }]);
    let r = send(&server, TOKEN, Method::PATCH, "/api/v2/flags/demo/checkout-button", Some(patch)).await;
    assert_eq!(r.status(), 409);
    assert_eq!(server.state().to_json(), before, "nothing was handled");
    // Reads are never conflicted.
    assert_eq!(get(&server, "/api/v2/flags/demo/checkout-button").await.status(), 200);
    let stats = admin(&server, Method::GET, "/_emulator/stats", None).await;
    assert_eq!((stats["conflicts"].as_u64(), stats["serverErrors"].as_u64()), (Some(2), Some(0)));
    server.shutdown().await;
    let err = serve(ServerConfig { fault_409: -0.5, ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(err.to_string(), "emulator server: --fault-409 must be a probability in [0, 1], not -0.5");
}

async fn conflict_sequence(seed: u64) -> Vec<u16> {
    let server = start(|c| {
        c.fault_409 = 0.5;
        c.fault_seed = seed;
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..24 {
        // An empty dry-run patch changes nothing, so every answer that is not a fault is a 200.
        let path = "/api/v2/flags/demo/checkout-button?dryRun=true";
        out.push(send(&server, TOKEN, Method::PATCH, path, Some(json!([]))).await.status().as_u16());
    }
    server.shutdown().await;
    out
}

#[tokio::test]
async fn injected_409s_are_reproducible_from_the_fault_seed() {
    let a = conflict_sequence(3).await;
    assert!(a.contains(&200) && a.contains(&409), "{a:?}");
    assert_eq!(a, conflict_sequence(3).await);
    assert_ne!(a, conflict_sequence(4).await);
}

#[tokio::test]
async fn a_scoped_token_gets_401_outside_its_projects_and_never_shows() {
    let server = start(|c| {
        c.scoped_tokens.insert(SCOPED.into(), ["elsewhere".to_owned()].into());
        c.scoped_tokens.insert("scoped-demo".into(), ["demo".to_owned(), "elsewhere".to_owned()].into());
    })
    .await;
    let paths = [
        "/api/v2/flags/demo",
        "/api/v2/flags/demo/checkout-button",
        "/api/v2/metrics/demo",
        "/api/v2/metrics/demo/page-view",
        "/api/v2/projects/demo/experiments",
        &format!("{PE}/experiments/search-ranking"),
        "/api/v2/projects/demo/metric-groups",
        "/api/v2/projects/demo/experimentation-settings",
    ];
    for path in paths {
        let r = send(&server, SCOPED, Method::GET, path, None).await;
        assert_eq!(r.status(), 401, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["message"], "the access token has no permission in project `demo`");
        assert_eq!(send(&server, "scoped-demo", Method::GET, path, None).await.status(), 200, "{path}");
    }
    // Writes are refused the same way, and nothing changes.
    let before = server.state().to_json();
    let patch = json!([{ "op": "replace", "path": "/description", "value": "changed" }]);
    let r = send(&server, SCOPED, Method::PATCH, "/api/v2/flags/demo/checkout-button", Some(patch)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(server.state().to_json(), before);
    // A project in the list that does not exist is an ordinary 404; project-less routes answer normally.
    assert_eq!(send(&server, SCOPED, Method::GET, "/api/v2/flags/elsewhere", None).await.status(), 404);
    let identity = send(&server, SCOPED, Method::GET, "/api/v2/caller-identity", None).await;
    assert_eq!(identity.status(), 200);
    assert_eq!(identity.json::<Value>().await.unwrap()["serviceToken"], false);
    // An unknown token is still refused everywhere.
    assert_eq!(send(&server, "unknown", Method::GET, "/api/v2/caller-identity", None).await.status(), 401);

    // The tokens survive an admin state PUT, and appear in no document, Debug output or error.
    let doc = admin(&server, Method::GET, "/_emulator/state", None).await;
    admin(&server, Method::PUT, "/_emulator/state", Some(doc.clone())).await;
    assert_eq!(send(&server, SCOPED, Method::GET, "/api/v2/metrics/demo", None).await.status(), 401);
    assert_eq!(send(&server, "scoped-demo", Method::GET, "/api/v2/metrics/demo", None).await.status(), 200);
    let shown = format!("{doc} {:?} {server:?}", server.state());
    assert!(!shown.contains("scoped-canary") && !shown.contains("scoped-demo"), "{shown}");
    server.shutdown().await;
    let mut config = ServerConfig::default();
    config.scoped_tokens.insert(config.token.clone(), ["demo".to_owned()].into());
    let err = serve(config).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "emulator server: --scoped-token tokens must be non-empty and differ from --token and --service-token"
    );
}

#[test]
fn the_new_cli_flags_reach_the_server_config_and_never_show_the_tokens() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ldexp_emulator::cli::EmulatorArgs,
    }
    let cli = Cli::try_parse_from([
        "ldexp",
        "--misreport-total-count",
        "--rate-limit-global",
        "40",
        "--rate-limit-bare",
        "--fault-409",
        "0.25",
        "--scoped-token",
        "canary-a=demo,other",
        "--scoped-token",
        "canary-b=demo",
        "--scoped-token",
        "canary-a=third",
    ])
    .unwrap();
    let config = cli.args.config().unwrap();
    assert!(config.misreport_total_count && config.rate_limit_bare);
    assert_eq!((config.rate_limit_global, config.fault_409), (Some(40), 0.25));
    let scopes: Vec<(&str, Vec<&str>)> =
        config.scoped_tokens.iter().map(|(t, p)| (t.as_str(), p.iter().map(String::as_str).collect())).collect();
    assert_eq!(scopes, [("canary-a", vec!["demo", "other", "third"]), ("canary-b", vec!["demo"])]);
    let shown = format!("{:?} {config:?}", cli.args);
    assert!(!shown.contains("canary"), "{shown}");
    assert!(shown.contains("\"other\""), "the projects are shown: {shown}");
    for bad in ["canary-c", "=demo", "canary-c=", "canary-c= , "] {
        let err = Cli::try_parse_from(["ldexp", "--scoped-token", bad]).unwrap().args.config().unwrap_err();
        assert_eq!(err.to_string(), "emulator server: --scoped-token value 1 must be TOKEN=PROJECT[,PROJECT...]");
    }
    let defaults = Cli::try_parse_from(["ldexp"]).unwrap().args.config().unwrap();
    assert!(!defaults.misreport_total_count && !defaults.rate_limit_bare && defaults.scoped_tokens.is_empty());
    assert_eq!((defaults.rate_limit_global, defaults.fault_409), (None, 0.0));
}
