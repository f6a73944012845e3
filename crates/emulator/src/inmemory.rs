//! [`InMemory`]: the `ldexp_core::client` traits served by [`State::handle`], with no HTTP in between.
//!
//! Requests are built with `ldexp_core::requests` and answers parsed with `ldexp_core::api`, exactly as the
//! REST client does, so planner and applier tests exercise the real wire shapes.

use std::sync::{Mutex, MutexGuard};

use ldexp_core::api::{
    Experiment, ExperimentCollection, ExperimentResults, ExperimentationSettings, LegacyResults, Metric,
    MetricCollection, MetricGroup, MetricGroupCollection, MetricGroupResults,
};
use ldexp_core::client::{Reader, Writer};
use ldexp_core::plan::PlannedRequest;
use ldexp_core::remote::FlagSnapshot;
use ldexp_core::{ApiError, Error, requests};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::State;
use crate::wire::Response;

/// An in-process LaunchDarkly. Every call locks the state, handles one request and releases it.
#[derive(Debug)]
pub struct InMemory {
    state: Mutex<State>,
}

impl InMemory {
    pub fn new(state: State) -> Self {
        InMemory { state: Mutex::new(state) }
    }

    /// A snapshot of the current state.
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    /// Runs `f` on the live state, e.g. to change LaunchDarkly behind the planner's back in a test.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written: handlers commit at the end.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn call(&self, r: &PlannedRequest) -> Response {
        self.lock().handle_planned(r)
    }

    /// One read: 404 is `None`, another error status is an [`Error::Api`].
    fn read<T: DeserializeOwned>(&self, r: &PlannedRequest, resource: &str) -> Result<Option<T>, Error> {
        let resp = self.call(r);
        if resp.status == 404 {
            return Ok(None);
        }
        let body = ok_body(resp, r, resource)?;
        serde_json::from_value(body.unwrap_or(Value::Null))
            .map(Some)
            .map_err(|e| Error::Decode { resource: resource.to_owned(), reason: e.to_string() })
    }

    /// Every page of a paginated list, following `_links.next`.
    fn pages<T: DeserializeOwned, I>(
        &self,
        resource: &str,
        page: impl Fn(u64) -> PlannedRequest,
        split: impl Fn(T) -> (Vec<I>, bool),
    ) -> Result<Option<Vec<I>>, Error> {
        let mut all = Vec::new();
        loop {
            let Some(p) = self.read::<T>(&page(all.len() as u64), resource)? else {
                return Ok(None);
            };
            let (items, more) = split(p);
            let empty = items.is_empty();
            all.extend(items);
            if !more || empty {
                return Ok(Some(all));
            }
        }
    }
}

fn ok_body(resp: Response, r: &PlannedRequest, resource: &str) -> Result<Option<Value>, Error> {
    if (200..300).contains(&resp.status) {
        return Ok(resp.body);
    }
    let field = |k: &str| resp.body.as_ref().and_then(|b| b.get(k)).and_then(Value::as_str).map(str::to_owned);
    Err(ApiError {
        resource: resource.to_owned(),
        method: r.method.as_str().to_owned(),
        path: r.path.clone(),
        status: resp.status,
        code: field("code"),
        message: field("message").unwrap_or_default(),
        request_id: field("id"),
    }
    .into())
}

impl Reader for InMemory {
    async fn list_experiments(&self, project: &str, environment: &str) -> Result<Option<Vec<Experiment>>, Error> {
        self.pages(
            &format!("experiments of {project}/{environment}"),
            |offset| requests::list_experiments(project, environment, offset),
            |c: ExperimentCollection| (c.items, c.links.contains_key("next")),
        )
    }

    async fn get_experiment(&self, project: &str, environment: &str, key: &str) -> Result<Option<Experiment>, Error> {
        self.read(
            &requests::get_experiment(project, environment, key),
            &format!("experiment {project}/{environment}/{key}"),
        )
    }

    async fn get_flag(&self, project: &str, key: &str) -> Result<Option<FlagSnapshot>, Error> {
        let raw: Option<Value> = self.read(&requests::get_flag(project, key), &format!("flag {project}/{key}"))?;
        raw.map(|v| {
            FlagSnapshot::from_json(v)
                .map_err(|e| Error::Decode { resource: format!("flag {project}/{key}"), reason: e.to_string() })
        })
        .transpose()
    }

    async fn list_metrics(&self, project: &str) -> Result<Option<Vec<Metric>>, Error> {
        self.pages(
            &format!("metrics of {project}"),
            |offset| requests::list_metrics(project, offset),
            |c: MetricCollection| (c.items, c.links.contains_key("next")),
        )
    }

    async fn list_metric_groups(&self, project: &str) -> Result<Option<Vec<MetricGroup>>, Error> {
        self.pages(
            &format!("metric groups of {project}"),
            |offset| requests::list_metric_groups(project, offset),
            |c: MetricGroupCollection| (c.items, c.links.contains_key("next")),
        )
    }

    async fn get_settings(&self, project: &str) -> Result<Option<ExperimentationSettings>, Error> {
        self.read(&requests::get_settings(project), &format!("experimentation settings of {project}"))
    }

    async fn experiment_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        metric: &str,
        iteration_id: Option<&str>,
    ) -> Result<Option<ExperimentResults>, Error> {
        self.read(
            &requests::experiment_results(project, environment, experiment, metric, iteration_id),
            &format!("results of {project}/{environment}/{experiment} for metric {metric}"),
        )
    }

    async fn metric_group_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        group: &str,
        iteration_id: Option<&str>,
    ) -> Result<Option<MetricGroupResults>, Error> {
        self.read(
            &requests::metric_group_results(project, environment, experiment, group, iteration_id),
            &format!("results of {project}/{environment}/{experiment} for metric group {group}"),
        )
    }

    async fn legacy_results(
        &self,
        project: &str,
        flag: &str,
        environment: &str,
        metric: &str,
    ) -> Result<Option<LegacyResults>, Error> {
        self.read(
            &requests::legacy_results(project, flag, environment, metric),
            &format!("legacy results of {project}/{flag} in {environment} for metric {metric}"),
        )
    }
}

impl Writer for InMemory {
    async fn send(&self, request: &PlannedRequest, resource: &str) -> Result<Option<Value>, Error> {
        let resp = self.call(request);
        ok_body(resp, request, resource)
    }
}
