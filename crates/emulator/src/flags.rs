//! Feature flags: the project's list (`limit`, `offset`, `env`, `summary`, `filter`, `tag`, `archived`), GET (with
//! `env`) and PATCH as an RFC 6902 JSON patch (bare array or `{comment, patch}`) or a JSON merge patch
//! (`{comment, merge}`), with `test` guards, `dryRun`, read-only fields and version bumps.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use ldexp_core::api::FeatureFlag;
use serde_json::{Value, json};

use crate::experiments::{env_exists, page_links};
use crate::ids;
use crate::model::{Data, Project, check_legacy};
use crate::router::{csv, query_u64};
use crate::wire::{Fail, Outcome, Response};

/// `getFeatureFlags` documents a default of 20 and no maximum. A `limit` above this is refused rather than
/// silently shortened, so a client never takes a clamped page for the last one.
const MAX_LIST_LIMIT: u64 = 100;
const DEFAULT_LIST_LIMIT: u64 = 20;

fn find<'a>(project: &'a Project, key: &str) -> Outcome<&'a Value> {
    project
        .flags
        .get(key)
        .ok_or_else(|| Fail::not_found(format!("Unknown feature flag key {key} in project {}", project.key)))
}

/// `getFeatureFlag`: every environment, or only `env` when given.
pub(crate) fn get(project: &Project, key: &str, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let mut flag = find(project, key)?.clone();
    if let Some(env) = query.get("env")
        && let Some(envs) = flag.get_mut("environments").and_then(Value::as_object_mut)
    {
        envs.retain(|k, _| k == env);
    }
    Ok(Response::json(200, flag))
}

/// One `filter` of `getFeatureFlags`: `field:value` terms separated by commas, all of which must hold.
#[derive(Debug, Default)]
struct ListFilter {
    query: Option<String>,
    tags: Vec<String>,
    has_experiment: Option<bool>,
    /// `live`, `deprecated` or `archived`; with neither this nor `archived`, archived flags are left out.
    state: Option<String>,
    archived: Option<bool>,
    temporary: Option<bool>,
}

fn parse_bool(name: &str, v: &str) -> Outcome<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Fail::bad(format!("`{name}` must be true or false, not `{v}`"))),
    }
}

impl ListFilter {
    fn parse(project: &Project, raw: Option<&String>) -> Outcome<ListFilter> {
        let mut f = ListFilter::default();
        for term in raw.map(|r| csv(r)).unwrap_or_default() {
            let Some((field, value)) = term.split_once(':') else {
                return Err(Fail::bad(format!("filter term `{term}` is not field:value")));
            };
            match field {
                "query" => f.query = Some(value.to_ascii_lowercase()),
                // Several tags are joined with `+` (sent as %2B); a flag must carry all of them.
                "tags" => f.tags = value.split('+').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                "hasExperiment" => f.has_experiment = Some(parse_bool("filter hasExperiment", value)?),
                "archived" => f.archived = Some(parse_bool("filter archived", value)?),
                "state" if matches!(value, "live" | "deprecated" | "archived") => f.state = Some(value.to_owned()),
                "state" => {
                    return Err(Fail::bad(format!("filter state `{value}` is not live, deprecated or archived")));
                }
                "type" if matches!(value, "temporary" | "permanent") => f.temporary = Some(value == "temporary"),
                "type" => return Err(Fail::bad(format!("filter type `{value}` is not temporary or permanent"))),
                "filterEnv" => env_exists(project, value)?,
                other => {
                    return Err(Fail::bad(format!(
                        "filter field `{other}` is not supported by the emulator (query, tags, hasExperiment, state, \
                         archived, type, filterEnv)"
                    )));
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, project: &Project, key: &str, flag: &Value) -> bool {
        let text = |k: &str| flag.get(k).and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let is = |k: &str| flag.get(k).and_then(Value::as_bool).unwrap_or(false);
        let tags: Vec<&str> =
            flag.get("tags").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let (archived, deprecated) = (is("archived"), is("deprecated"));
        let state_ok = match (self.state.as_deref(), self.archived) {
            (Some("archived"), _) => archived,
            (Some("deprecated"), _) => deprecated && !archived,
            (Some(_), _) => !deprecated && !archived,
            (None, Some(a)) => archived == a,
            (None, None) => !archived,
        };
        state_ok
            && self.query.as_ref().is_none_or(|q| text("key").contains(q.as_str()) || text("name").contains(q.as_str()))
            && self.tags.iter().all(|t| tags.contains(&t.as_str()))
            && self.temporary.is_none_or(|t| is("temporary") == t)
            && self.has_experiment.is_none_or(|h| in_an_experiment(project, key, flag) == h)
    }
}

/// Whether an experiment uses the flag: a legacy experiment on it, or an iteration of a new-model experiment in
/// any environment that names it.
fn in_an_experiment(project: &Project, key: &str, flag: &Value) -> bool {
    let legacy = flag["experiments"]["items"].as_array().is_some_and(|i| !i.is_empty());
    legacy
        || project.experiments.values().flat_map(|m| m.values()).any(|x| {
            let current = x.current_iteration.iter().chain(x.draft_iteration.iter()).map(|b| &**b);
            current.chain(x.previous_iterations.iter()).any(|it| it.flags.contains_key(key))
        })
}

/// The flag as the list shows it: no environments without `env`; with it, that environment alone, summarised
/// (no rules, targets or prerequisites, a `_summary` instead) unless `summary` is false.
fn listed(flag: &Value, env: Option<&str>, summary: bool) -> Value {
    let Some(whole) = flag.as_object() else { return flag.clone() };
    // Copies only what the answer shows: a flag's other environments are most of its size.
    let mut o: serde_json::Map<String, Value> =
        whole.iter().filter(|(k, _)| *k != "environments").map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some((env, config)) = env.and_then(|e| whole.get("environments")?.get(e).map(|c| (e, c))) {
        let config = if summary {
            let s = summary_of(config, flag["variations"].as_array().map_or(0, Vec::len));
            let mut c: serde_json::Map<String, Value> = config
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !matches!(k.as_str(), "rules" | "targets" | "contextTargets" | "prerequisites"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            c.insert("_summary".into(), s);
            Value::Object(c)
        } else {
            config.clone()
        };
        o.insert("environments".into(), json!({ env: config }));
    }
    Value::Object(o)
}

/// `FlagSummary`: per variation, how many rules and targets serve it, and whether it is the fallthrough or off
/// variation.
fn summary_of(config: &Value, variations: usize) -> Value {
    let rules = config["rules"].as_array().cloned().unwrap_or_default();
    let served = |r: &Value, i: usize| r.get("variation").and_then(Value::as_u64) == Some(i as u64);
    let targets = |k: &str, i: usize| {
        config[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| served(t, i))
            .map(|t| t["values"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    let mut out = serde_json::Map::new();
    for i in 0..variations {
        let mut v = json!({
            "rules": rules.iter().filter(|r| served(r, i)).count(),
            "nullRules": 0,
            "targets": targets("targets", i),
            "contextTargets": targets("contextTargets", i),
        });
        if served(&config["fallthrough"], i) {
            v["isFallthrough"] = json!(true);
        }
        if config["offVariation"].as_u64() == Some(i as u64) {
            v["isOff"] = json!(true);
        }
        out.insert(i.to_string(), v);
    }
    json!({ "variations": out, "prerequisites": config["prerequisites"].as_array().map_or(0, Vec::len) })
}

/// `getFeatureFlags`: the project's flags in key order, `totalCount` of those the filters keep, and paging links.
pub(crate) fn list(project: &Project, path: &str, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let limit = query_u64(query, "limit", DEFAULT_LIST_LIMIT)?;
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(Fail::bad(format!("`limit` must be from 1 to {MAX_LIST_LIMIT}")));
    }
    let offset = query_u64(query, "offset", 0)?;
    for unsupported in ["sort", "expand", "compare"] {
        if query.contains_key(unsupported) {
            return Err(Fail::bad(format!("`{unsupported}` is not supported by the emulator's flag list")));
        }
    }
    let env = query.get("env").map(String::as_str);
    if let Some(e) = env {
        env_exists(project, e)?;
    }
    let summary = query.get("summary").map(|v| parse_bool("summary", v)).transpose()?.unwrap_or(true);
    let mut filter = ListFilter::parse(project, query.get("filter"))?;
    if let Some(a) = query.get("archived") {
        filter.archived = Some(parse_bool("archived", a)?);
    }
    if let Some(tag) = query.get("tag") {
        filter.tags.push(tag.clone());
    }
    let kept: Vec<(&String, &Value)> = project.flags.iter().filter(|(k, f)| filter.matches(project, k, f)).collect();
    let total = kept.len() as u64;
    let items: Vec<Value> = kept
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(_, f)| listed(f, env, summary))
        .collect();
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": page_links(path, query, limit, offset, total) }),
    ))
}

enum Body {
    Json(Vec<PatchOperation>),
    Merge(Value),
}

fn parse_body(body: &Value) -> Outcome<Body> {
    let ops = |v: &Value| -> Outcome<Vec<PatchOperation>> {
        serde_json::from_value::<json_patch::Patch>(v.clone())
            .map(|p| p.0)
            .map_err(|e| Fail::bad(format!("invalid JSON patch: {e}")))
    };
    match body {
        Value::Array(_) => Ok(Body::Json(ops(body)?)),
        Value::Object(o) if o.contains_key("patch") => Ok(Body::Json(ops(&o["patch"])?)),
        Value::Object(o) if o.contains_key("merge") => Ok(Body::Merge(o["merge"].clone())),
        Value::Object(o) if o.contains_key("instructions") => Err(Fail::bad(
            "semantic patch instructions need Content-Type: application/json; domain-model=launchdarkly.semanticpatch",
        )),
        _ => Err(Fail::bad("expected a JSON patch array, {comment, patch} or {comment, merge}")),
    }
}

fn env_keys(flag: &Value) -> Vec<String> {
    flag.get("environments").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Fields a patch may not change: `_`-prefixed attributes (contract §1), identity, and server-kept versions.
fn read_only_violation(before: &Value, after: &Value) -> Option<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return Some("the flag must stay a JSON object".to_owned());
    };
    let top: Vec<&String> = b.keys().chain(a.keys()).collect();
    for k in top {
        if (k.starts_with('_') || k == "key" || k == "creationDate" || k == "kind") && b.get(k) != a.get(k) {
            return Some(format!("`/{k}` is read-only"));
        }
    }
    if env_keys(before) != env_keys(after) {
        return Some("environments cannot be added or removed through a flag patch".to_owned());
    }
    for env in env_keys(before) {
        let (Some(eb), Some(ea)) = (before["environments"][&env].as_object(), after["environments"][&env].as_object())
        else {
            return Some(format!("`/environments/{env}` must stay an object"));
        };
        for k in eb.keys().chain(ea.keys()) {
            let kept = k.starts_with('_') || matches!(k.as_str(), "version" | "lastModified" | "salt" | "sel");
            if kept && eb.get(k) != ea.get(k) {
                return Some(format!("`/environments/{env}/{k}` is read-only"));
            }
        }
    }
    None
}

fn validate(project: &Project, flag: &Value) -> Outcome<()> {
    let variations = flag.get("variations").and_then(Value::as_array).map_or(0, Vec::len);
    if variations == 0 || flag["variations"].as_array().is_some_and(|vs| vs.iter().any(|v| v.get("value").is_none())) {
        return Err(Fail::bad("a flag needs at least one variation, each with a `value`"));
    }
    for env in env_keys(flag) {
        if !flag["environments"][&env]["on"].is_boolean() {
            return Err(Fail::bad(format!("`/environments/{env}/on` must be a boolean")));
        }
        for (i, r) in flag["environments"][&env]["rules"].as_array().cloned().unwrap_or_default().iter().enumerate() {
            if let Some(v) = r.get("variation").and_then(Value::as_u64)
                && usize::try_from(v).is_ok_and(|v| v >= variations)
            {
                return Err(Fail::bad(format!("`/environments/{env}/rules/{i}/variation` {v} does not exist")));
            }
        }
    }
    let experiments = flag.get("experiments").cloned().unwrap_or(Value::Null);
    check_legacy(project, &experiments, variations).map_err(Fail::bad)?;
    serde_json::from_value::<FeatureFlag>(flag.clone())
        .map_err(|e| Fail::bad(format!("the patched flag is not a valid flag: {e}")))?;
    Ok(())
}

/// Gives server ids to variations and rules a patch added without one.
fn assign_ids(pk: &str, fk: &str, flag: &mut Value, version: i64) {
    let v = version.to_string();
    if let Some(vs) = flag.get_mut("variations").and_then(Value::as_array_mut) {
        for (i, var) in vs.iter_mut().enumerate() {
            if var.get("_id").is_none()
                && let Some(o) = var.as_object_mut()
            {
                o.insert("_id".into(), json!(ids::uuid(&["variation", pk, fk, &v, &i.to_string()])));
            }
        }
    }
    for env in env_keys(flag) {
        if let Some(rules) = flag["environments"][&env].get_mut("rules").and_then(Value::as_array_mut) {
            for (i, r) in rules.iter_mut().enumerate() {
                if let Some(o) = r.as_object_mut() {
                    if !o.contains_key("_id") {
                        o.insert("_id".into(), json!(ids::uuid(&["rule", pk, fk, &env, &v, &i.to_string()])));
                    }
                    o.entry("clauses").or_insert(json!([]));
                    o.entry("trackEvents").or_insert(json!(false));
                }
            }
        }
    }
}

/// `patchFeatureFlag`. A failed `test` answers 400 and changes nothing; `dryRun=true` previews without storing.
pub(crate) fn patch(
    data: &mut Data,
    pk: &str,
    fk: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let original = find(project, fk)?;
    let dry_run = query.get("dryRun").is_some_and(|v| v == "true");
    let mut doc = original.clone();
    match parse_body(body)? {
        Body::Json(ops) => crate::patching::apply(&mut doc, &ops)?,
        Body::Merge(m) => json_patch::merge(&mut doc, &m),
    }
    if let Some(msg) = read_only_violation(original, &doc) {
        return Err(Fail::bad(msg));
    }
    if doc == *original {
        return Ok(Response::json(200, doc));
    }
    crate::rollout::check_patch(project, fk, original, &doc)?;
    let version = original.get("_version").and_then(Value::as_i64).unwrap_or(0) + 1;
    assign_ids(pk, fk, &mut doc, version);
    validate(project, &doc)?;
    let changed: Vec<String> =
        env_keys(original).into_iter().filter(|e| original["environments"][e] != doc["environments"][e]).collect();
    if let Some(env) = changed.iter().find(|e| project.environments.get(*e).is_some_and(|x| x.approvals_required)) {
        return Err(Fail::method_not_allowed(format!(
            "environment `{env}` requires approvals for flag changes; request an approval instead"
        )));
    }
    let now = if dry_run { data.peek_tick() } else { data.tick() };
    doc["_version"] = json!(version);
    for env in &changed {
        let cfg = &mut doc["environments"][env];
        cfg["version"] = json!(cfg["version"].as_i64().unwrap_or(0) + 1);
        cfg["lastModified"] = json!(now);
    }
    if !dry_run && let Some(slot) = data.projects.get_mut(pk).and_then(|p| p.flags.get_mut(fk)) {
        *slot = doc.clone();
    }
    Ok(Response::json(200, doc))
}
