//! Metric groups (`Metrics (beta)`): the list and single reads, create (`createMetricGroup`), JSON patch
//! (`patchMetricGroup`) and delete (`deleteMetricGroup`), rendered as `MetricGroupRep`, and what a valid group is.
//!
//! Rules the contract states: `name`, `kind` (funnel or standard), `maintainerId`, `tags` and `metrics` (each
//! `{key, nameInGroup}`) are required. Rules we assumed ([inferred]): `key` is required too (the schema leaves it
//! optional, but a group without one cannot be read back by key); every member is a metric of the project, listed
//! once; a group has at least one metric and a funnel at least two (a funnel is a sequence of steps); a taken key
//! is a 400 (the operation declares neither 409 nor a better status); `key` and `kind` are fixed at creation.

use std::collections::BTreeMap;

use ldexp_core::api::MetricSummary;
use serde_json::{Value, json};

use crate::catalog::{member, page, slice};
use crate::experiments::{metric_v2, page_links};
use crate::metric_post::{Fields, check_key};
use crate::model::{Data, GroupDef, MetricDef, Project};
use crate::wire::{Fail, Outcome, Response, link};
use crate::{ids, patching, usage};

/// Fields a patch cannot change, with the reason the answer gives.
const FIXED: [(&str, &str); 2] = [
    ("key", "it identifies the metric group"),
    ("kind", "a metric group's kind is set when it is created; create a new group instead"),
];

/// Top-level fields a patch may change. `maintainerId` is not part of `MetricGroupRep`, so the patched document
/// carries it beside the representation (`add` or `replace` `/maintainerId` both work).
const EDITABLE: [&str; 5] = ["name", "description", "tags", "maintainerId", "metrics"];

/// `MetricInGroupRep` of metric `m` in a group where it is called `name_in_group`.
fn member_json(project: &Project, m: &MetricDef, name_in_group: &str) -> Value {
    let summary = MetricSummary { name_in_group: Some(name_in_group.to_owned()), ..metric_v2(project, m) };
    let mut v = serde_json::to_value(summary).unwrap_or(Value::Null);
    v["randomizationUnits"] = json!(m.randomization_units);
    v
}

/// `MetricGroupRep`.
fn group_json(project: &Project, g: &GroupDef) -> Value {
    let metrics: Vec<Value> = g
        .metrics
        .iter()
        .filter_map(|k| project.metric(k))
        .map(|m| member_json(project, m, g.name_in_group(&m.key, &m.name)))
        .collect();
    let mut v = json!({
        "_id": g.id,
        "key": g.key,
        "name": g.name,
        "kind": g.kind,
        "_links": {
            "self": link(format!("/api/v2/projects/{}/metric-groups/{}", project.key, g.key)),
            "parent": link(format!("/api/v2/projects/{}", project.key)),
        },
        "tags": g.tags,
        "_creationDate": g.creation_date,
        "_lastModified": g.last_modified.unwrap_or(g.creation_date),
        "maintainer": { "member": member(&g.maintainer_id) },
        "metrics": metrics,
        "_version": g.version,
    });
    if let Some(d) = &g.description {
        v["description"] = json!(d);
    }
    v
}

fn project<'a>(data: &'a Data, pk: &str) -> Outcome<&'a Project> {
    data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))
}

fn project_mut<'a>(data: &'a mut Data, pk: &str) -> Outcome<&'a mut Project> {
    data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))
}

fn find<'a>(project: &'a Project, key: &str) -> Outcome<&'a GroupDef> {
    project
        .group(key)
        .ok_or_else(|| Fail::not_found(format!("Unknown metric group key {key} in project {}", project.key)))
}

fn version_id(pk: &str, key: &str, version: i64, id: &str) -> String {
    ids::uuid(&["metric-group-version", pk, key, &version.to_string(), id])
}

/// `getMetricGroups`.
pub(crate) fn list(project: &Project, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let (limit, offset) = page(query);
    let items: Vec<Value> = slice(&project.metric_groups, limit, offset).map(|g| group_json(project, g)).collect();
    let total = project.metric_groups.len() as u64;
    let path = format!("/api/v2/projects/{}/metric-groups", project.key);
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": page_links(&path, query, limit, offset, total) }),
    ))
}

/// `getMetricGroup`.
pub(crate) fn get(project: &Project, key: &str) -> Outcome<Response> {
    Ok(Response::json(200, group_json(project, find(project, key)?)))
}

/// Checks `body` (a `MetricGroupPost`, or a patched group) and returns the group it describes. The identity fields
/// (`id`, `version_id`, `version`, `creation_date`, `last_modified`) are left empty for the caller to set.
fn validate(project: &Project, body: &Value) -> Outcome<GroupDef> {
    let Some(o) = body.as_object() else { return Err(Fail::bad("a metric group must be a JSON object")) };
    let f = Fields(o);
    let required = |k: &str| Fail::bad(format!("`{k}` is required"));
    let key = f.string("key")?.ok_or_else(|| required("key"))?;
    check_key("metric group", key)?;
    let name = f.text("name")?.ok_or_else(|| required("name"))?;
    let kind = f.one_of("kind", &["funnel", "standard"])?.ok_or_else(|| required("kind"))?;
    let description = f.string("description")?;
    let maintainer_id = f.text("maintainerId")?.ok_or_else(|| required("maintainerId"))?;
    let tags = f.strings("tags")?.ok_or_else(|| required("tags"))?;
    let items = match o.get("metrics") {
        None => return Err(required("metrics")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Fail::bad("`metrics` must be an array of {key, nameInGroup}")),
    };
    let mut keys: Vec<String> = Vec::new();
    let mut names = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = |e: Fail| Fail::bad(format!("`metrics[{i}]`: {}", e.message));
        let Some(o) = item.as_object() else { return Err(at(Fail::bad("must be an object {key, nameInGroup}"))) };
        let m = Fields(o);
        let k = m.text("key").map_err(at)?.ok_or_else(|| at(required("key")))?;
        let n = m.string("nameInGroup").map_err(at)?.ok_or_else(|| at(required("nameInGroup")))?;
        if keys.iter().any(|x| x == k) {
            return Err(Fail::bad(format!("metric `{k}` is listed twice in metric group `{key}`")));
        }
        keys.push(k.to_owned());
        names.insert(k.to_owned(), n.to_owned());
    }
    if keys.is_empty() {
        return Err(Fail::bad(format!("metric group `{key}` needs at least one metric")));
    }
    let missing: Vec<String> = keys.iter().filter(|k| project.metric(k).is_none()).map(|k| format!("`{k}`")).collect();
    if !missing.is_empty() {
        return Err(Fail::bad(format!(
            "metric group `{key}` names metrics that do not exist in project `{}`: {}",
            project.key,
            missing.join(", ")
        )));
    }
    if kind == "funnel" && keys.len() < 2 {
        return Err(Fail::bad(format!(
            "funnel metric group `{key}` needs at least two metrics (its steps), but it has {}",
            keys.len()
        )));
    }
    Ok(GroupDef {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        id: String::new(),
        version_id: String::new(),
        version: 0,
        maintainer_id: maintainer_id.to_owned(),
        description: description.map(str::to_owned),
        metrics: keys,
        names_in_group: names,
        tags,
        creation_date: 0,
        last_modified: None,
    })
}

/// `createMetricGroup`: 201 with the new group; 400 for an invalid body or a key already taken.
pub(crate) fn create(data: &mut Data, pk: &str, body: &Value) -> Outcome<Response> {
    let p = project(data, pk)?;
    let valid = validate(p, body)?;
    if p.group(&valid.key).is_some() {
        return Err(Fail::bad(format!("a metric group with key `{}` already exists in project `{pk}`", valid.key)));
    }
    let now = data.tick();
    let serial = data.next_serial().to_string();
    let id = ids::object_id(&["metric-group", pk, &valid.key, &serial]);
    let group =
        GroupDef { version_id: version_id(pk, &valid.key, 1, &id), id, version: 1, creation_date: now, ..valid };
    let body = group_json(project(data, pk)?, &group);
    project_mut(data, pk)?.metric_groups.push(group);
    Ok(Response::json(201, body))
}

/// What a group patch applies to: the representation plus the `maintainerId` it does not show.
fn patch_document(project: &Project, g: &GroupDef) -> Value {
    let mut doc = group_json(project, g);
    doc["maintainerId"] = json!(g.maintainer_id);
    doc
}

/// A patched member may carry the read-only fields of `MetricInGroupRep` (a `replace` of a whole item copies them),
/// but only with the values the group shows; `key` and `nameInGroup` are the only fields it can set.
fn members_unchanged_but_names(project: &Project, doc: &Value) -> Outcome<()> {
    for (i, item) in doc["metrics"].as_array().into_iter().flatten().enumerate() {
        let key = item["key"].as_str().unwrap_or_default();
        let Some(m) = project.metric(key) else { continue };
        let shown = member_json(project, m, item["nameInGroup"].as_str().unwrap_or_default());
        // Plain fields first, so a stale copy of another metric is reported by a field a reader recognises.
        let mut fields: Vec<(&String, &Value)> = item.as_object().into_iter().flatten().collect();
        fields.sort_by_key(|(f, _)| (f.starts_with('_'), f.as_str()));
        for (field, value) in fields {
            if field != "key" && field != "nameInGroup" && shown.get(field) != Some(value) {
                return Err(Fail::bad(format!(
                    "`/metrics/{i}/{field}` is not editable: a metric group's metrics take only `key` and \
                     `nameInGroup` (to swap a metric, replace the whole item with {{key, nameInGroup}})"
                )));
            }
        }
    }
    Ok(())
}

/// `patchMetricGroup`: an RFC 6902 patch of the `MetricGroupRep` (plus `maintainerId`). Refused with 400, changing
/// nothing: `_` fields, `key`, `kind`, other fields outside `MetricGroupPost`, a failed `test`, and a result that a
/// create would refuse. A change bumps `_version` and `_lastModified`; a patch that changes nothing bumps nothing.
pub(crate) fn patch(data: &mut Data, pk: &str, key: &str, body: &Value) -> Outcome<Response> {
    let p = project(data, pk)?;
    let original = find(p, key)?;
    let ops = patching::parse_array(body)?;
    patching::check_paths(&ops, "metric group", &FIXED)?;
    let before = patch_document(p, original);
    let mut after = before.clone();
    patching::apply(&mut after, &ops)?;
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return Err(Fail::bad("a metric group must stay a JSON object"));
    };
    if let Some((field, why)) = FIXED.iter().find(|(f, _)| b.get(*f) != a.get(*f)) {
        return Err(Fail::bad(format!("`/{field}` cannot be changed: {why}")));
    }
    for k in b.keys().chain(a.keys()) {
        if !EDITABLE.contains(&k.as_str()) && !FIXED.iter().any(|(f, _)| f == k) && b.get(k) != a.get(k) {
            return Err(Fail::bad(format!("`/{k}` is not an editable field of a metric group")));
        }
    }
    let valid =
        validate(p, &after).map_err(|e| Fail::bad(format!("the patched metric group is not valid: {}", e.message)))?;
    members_unchanged_but_names(p, &after)?;
    let mut next = GroupDef {
        id: original.id.clone(),
        version_id: original.version_id.clone(),
        version: original.version,
        creation_date: original.creation_date,
        last_modified: original.last_modified,
        ..valid
    };
    if patch_document(p, &next) == before {
        return Ok(Response::json(200, group_json(p, original)));
    }
    next.version += 1;
    next.version_id = version_id(pk, key, next.version, &next.id);
    next.last_modified = Some(data.peek_tick());
    let body = group_json(p, &next);
    data.tick();
    if let Some(slot) = project_mut(data, pk)?.metric_groups.iter_mut().find(|g| g.key == key) {
        *slot = next;
    }
    Ok(Response::json(200, body))
}

/// `deleteMetricGroup`: 204, or 404 for an unknown group; 400 (declared) naming the experiments that measure the
/// group or use it as their primary funnel.
pub(crate) fn delete(data: &mut Data, pk: &str, key: &str) -> Outcome<Response> {
    let p = project(data, pk)?;
    find(p, key)?;
    let users = usage::group_users(p, key);
    if !users.is_empty() {
        return Err(Fail::bad(format!(
            "metric group `{key}` cannot be deleted while it is in use: {}; remove it from them first",
            users.join(", ")
        )));
    }
    data.tick();
    project_mut(data, pk)?.metric_groups.retain(|g| g.key != key);
    Ok(Response::empty(204))
}
