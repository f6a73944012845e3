//! The spec format v1: the Rust types every YAML document deserialises into, and from which `schema/` is generated.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::flag_map::FlagMap;
pub use crate::percent::Percent;

/// One YAML document of a spec source, discriminated by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
#[allow(clippy::large_enum_variant)] // Documents are few and short-lived; boxing would only complicate matching.
pub enum SpecDocument {
    /// A new-model experiment, managed through the Experiments API.
    Experiment(ExperimentSpec),
    /// The legacy `experiments` property of one flag, managed through JSON patch on the flag.
    LegacyFlagExperiments(LegacyFlagExperimentsSpec),
    /// The managed scope: the projects and environments ldexp plans for, and what `--prune` may remove there.
    Workspace(WorkspaceSpec),
    /// A metric, managed through the metrics API.
    Metric(super::catalog::MetricSpec),
    /// A metric group (a funnel or a standard group), managed through the metric groups API.
    MetricGroup(super::catalog::MetricGroupSpec),
    /// A project's randomization units.
    ExperimentationSettings(super::catalog::ExperimentationSettingsSpec),
    /// A layer: experiments in it get mutually exclusive traffic.
    Layer(super::org::LayerSpec),
    /// A holdout: users held out of every experiment in it.
    Holdout(super::org::HoldoutSpec),
}

/// A new-model experiment in one or more environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Project key.
    pub project: String,
    /// The one environment this experiment lives in. Give this or `environments`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Several environments: one experiment per environment, all with this design.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Experiment key, unique within its project and environment.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Maintainer member id. Creation-only: LaunchDarkly cannot change it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
    /// Tags. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Statistical methodology. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methodology: Option<Methodology>,
    /// Analysis configuration, as the contract's `AnalysisConfigInput`. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_config: Option<AnalysisConfigSpec>,
    /// Where the metric data comes from. Creation-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    /// The `_id` of a holdout no spec declares, this experiment belongs to. Creation-only. Prefer `holdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_id: Option<String>,
    /// The key of the holdout (in each environment of the spec) this experiment is created in. Creation-only:
    /// an experiment can leave its holdout (remove the field) but never join one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<String>,
    /// The layer this experiment reserves traffic in, in each environment of the spec. Without it, the
    /// experiment is in no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<super::org::LayerRef>,
    /// The lifecycle state ldexp drives the experiment to.
    pub state: ExperimentState,
    /// The design of the current iteration.
    pub iteration: IterationSpec,
    /// How the experiment was stopped; required when `state: stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSpec>,
}

impl ExperimentSpec {
    /// The environments this spec targets, in the order written.
    pub fn target_environments(&self) -> Vec<&str> {
        match (&self.environment, &self.environments) {
            (Some(e), _) => vec![e.as_str()],
            (None, Some(es)) => es.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// Lifecycle state of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentState {
    /// Designed, not started.
    Draft,
    /// Collecting data.
    Running,
    /// Stopped with a winner.
    Stopped,
    /// Archived.
    Archived,
}

impl ExperimentState {
    /// The spelling used in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Archived => "archived",
        }
    }
}

impl fmt::Display for ExperimentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `methodology` of `ExperimentPost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Methodology {
    /// Bayesian (LaunchDarkly's default).
    Bayesian,
    /// Frequentist.
    Frequentist,
    /// Export only.
    ExportOnly,
}

impl Methodology {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bayesian => "bayesian",
            Self::Frequentist => "frequentist",
            Self::ExportOnly => "export_only",
        }
    }
}

/// `dataSource` of `ExperimentPost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// LaunchDarkly (the default).
    Launchdarkly,
    /// Snowflake warehouse-native.
    Snowflake,
    /// Databricks warehouse-native.
    Databricks,
    /// Redshift warehouse-native.
    Redshift,
}

impl DataSource {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launchdarkly => "launchdarkly",
            Self::Snowflake => "snowflake",
            Self::Databricks => "databricks",
            Self::Redshift => "redshift",
        }
    }
}

/// The contract's `AnalysisConfigInput`. Thresholds accept numbers or numeric strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisConfigSpec {
    /// Bayesian threshold, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::percent::as_number::option")]
    #[schemars(with = "Option<Decimal>")]
    pub bayesian_threshold: Option<Percent>,
    /// Significance threshold.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::percent::as_number::option")]
    #[schemars(with = "Option<Decimal>")]
    pub significance_threshold: Option<Percent>,
    /// Test direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_direction: Option<String>,
    /// Multiple comparison correction method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_comparison_correction_method: Option<CorrectionMethod>,
    /// Multiple comparison correction scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_comparison_correction_scope: Option<CorrectionScope>,
    /// Sequential testing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_testing_enabled: Option<bool>,
}

/// `multipleComparisonCorrectionMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CorrectionMethod {
    /// Bonferroni.
    #[serde(rename = "bonferroni")]
    Bonferroni,
    /// Benjamini–Hochberg.
    #[serde(rename = "benjamini-hochberg")]
    BenjaminiHochberg,
}

/// `multipleComparisonCorrectionScope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CorrectionScope {
    /// Across variations.
    #[serde(rename = "variations")]
    Variations,
    /// Across variations and metrics.
    #[serde(rename = "variations-and-metrics")]
    VariationsAndMetrics,
    /// Across metrics.
    #[serde(rename = "metrics")]
    Metrics,
}

// Schema stand-in for a `Percent` written in a spec (the doc line below is the schema's description).
/// A number written either as a YAML number or a numeric string (`50`, `"50"`, `"12.5"`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum Decimal {
    /// A YAML number.
    Number(f64),
    /// A numeric string.
    Text(NumericString),
}

/// Schema stand-in for a numeric string.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
pub(super) struct NumericString(#[schemars(regex(pattern = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"))] String);

/// Whether `s` matches the numeric-string pattern of the schema: `^\s*-?[0-9]+(\.[0-9]+)?\s*$`.
pub(crate) fn is_numeric_text(s: &str) -> bool {
    Percent::parse_spec(s).is_some()
}

/// The design of the iteration ldexp keeps the experiment on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IterationSpec {
    /// The hypothesis the iteration tests.
    pub hypothesis: String,
    /// Whether LaunchDarkly may reshuffle traffic when allocations change. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_reshuffle_traffic: Option<bool>,
    /// The context kind to randomize by. Default `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_unit: Option<String>,
    /// Context attributes that results can be sliced by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
    /// Why a running experiment restarts with a new design. Needed only for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_justification: Option<String>,
    /// The primary metric: a metric key, or a metric-group key listed with `group: true`.
    pub primary_metric: String,
    /// Metrics and metric groups measured.
    pub metrics: Vec<MetricRef>,
    /// Flags in the experiment, by flag key.
    #[schemars(with = "BTreeMap<String, FlagSpec>")]
    pub flags: FlagMap<FlagSpec>,
    /// Treatments: exactly one is the baseline.
    pub treatments: Vec<TreatmentSpec>,
}

/// A metric reference: a bare key, or `{key, group}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MetricRef {
    /// Short form: a metric key.
    Key(String),
    /// Long form.
    Detailed(MetricRefDetailed),
}

/// The long form of a metric reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricRefDetailed {
    /// Metric or metric-group key.
    pub key: String,
    /// `true` when `key` names a metric group.
    #[serde(default)]
    pub group: bool,
}

impl MetricRef {
    /// The metric or metric-group key.
    pub fn key(&self) -> &str {
        match self {
            Self::Key(k) => k,
            Self::Detailed(d) => &d.key,
        }
    }

    /// Whether the key names a metric group.
    pub fn is_group(&self) -> bool {
        matches!(self, Self::Detailed(d) if d.group)
    }
}

/// How a flag takes part in the experiment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagSpec {
    /// `fallthrough`, or the description of a targeting rule. Give this or `ruleId`; with neither, the experiment
    /// runs on the fallthrough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A targeting rule `_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The variation served to contexts outside the experiment: name, value or `_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in_experiment_variation: Option<VariationRef>,
}

/// A variation named by its `name`, its `value` or its `_id`, tried in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum VariationRef {
    /// A name, string value or `_id`.
    Text(String),
    /// A boolean value.
    Bool(bool),
    /// A numeric value or index-like number.
    Number(serde_json::Number),
}

impl VariationRef {
    /// The reference as JSON, for comparing with variation values.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(s) => serde_json::Value::String(s.clone()),
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
        }
    }
}

impl fmt::Display for VariationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One treatment of the iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreatmentSpec {
    /// Treatment name, unique in the iteration.
    pub name: String,
    /// Exactly one treatment is the baseline.
    #[serde(default)]
    pub baseline: bool,
    /// Share of the experiment's traffic, 0–100; a number or numeric string.
    #[serde(with = "crate::percent::as_number")]
    #[schemars(with = "Decimal")]
    pub allocation_percent: Percent,
    /// For every flag of the iteration, the variation this treatment serves.
    #[schemars(with = "BTreeMap<String, VariationRef>")]
    pub variations: FlagMap<VariationRef>,
}

/// How a stopped experiment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopSpec {
    /// The winning treatment's name. LaunchDarkly requires a winner to stop; for an inconclusive result name the
    /// baseline.
    pub winner: String,
    /// Why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Legacy experiments on one flag: the spec owns the flag's whole `experiments` property and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyFlagExperimentsSpec {
    /// Project key.
    pub project: String,
    /// Flag key.
    pub flag: String,
    /// The baseline variation: its name, value or index.
    pub baseline: VariationRef,
    /// Metrics attached to the flag, in order.
    pub metrics: Vec<LegacyMetricSpec>,
}

/// One legacy experiment: a metric on the flag, and where it records data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyMetricSpec {
    /// Metric key.
    pub key: String,
    /// Environments where data is recorded; `[]` attaches the metric without recording.
    pub environments: Vec<String>,
}

/// The managed scope: which projects and environments ldexp plans for, and what `--prune` may remove in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSpec {
    /// The managed projects. A project has at most one entry across all Workspace documents.
    pub projects: Vec<WorkspaceProject>,
}

/// One managed project of a Workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceProject {
    /// Project key.
    pub key: String,
    /// The managed environments of the project; specs of this project may target only these. Not empty, no repeats.
    pub environments: Vec<String>,
    /// What `--prune` may remove in these environments. Empty: the scope is declared and nothing is prunable.
    #[serde(default)]
    pub owns: Vec<Owned>,
}

/// A kind of LaunchDarkly object a Workspace owns in its environments.
// Kinds ldexp will manage later are listed under `x-ldexp-planned`, so that validation says "not supported yet"
// instead of "unknown"; supporting one is a variant here and its removal from that list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Owned {
    /// Experiments: `--prune` archives the experiments of these environments that no spec declares.
    Experiments,
    /// Metrics: `--prune` deletes the project's metrics that no spec declares and nothing uses.
    Metrics,
    /// Metric groups: `--prune` deletes the project's metric groups that no spec declares and nothing uses.
    MetricGroups,
    /// Holdouts: `--prune` ends the holdouts of these environments that no spec declares.
    Holdouts,
    /// Layers: `--prune` empties the project's layers that no spec declares of their reservations (LaunchDarkly
    /// cannot delete a layer), and removes from declared layers the reservations of experiments no spec declares.
    Layers,
}

impl Owned {
    /// The spelling used in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Experiments => "experiments",
            Self::Metrics => "metrics",
            Self::MetricGroups => "metricGroups",
            Self::Holdouts => "holdouts",
            Self::Layers => "layers",
        }
    }
}

impl fmt::Display for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
