//! The emulator's whole state ([`State`]): projects, environments, metrics, flags and experiments, the logical
//! clock, and how a [`Seed`] becomes a state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ldexp_core::api::{Experiment, LegacyExperiments};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deviation::Deviation;
use crate::seed::{Seed, SeedFlag, SeedProject};
use crate::wire::link;
use crate::{EmulatorError, ids};

/// The token [`State::from_seed`] accepts until [`State::with_token`] sets another.
pub const DEFAULT_TOKEN: &str = "ld-emulator-token";

/// The logical clock starts at 2026-01-01T00:00:00Z and moves one second per change.
const EPOCH_MS: i64 = 1_767_225_600_000;
const TICK_MS: i64 = 1_000;

/// The member every object is maintained by.
pub(crate) const MAINTAINER_ID: &str = "569f183514f4432160000007";

/// The whole in-memory LaunchDarkly. Cloning it is a snapshot.
#[derive(Clone)]
pub struct State {
    pub(crate) data: Data,
    token: String,
    /// A second accepted token that stands for no member (`--service-token`).
    service_token: Option<String>,
    /// Further accepted tokens, each limited to some projects (`--scoped-token`): token → project keys.
    scoped_tokens: BTreeMap<String, BTreeSet<String>>,
    /// `total_count` of experiment lists that ask for archived experiments counts only the active ones
    /// (`--misreport-total-count`); not part of [`State::to_json`], like the tokens.
    misreport_total_count: bool,
    /// Service rules this emulator breaks on purpose (`--differ`, for testing `ldexp conformance`); not part of
    /// [`State::to_json`], so a reset or a state document keeps them.
    pub(crate) differ: BTreeSet<Deviation>,
    /// Requests handled, for deterministic error `id`s; not part of [`State::to_json`].
    pub(crate) requests: u64,
}

// Hand-written so the token never reaches a log line.
impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("projects", &self.data.projects.keys().collect::<Vec<_>>())
            .field("clock", &self.data.clock)
            .field("token", &"[redacted]")
            .field("service_token", &self.service_token.as_ref().map(|_| "[redacted]"))
            .field("scoped_tokens", &self.scoped_tokens.values().collect::<Vec<_>>())
            .field("create_as_current", &self.data.options.create_as_current)
            .field("misreport_total_count", &self.misreport_total_count)
            .field("differ", &self.differ)
            .finish()
    }
}

impl State {
    /// Builds the state a seed describes. Fails on an inconsistent seed, naming the project and object.
    pub fn from_seed(seed: &Seed) -> Result<State, EmulatorError> {
        let options = Options { create_as_current: seed.options.create_as_current };
        let mut data = Data { clock: EPOCH_MS, serial: 0, options, projects: BTreeMap::new() };
        for p in &seed.projects {
            if data.projects.contains_key(&p.key) {
                return Err(invalid(&p.key, "the project is listed twice"));
            }
            let project = build_project(&mut data, p)?;
            data.projects.insert(p.key.clone(), project);
            for (env, items) in &p.experiments {
                for raw in items {
                    crate::experiments::seed_experiment(&mut data, &p.key, env, raw)
                        .map_err(|m| invalid(&p.key, &format!("experiments.{env}: {m}")))?;
                }
            }
        }
        Ok(State::new(data))
    }

    fn new(data: Data) -> State {
        State {
            data,
            token: DEFAULT_TOKEN.to_owned(),
            service_token: None,
            scoped_tokens: BTreeMap::new(),
            misreport_total_count: false,
            differ: BTreeSet::new(),
            requests: 0,
        }
    }

    /// The same state, accepting `token` instead.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// The same state, also accepting `token` as a service token: it identifies no member, so a create must name
    /// its `maintainerId` (contract §9.7).
    pub fn with_service_token(mut self, token: impl Into<String>) -> Self {
        self.service_token = Some(token.into());
        self
    }

    /// The same state, also accepting `token` for the listed projects only: any route under another project
    /// answers 401, as LaunchDarkly answers a role limited to some projects (contract §9.8). Routes outside
    /// projects (caller-identity) answer as for a personal token.
    pub fn with_scoped_token(mut self, token: impl Into<String>, projects: impl IntoIterator<Item = String>) -> Self {
        self.scoped_tokens.insert(token.into(), projects.into_iter().collect());
        self
    }

    /// The same state, with `total_count` of experiment lists that include archived experiments counting only the
    /// active ones (contract §9.10: what the service counts there is undocumented). Items and `_links` stay
    /// truthful, so only a reader that trusts `total_count` misses experiments.
    pub fn with_misreport_total_count(mut self, on: bool) -> Self {
        self.misreport_total_count = on;
        self
    }

    /// Whether `total_count` under `lifecycleState=…archived` counts only the active experiments: the switch, or
    /// the same rule broken through `--differ total-count`.
    pub(crate) fn misreport_total_count(&self) -> bool {
        self.misreport_total_count || self.differs(Deviation::TotalCount)
    }

    /// The same state, breaking the listed service rules on purpose (and no others), for testing the probes of
    /// `ldexp conformance`; never for anything else.
    pub fn with_differ(mut self, rules: impl IntoIterator<Item = Deviation>) -> Self {
        self.differ = rules.into_iter().collect();
        self
    }

    /// Whether this state breaks `rule` on purpose (see [`State::with_differ`]).
    pub fn differs(&self, rule: Deviation) -> bool {
        self.differ.contains(&rule)
    }

    /// The same state, with creates answering the new iteration as a `not_started` `currentIteration` (contract
    /// §9.9) instead of as `draftIteration`.
    pub fn with_create_as_current(mut self, on: bool) -> Self {
        self.set_create_as_current(on);
        self
    }

    /// Switches how creates answer (see [`State::with_create_as_current`]) on a live state.
    pub fn set_create_as_current(&mut self, on: bool) {
        self.data.options.create_as_current = on;
    }

    /// Whether creates answer the new iteration as a `not_started` `currentIteration`.
    pub fn create_as_current(&self) -> bool {
        self.data.options.create_as_current
    }

    /// The accepted token, for building correct requests ([`State::handle_planned`]); never printed.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Which kind of caller `candidate` authenticates, if any.
    pub(crate) fn caller(&self, candidate: &str) -> Option<Caller> {
        // Length and content both count; timing is irrelevant for a local test server.
        if candidate == self.token {
            Some(Caller::Member)
        } else if self.service_token.as_deref() == Some(candidate) {
            Some(Caller::Service)
        } else if self.scoped_tokens.contains_key(candidate) {
            // A personal token whose role covers some projects: it still stands for the member.
            Some(Caller::Member)
        } else {
            None
        }
    }

    /// Whether `candidate` may act in `project`: every token may, except a scoped one outside its projects.
    pub(crate) fn may_access(&self, candidate: &str, project: &str) -> bool {
        self.scoped_tokens.get(candidate).is_none_or(|projects| projects.contains(project))
    }

    /// What `GET /_emulator/state` returns: every object, maps sorted by key, so two states diff cleanly.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.data).unwrap_or(Value::Null)
    }

    /// Reads a document produced by [`State::to_json`] (admin `PUT /_emulator/state`); the token stays the default.
    pub fn from_json(doc: &Value) -> Result<State, EmulatorError> {
        let data: Data =
            serde_json::from_value(doc.clone()).map_err(|e| EmulatorError::StateDocument { message: e.to_string() })?;
        Ok(State::new(data))
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A personal token: creates default their maintainer to its member.
    Member,
    /// A service token: no member stands behind it.
    Service,
}

fn invalid(project: &str, message: &str) -> EmulatorError {
    EmulatorError::SeedInvalid { project: project.to_owned(), message: message.to_owned() }
}

/// Everything [`State::to_json`] shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Data {
    /// Logical time in epoch milliseconds; advances once per change.
    pub clock: i64,
    /// Counter behind iteration ids, so a replaced draft never shares its id with the next one.
    pub serial: u64,
    /// Behaviour switches; left out of the document while they are all off, so older documents still read.
    #[serde(default, skip_serializing_if = "Options::is_default")]
    pub options: Options,
    pub projects: BTreeMap<String, Project>,
}

/// Behaviour switches a seed or a state document can set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Options {
    /// Creates answer the new iteration as a `not_started` `currentIteration` (contract §9.9).
    #[serde(default)]
    pub create_as_current: bool,
}

impl Options {
    fn is_default(&self) -> bool {
        self == &Options::default()
    }
}

impl Data {
    /// Advances the logical clock and returns the new time.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += TICK_MS;
        self.clock
    }

    /// The time the next [`Data::tick`] will return, for changes validated before they commit.
    pub(crate) fn peek_tick(&self) -> i64 {
        self.clock + TICK_MS
    }

    pub(crate) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }
}

/// One project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Project {
    pub key: String,
    pub name: String,
    pub id: String,
    pub environments: BTreeMap<String, Environment>,
    pub context_kinds: Vec<String>,
    pub settings: Settings,
    /// In listing order.
    pub metrics: Vec<MetricDef>,
    pub metric_groups: Vec<GroupDef>,
    /// Flag key → the full `FeatureFlag` JSON, which JSON patches apply to.
    pub flags: BTreeMap<String, Value>,
    /// Environment key → experiment key → experiment (fully expanded).
    pub experiments: BTreeMap<String, BTreeMap<String, Experiment>>,
    /// `flag/env/metric` → how many times the legacy results were reset.
    #[serde(default)]
    pub legacy_resets: BTreeMap<String, u32>,
    /// Layer key → layer (`layers.rs`); left out of the document while empty, so older documents still read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layers: BTreeMap<String, Layer>,
    /// Environment key → holdout key → holdout (`holdouts.rs`); left out while empty, like `layers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holdouts: BTreeMap<String, BTreeMap<String, Holdout>>,
}

/// A layer: experiments in it get mutually exclusive traffic, each its reservation, per environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Layer {
    pub key: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    /// Environment key → reservations, in the order they were first made.
    #[serde(default)]
    pub reservations: BTreeMap<String, Vec<Reservation>>,
}

/// One experiment's share of a layer's traffic in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reservation {
    pub experiment_key: String,
    pub flag_key: String,
    pub reservation_percent: i64,
}

/// A holdout in one environment. Which experiments are in it is not stored here: an experiment is in the holdout
/// whose `_id` its `holdoutId` names, so the two can never disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Holdout {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub holdout_amount: String,
    pub randomization_unit: String,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_metric_key: Option<String>,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerequisite_flag_key: Option<String>,
    pub maintainer_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set by `endHoldout`; final.
    #[serde(default)]
    pub ended: bool,
}

impl Project {
    pub(crate) fn metric(&self, key: &str) -> Option<&MetricDef> {
        self.metrics.iter().find(|m| m.key == key)
    }

    pub(crate) fn group(&self, key: &str) -> Option<&GroupDef> {
        self.metric_groups.iter().find(|g| g.key == key)
    }
}

/// One environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Environment {
    pub key: String,
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub approvals_required: bool,
}

/// Experimentation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Settings {
    pub randomization_units: Vec<UnitSetting>,
    pub creation_date: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnitSetting {
    pub randomization_unit: String,
    #[serde(default)]
    pub default: bool,
}

/// A metric. Fields added after the first state documents default, so older documents still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricDef {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub id: String,
    pub version_id: String,
    /// `_version`: 1 at creation, one more per patch that changes something.
    #[serde(default = "first_version")]
    pub version: i64,
    #[serde(default = "default_maintainer")]
    pub maintainer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    pub is_numeric: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_aggregation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `mean` or `percentile`; `None` (older documents) reads as `mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_value: Option<i64>,
    /// `MetricEventDefaultRep`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_default: Option<Value>,
    /// Click metrics: the CSS selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Click and pageview metrics: `UrlPost` matchers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<Value>>,
    /// Custom metrics: the `EventFilter`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    /// `MetricDataSourceRefRep` without its read-only fields; `None` is LaunchDarkly's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<Value>,
    pub randomization_units: Vec<String>,
    pub tags: Vec<String>,
    pub creation_date: i64,
}

/// A metric group. Fields added after the first state documents default, so older documents still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupDef {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub id: String,
    pub version_id: String,
    /// `_version`: 1 at creation, one more per patch that changes something.
    #[serde(default = "first_version")]
    pub version: i64,
    #[serde(default = "default_maintainer")]
    pub maintainer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Metric keys, in step order.
    pub metrics: Vec<String>,
    /// Metric key → `nameInGroup`; a metric without one shows its own name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names_in_group: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub creation_date: i64,
    /// `_lastModified`; `None` until the first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
}

impl GroupDef {
    /// The name metric `key` carries inside this group.
    pub(crate) fn name_in_group<'a>(&'a self, key: &str, metric_name: &'a str) -> &'a str {
        self.names_in_group.get(key).map_or(metric_name, String::as_str)
    }
}

fn first_version() -> i64 {
    1
}

fn default_maintainer() -> String {
    MAINTAINER_ID.to_owned()
}

/// `checkout-button` → `Checkout button`.
pub(crate) fn display_name(key: &str) -> String {
    let spaced = key.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn build_project(data: &mut Data, p: &SeedProject) -> Result<Project, EmulatorError> {
    let pk = p.key.as_str();
    if pk.is_empty() {
        return Err(invalid(pk, "a project needs a key"));
    }
    let mut environments = BTreeMap::new();
    for e in &p.environments {
        let (key, name, approvals_required) = match e {
            crate::seed::SeedEnvironment::Key(k) => (k.clone(), display_name(k), false),
            crate::seed::SeedEnvironment::Full { key, name, approvals_required } => {
                (key.clone(), name.clone().unwrap_or_else(|| display_name(key)), *approvals_required)
            }
        };
        let id = ids::object_id(&["environment", pk, &key]);
        if environments.insert(key.clone(), Environment { key: key.clone(), name, id, approvals_required }).is_some() {
            return Err(invalid(pk, &format!("environment `{key}` is listed twice")));
        }
    }
    if environments.is_empty() {
        return Err(invalid(pk, "a project needs at least one environment"));
    }
    let units: Vec<String> =
        if p.randomization_units.is_empty() { vec!["user".to_owned()] } else { p.randomization_units.clone() };
    let mut context_kinds: BTreeSet<String> = p.context_kinds.iter().cloned().collect();
    if context_kinds.is_empty() {
        context_kinds.extend(units.iter().cloned());
        context_kinds.insert("user".to_owned());
    }
    for u in &units {
        if !context_kinds.contains(u) {
            return Err(invalid(pk, &format!("randomization unit `{u}` is not one of the context kinds")));
        }
    }
    let settings = Settings {
        randomization_units: units
            .iter()
            .enumerate()
            .map(|(i, u)| UnitSetting { randomization_unit: u.clone(), default: i == 0 })
            .collect(),
        creation_date: data.tick(),
    };

    let mut metrics: Vec<MetricDef> = Vec::new();
    for m in &p.metrics {
        if metrics.iter().any(|x| x.key == m.key) {
            return Err(invalid(pk, &format!("metric `{}` is listed twice", m.key)));
        }
        if !matches!(m.kind.as_str(), "custom" | "pageview" | "click") {
            return Err(invalid(
                pk,
                &format!("metric `{}`: kind `{}` is not custom, pageview or click", m.key, m.kind),
            ));
        }
        let custom = m.kind == "custom";
        let is_numeric = custom && m.is_numeric.unwrap_or(false);
        // A hand-written browser metric may leave out what a create must send; it then matches every page (and
        // every click on it), so the metric still passes a patch's re-validation.
        let browser = !custom;
        let urls = m.urls.clone().or_else(|| browser.then(|| vec![json!({ "kind": "substring", "substring": "/" })]));
        let selector = m.selector.clone().or_else(|| (m.kind == "click").then(|| "body".to_owned()));
        metrics.push(MetricDef {
            key: m.key.clone(),
            name: m.name.clone().unwrap_or_else(|| display_name(&m.key)),
            kind: m.kind.clone(),
            id: ids::object_id(&["metric", pk, &m.key]),
            version_id: ids::uuid(&["metric-version", pk, &m.key, "1"]),
            version: 1,
            maintainer_id: MAINTAINER_ID.to_owned(),
            analysis_type: Some(m.analysis_type.clone().unwrap_or_else(|| "mean".to_owned())),
            percentile_value: m.percentile_value,
            event_default: m.event_default.clone(),
            selector,
            urls,
            filters: None,
            data_source: None,
            event_key: if custom { Some(m.event_key.clone().unwrap_or_else(|| m.key.clone())) } else { None },
            is_numeric,
            unit_aggregation_type: m.unit_aggregation_type.clone().or_else(|| is_numeric.then(|| "average".to_owned())),
            success_criteria: m.success_criteria.clone().or_else(|| Some("HigherThanBaseline".to_owned())),
            unit: m.unit.clone(),
            description: m.description.clone(),
            // A seed metric that names no units fits every unit the project randomizes by, so hand-written seeds
            // need not repeat them; the API always shows the resolved list.
            randomization_units: m.randomization_units.clone().unwrap_or_else(|| units.clone()),
            tags: m.tags.clone(),
            creation_date: data.tick(),
        });
    }

    let mut metric_groups: Vec<GroupDef> = Vec::new();
    for g in &p.metric_groups {
        if metric_groups.iter().any(|x| x.key == g.key) {
            return Err(invalid(pk, &format!("metric group `{}` is listed twice", g.key)));
        }
        if !matches!(g.kind.as_str(), "funnel" | "standard") {
            return Err(invalid(pk, &format!("metric group `{}`: kind `{}` is not funnel or standard", g.key, g.kind)));
        }
        if g.metrics.is_empty() {
            return Err(invalid(pk, &format!("metric group `{}` has no metrics", g.key)));
        }
        if let Some(missing) = g.metrics.iter().find(|k| !metrics.iter().any(|m| &m.key == *k)) {
            return Err(invalid(pk, &format!("metric group `{}` names unknown metric `{missing}`", g.key)));
        }
        metric_groups.push(GroupDef {
            key: g.key.clone(),
            name: g.name.clone().unwrap_or_else(|| display_name(&g.key)),
            kind: g.kind.clone(),
            id: ids::object_id(&["metric-group", pk, &g.key]),
            version_id: ids::uuid(&["metric-group-version", pk, &g.key, "1"]),
            version: 1,
            maintainer_id: MAINTAINER_ID.to_owned(),
            description: g.description.clone(),
            metrics: g.metrics.clone(),
            names_in_group: BTreeMap::new(),
            tags: g.tags.clone(),
            creation_date: data.tick(),
            last_modified: None,
        });
    }

    let mut project = Project {
        key: pk.to_owned(),
        name: display_name(pk),
        id: ids::object_id(&["project", pk]),
        environments,
        context_kinds: context_kinds.into_iter().collect(),
        settings,
        metrics,
        metric_groups,
        flags: BTreeMap::new(),
        experiments: BTreeMap::new(),
        legacy_resets: BTreeMap::new(),
        layers: BTreeMap::new(),
        holdouts: BTreeMap::new(),
    };
    for env in project.environments.keys() {
        project.experiments.insert(env.clone(), BTreeMap::new());
    }
    for f in &p.flags {
        if project.flags.contains_key(&f.key) {
            return Err(invalid(pk, &format!("flag `{}` is listed twice", f.key)));
        }
        let now = data.tick();
        let flag = build_flag(&project, f, now).map_err(|m| invalid(pk, &format!("flag `{}`: {m}", f.key)))?;
        project.flags.insert(f.key.clone(), flag);
    }
    for env in p.experiments.keys() {
        if !project.environments.contains_key(env) {
            return Err(invalid(pk, &format!("experiments name unknown environment `{env}`")));
        }
    }
    Ok(project)
}

/// Checks a legacy `experiments` value against the project: metrics and environments must exist.
pub(crate) fn check_legacy(project: &Project, value: &Value, variations: usize) -> Result<(), String> {
    let parsed: LegacyExperiments = serde_json::from_value(value.clone())
        .map_err(|e| format!("`experiments` is not {{baselineIdx, items: [{{metricKey, environments}}]}}: {e}"))?;
    if value.get("baselineIdx").and_then(Value::as_i64).is_none() || !value.get("items").is_some_and(Value::is_array) {
        return Err("`experiments` needs an integer `baselineIdx` and an `items` array".to_owned());
    }
    if parsed.baseline_idx < 0 || usize::try_from(parsed.baseline_idx).is_ok_and(|i| i >= variations) {
        return Err(format!("`experiments.baselineIdx` {} is not a variation index", parsed.baseline_idx));
    }
    let mut seen = BTreeSet::new();
    for item in &parsed.items {
        if project.metric(&item.metric_key).is_none() {
            return Err(format!("legacy experiment metric `{}` does not exist", item.metric_key));
        }
        if !seen.insert(item.metric_key.as_str()) {
            return Err(format!("legacy experiment metric `{}` is listed twice", item.metric_key));
        }
        for env in &item.environments {
            if !project.environments.contains_key(env) {
                return Err(format!("legacy experiment `{}` names unknown environment `{env}`", item.metric_key));
            }
        }
    }
    Ok(())
}

fn build_flag(project: &Project, f: &SeedFlag, now: i64) -> Result<Value, String> {
    let pk = project.key.as_str();
    let fk = f.key.as_str();
    if f.variations.is_empty() {
        return Err("a flag needs at least one variation".to_owned());
    }
    let variations: Vec<Value> = f
        .variations
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut o = json!({
                "_id": v.id.clone().unwrap_or_else(|| ids::uuid(&["variation", pk, fk, &i.to_string()])),
                "value": v.value,
            });
            if let Some(n) = &v.name {
                o["name"] = json!(n);
            }
            if let Some(d) = &v.description {
                o["description"] = json!(d);
            }
            o
        })
        .collect();
    let count = i64::try_from(variations.len()).unwrap_or(i64::MAX);
    let in_range = |i: i64| (0..count).contains(&i);
    let boolean = variations.len() == 2 && f.variations.iter().all(|v| v.value.is_boolean());
    for env in f.environments.keys() {
        if !project.environments.contains_key(env) {
            return Err(format!("environment `{env}` is not an environment of the project"));
        }
    }
    let mut environments = serde_json::Map::new();
    for (ek, env) in &project.environments {
        let cfg = f.environments.get(ek).cloned().unwrap_or_default();
        let mut rules = Vec::new();
        for (i, r) in cfg.rules.iter().enumerate() {
            if r.variation.is_some() == r.rollout.is_some() {
                return Err(format!("{ek} rule {i}: give exactly one of `variation` and `rollout`"));
            }
            if let Some(v) = r.variation
                && !in_range(v)
            {
                return Err(format!("{ek} rule {i}: variation {v} does not exist"));
            }
            let mut rule = json!({
                "_id": r.id.clone().unwrap_or_else(|| ids::uuid(&["rule", pk, fk, ek, &i.to_string()])),
                "clauses": r.clauses,
                "trackEvents": r.track_events,
                "disabled": r.disabled,
            });
            if let Some(v) = r.variation {
                rule["variation"] = json!(v);
            }
            if let Some(ro) = &r.rollout {
                rule["rollout"] = ro.clone();
            }
            if let Some(d) = &r.description {
                rule["description"] = json!(d);
            }
            rules.push(rule);
        }
        let off = cfg.off_variation.unwrap_or(if boolean { 1 } else { 0 });
        if !in_range(off) {
            return Err(format!("{ek}: offVariation {off} does not exist"));
        }
        environments.insert(
            ek.clone(),
            json!({
                "on": cfg.on,
                "archived": cfg.archived,
                "salt": ids::object_id(&["salt", pk, fk, ek]),
                "sel": ids::object_id(&["sel", pk, fk, ek]),
                "lastModified": now,
                "version": 1,
                "targets": [],
                "contextTargets": [],
                "rules": rules,
                "fallthrough": cfg.fallthrough.clone().unwrap_or_else(|| json!({ "variation": 0 })),
                "offVariation": off,
                "prerequisites": [],
                "_site": { "href": format!("/{pk}/{ek}/features/{fk}"), "type": "text/html" },
                "_environmentName": env.name,
                "trackEvents": false,
                "trackEventsFallthrough": false,
            }),
        );
    }
    let experiments = f.experiments.clone().unwrap_or_else(|| json!({ "baselineIdx": 0, "items": [] }));
    check_legacy(project, &experiments, variations.len())?;
    let on_variation = 0;
    Ok(json!({
        "key": fk,
        "name": f.name.clone().unwrap_or_else(|| display_name(fk)),
        "description": f.description.clone().unwrap_or_default(),
        "kind": if boolean { "boolean" } else { "multivariate" },
        "_version": 1,
        "creationDate": now,
        "includeInSnippet": false,
        "clientSideAvailability": { "usingMobileKey": false, "usingEnvironmentId": false },
        "variations": variations,
        "temporary": f.temporary,
        "tags": f.tags,
        "_links": {
            "self": link(format!("/api/v2/flags/{pk}/{fk}")),
            "parent": link(format!("/api/v2/flags/{pk}")),
        },
        "maintainerId": MAINTAINER_ID,
        "goalIds": [],
        "experiments": experiments,
        "customProperties": {},
        "archived": f.archived,
        "deprecated": false,
        "defaults": { "onVariation": on_variation, "offVariation": if boolean { 1 } else { 0 } },
        "environments": environments,
    }))
}
