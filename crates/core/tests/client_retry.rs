//! Retries and failure handling: 429 with each header form, 5xx and dropped connections on reads and writes,
//! unknown outcomes, and the adaptive concurrency limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client_support::{Captured, Mock, Reply};
use ldexp_core::api::{ExperimentPatch, PatchWithComment};
use ldexp_core::client::{HttpClient, PlanReads, Writer};
use ldexp_core::plan::PlannedRequest;
use ldexp_core::{Error, requests};
use serde_json::json;

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

fn flag_ok() -> Reply {
    Reply::json(200, json!({"key": "f", "_version": 1}))
}

fn rate_limited() -> Reply {
    Reply::json(429, json!({"code": "rate_limited", "message": "You've exceeded the API rate limit."}))
}

/// Answers the first `n` requests with `first`, then 200.
fn first_n(n: usize, first: impl Fn() -> Reply + Send + Sync + 'static) -> impl Fn(&Captured, usize) -> Reply {
    move |_, i| if i < n { first() } else { flag_ok() }
}

async fn timed_flag_read(mock: &Mock) -> (Result<bool, Error>, Duration) {
    let c = mock.client();
    let t = Instant::now();
    let r = c.get_flag("demo", "f").await.map(|f| f.is_some());
    (r, t.elapsed())
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let mock = Mock::start(first_n(1, || rate_limited().with_header("Retry-After", "1"))).await;
    let (r, took) = timed_flag_read(&mock).await;
    assert!(r.unwrap());
    assert_eq!(mock.requests().len(), 2);
    assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(1900), "{took:?}");
}

#[tokio::test]
async fn a_future_ratelimit_reset_is_waited_for() {
    let mock = Mock::start(first_n(1, || {
        rate_limited()
            .with_header("X-Ratelimit-Reset", &(now_ms() + 700).to_string())
            .with_header("X-Ratelimit-Route-Remaining", "0")
    }))
    .await;
    let (r, took) = timed_flag_read(&mock).await;
    assert!(r.unwrap());
    assert_eq!(mock.requests().len(), 2);
    assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn a_past_or_negative_ratelimit_reset_is_a_short_backoff() {
    for reset in [(now_ms() - 60_000).to_string(), "-1".to_owned()] {
        let mock = Mock::start(first_n(1, move || rate_limited().with_header("X-Ratelimit-Reset", &reset))).await;
        let (r, took) = timed_flag_read(&mock).await;
        assert!(r.unwrap());
        assert_eq!(mock.requests().len(), 2);
        // past_reset_delay is 30 ms in the test policy, plus at most 50 ms of jitter.
        assert!(took >= Duration::from_millis(30) && took < Duration::from_millis(400), "{took:?}");
    }
}

#[tokio::test]
async fn a_bare_429_waits_the_fixed_fallback_each_time() {
    let mock = Mock::start(first_n(3, rate_limited)).await;
    let (r, took) = timed_flag_read(&mock).await;
    assert!(r.unwrap());
    assert_eq!(mock.requests().len(), 4);
    // bare_rate_limit_wait is 50 ms in the test policy (10 s by default), plus at most a fifth: three of them.
    assert!(took >= Duration::from_millis(150) && took < Duration::from_millis(1000), "{took:?}");
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_a_429_error_with_its_hint() {
    let mock = Mock::start(|_: &Captured, _| rate_limited()).await;
    let Error::Api(e) = mock.client().get_flag("demo", "f").await.unwrap_err() else { panic!() };
    assert_eq!((e.status, e.code.as_deref()), (429, Some("rate_limited")));
    assert_eq!(e.hint(), "LaunchDarkly kept rate-limiting after every retry; lower --concurrency or try again later");
    assert_eq!(mock.requests().len(), 4, "one attempt and three retries");
}

#[tokio::test]
async fn an_excessive_retry_after_is_reported_rather_than_slept() {
    let mock = Mock::start(|_: &Captured, _| rate_limited().with_header("Retry-After", "3600")).await;
    let t = Instant::now();
    let Error::Api(e) = mock.client().get_flag("demo", "f").await.unwrap_err() else { panic!() };
    assert_eq!(e.status, 429);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests().len(), 1);
}

fn create_request() -> PlannedRequest {
    let body = serde_json::from_value(json!({
        "name": "n", "key": "k",
        "iteration": {"hypothesis": "h", "metrics": [], "treatments": [], "flags": {}}
    }))
    .unwrap();
    requests::create_experiment("demo", "production", &body)
}

fn start_request() -> PlannedRequest {
    let patch: ExperimentPatch = serde_json::from_value(json!({"instructions": [{"kind": "startIteration"}]})).unwrap();
    requests::patch_experiment("demo", "production", "k", &patch)
}

fn flag_patch_request() -> PlannedRequest {
    let patch: PatchWithComment =
        serde_json::from_value(json!({"patch": [{"op": "replace", "path": "/experiments/baselineIdx", "value": 1}]}))
            .unwrap();
    requests::patch_flag("demo", "f", &patch)
}

#[tokio::test]
async fn a_429_on_a_write_is_retried_because_it_was_not_processed() {
    let mock = Mock::start(|_: &Captured, i| {
        if i == 0 { rate_limited().with_header("Retry-After", "0") } else { Reply::json(201, json!({"key": "k"})) }
    })
    .await;
    let body = mock.client().send(&create_request(), "experiment demo/production/k").await.unwrap();
    assert_eq!(body.unwrap()["key"], "k");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn a_5xx_on_a_get_is_retried() {
    let mock = Mock::start(|_: &Captured, i| match i {
        0 => Reply::json(503, json!({"message": "unavailable"})),
        1 => Reply::empty(502),
        _ => flag_ok(),
    })
    .await;
    let (r, _) = timed_flag_read(&mock).await;
    assert!(r.unwrap());
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn a_persistent_5xx_on_a_get_ends_in_an_api_error() {
    let mock = Mock::start(|_: &Captured, _| Reply::json(500, json!({"code": "internal", "message": "boom"}))).await;
    let Error::Api(e) = mock.client().list_metrics("demo").await.unwrap_err() else { panic!() };
    assert_eq!((e.status, e.message.as_str()), (500, "boom"));
    assert_eq!(e.hint(), "LaunchDarkly had an internal error; try again");
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn dropped_connections_and_cut_bodies_on_a_get_are_retried() {
    let mock = Mock::start(|_: &Captured, i| match i {
        0 => Reply::Drop,
        1 => Reply::Truncate { status: 200, body: json!({"key": "f", "_version": 1}).to_string() },
        _ => flag_ok(),
    })
    .await;
    let (r, _) = timed_flag_read(&mock).await;
    assert!(r.unwrap());
    assert_eq!(mock.requests().len(), 3);
}

async fn assert_outcome_unknown(reply: Reply, request: PlannedRequest, reason: &str) {
    let mock = Mock::start(move |_: &Captured, _| reply.clone()).await;
    let e = mock.client().send(&request, "experiment demo/production/k").await.unwrap_err();
    let Error::OutcomeUnknown { resource, method, path, reason: why } = &e else { panic!("{e:?}") };
    assert_eq!(resource, "experiment demo/production/k");
    assert_eq!((method.as_str(), path.as_str()), (request.method.as_str(), request.path.as_str()));
    assert!(why.contains(reason), "{why}");
    assert_eq!(e.hint().unwrap(), "run `ldexp plan` to see what took effect; `ldexp apply` converges safely");
    assert_eq!(mock.requests().len(), 1, "never sent a second time");
}

#[tokio::test]
async fn a_5xx_on_a_write_is_an_unknown_outcome_sent_once() {
    let r = || Reply::json(502, json!({"message": "bad gateway"}));
    assert_outcome_unknown(r(), create_request(), "HTTP 502").await;
    assert_outcome_unknown(r(), start_request(), "HTTP 502").await;
    assert_outcome_unknown(r(), flag_patch_request(), "HTTP 502").await;
}

#[tokio::test]
async fn a_dropped_connection_on_a_write_is_an_unknown_outcome_sent_once() {
    assert_outcome_unknown(Reply::Drop, create_request(), "connection closed before message completed").await;
    assert_outcome_unknown(Reply::Drop, start_request(), "connection closed").await;
    assert_outcome_unknown(Reply::Drop, flag_patch_request(), "connection closed").await;
}

#[tokio::test]
async fn a_body_cut_mid_read_on_a_write_is_an_unknown_outcome() {
    let cut = Reply::Truncate { status: 201, body: json!({"key": "k", "name": "a long enough name"}).to_string() };
    assert_outcome_unknown(cut, create_request(), "HTTP 201, then the response body failed").await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_even_for_writes() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = Mock { addr: ([127, 0, 0, 1], port).into(), log: Default::default() }.config();
    cfg.retry.max_retries = 1;
    let c = HttpClient::new(cfg).unwrap();
    let e = c.send(&create_request(), "experiment demo/production/k").await.unwrap_err();
    let Error::Transport { resource, url, reason } = &e else { panic!("{e:?}") };
    assert_eq!(resource, "experiment demo/production/k");
    assert_eq!(url, &format!("http://127.0.0.1:{port}/api/v2/projects/demo/environments/production/experiments"));
    assert!(reason.starts_with("connection failed"), "{reason}");
    assert_eq!(c.requests_sent(), 2, "nothing reached the server, so retrying the connect is safe");
}

#[tokio::test]
async fn the_concurrency_limit_halves_on_429_and_recovers() {
    let mock =
        Mock::start(|_: &Captured, i| if i == 0 { rate_limited().with_header("Retry-After", "0") } else { flag_ok() })
            .await;
    let c = mock.client();
    assert_eq!(c.concurrency_limit(), 8);
    c.get_flag("demo", "f").await.unwrap();
    assert_eq!(c.concurrency_limit(), 4);
    for _ in 0..4 {
        c.get_flag("demo", "f").await.unwrap();
    }
    // One success already counted after the retry; four more complete a window of four.
    assert_eq!(c.concurrency_limit(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn concurrency_is_bounded_across_all_requests_of_a_client() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The mock answers slowly from a spawned thread per connection; count the connections open at once.
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (o, p) = (Arc::clone(&open), Arc::clone(&peak));
    let mock = Mock::start(move |_: &Captured, _| {
        let now = o.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        o.fetch_sub(1, Ordering::SeqCst);
        flag_ok()
    })
    .await;
    let mut cfg = mock.config();
    cfg.concurrency = 3;
    let c = HttpClient::new(cfg).unwrap();
    let reads = (0..12).map(|i| {
        let c = c.clone();
        tokio::spawn(async move { c.get_flag("demo", &format!("f{i}")).await.map(|f| f.is_some()) })
    });
    for r in futures::future::join_all(reads).await {
        assert!(r.unwrap().unwrap());
    }
    assert_eq!(mock.requests().len(), 12);
    assert!(peak.load(Ordering::SeqCst) <= 3, "peak {}", peak.load(Ordering::SeqCst));
    assert!(peak.load(Ordering::SeqCst) >= 2, "requests must overlap");
}

/// A server that accepts connections and never writes a byte; counts the connections it accepted.
async fn silent_server() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_silent_server_costs_a_read_two_timeouts_and_a_write_one() {
    use std::sync::atomic::Ordering;
    let (addr, accepted) = silent_server().await;
    let mut cfg = Mock { addr, log: Default::default() }.config();
    cfg.timeout = Duration::from_millis(300);
    let bound = cfg.retry.timeout_bound(cfg.timeout);
    let c = HttpClient::new(cfg.clone()).unwrap();

    let t = Instant::now();
    let e = c.get_flag("demo", "f").await.unwrap_err();
    let took = t.elapsed();
    let Error::Timeout { resource, method, url, waited, attempts } = &e else { panic!("{e:?}") };
    assert_eq!((resource.as_str(), method.as_str()), ("flag demo/f", "GET"));
    assert_eq!(url, &format!("http://{addr}/api/v2/flags/demo/f"));
    assert_eq!(waited, "no answer within 0.3 s (--timeout)");
    assert_eq!(*attempts, cfg.retry.max_timeout_retries + 1, "a timed-out read is retried once, not max_retries times");
    assert_eq!(c.requests_sent(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert!(took >= cfg.timeout * 2, "{took:?}");
    assert!(took < bound + Duration::from_secs(2), "{took:?} against a bound of {bound:?}");

    // A write that was sent and timed out may have been applied: reported once, never resent.
    let c = HttpClient::new(cfg.clone()).unwrap();
    let e = c.send(&create_request(), "experiment demo/production/k").await.unwrap_err();
    let Error::OutcomeUnknown { reason, .. } = &e else { panic!("{e:?}") };
    assert!(reason.starts_with("timed out"), "{reason}");
    assert_eq!(c.requests_sent(), 1);
}
