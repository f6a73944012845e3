//! Feature flags: GET (with `env`) and PATCH as an RFC 6902 JSON patch (bare array or `{comment, patch}`) or a
//! JSON merge patch (`{comment, merge}`), with `test` guards, `dryRun`, read-only fields and version bumps.

use std::collections::BTreeMap;

use json_patch::{PatchErrorKind, PatchOperation};
use ldexp_core::api::FeatureFlag;
use serde_json::{Value, json};

use crate::ids;
use crate::model::{Data, Project, check_legacy};
use crate::wire::{Fail, Outcome, Response};

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
        Body::Json(ops) => {
            // Applied to a copy, so the unsafe (non-rolling-back) variant is all we need.
            json_patch::patch_unsafe(&mut doc, &ops).map_err(|e| match e.kind {
                PatchErrorKind::TestFailed => Fail::bad(format!(
                    "Test operation {} failed: the value at `{}` does not match",
                    e.operation, e.path
                )),
                _ => Fail::bad(format!("cannot apply the JSON patch: {e}")),
            })?;
        }
        Body::Merge(m) => json_patch::merge(&mut doc, &m),
    }
    if let Some(msg) = read_only_violation(original, &doc) {
        return Err(Fail::bad(msg));
    }
    if doc == *original {
        return Ok(Response::json(200, doc));
    }
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
