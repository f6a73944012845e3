//! The seed format: the starting state of the emulator, written by hand in YAML or JSON (README, "Seed format").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EmulatorError;

/// A whole seed: the projects the emulated LaunchDarkly account holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Behaviour switches of the emulated service.
    #[serde(default, skip_serializing_if = "SeedOptions::is_default")]
    pub options: SeedOptions,
    #[serde(default)]
    pub projects: Vec<SeedProject>,
}

/// Behaviour switches a seed can set (README, "Seed format").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedOptions {
    /// Creates answer the new iteration as a `not_started` `currentIteration` instead of as `draftIteration`.
    #[serde(default)]
    pub create_as_current: bool,
}

impl SeedOptions {
    fn is_default(&self) -> bool {
        self == &SeedOptions::default()
    }
}

impl Seed {
    /// Reads a YAML or JSON seed file.
    pub fn from_path(p: &Path) -> Result<Seed, EmulatorError> {
        let text = std::fs::read_to_string(p).map_err(|source| EmulatorError::Io { path: p.to_path_buf(), source })?;
        parse(&text).map_err(|message| EmulatorError::SeedSyntax { path: Some(p.to_path_buf()), message })
    }

    /// Parses YAML or JSON seed text.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Seed, EmulatorError> {
        parse(text).map_err(|message| EmulatorError::SeedSyntax { path: None, message })
    }
}

fn parse(text: &str) -> Result<Seed, String> {
    if text.trim().is_empty() {
        return Ok(Seed::default());
    }
    // JSON is read as JSON: YAML rejects the tab indentation JSON files often have.
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// One project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedProject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub environments: Vec<SeedEnvironment>,
    /// The project's experimentation settings; the first is the default. Empty means `[user]`.
    #[serde(default)]
    pub randomization_units: Vec<String>,
    /// Context kinds a settings PUT may name; empty means the randomization units plus `user`.
    #[serde(default)]
    pub context_kinds: Vec<String>,
    #[serde(default)]
    pub metrics: Vec<SeedMetric>,
    #[serde(default)]
    pub metric_groups: Vec<SeedMetricGroup>,
    #[serde(default)]
    pub flags: Vec<SeedFlag>,
    /// Environment key → API-shaped `Experiment` objects (the README's "Seed format" says what is filled in).
    #[serde(default)]
    pub experiments: BTreeMap<String, Vec<Value>>,
}

/// An environment: a bare key, or an object for the options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeedEnvironment {
    Key(String),
    #[serde(rename_all = "camelCase")]
    Full {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Flag changes in this environment need approvals: a flag PATCH touching it answers 405.
        #[serde(default)]
        approvals_required: bool,
    },
}

impl SeedEnvironment {
    /// The environment key.
    pub fn key(&self) -> &str {
        match self {
            SeedEnvironment::Key(k) | SeedEnvironment::Full { key: k, .. } => k,
        }
    }
}

/// A metric (`MetricRep`, reduced to what a seed needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedMetric {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `custom` (default), `pageview` or `click`.
    #[serde(default = "custom")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_numeric: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_aggregation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization_units: Option<Vec<String>>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Click metrics: the CSS selectors (default `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Click and pageview metrics: `UrlPost` matchers (default: one substring matcher on `/`, every page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<Value>>,
    /// `mean` (default) or `percentile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_value: Option<i64>,
    /// `{disabled, value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_default: Option<Value>,
}

fn custom() -> String {
    "custom".to_owned()
}

fn funnel() -> String {
    "funnel".to_owned()
}

/// A metric group: `funnel` (ordered steps) or `standard`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedMetricGroup {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "funnel")]
    pub kind: String,
    /// Metric keys, in step order.
    pub metrics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A feature flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFlag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub variations: Vec<SeedVariation>,
    /// Environment key → targeting; environments not listed are off with no rules.
    #[serde(default)]
    pub environments: BTreeMap<String, SeedFlagEnvironment>,
    /// The legacy `experiments` property (`{baselineIdx, items: [{metricKey, environments}]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiments: Option<Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub temporary: bool,
    #[serde(default)]
    pub archived: bool,
}

/// A variation; `_id` is derived from the project, flag and index unless given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVariation {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A flag's targeting in one environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFlagEnvironment {
    #[serde(default)]
    pub on: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub rules: Vec<SeedRule>,
    /// `{variation: N}` or `{rollout: {...}}`; default `{variation: 0}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallthrough: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variation: Option<i64>,
}

/// A targeting rule; `_id` is derived unless given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRule {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Value>,
    #[serde(default)]
    pub clauses: Vec<Value>,
    #[serde(default)]
    pub track_events: bool,
    #[serde(default)]
    pub disabled: bool,
}
