//! Layers: the list (`getLayers`), create (`createLayer`) and the semantic patch (`updateLayer`), rendered as
//! `LayerRep`, and the traffic bookkeeping that makes experiments in one layer mutually exclusive.
//!
//! Rules the contract states ([spec]): `LayerPost` needs `key`, `name` and `description`; `reservationPercent` is
//! an integer, and zero is allowed until the iteration starts; reservation instructions take `environmentKey` from
//! the body. Rules we assumed ([inferred], also in the README's "What it models beyond the spec"):
//! - the reservations of a layer add up to at most 100 in each environment, checked after every instruction (so a
//!   patch that moves traffic between two experiments must lower one before it raises the other);
//! - an experiment is in at most one layer per environment;
//! - the experiment must exist in the environment, and a missing one, an unknown environment, or a
//!   `removeExperiment` of an experiment the layer does not hold is `400` (they are body fields, not the path);
//! - `startIteration` of an experiment whose reservation is 0 is `400` ([`check_start`]);
//! - a taken layer key is `400` (the operation declares no 409); layer keys follow the experiment key alphabet.

use std::collections::BTreeMap;

use ldexp_core::api::IterationStatus;
use serde_json::{Map, Value, json};

use crate::metric_post::check_key;
use crate::model::{Data, Layer, Project, Reservation};
use crate::wire::{Fail, Outcome, Response, link};

/// A layer's reservations in one environment never add up to more than this.
const MAX_TOTAL: i64 = 100;

fn layers_href(pk: &str) -> String {
    format!("/api/v2/projects/{pk}/layers")
}

/// `LayerRep`: every environment of the project appears, with its reservations (possibly none), so a reader never
/// has to guess whether an environment was left out or is empty.
fn layer_json(project: &Project, l: &Layer) -> Value {
    let environments: Map<String, Value> = project
        .environments
        .keys()
        .map(|env| {
            let reservations: Vec<Value> = l
                .reservations
                .get(env)
                .into_iter()
                .flatten()
                .map(|r| {
                    json!({
                        "experimentKey": r.experiment_key,
                        "flagKey": r.flag_key,
                        "reservationPercent": r.reservation_percent,
                    })
                })
                .collect();
            (env.clone(), json!({ "reservations": reservations }))
        })
        .collect();
    json!({
        "key": l.key,
        "name": l.name,
        "description": l.description,
        "createdAt": l.created_at,
        "environments": environments,
    })
}

fn project_mut<'a>(data: &'a mut Data, pk: &str) -> Outcome<&'a mut Project> {
    data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))
}

/// `getLayers`. The only filter the operation accepts is `reservations.experimentKey contains K` (any
/// environment); any other filter is a 400, as the operation text says it "only accepts filtering by
/// `experimentKey`".
pub(crate) fn list(project: &Project, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let wanted = match query.get("filter").map(|f| f.trim()).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => {
            let key = f
                .strip_prefix("reservations.experimentKey contains ")
                .map(str::trim)
                .filter(|k| !k.is_empty() && !k.contains(','))
                .ok_or_else(|| {
                    Fail::bad(format!(
                        "unsupported filter `{f}`: getLayers only accepts `reservations.experimentKey contains KEY`"
                    ))
                })?;
            Some(key.to_owned())
        }
    };
    let holds = |l: &Layer, k: &str| l.reservations.values().flatten().any(|r| r.experiment_key == k);
    let items: Vec<Value> = project
        .layers
        .values()
        .filter(|l| wanted.as_deref().is_none_or(|k| holds(l, k)))
        .map(|l| layer_json(project, l))
        .collect();
    let total = items.len();
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": { "self": link(layers_href(&project.key)) } }),
    ))
}

/// A required string field of a JSON object; present but not a string is a 400 too.
fn text<'a>(o: &'a Map<String, Value>, field: &str, what: &str) -> Outcome<&'a str> {
    match o.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Fail::bad(format!("`{field}` of {what} must be a string"))),
        None => Err(Fail::bad(format!("`{field}` is required in {what}"))),
    }
}

/// `createLayer` → 201 `LayerRep`, with no reservations.
pub(crate) fn create(data: &mut Data, pk: &str, body: &Value) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let Some(o) = body.as_object() else { return Err(Fail::bad("a layer must be a JSON object")) };
    let key = text(o, "key", "a layer")?;
    check_key("layer", key)?;
    let name = text(o, "name", "a layer")?;
    if name.trim().is_empty() {
        return Err(Fail::bad("the layer `name` must not be empty"));
    }
    let description = text(o, "description", "a layer")?;
    if project.layers.contains_key(key) {
        return Err(Fail::bad(format!("a layer with key `{key}` already exists in project `{pk}`")));
    }
    let layer = Layer {
        key: key.to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        created_at: data.tick(),
        reservations: BTreeMap::new(),
    };
    let project = project_mut(data, pk)?;
    project.layers.insert(layer.key.clone(), layer.clone());
    Ok(Response::json(201, layer_json(project, &layer)))
}

/// `updateLayer`: every instruction is applied to a copy, which replaces the layer only if all succeed. A patch
/// whose effect already holds changes nothing, not even the clock.
pub(crate) fn patch(data: &mut Data, pk: &str, key: &str, body: &Value) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let original =
        project.layers.get(key).ok_or_else(|| Fail::not_found(format!("Unknown layer key {key} in project {pk}")))?;
    let Some(o) = body.as_object() else { return Err(Fail::bad("a semantic patch must be a JSON object")) };
    let env = match o.get("environmentKey") {
        None => None,
        Some(Value::String(e)) => Some(e.as_str()),
        Some(_) => return Err(Fail::bad("`environmentKey` must be a string")),
    };
    if o.get("comment").is_some_and(|c| !c.is_string()) {
        return Err(Fail::bad("`comment` must be a string"));
    }
    let instructions = match o.get("instructions") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(Fail::bad("a semantic patch needs at least one instruction")),
        Some(_) => return Err(Fail::bad("`instructions` must be an array")),
        None => return Err(Fail::bad("`instructions` is required")),
    };
    let mut next = original.clone();
    for (i, ins) in instructions.iter().enumerate() {
        let kind = ins.get("kind").and_then(Value::as_str).unwrap_or_default();
        apply(project, &mut next, env, ins)
            .map_err(|f| Fail { message: format!("instruction {i} ({kind}): {}", f.message), ..f })?;
    }
    if &next == original {
        return Ok(Response::json(200, layer_json(project, original)));
    }
    data.tick();
    let project = project_mut(data, pk)?;
    project.layers.insert(key.to_owned(), next.clone());
    Ok(Response::json(200, layer_json(project, &next)))
}

fn apply(project: &Project, layer: &mut Layer, env: Option<&str>, ins: &Value) -> Outcome<()> {
    let Some(o) = ins.as_object() else { return Err(Fail::bad("an instruction must be a JSON object")) };
    match o.get("kind").and_then(Value::as_str) {
        Some("updateName") => {
            let name = text(o, "name", "updateName")?;
            if name.trim().is_empty() {
                return Err(Fail::bad("the name must not be empty"));
            }
            layer.name = name.to_owned();
        }
        Some("updateDescription") => layer.description = text(o, "description", "updateDescription")?.to_owned(),
        Some("updateExperimentReservation") => {
            let env = environment(project, env)?;
            let exp = text(o, "experimentKey", "updateExperimentReservation")?;
            let percent = o
                .get("reservationPercent")
                .ok_or_else(|| Fail::bad("`reservationPercent` is required"))?
                .as_i64()
                .filter(|p| (0..=MAX_TOTAL).contains(p))
                .ok_or_else(|| Fail::bad("`reservationPercent` must be an integer from 0 to 100"))?;
            reserve(project, layer, env, exp, percent)?;
        }
        Some("removeExperiment") => {
            let env = environment(project, env)?;
            let exp = text(o, "experimentKey", "removeExperiment")?;
            let list = layer.reservations.entry(env.to_owned()).or_default();
            let before = list.len();
            list.retain(|r| r.experiment_key != exp);
            if list.len() == before {
                return Err(Fail::bad(format!(
                    "layer `{}` holds no reservation for experiment `{exp}` in environment `{env}`",
                    layer.key
                )));
            }
            if list.is_empty() {
                layer.reservations.remove(env);
            }
        }
        Some(other) => {
            return Err(Fail::bad(format!(
                "unknown instruction kind `{other}` (updateLayer takes updateName, updateDescription, \
                 updateExperimentReservation, removeExperiment)"
            )));
        }
        None => return Err(Fail::bad("every instruction needs a string `kind`")),
    }
    Ok(())
}

/// The body's `environmentKey`, which reservation instructions need, checked against the project.
fn environment<'a>(project: &Project, env: Option<&'a str>) -> Outcome<&'a str> {
    let env = env.ok_or_else(|| Fail::bad("`environmentKey` is required in the body for reservation instructions"))?;
    if !project.environments.contains_key(env) {
        return Err(Fail::bad(format!("Unknown environment key {env} in project {}", project.key)));
    }
    Ok(env)
}

/// Adds or changes `exp`'s reservation in `env`, holding every rule of the layer.
fn reserve(project: &Project, layer: &mut Layer, env: &str, exp: &str, percent: i64) -> Outcome<()> {
    let experiment = project
        .experiments
        .get(env)
        .and_then(|m| m.get(exp))
        .ok_or_else(|| Fail::bad(format!("experiment `{exp}` does not exist in environment `{env}`")))?;
    let started = experiment.current_iteration.as_ref().is_some_and(|c| c.status != IterationStatus::NotStarted);
    if percent == 0 && started {
        return Err(Fail::bad(format!(
            "experiment `{exp}` has started an iteration in environment `{env}`: its reservationPercent must be above \
             0 (zero is allowed only until the iteration starts)"
        )));
    }
    if let Some(other) = project
        .layers
        .values()
        .filter(|l| l.key != layer.key)
        .find(|l| l.reservations.get(env).into_iter().flatten().any(|r| r.experiment_key == exp))
    {
        return Err(Fail::bad(format!(
            "experiment `{exp}` is already in layer `{}` in environment `{env}`; an experiment is in at most one layer",
            other.key
        )));
    }
    // The flag the reservation shows: the experiment's (first) flag, from the iteration that will run next.
    let iteration = experiment.draft_iteration.as_deref().or(experiment.current_iteration.as_deref());
    let flag_key = iteration.and_then(|it| it.flags.keys().next()).cloned().unwrap_or_default();
    let list = layer.reservations.entry(env.to_owned()).or_default();
    match list.iter_mut().find(|r| r.experiment_key == exp) {
        Some(r) => r.reservation_percent = percent,
        None => list.push(Reservation { experiment_key: exp.to_owned(), flag_key, reservation_percent: percent }),
    }
    let total: i64 = list.iter().map(|r| r.reservation_percent).sum();
    if total > MAX_TOTAL {
        return Err(Fail::bad(format!(
            "the reservations of layer `{}` in environment `{env}` would add up to {total}%; they may add up to at \
             most 100%",
            layer.key
        )));
    }
    Ok(())
}

/// Refuses to start an iteration of `exp` while its layer reservation in `env` is 0: a zero reservation is only
/// allowed until the iteration starts (contract §8), and an experiment with no traffic cannot run.
pub(crate) fn check_start(project: &Project, env: &str, exp: &str) -> Outcome<()> {
    for l in project.layers.values() {
        if l.reservations.get(env).into_iter().flatten().any(|r| r.experiment_key == exp && r.reservation_percent == 0)
        {
            return Err(Fail::bad(format!(
                "experiment `{exp}` has a reservation of 0% in layer `{}` in environment `{env}`; give it a \
                 reservation above 0 (updateExperimentReservation) before starting an iteration",
                l.key
            )));
        }
    }
    Ok(())
}
