//! Export of the catalog kinds: each metric and metric group of a project, and its experimentation settings, as
//! the spec that plans empty against them.
//!
//! The planner compares exactly the managed fields, under the API's names ([`metric_fields`], [`group_fields`]),
//! with [`same`]; so a spec here sets each field LaunchDarkly has, as it has it, and nothing else:
//! - absent stays absent, and so do empty lists and empty text (which [`same`] reads as absent);
//! - the API's `kind` becomes `eventKind` or `groupKind`, a group's `maintainer.member._id` its `maintainerId`, and
//!   the settings' units keep LaunchDarkly's order (the default first) with their `default`;
//! - a field the spec format refuses for the metric's kind, and that means nothing there (`eventKey` or `isNumeric`
//!   off `custom`, `urls` on `custom`, `selector` off `click`, `unit` off a numeric metric, `percentileValue` without
//!   `analysisType: percentile`), is left out: the spec then leaves it unmanaged;
//! - a value the format cannot hold (an unknown kind or enum value, a `urls` entry that is not a matcher, an
//!   `eventDefault` other than `{disabled, value: 0}`, a funnel of one step) makes the object an
//!   [`Error::Export`], as an experiment that cannot be described is: reported, never dropped.
//!
//! Every spec is checked twice before it is returned: its managed fields against LaunchDarkly's with [`same`] (the
//! plan's own comparison), and its YAML through the spec loader (the checks `ldexp validate` runs). Either failing
//! is an [`Error::Export`] naming the field or the rule.

use serde_json::Value;

use super::{parse_enum, to_yaml};
use crate::Error;
use crate::api::{ExperimentationSettings, Metric, MetricGroup};
use crate::catalog::{group_fields, metric_fields, same};
use crate::spec::{
    AnalysisType, EventDefault, EventKind, ExperimentationSettingsSpec, GroupKind, GroupMember, MetricGroupSpec,
    MetricSpec, SpecDocument, SuccessCriteria, UnitAggregationType, UnitSpec, UrlMatcher,
};

/// The spec of metric `m` of `project`. What the spec cannot say but loses nothing a plan compares (the metric is
/// archived) is pushed onto `warnings`.
pub fn export_metric(m: &Metric, project: &str, warnings: &mut Vec<String>) -> Result<MetricSpec, Error> {
    let resource = format!("metric {project}/{}", m.key);
    let fail = |message: String| Error::Export { resource: resource.clone(), message };
    let event_kind = parse_enum::<EventKind>(&m.kind).ok_or_else(|| {
        fail(format!("its kind `{}` is not pageview, click or custom, which a spec cannot express", m.kind))
    })?;
    let custom = event_kind == EventKind::Custom;
    let numeric = custom && m.is_numeric == Some(true);
    let analysis_type = enum_field::<AnalysisType>("analysisType", m.analysis_type.as_deref()).map_err(&fail)?;
    let percentile_value = match (analysis_type, m.percentile_value) {
        (Some(AnalysisType::Percentile), Some(p)) => Some(
            u8::try_from(p)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| fail(format!("its percentileValue {p} is not between 0 and 100")))?,
        ),
        (Some(AnalysisType::Percentile), None) => {
            return Err(fail("it is analysed by percentile without a percentileValue".to_owned()));
        }
        _ => None,
    };
    let urls = match (event_kind, &m.urls) {
        (EventKind::Pageview | EventKind::Click, Some(u)) => Some(url_matchers(u).map_err(&fail)?),
        _ => None,
    };
    let spec = MetricSpec {
        project: project.to_owned(),
        key: m.key.clone(),
        name: m.name.clone(),
        description: text(&m.description),
        event_kind,
        event_key: if custom { text(&m.event_key) } else { None },
        is_numeric: m.is_numeric.filter(|_| custom),
        unit: if numeric { text(&m.unit) } else { None },
        success_criteria: enum_field::<SuccessCriteria>("successCriteria", m.success_criteria.as_deref())
            .map_err(&fail)?,
        randomization_units: Some(m.randomization_units.clone()).filter(|u| !u.is_empty()),
        unit_aggregation_type: enum_field::<UnitAggregationType>(
            "unitAggregationType",
            m.unit_aggregation_type.as_deref(),
        )
        .map_err(&fail)?,
        analysis_type,
        percentile_value,
        event_default: m.event_default.as_ref().map(event_default).transpose().map_err(&fail)?,
        urls,
        selector: if event_kind == EventKind::Click { text(&m.selector) } else { None },
        tags: Some(m.tags.clone()).filter(|t| !t.is_empty()),
        maintainer_id: text(&m.maintainer_id),
    };
    if m.archived {
        warnings.push(format!(
            "{resource} is archived; a spec cannot say so (the plan compares the same), and applying it where the \
             metric does not exist creates it unarchived"
        ));
    }
    reads_back(&spec.managed_fields(), &metric_fields(m)).map_err(&fail)?;
    valid(SpecDocument::Metric(spec.clone())).map_err(fail)?;
    Ok(spec)
}

/// The spec of metric group `g` of `project`. A team maintainer, which a spec cannot name, is left out (unmanaged)
/// with a warning.
pub fn export_group(g: &MetricGroup, project: &str, warnings: &mut Vec<String>) -> Result<MetricGroupSpec, Error> {
    let resource = format!("metric group {project}/{}", g.key);
    let fail = |message: String| Error::Export { resource: resource.clone(), message };
    let group_kind = parse_enum::<GroupKind>(&g.kind)
        .ok_or_else(|| fail(format!("its kind `{}` is not funnel or standard, which a spec cannot express", g.kind)))?;
    let maintainer = g.maintainer.as_ref();
    let maintainer_id =
        maintainer.and_then(|m| m.pointer("/member/_id")).and_then(Value::as_str).filter(|id| !id.is_empty());
    if maintainer_id.is_none()
        && let Some(team) = maintainer.and_then(|m| m.get("team")).filter(|t| !t.is_null())
    {
        let key = team.get("key").and_then(Value::as_str).unwrap_or("?");
        warnings.push(format!(
            "{resource} is maintained by team `{key}`; a spec names a member only, so its maintainer is left out \
             (not managed)"
        ));
    }
    let spec = MetricGroupSpec {
        project: project.to_owned(),
        key: g.key.clone(),
        name: g.name.clone(),
        description: g.description.clone().filter(|d| !d.is_empty()),
        group_kind,
        // As the planner reads a member: its name in the group, else its own name.
        metrics: g
            .metrics
            .iter()
            .map(|m| GroupMember {
                key: m.key.clone(),
                name_in_group: m.name_in_group.clone().unwrap_or_else(|| m.name.clone()),
            })
            .collect(),
        maintainer_id: maintainer_id.map(str::to_owned),
        tags: Some(g.tags.clone()).filter(|t| !t.is_empty()),
    };
    reads_back(&spec.managed_fields(), &group_fields(g)).map_err(&fail)?;
    valid(SpecDocument::MetricGroup(spec.clone())).map_err(fail)?;
    Ok(spec)
}

/// The spec of `project`'s experimentation settings: every unit, in LaunchDarkly's order, with its `default`.
pub fn export_settings(s: &ExperimentationSettings, project: &str) -> Result<ExperimentationSettingsSpec, Error> {
    let spec = ExperimentationSettingsSpec {
        project: project.to_owned(),
        randomization_units: s
            .randomization_units
            .iter()
            .map(|u| UnitSpec { randomization_unit: u.randomization_unit.clone(), default: u.default })
            .collect(),
    };
    valid(SpecDocument::ExperimentationSettings(spec.clone()))
        .map_err(|message| Error::Export { resource: format!("experimentation settings {project}"), message })?;
    Ok(spec)
}

/// Text LaunchDarkly holds; empty text stays out, as absent (the plan reads them alike).
fn text(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

/// An optional enum-valued field: absent stays absent, an unknown value is an error naming the field.
fn enum_field<T: serde::de::DeserializeOwned>(field: &str, value: Option<&str>) -> Result<Option<T>, String> {
    value
        .map(|v| parse_enum::<T>(v).ok_or_else(|| format!("its {field} `{v}` is not one a spec can write")))
        .transpose()
}

/// `urls` as matchers; an entry that is not one (or a value that is not a list) is an error naming it.
fn url_matchers(urls: &Value) -> Result<Vec<UrlMatcher>, String> {
    let items = urls.as_array().ok_or_else(|| format!("its urls `{urls}` are not a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, u)| {
            serde_json::from_value::<UrlMatcher>(u.clone()).map_err(|_| {
                format!(
                    "its urls entry {} `{u}` is not a matcher a spec can write ({{kind: exact|canonical, url}}, \
                     {{kind: substring, substring}} or {{kind: regex, pattern}})",
                    i + 1
                )
            })
        })
        .collect()
}

/// `eventDefault` as the spec holds it: `{disabled, value}`, `value` 0 (the only one LaunchDarkly supports).
fn event_default(v: &Value) -> Result<EventDefault, String> {
    let d = serde_json::from_value::<EventDefault>(v.clone())
        .map_err(|_| format!("its eventDefault `{v}` is not {{disabled, value}}, which a spec cannot express"))?;
    match d.value {
        Some(x) if x != 0.0 => Err(format!("its eventDefault value {x} is not 0, which a spec cannot express")),
        _ => Ok(d),
    }
}

/// Whether every field the spec manages reads as LaunchDarkly's under the plan's comparison; the first that does
/// not is named.
fn reads_back(desired: &serde_json::Map<String, Value>, remote: &serde_json::Map<String, Value>) -> Result<(), String> {
    match desired.iter().find(|(k, v)| !same(k, remote.get(k.as_str()), v)) {
        None => Ok(()),
        Some((k, v)) => Err(format!(
            "its `{k}` would be written as {v}, which does not read back as LaunchDarkly's {}",
            remote.get(k.as_str()).map_or_else(|| "(absent)".to_owned(), Value::to_string)
        )),
    }
}

/// The checks `ldexp validate` runs, on the document as export writes it; every problem is named.
fn valid(doc: SpecDocument) -> Result<(), String> {
    match crate::spec::load_str("export.yaml", &to_yaml(&doc, "")) {
        Ok(_) => Ok(()),
        Err(Error::Spec { diagnostics }) => Err(diagnostics
            .iter()
            .map(|d| match &d.help {
                Some(h) => format!("{} ({h})", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")),
        Err(other) => Err(other.to_string()),
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
