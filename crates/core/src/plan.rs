//! The `Plan`: plain serialisable data that carries the exact HTTP requests to send, and what each must achieve.
//!
//! The planner builds it; the applier executes it without making decisions. Each request names the
//! postconditions ([`Expectation`]) that prove it took effect, so an apply that lost a response can
//! re-read the object and know, rather than guess, whether to send again.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::LegacyExperiments;
use crate::design::Design;
use crate::json_text::JsonText;
use crate::spec::SourceLocation;

/// The plan format this build reads and writes.
// 3: requests may carry `bind` (fields filled in at send time); a build that ignored it would send stale values.
// 5: a request may name the `object` it writes (a layer's reservation in an experiment's change); a build that
// ignored it would check the request's postconditions against the wrong object.
pub const FORMAT_VERSION: u32 = 5;

/// The JSON Schema of a plan file (`ldexp plan --out`), generated from these types; committed as
/// `schema/plan.schema.json`.
pub fn json_schema() -> Value {
    crate::spec::sorted(serde_json::to_value(schemars::schema_for!(Plan)).unwrap_or_default())
}

/// Content type for JSON bodies.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type for semantic patches; without it LaunchDarkly reads the body as a JSON patch and answers 400.
pub const CONTENT_TYPE_SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format_version: u32,
    /// `sha256:<hex>` of what the specs mean (not of their files), so a saved plan can be matched to its sources.
    pub specs_digest: String,
    /// Whether unmanaged experiments were planned for archival.
    #[serde(default)]
    pub prune: bool,
    pub changes: Vec<Change>,
    #[serde(default)]
    pub unmanaged: Vec<Unmanaged>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Differences between the specs and LaunchDarkly that no request can remove; some refuse their object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergences: Vec<Divergence>,
    pub summary: Summary,
}

impl Plan {
    /// A plan of `changes` alone: nothing unmanaged, no warning or divergence, no `--prune`.
    pub fn of(specs_digest: String, changes: Vec<Change>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            specs_digest,
            prune: false,
            summary: Summary::of(&changes, 0),
            changes,
            unmanaged: Vec::new(),
            warnings: Vec::new(),
            divergences: Vec::new(),
        }
    }

    /// True when applying would send nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.iter().all(|c| c.requests.is_empty())
    }

    /// The divergences that refuse their object: `plan` plans nothing for it and exits 1.
    pub fn refusals(&self) -> impl Iterator<Item = &Divergence> {
        self.divergences.iter().filter(|d| d.refuses)
    }

    /// The objects refused, each once, in address order.
    pub fn refused_addresses(&self) -> Vec<&Address> {
        let mut out: Vec<&Address> = self.refusals().map(|d| &d.address).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The object a change acts on: `experimentation-settings/<project>`, `metric/<project>/<key>`,
/// `metric-group/<project>/<key>`, `experiment/<project>/<env>/<key>`, `legacy/<project>/<flag>`, or the legacy
/// results of a flag's metric in one environment, `legacy-results/<project>/<flag>/<env>/<metric>`.
///
/// The variants are in dependency order, so that a plan sorted by address lists what others use first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Address {
    Settings { project: String },
    Metric { project: String, key: String },
    MetricGroup { project: String, key: String },
    Layer { project: String, key: String },
    Holdout { project: String, environment: String, key: String },
    Experiment { project: String, environment: String, key: String },
    Legacy { project: String, flag: String },
    LegacyResults { project: String, flag: String, environment: String, metric: String },
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Settings { project } => write!(f, "experimentation-settings/{project}"),
            Self::Metric { project, key } => write!(f, "metric/{project}/{key}"),
            Self::MetricGroup { project, key } => write!(f, "metric-group/{project}/{key}"),
            Self::Layer { project, key } => write!(f, "layer/{project}/{key}"),
            Self::Holdout { project, environment, key } => write!(f, "holdout/{project}/{environment}/{key}"),
            Self::Experiment { project, environment, key } => write!(f, "experiment/{project}/{environment}/{key}"),
            Self::Legacy { project, flag } => write!(f, "legacy/{project}/{flag}"),
            Self::LegacyResults { project, flag, environment, metric } => {
                write!(f, "legacy-results/{project}/{flag}/{environment}/{metric}")
            }
        }
    }
}

impl JsonSchema for Address {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Address".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`experimentation-settings/<project>`, `metric/<project>/<key>`, \
                            `metric-group/<project>/<key>`, `layer/<project>/<key>`, \
                            `holdout/<project>/<environment>/<key>`, `experiment/<project>/<environment>/<key>`, \
                            `legacy/<project>/<flag>` or `legacy-results/<project>/<flag>/<environment>/<metric>`",
            "pattern": "^(experimentation-settings/[^/]+|metric/[^/]+/[^/]+|metric-group/[^/]+/[^/]+|\
                        layer/[^/]+/[^/]+|holdout/[^/]+/[^/]+/[^/]+|\
                        experiment/[^/]+/[^/]+/[^/]+|legacy/[^/]+/[^/]+|legacy-results/[^/]+/[^/]+/[^/]+/[^/]+)$"
        })
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Address {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["experimentation-settings", p] => Ok(Self::Settings { project: (*p).to_owned() }),
            ["metric", p, k] => Ok(Self::Metric { project: (*p).to_owned(), key: (*k).to_owned() }),
            ["metric-group", p, k] => Ok(Self::MetricGroup { project: (*p).to_owned(), key: (*k).to_owned() }),
            ["layer", p, k] => Ok(Self::Layer { project: (*p).to_owned(), key: (*k).to_owned() }),
            ["holdout", p, e, k] => {
                Ok(Self::Holdout { project: (*p).to_owned(), environment: (*e).to_owned(), key: (*k).to_owned() })
            }
            ["experiment", p, e, k] => {
                Ok(Self::Experiment { project: (*p).to_owned(), environment: (*e).to_owned(), key: (*k).to_owned() })
            }
            ["legacy", p, f] => Ok(Self::Legacy { project: (*p).to_owned(), flag: (*f).to_owned() }),
            ["legacy-results", p, f, e, m] => Ok(Self::LegacyResults {
                project: (*p).to_owned(),
                flag: (*f).to_owned(),
                environment: (*e).to_owned(),
                metric: (*m).to_owned(),
            }),
            _ => Err(format!(
                "`{s}` is not an address (experiment/<project>/<env>/<key>, legacy/<project>/<flag>, \
                 metric/<project>/<key>, metric-group/<project>/<key>, layer/<project>/<key>, \
                 holdout/<project>/<env>/<key> or experimentation-settings/<project>)"
            )),
        }
    }
}

/// What a change does, as shown to reviewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Start,
    Restart,
    Stop,
    Archive,
    Restore,
    PatchLegacy,
    /// Deletes a metric or a metric group (`--prune`, where a Workspace owns the kind).
    Delete,
    // `ldexp results reset-legacy`; undocumented here so that the schema keeps one plain enum of actions.
    ResetResults,
}

impl Action {
    /// The spelling in plans and renderings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Start => "start",
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::PatchLegacy => "patch-legacy",
            Self::Delete => "delete",
            Self::ResetResults => "reset-results",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a change deserves a second look.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Risk {
    /// A restart ends data collection of the running iteration.
    EndsDataCollection,
    /// Stopping or archiving ends the experiment.
    EndsExperiment,
    /// A delete cannot be undone: the object's history goes with it.
    Deletes,
    /// A new iteration replaces a draft that is waiting beside a started iteration, and whose design is not the
    /// spec's: someone may have prepared it by hand.
    #[serde(rename_all = "camelCase")]
    ReplacesPendingDraft {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iteration_id: Option<String>,
        hypothesis: String,
    },
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndsDataCollection => f.write_str("ends data collection of the running iteration"),
            Self::EndsExperiment => f.write_str("ends the experiment"),
            Self::Deletes => f.write_str("deletes it for good: LaunchDarkly cannot restore a deleted object"),
            Self::ReplacesPendingDraft { iteration_id, hypothesis } => {
                f.write_str("replaces the pending draft iteration")?;
                if let Some(id) = iteration_id {
                    write!(f, " {id}")?;
                }
                // The hypothesis is how a colleague recognises their draft; a long one is cut, the plan keeps it whole.
                let short: String = hypothesis.chars().take(80).collect();
                let cut = if short.len() < hypothesis.len() { "…" } else { "" };
                write!(f, " (hypothesis {:?}), whose design is not the spec's", format!("{short}{cut}"))
            }
        }
    }
}

/// Everything that happens to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// What a reviewer must weigh, most serious first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    /// `blake3:<hex>` of the remote representation this change was computed from; `None` when the object is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_fingerprint: Option<String>,
    /// The design fields before and after (experiments), or the `experiments` property (legacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<JsonText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<JsonText>,
    /// One entry per changed field, for renderings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Requests, in the order they must run.
    pub requests: Vec<PlannedRequest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The flags, in the address's environment, whose configuration this change's requests carry or rewrite: a
    /// create or new iteration carries their version, a start or stop rewrites the rule it uses. Changes that share
    /// one run one after another, in plan order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Changes of this plan that must succeed before this one is sent: a metric before the group and the
    /// experiment that use it, a unit before the metric that allows it; for deletes, the reverse. When one fails,
    /// this change is skipped, never sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
}

/// One changed field: a dotted path and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// HTTP method of a planned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One exact HTTP request. The token is never part of it; the client adds headers at send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRequest {
    pub method: Method,
    /// Path under the base URL, starting with `/api/v2/`, with every segment percent-encoded as needed.
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Postconditions that hold once this request has taken effect; all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expectation>,
    /// Body fields the applier fills in when it sends the request, because an earlier request of the same apply
    /// moves them. The body holds the value seen at plan time; everything else is sent exactly as planned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<Binding>,
    /// The object this request writes, when it is not its change's: an experiment's reservation in a layer, or its
    /// leaving a holdout. Its postconditions are checked against a fresh read of this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Address>,
}

impl PlannedRequest {
    /// This request with each bound field set to `value_of` its source, as the applier sends it. Fails, naming the
    /// field, when a source has no value or the body has no such field.
    pub fn with_bound(&self, mut value_of: impl FnMut(&BoundValue) -> Option<Value>) -> Result<PlannedRequest, String> {
        let mut out = self.clone();
        for Binding { pointer, value } in &self.bind {
            let v = value_of(value)
                .ok_or_else(|| format!("cannot fill in {pointer} with {value}: LaunchDarkly has no such value"))?;
            let slot = out
                .body
                .as_mut()
                .and_then(|b| b.pointer_mut(pointer))
                .ok_or_else(|| format!("cannot fill in {pointer} with {value}: the body has no such field"))?;
            *slot = v;
        }
        Ok(out)
    }

    /// Whether two requests send the same thing, a bound field counting as equal whatever value each body holds
    /// (it is replaced at send time; a partly applied plan and a fresh one see different versions there).
    pub fn sends_the_same_as(&self, other: &PlannedRequest) -> bool {
        if self.bind.is_empty() && other.bind.is_empty() {
            return self == other;
        }
        let blank = |r: &PlannedRequest| {
            let mut r = r.clone();
            let pointers: Vec<String> = self.bind.iter().chain(&other.bind).map(|b| b.pointer.clone()).collect();
            if let Some(body) = r.body.as_mut() {
                for p in &pointers {
                    if let Some(v) = body.pointer_mut(p) {
                        *v = Value::Null;
                    }
                }
            }
            r.bind.clear();
            r
        };
        blank(self) == blank(other)
    }
}

/// A body field filled in at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// JSON pointer to the field in the body.
    pub pointer: String,
    /// What the field is set to.
    pub value: BoundValue,
}

impl Binding {
    /// The field as a dotted path (`iteration.flags.f.flagConfigVersion`), the way renderings name fields.
    pub fn field(&self) -> String {
        let tokens: Vec<String> =
            self.pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
        tokens.join(".")
    }
}

/// The source of a bound field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BoundValue {
    /// The flag's `environments.<environment>.version`, read just before sending: a start or stop earlier in the
    /// same apply moves it, and LaunchDarkly refuses a stale `flagConfigVersion`.
    FlagVersion { project: String, flag: String, environment: String },
    /// The `_id` of the holdout with this key, read just before sending: a holdout created earlier in the same
    /// apply has no id at plan time.
    HoldoutId { project: String, environment: String, key: String },
}

impl fmt::Display for BoundValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FlagVersion { flag, environment, .. } => {
                write!(f, "the version of flag `{flag}` in `{environment}` when sent")
            }
            Self::HoldoutId { environment, key, .. } => write!(f, "the _id of holdout `{key}` in `{environment}`"),
        }
    }
}

// The designs are shared (`Arc`): a create or a new iteration and the start after it expect the same one.
/// A postcondition the applier checks against a fresh read of the change's object, after a lost response.
///
/// Each one names exactly the effect of its request, so that it is false in every state the planner plans that
/// request from (see [`crate::verify`] for the argument, and the planner's `postconditions` property test): a lost
/// response is then never mistaken for success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Expectation {
    /// The experiment exists (after a create).
    ExperimentExists,
    /// The iteration waiting to be started (the draft, or a current iteration that never started) has this design:
    /// the effect of a create or of a new iteration.
    PendingDesign { design: Arc<Design> },
    /// The current iteration is running and has this design: the effect of a start or restart.
    RunningDesign { design: Arc<Design> },
    /// The iteration with this `_id` has stopped, with this winning treatment.
    #[serde(rename_all = "camelCase")]
    IterationStopped { iteration_id: String, winning_treatment_id: String },
    /// The experiment is archived.
    Archived,
    /// The experiment is not archived.
    NotArchived,
    /// The experiment's name.
    Name { value: String },
    /// The experiment's description; an absent description reads as `""`.
    Description { value: String },
    /// The flag's `experiments` property.
    FlagExperiments { experiments: LegacyExperiments },
    /// The metric or metric group exists and these fields (as its create body names them) have these values.
    CatalogFields { fields: serde_json::Map<String, Value> },
    /// The object does not exist (after a delete).
    Absent,
    /// The project's randomization units are these, compared as a set keyed by unit.
    RandomizationUnits { units: Vec<crate::api::RandomizationUnitInput> },
    /// The layer reserves exactly this share for the experiment in the environment.
    #[serde(rename_all = "camelCase")]
    Reservation { environment: String, experiment: String, percent: i64 },
    /// The layer holds no reservation for the experiment in the environment.
    #[serde(rename_all = "camelCase")]
    NoReservation { environment: String, experiment: String },
    /// The holdout has ended.
    HoldoutEnded,
    /// The holdout does not hold the experiment.
    NotInHoldout { experiment: String },
}

/// A difference between a spec and LaunchDarkly that no request can remove: a creation-only field, the winner of a
/// stopped iteration, the design of a stopped or archived experiment. `plan` shows it and `drift` reports it; it is
/// never skipped in silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    pub address: Address,
    /// The field, named as in [`Change::fields`].
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// Why no request can apply it.
    pub reason: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Where the spec writes the field.
    pub location: SourceLocation,
    /// True when the object is refused: nothing is planned for it (a creation-only field differs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refuses: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An experiment that exists remotely in a targeted environment but is in no spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unmanaged {
    pub address: Address,
    pub name: String,
    /// `draft`, `running`, `stopped` or `archived`.
    pub state: String,
}

/// Something a reviewer should know that does not stop the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub message: String,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub start: usize,
    pub restart: usize,
    pub stop: usize,
    pub archive: usize,
    pub restore: usize,
    pub patch_legacy: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delete: usize,
    pub unmanaged: usize,
    /// Objects refused because of a divergence no request can remove.
    #[serde(default)]
    pub refused: usize,
    /// Legacy results to reset; only `ldexp results reset-legacy` plans these, so plans of specs never carry it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reset_results: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// Counts the actions of `changes`.
    pub fn of(changes: &[Change], unmanaged: usize) -> Self {
        let mut s = Summary { unmanaged, ..Summary::default() };
        for c in changes {
            *match c.action {
                Action::Create => &mut s.create,
                Action::Update => &mut s.update,
                Action::Start => &mut s.start,
                Action::Restart => &mut s.restart,
                Action::Stop => &mut s.stop,
                Action::Archive => &mut s.archive,
                Action::Restore => &mut s.restore,
                Action::PatchLegacy => &mut s.patch_legacy,
                Action::Delete => &mut s.delete,
                Action::ResetResults => &mut s.reset_results,
            } += 1;
        }
        s
    }

    /// Total number of changes.
    pub fn total(&self) -> usize {
        self.create
            + self.update
            + self.start
            + self.restart
            + self.stop
            + self.archive
            + self.restore
            + self.patch_legacy
            + self.delete
            + self.reset_results
    }
}
