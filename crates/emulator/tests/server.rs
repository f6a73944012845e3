//! The HTTP server through a real client: admin routes, rate limits, injected 5xx, dropped connections, latency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ldexp_emulator::{RunningServer, ServerConfig, serve};
use serde_json::{Value, json};

const TOKEN: &str = "server-test-token";

async fn start(edit: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    support::serve_seeded(TOKEN, edit).await
}

fn client() -> reqwest::Client {
    support::http_client()
}

async fn api(
    server: &RunningServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Result<reqwest::Response> {
    let beta = ldexp_core::requests::is_beta_route(path);
    let mut r = client()
        .request(method, format!("{}{path}", server.url()))
        .header("Authorization", TOKEN)
        .header("LD-API-Version", if beta { "beta" } else { "20240415" });
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b.to_string());
    }
    r.send().await
}

async fn admin(server: &RunningServer, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut r = client().request(method, format!("{}{path}", server.url()));
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn post_body(state: &ldexp_emulator::State) -> Value {
    let flag = &state.to_json()["projects"]["demo"]["flags"]["checkout-button"];
    let ids: Vec<&str> = flag["variations"].as_array().unwrap().iter().map(|v| v["_id"].as_str().unwrap()).collect();
    json!({ "key": "dropped", "name": "Dropped", "iteration": support::iteration_input(ids[0], ids[1], "50", "50") })
}

#[tokio::test]
async fn api_and_admin_routes() {
    let server = start(|_| {}).await;
    let resp = api(&server, reqwest::Method::GET, "/api/v2/flags/demo/checkout-button", None).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let flag: Value = resp.json().await.unwrap();
    assert_eq!(flag["key"], "checkout-button");
    let unauth = client().get(format!("{}/api/v2/flags/demo/checkout-button", server.url())).send().await.unwrap();
    assert_eq!(unauth.status(), 401);

    let state = admin(&server, reqwest::Method::GET, "/_emulator/state", None).await;
    assert_eq!(state, server.state().to_json());
    assert!(!state.to_string().contains(TOKEN));

    // Replace the state: rename the flag through the document.
    let mut doc = state.clone();
    doc["projects"]["demo"]["flags"]["checkout-button"]["name"] = json!("Renamed by admin");
    admin(&server, reqwest::Method::PUT, "/_emulator/state", Some(doc)).await;
    let flag: Value = api(&server, reqwest::Method::GET, "/api/v2/flags/demo/checkout-button", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flag["name"], "Renamed by admin");
    admin(&server, reqwest::Method::POST, "/_emulator/reset", None).await;
    assert_eq!(admin(&server, reqwest::Method::GET, "/_emulator/state", None).await, state);

    let stats = admin(&server, reqwest::Method::GET, "/_emulator/stats", None).await;
    assert_eq!(stats["total"], 3, "admin calls are not counted: {stats}");
    assert_eq!(stats["byRoute"]["GET /api/v2/flags/{projectKey}/{featureFlagKey}"], 3);
    assert_eq!(
        (stats["rateLimited"].as_u64(), stats["serverErrors"].as_u64(), stats["dropped"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_request_log_shows_each_api_request_with_its_decoded_query_and_no_header() {
    let server = start(|_| {}).await;
    let path = "/api/v2/projects/demo/experiments?filter=status%3Arunning%2CflagKey%3Acheckout-button&limit=5";
    assert_eq!(api(&server, reqwest::Method::GET, path, None).await.unwrap().status(), 200);
    assert_eq!(api(&server, reqwest::Method::GET, "/api/v2/metrics/demo", None).await.unwrap().status(), 200);
    admin(&server, reqwest::Method::GET, "/_emulator/stats", None).await;
    let log = admin(&server, reqwest::Method::GET, "/_emulator/requests", None).await;
    assert_eq!(
        log,
        json!({"requests": [
            {"method": "GET", "path": "/api/v2/projects/demo/experiments",
             "query": {"filter": "status:running,flagKey:checkout-button", "limit": "5"}},
            {"method": "GET", "path": "/api/v2/metrics/demo", "query": {}},
        ]}),
        "oldest first, admin calls left out"
    );
    assert!(!log.to_string().contains(TOKEN));

    // Bounded: the latest thousand.
    for i in 0..1005 {
        let r = api(&server, reqwest::Method::GET, &format!("/api/v2/metrics/demo?offset={i}"), None).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let log = admin(&server, reqwest::Method::GET, "/_emulator/requests", None).await;
    let offsets: Vec<&str> =
        log["requests"].as_array().unwrap().iter().filter_map(|r| r["query"]["offset"].as_str()).collect();
    assert_eq!((offsets.len(), offsets.first().copied(), offsets.last().copied()), (1000, Some("5"), Some("1004")));
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_the_documented_headers() {
    let server = start(|c| c.rate_limit = Some(2)).await;
    let path = "/api/v2/metrics/demo";
    let first = api(&server, reqwest::Method::GET, path, None).await.unwrap();
    assert_eq!(first.headers()["x-ratelimit-route-remaining"], "1");
    let second = api(&server, reqwest::Method::GET, path, None).await.unwrap();
    assert_eq!(second.headers()["x-ratelimit-route-remaining"], "0");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let limited = api(&server, reqwest::Method::GET, path, None).await.unwrap();
    assert_eq!(limited.status(), 429);
    let h = limited.headers().clone();
    assert_eq!(h["x-ratelimit-route-remaining"], "0");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > now && reset <= now + 10_000, "reset {reset} is epoch ms within the window");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    let again = api(&server, reqwest::Method::GET, path, None).await.unwrap();
    assert_eq!(again.status(), 429);
    assert!(again.headers().get("retry-after").is_none(), "only some 429s carry Retry-After");
    // Limits are per METHOD + route pattern.
    let other = api(&server, reqwest::Method::GET, "/api/v2/metrics/demo/page-view", None).await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(server.stats().rate_limited, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_commits_the_change_then_gives_no_answer() {
    let server = start(|c| c.fault_drop = 1.0).await;
    let body = post_body(&server.state());
    let err =
        api(&server, reqwest::Method::POST, "/api/v2/projects/demo/environments/production/experiments", Some(body))
            .await
            .expect_err("no HTTP answer");
    assert!(err.status().is_none(), "a transport error, not a status: {err}");
    let state = admin(&server, reqwest::Method::GET, "/_emulator/state", None).await;
    assert_eq!(state["projects"]["demo"]["experiments"]["production"]["dropped"]["name"], "Dropped");
    let stats = server.stats();
    assert_eq!((stats.dropped, stats.total), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_do_not_handle_the_request() {
    let server = start(|c| c.fault_5xx = 1.0).await;
    let before = server.state().to_json();
    let body = post_body(&server.state());
    let resp =
        api(&server, reqwest::Method::POST, "/api/v2/projects/demo/environments/production/experiments", Some(body))
            .await
            .unwrap();
    let status = resp.status().as_u16();
    let code = resp.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned();
    let expected = match status {
        500 => "internal_server_error",
        502 => "bad_gateway",
        503 => "service_unavailable",
        other => panic!("unexpected status {other}"),
    };
    assert_eq!(code, expected);
    assert_eq!(server.state().to_json(), before);
    assert_eq!(server.stats().server_errors, 1);
    // Admin routes are never faulted.
    admin(&server, reqwest::Method::GET, "/_emulator/stats", None).await;
    server.shutdown().await;
}

async fn fault_sequence(seed: u64) -> Vec<u16> {
    let server = start(|c| {
        c.fault_5xx = 0.5;
        c.fault_seed = seed;
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..24 {
        out.push(api(&server, reqwest::Method::GET, "/api/v2/metrics/demo", None).await.unwrap().status().as_u16());
    }
    server.shutdown().await;
    out
}

#[tokio::test]
async fn faults_are_reproducible_from_their_seed() {
    let a = fault_sequence(7).await;
    assert_eq!(a, fault_sequence(7).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500), "{a:?}");
    assert_ne!(a, fault_sequence(8).await);
}

#[tokio::test]
async fn latency_is_added_to_api_responses() {
    let server = start(|c| c.latency_ms = 150).await;
    let t = Instant::now();
    api(&server, reqwest::Method::GET, "/api/v2/metrics/demo", None).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    server.shutdown().await;
}

#[tokio::test]
async fn settings_out_of_range_are_refused() {
    let err = serve(ServerConfig { fault_drop: 1.5, ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(err.to_string(), "emulator server: --fault-drop must be a probability in [0, 1], not 1.5");
    let err = serve(ServerConfig { rate_limit: Some(0), ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(err.to_string(), "emulator server: --rate-limit must be at least 1");
    let config = ServerConfig { token: "secret-canary".into(), ..ServerConfig::default() };
    assert!(!format!("{config:?}").contains("secret-canary"));
}

#[test]
fn command_line_flags_become_a_server_config() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ldexp_emulator::cli::EmulatorArgs,
    }
    let seed = support::remote_yaml();
    let cli = Cli::try_parse_from([
        "ldexp-emulator",
        "--port",
        "0",
        "--seed",
        seed.to_str().unwrap(),
        "--token",
        "canary-token-1",
        "--latency-ms",
        "5",
        "--rate-limit",
        "30",
        "--fault-5xx",
        "0.1",
        "--fault-drop",
        "0.2",
        "--fault-seed",
        "9",
    ])
    .unwrap();
    assert!(!format!("{:?}", cli.args).contains("canary-token-1"));
    let config = cli.args.config().unwrap();
    assert_eq!((config.latency_ms, config.rate_limit, config.fault_seed), (5, Some(30), 9));
    assert_eq!((config.fault_5xx, config.fault_drop), (0.1, 0.2));
    assert_eq!(config.token, "canary-token-1");
    assert_eq!(config.seed.unwrap().projects[0].key, "demo");
    let defaults = Cli::try_parse_from(["ldexp-emulator"]).unwrap().args;
    assert_eq!(defaults.token, ldexp_emulator::DEFAULT_TOKEN);
    assert!(defaults.config().unwrap().seed.is_none());
}

#[tokio::test]
async fn the_service_token_and_create_as_current_survive_an_admin_state_put() {
    let server = start(|c| {
        c.service_token = Some("server-service-token".into());
        c.create_as_current = true;
    })
    .await;
    // A document that does not switch the option on (an older one) leaves the server's flag in force.
    let mut doc = admin(&server, reqwest::Method::GET, "/_emulator/state", None).await;
    doc.as_object_mut().unwrap().remove("options");
    admin(&server, reqwest::Method::PUT, "/_emulator/state", Some(doc)).await;
    assert!(server.state().create_as_current());
    let identity = client()
        .get(format!("{}/api/v2/caller-identity", server.url()))
        .header("Authorization", "server-service-token")
        .send()
        .await
        .unwrap();
    assert_eq!(identity.status(), 200);
    assert_eq!(identity.json::<Value>().await.unwrap()["serviceToken"], true);
    server.shutdown().await;
    let same =
        serve(ServerConfig { service_token: Some(TOKEN.into()), token: TOKEN.into(), ..ServerConfig::default() });
    assert!(same.await.unwrap_err().to_string().contains("--service-token must be non-empty and differ from --token"));
}

#[test]
fn the_cli_flags_reach_the_server_config_and_never_show_the_tokens() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ldexp_emulator::cli::EmulatorArgs,
    }
    let cli =
        Cli::try_parse_from(["ldexp", "--token", "t-1", "--service-token", "s-2", "--create-as-current"]).unwrap();
    let config = cli.args.config().unwrap();
    assert_eq!(config.service_token.as_deref(), Some("s-2"));
    assert!(config.create_as_current);
    let shown = format!("{:?} {config:?}", cli.args);
    assert!(!shown.contains("t-1") && !shown.contains("s-2"), "{shown}");
}
