//! The HTTP server: an axum router over [`State::handle`], with latency, per-route rate limits, injected 5xx and
//! dropped connections, request statistics, and the loopback-only admin routes under `/_emulator/`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, State as AxState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxResponse};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::model::{DEFAULT_TOKEN, State};
use crate::router::route_key;
use crate::wire::{Request, Response};
use crate::{EmulatorError, Seed, ids};

/// The rate-limit window, as LaunchDarkly counts it.
const WINDOW_MS: u64 = 10_000;

/// What `--fault-5xx` answers with.
const FAULTS: [(u16, &str); 3] = [(500, "internal_server_error"), (502, "bad_gateway"), (503, "service_unavailable")];

/// How to run the server.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on; loopback by default.
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// The access token the API accepts; it stands for a member.
    pub token: String,
    /// A second accepted token that is a service token: `createExperiment` then needs a `maintainerId`.
    pub service_token: Option<String>,
    /// Creates answer the new iteration as a `not_started` `currentIteration`, whatever the seed or an admin
    /// state document says.
    pub create_as_current: bool,
    /// Added to every API response.
    pub latency_ms: u64,
    /// Requests per 10 s window per `METHOD route`; `None` is unlimited.
    pub rate_limit: Option<u32>,
    /// Probability of answering an API request with a 5xx without handling it.
    pub fault_5xx: f64,
    /// Probability of handling an API request, then closing the connection without an answer.
    pub fault_drop: f64,
    /// Seeds the fault draws.
    pub fault_seed: u64,
    /// Starting state; `None` is an empty account.
    pub seed: Option<Seed>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: DEFAULT_TOKEN.to_owned(),
            service_token: None,
            create_as_current: false,
            latency_ms: 0,
            rate_limit: None,
            fault_5xx: 0.0,
            fault_drop: 0.0,
            fault_seed: 0,
            seed: None,
        }
    }
}

// Hand-written so the token never reaches a log line.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("token", &"[redacted]")
            .field("service_token", &self.service_token.as_ref().map(|_| "[redacted]"))
            .field("create_as_current", &self.create_as_current)
            .field("latency_ms", &self.latency_ms)
            .field("rate_limit", &self.rate_limit)
            .field("fault_5xx", &self.fault_5xx)
            .field("fault_drop", &self.fault_drop)
            .field("fault_seed", &self.fault_seed)
            .field("seeded", &self.seed.is_some())
            .finish()
    }
}

/// Request counters, as `GET /_emulator/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// API requests received (admin routes are not counted).
    pub total: u64,
    /// `METHOD route-pattern` → requests.
    pub by_route: BTreeMap<String, u64>,
    /// Answered 429.
    pub rate_limited: u64,
    /// Answered with an injected 5xx.
    pub server_errors: u64,
    /// Handled, then dropped without an answer.
    pub dropped: u64,
}

struct Window {
    start_ms: u64,
    count: u32,
    rejected: u32,
}

struct Shared {
    state: Mutex<State>,
    initial: State,
    config: ServerConfig,
    stats: Mutex<Stats>,
    windows: Mutex<BTreeMap<String, Window>>,
    rng: Mutex<SmallRng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here finishes its writes before anything can panic.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running server. Dropping it leaves the server running until the runtime ends; call [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the state.
    pub fn state(&self) -> State {
        lock(&self.shared.state).clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Stops accepting, closes every connection and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the server on `config.host:config.port` and returns once it listens.
pub async fn serve(config: ServerConfig) -> Result<RunningServer, EmulatorError> {
    for (name, p) in [("fault-5xx", config.fault_5xx), ("fault-drop", config.fault_drop)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(EmulatorError::Server {
                message: format!("--{name} must be a probability in [0, 1], not {p}"),
            });
        }
    }
    if config.rate_limit == Some(0) {
        return Err(EmulatorError::Server { message: "--rate-limit must be at least 1".to_owned() });
    }
    if config.service_token.as_deref().is_some_and(|t| t.is_empty() || t == config.token) {
        return Err(EmulatorError::Server {
            message: "--service-token must be non-empty and differ from --token".to_owned(),
        });
    }
    let state = match &config.seed {
        Some(seed) => State::from_seed(seed)?,
        None => State::from_seed(&Seed::default())?,
    };
    let state = configure(state, &config);
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr: addr.to_string(), source })?;
    let addr = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: addr.to_string(), source })?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state.clone()),
        initial: state,
        rng: Mutex::new(SmallRng::seed_from_u64(config.fault_seed)),
        config,
        stats: Mutex::new(Stats::default()),
        windows: Mutex::new(BTreeMap::new()),
    });
    let app = Router::new()
        .route("/_emulator/state", get(admin_state).put(admin_put_state))
        .route("/_emulator/stats", get(admin_stats))
        .route("/_emulator/reset", post(admin_reset))
        .fallback(api)
        // State documents of large benchmark accounts exceed axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
        .with_state(shared.clone());
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, app, stop_rx));
    Ok(RunningServer { addr, shared, stop: Some(stop_tx), task })
}

/// Applies what the server's flags decide over any state it serves: the tokens, and `--create-as-current`, which
/// a seed or state document can switch on but not off.
fn configure(state: State, config: &ServerConfig) -> State {
    let on = state.create_as_current() || config.create_as_current;
    let state = state.with_token(config.token.clone()).with_create_as_current(on);
    match &config.service_token {
        Some(t) => state.with_service_token(t.clone()),
        None => state,
    }
}

/// Lets a handler close its own connection with no answer.
#[derive(Clone)]
struct Killer(Arc<Notify>);

async fn accept_loop(listener: tokio::net::TcpListener, app: Router, mut stop: oneshot::Receiver<()>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of descriptors or a reset handshake: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let app = app.clone();
                connections.spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let killer = Killer(kill.clone());
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        req.extensions_mut().insert(killer.clone());
                        app.clone().oneshot(req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    // Dropping the connection future closes the socket before any byte of an answer is written.
                    tokio::select! {
                        _ = conn => {}
                        () = kill.notified() => {}
                    }
                });
            }
        }
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn to_http(resp: Response) -> AxResponse {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = match resp.body {
        Some(body) => {
            let mut r = (status, body.to_string()).into_response();
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        None => (status, Body::empty()).into_response(),
    };
    for (k, v) in resp.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

fn to_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Request {
    let query = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Request {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query,
        headers,
        body: if body.is_empty() { None } else { Some(body.to_vec()) },
    }
}

/// Counts a request against its route's window; `Err` carries the 429 headers.
fn rate_limit(shared: &Shared, key: &str) -> Result<BTreeMap<String, String>, BTreeMap<String, String>> {
    let Some(limit) = shared.config.rate_limit else { return Ok(BTreeMap::new()) };
    let now = now_ms();
    let mut windows = lock(&shared.windows);
    let w = windows.entry(key.to_owned()).or_insert(Window { start_ms: now, count: 0, rejected: 0 });
    if now >= w.start_ms + WINDOW_MS {
        *w = Window { start_ms: now, count: 0, rejected: 0 };
    }
    let reset = w.start_ms + WINDOW_MS;
    let mut headers = BTreeMap::new();
    headers.insert("x-ratelimit-reset".to_owned(), reset.to_string());
    if w.count >= limit {
        w.rejected += 1;
        headers.insert("x-ratelimit-route-remaining".to_owned(), "0".to_owned());
        // Only some 429s carry Retry-After (IP-based limits do, route limits may not): every other one here,
        // so clients are exercised on both forms.
        if w.rejected % 2 == 1 {
            headers.insert("retry-after".to_owned(), (reset - now).div_ceil(1_000).max(1).to_string());
        }
        return Err(headers);
    }
    w.count += 1;
    headers.insert("x-ratelimit-route-remaining".to_owned(), (limit - w.count).to_string());
    Ok(headers)
}

async fn api(
    AxState(shared): AxState<Arc<Shared>>,
    Extension(killer): Extension<Killer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxResponse {
    let req = to_request(&method, &uri, &headers, &body);
    let key = route_key(&req.method, &req.path);
    let seq = {
        let mut stats = lock(&shared.stats);
        stats.total += 1;
        *stats.by_route.entry(key.clone().unwrap_or_else(|| format!("{} (no route)", req.method))).or_insert(0) += 1;
        stats.total
    };
    if shared.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.config.latency_ms)).await;
    }
    let limit_headers = match key.as_deref().map(|k| rate_limit(&shared, k)) {
        Some(Err(headers)) => {
            lock(&shared.stats).rate_limited += 1;
            let mut r = Response::error(
                429,
                "rate_limited",
                "You've exceeded the API rate limit. Try again later.",
                &ids::uuid(&["rate-limited", &seq.to_string()]),
            );
            r.headers = headers;
            return to_http(r);
        }
        Some(Ok(h)) => h,
        None => BTreeMap::new(),
    };
    // Both draws happen on every request that passed the rate limit, so the fault sequence depends only on the
    // seed and the request order.
    let (fail, drop) = {
        let mut rng = lock(&shared.rng);
        let fail = rng.random::<f64>() < shared.config.fault_5xx;
        let drop = rng.random::<f64>() < shared.config.fault_drop;
        // Clients must treat every 5xx alike, so the injected status varies.
        (fail.then(|| rng.random_range(0..FAULTS.len())), drop)
    };
    if let (Some(i), Some(_)) = (fail, &key) {
        lock(&shared.stats).server_errors += 1;
        let (status, code) = FAULTS[i];
        return to_http(Response::error(
            status,
            code,
            "injected fault: the emulator failed the request without handling it",
            &ids::uuid(&["fault", &seq.to_string()]),
        ));
    }
    let mut resp = lock(&shared.state).handle(&req);
    if drop && key.is_some() {
        lock(&shared.stats).dropped += 1;
        killer.0.notify_one();
        // The accept loop drops this connection; this future is dropped with it.
        std::future::pending::<()>().await;
    }
    resp.headers.extend(limit_headers);
    to_http(resp)
}

/// Admin routes carry no auth, so they answer loopback clients only.
fn loopback_only(peer: SocketAddr) -> Option<AxResponse> {
    (!peer.ip().is_loopback())
        .then(|| to_http(Response::error(403, "forbidden", "admin routes answer loopback clients only", "admin")))
}

async fn admin_state(AxState(shared): AxState<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    let doc = lock(&shared.state).to_json();
    to_http(Response::json(200, doc))
}

async fn admin_put_state(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| State::from_json(&v).map_err(|e| e.to_string()));
    match parsed {
        Ok(state) => {
            let state = configure(state, &shared.config);
            let doc = state.to_json();
            *lock(&shared.state) = state;
            to_http(Response::json(200, doc))
        }
        Err(message) => to_http(Response::error(400, "invalid_request", message, "admin")),
    }
}

async fn admin_stats(AxState(shared): AxState<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    let stats = lock(&shared.stats).clone();
    to_http(Response::json(200, serde_json::to_value(stats).unwrap_or(Value::Null)))
}

async fn admin_reset(AxState(shared): AxState<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    *lock(&shared.state) = shared.initial.clone();
    lock(&shared.windows).clear();
    to_http(Response::json(200, json!({ "reset": true })))
}
