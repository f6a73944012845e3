//! LaunchDarkly REST representations (responses and request bodies), tolerant of the contract's documented quirks.
//!
//! Quirks handled here rather than in callers (see `../shared/contract/README.md` §7):
//! numeric strings and numbers are interchangeable (`allocationPercent` and thresholds are a [`Percent`],
//! timestamps a [`Millis`]),
//! `null` may appear inside arrays such as `parameters`, expanded fields are omitted when empty,
//! collection totals are `total_count` or `totalCount`, and unknown fields are ignored.

mod lenient;
mod links;
mod org;
mod results;

pub use crate::percent::Percent;
pub use lenient::Millis;
pub use links::ItemLinks;
pub use org::*;
pub use results::*;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flag_map::FlagMap;

/// `_links` and similar free-form objects we carry but never interpret.
pub type Links = BTreeMap<String, Value>;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A new-model experiment (`Experiment` schema).
///
/// Iterations are boxed: a plan holds every experiment of its environments, most with one iteration of the two
/// slots, and inline slots made each experiment 2.4 KB before any of its strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "_maintainerId", default)]
    pub maintainer_id: String,
    #[serde(rename = "_creationDate", default)]
    pub creation_date: Millis,
    #[serde(default)]
    pub environment_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methodology: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_date: Option<Millis>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "_links", default)]
    pub links: ItemLinks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_iteration: Option<Box<IterationRep>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub experiment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_iteration: Option<Box<IterationRep>>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub previous_iterations: Vec<IterationRep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_config: Option<AnalysisConfig>,
}

impl Experiment {
    /// An experiment is archived when LaunchDarkly reports an archive date.
    pub fn is_archived(&self) -> bool {
        self.archived_date.is_some()
    }

    /// The iteration waiting to be started: the draft, or a current iteration that never started (LaunchDarkly may
    /// answer a create with the new iteration in either slot, contract §9.9).
    pub fn pending_iteration(&self) -> Option<&IterationRep> {
        self.draft_iteration
            .as_deref()
            .or_else(|| self.current_iteration.as_deref().filter(|c| c.status == IterationStatus::NotStarted))
    }

    /// The current iteration when it is running.
    pub fn running_iteration(&self) -> Option<&IterationRep> {
        self.current_iteration.as_deref().filter(|c| c.status == IterationStatus::Running)
    }
}

/// Iteration status (`IterationRep.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IterationStatus {
    NotStarted,
    Running,
    Stopped,
}

/// One iteration of an experiment (`IterationRep`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IterationRep {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub hypothesis: String,
    pub status: IterationStatus,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winning_treatment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winning_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_reshuffle_traffic: Option<bool>,
    /// One or two flags per iteration: a sorted vector, not a B-tree node per iteration.
    #[serde(default, deserialize_with = "lenient::map", skip_serializing_if = "FlagMap::is_empty")]
    pub flags: FlagMap<FlagRep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reallocation_frequency_millis: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Metric summaries are shared: each repeats one of the project's metrics in every iteration that uses it,
    /// and [`crate::fetch`] makes equal ones one allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_metric: Option<Arc<MetricSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_single_metric: Option<Arc<MetricSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_funnel: Option<Arc<MetricSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_unit: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub treatments: Vec<TreatmentRep>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub secondary_metrics: Vec<Arc<MetricSummary>>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Arc<MetricSummary>>,
}

/// The metric shapes embedded in iterations: `MetricV2Rep`, `DependentMetricOrMetricGroupRep`,
/// `DependentMetricGroupRepWithMetrics` and `MetricInGroupRep` share these fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    pub key: String,
    #[serde(rename = "_versionId", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_numeric: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_aggregation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    #[serde(rename = "_links", default)]
    pub links: ItemLinks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_group: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_in_group: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_vec", skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricSummary>>,
}

/// One treatment (`TreatmentRep`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreatmentRep {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub allocation_percent: Percent,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub baseline: bool,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterRep>,
}

/// A treatment parameter (`ParameterRep`): which variation of which flag the treatment serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterRep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_key: Option<String>,
}

/// A flag's role in an iteration (`FlagRep`). Note `targetingRule` here is `ruleId` on input.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagRep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting_rule_description: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub targeting_rule_clauses: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_config_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in_experiment_variation_id: Option<String>,
    #[serde(rename = "_links", default)]
    pub links: ItemLinks,
}

/// `AnalysisConfigRep` / `AnalysisConfigInput`: the two share their fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bayesian_threshold: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub significance_threshold: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_comparison_correction_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_comparison_correction_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_testing_enabled: Option<bool>,
}

/// `ExperimentCollectionRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExperimentCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<Experiment>,
    #[serde(rename = "total_count", alias = "totalCount", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A feature flag, typed for what ldexp reads. The planner also keeps the raw JSON
/// (see [`crate::remote::FlagSnapshot`]) so a JSON patch can be checked against the whole flag.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlag {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "_version", default)]
    pub version: i64,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub variations: Vec<Variation>,
    #[serde(default, deserialize_with = "lenient::map")]
    pub environments: BTreeMap<String, FlagEnvironment>,
    #[serde(default, deserialize_with = "lenient::embedded")]
    pub experiments: LegacyExperiments,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub archived: bool,
}

/// `Variation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variation {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `FeatureFlagConfig`: one environment of a flag, reduced to what ldexp reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagEnvironment {
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub on: bool,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub archived: bool,
    #[serde(default)]
    pub version: i64,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallthrough: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variation: Option<i64>,
}

/// A targeting rule (`Rule`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Value>,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub disabled: bool,
}

/// `ExperimentInfoRep`: the flag's legacy `experiments` property.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyExperiments {
    #[serde(default)]
    pub baseline_idx: i64,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<LegacyExperiment>,
}

/// `LegacyExperimentRep`, reduced to the fields a spec owns (`_metric` and `_environmentSettings` are read-only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyExperiment {
    #[serde(default)]
    pub metric_key: String,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub environments: Vec<String>,
}

/// A metric as listed by `getMetrics` (`MetricListingRep`) or fetched by `getMetric` (`MetricRep`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    #[serde(rename = "_id", default)]
    pub id: String,
    #[serde(rename = "_versionId", default)]
    pub version_id: String,
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_numeric: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub randomization_units: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_aggregation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool_or_null", skip_serializing_if = "is_false")]
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Experiments using the metric, itself or through a group (every environment; what a delete must respect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_group_count: Option<u64>,
}

/// `MetricCollectionRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<Metric>,
    #[serde(rename = "totalCount", alias = "total_count", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `MetricGroupRep`, reduced to what ldexp reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricGroup {
    #[serde(rename = "_id", default)]
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub metrics: Vec<MetricSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `MaintainerRep`: `{member: {_id, …}}` or `{team: …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_count: Option<u64>,
}

/// `MetricGroupCollectionRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricGroupCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<MetricGroup>,
    #[serde(rename = "totalCount", alias = "total_count", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `FeatureFlags`: one page of `getFeatureFlags` (the flags of a project).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FeatureFlagCollection {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub items: Vec<FeatureFlag>,
    #[serde(rename = "totalCount", alias = "total_count", default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `RandomizationSettingsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentationSettings {
    #[serde(rename = "_projectId", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(rename = "_projectKey", default, skip_serializing_if = "Option::is_none")]
    pub project_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub randomization_units: Vec<RandomizationUnit>,
    #[serde(rename = "_creationDate", default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<Millis>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `RandomizationUnitRep` / `RandomizationUnitInput`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RandomizationUnit {
    pub randomization_unit: String,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub default: bool,
    #[serde(rename = "_hidden", default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(rename = "_displayName", default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `RandomizationSettingsPut`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentationSettingsPut {
    pub randomization_units: Vec<RandomizationUnitInput>,
}

/// `RandomizationUnitInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RandomizationUnitInput {
    pub randomization_unit: String,
    #[serde(default)]
    pub default: bool,
}

// ---- request bodies -------------------------------------------------------------------------

/// `CallerIdentityRep`: what ldexp needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub service_token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// `ExperimentPost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentPost {
    pub name: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_id: Option<String>,
    pub iteration: IterationInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methodology: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_config: Option<AnalysisConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
}

/// `IterationInput`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IterationInput {
    pub hypothesis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_reshuffle_traffic: Option<bool>,
    pub metrics: Vec<MetricInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_single_metric_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_funnel_key: Option<String>,
    pub treatments: Vec<TreatmentInput>,
    pub flags: BTreeMap<String, FlagInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
}

/// `MetricInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricInput {
    pub key: String,
    #[serde(default)]
    pub is_group: bool,
}

/// `TreatmentInput`. `allocationPercent` is a string on the wire (quirk 3), which [`Percent`] writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreatmentInput {
    pub name: String,
    pub baseline: bool,
    pub allocation_percent: Percent,
    pub parameters: Vec<TreatmentParameterInput>,
}

/// `TreatmentParameterInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreatmentParameterInput {
    pub flag_key: String,
    pub variation_id: String,
}

/// `FlagInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagInput {
    pub rule_id: String,
    pub flag_config_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in_experiment_variation_id: Option<String>,
}

/// `ExperimentPatchInput`: a semantic patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// The six semantic-patch instruction kinds of `patchExperiment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Instruction {
    UpdateName {
        value: String,
    },
    UpdateDescription {
        value: String,
    },
    #[serde(rename_all = "camelCase")]
    StartIteration {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change_justification: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    StopIteration {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winning_treatment_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winning_reason: Option<String>,
    },
    ArchiveExperiment,
    RestoreExperiment,
}

/// `PatchWithComment`: a JSON patch with an audit-log comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchWithComment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub patch: json_patch::Patch,
}

/// LaunchDarkly's error body `{code, message, id}`; only `message` is reliably present (beta rejections omit `code`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[cfg(test)]
mod tests;
