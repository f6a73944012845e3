//! Metrics: the list and single reads, create (`postMetric`), JSON patch (`patchMetric`) and delete
//! (`deleteMetric`), rendered as `MetricListingRep` / `MetricRep`. What a valid metric is lives in `metric_post.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::catalog::{page, slice};
use crate::experiments::page_links;
use crate::metric_post::{self, Mode, POST_FIELDS};
use crate::model::{Caller, Data, MetricDef, Project};
use crate::wire::{Fail, Outcome, Response, link};
use crate::{ids, patching, usage};

/// Fields a patch cannot change, with the reason the answer gives. `kind`, `eventKey` and `isNumeric` are an
/// assumption ([inferred]): the results already collected for a metric are only meaningful for what it measured.
const FIXED: [(&str, &str); 4] = [
    ("key", "it identifies the metric"),
    ("kind", "a metric's kind is set when it is created; create a new metric instead"),
    ("eventKey", "a metric's event key is set when it is created; create a new metric instead"),
    ("isNumeric", "whether a metric is numeric is set when it is created; create a new metric instead"),
];

/// `dataSource`: LaunchDarkly's own unless the metric names another; `_name` is shown for LaunchDarkly's.
fn data_source(m: &MetricDef) -> Value {
    let mut v = m.data_source.clone().unwrap_or_else(|| json!({ "key": "launchdarkly" }));
    if v["key"] == "launchdarkly" {
        v["_name"] = json!("LaunchDarkly");
    }
    v
}

/// `MetricRep`; lists show the same fields (`MetricListingRep` is its subset).
pub(crate) fn metric_json(project: &Project, m: &MetricDef) -> Value {
    let mut v = json!({
        "_id": m.id,
        "_versionId": m.version_id,
        "_version": m.version,
        "key": m.key,
        "name": m.name,
        "kind": m.kind,
        "_links": {
            "self": link(format!("/api/v2/metrics/{}/{}", project.key, m.key)),
            "parent": link(format!("/api/v2/metrics/{}", project.key)),
        },
        "_site": { "href": format!("/{}/metrics/{}/details", project.key, m.key), "type": "text/html" },
        "tags": m.tags,
        "_creationDate": m.creation_date,
        "maintainerId": m.maintainer_id,
        "isNumeric": m.is_numeric,
        "randomizationUnits": m.randomization_units,
        "analysisType": m.analysis_type.as_deref().unwrap_or("mean"),
        "dataSource": data_source(m),
        "archived": false,
    });
    let optional = [
        ("eventKey", m.event_key.as_ref().map(|s| json!(s))),
        ("unitAggregationType", m.unit_aggregation_type.as_ref().map(|s| json!(s))),
        ("successCriteria", m.success_criteria.as_ref().map(|s| json!(s))),
        ("unit", m.unit.as_ref().map(|s| json!(s))),
        ("description", m.description.as_ref().map(|s| json!(s))),
        ("percentileValue", m.percentile_value.map(|p| json!(p))),
        ("eventDefault", m.event_default.clone()),
        ("selector", m.selector.as_ref().map(|s| json!(s))),
        ("urls", m.urls.as_ref().map(|u| json!(u))),
        ("filters", m.filters.clone()),
    ];
    for (k, val) in optional {
        if let Some(x) = val {
            v[k] = x;
        }
    }
    v
}

fn project<'a>(data: &'a Data, pk: &str) -> Outcome<&'a Project> {
    data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))
}

fn project_mut<'a>(data: &'a mut Data, pk: &str) -> Outcome<&'a mut Project> {
    data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))
}

fn find<'a>(project: &'a Project, key: &str) -> Outcome<&'a MetricDef> {
    project.metric(key).ok_or_else(|| Fail::not_found(format!("Unknown metric key {key} in project {}", project.key)))
}

/// A `_versionId` no other version of any metric shares: the object id tells a re-created metric apart.
fn version_id(pk: &str, key: &str, version: i64, id: &str) -> String {
    ids::uuid(&["metric-version", pk, key, &version.to_string(), id])
}

/// `getMetrics`: `limit` (at most 50), `offset`, `totalCount`.
pub(crate) fn list(project: &Project, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let (limit, offset) = page(query);
    let items: Vec<Value> = slice(&project.metrics, limit, offset).map(|m| metric_json(project, m)).collect();
    let total = project.metrics.len() as u64;
    let path = format!("/api/v2/metrics/{}", project.key);
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": page_links(&path, query, limit, offset, total) }),
    ))
}

/// `getMetric`.
pub(crate) fn get(project: &Project, key: &str) -> Outcome<Response> {
    Ok(Response::json(200, metric_json(project, find(project, key)?)))
}

/// `postMetric`: 201 with the new metric; 400 when it breaks a rule of `metric_post.rs`, 409 when the key is taken.
pub(crate) fn create(data: &mut Data, caller: Caller, pk: &str, body: &Value) -> Outcome<Response> {
    let p = project(data, pk)?;
    let valid = metric_post::validate(p, body, Mode::Create(caller))?;
    if p.metric(&valid.key).is_some() {
        return Err(Fail::exists(format!("a metric with key `{}` already exists in project `{pk}`", valid.key)));
    }
    let now = data.tick();
    let serial = data.next_serial().to_string();
    let id = ids::object_id(&["metric", pk, &valid.key, &serial]);
    let metric =
        MetricDef { version_id: version_id(pk, &valid.key, 1, &id), id, version: 1, creation_date: now, ..valid };
    let body = metric_json(project(data, pk)?, &metric);
    project_mut(data, pk)?.metrics.push(metric);
    Ok(Response::json(201, body))
}

/// `patchMetric`: an RFC 6902 patch of the `MetricRep`. Refused with 400, changing nothing: `_` fields, `key`, the
/// creation-only fields, fields outside `MetricPost`, a failed `test`, and a result that a create would refuse. A
/// patch that changes something bumps `_version` and `_versionId`; one that changes nothing bumps nothing.
pub(crate) fn patch(data: &mut Data, pk: &str, key: &str, body: &Value) -> Outcome<Response> {
    let p = project(data, pk)?;
    let original = find(p, key)?;
    let ops = patching::parse_array(body)?;
    patching::check_paths(&ops, "metric", &FIXED)?;
    let before = metric_json(p, original);
    let mut after = before.clone();
    patching::apply(&mut after, &ops)?;
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return Err(Fail::bad("a metric must stay a JSON object"));
    };
    for k in b.keys().chain(a.keys()) {
        if !POST_FIELDS.contains(&k.as_str()) && b.get(k) != a.get(k) {
            return Err(Fail::bad(format!("`/{k}` is not an editable field of a metric")));
        }
    }
    if let Some((field, why)) = FIXED.iter().find(|(f, _)| b.get(*f) != a.get(*f)) {
        return Err(Fail::bad(format!("`/{field}` cannot be changed: {why}")));
    }
    let fields: Map<String, Value> =
        a.iter().filter(|(k, _)| POST_FIELDS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let valid = metric_post::validate(p, &Value::Object(fields), Mode::Patch)
        .map_err(|e| Fail::bad(format!("the patched metric is not valid: {}", e.message)))?;
    let mut next = MetricDef {
        id: original.id.clone(),
        version_id: original.version_id.clone(),
        version: original.version,
        creation_date: original.creation_date,
        ..valid
    };
    if metric_json(p, &next) == before {
        return Ok(Response::json(200, before));
    }
    next.version += 1;
    next.version_id = version_id(pk, key, next.version, &next.id);
    let body = metric_json(p, &next);
    data.tick();
    if let Some(slot) = project_mut(data, pk)?.metrics.iter_mut().find(|m| m.key == key) {
        *slot = next;
    }
    Ok(Response::json(200, body))
}

/// `deleteMetric`: 204, or 404 for an unknown metric. A metric that an experiment, a legacy flag experiment or a
/// metric group uses is refused with 400 naming them, which the contract does not declare for this operation
/// (assumption: a delete cannot leave them naming a metric that is gone).
pub(crate) fn delete(data: &mut Data, pk: &str, key: &str) -> Outcome<Response> {
    let p = project(data, pk)?;
    find(p, key)?;
    let users = usage::metric_users(p, key);
    if !users.is_empty() {
        return Err(Fail::bad(format!(
            "metric `{key}` cannot be deleted while it is in use: {}; remove it from them first",
            users.join(", ")
        )));
    }
    data.tick();
    project_mut(data, pk)?.metrics.retain(|m| m.key != key);
    Ok(Response::empty(204))
}
