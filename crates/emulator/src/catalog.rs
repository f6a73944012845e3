//! Read-mostly project catalog: metrics (list, single), metric groups (list, single), experimentation settings.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::ExperimentationSettingsPut;
use serde_json::{Value, json};

use crate::experiments::{group_members, page_links};
use crate::model::{Data, GroupDef, MAINTAINER_ID, MetricDef, Project, UnitSetting, display_name};
use crate::wire::{Fail, Outcome, Response, link, self_links};

/// Metric and metric-group lists cap `limit` at 50 (quirk 9).
const MAX_LIMIT: u64 = 50;
const DEFAULT_LIMIT: u64 = 20;

fn member() -> Value {
    json!({
        "_links": { "self": link(format!("/api/v2/members/{MAINTAINER_ID}")) },
        "_id": MAINTAINER_ID,
        "firstName": "Ada",
        "lastName": "Emulator",
        "role": "admin",
        "email": "ada@example.com",
    })
}

/// `MetricRep` / `MetricListingRep`.
fn metric_json(project: &Project, m: &MetricDef) -> Value {
    let mut v = json!({
        "_id": m.id,
        "_versionId": m.version_id,
        "_version": 1,
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
        "maintainerId": MAINTAINER_ID,
        "isNumeric": m.is_numeric,
        "randomizationUnits": m.randomization_units,
        "analysisType": "mean",
        "dataSource": { "key": "launchdarkly", "_name": "LaunchDarkly" },
        "archived": false,
    });
    let optional = [
        ("eventKey", &m.event_key),
        ("unitAggregationType", &m.unit_aggregation_type),
        ("successCriteria", &m.success_criteria),
        ("unit", &m.unit),
        ("description", &m.description),
    ];
    for (k, val) in optional {
        if let Some(s) = val {
            v[k] = json!(s);
        }
    }
    v
}

/// `limit` clamped to 1..=50 and `offset` to ≥ 0: these routes document no 400, so a bad value is corrected.
fn page(query: &BTreeMap<String, String>) -> Outcome<(u64, u64)> {
    let num = |k: &str| query.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let limit = num("limit").map_or(DEFAULT_LIMIT, |l| u64::try_from(l.clamp(1, 50)).unwrap_or(MAX_LIMIT));
    let offset = num("offset").map_or(0, |o| u64::try_from(o.max(0)).unwrap_or(0));
    Ok((limit.min(MAX_LIMIT), offset))
}

fn slice<T>(items: &[T], limit: u64, offset: u64) -> impl Iterator<Item = &T> {
    items.iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// `getMetrics`: `limit` (at most 50), `offset`, `totalCount`.
pub(crate) fn list_metrics(project: &Project, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let (limit, offset) = page(query)?;
    let items: Vec<Value> = slice(&project.metrics, limit, offset).map(|m| metric_json(project, m)).collect();
    let total = project.metrics.len() as u64;
    let path = format!("/api/v2/metrics/{}", project.key);
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": page_links(&path, query, limit, offset, total) }),
    ))
}

/// `getMetric`.
pub(crate) fn get_metric(project: &Project, key: &str) -> Outcome<Response> {
    let m = project
        .metric(key)
        .ok_or_else(|| Fail::not_found(format!("Unknown metric key {key} in project {}", project.key)))?;
    Ok(Response::json(200, metric_json(project, m)))
}

/// `MetricGroupRep`.
fn group_json(project: &Project, g: &GroupDef) -> Value {
    let metrics: Vec<Value> = group_members(project, g)
        .into_iter()
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .map(|mut v| {
            if let Some(def) = v.get("key").and_then(Value::as_str).and_then(|k| project.metric(k)) {
                v["randomizationUnits"] = json!(def.randomization_units);
            }
            v
        })
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
        "_lastModified": g.creation_date,
        "maintainer": { "member": member() },
        "metrics": metrics,
        "_version": 1,
    });
    if let Some(d) = &g.description {
        v["description"] = json!(d);
    }
    v
}

/// `getMetricGroups`.
pub(crate) fn list_groups(project: &Project, query: &BTreeMap<String, String>) -> Outcome<Response> {
    let (limit, offset) = page(query)?;
    let items: Vec<Value> = slice(&project.metric_groups, limit, offset).map(|g| group_json(project, g)).collect();
    let total = project.metric_groups.len() as u64;
    let path = format!("/api/v2/projects/{}/metric-groups", project.key);
    Ok(Response::json(
        200,
        json!({ "items": items, "totalCount": total, "_links": page_links(&path, query, limit, offset, total) }),
    ))
}

/// `getMetricGroup`.
pub(crate) fn get_group(project: &Project, key: &str) -> Outcome<Response> {
    let g = project
        .group(key)
        .ok_or_else(|| Fail::not_found(format!("Unknown metric group key {key} in project {}", project.key)))?;
    Ok(Response::json(200, group_json(project, g)))
}

fn settings_json(project: &Project) -> Value {
    let units: Vec<Value> = project
        .settings
        .randomization_units
        .iter()
        .map(|u| {
            json!({
                "randomizationUnit": u.randomization_unit,
                "default": u.default,
                "_hidden": false,
                "_displayName": display_name(&u.randomization_unit),
            })
        })
        .collect();
    json!({
        "_projectId": project.id,
        "_projectKey": project.key,
        "randomizationUnits": units,
        "_creationDate": project.settings.creation_date,
        "_links": self_links(format!("/api/v2/projects/{}/experimentation-settings", project.key)),
    })
}

/// `getExperimentationSettings`.
pub(crate) fn get_settings(project: &Project) -> Outcome<Response> {
    Ok(Response::json(200, settings_json(project)))
}

/// `putExperimentationSettings`: units must be known context kinds, at most one default, no duplicates.
pub(crate) fn put_settings(data: &mut Data, pk: &str, body: &Value) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let put: ExperimentationSettingsPut = serde_json::from_value(body.clone())
        .map_err(|e| Fail::bad(format!("invalid experimentation settings: {e}")))?;
    let mut seen = BTreeSet::new();
    for u in &put.randomization_units {
        if !project.context_kinds.contains(&u.randomization_unit) {
            return Err(Fail::bad(format!(
                "randomization unit `{}` is not a context kind of project `{pk}` ({})",
                u.randomization_unit,
                project.context_kinds.join(", ")
            )));
        }
        if !seen.insert(u.randomization_unit.as_str()) {
            return Err(Fail::bad(format!("randomization unit `{}` is listed twice", u.randomization_unit)));
        }
    }
    if put.randomization_units.iter().filter(|u| u.default).count() > 1 {
        return Err(Fail::bad("at most one randomization unit can be the default"));
    }
    let units: Vec<UnitSetting> = put
        .randomization_units
        .iter()
        .map(|u| UnitSetting { randomization_unit: u.randomization_unit.clone(), default: u.default })
        .collect();
    if units != project.settings.randomization_units {
        data.tick();
    }
    let project = data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    project.settings.randomization_units = units;
    Ok(Response::json(200, settings_json(project)))
}
