//! Read and write access to LaunchDarkly, as traits; the reqwest implementation sits behind the `http` feature.

use std::future::Future;

use serde_json::Value;

use crate::Error;
use crate::api::{
    Experiment, ExperimentResults, ExperimentationSettings, LegacyResults, Metric, MetricGroup, MetricGroupResults,
};
use crate::plan::PlannedRequest;
use crate::remote::FlagSnapshot;

#[cfg(feature = "http")]
mod config;
#[cfg(feature = "http")]
mod gate;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod retry;
mod token;

#[cfg(feature = "http")]
pub use config::{
    BASE_URL_ENV, BaseUrl, COMMERCIAL, ClientConfig, DEFAULT_API_VERSION, DEFAULT_API_VERSION_BETA,
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, EU, FEDERAL, RetryPolicy,
};
#[cfg(feature = "http")]
pub use gate::route_key;
#[cfg(feature = "http")]
pub use http::HttpClient;
pub use token::{AccessToken, REDACTED, TOKEN_ENV};

/// Reads. A 404 is `Ok(None)`: the caller decides what absence means.
pub trait Reader: Sync {
    /// Every experiment (active and archived) in one environment, all pages, fully expanded.
    fn list_experiments(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Option<Vec<Experiment>>, Error>> + Send;

    /// One experiment, fully expanded.
    fn get_experiment(
        &self,
        project: &str,
        environment: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Experiment>, Error>> + Send;

    /// One flag with every environment.
    fn get_flag(&self, project: &str, key: &str) -> impl Future<Output = Result<Option<FlagSnapshot>, Error>> + Send;

    /// Every metric of a project, all pages.
    fn list_metrics(&self, project: &str) -> impl Future<Output = Result<Option<Vec<Metric>>, Error>> + Send;

    /// Every metric group of a project, all pages.
    fn list_metric_groups(&self, project: &str)
    -> impl Future<Output = Result<Option<Vec<MetricGroup>>, Error>> + Send;

    /// The project's experimentation settings.
    fn get_settings(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Option<ExperimentationSettings>, Error>> + Send;

    /// Results of one metric of an experiment.
    fn experiment_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        metric: &str,
        iteration_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<ExperimentResults>, Error>> + Send;

    /// Results of one metric group of an experiment.
    fn metric_group_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        group: &str,
        iteration_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<MetricGroupResults>, Error>> + Send;

    /// Legacy results of one flag and metric.
    fn legacy_results(
        &self,
        project: &str,
        flag: &str,
        environment: &str,
        metric: &str,
    ) -> impl Future<Output = Result<Option<LegacyResults>, Error>> + Send;
}

/// Writes. Sends a planned request exactly as planned and returns the response body, if any.
///
/// A POST or a JSON-patch PATCH whose outcome is unknown (connection lost after sending, or a 5xx) is
/// returned as [`Error::OutcomeUnknown`], never retried here.
pub trait Writer: Sync {
    /// Sends `request`; `resource` names the object in errors.
    fn send(
        &self,
        request: &PlannedRequest,
        resource: &str,
    ) -> impl Future<Output = Result<Option<Value>, Error>> + Send;
}
