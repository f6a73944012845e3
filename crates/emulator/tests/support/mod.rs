//! Shared helpers of the emulator's integration tests: the example seed, correctly-authenticated requests, and a
//! seeded server with an HTTP client for the tests that go through HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ldexp_emulator::{DEFAULT_TOKEN, Request, Response, RunningServer, Seed, ServerConfig, State, serve};
use serde_json::{Value, json};

pub(crate) const SEMANTIC: &str = "application/json; domain-model=launchdarkly.semanticpatch";
pub(crate) const PE: &str = "/api/v2/projects/demo/environments/production";

pub(crate) fn remote_yaml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/remote.yaml")
}

/// The state of `examples/remote.yaml`.
pub(crate) fn demo() -> State {
    State::from_seed(&Seed::from_path(&remote_yaml()).unwrap()).unwrap()
}

/// A request with the right token and the `LD-API-Version` a correct client sends.
pub(crate) fn req(method: &str, path: &str) -> Request {
    let version = if ldexp_core::requests::is_beta_route(path) { "beta" } else { "20240415" };
    Request::new(method, path).header("authorization", DEFAULT_TOKEN).header("ld-api-version", version)
}

pub(crate) fn get(s: &mut State, path: &str) -> Response {
    s.handle(&req("GET", path))
}

pub(crate) fn ok(r: Response) -> Value {
    assert!((200..300).contains(&r.status), "expected success, got {} {:?}", r.status, r.body);
    r.body.unwrap_or(Value::Null)
}

/// The variation `_id` of `flag` named `name`.
pub(crate) fn variation(s: &mut State, flag: &str, name: &str) -> String {
    let f = ok(get(s, &format!("/api/v2/flags/demo/{flag}")));
    f["variations"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()["_id"].as_str().unwrap().to_owned()
}

/// An `ExperimentPost` for `checkout-button` on the fallthrough, 50/50.
pub(crate) fn checkout_post(s: &mut State, key: &str) -> Value {
    let control = variation(s, "checkout-button", "control");
    let above = variation(s, "checkout-button", "above-fold");
    json!({
        "key": key,
        "name": format!("Experiment {key}"),
        "iteration": iteration_input(&control, &above, "50", "50"),
    })
}

pub(crate) fn iteration_input(control: &str, above: &str, a: &str, b: &str) -> Value {
    json!({
        "hypothesis": "Above the fold converts better",
        "metrics": [ { "key": "checkout-conversion" }, { "key": "page-load-ms" }, { "key": "checkout-funnel", "isGroup": true } ],
        "primarySingleMetricKey": "checkout-conversion",
        "randomizationUnit": "user",
        "treatments": [
            { "name": "Control", "baseline": true, "allocationPercent": a,
              "parameters": [ { "flagKey": "checkout-button", "variationId": control } ] },
            { "name": "Above the fold", "baseline": false, "allocationPercent": b,
              "parameters": [ { "flagKey": "checkout-button", "variationId": above } ] }
        ],
        "flags": { "checkout-button": { "ruleId": "fallthrough", "flagConfigVersion": 1 } }
    })
}

pub(crate) fn create(s: &mut State, env: &str, body: &Value) -> Response {
    s.handle(
        &req("POST", &format!("/api/v2/projects/demo/environments/{env}/experiments"))
            .header("content-type", "application/json")
            .json(body),
    )
}

pub(crate) fn patch_experiment(s: &mut State, key: &str, instructions: Value) -> Response {
    s.handle(
        &req("PATCH", &format!("{PE}/experiments/{key}"))
            .header("content-type", SEMANTIC)
            .json(&json!({ "comment": "test", "instructions": instructions })),
    )
}

pub(crate) fn patch_flag(s: &mut State, flag: &str, body: &Value) -> Response {
    s.handle(&req("PATCH", &format!("/api/v2/flags/demo/{flag}")).header("content-type", "application/json").json(body))
}

/// `environments.<env>.version` of `flag`: what a correct client sends as `flagConfigVersion`.
pub(crate) fn flag_version(s: &mut State, flag: &str, env: &str) -> i64 {
    ok(get(s, &format!("/api/v2/flags/demo/{flag}")))["environments"][env]["version"].as_i64().unwrap()
}

/// `flag` as it is now.
pub(crate) fn flag(s: &mut State, key: &str) -> Value {
    ok(get(s, &format!("/api/v2/flags/demo/{key}")))
}

/// A server seeded with the example remote, accepting `token`, with `edit` applied to its configuration.
pub(crate) async fn serve_seeded(token: &str, edit: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig {
        token: token.to_owned(),
        seed: Some(Seed::from_path(&remote_yaml()).unwrap()),
        ..ServerConfig::default()
    };
    edit(&mut config);
    serve(config).await.unwrap()
}

/// An HTTP client that gives up after 10 s, so a hung server fails the test instead of stalling it.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap()
}
