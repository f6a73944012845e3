//! The canary test: a recognisable token must never appear in `Debug`, errors, hints or logs (all targets, TRACE
//! level, including reqwest's and hyper's), whatever happens on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use client_support::{Captured, Mock, Reply};
use ldexp_core::client::{AccessToken, BaseUrl, ClientConfig, HttpClient, PlanReads, Writer};
use ldexp_core::{Error, requests};
use serde_json::json;

const CANARY: &str = "canary-3f9c1e7a-do-not-log";

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn everything_about(e: &Error) -> String {
    format!("{e}\n{e:?}\n{:?}", e.hint())
}

#[tokio::test]
async fn the_token_never_leaks() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    // A hostile server: it echoes the Authorization header into error bodies, rate-limits, fails and drops.
    let mock = Mock::start(|c: &Captured, i| {
        let auth = c.one("authorization").to_owned();
        match (c.path.as_str(), i) {
            (p, _) if p.contains("/metrics") => Reply::json(
                401,
                json!({"code": "unauthorized", "message": format!("token {auth} rejected"), "id": auth}),
            ),
            (p, 0) if p.starts_with("/api/v2/flags/") => {
                Reply::json(429, json!({"message": "slow down"})).with_header("Retry-After", "0")
            }
            (p, _) if p.starts_with("/api/v2/flags/") => Reply::json(200, json!({"key": "f", "_version": 1})),
            (p, _) if p.ends_with("/experiments") => Reply::Drop,
            _ => Reply::Respond { status: 500, headers: vec![], body: format!("upstream said: {auth}") },
        }
    })
    .await;
    let mut cfg = ClientConfig::new(BaseUrl::parse(&mock.base()).unwrap(), AccessToken::new(CANARY).unwrap());
    cfg.retry = client_support::fast_retries();
    let c = HttpClient::new(cfg.clone()).unwrap();

    let mut seen = vec![format!("{cfg:?}"), format!("{c:?}"), format!("{:?}", cfg.token), cfg.token.to_string()];

    assert!(c.get_flag("demo", "f").await.unwrap().is_some());
    let e = c.list_metrics("demo").await.unwrap_err();
    let Error::Api(api) = &e else { panic!("{e:?}") };
    assert_eq!(api.message, "token <redacted> rejected");
    assert_eq!(api.request_id.as_deref(), Some("<redacted>"));
    seen.push(everything_about(&e));
    let e = c.get_settings("demo").await.unwrap_err();
    assert!(e.to_string().contains("upstream said: <redacted>"), "{e}");
    seen.push(everything_about(&e));
    let body = serde_json::from_value(json!({"name": "n", "key": "k", "iteration": {"hypothesis": "h", "metrics": [], "treatments": [], "flags": {}}})).unwrap();
    let e = c
        .send(&requests::create_experiment("demo", "production", &body), "experiment demo/production/k")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    seen.push(everything_about(&e));

    // The server did receive the raw token, so the canary is live.
    assert!(mock.requests().iter().all(|r| r.one("authorization") == CANARY));

    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("path=\"/api/v2/flags/demo/f\" status=429"), "{logs}");
    assert!(logs.contains("status=200"), "{logs}");
    // The transport's own TRACE output is captured too, so the check covers it.
    assert!(logs.contains("TRACE hyper_util") && logs.contains("reqwest::"), "{logs}");
    for (i, text) in seen.iter().chain(std::iter::once(&logs)).enumerate() {
        assert!(!text.contains(CANARY), "canary in output #{i}: {text}");
        assert!(!text.contains("canary-3f9c"), "canary prefix in output #{i}");
    }
}
