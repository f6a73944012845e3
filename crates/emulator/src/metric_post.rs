//! What a metric must be: the `MetricPost` rules (contract §8 and the schema's field texts) that a create and a
//! patched metric both pass, and the stored [`MetricDef`] they produce.
//!
//! Rules the contract states: `key` and `kind` are required; `kind` is pageview, click or custom; custom metrics
//! need `eventKey` and `isNumeric`; click metrics need `selector` and `urls`, pageview metrics `urls`; `unit` is for
//! numeric custom metrics; `successCriteria` is required for them; `percentileValue` is an integer from 0 to 100,
//! required when `analysisType` is percentile; `eventDefault.value` can only be 0; `filters` are for custom metrics.
//! Rules we assumed ([inferred], each marked where it is checked): a field that belongs to another kind is refused
//! rather than ignored; a `percentileValue` without percentile analysis is refused; percentile analysis needs a
//! numeric metric; `randomizationUnits` must be context kinds of the project, non-empty and without repeats; the key
//! follows LaunchDarkly's key alphabet; a service token must name the maintainer (§9.7, seen on experiments).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::model::{Caller, MAINTAINER_ID, MetricDef, Project};
use crate::wire::{Fail, Outcome};

/// Why a metric is being validated: a create fills in the maintainer from the caller; a patch must keep one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create(Caller),
    Patch,
}

/// The fields of `MetricPost`: what a create may send and a patch may edit.
pub(crate) const POST_FIELDS: [&str; 19] = [
    "key",
    "name",
    "description",
    "kind",
    "selector",
    "urls",
    "isNumeric",
    "unit",
    "eventKey",
    "successCriteria",
    "tags",
    "randomizationUnits",
    "maintainerId",
    "unitAggregationType",
    "analysisType",
    "percentileValue",
    "eventDefault",
    "dataSource",
    "filters",
];

/// A JSON object's fields, read with a 400 naming the field when one has the wrong type.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub(crate) fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    pub(crate) fn string(&self, k: &str) -> Outcome<Option<&'a str>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Fail::bad(format!("`{k}` must be a string"))),
        }
    }

    /// A string that, when present, is not blank.
    pub(crate) fn text(&self, k: &str) -> Outcome<Option<&'a str>> {
        match self.string(k)? {
            Some(s) if s.trim().is_empty() => Err(Fail::bad(format!("`{k}` must not be empty"))),
            other => Ok(other),
        }
    }

    pub(crate) fn boolean(&self, k: &str) -> Outcome<Option<bool>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Fail::bad(format!("`{k}` must be true or false"))),
        }
    }

    pub(crate) fn strings(&self, k: &str) -> Outcome<Option<Vec<String>>> {
        let Some(v) = self.0.get(k) else { return Ok(None) };
        let wrong = || Fail::bad(format!("`{k}` must be an array of strings"));
        let items = v.as_array().ok_or_else(wrong)?;
        items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(wrong)).collect::<Outcome<_>>().map(Some)
    }

    pub(crate) fn object(&self, k: &str) -> Outcome<Option<Fields<'a>>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Fields(o))),
            Some(_) => Err(Fail::bad(format!("`{k}` must be an object"))),
        }
    }

    /// A string field that must be one of `allowed`.
    pub(crate) fn one_of(&self, k: &str, allowed: &[&str]) -> Outcome<Option<&'a str>> {
        match self.string(k)? {
            Some(v) if !allowed.contains(&v) => {
                Err(Fail::bad(format!("`{k}` `{v}` is not one of {}", allowed.join(", "))))
            }
            other => Ok(other),
        }
    }
}

/// LaunchDarkly's key alphabet (the same rule experiment keys follow; [inferred] for metrics).
pub(crate) fn check_key(what: &str, key: &str) -> Outcome<()> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(Fail::bad(format!(
            "{what} key `{key}` must be non-empty and use only letters, digits, `.`, `_` and `-`"
        )));
    }
    Ok(())
}

/// Refuses `field` on a metric of another kind ([inferred]: the schema says where each applies, not what the service
/// does with a misplaced one; refusing is the strict reading).
fn only_for(f: &Fields<'_>, field: &str, applies: bool, which: &str) -> Outcome<()> {
    if f.has(field) && !applies {
        return Err(Fail::bad(format!("`{field}` applies only to {which} metrics")));
    }
    Ok(())
}

/// One `UrlPost`: `kind` exact or canonical takes `url`, substring takes `substring`, regex takes `pattern`.
fn url_matcher(i: usize, item: &Value) -> Outcome<Value> {
    let Some(o) = item.as_object() else {
        return Err(Fail::bad(format!("`urls[{i}]` must be an object {{kind, url|substring|pattern}}")));
    };
    let f = Fields(o);
    let at = |m: String| Fail::bad(format!("`urls[{i}]`: {m}"));
    let kind = f
        .one_of("kind", &["exact", "canonical", "substring", "regex"])
        .map_err(|e| at(e.message))?
        .ok_or_else(|| at("`kind` is required (exact, canonical, substring or regex)".to_owned()))?;
    let needed = match kind {
        "substring" => "substring",
        "regex" => "pattern",
        _ => "url",
    };
    let value =
        f.text(needed).map_err(|e| at(e.message))?.ok_or_else(|| at(format!("kind `{kind}` needs `{needed}`")))?;
    // [inferred] A matcher field of another kind is refused: which one the service would read is unknown.
    if let Some(other) = ["url", "substring", "pattern"].into_iter().find(|k| *k != needed && f.has(k)) {
        return Err(at(format!("kind `{kind}` takes `{needed}`, not `{other}`")));
    }
    Ok(json!({ "kind": kind, needed: value }))
}

/// `EventFilter`: `type`, `op`, `values` and `negate` are required.
fn event_filter(f: &Fields<'_>) -> Outcome<()> {
    let at = |m: String| Fail::bad(format!("`filters`: {m}"));
    f.one_of("type", &["contextAttribute", "eventProperty", "group"])
        .map_err(|e| at(e.message))?
        .ok_or_else(|| at("`type` is required".to_owned()))?;
    f.string("op").map_err(|e| at(e.message))?.ok_or_else(|| at("`op` is required".to_owned()))?;
    f.boolean("negate").map_err(|e| at(e.message))?.ok_or_else(|| at("`negate` is required".to_owned()))?;
    f.string("attribute").map_err(|e| at(e.message))?;
    f.string("contextKind").map_err(|e| at(e.message))?;
    match f.0.get("values") {
        Some(Value::Array(_)) => Ok(()),
        Some(_) => Err(at("`values` must be an array".to_owned())),
        None => Err(at("`values` is required".to_owned())),
    }
}

/// The project's default randomization unit: what a metric that names none is allowed for ([inferred]).
fn default_unit(project: &Project) -> String {
    let units = &project.settings.randomization_units;
    units
        .iter()
        .find(|u| u.default)
        .or(units.first())
        .map_or_else(|| "user".to_owned(), |u| u.randomization_unit.clone())
}

/// Checks `body` against every rule and returns the metric it describes. The identity fields (`id`, `version_id`,
/// `version`, `creation_date`) are left empty for the caller to set.
pub(crate) fn validate(project: &Project, body: &Value, mode: Mode) -> Outcome<MetricDef> {
    let Some(o) = body.as_object() else { return Err(Fail::bad("a metric must be a JSON object")) };
    let f = Fields(o);
    let key = f.string("key")?.ok_or_else(|| Fail::bad("`key` is required"))?;
    check_key("metric", key)?;
    let kind = f
        .one_of("kind", &["pageview", "click", "custom"])?
        .ok_or_else(|| Fail::bad("`kind` is required (pageview, click or custom)"))?;
    let (custom, click) = (kind == "custom", kind == "click");
    let name = f.text("name")?.unwrap_or(key);
    let description = f.string("description")?;

    let is_numeric = f.boolean("isNumeric")?;
    if custom && is_numeric.is_none() {
        return Err(Fail::bad("`isNumeric` is required for custom metrics"));
    }
    // [inferred] Browser metrics count conversions; a numeric one cannot exist.
    if !custom && is_numeric == Some(true) {
        return Err(Fail::bad("`isNumeric` can be true only for custom metrics"));
    }
    let numeric = is_numeric == Some(true);
    only_for(&f, "eventKey", custom, "custom")?;
    let event_key = f.text("eventKey")?;
    if custom && event_key.is_none() {
        return Err(Fail::bad("`eventKey` is required for custom metrics"));
    }
    only_for(&f, "selector", click, "click")?;
    let selector = f.text("selector")?;
    if click && selector.is_none() {
        return Err(Fail::bad("`selector` is required for click metrics"));
    }
    only_for(&f, "urls", !custom, "click and pageview")?;
    let urls = match o.get("urls") {
        None if !custom => return Err(Fail::bad(format!("`urls` is required for {kind} metrics"))),
        None => None,
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(Fail::bad(format!("`urls` of a {kind} metric needs at least one URL matcher")));
        }
        Some(Value::Array(items)) => {
            Some(items.iter().enumerate().map(|(i, u)| url_matcher(i, u)).collect::<Outcome<Vec<_>>>()?)
        }
        Some(_) => return Err(Fail::bad("`urls` must be an array of URL matchers")),
    };

    only_for(&f, "unit", custom && numeric, "numeric custom")?;
    let unit = f.string("unit")?;
    let success_criteria = f.one_of("successCriteria", &["HigherThanBaseline", "LowerThanBaseline"])?;
    if custom && numeric && success_criteria.is_none() {
        return Err(Fail::bad("`successCriteria` is required for numeric custom metrics"));
    }
    let unit_aggregation_type = f.one_of("unitAggregationType", &["average", "sum"])?;
    // Numeric metrics average per unit unless told otherwise, as seed metrics do.
    let unit_aggregation_type = unit_aggregation_type.or(numeric.then_some("average"));
    let analysis_type = f.one_of("analysisType", &["mean", "percentile"])?.unwrap_or("mean");
    let percentile_value = match o.get("percentileValue") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|p| (0..=100).contains(p))
                .ok_or_else(|| Fail::bad("`percentileValue` must be an integer from 0 to 100"))?,
        ),
    };
    match (analysis_type, percentile_value) {
        ("percentile", None) => {
            return Err(Fail::bad("`percentileValue` is required when `analysisType` is percentile"));
        }
        // [inferred] The value means nothing without percentile analysis.
        ("mean", Some(_)) => {
            return Err(Fail::bad("`percentileValue` is allowed only when `analysisType` is percentile"));
        }
        // [inferred] A percentile of conversions (0 or 1 per unit) says nothing.
        ("percentile", Some(_)) if !numeric => {
            return Err(Fail::bad("percentile analysis needs a numeric custom metric"));
        }
        _ => {}
    }
    let event_default = match f.object("eventDefault")? {
        None => None,
        Some(d) => {
            let disabled = d.boolean("disabled").map_err(|e| Fail::bad(format!("`eventDefault`: {}", e.message)))?;
            match d.0.get("value") {
                None => {}
                Some(v) if v.as_f64() == Some(0.0) => {}
                Some(_) => return Err(Fail::bad("`eventDefault.value` can only be 0 (no other value is supported)")),
            }
            Some(json!({ "disabled": disabled.unwrap_or(false), "value": 0 }))
        }
    };

    let randomization_units = match f.strings("randomizationUnits")? {
        None => vec![default_unit(project)],
        // [inferred] A metric allowed for no unit could never be used.
        Some(units) if units.is_empty() => return Err(Fail::bad("`randomizationUnits` must name at least one unit")),
        Some(units) => units,
    };
    let mut seen = BTreeSet::new();
    for u in &randomization_units {
        if !project.context_kinds.contains(u) {
            return Err(Fail::bad(format!(
                "randomization unit `{u}` is not a context kind of project `{}` ({})",
                project.key,
                project.context_kinds.join(", ")
            )));
        }
        if !seen.insert(u.as_str()) {
            return Err(Fail::bad(format!("randomization unit `{u}` is listed twice")));
        }
    }
    let tags = f.strings("tags")?.unwrap_or_default();
    let maintainer_id = match (f.text("maintainerId")?, mode) {
        (Some(m), _) => m.to_owned(),
        (None, Mode::Create(Caller::Member)) => MAINTAINER_ID.to_owned(),
        // A service token stands for no member, so nobody can be the default maintainer ([inferred] from §9.7).
        (None, Mode::Create(Caller::Service)) => {
            return Err(Fail::bad("maintainerId is required when the caller uses a service token"));
        }
        (None, Mode::Patch) => return Err(Fail::bad("`maintainerId` cannot be removed")),
    };
    let data_source = match f.object("dataSource")? {
        None => None,
        Some(d) => {
            let at = |m: String| Fail::bad(format!("`dataSource`: {m}"));
            let key = d.text("key").map_err(|e| at(e.message))?.ok_or_else(|| at("`key` is required".to_owned()))?;
            let env = d.string("environmentKey").map_err(|e| at(e.message))?;
            // [inferred] A data source's environment is one of the project's.
            if let Some(e) = env.filter(|e| !project.environments.contains_key(*e)) {
                return Err(at(format!("environment `{e}` is not an environment of project `{}`", project.key)));
            }
            match env {
                // LaunchDarkly's own source is what a metric without one reads from.
                None if key == "launchdarkly" => None,
                None => Some(json!({ "key": key })),
                Some(e) => Some(json!({ "key": key, "environmentKey": e })),
            }
        }
    };
    only_for(&f, "filters", custom, "custom")?;
    let filters = match f.object("filters")? {
        None => None,
        Some(filter) => {
            event_filter(&filter)?;
            o.get("filters").cloned()
        }
    };
    let own = |s: Option<&str>| s.map(str::to_owned);
    Ok(MetricDef {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        id: String::new(),
        version_id: String::new(),
        version: 0,
        maintainer_id,
        event_key: own(event_key),
        is_numeric: numeric,
        unit_aggregation_type: own(unit_aggregation_type),
        success_criteria: own(success_criteria),
        unit: own(unit),
        description: own(description),
        analysis_type: Some(analysis_type.to_owned()),
        percentile_value,
        event_default,
        selector: own(selector),
        urls,
        filters,
        data_source,
        randomization_units,
        tags,
        creation_date: 0,
    })
}
