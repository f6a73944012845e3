//! The catalog kinds of spec format v1 (`Metric`, `MetricGroup`, `ExperimentationSettings`): their types, the
//! request bodies they become, and the rules types cannot express.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::rules::{is_ld_key, key_help};
use super::{Diagnostic, Located, SourceLocation};

/// A metric, managed through `postMetric` and `patchMetric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    /// Project key.
    pub project: String,
    /// Metric key, unique within its project.
    pub key: String,
    /// Display name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The event the metric counts (the API's `kind`). Creation-only.
    pub event_kind: EventKind,
    /// The event key sent by `track` calls; required for `custom`. Creation-only (an assumption: see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    /// Whether a `custom` metric measures a value (true) or a conversion (false). Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_numeric: Option<bool>,
    /// Unit of a numeric metric, such as `ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Required for numeric metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<SuccessCriteria>,
    /// The randomization units (context kinds) experiments measuring this metric may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_units: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_aggregation_type: Option<UnitAggregationType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_type: Option<AnalysisType>,
    /// The percentile analysed, 0 to 100; only with `analysisType: percentile`, which requires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_value: Option<u8>,
    /// How a unit without events counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_default: Option<EventDefault>,
    /// Target URLs of `pageview` and `click` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<UrlMatcher>>,
    /// CSS selector of a `click` metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Maintainer member id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
}

/// `pageview`, `click` or `custom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A page viewed, matched by `urls`.
    Pageview,
    /// An element clicked, matched by `selector` on the pages of `urls`.
    Click,
    /// An event your code sends with `track`, named by `eventKey`.
    Custom,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pageview => "pageview",
            Self::Click => "click",
            Self::Custom => "custom",
        }
    }
}

/// Which direction is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SuccessCriteria {
    /// Higher values than the baseline's are better.
    HigherThanBaseline,
    /// Lower values than the baseline's are better.
    LowerThanBaseline,
}

/// How several events of one unit combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitAggregationType {
    /// The mean of the unit's event values.
    Average,
    /// The sum of the unit's event values.
    Sum,
}

/// How the metric's values are analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisType {
    /// Compare means.
    Mean,
    /// Compare a percentile, `percentileValue`.
    Percentile,
}

/// `MetricEventDefaultRep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventDefault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// `UrlPost`: how a page's URL is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum UrlMatcher {
    /// The URL, exactly.
    Exact { url: String },
    /// The URL without its query string and fragment.
    Canonical { url: String },
    /// Any URL containing `substring`.
    Substring { substring: String },
    /// Any URL matching the regular expression `pattern`.
    Regex { pattern: String },
}

/// A metric group, managed through `createMetricGroup` and `patchMetricGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricGroupSpec {
    /// Project key.
    pub project: String,
    /// Group key, unique within its project.
    pub key: String,
    /// Display name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `funnel` (ordered steps) or `standard` (the API's `kind`). Creation-only.
    pub group_kind: GroupKind,
    /// The members, in order: a funnel's steps in the order users pass them.
    pub metrics: Vec<GroupMember>,
    /// Maintainer member id. LaunchDarkly requires one to create a group, so `plan` refuses a create without it; a
    /// group that exists (one a team maintains, say) may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `funnel` or `standard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Ordered steps: each metric counts the units that passed the steps before it.
    Funnel,
    /// Metrics analysed side by side.
    Standard,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Funnel => "funnel",
            Self::Standard => "standard",
        }
    }
}

/// One metric of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMember {
    /// The metric's key.
    pub key: String,
    /// Its name inside the group.
    pub name_in_group: String,
}

/// A project's experimentation settings: its randomization units, set with one `PUT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentationSettingsSpec {
    /// Project key; one settings document per project.
    pub project: String,
    /// The units this spec owns; exactly one is the default. Units LaunchDarkly has and this list lacks are kept,
    /// unless `--prune`.
    pub randomization_units: Vec<UnitSpec>,
}

/// One randomization unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnitSpec {
    /// A context kind of the project.
    pub randomization_unit: String,
    /// Whether new iterations use this unit unless they name one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl MetricSpec {
    /// The fields this spec manages, as `MetricPost` names them: what a create sends (with `key`), and what an
    /// update compares. A field the spec leaves out is not managed.
    pub fn managed_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("name", Some(json!(self.name)));
        put("description", self.description.as_ref().map(|d| json!(d)));
        put("kind", Some(json!(self.event_kind.as_str())));
        put("eventKey", self.event_key.as_ref().map(|k| json!(k)));
        put("isNumeric", self.is_numeric.map(|n| json!(n)));
        put("unit", self.unit.as_ref().map(|u| json!(u)));
        put("successCriteria", self.success_criteria.map(|s| json!(s)));
        put("randomizationUnits", self.randomization_units.as_ref().map(|u| json!(u)));
        put("unitAggregationType", self.unit_aggregation_type.map(|u| json!(u)));
        put("analysisType", self.analysis_type.map(|a| json!(a)));
        put("percentileValue", self.percentile_value.map(|p| json!(p)));
        put("eventDefault", self.event_default.as_ref().map(|d| json!(d)));
        put("urls", self.urls.as_ref().map(|u| json!(u)));
        put("selector", self.selector.as_ref().map(|s| json!(s)));
        put("tags", self.tags.as_ref().map(|t| json!(t)));
        put("maintainerId", self.maintainer_id.as_ref().map(|m| json!(m)));
        m
    }
}

impl MetricGroupSpec {
    /// The fields this spec manages, as `MetricGroupPost` names them.
    pub fn managed_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        m.insert("kind".into(), json!(self.group_kind.as_str()));
        m.insert("metrics".into(), json!(self.metrics));
        if let Some(t) = &self.tags {
            m.insert("tags".into(), json!(t));
        }
        if let Some(id) = &self.maintainer_id {
            m.insert("maintainerId".into(), json!(id));
        }
        m
    }
}

/// Collects the diagnostics of one document.
fn push(out: &mut Vec<Diagnostic>, loc: &SourceLocation, message: String, help: &str) {
    out.push(Diagnostic::at(loc, message, Some(help.to_owned())));
}

/// The rules of a `Metric` that types cannot express: what each event kind requires (the contract's
/// `MetricPost`) and what it does not take.
pub(crate) fn metric(doc: &Located<MetricSpec>, out: &mut Vec<Diagnostic>) {
    let m = &doc.spec;
    for (field, what, value) in [("project", "project key", &m.project), ("key", "metric key", &m.key)] {
        if !is_ld_key(value) {
            out.push(Diagnostic::at(
                &doc.location_of(field),
                format!("{what} `{value}` is not a valid LaunchDarkly key"),
                Some(key_help(value)),
            ));
        }
    }
    let at = |f: &str| doc.location_of(f);
    let kind = m.event_kind.as_str();
    let numeric = m.is_numeric == Some(true);
    let mut needs = |field: &str, present: bool, why: &str| {
        if !present {
            push(out, &doc.location, format!("a `{kind}` metric needs `{field}`"), why);
        }
    };
    match m.event_kind {
        EventKind::Custom => {
            needs("eventKey", m.event_key.is_some(), "add the event key your code sends with `track`");
            if numeric {
                needs("successCriteria", m.success_criteria.is_some(), "say whether higher or lower is better");
            }
        }
        EventKind::Click => {
            needs("selector", m.selector.is_some(), "add the CSS selector of the element clicked");
            needs("urls", m.urls.as_ref().is_some_and(|u| !u.is_empty()), "add the pages the element is on");
        }
        EventKind::Pageview => {
            needs("urls", m.urls.as_ref().is_some_and(|u| !u.is_empty()), "add the pages the metric counts");
        }
    }
    let custom_only = [("eventKey", m.event_key.is_some()), ("isNumeric", m.is_numeric.is_some())];
    if m.event_kind != EventKind::Custom {
        for (field, set) in custom_only {
            if set {
                push(out, &at(field), format!("`{field}` applies to `custom` metrics only"), "remove it");
            }
        }
    }
    if m.urls.is_some() && m.event_kind == EventKind::Custom {
        push(out, &at("urls"), "`urls` applies to `pageview` and `click` metrics only".to_owned(), "remove it");
    }
    if m.selector.is_some() && m.event_kind != EventKind::Click {
        push(out, &at("selector"), "`selector` applies to `click` metrics only".to_owned(), "remove it");
    }
    if m.unit.is_some() && !numeric {
        push(
            out,
            &at("unit"),
            "`unit` applies to numeric metrics only".to_owned(),
            "set `isNumeric: true`, or remove `unit`",
        );
    }
    match (m.analysis_type, m.percentile_value) {
        (Some(AnalysisType::Percentile), None) => push(
            out,
            &at("analysisType"),
            "`analysisType: percentile` needs `percentileValue`".to_owned(),
            "add `percentileValue`, such as 95",
        ),
        (a, Some(_)) if a != Some(AnalysisType::Percentile) => push(
            out,
            &at("percentileValue"),
            "`percentileValue` applies only with `analysisType: percentile`".to_owned(),
            "set `analysisType: percentile`, or remove `percentileValue`",
        ),
        _ => {}
    }
    if let Some(p) = m.percentile_value
        && p > 100
    {
        push(out, &at("percentileValue"), format!("`percentileValue` {p} is not between 0 and 100"), "use 0 to 100");
    }
    if let Some(units) = &m.randomization_units {
        duplicates_in(units.iter().map(String::as_str), "randomizationUnits", "randomization unit", doc, out);
    }
    if let Some(d) = &m.event_default
        && d.value.is_some_and(|v| v != 0.0)
    {
        push(
            out,
            &at("eventDefault.value"),
            "`eventDefault.value` can only be 0".to_owned(),
            "LaunchDarkly supports no other default value; write 0 or leave it out",
        );
    }
}

/// The rules of a `MetricGroup`: keys, at least two steps in a funnel, no metric twice.
pub(crate) fn metric_group(doc: &Located<MetricGroupSpec>, out: &mut Vec<Diagnostic>) {
    let g = &doc.spec;
    let mut fields =
        vec![("project".to_owned(), "project key", &g.project), ("key".to_owned(), "metric group key", &g.key)];
    fields.extend(g.metrics.iter().enumerate().map(|(i, m)| (format!("metrics[{i}].key"), "metric key", &m.key)));
    for (field, what, value) in fields {
        if !is_ld_key(value) {
            out.push(Diagnostic::at(
                &doc.location_of(&field),
                format!("{what} `{value}` is not a valid LaunchDarkly key"),
                Some(key_help(value)),
            ));
        }
    }
    if g.group_kind == GroupKind::Funnel && g.metrics.len() < 2 {
        push(
            out,
            &doc.location_of("metrics"),
            format!("a funnel needs at least two metrics, found {}", g.metrics.len()),
            "list the funnel's steps in order, or use `groupKind: standard`",
        );
    }
    if g.metrics.is_empty() && g.group_kind == GroupKind::Standard {
        push(
            out,
            &doc.location_of("metrics"),
            "a metric group needs at least one metric".to_owned(),
            "list its metrics",
        );
    }
    duplicates_in(g.metrics.iter().map(|m| m.key.as_str()), "metrics", "metric", doc, out);
}

/// The rules of `ExperimentationSettings`: units once each, exactly one default.
pub(crate) fn settings(doc: &Located<ExperimentationSettingsSpec>, out: &mut Vec<Diagnostic>) {
    let s = &doc.spec;
    if !is_ld_key(&s.project) {
        out.push(Diagnostic::at(
            &doc.location_of("project"),
            format!("project key `{}` is not a valid LaunchDarkly key", s.project),
            Some(key_help(&s.project)),
        ));
    }
    duplicates_in(
        s.randomization_units.iter().map(|u| u.randomization_unit.as_str()),
        "randomizationUnits",
        "randomization unit",
        doc,
        out,
    );
    let defaults = s.randomization_units.iter().filter(|u| u.default).count();
    if defaults != 1 {
        push(
            out,
            &doc.location_of("randomizationUnits"),
            format!("exactly one randomization unit must be the default, found {defaults}"),
            "mark one unit with `default: true`",
        );
    }
}

fn duplicates_in<'a, T>(
    items: impl Iterator<Item = &'a str>,
    field: &str,
    what: &str,
    doc: &Located<T>,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen = BTreeMap::new();
    for (i, k) in items.enumerate() {
        if let Some(first) = seen.insert(k, i) {
            push(
                out,
                &doc.location_of(&format!("{field}[{i}]")),
                format!("{what} `{k}` is listed twice (first as item {})", first + 1),
                "list it once",
            );
        }
    }
}

/// Each metric, group and settings document once per project, across every file.
pub(crate) fn duplicates(set: &super::SpecSet, out: &mut Vec<Diagnostic>) {
    fn once<'a, T>(
        docs: &'a [Located<T>],
        id: impl Fn(&'a T) -> (&'a str, &'a str),
        what: impl Fn(&str, &str) -> String,
        field: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut seen: BTreeMap<(&str, &str), SourceLocation> = BTreeMap::new();
        for doc in docs {
            let (project, key) = id(&doc.spec);
            let here = doc.location_of(field);
            match seen.get(&(project, key)) {
                Some(first) => out.push(Diagnostic::at(
                    &here,
                    format!("{what} is defined twice: first at {first}", what = what(project, key)),
                    Some("remove one of the two definitions".to_owned()),
                )),
                None => {
                    seen.insert((project, key), here);
                }
            }
        }
    }
    let metric = |p: &str, k: &str| format!("metric `{k}` in project `{p}`");
    let group = |p: &str, k: &str| format!("metric group `{k}` in project `{p}`");
    let settings = |p: &str, _: &str| format!("the experimentation settings of project `{p}`");
    once(&set.metrics, |m| (m.project.as_str(), m.key.as_str()), metric, "key", out);
    once(&set.metric_groups, |g| (g.project.as_str(), g.key.as_str()), group, "key", out);
    once(&set.settings, |s| (s.project.as_str(), ""), settings, "project", out);
}
