//! `HttpClient` against a scripted local server: the account-wide window holds every route, a 429 without any
//! rate-limit header holds its route for the fallback wait, and a 409 is handed back after one send.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::HttpClient;
use crate::client::{AccessToken, BaseUrl, ClientConfig, PlanReads, RetryPolicy, Writer};
use crate::{Error, requests};

/// One scripted answer: status, headers, JSON body.
type Reply = (u16, Vec<(&'static str, String)>, Value);
type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Server {
    script: Arc<Script>,
    /// `path` and arrival time of every request, in arrival order.
    log: Arc<Mutex<Vec<(String, Instant)>>>,
}

async fn answer(State(s): State<Server>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let n = {
        let mut log = s.log.lock().unwrap();
        log.push((path.clone(), Instant::now()));
        log.len() - 1
    };
    let (status, headers, body) = (s.script)(&path, n);
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(HeaderName::from_static(k), HeaderValue::from_str(&v).unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), map, axum::Json(body)).into_response()
}

/// Starts a server answering request number `n` (0-based) to `path` with `script(path, n)`.
async fn serve(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> (HttpClient, Server) {
    let server = Server { script: Arc::new(script), log: Arc::default() };
    let app = Router::new().fallback(answer).with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config =
        ClientConfig::new(BaseUrl::parse(&format!("http://{addr}")).unwrap(), AccessToken::new("t-secret").unwrap());
    config.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        past_reset_delay: Duration::from_millis(30),
        bare_rate_limit_wait: Duration::from_millis(300),
        max_rate_limit_wait: Duration::from_secs(5),
        max_timeout_retries: 1,
    };
    (HttpClient::new(config).unwrap(), server)
}

impl Server {
    /// When requests to paths containing `part` arrived.
    fn arrivals(&self, part: &str) -> Vec<Instant> {
        self.log.lock().unwrap().iter().filter(|(p, _)| p.contains(part)).map(|(_, t)| *t).collect()
    }
}

fn epoch_ms_in(d: Duration) -> String {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + d).as_millis().to_string()
}

fn ok(path: &str) -> Reply {
    if path.starts_with("/api/v2/metrics/") {
        (200, vec![], json!({"items": [], "totalCount": 0, "_links": {}}))
    } else {
        (200, vec![], json!({"key": "f", "_version": 1}))
    }
}

fn limited() -> Value {
    json!({"code": "rate_limited", "message": "You've exceeded the API rate limit."})
}

/// The flag read refused by the first answer, and a metrics read sent 100 ms later, on another route.
async fn flag_then_metrics(client: &HttpClient) -> Instant {
    let start = Instant::now();
    let c = client.clone();
    let flag = tokio::spawn(async move { c.get_flag("demo", "f").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.list_metrics("demo").await.unwrap().is_some());
    assert!(flag.await.unwrap().unwrap().is_some());
    start
}

#[tokio::test]
async fn a_global_429_holds_every_route_until_the_reset() {
    let (client, server) = serve(|path, n| {
        if n == 0 {
            let headers = vec![
                ("x-ratelimit-global-remaining", "0".to_owned()),
                ("x-ratelimit-reset", epoch_ms_in(Duration::from_millis(500))),
            ];
            return (429, headers, limited());
        }
        ok(path)
    })
    .await;
    let start = flag_then_metrics(&client).await;
    let metrics = server.arrivals("/metrics/");
    assert_eq!(metrics.len(), 1);
    let waited = metrics[0].duration_since(start);
    assert!(waited >= Duration::from_millis(480), "another route went into the spent window after {waited:?}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    assert_eq!(server.arrivals("/flags/").len(), 2, "the refused read went again once");
}

#[tokio::test]
async fn a_429_carrying_the_global_count_at_all_holds_every_route() {
    // No route count beside it: the answer is about the account, whatever the count says.
    let (client, server) = serve(|path, n| {
        if n == 0 {
            let headers = vec![
                ("x-ratelimit-global-remaining", "3".to_owned()),
                ("x-ratelimit-reset", epoch_ms_in(Duration::from_millis(400))),
            ];
            return (429, headers, limited());
        }
        ok(path)
    })
    .await;
    let start = flag_then_metrics(&client).await;
    let waited = server.arrivals("/metrics/")[0].duration_since(start);
    assert!(waited >= Duration::from_millis(380), "{waited:?}");
}

#[tokio::test]
async fn a_route_429_with_room_in_the_global_window_holds_only_its_route() {
    let (client, server) = serve(|path, n| {
        if n == 0 {
            let headers = vec![
                ("x-ratelimit-global-remaining", "40".to_owned()),
                ("x-ratelimit-route-remaining", "0".to_owned()),
                ("x-ratelimit-reset", epoch_ms_in(Duration::from_millis(500))),
            ];
            return (429, headers, limited());
        }
        ok(path)
    })
    .await;
    let start = flag_then_metrics(&client).await;
    let waited = server.arrivals("/metrics/")[0].duration_since(start);
    assert!(waited < Duration::from_millis(300), "another route was held: {waited:?}");
    let flags = server.arrivals("/flags/");
    assert!(flags[1].duration_since(start) >= Duration::from_millis(480), "the refused route waited");
}

#[tokio::test]
async fn an_answer_spending_the_global_window_holds_every_route_before_any_429() {
    let (client, server) = serve(|path, n| {
        let mut reply = ok(path);
        if n == 0 {
            reply.1 = vec![
                ("x-ratelimit-global-remaining", "0".to_owned()),
                ("x-ratelimit-reset", epoch_ms_in(Duration::from_millis(400))),
            ];
        }
        reply
    })
    .await;
    let start = Instant::now();
    assert!(client.get_flag("demo", "f").await.unwrap().is_some());
    assert!(client.list_metrics("demo").await.unwrap().is_some());
    let waited = server.arrivals("/metrics/")[0].duration_since(start);
    assert!(waited >= Duration::from_millis(380) && waited < Duration::from_millis(1500), "{waited:?}");
    // A count above zero slows nothing.
    let (client, server) = serve(|path, _| {
        let mut reply = ok(path);
        reply.1 = vec![
            ("x-ratelimit-global-remaining", "1".to_owned()),
            ("x-ratelimit-reset", epoch_ms_in(Duration::from_millis(400))),
        ];
        reply
    })
    .await;
    let start = Instant::now();
    client.get_flag("demo", "f").await.unwrap();
    client.list_metrics("demo").await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(300), "{:?}", start.elapsed());
    assert_eq!(server.log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_429_without_rate_limit_headers_holds_its_route_for_the_fallback_wait() {
    let (client, server) = serve(|path, n| if n == 0 { (429, vec![], limited()) } else { ok(path) }).await;
    let start = Instant::now();
    let c = client.clone();
    let first = tokio::spawn(async move { c.get_flag("demo", "f").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Same route (`GET /api/v2/flags/{projectKey}/{featureFlagKey}`), another flag: held by the same gate.
    let c = client.clone();
    let second = tokio::spawn(async move { c.get_flag("demo", "g").await });
    // Another route is not held: the refusal named no global window.
    client.list_metrics("demo").await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(300), "{:?}", start.elapsed());
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    let log = server.log.lock().unwrap().clone();
    let flags: Vec<(&str, Duration)> = log
        .iter()
        .filter(|(p, _)| p.starts_with("/api/v2/flags/"))
        .map(|(p, t)| (p.as_str(), t.duration_since(start)))
        .collect();
    assert_eq!(flags.len(), 3, "{flags:?}");
    // The 300 ms fallback (plus at most a fifth) passes before either read goes again: no tight loop, no
    // overtaking while the route is held.
    for (path, at) in &flags[1..] {
        assert!(*at >= Duration::from_millis(300) && *at < Duration::from_millis(1000), "{path} at {at:?}");
    }
    assert_eq!(flags[1].0, "/api/v2/flags/demo/f", "the refused read goes first when the route reopens");
}

#[tokio::test]
async fn a_409_is_handed_back_after_one_send() {
    // The applier resends a 409 once (contract §9.11); the client must not add sends of its own.
    let (client, server) = serve(|_, _| {
        (409, vec![], json!({"code": "optimistic_locking_error", "message": "Conflict. Optimistic lock error."}))
    })
    .await;
    let patch = serde_json::from_value(json!({"patch": [{"op": "replace", "path": "/on", "value": true}]})).unwrap();
    let e = client.send(&requests::patch_flag("demo", "f", &patch), "flag demo/f").await.unwrap_err();
    let Error::Api(api) = e else { panic!("{e:?}") };
    assert_eq!((api.status, api.message.as_str()), (409, "Conflict. Optimistic lock error."));
    let e = client.get_flag("demo", "f").await.unwrap_err();
    assert!(matches!(e, Error::Api(api) if api.status == 409));
    assert_eq!(server.log.lock().unwrap().len(), 2, "one send each, never retried by the transport");
    assert_eq!(client.requests_sent(), 2);
}
