//! Access to LaunchDarkly: a small [`Transport`] (a planned request in, status and bytes out), and the reads and
//! the write every transport shares, as narrow traits by purpose. The reqwest transport sits behind `http`.
//!
//! Decoding, 404-as-`None`, error mapping and pagination are written once (modules `rest` and `pages`) and every
//! trait below is implemented there for any `Transport`: the REST client and the emulator's in-process client
//! implement only [`Transport::execute`].

use std::future::Future;

use serde_json::Value;

use crate::Error;
use crate::api::{
    Experiment, ExperimentResults, ExperimentationSettings, FeatureFlag, Holdout, Layer, LegacyResults, Metric,
    MetricGroup, MetricGroupResults,
};
use crate::plan::{Address, PlannedRequest};
use crate::remote::FlagSnapshot;
use crate::verify::Object;

#[cfg(feature = "http")]
mod config;
#[cfg(feature = "http")]
mod gate;
#[cfg(feature = "http")]
mod http;
mod pages;
mod rest;
#[cfg(feature = "http")]
mod retry;
mod token;

#[cfg(feature = "http")]
pub use config::{
    BASE_URL_ENV, BaseUrl, COMMERCIAL, ClientConfig, DEFAULT_API_VERSION, DEFAULT_API_VERSION_BETA,
    DEFAULT_BARE_RATE_LIMIT_WAIT, DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, EU, FEDERAL,
    RetryPolicy,
};
#[cfg(feature = "http")]
pub use gate::route_key;
#[cfg(feature = "http")]
pub use http::HttpClient;
pub(crate) use rest::decode;
pub use token::{AccessToken, REDACTED, TOKEN_ENV};

/// A final HTTP answer: whatever status arrived once the transport stopped retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends requests. An HTTP status is an [`Answer`]; a failure to get one is an error: [`Error::Transport`] and
/// [`Error::Timeout`] for requests known not to have taken effect, [`Error::OutcomeUnknown`] for a POST or a PATCH
/// that may have. The REST client also reports a 5xx to a POST or a PATCH as an unknown outcome, since the write
/// may have been committed; neither is retried by a transport: the applier re-reads the object instead.
pub trait Transport: Sync {
    /// Sends `request` exactly as planned; `resource` names the object in errors.
    fn execute(&self, request: &PlannedRequest, resource: &str) -> impl Future<Output = Result<Answer, Error>> + Send;

    /// GETs a collection's `_links.next` href. The default takes a path (with its query) on the same server and
    /// refuses anything else; a transport that knows its origin may accept absolute hrefs on it.
    fn follow(&self, href: &str, resource: &str) -> impl Future<Output = Result<Answer, Error>> + Send {
        async move {
            let request = pages::relative_link(href, resource)?;
            self.execute(&request, resource).await
        }
    }

    /// The token this transport sends, so that error text echoed back (by a proxy, say) can be scrubbed of it.
    fn token(&self) -> Option<&AccessToken> {
        None
    }

    /// How many answers so far carried each `X-Ratelimit-*` header; `None` for a transport that sees no headers.
    /// Only `ldexp conformance` asks (contract §9.12); the client's own pacing reads the headers as they come.
    fn rate_limit_seen(&self) -> Option<RateLimitSeen> {
        None
    }
}

/// Counts of answers carrying each rate-limit header, as [`Transport::rate_limit_seen`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSeen {
    /// Answers received, 429s included.
    pub answers: u64,
    /// Of those, the ones with `X-Ratelimit-Route-Remaining`.
    pub route: u64,
    /// With `X-Ratelimit-Global-Remaining`.
    pub global: u64,
    /// With `X-Ratelimit-Reset`.
    pub reset: u64,
}

/// The reads a plan needs ([`fetch_remote`](crate::fetch::fetch_remote)). A 404 is `Ok(None)`: the caller decides
/// what absence means.
pub trait PlanReads: Sync {
    /// Every experiment (active and archived) in one environment, all pages, fully expanded.
    fn list_experiments(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Option<Vec<Experiment>>, Error>> + Send;

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

    /// `getExperimentsAnyEnv`: experiments of every environment of a project, all pages, fully expanded; each
    /// carries its `environmentKey`.
    fn list_experiments_any_env(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Option<Vec<Experiment>>, Error>> + Send;

    /// One page of the flag list with `env`'s configuration ([`requests::list_flags_in_env`](crate::requests)).
    /// `None` when the project or the environment does not exist.
    fn flag_page(
        &self,
        project: &str,
        env: &str,
        offset: u64,
    ) -> impl Future<Output = Result<Option<FlagPage>, Error>> + Send;
}

/// The reads of layers and holdouts, for plans and exports. A 404 is `Ok(None)`.
pub trait OrgReads: Sync {
    /// `getLayers`: every layer of a project, with its reservations.
    fn list_layers(&self, project: &str) -> impl Future<Output = Result<Option<Vec<Layer>>, Error>> + Send;

    /// `getAllHoldouts`: every holdout of one environment, all pages (keys, names, statuses, experiments).
    fn list_holdouts(
        &self,
        project: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Option<Vec<Holdout>>, Error>> + Send;

    /// `getHoldout`: one holdout's detail (description, `holdoutAmount`, the experiments in it).
    fn get_holdout(
        &self,
        project: &str,
        environment: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Holdout>, Error>> + Send;
}

/// One page of whole flags, as the list answers them.
#[derive(Debug, Clone, Default)]
pub struct FlagPage {
    /// The flags' JSON, each with one environment.
    pub items: Vec<serde_json::Value>,
    /// `totalCount`, which sizes the list before it is read; never trusted to end it.
    pub total: Option<u64>,
    /// Whether `_links.next` is present.
    pub next: bool,
}

/// Which kind of token the client carries (`getCallerIdentity`).
pub trait IdentityReads: Sync {
    fn caller_identity(&self) -> impl Future<Output = Result<Option<crate::api::CallerIdentity>, Error>> + Send;
}

/// The read the applier makes after a lost response, to check a request's postconditions.
pub trait ObjectReads: Sync {
    /// A fresh read of the object `address` names: the experiment, or the flag of a legacy change (legacy results
    /// belong to their flag).
    fn reread(&self, address: &Address) -> impl Future<Output = Result<Object, Error>> + Send;
}

/// The reads of `ldexp results` ([`fetch_report`](crate::results::fetch_report)). A 404 is `Ok(None)`: the
/// results endpoints are deprecated upstream and may be gone.
pub trait ResultsReads: Sync {
    /// One experiment, fully expanded: which iteration and metrics have results.
    fn get_experiment(
        &self,
        project: &str,
        environment: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Experiment>, Error>> + Send;

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

/// The reads of `ldexp export` ([`export::fetch`](crate::export::fetch)) besides the plan reads.
pub trait ExportReads: Sync {
    /// `getFeatureFlags`: every (unarchived) flag of a project, without environments, one page after the other.
    ///
    /// Pages are read in order until one comes back short or without `_links.next`; the total is not trusted to
    /// stop early (contract §9.10: what it counts is undocumented). `None` when the project does not exist.
    fn list_flags(&self, project: &str) -> impl Future<Output = Result<Option<Vec<FeatureFlag>>, Error>> + Send;
}

/// The read of `ldexp list experiments` ([`views::list_experiments`](crate::views::list_experiments)): experiments
/// LaunchDarkly itself selects.
pub trait ListReads: Sync {
    /// `getExperiments` in `environment`, or `getExperimentsAnyEnv` when it is `None`, with `filter`'s `filter` and
    /// `lifecycleState` ([`requests::list_experiments_where`](crate::requests::list_experiments_where)); every
    /// page, with the draft and previous iterations expanded. `None` when the project or environment does not exist.
    fn list_experiments_where(
        &self,
        project: &str,
        environment: Option<&str>,
        filter: &crate::views::ExperimentFilter,
    ) -> impl Future<Output = Result<Option<Vec<Experiment>>, Error>> + Send;
}

/// Metrics and metric groups one at a time, by key. No command needs them (plans read the lists); the benchmark's
/// per-resource baseline and the contract check do.
pub trait CatalogReads: Sync {
    /// `getMetric`.
    fn get_metric(&self, project: &str, key: &str) -> impl Future<Output = Result<Option<Metric>, Error>> + Send;

    /// `getMetricGroup`.
    fn get_metric_group(
        &self,
        project: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<MetricGroup>, Error>> + Send;
}

/// Writes. Sends a planned request exactly as planned and returns the response body, if any; an answer outside
/// 2xx is an [`Error::Api`].
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
