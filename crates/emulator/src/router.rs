//! Routing of API requests: path patterns, authentication, the `LD-API-Version` gate, and dispatch to the
//! handlers. [`State::handle`] is the synchronous core every transport goes through.

use std::collections::BTreeMap;

use ldexp_core::plan::PlannedRequest;
use ldexp_core::requests::is_beta_route;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::deviation::Deviation;
use crate::model::{Caller, MAINTAINER_ID, Project, State};
use crate::wire::{Fail, Outcome, Request, Response};
use crate::{catalog, experiments, flags, groups, holdouts, ids, layers, metrics, results};

/// The dated API version ldexp pins on flag and metric calls.
pub(crate) const DATED_API_VERSION: &str = "20240415";

/// An API route with its decoded path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Experiments { project: String, env: String },
    Experiment { project: String, env: String, key: String },
    Iterations { project: String, env: String, key: String },
    MetricResults { project: String, env: String, key: String, metric: String },
    GroupResults { project: String, env: String, key: String, group: String },
    ExperimentsAnyEnv { project: String },
    Settings { project: String },
    MetricGroups { project: String },
    MetricGroup { project: String, group: String },
    Flags { project: String },
    Flag { project: String, flag: String },
    LegacyResults { project: String, flag: String, env: String, metric: String },
    LegacyReset { project: String, flag: String, env: String, metric: String },
    Metrics { project: String },
    Metric { project: String, metric: String },
    Layers { project: String },
    Layer { project: String, layer: String },
    Holdouts { project: String, env: String },
    Holdout { project: String, env: String, key: String },
    HoldoutById { project: String, env: String, id: String },
    CallerIdentity,
}

impl Route {
    /// Matches a path (segments still percent-encoded).
    pub(crate) fn parse(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/api/v2/")?;
        let segs: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        if segs.iter().any(String::is_empty) {
            return None;
        }
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let o = |x: &str| x.to_owned();
        Some(match s.as_slice() {
            ["projects", p, "environments", e, "experiments"] => Route::Experiments { project: o(p), env: o(e) },
            ["projects", p, "environments", e, "experiments", k] => {
                Route::Experiment { project: o(p), env: o(e), key: o(k) }
            }
            ["projects", p, "environments", e, "experiments", k, "iterations"] => {
                Route::Iterations { project: o(p), env: o(e), key: o(k) }
            }
            ["projects", p, "environments", e, "experiments", k, "metrics", m, "results"] => {
                Route::MetricResults { project: o(p), env: o(e), key: o(k), metric: o(m) }
            }
            ["projects", p, "environments", e, "experiments", k, "metric-groups", g, "results"] => {
                Route::GroupResults { project: o(p), env: o(e), key: o(k), group: o(g) }
            }
            ["projects", p, "experiments"] => Route::ExperimentsAnyEnv { project: o(p) },
            ["projects", p, "experimentation-settings"] => Route::Settings { project: o(p) },
            ["projects", p, "metric-groups"] => Route::MetricGroups { project: o(p) },
            ["projects", p, "metric-groups", g] => Route::MetricGroup { project: o(p), group: o(g) },
            ["flags", p] => Route::Flags { project: o(p) },
            ["flags", p, f] => Route::Flag { project: o(p), flag: o(f) },
            ["flags", p, f, "experiments", e, m] => {
                Route::LegacyResults { project: o(p), flag: o(f), env: o(e), metric: o(m) }
            }
            ["flags", p, f, "experiments", e, m, "results"] => {
                Route::LegacyReset { project: o(p), flag: o(f), env: o(e), metric: o(m) }
            }
            ["metrics", p] => Route::Metrics { project: o(p) },
            ["metrics", p, m] => Route::Metric { project: o(p), metric: o(m) },
            ["projects", p, "layers"] => Route::Layers { project: o(p) },
            ["projects", p, "layers", l] => Route::Layer { project: o(p), layer: o(l) },
            ["projects", p, "environments", e, "holdouts"] => Route::Holdouts { project: o(p), env: o(e) },
            ["projects", p, "environments", e, "holdouts", k] => Route::Holdout { project: o(p), env: o(e), key: o(k) },
            ["projects", p, "environments", e, "holdouts", "id", h] => {
                Route::HoldoutById { project: o(p), env: o(e), id: o(h) }
            }
            ["caller-identity"] => Route::CallerIdentity,
            _ => return None,
        })
    }

    /// The OpenAPI path template: what rate limits and statistics are counted by.
    pub(crate) fn pattern(&self) -> &'static str {
        match self {
            Route::Experiments { .. } => "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments",
            Route::Experiment { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
            }
            Route::Iterations { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/iterations"
            }
            Route::MetricResults { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/metrics/{metricKey}/results"
            }
            Route::GroupResults { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/metric-groups/{metricGroupKey}/results"
            }
            Route::ExperimentsAnyEnv { .. } => "/api/v2/projects/{projectKey}/experiments",
            Route::Settings { .. } => "/api/v2/projects/{projectKey}/experimentation-settings",
            Route::MetricGroups { .. } => "/api/v2/projects/{projectKey}/metric-groups",
            Route::MetricGroup { .. } => "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}",
            Route::Flags { .. } => "/api/v2/flags/{projectKey}",
            Route::Flag { .. } => "/api/v2/flags/{projectKey}/{featureFlagKey}",
            Route::LegacyResults { .. } => {
                "/api/v2/flags/{projectKey}/{featureFlagKey}/experiments/{environmentKey}/{metricKey}"
            }
            Route::LegacyReset { .. } => {
                "/api/v2/flags/{projectKey}/{featureFlagKey}/experiments/{environmentKey}/{metricKey}/results"
            }
            Route::Metrics { .. } => "/api/v2/metrics/{projectKey}",
            Route::Metric { .. } => "/api/v2/metrics/{projectKey}/{metricKey}",
            Route::Layers { .. } => "/api/v2/projects/{projectKey}/layers",
            Route::Layer { .. } => "/api/v2/projects/{projectKey}/layers/{layerKey}",
            Route::Holdouts { .. } => "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts",
            Route::Holdout { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts/{holdoutKey}"
            }
            Route::HoldoutById { .. } => {
                "/api/v2/projects/{projectKey}/environments/{environmentKey}/holdouts/id/{holdoutId}"
            }
            Route::CallerIdentity => "/api/v2/caller-identity",
        }
    }

    /// The project the route is under; `None` for project-less routes such as caller-identity.
    fn project(&self) -> Option<&str> {
        match self {
            Route::Experiments { project, .. }
            | Route::Experiment { project, .. }
            | Route::Iterations { project, .. }
            | Route::MetricResults { project, .. }
            | Route::GroupResults { project, .. }
            | Route::ExperimentsAnyEnv { project }
            | Route::Settings { project }
            | Route::MetricGroups { project }
            | Route::MetricGroup { project, .. }
            | Route::Flags { project }
            | Route::Flag { project, .. }
            | Route::LegacyResults { project, .. }
            | Route::LegacyReset { project, .. }
            | Route::Metrics { project }
            | Route::Metric { project, .. }
            | Route::Layers { project }
            | Route::Layer { project, .. }
            | Route::Holdouts { project, .. }
            | Route::Holdout { project, .. }
            | Route::HoldoutById { project, .. } => Some(project),
            Route::CallerIdentity => None,
        }
    }

    /// Methods the contract defines on this route.
    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Experiments { .. } => &["GET", "POST"],
            Route::Experiment { .. } => &["GET", "PATCH"],
            Route::Iterations { .. } => &["POST"],
            Route::Settings { .. } => &["GET", "PUT"],
            Route::Metrics { .. } | Route::MetricGroups { .. } | Route::Layers { .. } | Route::Holdouts { .. } => {
                &["GET", "POST"]
            }
            Route::Layer { .. } => &["PATCH"],
            Route::Holdout { .. } => &["GET", "PATCH"],
            Route::Metric { .. } | Route::MetricGroup { .. } => &["GET", "PATCH", "DELETE"],
            Route::Flag { .. } => &["GET", "PATCH"],
            Route::LegacyReset { .. } => &["DELETE"],
            _ => &["GET"],
        }
    }
}

/// `METHOD pattern` for a request, e.g. `GET /api/v2/flags/{projectKey}/{featureFlagKey}`; `None` off the API.
pub(crate) fn route_key(method: &str, path: &str) -> Option<String> {
    Route::parse(path).map(|r| format!("{} {}", effective_method(method, None), r.pattern()))
}

pub(crate) fn effective_method(method: &str, override_header: Option<&str>) -> String {
    let m = method.to_ascii_uppercase();
    match override_header {
        // `X-HTTP-Method-Override` tunnels PATCH, PUT and DELETE through POST (contract §1).
        Some(o) if m == "POST" && matches!(o.to_ascii_uppercase().as_str(), "PATCH" | "PUT" | "DELETE") => {
            o.to_ascii_uppercase()
        }
        _ => m,
    }
}

/// Whether `req` only reads, so that [`State::read`] may answer it.
pub fn is_read(req: &Request) -> bool {
    effective_method(&req.method, req.header_value("x-http-method-override")) == "GET"
}

/// `req` with a query string left in its path merged into `query`, so callers may write either form.
fn with_query_merged(req: &Request) -> std::borrow::Cow<'_, Request> {
    let Some((path, q)) = req.path.split_once('?') else { return std::borrow::Cow::Borrowed(req) };
    let mut r = req.clone();
    r.path = path.to_owned();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        r.query.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    std::borrow::Cow::Owned(r)
}

/// Splits a comma-separated list, trimming and dropping empty parts.
pub(crate) fn csv(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

impl State {
    /// Handles one request: auth, the beta header, routing and the operation's semantics. Never sleeps or does I/O.
    pub fn handle(&mut self, req: &Request) -> Response {
        self.requests += 1;
        let id = ids::uuid(&["request", &self.requests.to_string()]);
        let req = with_query_merged(req);
        self.dispatch(&req).unwrap_or_else(|f| Response::error(f.status, f.code, f.message, &id))
    }

    /// [`State::handle`] for a request that [`is_read`]: it needs only a shared borrow, so a server can answer
    /// concurrent reads in parallel, as the live service does. `seq` numbers the answer's request id.
    pub fn read(&self, req: &Request, seq: u64) -> Response {
        let id = ids::uuid(&["read", &seq.to_string()]);
        let req = with_query_merged(req);
        self.admit(&req)
            .and_then(|(caller, route, method)| {
                if method == "GET" {
                    self.dispatch_read(caller, &method, route, &req)
                } else {
                    Err(Fail::method_not_allowed(format!("{method} is not a read")))
                }
            })
            .unwrap_or_else(|f| Response::error(f.status, f.code, f.message, &id))
    }

    /// Sends a planned request with a correct `Authorization`, `LD-API-Version` and `Content-Type`.
    pub fn handle_planned(&mut self, r: &PlannedRequest) -> Response {
        let req = self.planned_request(r);
        self.handle(&req)
    }

    /// The [`Request`] a correct client sends for `r`.
    pub(crate) fn planned_request(&self, r: &PlannedRequest) -> Request {
        let mut headers = BTreeMap::new();
        headers.insert("authorization".to_owned(), self.token().to_owned());
        let version = if is_beta_route(&r.path) { "beta" } else { DATED_API_VERSION };
        headers.insert("ld-api-version".to_owned(), version.to_owned());
        if let Some(ct) = &r.content_type {
            headers.insert("content-type".to_owned(), ct.clone());
        }
        Request {
            method: r.method.as_str().to_owned(),
            path: r.path.clone(),
            query: r.query.clone(),
            headers,
            body: r.body.as_ref().map(|b| b.to_string().into_bytes()),
        }
    }

    /// What every request passes before its operation: the token, the route, the project's permission, the beta
    /// header and the method.
    fn admit(&self, req: &Request) -> Outcome<(Caller, Route, String)> {
        let auth = req.header_value("authorization").unwrap_or_default();
        let Some(caller) = self.caller(auth).filter(|_| !auth.is_empty()) else {
            return Err(Fail { status: 401, code: "unauthorized", message: "Invalid access token".to_owned() });
        };
        let Some(route) = Route::parse(&req.path) else {
            return Err(Fail::not_found(format!("no API route matches {}", req.path)));
        };
        // LaunchDarkly answers 401, not 403, to a token whose role does not cover the project (contract §9.8).
        if let Some(project) = route.project().filter(|p| !self.may_access(auth, p)) {
            return Err(Fail {
                status: 401,
                code: "unauthorized",
                message: format!("the access token has no permission in project `{project}`"),
            });
        }
        let method = effective_method(&req.method, req.header_value("x-http-method-override"));
        if is_beta_route(&req.path) {
            // With several values LaunchDarkly reads the first one (contract §1).
            let first = req.header_value("ld-api-version").and_then(|v| v.split(',').next()).map(str::trim);
            let dated_accepted = self.differs(Deviation::DatedVersionOnExperiments) && first == Some(DATED_API_VERSION);
            if first != Some("beta") && !dated_accepted {
                return Err(Fail::forbidden(
                    "This resource is in beta: send the header LD-API-Version: beta with each call",
                ));
            }
        }
        if !route.methods().contains(&method.as_str()) {
            return Err(Fail::method_not_allowed(format!("{method} is not allowed on {}", route.pattern())));
        }
        Ok((caller, route, method))
    }

    fn dispatch(&mut self, req: &Request) -> Outcome<Response> {
        let (caller, route, method) = self.admit(req)?;
        let body = parse_body(req, &method)?;
        let ct = req.header_value("content-type").unwrap_or_default().to_ascii_lowercase();
        match (method.as_str(), route) {
            ("POST", Route::Experiments { project, env }) => {
                let body = need(body, "experiment")?;
                experiments::create(&mut self.data, caller, &project, &env, &body, &self.differ)
            }
            ("PATCH", Route::Experiment { project, env, key }) => {
                semantic_only(&ct)?;
                let body = need(body, "semantic patch")?;
                crate::instructions::patch(&mut self.data, &project, &env, &key, &body, &self.differ)
            }
            ("POST", Route::Iterations { project, env, key }) => {
                let body = need(body, "iteration")?;
                experiments::create_iteration(&mut self.data, &project, &env, &key, &body, &self.differ)
            }
            ("PATCH", Route::Flag { project, flag }) => {
                if ct.contains("domain-model=launchdarkly.semanticpatch") {
                    return Err(Fail::bad(
                        "flag semantic patch instructions are not supported by the emulator; send a JSON patch",
                    ));
                }
                flags::patch(&mut self.data, &project, &flag, &req.query, &need(body, "flag patch")?)
            }
            ("PUT", Route::Settings { project }) => {
                let body = need(body, "experimentation settings")?;
                let default_last = self.differs(Deviation::SettingsUnitsOrder);
                catalog::put_settings(&mut self.data, &project, &body, default_last)
            }
            ("DELETE", Route::LegacyReset { project, flag, env, metric }) => {
                results::reset_legacy(&mut self.data, &project, &flag, &env, &metric)
            }
            ("POST", Route::Metrics { project }) => {
                metrics::create(&mut self.data, caller, &project, &need(body, "metric")?)
            }
            ("PATCH", Route::Metric { project, metric }) => {
                json_patch_only(&ct, "patchMetric")?;
                metrics::patch(&mut self.data, &project, &metric, &need(body, "patch")?)
            }
            ("DELETE", Route::Metric { project, metric }) => metrics::delete(&mut self.data, &project, &metric),
            ("POST", Route::MetricGroups { project }) => {
                groups::create(&mut self.data, &project, &need(body, "metric group")?)
            }
            ("PATCH", Route::MetricGroup { project, group }) => {
                json_patch_only(&ct, "patchMetricGroup")?;
                groups::patch(&mut self.data, &project, &group, &need(body, "patch")?)
            }
            ("DELETE", Route::MetricGroup { project, group }) => groups::delete(&mut self.data, &project, &group),
            ("POST", Route::Layers { project }) => layers::create(&mut self.data, &project, &need(body, "layer")?),
            ("PATCH", Route::Layer { project, layer }) => {
                semantic_only(&ct)?;
                layers::patch(&mut self.data, &project, &layer, &need(body, "semantic patch")?)
            }
            ("POST", Route::Holdouts { project, env }) => {
                holdouts::create(&mut self.data, caller, &project, &env, &need(body, "holdout")?)
            }
            ("PATCH", Route::Holdout { project, env, key }) => {
                semantic_only(&ct)?;
                holdouts::patch(&mut self.data, &project, &env, &key, &need(body, "semantic patch")?)
            }
            (m, r) => self.dispatch_read(caller, m, r, req),
        }
    }

    fn dispatch_read(&self, caller: Caller, method: &str, route: Route, req: &Request) -> Outcome<Response> {
        match (method, route) {
            ("GET", Route::Experiments { project, env }) => experiments::list(
                self.project(&project)?,
                Some(&env),
                &req.path,
                &req.query,
                self.misreport_total_count(),
            ),
            ("GET", Route::ExperimentsAnyEnv { project }) => {
                experiments::list(self.project(&project)?, None, &req.path, &req.query, self.misreport_total_count())
            }
            ("GET", Route::Experiment { project, env, key }) => {
                experiments::get(self.project(&project)?, &env, &key, &req.query)
            }
            ("GET", Route::Flags { project }) => flags::list(self.project(&project)?, &req.path, &req.query),
            ("GET", Route::Flag { project, flag }) => flags::get(self.project(&project)?, &flag, &req.query),
            ("GET", Route::Metrics { project }) => metrics::list(self.project(&project)?, &req.query),
            ("GET", Route::Metric { project, metric }) => metrics::get(self.project(&project)?, &metric),
            ("GET", Route::MetricGroups { project }) => groups::list(self.project(&project)?, &req.query),
            ("GET", Route::MetricGroup { project, group }) => groups::get(self.project(&project)?, &group),
            ("GET", Route::Settings { project }) => {
                catalog::get_settings(self.project(&project)?, self.differs(Deviation::SettingsUnitsOrder))
            }
            ("GET", Route::MetricResults { project, env, key, metric }) => {
                results::metric(self.project(&project)?, &env, &key, &metric, &req.query)
            }
            ("GET", Route::GroupResults { project, env, key, group }) => {
                results::group(self.project(&project)?, &env, &key, &group, &req.query)
            }
            ("GET", Route::LegacyResults { project, flag, env, metric }) => {
                results::legacy(self.project(&project)?, &flag, &env, &metric)
            }
            ("GET", Route::Layers { project }) => layers::list(self.project(&project)?, &req.query),
            ("GET", Route::Holdouts { project, env }) => holdouts::list(&self.data, &project, &env, &req.query),
            ("GET", Route::Holdout { project, env, key }) => {
                holdouts::get(&self.data, &project, &env, &key, &req.query)
            }
            ("GET", Route::HoldoutById { project, env, id }) => holdouts::get_by_id(&self.data, &project, &env, &id),
            ("GET", Route::CallerIdentity) => {
                Ok(Response::json(200, caller_identity(caller, !self.differs(Deviation::CallerIdentity))))
            }
            (m, r) => Err(Fail::method_not_allowed(format!("{m} is not allowed on {}", r.pattern()))),
        }
    }

    fn project(&self, key: &str) -> Outcome<&Project> {
        self.data.projects.get(key).ok_or_else(|| Fail::not_found(format!("Unknown project key {key}")))
    }
}

/// `CallerIdentityRep` for the two tokens the emulator knows. Ids are fixed, so answers compare across runs.
/// Without `token_kind` (`--differ caller-identity`) it leaves out `tokenKind` and `serviceToken`, the fields that
/// tell whether creates need a `maintainerId` (contract §9.7).
fn caller_identity(caller: Caller, token_kind: bool) -> Value {
    let mut v = json!({
        "accountId": ids::object_id(&["account"]),
        "authKind": "token",
        "scopes": ["writer"],
    });
    match caller {
        Caller::Member => {
            v["tokenKind"] = json!("personal");
            v["serviceToken"] = json!(false);
            v["memberId"] = json!(MAINTAINER_ID);
            v["tokenName"] = json!("ldexp emulator personal token");
            v["tokenId"] = json!(ids::object_id(&["token", "member"]));
        }
        Caller::Service => {
            v["tokenKind"] = json!("service");
            v["serviceToken"] = json!(true);
            v["tokenName"] = json!("ldexp emulator service token");
            v["tokenId"] = json!(ids::object_id(&["token", "service"]));
        }
    }
    if !token_kind && let Some(o) = v.as_object_mut() {
        o.remove("tokenKind");
        o.remove("serviceToken");
    }
    v
}

fn parse_body(req: &Request, method: &str) -> Outcome<Option<Value>> {
    match &req.body {
        Some(b) if !b.is_empty() && method != "GET" && method != "DELETE" => serde_json::from_slice(b)
            .map(Some)
            .map_err(|e| Fail::bad(format!("the request body is not valid JSON: {e}"))),
        _ => Ok(None),
    }
}

/// Refuses a body not marked as semantic patch instructions where the contract declares only those: without the
/// marker LaunchDarkly reads the body as a JSON patch, which these operations do not take.
fn semantic_only(content_type: &str) -> Outcome<()> {
    if !content_type.contains("domain-model=launchdarkly.semanticpatch") {
        return Err(Fail::bad(
            "the body was read as a JSON patch: send Content-Type: application/json; \
             domain-model=launchdarkly.semanticpatch for semantic patch instructions",
        ));
    }
    Ok(())
}

/// Refuses semantic patch instructions where the contract declares only a JSON patch body.
fn json_patch_only(content_type: &str, operation: &str) -> Outcome<()> {
    if content_type.contains("domain-model=launchdarkly.semanticpatch") {
        return Err(Fail::bad(format!(
            "{operation} takes a JSON patch (RFC 6902), not semantic patch instructions; send Content-Type: \
             application/json"
        )));
    }
    Ok(())
}

fn need(body: Option<Value>, what: &str) -> Outcome<Value> {
    body.ok_or_else(|| Fail::bad(format!("a JSON {what} body is required")))
}

/// A non-negative integer query parameter.
pub(crate) fn query_u64(query: &BTreeMap<String, String>, name: &str, default: u64) -> Outcome<u64> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().map_err(|_| Fail::bad(format!("`{name}` must be a non-negative integer"))),
    }
}
