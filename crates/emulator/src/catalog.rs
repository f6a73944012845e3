//! The project catalog's shared pieces: paging of the metric and metric-group lists, the member a maintainer id
//! stands for, and the experimentation settings (GET, PUT). Metrics live in `metrics.rs`, groups in `groups.rs`.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::ExperimentationSettingsPut;
use serde_json::{Value, json};

use crate::model::{Data, MAINTAINER_ID, Project, UnitSetting, display_name};
use crate::wire::{Fail, Outcome, Response, link, self_links};

/// Metric and metric-group lists cap `limit` at 50 (quirk 9).
const MAX_LIMIT: u64 = 50;
const DEFAULT_LIMIT: u64 = 20;

/// `MemberSummary` of the member `id`. The emulator knows one member (the personal token's); any other maintainer
/// id is accepted, as experiments accept it, and shown as a placeholder member with that id.
pub(crate) fn member(id: &str) -> Value {
    if id == MAINTAINER_ID {
        return json!({
            "_links": { "self": link(format!("/api/v2/members/{MAINTAINER_ID}")) },
            "_id": MAINTAINER_ID,
            "firstName": "Ada",
            "lastName": "Emulator",
            "role": "admin",
            "email": "ada@example.com",
        });
    }
    json!({
        "_links": { "self": link(format!("/api/v2/members/{id}")) },
        "_id": id,
        "role": "writer",
        "email": format!("member-{id}@example.com"),
    })
}

/// `limit` clamped to 1..=50 and `offset` to ≥ 0: these routes document no 400, so a bad value is corrected.
pub(crate) fn page(query: &BTreeMap<String, String>) -> (u64, u64) {
    let num = |k: &str| query.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let limit = num("limit").map_or(DEFAULT_LIMIT, |l| u64::try_from(l.clamp(1, 50)).unwrap_or(MAX_LIMIT));
    let offset = num("offset").map_or(0, |o| u64::try_from(o.max(0)).unwrap_or(0));
    (limit.min(MAX_LIMIT), offset)
}

pub(crate) fn slice<T>(items: &[T], limit: u64, offset: u64) -> impl Iterator<Item = &T> {
    items.iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// The settings as the service shows them. With `default_last` (`--differ settings-units-order`) the default unit
/// comes last instead of first.
fn settings_json(project: &Project, default_last: bool) -> Value {
    // The service answers the default unit first, whatever order the PUT sent (contract §8, [ext]); the rest keep
    // their order.
    let mut ordered: Vec<&UnitSetting> = project.settings.randomization_units.iter().collect();
    if default_last {
        ordered.sort_by_key(|u| u.default);
    } else {
        ordered.sort_by_key(|u| !u.default);
    }
    let units: Vec<Value> = ordered
        .into_iter()
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

/// `getExperimentationSettings`; `default_last` as in [`settings_json`].
pub(crate) fn get_settings(project: &Project, default_last: bool) -> Outcome<Response> {
    Ok(Response::json(200, settings_json(project, default_last)))
}

/// `putExperimentationSettings`: units must be known context kinds, at most one default, no duplicates. The
/// answer is ordered as `getExperimentationSettings` orders it (`default_last`).
pub(crate) fn put_settings(data: &mut Data, pk: &str, body: &Value, default_last: bool) -> Outcome<Response> {
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
    Ok(Response::json(200, settings_json(project, default_last)))
}
