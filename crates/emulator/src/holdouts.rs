//! Holdouts (`Holdouts (beta)`): the list (`getAllHoldouts`), create (`postHoldout`), reads by key (`getHoldout`)
//! and by id (`getHoldoutById`), the semantic patch (`patchHoldout`), and which experiments are in a holdout.
//!
//! Rules the contract states ([spec]): the create body's field names are lower-case (`holdoutamount`,
//! `randomizationunit`, `primarymetrickey`, `prerequisiteflagkey`, but `maintainerId`); `holdoutAmount` is a string;
//! the instructions are `endHoldout`, `removeExperiment` (`value`), `updateName` and `updateDescription` (`value`);
//! `status` is one of `created`, `enabled`, `running`, `ended`. Rules we assumed ([inferred], also in the README's
//! "What it models beyond the spec"):
//! - `status` is derived: `ended` once `endHoldout` ran (final: any later instruction is a 400); otherwise
//!   `running` while an experiment in the holdout has a running iteration, `enabled` while it holds experiments
//!   none of which runs, and `created` while it holds none;
//! - an experiment is in the holdout whose `_id` its `holdoutId` names; creating one with the `holdoutId` of a
//!   holdout that does not exist in that environment, or has ended, is a 400; `removeExperiment` clears the
//!   experiment's `holdoutId` and needs an experiment the holdout holds (400 otherwise);
//! - a create needs `key`, `name`, `holdoutamount` (a number in (0, 100] written as a string),
//!   `randomizationunit` (a unit of the experimentation settings) and `primarymetrickey`; every metric must exist,
//!   the primary one among `metrics` when `metrics` is given; `prerequisiteflagkey` must be a flag of the project;
//!   a service token must name `maintainerId` (as for experiments, contract §9.7); a taken key is a 400;
//! - the list and the create declare no 404, so an unknown project or environment is a 400 there;
//! - `baseExperiment` is a minimal `Experiment` (`type: holdout`, no iterations).
//!
//! The `LD-API-Version` gate (router) follows ldexp's `is_beta_route`, which asks `beta` of these routes as the
//! contract's `Holdouts (beta)` tag says: a call without it is a 403, as for every beta resource.

use std::collections::BTreeMap;

use ldexp_core::api::{Experiment, IterationStatus};
use serde_json::{Map, Value, json};

use crate::experiments::{Expand, page_links, render};
use crate::ids;
use crate::metric_post::check_key;
use crate::model::{Caller, Data, Holdout, MAINTAINER_ID, Project};
use crate::router::query_u64;
use crate::wire::{Fail, Outcome, Response, link};

fn holdouts_href(pk: &str, env: &str) -> String {
    format!("/api/v2/projects/{pk}/environments/{env}/holdouts")
}

/// The project and environment of a list or create: both declare no 404, so an unknown one is a 400.
fn scope<'a>(data: &'a Data, pk: &str, env: &str) -> Outcome<&'a Project> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::bad(format!("Unknown project key {pk}")))?;
    if !project.environments.contains_key(env) {
        return Err(Fail::bad(format!("Unknown environment key {env} in project {pk}")));
    }
    Ok(project)
}

/// The project and environment of a read or patch by key or id, which declare 404.
fn scope_404<'a>(data: &'a Data, pk: &str, env: &str) -> Outcome<&'a Project> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    if !project.environments.contains_key(env) {
        return Err(Fail::not_found(format!("Unknown environment key {env} in project {pk}")));
    }
    Ok(project)
}

fn find<'a>(project: &'a Project, env: &str, key: &str) -> Outcome<&'a Holdout> {
    project
        .holdouts
        .get(env)
        .and_then(|m| m.get(key))
        .ok_or_else(|| Fail::not_found(format!("Unknown holdout key {key} in environment {env}")))
}

/// The experiments in holdout `h`, in key order.
fn members<'a>(project: &'a Project, env: &str, h: &'a Holdout) -> impl Iterator<Item = &'a Experiment> {
    project.experiments.get(env).into_iter().flat_map(|m| m.values()).filter(|e| e.holdout_id.as_deref() == Some(&h.id))
}

fn status(project: &Project, env: &str, h: &Holdout) -> &'static str {
    let running = |e: &Experiment| e.current_iteration.as_ref().is_some_and(|c| c.status == IterationStatus::Running);
    if h.ended {
        "ended"
    } else if members(project, env, h).any(running) {
        "running"
    } else if members(project, env, h).next().is_some() {
        "enabled"
    } else {
        "created"
    }
}

/// `RelatedExperimentRep`s of the holdout's experiments.
fn related(project: &Project, env: &str, h: &Holdout) -> Vec<Value> {
    members(project, env, h).map(|e| json!({ "key": e.key, "name": e.name, "environment": env })).collect()
}

/// The holdout as an `Experiment` (`baseExperiment`): the fields the schema requires and the ones we know.
fn base_experiment(project: &Project, env: &str, h: &Holdout) -> Value {
    let mut v = json!({
        "_id": h.id,
        "key": h.key,
        "name": h.name,
        "_maintainerId": h.maintainer_id,
        "_creationDate": h.created_at,
        "environmentKey": env,
        "type": "holdout",
        "_links": {
            "self": link(format!("{}/{}", holdouts_href(&project.key, env), h.key)),
            "parent": link(holdouts_href(&project.key, env)),
        },
    });
    if let Some(d) = &h.description {
        v["description"] = json!(d);
    }
    v
}

/// The fields `HoldoutRep` and `HoldoutDetailRep` share.
fn common(project: &Project, env: &str, h: &Holdout) -> Value {
    let mut v = json!({
        "_id": h.id,
        "status": status(project, env, h),
        "holdoutAmount": h.holdout_amount,
        "createdAt": h.created_at,
        "updatedAt": h.updated_at,
        "baseExperiment": base_experiment(project, env, h),
    });
    if let Some(d) = &h.description {
        v["description"] = json!(d);
    }
    v
}

/// `HoldoutRep` (create, patch, read by id).
fn holdout_json(project: &Project, env: &str, h: &Holdout) -> Value {
    let mut v = common(project, env, h);
    v["experiments"] = json!(related(project, env, h));
    v
}

/// `getAllHoldouts` → `HoldoutsCollectionRep` of `SimpleHoldoutRep`s, in key order.
pub(crate) fn list(data: &Data, pk: &str, env: &str, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let project = scope(data, pk, env)?;
    let limit = query_u64(query, "limit", 20)?;
    if limit == 0 {
        return Err(Fail::bad("`limit` must be at least 1"));
    }
    let offset = query_u64(query, "offset", 0)?;
    let all: Vec<&Holdout> = project.holdouts.get(env).into_iter().flat_map(|m| m.values()).collect();
    let items: Vec<Value> = all
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|h| {
            json!({
                "_id": h.id,
                "key": h.key,
                "name": h.name,
                "status": status(project, env, h),
                "createdAt": h.created_at,
                "updatedAt": h.updated_at,
                "experiments": related(project, env, h),
            })
        })
        .collect();
    let total = all.len() as u64;
    let links = page_links(&holdouts_href(pk, env), query, limit, offset, total);
    Ok(Response::json(200, json!({ "items": items, "_links": links, "total_count": total })))
}

/// `getHoldout` → `HoldoutDetailRep`; `expand` takes the experiment expansions with a `rel-` prefix for the
/// related experiments (the holdout's own expansions have nothing to show: its base experiment has no iterations).
pub(crate) fn get(data: &Data, pk: &str, env: &str, key: &str, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let project = scope_404(data, pk, env)?;
    let h = find(project, env, key)?;
    let rel: Vec<&str> = query
        .get("expand")
        .map(|s| s.split(',').filter_map(|x| x.trim().strip_prefix("rel-")).collect())
        .unwrap_or_default();
    let rel_query = BTreeMap::from([("expand".to_owned(), rel.join(","))]);
    let expand = Expand::parse(&rel_query);
    let experiments: Vec<Value> = members(project, env, h).map(|e| render(project, e, expand)).collect();
    let running = members(project, env, h)
        .any(|e| e.current_iteration.as_ref().is_some_and(|c| c.status == IterationStatus::Running));
    let mut v = common(project, env, h);
    v["isDirty"] = json!(running);
    v["relatedExperiments"] = json!(experiments);
    Ok(Response::json(200, v))
}

/// `getHoldoutById` → `HoldoutRep`.
pub(crate) fn get_by_id(data: &Data, pk: &str, env: &str, id: &str) -> Outcome<Response> {
    let project = scope_404(data, pk, env)?;
    let h = project
        .holdouts
        .get(env)
        .and_then(|m| m.values().find(|h| h.id == id))
        .ok_or_else(|| Fail::not_found(format!("Unknown holdout id {id} in environment {env}")))?;
    Ok(Response::json(200, holdout_json(project, env, h)))
}

/// An optional string field; present but not a string is a 400.
fn string<'a>(o: &'a Map<String, Value>, field: &str) -> Outcome<Option<&'a str>> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Fail::bad(format!("`{field}` must be a string"))),
    }
}

fn required<'a>(o: &'a Map<String, Value>, field: &str) -> Outcome<&'a str> {
    string(o, field)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Fail::bad(format!("`{field}` is required in a holdout")))
}

/// `postHoldout` → 201 `HoldoutRep`, status `created`.
pub(crate) fn create(data: &mut Data, caller: Caller, pk: &str, env: &str, body: &Value) -> Outcome<Response> {
    let project = scope(data, pk, env)?;
    let Some(o) = body.as_object() else { return Err(Fail::bad("a holdout must be a JSON object")) };
    let key = required(o, "key")?;
    check_key("holdout", key)?;
    let name = required(o, "name")?;
    if project.holdouts.get(env).is_some_and(|m| m.contains_key(key)) {
        return Err(Fail::bad(format!("a holdout with key `{key}` already exists in environment `{env}`")));
    }
    let amount = required(o, "holdoutamount")?;
    if !amount.trim().parse::<f64>().is_ok_and(|a| a > 0.0 && a <= 100.0) {
        return Err(Fail::bad(format!("`holdoutamount` `{amount}` must be a number above 0 and at most 100")));
    }
    let unit = required(o, "randomizationunit")?;
    if !project.settings.randomization_units.iter().any(|u| u.randomization_unit == unit) {
        return Err(Fail::bad(format!(
            "`randomizationunit` `{unit}` is not a randomization unit of project `{pk}` (experimentation settings)"
        )));
    }
    let attributes = match o.get("attributes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| Fail::bad("`attributes` must be strings")))
            .collect::<Outcome<Vec<String>>>()?,
        Some(_) => return Err(Fail::bad("`attributes` must be an array of strings")),
    };
    let metrics = metric_keys(project, o)?;
    let primary = required(o, "primarymetrickey")?;
    if project.metric(primary).is_none() {
        return Err(Fail::bad(format!("primary metric `{primary}` does not exist in project `{pk}`")));
    }
    if !metrics.is_empty() && !metrics.iter().any(|m| m == primary) {
        return Err(Fail::bad(format!("primary metric `{primary}` must be one of `metrics`")));
    }
    let prerequisite = string(o, "prerequisiteflagkey")?;
    if let Some(f) = prerequisite.filter(|f| !project.flags.contains_key(*f)) {
        return Err(Fail::bad(format!("prerequisite flag `{f}` does not exist in project `{pk}`")));
    }
    let maintainer = string(o, "maintainerId")?.filter(|m| !m.trim().is_empty());
    if caller == Caller::Service && maintainer.is_none() {
        return Err(Fail::bad("maintainerId is required when the caller uses a service token"));
    }
    let now = data.peek_tick();
    let h = Holdout {
        id: ids::object_id(&["holdout", pk, env, key]),
        key: key.to_owned(),
        name: name.to_owned(),
        description: string(o, "description")?.map(str::to_owned),
        holdout_amount: amount.to_owned(),
        randomization_unit: unit.to_owned(),
        attributes,
        primary_metric_key: Some(primary.to_owned()),
        metrics,
        prerequisite_flag_key: prerequisite.map(str::to_owned),
        maintainer_id: maintainer.unwrap_or(MAINTAINER_ID).to_owned(),
        created_at: now,
        updated_at: now,
        ended: false,
    };
    data.tick();
    let project = data.projects.get_mut(pk).ok_or_else(|| Fail::bad(format!("Unknown project key {pk}")))?;
    project.holdouts.entry(env.to_owned()).or_default().insert(h.key.clone(), h.clone());
    Ok(Response::json(201, holdout_json(project, env, &h)))
}

/// The keys of `metrics` (`MetricInput`s), each a metric (or, with `isGroup`, a metric group) of the project.
fn metric_keys(project: &Project, o: &Map<String, Value>) -> Outcome<Vec<String>> {
    let items = match o.get("metrics") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Fail::bad("`metrics` must be an array of MetricInput")),
    };
    let mut keys = Vec::new();
    for m in items {
        let key = m.get("key").and_then(Value::as_str).ok_or_else(|| Fail::bad("every metric needs a string `key`"))?;
        let group = m.get("isGroup").and_then(Value::as_bool).unwrap_or(false);
        let known = if group { project.group(key).is_some() } else { project.metric(key).is_some() };
        if !known {
            let what = if group { "metric group" } else { "metric" };
            return Err(Fail::bad(format!("{what} `{key}` does not exist in project `{}`", project.key)));
        }
        keys.push(key.to_owned());
    }
    Ok(keys)
}

/// `patchHoldout`: validated on copies, committed only if every instruction succeeds; a patch whose effect
/// already holds changes nothing, not even the clock.
pub(crate) fn patch(data: &mut Data, pk: &str, env: &str, key: &str, body: &Value) -> Outcome<Response> {
    let project = scope_404(data, pk, env)?;
    let original = find(project, env, key)?;
    let Some(o) = body.as_object() else { return Err(Fail::bad("a semantic patch must be a JSON object")) };
    let instructions = match o.get("instructions") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(Fail::bad("a semantic patch needs at least one instruction")),
        _ => return Err(Fail::bad("`instructions` is required and must be an array")),
    };
    let mut next = original.clone();
    let mut removed: Vec<String> = Vec::new();
    for (i, ins) in instructions.iter().enumerate() {
        let kind = ins.get("kind").and_then(Value::as_str).unwrap_or_default();
        apply(project, env, &mut next, &mut removed, ins)
            .map_err(|f| Fail { message: format!("instruction {i} ({kind}): {}", f.message), ..f })?;
    }
    if &next == original && removed.is_empty() {
        return Ok(Response::json(200, holdout_json(project, env, original)));
    }
    next.updated_at = data.tick();
    let project = data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    for exp in project.experiments.get_mut(env).into_iter().flat_map(|m| m.values_mut()) {
        if removed.contains(&exp.key) {
            exp.holdout_id = None;
        }
    }
    project.holdouts.entry(env.to_owned()).or_default().insert(key.to_owned(), next.clone());
    Ok(Response::json(200, holdout_json(project, env, &next)))
}

fn apply(project: &Project, env: &str, h: &mut Holdout, removed: &mut Vec<String>, ins: &Value) -> Outcome<()> {
    // Ended is final: nothing changes an ended holdout, not even a repeated `endHoldout`.
    if h.ended {
        return Err(Fail::bad(format!("holdout `{}` has ended; an ended holdout cannot change", h.key)));
    }
    let value = || -> Outcome<&str> {
        ins.get("value").and_then(Value::as_str).ok_or_else(|| Fail::bad("`value` is required and must be a string"))
    };
    match ins.get("kind").and_then(Value::as_str) {
        Some("endHoldout") => h.ended = true,
        Some("updateName") => {
            let name = value()?;
            if name.trim().is_empty() {
                return Err(Fail::bad("the name must not be empty"));
            }
            h.name = name.to_owned();
        }
        Some("updateDescription") => h.description = Some(value()?.to_owned()),
        Some("removeExperiment") => {
            let exp = value()?;
            let member = members(project, env, h).any(|e| e.key == exp) && !removed.iter().any(|r| r == exp);
            if !member {
                return Err(Fail::bad(format!("experiment `{exp}` is not in holdout `{}`", h.key)));
            }
            removed.push(exp.to_owned());
        }
        Some(other) => {
            return Err(Fail::bad(format!(
                "unknown instruction kind `{other}` (patchHoldout takes endHoldout, removeExperiment, updateName, \
                 updateDescription)"
            )));
        }
        None => return Err(Fail::bad("every instruction needs a string `kind`")),
    }
    Ok(())
}

/// Refuses an experiment create whose `holdoutId` names no holdout of `env`, or one that has ended.
pub(crate) fn check_join(project: &Project, env: &str, holdout_id: &str) -> Outcome<()> {
    let h = project
        .holdouts
        .get(env)
        .and_then(|m| m.values().find(|h| h.id == holdout_id))
        .ok_or_else(|| Fail::bad(format!("holdoutId `{holdout_id}` is not a holdout in environment `{env}`")))?;
    if h.ended {
        return Err(Fail::bad(format!("holdout `{}` has ended; experiments cannot join an ended holdout", h.key)));
    }
    Ok(())
}
