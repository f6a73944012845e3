//! Pure builders for every REST call ldexp makes: method, path, query and body as data, no I/O.
//!
//! The planner embeds write requests in the plan; the client executes reads and writes alike. Keeping
//! them here means one place decides paths, query strings and content types.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::api::{ExperimentPatch, ExperimentPost, ExperimentationSettingsPut, IterationInput, PatchWithComment};
use crate::plan::{CONTENT_TYPE_JSON, CONTENT_TYPE_SEMANTIC_PATCH, Method, PlannedRequest};

/// `expand` for experiment reads: without it treatments and secondary metrics are missing (quirk 7).
pub const EXPERIMENT_EXPAND: &str = "draftIteration,previousIterations,treatments,secondaryMetrics,analysisConfig";
/// Experiment lists include archived experiments so an archived spec is not re-created.
pub const LIFECYCLE_ALL: &str = "active,archived";
/// Page size for experiment lists.
pub const EXPERIMENT_PAGE: u64 = 50;
/// The metrics list caps `limit` at 50 (quirk 9).
pub const METRIC_PAGE: u64 = 50;
/// Page size for the flag list: its maximum is undocumented, and 50 is what the capped lists allow.
pub const FLAG_PAGE: u64 = 50;
/// Page size for the flag list with one environment's configuration, which a plan may read instead of one GET per
/// flag (the emulator allows 1–100; a service that caps it lower still leads on with `_links.next`).
pub const FLAG_ENV_PAGE: u64 = 100;

/// Percent-encodes one path segment. LaunchDarkly keys are `[A-Za-z0-9._-]`, but a spec may still carry anything.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn pe(project: &str, env: &str) -> String {
    format!("/api/v2/projects/{}/environments/{}", segment(project), segment(env))
}

fn req(method: Method, path: String) -> PlannedRequest {
    PlannedRequest {
        method,
        path,
        query: BTreeMap::new(),
        content_type: None,
        body: None,
        expect: Vec::new(),
        bind: Vec::new(),
        object: None,
    }
}

fn with_body<T: Serialize>(mut r: PlannedRequest, content_type: &str, body: &T) -> PlannedRequest {
    r.content_type = Some(content_type.to_owned());
    r.body = Some(serde_json::to_value(body).unwrap_or(Value::Null));
    r
}

fn q(mut r: PlannedRequest, pairs: &[(&str, String)]) -> PlannedRequest {
    for (k, v) in pairs {
        r.query.insert((*k).to_owned(), v.clone());
    }
    r
}

/// `getExperiments`: one page.
pub fn list_experiments(project: &str, env: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("{}/experiments", pe(project, env))),
        &[
            ("limit", EXPERIMENT_PAGE.to_string()),
            ("offset", offset.to_string()),
            ("expand", EXPERIMENT_EXPAND.to_owned()),
            ("lifecycleState", LIFECYCLE_ALL.to_owned()),
        ],
    )
}

/// `getExperimentsAnyEnv`: one page across environments.
pub fn list_experiments_any_env(project: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("/api/v2/projects/{}/experiments", segment(project))),
        &[
            ("limit", EXPERIMENT_PAGE.to_string()),
            ("offset", offset.to_string()),
            ("expand", EXPERIMENT_EXPAND.to_owned()),
            ("lifecycleState", LIFECYCLE_ALL.to_owned()),
        ],
    )
}

/// `expand` for a listing (`ldexp list experiments`): the draft gives the status and flags of an experiment never
/// started, the previous iterations their count; treatments and metrics are not shown.
pub const LIST_EXPAND: &str = "draftIteration,previousIterations";

/// `getExperiments` in `env`, or `getExperimentsAnyEnv` without one: one page of the experiments that LaunchDarkly
/// selects with `filter`'s `filter` and `lifecycleState` query parameters.
pub fn list_experiments_where(
    project: &str,
    env: Option<&str>,
    filter: &crate::views::ExperimentFilter,
    offset: u64,
) -> PlannedRequest {
    let path = match env {
        Some(env) => format!("{}/experiments", pe(project, env)),
        None => format!("/api/v2/projects/{}/experiments", segment(project)),
    };
    let mut pairs = vec![
        ("limit", EXPERIMENT_PAGE.to_string()),
        ("offset", offset.to_string()),
        ("expand", LIST_EXPAND.to_owned()),
        ("lifecycleState", filter.lifecycle_state().to_owned()),
    ];
    if let Some(f) = filter.filter_param() {
        pairs.push(("filter", f));
    }
    q(req(Method::Get, path), &pairs)
}

/// `getExperiment`.
pub fn get_experiment(project: &str, env: &str, key: &str) -> PlannedRequest {
    q(
        req(Method::Get, format!("{}/experiments/{}", pe(project, env), segment(key))),
        &[("expand", EXPERIMENT_EXPAND.to_owned())],
    )
}

/// `createExperiment`.
pub fn create_experiment(project: &str, env: &str, body: &ExperimentPost) -> PlannedRequest {
    with_body(req(Method::Post, format!("{}/experiments", pe(project, env))), CONTENT_TYPE_JSON, body)
}

/// `patchExperiment` (semantic patch).
pub fn patch_experiment(project: &str, env: &str, key: &str, body: &ExperimentPatch) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("{}/experiments/{}", pe(project, env), segment(key))),
        CONTENT_TYPE_SEMANTIC_PATCH,
        body,
    )
}

/// `createIteration`.
pub fn create_iteration(project: &str, env: &str, key: &str, body: &IterationInput) -> PlannedRequest {
    with_body(
        req(Method::Post, format!("{}/experiments/{}/iterations", pe(project, env), segment(key))),
        CONTENT_TYPE_JSON,
        body,
    )
}

/// `getFeatureFlag` (all environments).
pub fn get_flag(project: &str, flag: &str) -> PlannedRequest {
    req(Method::Get, format!("/api/v2/flags/{}/{}", segment(project), segment(flag)))
}

/// `getFeatureFlags` with `env` and `summary=false`: one page of whole flags, each with `env`'s configuration
/// (rules, targets, prerequisites). `summary` is a boolean in the contract, so `false`, not the `0` of its prose.
pub fn list_flags_in_env(project: &str, env: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("/api/v2/flags/{}", segment(project))),
        &[
            ("limit", FLAG_ENV_PAGE.to_string()),
            ("offset", offset.to_string()),
            ("env", env.to_owned()),
            ("summary", "false".to_owned()),
        ],
    )
}

/// `getFeatureFlags`: one page of the project's flags. Without `env` the flags carry no environments, which is all
/// a reader of their `experiments` (legacy experiments are flag-wide) needs; archived flags are not listed.
pub fn list_flags(project: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("/api/v2/flags/{}", segment(project))),
        &[("limit", FLAG_PAGE.to_string()), ("offset", offset.to_string())],
    )
}

/// `patchFeatureFlag` with a JSON patch in the `{comment, patch}` form.
pub fn patch_flag(project: &str, flag: &str, body: &PatchWithComment) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("/api/v2/flags/{}/{}", segment(project), segment(flag))),
        CONTENT_TYPE_JSON,
        body,
    )
}

/// `getMetrics`: one page.
pub fn list_metrics(project: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("/api/v2/metrics/{}", segment(project))),
        &[("limit", METRIC_PAGE.to_string()), ("offset", offset.to_string())],
    )
}

/// `getMetric`.
pub fn get_metric(project: &str, key: &str) -> PlannedRequest {
    req(Method::Get, format!("/api/v2/metrics/{}/{}", segment(project), segment(key)))
}

/// `getMetricGroups`: one page.
pub fn list_metric_groups(project: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("/api/v2/projects/{}/metric-groups", segment(project))),
        &[("limit", METRIC_PAGE.to_string()), ("offset", offset.to_string())],
    )
}

/// `getMetricGroup`.
pub fn get_metric_group(project: &str, key: &str) -> PlannedRequest {
    req(Method::Get, format!("/api/v2/projects/{}/metric-groups/{}", segment(project), segment(key)))
}

/// `getExperimentationSettings`.
pub fn get_settings(project: &str) -> PlannedRequest {
    req(Method::Get, format!("/api/v2/projects/{}/experimentation-settings", segment(project)))
}

/// `postMetric`: `body` is a `MetricPost`.
pub fn post_metric(project: &str, body: &Value) -> PlannedRequest {
    with_body(req(Method::Post, format!("/api/v2/metrics/{}", segment(project))), CONTENT_TYPE_JSON, body)
}

/// `patchMetric`: `ops` is an RFC 6902 JSON patch.
pub fn patch_metric(project: &str, key: &str, ops: &Value) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("/api/v2/metrics/{}/{}", segment(project), segment(key))),
        CONTENT_TYPE_JSON,
        ops,
    )
}

/// `deleteMetric`.
pub fn delete_metric(project: &str, key: &str) -> PlannedRequest {
    req(Method::Delete, format!("/api/v2/metrics/{}/{}", segment(project), segment(key)))
}

/// `createMetricGroup` (beta): `body` is a `MetricGroupPost`.
pub fn create_metric_group(project: &str, body: &Value) -> PlannedRequest {
    with_body(
        req(Method::Post, format!("/api/v2/projects/{}/metric-groups", segment(project))),
        CONTENT_TYPE_JSON,
        body,
    )
}

/// `patchMetricGroup` (beta): `ops` is an RFC 6902 JSON patch.
pub fn patch_metric_group(project: &str, key: &str, ops: &Value) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("/api/v2/projects/{}/metric-groups/{}", segment(project), segment(key))),
        CONTENT_TYPE_JSON,
        ops,
    )
}

/// `deleteMetricGroup` (beta).
pub fn delete_metric_group(project: &str, key: &str) -> PlannedRequest {
    req(Method::Delete, format!("/api/v2/projects/{}/metric-groups/{}", segment(project), segment(key)))
}

/// `getCallerIdentity`: which kind of token the request carries.
pub fn caller_identity() -> PlannedRequest {
    req(Method::Get, "/api/v2/caller-identity".to_owned())
}

/// `putExperimentationSettings`.
pub fn put_settings(project: &str, body: &ExperimentationSettingsPut) -> PlannedRequest {
    with_body(
        req(Method::Put, format!("/api/v2/projects/{}/experimentation-settings", segment(project))),
        CONTENT_TYPE_JSON,
        body,
    )
}

/// `getExperimentResults`.
pub fn experiment_results(
    project: &str,
    env: &str,
    key: &str,
    metric: &str,
    iteration_id: Option<&str>,
) -> PlannedRequest {
    let mut r = req(
        Method::Get,
        format!("{}/experiments/{}/metrics/{}/results", pe(project, env), segment(key), segment(metric)),
    );
    if let Some(id) = iteration_id {
        r.query.insert("iterationId".into(), id.to_owned());
    }
    r
}

/// `getExperimentResultsForMetricGroup`.
pub fn metric_group_results(
    project: &str,
    env: &str,
    key: &str,
    group: &str,
    iteration_id: Option<&str>,
) -> PlannedRequest {
    let mut r = req(
        Method::Get,
        format!("{}/experiments/{}/metric-groups/{}/results", pe(project, env), segment(key), segment(group)),
    );
    if let Some(id) = iteration_id {
        r.query.insert("iterationId".into(), id.to_owned());
    }
    r
}

/// `getLegacyExperimentResults`.
pub fn legacy_results(project: &str, flag: &str, env: &str, metric: &str) -> PlannedRequest {
    req(
        Method::Get,
        format!(
            "/api/v2/flags/{}/{}/experiments/{}/{}",
            segment(project),
            segment(flag),
            segment(env),
            segment(metric)
        ),
    )
}

/// `resetExperiment` (legacy results reset).
pub fn reset_legacy_results(project: &str, flag: &str, env: &str, metric: &str) -> PlannedRequest {
    req(
        Method::Delete,
        format!(
            "/api/v2/flags/{}/{}/experiments/{}/{}/results",
            segment(project),
            segment(flag),
            segment(env),
            segment(metric)
        ),
    )
}

/// Page size for holdout lists.
pub const HOLDOUT_PAGE: u64 = 50;

/// `getLayers`: every layer of the project with its reservations in each environment (the operation takes no
/// `limit`; the answer is one page).
pub fn list_layers(project: &str) -> PlannedRequest {
    req(Method::Get, format!("/api/v2/projects/{}/layers", segment(project)))
}

/// `createLayer`: `body` is a `LayerPost`.
pub fn create_layer(project: &str, body: &Value) -> PlannedRequest {
    with_body(req(Method::Post, format!("/api/v2/projects/{}/layers", segment(project))), CONTENT_TYPE_JSON, body)
}

/// `updateLayer`: `body` is a `LayerPatchInput` (a semantic patch; reservation instructions take the body's
/// `environmentKey`).
pub fn update_layer(project: &str, key: &str, body: &Value) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("/api/v2/projects/{}/layers/{}", segment(project), segment(key))),
        CONTENT_TYPE_SEMANTIC_PATCH,
        body,
    )
}

/// `getAllHoldouts`: one page.
pub fn list_holdouts(project: &str, env: &str, offset: u64) -> PlannedRequest {
    q(
        req(Method::Get, format!("{}/holdouts", pe(project, env))),
        &[("limit", HOLDOUT_PAGE.to_string()), ("offset", offset.to_string())],
    )
}

/// `getHoldout`: the detail (description, `holdoutAmount`, the experiments in it).
pub fn get_holdout(project: &str, env: &str, key: &str) -> PlannedRequest {
    req(Method::Get, format!("{}/holdouts/{}", pe(project, env), segment(key)))
}

/// `postHoldout`: `body` is a `HoldoutPostRequest` (lower-case field names).
pub fn post_holdout(project: &str, env: &str, body: &Value) -> PlannedRequest {
    with_body(req(Method::Post, format!("{}/holdouts", pe(project, env))), CONTENT_TYPE_JSON, body)
}

/// `patchHoldout`: `body` is a `HoldoutPatchInput` (a semantic patch).
pub fn patch_holdout(project: &str, env: &str, key: &str, body: &Value) -> PlannedRequest {
    with_body(
        req(Method::Patch, format!("{}/holdouts/{}", pe(project, env), segment(key))),
        CONTENT_TYPE_SEMANTIC_PATCH,
        body,
    )
}

/// Which `LD-API-Version` class a path belongs to: `beta` on the routes the contract tags beta (experiments and
/// their results, experimentation settings, metric groups under `Metrics (beta)`, holdouts under
/// `Holdouts (beta)`); the dated version on flags, metrics, layers (`Layers`) and caller identity (contract §1,
/// marked inferred). Decided by path segment, so a key that contains `experiments` changes nothing.
pub fn is_beta_route(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        // Legacy results live under /flags but are beta-era experiment routes; the flag itself is not.
        ["api", "v2", "flags", _, _, "experiments", ..] => true,
        ["api", "v2", "projects", _, "environments", _, resource, ..] => {
            matches!(*resource, "experiments" | "holdouts")
        }
        ["api", "v2", "projects", _, resource, ..] => {
            matches!(*resource, "experiments" | "experimentation-settings" | "metric-groups")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_routes_are_told_by_segment() {
        for beta in [
            "/api/v2/projects/p/environments/e/experiments",
            "/api/v2/projects/p/environments/e/experiments/k/metrics/m/results",
            "/api/v2/projects/p/experiments",
            "/api/v2/projects/p/experimentation-settings",
            "/api/v2/projects/p/metric-groups/g",
            "/api/v2/projects/p/environments/e/holdouts",
            "/api/v2/projects/p/environments/e/holdouts/id/abc",
            "/api/v2/flags/p/f/experiments/e/m",
            "/api/v2/projects/p/environments/e/experiments?limit=2&offset=2",
        ] {
            assert!(is_beta_route(beta), "{beta} is beta");
        }
        for dated in [
            "/api/v2/flags/p/f",
            "/api/v2/flags/p",
            "/api/v2/metrics/p/experiments",
            "/api/v2/projects/p/layers",
            "/api/v2/projects/p/layers/experiments-surface",
            "/api/v2/caller-identity",
        ] {
            assert!(!is_beta_route(dated), "{dated} is dated");
        }
        assert!(is_beta_route(&list_holdouts("p", "e", 0).path));
        assert!(!is_beta_route(&update_layer("p", "k", &Value::Null).path));
    }
}
