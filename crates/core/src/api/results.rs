//! Results representations (deprecated upstream, see contract quirk 1): Bayesian per-metric, per-group and legacy.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Links, lenient};

/// `ExperimentBayesianResultsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentResults {
    #[serde(rename = "_links", default)]
    pub links: Links,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub treatment_results: Vec<TreatmentResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_seen: Option<MetricSeen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_of_mismatch: Option<f64>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<SlicedResults>,
}

impl ExperimentResults {
    /// The unsliced treatment results: the deprecated top-level list, else the slice without an attribute.
    pub fn overall(&self) -> &[TreatmentResult] {
        if !self.treatment_results.is_empty() {
            return &self.treatment_results;
        }
        self.results
            .iter()
            .find(|s| s.attribute.is_none())
            .or_else(|| self.results.first())
            .map_or(&[], |s| s.treatment_results.as_slice())
    }
}

/// `SlicedResultsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlicedResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_value: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub treatment_results: Vec<TreatmentResult>,
}

/// `TreatmentResultRep`, reduced to what `ldexp results` shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreatmentResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_std_dev: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_embedded", skip_serializing_if = "Option::is_none")]
    pub credible_interval: Option<CredibleInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_best: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `CredibleIntervalRep`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CredibleInterval {
    #[serde(default)]
    pub lower: f64,
    #[serde(default)]
    pub upper: f64,
}

/// `MetricSeen`. `timestamp`'s example looks like seconds (quirk 10); it is kept as sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricSeen {
    #[serde(default, deserialize_with = "lenient::bool_or_null")]
    pub ever: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<lenient::Millis>,
}

/// `MetricGroupResultsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricGroupResults {
    #[serde(rename = "_links", default)]
    pub links: Links,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub metrics: Vec<MetricInGroupResults>,
}

/// `MetricInGroupResultsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricInGroupResults {
    pub metric: super::MetricSummary,
    pub results: ExperimentResults,
}

/// Legacy `ExperimentResults` (flag-level experiments): totals per variation and summary statistics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyResults {
    #[serde(rename = "_links", default)]
    pub links: Links,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<Value>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub totals: Vec<LegacyTotals>,
    #[serde(default, deserialize_with = "lenient::vec", skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<LegacyStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_seen: Option<MetricSeen>,
}

/// `ExperimentTotalsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTotals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_impression_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_conversion_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improvement: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sample_size: Option<i64>,
}

/// `ExperimentStatsRep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winning_variation_idx: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sample_size_met: Option<bool>,
}
