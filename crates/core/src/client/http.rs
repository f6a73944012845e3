//! `HttpClient`: the reqwest [`Transport`], with headers, retries, the adaptive concurrency limit, per-route rate
//! limit gates and timeouts. Decoding, error mapping and pagination are the shared ones (`super::rest`).

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

use super::config::ClientConfig;
use super::gate::{RouteGates, route_key};
use super::retry::{AdaptiveLimit, backoff, rate_limit_delay, told_wait};
use super::{AccessToken, Answer, RateLimitSeen, Transport};
use crate::Error;
use crate::plan::{Method, PlannedRequest};
use crate::requests::is_beta_route;

const LD_API_VERSION: HeaderName = HeaderName::from_static("ld-api-version");
const RATELIMIT_RESET: &str = "x-ratelimit-reset";
/// Requests left in the account-wide window (contract §1, §9.12).
const RATELIMIT_GLOBAL_REMAINING: &str = "x-ratelimit-global-remaining";
/// Requests left in the route's own window.
const RATELIMIT_ROUTE_REMAINING: &str = "x-ratelimit-route-remaining";
/// Added to a wait the server names, so a retry does not land a hair before the window resets.
const TOLD_WAIT_MARGIN: Duration = Duration::from_millis(10);

/// The LaunchDarkly REST client. Cheap to clone; clones share the connection pool and the concurrency limit.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    auth: HeaderValue,
    api_version: HeaderValue,
    api_version_beta: HeaderValue,
    limit: AdaptiveLimit,
    gates: RouteGates,
    sent: AtomicU64,
    /// Answers received, and those carrying the route's, the account's and the reset header.
    headers_seen: [AtomicU64; 4],
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .field("concurrency_limit", &self.inner.limit.limit())
            .finish_non_exhaustive()
    }
}

/// The request as the retry loop needs it.
struct Call<'a> {
    method: Method,
    /// The API path (`/api/v2/…`), for errors, logs and the `LD-API-Version` class.
    path: &'a str,
    url: Url,
    /// Set exactly when there is a body.
    content_type: Option<HeaderValue>,
    body: Option<Vec<u8>>,
    resource: &'a str,
}

impl HttpClient {
    /// Builds a client; fails only on an unusable token or TLS setup.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let mut auth = HeaderValue::from_str(config.token.expose())
            .map_err(|_| Error::config("the access token cannot be sent as an HTTP header", None))?;
        // Keeps the value out of hyper's and h2's debug output and out of HPACK tables.
        auth.set_sensitive(true);
        let version = |v: &str, flag: &str| {
            HeaderValue::from_str(v).ok().filter(|_| !v.trim().is_empty()).ok_or_else(|| {
                Error::config(format!("{v:?} is not a valid LD-API-Version value"), Some(format!("check {flag}")))
            })
        };
        let api_version = version(&config.api_version, "--api-version")?;
        let api_version_beta = version(&config.api_version_beta, "--api-version-beta")?;
        let loopback = config.base_url.join("/").is_ok_and(|u| {
            matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // Never follow a redirect: the token must go only where the user pointed it.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.concurrency.max(1));
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| Error::config(format!("cannot build the HTTP client: {e}"), None))?;
        let limit = AdaptiveLimit::new(config.concurrency);
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                config,
                auth,
                api_version,
                api_version_beta,
                limit,
                gates: RouteGates::default(),
                sent: AtomicU64::new(0),
                headers_seen: Default::default(),
            }),
        })
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// The adaptive concurrency limit right now (between 1 and `config().concurrency`).
    pub fn concurrency_limit(&self) -> usize {
        self.inner.limit.limit()
    }

    /// The retry loop.
    async fn run(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let policy = &inner.config.retry;
        // Safe to repeat after an unknown outcome. POST and PATCH are not: a lost answer must be resolved by
        // re-reading (the applier does), never by sending again.
        let idempotent = matches!(call.method, Method::Get | Method::Put | Method::Delete);
        // One gate per route (verb + URL pattern, the unit LaunchDarkly limits): after a 429 it holds every
        // request to the route until the window resets, then lets them through oldest ticket first, so a request
        // that was refused is not overtaken by newcomers at the next reset.
        let gate = inner.gates.gate(&route_key(call.method, call.path));
        let ticket = inner.gates.ticket();
        let mut rate_limited_since: Option<Instant> = None;
        let mut attempt: u32 = 0;
        // Attempts that timed out: a silent server must not hold a read for every retry's full timeout.
        let mut timeouts: u32 = 0;
        loop {
            let can_retry = attempt < policy.max_retries;
            let slot = gate.admit(ticket, rate_limited_since.is_some(), &inner.limit).await;
            let started = Instant::now();
            inner.sent.fetch_add(1, Ordering::Relaxed);
            let result = self.build(call).send().await;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    drop(slot);
                    let reason = describe(&e);
                    tracing::debug!(method = %call.method, path = call.path, attempt, error = %reason, "request failed");
                    timeouts += u32::from(e.is_timeout());
                    // A connect error means nothing was sent, so even a POST may go again.
                    let unsent_or_safe = idempotent || e.is_connect();
                    if can_retry && unsent_or_safe && timeouts <= policy.max_timeout_retries {
                        self.sleep_backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(if !unsent_or_safe {
                        self.outcome_unknown(call, reason)
                    } else if e.is_timeout() {
                        self.timeout_error(call, e.is_connect(), attempt + 1)
                    } else {
                        Error::Transport {
                            resource: call.resource.to_owned(),
                            url: format!("{}{}", inner.config.base_url, call.path),
                            reason,
                        }
                    });
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            self.count_headers(&headers);
            // 429 means not processed, so every method may go again. A wait the server names is bounded by the
            // total time this request has been rate-limited (a long line drains window by window; a stuck route
            // still fails); a guessed wait (no usable header) also counts against max_retries.
            let rate_limited = (status == 429).then(|| {
                let retry_after = header_str(&headers, RETRY_AFTER.as_str());
                let reset = header_str(&headers, RATELIMIT_RESET);
                let (delay, guessed) = match told_wait(retry_after, reset, now_ms()) {
                    Some(wait) => (wait + TOLD_WAIT_MARGIN, false),
                    None => {
                        let mut rng = rand::rng();
                        (rate_limit_delay(retry_after, reset, now_ms(), attempt, policy, &mut rng), true)
                    }
                };
                if delay <= policy.max_rate_limit_wait {
                    // Closed before this slot is released, so no request slips into the spent window through it.
                    gate.close_for(delay);
                    if is_global_refusal(&headers) {
                        // The account's window is spent: any route would be refused too, so all of them wait.
                        tracing::debug!(
                            method = %call.method,
                            path = call.path,
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "global rate limit; holding every route"
                        );
                        inner.gates.close_all_for(delay);
                    }
                }
                (delay, guessed)
            });
            if status != 429 {
                self.note_global_window(&headers);
            }
            let body = response.bytes().await;
            drop(slot);
            tracing::debug!(
                method = %call.method,
                path = call.path,
                status,
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                attempt,
                "request"
            );
            let body = match body {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    let reason = format!("HTTP {status}, then the response body failed: {}", describe(&e));
                    timeouts += u32::from(e.is_timeout());
                    if idempotent && can_retry && timeouts <= policy.max_timeout_retries {
                        self.sleep_backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    if !idempotent && !(400..500).contains(&status) {
                        return Err(self.outcome_unknown(call, reason));
                    }
                    if idempotent && (200..300).contains(&status) && e.is_timeout() {
                        return Err(self.timeout_error(call, false, attempt + 1));
                    }
                    if idempotent && (200..300).contains(&status) {
                        return Err(Error::Transport {
                            resource: call.resource.to_owned(),
                            url: format!("{}{}", inner.config.base_url, call.path),
                            reason,
                        });
                    }
                    Vec::new()
                }
            };
            if let Some((delay, guessed)) = rate_limited {
                inner.limit.on_rate_limited();
                let since = *rate_limited_since.get_or_insert_with(Instant::now);
                let within = delay <= policy.max_rate_limit_wait
                    && since.elapsed().saturating_add(delay) <= policy.max_rate_limit_wait;
                if within && (can_retry || !guessed) {
                    tracing::debug!(
                        method = %call.method,
                        path = call.path,
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "rate limited; holding the route"
                    );
                    if guessed {
                        attempt += 1;
                    }
                    continue;
                }
                return Ok(Answer { status, body });
            }
            if status >= 500 {
                if idempotent && can_retry {
                    self.sleep_backoff(attempt).await;
                    attempt += 1;
                    continue;
                }
                if !idempotent {
                    return Err(self.outcome_unknown(call, format!("HTTP {status}")));
                }
                return Ok(Answer { status, body });
            }
            inner.limit.on_success();
            return Ok(Answer { status, body });
        }
    }

    fn count_headers(&self, headers: &HeaderMap) {
        let seen = &self.inner.headers_seen;
        seen[0].fetch_add(1, Ordering::Relaxed);
        for (i, name) in
            [RATELIMIT_ROUTE_REMAINING, RATELIMIT_GLOBAL_REMAINING, RATELIMIT_RESET].into_iter().enumerate()
        {
            if headers.contains_key(name) {
                seen[i + 1].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// An answer (not a 429) saying the account-wide window has no request left: every route waits for its reset
    /// now, rather than each sending into the spent window and being refused. Ignored without a future reset
    /// or when the reset is further off than a 429 would be waited for.
    fn note_global_window(&self, headers: &HeaderMap) {
        let spent =
            header_str(headers, RATELIMIT_GLOBAL_REMAINING).and_then(|v| v.trim().parse::<u64>().ok()) == Some(0);
        if !spent {
            return;
        }
        let Some(wait) = told_wait(None, header_str(headers, RATELIMIT_RESET), now_ms()) else { return };
        let wait = wait + TOLD_WAIT_MARGIN;
        if wait <= self.inner.config.retry.max_rate_limit_wait {
            tracing::debug!(delay_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "global window spent");
            self.inner.gates.close_all_for(wait);
        }
    }

    fn build(&self, call: &Call<'_>) -> reqwest::RequestBuilder {
        let inner = &*self.inner;
        let version = if is_beta_route(call.path) { &inner.api_version_beta } else { &inner.api_version };
        let method = match call.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, inner.auth.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(LD_API_VERSION, version.clone());
        if let Some(ct) = &call.content_type {
            headers.insert(CONTENT_TYPE, ct.clone());
        }
        let rb = inner.http.request(method, call.url.clone()).headers(headers);
        match &call.body {
            Some(body) => rb.body(body.clone()),
            None => rb,
        }
    }

    async fn sleep_backoff(&self, attempt: u32) {
        let delay = {
            let mut rng = rand::rng();
            backoff(attempt, &self.inner.config.retry, &mut rng)
        };
        tokio::time::sleep(delay).await;
    }

    /// A read (or an unsent write) that ran out of time on its last allowed attempt.
    fn timeout_error(&self, call: &Call<'_>, connecting: bool, attempts: u32) -> Error {
        let config = &self.inner.config;
        let waited = if connecting {
            format!("no connection within {} (--connect-timeout)", seconds(config.connect_timeout))
        } else {
            format!("no answer within {} (--timeout)", seconds(config.timeout))
        };
        Error::Timeout {
            resource: call.resource.to_owned(),
            method: call.method.as_str().to_owned(),
            url: format!("{}{}", config.base_url, call.path),
            waited,
            attempts,
        }
    }

    fn outcome_unknown(&self, call: &Call<'_>, reason: String) -> Error {
        Error::OutcomeUnknown {
            resource: call.resource.to_owned(),
            method: call.method.as_str().to_owned(),
            path: call.path.to_owned(),
            reason,
        }
    }

    /// Resolves a `_links.next` href against the base URL, refusing other origins (the token must not follow).
    fn resolve_next(&self, href: &str, resource: &str) -> Result<(String, Option<String>), Error> {
        let base = &self.inner.config.base_url;
        let root = base.join("/")?;
        let resolved = root.join(href).map_err(|e| Error::Decode {
            resource: resource.to_owned(),
            reason: format!("bad _links.next `{href}`: {e}"),
        })?;
        if !base.same_origin(&resolved) {
            return Err(Error::Decode {
                resource: resource.to_owned(),
                reason: format!("_links.next points to another host ({href}); not following it with the token"),
            });
        }
        Ok((resolved.path().to_owned(), resolved.query().map(str::to_owned)))
    }
}

/// `1 s`, `0.25 s`, `90 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{} s", d.as_secs()) } else { format!("{} s", d.as_secs_f64()) }
}

/// Whether a 429 is the account-wide limit (contract §9.12) rather than the route's. It is when it carries
/// `X-Ratelimit-Global-Remaining`, unless the answer itself shows the route spent while the account still has
/// room (`X-Ratelimit-Route-Remaining: 0` with a positive global count): that refusal is the route's alone.
fn is_global_refusal(headers: &HeaderMap) -> bool {
    let Some(global) = header_str(headers, RATELIMIT_GLOBAL_REMAINING) else { return false };
    let count = |v: &str| v.trim().parse::<u64>().ok();
    match count(global) {
        Some(0) => true,
        Some(_) => header_str(headers, RATELIMIT_ROUTE_REMAINING).and_then(count) != Some(0),
        // Present but unreadable: holding every route is the safe reading.
        None => true,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A reqwest error with its causes, without the URL (logged separately) and never with headers.
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_body() || e.is_decode() {
        "response body failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

impl Transport for HttpClient {
    /// Sends one planned request and returns the final answer (retries done). Error statuses are answers too.
    async fn execute(&self, req: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        let mut url = self.inner.config.base_url.join(&req.path)?;
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        let body = match &req.body {
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| Error::Decode {
                resource: resource.to_owned(),
                reason: format!("cannot encode the request body: {e}"),
            })?),
            None => None,
        };
        let content_type = match &body {
            None => None,
            Some(_) => {
                let ct = req.content_type.as_deref().unwrap_or(crate::plan::CONTENT_TYPE_JSON);
                Some(HeaderValue::from_str(ct).map_err(|_| {
                    Error::config(format!("{resource}: the planned request has an invalid content type `{ct}`"), None)
                })?)
            }
        };
        let call = Call { method: req.method, path: &req.path, url, content_type, body, resource };
        self.run(&call).await
    }

    /// Follows an href on the base URL's origin only: the token must not go to another host.
    async fn follow(&self, href: &str, resource: &str) -> Result<Answer, Error> {
        let (path, query) = self.resolve_next(href, resource)?;
        let mut url = self.inner.config.base_url.join(&path)?;
        url.set_query(query.as_deref());
        let call = Call { method: Method::Get, path: &path, url, content_type: None, body: None, resource };
        self.run(&call).await
    }

    fn token(&self) -> Option<&AccessToken> {
        Some(&self.inner.config.token)
    }

    fn rate_limit_seen(&self) -> Option<RateLimitSeen> {
        let n = |i: usize| self.inner.headers_seen[i].load(Ordering::Relaxed);
        Some(RateLimitSeen { answers: n(0), route: n(1), global: n(2), reset: n(3) })
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
