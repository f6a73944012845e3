//! Experiments: list (pagination, `filter`, `lifecycleState`, `expand`), get, create, create iteration, and the
//! validation and rendering of iterations they share. The semantic patch lives in `instructions.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ldexp_core::api::{
    Experiment, ExperimentPost, FlagRep, ItemLinks, IterationInput, IterationRep, IterationStatus, Links,
    MetricSummary, ParameterRep, TreatmentRep,
};
use serde_json::{Value, json};

use crate::deviation::Deviation;
use crate::model::{Caller, Data, GroupDef, MAINTAINER_ID, MetricDef, Project};
use crate::router::{csv, query_u64};
use crate::wire::{Fail, Outcome, Response, link};
use crate::{checks, ids};

/// Default page size of experiment lists.
const DEFAULT_LIMIT: u64 = 20;

/// Which optional fields a read includes (`expand`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Expand {
    pub draft: bool,
    pub previous: bool,
    pub treatments: bool,
    pub secondary: bool,
    pub analysis: bool,
}

impl Expand {
    pub(crate) const ALL: Expand =
        Expand { draft: true, previous: true, treatments: true, secondary: true, analysis: true };

    pub(crate) fn parse(query: &BTreeMap<String, String>) -> Expand {
        let mut e = Expand::default();
        for v in query.get("expand").map(|s| csv(s)).unwrap_or_default() {
            match v.as_str() {
                "draftIteration" => e.draft = true,
                "previousIterations" => e.previous = true,
                "treatments" => e.treatments = true,
                "secondaryMetrics" => e.secondary = true,
                "analysisConfig" => e.analysis = true,
                // Unknown expansions are ignored, as LaunchDarkly does.
                _ => {}
            }
        }
        e
    }
}

pub(crate) fn experiment_href(project: &str, env: &str, key: &str) -> String {
    format!("/api/v2/projects/{project}/environments/{env}/experiments/{key}")
}

fn iteration_mut(e: &mut Experiment) -> impl Iterator<Item = &mut IterationRep> {
    e.current_iteration
        .as_deref_mut()
        .into_iter()
        .chain(e.draft_iteration.as_deref_mut())
        .chain(e.previous_iterations.iter_mut())
}

fn strip_iteration(it: &mut IterationRep, expand: Expand) {
    if !expand.treatments {
        it.treatments.clear();
    }
    if !expand.secondary {
        it.secondary_metrics.clear();
    }
}

/// The wire form of an experiment; unexpanded fields, and expanded ones that are empty, are omitted (quirk 7).
pub(crate) fn render(project: &Project, exp: &Experiment, expand: Expand) -> Value {
    let mut e = exp.clone();
    let mut links = Links::new();
    links.insert("self".into(), link(experiment_href(&project.key, &exp.environment_key, &exp.key)));
    links.insert(
        "parent".into(),
        link(format!("/api/v2/projects/{}/environments/{}/experiments", project.key, exp.environment_key)),
    );
    e.links = links.into();
    if !expand.draft {
        e.draft_iteration = None;
    }
    if !expand.previous {
        e.previous_iterations.clear();
    }
    if !expand.analysis {
        e.analysis_config = None;
    }
    for it in iteration_mut(&mut e) {
        strip_iteration(it, expand);
    }
    serde_json::to_value(&e).unwrap_or(Value::Null)
}

/// `running`, `stopped` or `not_started`, as the `status` filter sees it.
pub(crate) fn status_of(e: &Experiment) -> &'static str {
    match e.current_iteration.as_ref().map(|i| i.status) {
        Some(IterationStatus::Running) => "running",
        Some(IterationStatus::Stopped) => "stopped",
        _ => "not_started",
    }
}

pub(crate) fn env_exists(project: &Project, env: &str) -> Outcome<()> {
    if project.environments.contains_key(env) {
        Ok(())
    } else {
        Err(Fail::not_found(format!("Unknown environment key {env} in project {}", project.key)))
    }
}

pub(crate) fn find<'a>(project: &'a Project, env: &str, key: &str) -> Outcome<&'a Experiment> {
    env_exists(project, env)?;
    project
        .experiments
        .get(env)
        .and_then(|m| m.get(key))
        .ok_or_else(|| Fail::not_found(format!("Unknown experiment key {key} in environment {env}")))
}

/// `getExperiment`.
pub(crate) fn get(project: &Project, env: &str, key: &str, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let e = find(project, env, key)?;
    Ok(Response::json(200, render(project, e, Expand::parse(query))))
}

struct Filter {
    flags: BTreeSet<String>,
    metrics: BTreeSet<String>,
    statuses: BTreeSet<String>,
}

impl Filter {
    fn parse(text: Option<&String>) -> Outcome<Filter> {
        let mut f = Filter { flags: BTreeSet::new(), metrics: BTreeSet::new(), statuses: BTreeSet::new() };
        for term in text.map(|t| csv(t)).unwrap_or_default() {
            let Some((field, value)) = term.split_once(':') else {
                return Err(Fail::bad(format!("filter term `{term}` is not field:value")));
            };
            match field.trim() {
                "flagKey" => f.flags.insert(value.trim().to_owned()),
                "metricKey" => f.metrics.insert(value.trim().to_owned()),
                "status" if matches!(value.trim(), "not_started" | "running" | "stopped") => {
                    f.statuses.insert(value.trim().to_owned())
                }
                "status" => {
                    return Err(Fail::bad(format!("filter status `{value}` is not not_started, running or stopped")));
                }
                other => {
                    return Err(Fail::bad(format!("unsupported filter field `{other}` (flagKey, metricKey, status)")));
                }
            };
        }
        Ok(f)
    }

    /// Terms on one field are alternatives; different fields must all match.
    fn matches(&self, e: &Experiment) -> bool {
        let its: Vec<&IterationRep> =
            e.current_iteration.as_deref().into_iter().chain(e.draft_iteration.as_deref()).collect();
        let flag_ok = self.flags.is_empty() || its.iter().any(|i| i.flags.keys().any(|k| self.flags.contains(k)));
        let metric_ok = self.metrics.is_empty()
            || its.iter().any(|i| {
                i.metrics.iter().any(|m| {
                    self.metrics.contains(&m.key)
                        || m.metrics.iter().flatten().any(|inner| self.metrics.contains(&inner.key))
                })
            });
        let status_ok = self.statuses.is_empty() || self.statuses.contains(status_of(e));
        flag_ok && metric_ok && status_ok
    }
}

/// `getExperiments` (one environment) and `getExperimentsAnyEnv` (`env` is `None`). With `misreport`, a list that
/// asks for archived experiments reports in `total_count` only the active ones it holds (`--misreport-total-count`).
pub(crate) fn list(
    project: &Project,
    env: Option<&str>,
    path: &str,
    query: &BTreeMap<String, String>,
    misreport: bool,
) -> Outcome<Response> {
    if let Some(env) = env {
        env_exists(project, env)?;
    }
    let limit = query_u64(query, "limit", DEFAULT_LIMIT)?;
    if limit == 0 {
        return Err(Fail::bad("`limit` must be at least 1"));
    }
    let offset = query_u64(query, "offset", 0)?;
    let (mut active, mut archived) = (false, false);
    match query.get("lifecycleState") {
        None => active = true,
        Some(v) => {
            for s in csv(v) {
                match s.as_str() {
                    "active" => active = true,
                    "archived" => archived = true,
                    other => return Err(Fail::bad(format!("lifecycleState `{other}` is not active or archived"))),
                }
            }
        }
    }
    let filter = Filter::parse(query.get("filter"))?;
    let expand = Expand::parse(query);
    let mut all: Vec<&Experiment> = project
        .experiments
        .iter()
        .filter(|(k, _)| env.is_none_or(|e| e == k.as_str()))
        .flat_map(|(_, m)| m.values())
        .filter(|e| if e.is_archived() { archived } else { active })
        .filter(|e| filter.matches(e))
        .collect();
    // Creation order, as LaunchDarkly lists. Ties keep the (environment, key) order the maps were walked in: a
    // stable sort on the date alone, which every page of a large list repeats, so it must stay cheap.
    all.sort_by_key(|e| e.creation_date);
    let total = all.len() as u64;
    // Links are computed from the true total either way, so a reader that follows `_links.next` sees everything.
    let reported = if misreport && archived { all.iter().filter(|e| !e.is_archived()).count() as u64 } else { total };
    let items: Vec<Value> = all
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|e| render(project, e, expand))
        .collect();
    Ok(Response::json(
        200,
        json!({ "items": items, "total_count": reported, "_links": page_links(path, query, limit, offset, total) }),
    ))
}

/// `_links` of a paginated collection: `self`, `first`, `last`, and `next`/`prev` when they exist.
pub(crate) fn page_links(path: &str, query: &BTreeMap<String, String>, limit: u64, offset: u64, total: u64) -> Value {
    let href = |off: u64| {
        let mut q = query.clone();
        q.insert("limit".into(), limit.to_string());
        q.insert("offset".into(), off.to_string());
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &q {
            ser.append_pair(k, v);
        }
        link(format!("{path}?{}", ser.finish()))
    };
    let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
    let mut links = serde_json::Map::new();
    links.insert("self".into(), href(offset));
    links.insert("first".into(), href(0));
    links.insert("last".into(), href(last));
    if offset.saturating_add(limit) < total {
        links.insert("next".into(), href(offset + limit));
    }
    if offset > 0 {
        links.insert("prev".into(), href(offset.saturating_sub(limit)));
    }
    Value::Object(links)
}

fn check_key(key: &str) -> Outcome<()> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(Fail::bad(format!(
            "experiment key `{key}` must be non-empty and use only letters, digits, `.`, `_` and `-`"
        )));
    }
    Ok(())
}

/// `createExperiment`: the iteration becomes the draft, or a `not_started` current iteration when the state says so.
/// `differ` names the service rules broken on purpose (`--differ`).
pub(crate) fn create(
    data: &mut Data,
    caller: Caller,
    pk: &str,
    env: &str,
    body: &Value,
    differ: &BTreeSet<Deviation>,
) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    env_exists(project, env)?;
    let post: ExperimentPost =
        serde_json::from_value(body.clone()).map_err(|e| Fail::bad(format!("invalid experiment: {e}")))?;
    check_key(&post.key)?;
    if post.name.trim().is_empty() {
        return Err(Fail::bad("experiment `name` must not be empty"));
    }
    if project.experiments.get(env).is_some_and(|m| m.contains_key(&post.key)) {
        return Err(Fail::bad(format!("an experiment with key `{}` already exists in environment `{env}`", post.key)));
    }
    let allowed = [
        ("methodology", post.methodology.as_deref(), &["bayesian", "frequentist", "export_only"][..]),
        ("dataSource", post.data_source.as_deref(), &["launchdarkly", "snowflake", "databricks", "redshift"][..]),
    ];
    for (field, value, values) in allowed {
        if let Some(v) = value.filter(|v| !values.contains(v)) {
            return Err(Fail::bad(format!("{field} `{v}` is not one of {}", values.join(", "))));
        }
    }
    // A service token stands for no member, so nobody can be the default maintainer (contract §9.7).
    if caller == Caller::Service && post.maintainer_id.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(Fail::bad("maintainerId is required when the caller uses a service token"));
    }
    if let Some(holdout) = post.holdout_id.as_deref() {
        crate::holdouts::check_join(project, env, holdout)?;
    }
    let iteration_raw = body.get("iteration").cloned().unwrap_or(Value::Null);
    let mut iteration = build_iteration(project, env, &iteration_raw)?;
    checks::iteration(project, env, None, &iteration, differ)?;
    let experiment_type = body.get("type").and_then(Value::as_str).unwrap_or("experiment").to_owned();
    let now = data.tick();
    let serial = data.next_serial();
    finalize_iteration(&mut iteration, pk, env, &post.key, serial, now);
    let mut exp = Experiment {
        id: Some(ids::uuid(&["experiment", pk, env, &post.key])),
        key: post.key.clone(),
        name: post.name,
        description: post.description,
        maintainer_id: post.maintainer_id.unwrap_or_else(|| MAINTAINER_ID.to_owned()),
        creation_date: ldexp_core::api::Millis(now),
        environment_key: env.to_owned(),
        methodology: Some(post.methodology.unwrap_or_else(|| "bayesian".to_owned())),
        data_source: Some(post.data_source.unwrap_or_else(|| "launchdarkly".to_owned())),
        tags: post.tags.unwrap_or_default(),
        holdout_id: post.holdout_id,
        experiment_type: Some(experiment_type),
        analysis_config: post.analysis_config,
        ..Experiment::default()
    };
    if data.options.create_as_current {
        exp.current_iteration = Some(Box::new(iteration));
    } else {
        exp.draft_iteration = Some(Box::new(iteration));
    }
    let project = data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    project.experiments.entry(env.to_owned()).or_default().insert(exp.key.clone(), exp.clone());
    let mut answer = render(project, &exp, Expand::ALL);
    if differ.contains(&Deviation::CreateIteration)
        && let Some(o) = answer.as_object_mut()
    {
        // Only this answer hides the new iteration (contract §9.9); the stored experiment keeps it.
        o.remove("draftIteration");
        o.remove("currentIteration");
    }
    Ok(Response::json(201, answer))
}

/// `createIteration`: the new iteration replaces any draft; the current iteration is untouched. `differ` as in
/// [`create`].
pub(crate) fn create_iteration(
    data: &mut Data,
    pk: &str,
    env: &str,
    key: &str,
    body: &Value,
    differ: &BTreeSet<Deviation>,
) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let exp = find(project, env, key)?;
    let mut iteration = build_iteration(project, env, body)?;
    checks::iteration(project, env, Some(exp), &iteration, differ)?;
    let now = data.tick();
    let serial = data.next_serial();
    finalize_iteration(&mut iteration, pk, env, key, serial, now);
    let exp = data
        .projects
        .get_mut(pk)
        .and_then(|p| p.experiments.get_mut(env))
        .and_then(|m| m.get_mut(key))
        .ok_or_else(|| Fail::not_found(format!("Unknown experiment key {key} in environment {env}")))?;
    exp.draft_iteration = Some(Box::new(iteration.clone()));
    Ok(Response::json(200, serde_json::to_value(&iteration).unwrap_or(Value::Null)))
}

fn finalize_iteration(it: &mut IterationRep, pk: &str, env: &str, key: &str, serial: u64, now: i64) {
    let id = ids::uuid(&["iteration", pk, env, key, &serial.to_string()]);
    for (i, t) in it.treatments.iter_mut().enumerate() {
        t.id = Some(ids::uuid(&["treatment", &id, &i.to_string()]));
    }
    it.id = Some(id);
    it.created_at = ldexp_core::api::Millis(now);
}

pub(crate) fn metric_v2(project: &Project, m: &MetricDef) -> MetricSummary {
    MetricSummary {
        key: m.key.clone(),
        version_id: Some(m.version_id.clone()),
        name: m.name.clone(),
        kind: m.kind.clone(),
        is_numeric: Some(m.is_numeric),
        unit_aggregation_type: m.unit_aggregation_type.clone(),
        event_key: m.event_key.clone(),
        links: metric_links(project, &m.key),
        ..MetricSummary::default()
    }
}

fn metric_links(project: &Project, key: &str) -> ItemLinks {
    let mut l = Links::new();
    l.insert("self".into(), link(format!("/api/v2/metrics/{}/{key}", project.key)));
    l.into()
}

/// `MetricInGroupRep` for each metric of a group, in step order.
pub(crate) fn group_members(project: &Project, g: &GroupDef) -> Vec<MetricSummary> {
    g.metrics
        .iter()
        .filter_map(|k| project.metric(k))
        .map(|m| MetricSummary {
            name_in_group: Some(g.name_in_group(&m.key, &m.name).to_owned()),
            ..metric_v2(project, m)
        })
        .collect()
}

pub(crate) fn group_summary(project: &Project, g: &GroupDef, with_version: bool) -> MetricSummary {
    let mut l = Links::new();
    l.insert("self".into(), link(format!("/api/v2/projects/{}/metric-groups/{}", project.key, g.key)));
    MetricSummary {
        key: g.key.clone(),
        version_id: with_version.then(|| g.version_id.clone()),
        name: g.name.clone(),
        kind: g.kind.clone(),
        links: l.into(),
        metrics: Some(group_members(project, g)),
        ..MetricSummary::default()
    }
}

/// A `DependentMetricOrMetricGroupRep`.
fn dependent(project: &Project, key: &str, is_group: bool) -> Outcome<MetricSummary> {
    if is_group {
        let g = project
            .group(key)
            .ok_or_else(|| Fail::bad(format!("metric group `{key}` does not exist in project `{}`", project.key)))?;
        Ok(MetricSummary { is_group: Some(true), ..group_summary(project, g, true) })
    } else {
        let m = project
            .metric(key)
            .ok_or_else(|| Fail::bad(format!("metric `{key}` does not exist in project `{}`", project.key)))?;
        Ok(MetricSummary { is_group: Some(false), ..metric_v2(project, m) })
    }
}

fn variation_ids(flag: &Value) -> Vec<String> {
    flag.get("variations")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(|v| v.get("_id").and_then(Value::as_str)).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The rule of `flag` in `env` with this `_id`.
pub(crate) fn find_rule<'a>(flag: &'a Value, env: &str, rule_id: &str) -> Option<&'a Value> {
    flag.pointer(&format!("/environments/{env}/rules"))
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("_id").and_then(Value::as_str) == Some(rule_id))
}

/// Validates an `IterationInput` against the project and builds the `not_started` iteration (no ids yet). The
/// service's refusals beyond the schema are [`checks::iteration`]'s.
pub(crate) fn build_iteration(project: &Project, env: &str, raw: &Value) -> Outcome<IterationRep> {
    let pk = project.key.as_str();
    let input: IterationInput =
        serde_json::from_value(raw.clone()).map_err(|e| Fail::bad(format!("invalid iteration: {e}")))?;
    if input.hypothesis.trim().is_empty() {
        return Err(Fail::bad("iteration `hypothesis` must not be empty"));
    }
    if input.metrics.is_empty() {
        return Err(Fail::bad("an iteration needs at least one metric"));
    }
    let mut metrics = Vec::new();
    let mut seen = BTreeSet::new();
    for m in &input.metrics {
        if !seen.insert((m.key.as_str(), m.is_group)) {
            return Err(Fail::bad(format!("metric `{}` is listed twice", m.key)));
        }
        metrics.push(Arc::new(dependent(project, &m.key, m.is_group)?));
    }
    // `MetricInput.primary` is deprecated but still read when neither new field is sent (quirk 5).
    let legacy_primary = raw.get("metrics").and_then(Value::as_array).and_then(|ms| {
        ms.iter().find(|m| m.get("primary").and_then(Value::as_bool) == Some(true)).map(|m| {
            (
                m.get("key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                m.get("isGroup") == Some(&json!(true)),
            )
        })
    });
    let (single, funnel) = match (&input.primary_single_metric_key, &input.primary_funnel_key, legacy_primary) {
        (Some(_), Some(_), _) => return Err(Fail::bad("give only one of primarySingleMetricKey and primaryFunnelKey")),
        (Some(s), None, _) => (Some(s.clone()), None),
        (None, Some(f), _) => (None, Some(f.clone())),
        (None, None, Some((k, true))) => (None, Some(k)),
        (None, None, Some((k, false))) => (Some(k), None),
        (None, None, None) => {
            return Err(Fail::bad("either primarySingleMetricKey or primaryFunnelKey must be present"));
        }
    };
    let mut it: IterationRep =
        serde_json::from_value(json!({ "hypothesis": input.hypothesis, "status": "not_started", "createdAt": 0 }))
            .map_err(|e| Fail::bad(format!("invalid iteration: {e}")))?;
    if let Some(k) = &single {
        let m = project
            .metric(k)
            .filter(|_| input.metrics.iter().any(|x| &x.key == k && !x.is_group))
            .ok_or_else(|| Fail::bad(format!("primarySingleMetricKey `{k}` is not one of the iteration's metrics")))?;
        it.primary_single_metric = Some(Arc::new(metric_v2(project, m)));
    }
    if let Some(k) = &funnel {
        let g = project
            .group(k)
            .filter(|_| input.metrics.iter().any(|x| &x.key == k && x.is_group))
            .ok_or_else(|| Fail::bad(format!("primaryFunnelKey `{k}` is not one of the iteration's metric groups")))?;
        if g.kind != "funnel" {
            return Err(Fail::bad(format!("primaryFunnelKey `{k}` is a {} group, not a funnel", g.kind)));
        }
        it.primary_funnel = Some(Arc::new(group_summary(project, g, false)));
    }
    it.secondary_metrics = input
        .metrics
        .iter()
        .filter(|m| !m.is_group && Some(&m.key) != single.as_ref())
        .filter_map(|m| project.metric(&m.key))
        .map(|m| Arc::new(metric_v2(project, m)))
        .collect();
    it.metrics = metrics;

    if input.flags.is_empty() {
        return Err(Fail::bad("an iteration needs at least one flag"));
    }
    let mut variations: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (fk, fi) in &input.flags {
        let flag =
            project.flags.get(fk).ok_or_else(|| Fail::bad(format!("flag `{fk}` does not exist in project `{pk}`")))?;
        let ids = variation_ids(flag);
        let mut rep = FlagRep {
            targeting_rule: Some(fi.rule_id.clone()),
            flag_config_version: Some(fi.flag_config_version),
            not_in_experiment_variation_id: fi.not_in_experiment_variation_id.clone(),
            ..FlagRep::default()
        };
        if fi.rule_id != "fallthrough" {
            let rule = find_rule(flag, env, &fi.rule_id).ok_or_else(|| {
                Fail::bad(format!("ruleId `{}` is not a rule of flag `{fk}` in environment `{env}`", fi.rule_id))
            })?;
            rep.targeting_rule_description = rule.get("description").and_then(Value::as_str).map(str::to_owned);
            rep.targeting_rule_clauses = rule.get("clauses").and_then(Value::as_array).cloned().unwrap_or_default();
        }
        if let Some(v) = &fi.not_in_experiment_variation_id
            && !ids.contains(v)
        {
            return Err(Fail::bad(format!("notInExperimentVariationId `{v}` is not a variation of flag `{fk}`")));
        }
        rep.links.insert("self".into(), link(format!("/api/v2/flags/{pk}/{fk}")));
        it.flags.insert(fk.clone(), rep);
        variations.insert(fk.as_str(), ids);
    }

    if input.treatments.is_empty() {
        return Err(Fail::bad("an iteration needs at least one treatment"));
    }
    let mut names = BTreeSet::new();
    let mut total = 0.0;
    for t in &input.treatments {
        if t.name.trim().is_empty() || !names.insert(t.name.as_str()) {
            return Err(Fail::bad(format!("treatment names must be non-empty and unique (`{}`)", t.name)));
        }
        let pct = t.allocation_percent.value().filter(|v| (0.0..=100.0).contains(v)).ok_or_else(|| {
            Fail::bad(format!(
                "treatment `{}`: allocationPercent `{}` is not between 0 and 100",
                t.name, t.allocation_percent
            ))
        })?;
        total += pct;
        let mut flags_seen = BTreeSet::new();
        for p in &t.parameters {
            let ids = variations.get(p.flag_key.as_str()).ok_or_else(|| {
                Fail::bad(format!("treatment `{}`: flag `{}` is not one of the iteration's flags", t.name, p.flag_key))
            })?;
            if !ids.contains(&p.variation_id) {
                return Err(Fail::bad(format!(
                    "treatment `{}`: variationId `{}` is not a variation of flag `{}`",
                    t.name, p.variation_id, p.flag_key
                )));
            }
            if !flags_seen.insert(p.flag_key.as_str()) {
                return Err(Fail::bad(format!("treatment `{}` names flag `{}` twice", t.name, p.flag_key)));
            }
        }
        if let Some(missing) = variations.keys().find(|k| !flags_seen.contains(*k)) {
            return Err(Fail::bad(format!("treatment `{}` has no parameter for flag `{missing}`", t.name)));
        }
    }
    if total > 100.0 + 1e-9 {
        return Err(Fail::bad(format!("treatment allocations add up to {total}%, more than 100%")));
    }
    if input.treatments.iter().filter(|t| t.baseline).count() != 1 {
        return Err(Fail::bad("exactly one treatment must be the baseline"));
    }
    it.treatments = input
        .treatments
        .iter()
        .map(|t| TreatmentRep {
            id: None,
            name: t.name.clone(),
            allocation_percent: t.allocation_percent.clone(),
            baseline: t.baseline,
            parameters: t
                .parameters
                .iter()
                .map(|p| ParameterRep {
                    variation_id: Some(p.variation_id.clone()),
                    flag_key: Some(p.flag_key.clone()),
                })
                .collect(),
        })
        .collect();

    let unit = input.randomization_unit.clone().unwrap_or_else(|| "user".to_owned());
    if !project.settings.randomization_units.iter().any(|u| u.randomization_unit == unit) {
        return Err(Fail::bad(format!(
            "randomization unit `{unit}` is not in the experimentation settings of project `{pk}`"
        )));
    }
    it.randomization_unit = Some(unit);
    it.attributes = input.attributes.clone().unwrap_or_default();
    it.can_reshuffle_traffic = Some(input.can_reshuffle_traffic.unwrap_or(true));
    it.reallocation_frequency_millis = raw.get("reallocationFrequencyMillis").and_then(Value::as_i64);
    Ok(it)
}

/// Adds one seed experiment (API-shaped) to `data`, filling ids, links and metric details.
pub(crate) fn seed_experiment(data: &mut Data, pk: &str, env: &str, raw: &Value) -> Result<(), String> {
    let mut exp: Experiment = serde_json::from_value(raw.clone()).map_err(|e| format!("not an Experiment: {e}"))?;
    let project = data.projects.get(pk).ok_or("unknown project")?;
    if !project.environments.contains_key(env) {
        return Err(format!("unknown environment `{env}`"));
    }
    check_key(&exp.key).map_err(|f| f.message)?;
    if project.experiments.get(env).is_some_and(|m| m.contains_key(&exp.key)) {
        return Err(format!("experiment `{}` is listed twice", exp.key));
    }
    let project = project.clone();
    let created = if exp.creation_date.0 == 0 { data.tick() } else { exp.creation_date.0 };
    exp.creation_date = ldexp_core::api::Millis(created);
    exp.id.get_or_insert_with(|| ids::uuid(&["experiment", pk, env, &exp.key]));
    if exp.maintainer_id.is_empty() {
        exp.maintainer_id = MAINTAINER_ID.to_owned();
    }
    exp.environment_key = env.to_owned();
    exp.methodology.get_or_insert_with(|| "bayesian".to_owned());
    exp.data_source.get_or_insert_with(|| "launchdarkly".to_owned());
    exp.experiment_type.get_or_insert_with(|| "experiment".to_owned());
    exp.links = ItemLinks::new();
    let key = exp.key.clone();
    for it in iteration_mut(&mut exp) {
        if it.id.is_none() {
            let serial = data.next_serial();
            it.id = Some(ids::uuid(&["iteration", pk, env, &key, &serial.to_string()]));
        }
        if it.created_at.0 == 0 {
            it.created_at = ldexp_core::api::Millis(created);
        }
        if it.status != IterationStatus::NotStarted && it.started_at.is_none() {
            it.started_at = Some(it.created_at);
        }
        hydrate_iteration(&project, env, it).map_err(|m| format!("experiment `{key}`: {m}"))?;
    }
    let project = data.projects.get_mut(pk).ok_or("unknown project")?;
    project.experiments.entry(env.to_owned()).or_default().insert(key, exp);
    Ok(())
}

/// Completes a hand-written iteration: metric details, flag links, treatment ids, variation names → ids.
fn hydrate_iteration(project: &Project, env: &str, it: &mut IterationRep) -> Result<(), String> {
    let iteration_id = it.id.clone().unwrap_or_default();
    for (fk, rep) in it.flags.iter_mut() {
        let flag = project.flags.get(fk).ok_or(format!("flag `{fk}` does not exist"))?;
        let rule = rep.targeting_rule.get_or_insert_with(|| "fallthrough".to_owned()).clone();
        if rule != "fallthrough" {
            // A hand-written seed may name the rule by its description instead of its generated `_id`.
            let r = find_rule(flag, env, &rule)
                .or_else(|| {
                    flag.pointer(&format!("/environments/{env}/rules"))
                        .and_then(Value::as_array)?
                        .iter()
                        .find(|r| r.get("description").and_then(Value::as_str) == Some(rule.as_str()))
                })
                .ok_or(format!(
                    "rule `{rule}` is neither a rule id nor a rule description of flag `{fk}` in `{env}`"
                ))?;
            rep.targeting_rule = r.get("_id").and_then(Value::as_str).map(str::to_owned);
            rep.targeting_rule_description = r.get("description").and_then(Value::as_str).map(str::to_owned);
        }
        if rep.flag_config_version.is_none() {
            rep.flag_config_version = flag.pointer(&format!("/environments/{env}/version")).and_then(Value::as_i64);
        }
        rep.links = ItemLinks::new();
        rep.links.insert("self".into(), link(format!("/api/v2/flags/{}/{fk}", project.key)));
    }
    for (i, t) in it.treatments.iter_mut().enumerate() {
        t.id.get_or_insert_with(|| ids::uuid(&["treatment", &iteration_id, &i.to_string()]));
        for p in &mut t.parameters {
            let (Some(fk), Some(v)) = (p.flag_key.clone(), p.variation_id.clone()) else { continue };
            let flag = project.flags.get(&fk).ok_or(format!("treatment parameter names unknown flag `{fk}`"))?;
            let vars = flag.get("variations").and_then(Value::as_array).cloned().unwrap_or_default();
            let resolved = vars
                .iter()
                .find(|x| x.get("_id").and_then(Value::as_str) == Some(v.as_str()))
                .or_else(|| vars.iter().find(|x| x.get("name").and_then(Value::as_str) == Some(v.as_str())))
                .and_then(|x| x.get("_id").and_then(Value::as_str))
                .ok_or(format!("`{v}` is neither a variation id nor a variation name of flag `{fk}`"))?;
            p.variation_id = Some(resolved.to_owned());
        }
    }
    let mut metrics = Vec::new();
    for m in &it.metrics {
        let is_group = m.is_group.unwrap_or_else(|| project.metric(&m.key).is_none());
        metrics.push(Arc::new(dependent(project, &m.key, is_group).map_err(|f| f.message)?));
    }
    it.metrics = metrics;
    if let Some(p) = &it.primary_single_metric {
        let m = project.metric(&p.key).ok_or(format!("primary metric `{}` does not exist", p.key))?;
        it.primary_single_metric = Some(Arc::new(metric_v2(project, m)));
    }
    if let Some(p) = &it.primary_funnel {
        let g = project.group(&p.key).ok_or(format!("primary funnel `{}` does not exist", p.key))?;
        it.primary_funnel = Some(Arc::new(group_summary(project, g, false)));
    }
    if it.primary_single_metric.is_none() && it.primary_funnel.is_none() {
        match it.metrics.first() {
            Some(first) if first.is_group == Some(true) => {
                it.primary_funnel = project.group(&first.key).map(|g| Arc::new(group_summary(project, g, false)));
            }
            Some(first) => {
                it.primary_single_metric = project.metric(&first.key).map(|m| Arc::new(metric_v2(project, m)))
            }
            None => {}
        }
    }
    let primary = it.primary_single_metric.as_ref().map(|m| m.key.clone());
    it.secondary_metrics = it
        .metrics
        .iter()
        .filter(|m| m.is_group == Some(false) && Some(&m.key) != primary.as_ref())
        .filter_map(|m| project.metric(&m.key))
        .map(|m| Arc::new(metric_v2(project, m)))
        .collect();
    it.randomization_unit.get_or_insert_with(|| "user".to_owned());
    it.can_reshuffle_traffic.get_or_insert(true);
    Ok(())
}
