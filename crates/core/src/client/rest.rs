//! The reads and the write, written once over any [`Transport`]: the request from [`crate::requests`], a 404 read
//! as `None`, bodies decoded, error answers mapped to [`ApiError`] with the token scrubbed, and lists paged by
//! [`super::pages`]. Every read trait and [`Writer`] is implemented here, for every transport.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::pages::{list_all, list_in_order};
use super::token::REDACTED;
use super::{CatalogReads, ExportReads, ListReads, ObjectReads, OrgReads, PlanReads, ResultsReads, Transport, Writer};
use crate::api::{
    ErrorBody, Experiment, ExperimentCollection, ExperimentResults, ExperimentationSettings, FeatureFlag,
    FeatureFlagCollection, Holdout, HoldoutCollection, Layer, LayerCollection, LegacyResults, Metric, MetricCollection,
    MetricGroup, MetricGroupCollection, MetricGroupResults,
};
use crate::plan::{Address, Method, PlannedRequest};
use crate::remote::FlagSnapshot;
use crate::verify::Object;
use crate::{ApiError, Error, requests};

/// One read: `None` on 404.
pub(crate) async fn read<T: Transport + ?Sized, D: DeserializeOwned>(
    t: &T,
    req: &PlannedRequest,
    resource: &str,
) -> Result<Option<D>, Error> {
    let answer = t.execute(req, resource).await?;
    decode(t, req.method, &req.path, resource, &answer)
}

/// The body of a read's answer: `None` on 404, an [`Error::Api`] on another status outside 2xx.
pub(crate) fn decode<T: Transport + ?Sized, D: DeserializeOwned>(
    t: &T,
    method: Method,
    path: &str,
    resource: &str,
    answer: &super::Answer,
) -> Result<Option<D>, Error> {
    match answer.status {
        404 => Ok(None),
        200..=299 => serde_json::from_slice(&answer.body)
            .map(Some)
            .map_err(|e| Error::Decode { resource: resource.to_owned(), reason: e.to_string() }),
        _ => Err(api_error(t, method, path, resource, answer)),
    }
}

/// The typed error of a non-2xx answer. The token is scrubbed from the message in case a proxy echoed it.
fn api_error<T: Transport + ?Sized>(
    t: &T,
    method: Method,
    path: &str,
    resource: &str,
    answer: &super::Answer,
) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
    let raw = || String::from_utf8_lossy(&answer.body).trim().chars().take(300).collect::<String>();
    let (code, message, request_id) = match parsed {
        // A JSON body without `message` (a proxy's problem document, say) is still worth showing.
        Some(b) if b.message.is_empty() => (b.code, raw(), b.id),
        Some(b) => (b.code, b.message, b.id),
        None => (None, raw(), None),
    };
    let token = t.token().map(super::AccessToken::expose).filter(|t| !t.is_empty());
    let scrub = |s: String| match token {
        Some(token) if s.contains(token) => s.replace(token, REDACTED),
        _ => s,
    };
    Error::from(ApiError {
        resource: resource.to_owned(),
        method: method.as_str().to_owned(),
        path: path.to_owned(),
        status: answer.status,
        code: code.map(scrub),
        message: scrub(message),
        request_id: request_id.map(scrub),
    })
}

async fn get_experiment<T: Transport + ?Sized>(
    t: &T,
    project: &str,
    environment: &str,
    key: &str,
) -> Result<Option<Experiment>, Error> {
    let resource = format!("experiment {project}/{environment}/{key}");
    read(t, &requests::get_experiment(project, environment, key), &resource).await
}

async fn get_flag<T: Transport + ?Sized>(t: &T, project: &str, key: &str) -> Result<Option<FlagSnapshot>, Error> {
    let resource = format!("flag {project}/{key}");
    let raw: Option<Value> = read(t, &requests::get_flag(project, key), &resource).await?;
    raw.map(|v| FlagSnapshot::from_json(v).map_err(|e| Error::Decode { resource, reason: e.to_string() })).transpose()
}

impl<T: Transport> PlanReads for T {
    async fn list_experiments(&self, project: &str, environment: &str) -> Result<Option<Vec<Experiment>>, Error> {
        let resource = format!("experiments of {project}/{environment}");
        list_all::<T, ExperimentCollection>(self, |o| requests::list_experiments(project, environment, o), &resource)
            .await
    }

    async fn get_flag(&self, project: &str, key: &str) -> Result<Option<FlagSnapshot>, Error> {
        get_flag(self, project, key).await
    }

    async fn list_metrics(&self, project: &str) -> Result<Option<Vec<Metric>>, Error> {
        let resource = format!("metrics of project {project}");
        list_all::<T, MetricCollection>(self, |o| requests::list_metrics(project, o), &resource).await
    }

    async fn list_metric_groups(&self, project: &str) -> Result<Option<Vec<MetricGroup>>, Error> {
        let resource = format!("metric groups of project {project}");
        list_all::<T, MetricGroupCollection>(self, |o| requests::list_metric_groups(project, o), &resource).await
    }

    async fn get_settings(&self, project: &str) -> Result<Option<ExperimentationSettings>, Error> {
        let resource = format!("experimentation settings of project {project}");
        read(self, &requests::get_settings(project), &resource).await
    }

    async fn list_experiments_any_env(&self, project: &str) -> Result<Option<Vec<Experiment>>, Error> {
        let resource = format!("experiments of project {project}");
        list_all::<T, ExperimentCollection>(self, |o| requests::list_experiments_any_env(project, o), &resource).await
    }

    async fn flag_page(&self, project: &str, env: &str, offset: u64) -> Result<Option<super::FlagPage>, Error> {
        let resource = format!("flags of {project}/{env}");
        let page: Option<RawFlagPage> =
            read(self, &requests::list_flags_in_env(project, env, offset), &resource).await?;
        Ok(page.map(|p| super::FlagPage {
            items: p.items,
            total: p.total_count,
            next: p.links.get("next").is_some_and(|n| n.get("href").is_some_and(Value::is_string)),
        }))
    }
}

impl<T: Transport> OrgReads for T {
    async fn list_layers(&self, project: &str) -> Result<Option<Vec<Layer>>, Error> {
        let resource = format!("layers of project {project}");
        let got: Option<LayerCollection> = read(self, &requests::list_layers(project), &resource).await?;
        Ok(got.map(|c| c.items))
    }

    async fn list_holdouts(&self, project: &str, environment: &str) -> Result<Option<Vec<Holdout>>, Error> {
        let resource = format!("holdouts of {project}/{environment}");
        list_all::<T, HoldoutCollection>(self, |o| requests::list_holdouts(project, environment, o), &resource).await
    }

    async fn get_holdout(&self, project: &str, environment: &str, key: &str) -> Result<Option<Holdout>, Error> {
        let resource = format!("holdout {project}/{environment}/{key}");
        read(self, &requests::get_holdout(project, environment, key), &resource).await
    }
}

/// A flag-list page kept as JSON: a plan keeps each flag's whole representation (see [`FlagSnapshot`]).
#[derive(serde::Deserialize)]
struct RawFlagPage {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(rename = "totalCount", default)]
    total_count: Option<u64>,
    #[serde(rename = "_links", default)]
    links: crate::api::Links,
}

impl<T: Transport> super::IdentityReads for T {
    async fn caller_identity(&self) -> Result<Option<crate::api::CallerIdentity>, Error> {
        read(self, &requests::caller_identity(), "caller identity").await
    }
}

impl<T: Transport> ObjectReads for T {
    async fn reread(&self, address: &Address) -> Result<Object, Error> {
        match address {
            Address::Experiment { project, environment, key } => {
                Ok(Object::Experiment(get_experiment(self, project, environment, key).await?.map(Box::new)))
            }
            Address::Legacy { project, flag } | Address::LegacyResults { project, flag, .. } => {
                Ok(Object::Flag(get_flag(self, project, flag).await?))
            }
            Address::Metric { project, key } => {
                let got: Option<Metric> =
                    read(self, &requests::get_metric(project, key), &format!("metric {project}/{key}")).await?;
                Ok(Object::Metric(got.map(Box::new)))
            }
            Address::MetricGroup { project, key } => {
                let resource = format!("metric group {project}/{key}");
                let got: Option<MetricGroup> = read(self, &requests::get_metric_group(project, key), &resource).await?;
                Ok(Object::MetricGroup(got.map(Box::new)))
            }
            Address::Layer { project, key } => {
                let layers = self.list_layers(project).await?.unwrap_or_default();
                Ok(Object::Layer(layers.into_iter().find(|l| l.key == *key).map(Box::new)))
            }
            Address::Holdout { project, environment, key } => {
                Ok(Object::Holdout(self.get_holdout(project, environment, key).await?.map(Box::new)))
            }
            Address::Settings { project } => {
                let resource = format!("experimentation settings of project {project}");
                let got: Option<ExperimentationSettings> =
                    read(self, &requests::get_settings(project), &resource).await?;
                Ok(Object::Settings(got.map(Box::new)))
            }
        }
    }
}

impl<T: Transport> ResultsReads for T {
    async fn get_experiment(&self, project: &str, environment: &str, key: &str) -> Result<Option<Experiment>, Error> {
        get_experiment(self, project, environment, key).await
    }

    async fn experiment_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        metric: &str,
        iteration_id: Option<&str>,
    ) -> Result<Option<ExperimentResults>, Error> {
        let resource = format!("results of experiment {project}/{environment}/{experiment} for metric {metric}");
        let req = requests::experiment_results(project, environment, experiment, metric, iteration_id);
        read(self, &req, &resource).await
    }

    async fn metric_group_results(
        &self,
        project: &str,
        environment: &str,
        experiment: &str,
        group: &str,
        iteration_id: Option<&str>,
    ) -> Result<Option<MetricGroupResults>, Error> {
        let resource = format!("results of experiment {project}/{environment}/{experiment} for metric group {group}");
        let req = requests::metric_group_results(project, environment, experiment, group, iteration_id);
        read(self, &req, &resource).await
    }

    async fn legacy_results(
        &self,
        project: &str,
        flag: &str,
        environment: &str,
        metric: &str,
    ) -> Result<Option<LegacyResults>, Error> {
        let resource = format!("legacy results of flag {project}/{flag} in {environment} for metric {metric}");
        read(self, &requests::legacy_results(project, flag, environment, metric), &resource).await
    }
}

impl<T: Transport> ExportReads for T {
    async fn list_flags(&self, project: &str) -> Result<Option<Vec<FeatureFlag>>, Error> {
        let resource = format!("flags of project {project}");
        let page = |o| requests::list_flags(project, o);
        list_in_order::<T, FeatureFlagCollection>(self, page, requests::FLAG_PAGE, &resource).await
    }
}

impl<T: Transport> ListReads for T {
    async fn list_experiments_where(
        &self,
        project: &str,
        environment: Option<&str>,
        filter: &crate::views::ExperimentFilter,
    ) -> Result<Option<Vec<Experiment>>, Error> {
        let resource = match environment {
            Some(env) => format!("experiments of {project}/{env}"),
            None => format!("experiments of project {project}"),
        };
        let page = |o| requests::list_experiments_where(project, environment, filter, o);
        list_all::<T, ExperimentCollection>(self, page, &resource).await
    }
}

impl<T: Transport> CatalogReads for T {
    async fn get_metric(&self, project: &str, key: &str) -> Result<Option<Metric>, Error> {
        read(self, &requests::get_metric(project, key), &format!("metric {project}/{key}")).await
    }

    async fn get_metric_group(&self, project: &str, key: &str) -> Result<Option<MetricGroup>, Error> {
        read(self, &requests::get_metric_group(project, key), &format!("metric group {project}/{key}")).await
    }
}

impl<T: Transport> Writer for T {
    async fn send(&self, request: &PlannedRequest, resource: &str) -> Result<Option<Value>, Error> {
        let answer = self.execute(request, resource).await?;
        if !(200..300).contains(&answer.status) {
            return Err(api_error(self, request.method, &request.path, resource, &answer));
        }
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&answer.body)
            .map(Some)
            .map_err(|e| Error::Decode { resource: resource.to_owned(), reason: e.to_string() })
    }
}
