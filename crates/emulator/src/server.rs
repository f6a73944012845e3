//! The HTTP server: an axum router over [`State::read`] (reads, in parallel) and [`State::handle`] (writes), with
//! latency, rate limits and injected faults (see [`crate::limits`]), request statistics and a log of the latest
//! requests, and the loopback-only admin routes under `/_emulator/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, State as AxState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxResponse};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::deviation::Deviation;
use crate::limits::{self, FAULTS, Faults, Limits, Verdict, Windows};
use crate::model::{DEFAULT_TOKEN, State};
use crate::router::{effective_method, is_read, route_key};
use crate::wire::{Request, Response};
use crate::{EmulatorError, Seed, ids};

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
    /// Further accepted tokens, token → the projects they may act in; elsewhere they get 401 (contract §9.8).
    pub scoped_tokens: BTreeMap<String, BTreeSet<String>>,
    /// Creates answer the new iteration as a `not_started` `currentIteration`, whatever the seed or an admin
    /// state document says.
    pub create_as_current: bool,
    /// `total_count` of experiment lists that ask for archived experiments counts only the active ones (contract
    /// §9.10); items and `_links` stay truthful.
    pub misreport_total_count: bool,
    /// The least time every API answer takes, its handling included.
    pub latency_ms: u64,
    /// Requests per 10 s window per `METHOD route`; `None` is unlimited.
    pub rate_limit: Option<u32>,
    /// Requests per 10 s window across every API route (account-wide, contract §9.12); `None` is unlimited.
    pub rate_limit_global: Option<u32>,
    /// 429s carry no `X-Ratelimit-*` headers and no `Retry-After`.
    pub rate_limit_bare: bool,
    /// Probability of answering an API request with a 5xx without handling it.
    pub fault_5xx: f64,
    /// Probability of answering a POST or PATCH API request with 409 `optimistic_locking_error` without handling it.
    pub fault_409: f64,
    /// Probability of handling an API request, then closing the connection without an answer.
    pub fault_drop: f64,
    /// Seeds the fault draws.
    pub fault_seed: u64,
    /// Starting state; `None` is an empty account.
    pub seed: Option<Seed>,
    /// Service rules to break on purpose, for testing the probes of `ldexp conformance` only (`--differ`).
    pub differ: BTreeSet<Deviation>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: DEFAULT_TOKEN.to_owned(),
            service_token: None,
            scoped_tokens: BTreeMap::new(),
            create_as_current: false,
            misreport_total_count: false,
            latency_ms: 0,
            rate_limit: None,
            rate_limit_global: None,
            rate_limit_bare: false,
            fault_5xx: 0.0,
            fault_409: 0.0,
            fault_drop: 0.0,
            fault_seed: 0,
            seed: None,
            differ: BTreeSet::new(),
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
            // The projects only: the tokens themselves are secrets.
            .field("scoped_tokens", &self.scoped_tokens.values().collect::<Vec<_>>())
            .field("create_as_current", &self.create_as_current)
            .field("misreport_total_count", &self.misreport_total_count)
            .field("latency_ms", &self.latency_ms)
            .field("rate_limit", &self.rate_limit)
            .field("rate_limit_global", &self.rate_limit_global)
            .field("rate_limit_bare", &self.rate_limit_bare)
            .field("fault_5xx", &self.fault_5xx)
            .field("fault_409", &self.fault_409)
            .field("fault_drop", &self.fault_drop)
            .field("fault_seed", &self.fault_seed)
            .field("seeded", &self.seed.is_some())
            .field("differ", &self.differ)
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
    /// Answered 429, by either window.
    pub rate_limited: u64,
    /// Answered 429 because the account-wide window was used up (also counted in `rate_limited`).
    pub rate_limited_global: u64,
    /// Answered with an injected 5xx.
    pub server_errors: u64,
    /// Answered with an injected 409 `optimistic_locking_error`.
    pub conflicts: u64,
    /// Handled, then dropped without an answer.
    pub dropped: u64,
}

struct Shared {
    // Reads share the lock, as the live service answers concurrent reads in parallel; writes hold it alone.
    state: RwLock<State>,
    initial: State,
    config: ServerConfig,
    stats: Mutex<Stats>,
    requests: Mutex<RequestLog>,
    windows: Mutex<Windows>,
    rng: Mutex<SmallRng>,
}

/// How many API requests `GET /_emulator/requests` keeps: enough for any test's scenario, bounded for benchmarks
/// that send hundreds of thousands.
const REQUEST_LOG: usize = 1000;

/// One API request as `GET /_emulator/requests` shows it: method, path and decoded query. Headers are left out,
/// the token among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Logged {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
}

/// The latest API requests, oldest first.
#[derive(Debug, Default)]
struct RequestLog(std::collections::VecDeque<Logged>);

impl RequestLog {
    fn push(&mut self, req: &Request) {
        if self.0.len() == REQUEST_LOG {
            self.0.pop_front();
        }
        self.0.push_back(Logged { method: req.method.clone(), path: req.path.clone(), query: req.query.clone() });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here finishes its writes before anything can panic.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read_state(s: &RwLock<State>) -> RwLockReadGuard<'_, State> {
    s.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_state(s: &RwLock<State>) -> RwLockWriteGuard<'_, State> {
    // Handlers commit at the end, so a panic cannot leave the state half-written.
    s.write().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        read_state(&self.shared.state).clone()
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
    for (name, p) in
        [("fault-5xx", config.fault_5xx), ("fault-409", config.fault_409), ("fault-drop", config.fault_drop)]
    {
        if !(0.0..=1.0).contains(&p) {
            return Err(EmulatorError::Server {
                message: format!("--{name} must be a probability in [0, 1], not {p}"),
            });
        }
    }
    for (name, n) in [("rate-limit", config.rate_limit), ("rate-limit-global", config.rate_limit_global)] {
        if n == Some(0) {
            return Err(EmulatorError::Server { message: format!("--{name} must be at least 1") });
        }
    }
    if config.rate_limit_bare && config.rate_limit.is_none() && config.rate_limit_global.is_none() {
        return Err(EmulatorError::Server {
            message: "--rate-limit-bare needs --rate-limit or --rate-limit-global".to_owned(),
        });
    }
    if config.service_token.as_deref().is_some_and(|t| t.is_empty() || t == config.token) {
        return Err(EmulatorError::Server {
            message: "--service-token must be non-empty and differ from --token".to_owned(),
        });
    }
    check_scoped_tokens(&config)?;
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
        state: RwLock::new(state.clone()),
        initial: state,
        rng: Mutex::new(SmallRng::seed_from_u64(config.fault_seed)),
        config,
        stats: Mutex::new(Stats::default()),
        requests: Mutex::new(RequestLog::default()),
        windows: Mutex::new(Windows::default()),
    });
    let app = Router::new()
        .route("/_emulator/state", get(admin_state).put(admin_put_state))
        .route("/_emulator/stats", get(admin_stats))
        .route("/_emulator/requests", get(admin_requests))
        .route("/_emulator/reset", post(admin_reset))
        .fallback(api)
        // State documents of large benchmark accounts exceed axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
        .with_state(shared.clone());
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, app, stop_rx));
    Ok(RunningServer { addr, shared, stop: Some(stop_tx), task })
}

/// Refuses scoped tokens that are empty, collide with another token or name no project. The messages never
/// name the token itself.
fn check_scoped_tokens(config: &ServerConfig) -> Result<(), EmulatorError> {
    for (token, projects) in &config.scoped_tokens {
        if token.is_empty() || *token == config.token || config.service_token.as_ref() == Some(token) {
            return Err(EmulatorError::Server {
                message: "--scoped-token tokens must be non-empty and differ from --token and --service-token"
                    .to_owned(),
            });
        }
        if projects.is_empty() || projects.iter().any(String::is_empty) {
            return Err(EmulatorError::Server {
                message: "--scoped-token needs at least one project key, and no empty one".to_owned(),
            });
        }
    }
    Ok(())
}

/// Applies what the server's flags decide over any state it serves: the tokens, `--misreport-total-count`,
/// `--differ`, and `--create-as-current`, which a seed or state document can switch on but not off.
fn configure(state: State, config: &ServerConfig) -> State {
    let on = state.create_as_current() || config.create_as_current;
    let mut state = state
        .with_token(config.token.clone())
        .with_create_as_current(on)
        .with_misreport_total_count(config.misreport_total_count)
        .with_differ(config.differ.iter().copied());
    if let Some(t) = &config.service_token {
        state = state.with_service_token(t.clone());
    }
    for (token, projects) in &config.scoped_tokens {
        state = state.with_scoped_token(token.clone(), projects.iter().cloned());
    }
    state
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
            let mut r = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
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
    lock(&shared.requests).push(&req);
    // The latency is the time the service takes to answer, its own work included, so the request is handled at
    // once and its answer held until then: the emulator's CPU hides inside the latency as the service's does.
    let answer_at = tokio::time::Instant::now() + Duration::from_millis(shared.config.latency_ms);
    let resp = answer(&shared, &killer, req, key, seq).await;
    tokio::time::sleep_until(answer_at).await;
    resp
}

/// The answer to an API request: rate limits, injected faults, then [`State::read`] or [`State::handle`].
async fn answer(shared: &Shared, killer: &Killer, req: Request, key: Option<String>, seq: u64) -> AxResponse {
    let c = &shared.config;
    let limits = Limits {
        route: c.rate_limit,
        global: c.rate_limit_global,
        bare: c.rate_limit_bare,
        global_header: !c.differ.contains(&Deviation::RateLimitHeaders),
    };
    let verdict = key.as_deref().map(|k| limits::check(limits, &mut lock(&shared.windows), k, now_ms()));
    let limit_headers = match verdict {
        Some(Verdict::Refused { headers, message, global }) => {
            {
                let mut stats = lock(&shared.stats);
                stats.rate_limited += 1;
                stats.rate_limited_global += u64::from(global);
            }
            let mut r = Response::error(429, "rate_limited", message, &ids::uuid(&["rate-limited", &seq.to_string()]));
            r.headers = headers;
            return to_http(r);
        }
        Some(Verdict::Pass(h)) => h,
        None => BTreeMap::new(),
    };
    let faults = Faults { server_error: c.fault_5xx, conflict: c.fault_409, drop: c.fault_drop };
    let draw = limits::draw(&mut lock(&shared.rng), faults);
    if let (Some(i), Some(_)) = (draw.server_error, &key) {
        lock(&shared.stats).server_errors += 1;
        let (status, code) = FAULTS[i];
        let mut r = Response::error(
            status,
            code,
            "injected fault: the emulator failed the request without handling it",
            &ids::uuid(&["fault", &seq.to_string()]),
        );
        // The windows counted the request, so its answer reports them like any other.
        r.headers = limit_headers;
        return to_http(r);
    }
    let write =
        matches!(effective_method(&req.method, req.header_value("x-http-method-override")).as_str(), "POST" | "PATCH");
    if draw.conflict && write && key.is_some() {
        lock(&shared.stats).conflicts += 1;
        let mut r = Response::error(
            409,
            "optimistic_locking_error",
            "injected fault: Conflict. Optimistic lock error. Try again later. (The emulator did not handle the \
             request.)",
            &ids::uuid(&["conflict", &seq.to_string()]),
        );
        r.headers = limit_headers;
        return to_http(r);
    }
    let mut resp =
        if is_read(&req) { read_state(&shared.state).read(&req, seq) } else { write_state(&shared.state).handle(&req) };
    if draw.drop && key.is_some() {
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
    let doc = read_state(&shared.state).to_json();
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
            *write_state(&shared.state) = state;
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

async fn admin_requests(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    let requests: Vec<Logged> = lock(&shared.requests).0.iter().cloned().collect();
    to_http(Response::json(200, json!({ "requests": requests })))
}

async fn admin_reset(AxState(shared): AxState<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> AxResponse {
    if let Some(r) = loopback_only(peer) {
        return r;
    }
    *write_state(&shared.state) = shared.initial.clone();
    *lock(&shared.windows) = Windows::default();
    to_http(Response::json(200, json!({ "reset": true })))
}
