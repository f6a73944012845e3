//! What `ldexp results` reads and sends: the report of an experiment's results (which metrics and metric groups of
//! its iteration to ask for, read together, as rows per treatment), and the reset of legacy results as a one-change
//! plan for the applier. Presenting them is the cli's.

use futures::future::try_join_all;
use serde::Serialize;

use crate::Error;
use crate::api::{ExperimentResults, IterationRep, TreatmentResult};
use crate::client::ResultsReads;
use crate::plan::{Action, Address, Change, Plan};
use crate::requests;

/// One treatment row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub treatment: String,
    pub mean: Option<f64>,
    pub credible_interval: Option<[f64; 2]>,
    pub p_best: Option<f64>,
    pub units: Option<i64>,
}

/// Results of one metric (or one metric inside a group).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResults {
    pub metric: String,
    /// `None` when LaunchDarkly has no results endpoint or no results for it (404).
    pub treatments: Option<Vec<Row>>,
}

/// The whole report for an experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub project: String,
    pub environment: String,
    pub experiment: String,
    pub iteration_id: Option<String>,
    pub metrics: Vec<MetricResults>,
}

/// The results of experiment `project/environment/key` for `metric`, or for every metric and metric group of its
/// iteration (the current one, else the draft), read at the same time (the transport bounds concurrency). A metric
/// without results (404) is reported as such; an experiment that does not exist, or a `metric` its iteration does
/// not measure, is an error.
pub async fn fetch_report<R: ResultsReads>(
    reader: &R,
    project: &str,
    environment: &str,
    key: &str,
    metric: Option<&str>,
) -> Result<Report, Error> {
    let not_found = |message: String| Error::NotFound { message };
    let Some(x) = reader.get_experiment(project, environment, key).await? else {
        return Err(not_found(format!("experiment {project}/{environment}/{key} does not exist")));
    };
    let iteration = x.current_iteration.as_deref().or(x.draft_iteration.as_deref());
    let iteration_id = iteration.and_then(|it| it.id.clone());
    let wanted: Vec<(String, bool)> = match (metric, iteration) {
        // Asking LaunchDarkly for a metric the iteration does not measure ends in a 404 that reads like the
        // deprecated endpoints are gone; say what is actually wrong.
        (Some(m), Some(it)) => match measured(it).into_iter().find(|(k, _)| k == m) {
            Some(found) => vec![found],
            None => {
                return Err(not_found(format!(
                    "metric `{m}` is not in experiment {project}/{environment}/{key}{}: it measures {}; pass one of \
                     them to --metric, or leave --metric out for all",
                    iteration_id.as_deref().map(|i| format!(" (iteration {i})")).unwrap_or_default(),
                    listing(&measured(it))
                )));
            }
        },
        (Some(m), None) => {
            return Err(not_found(format!(
                "experiment {project}/{environment}/{key} has no iteration, so it has no results for metric `{m}`"
            )));
        }
        (None, Some(it)) => it.metrics.iter().map(|m| (m.key.clone(), m.is_group.unwrap_or(false))).collect(),
        (None, None) => Vec::new(),
    };
    let id = iteration_id.as_deref();
    let per_metric = try_join_all(wanted.into_iter().map(|(metric, group)| async move {
        Ok::<_, Error>(if group {
            match reader.metric_group_results(project, environment, key, &metric, id).await? {
                Some(g) => g
                    .metrics
                    .iter()
                    .map(|m| MetricResults {
                        metric: format!("{metric} / {}", m.metric.key),
                        treatments: Some(rows(&m.results, iteration)),
                    })
                    .collect(),
                None => vec![MetricResults { metric, treatments: None }],
            }
        } else {
            let r = reader.experiment_results(project, environment, key, &metric, id).await?;
            vec![MetricResults { treatments: r.map(|r| rows(&r, iteration)), metric }]
        })
    }))
    .await?;
    Ok(Report {
        project: project.into(),
        environment: environment.into(),
        experiment: key.into(),
        iteration_id,
        metrics: per_metric.into_iter().flatten().collect(),
    })
}

/// Every metric and metric group the iteration measures, each once, primary first: `(key, is a group)`.
fn measured(it: &IterationRep) -> Vec<(String, bool)> {
    let single = it.primary_single_metric.iter().chain(&it.primary_metric).map(|m| (m, m.is_group == Some(true)));
    let listed = it.metrics.iter().chain(&it.secondary_metrics).map(|m| (m, m.is_group == Some(true)));
    let mut out: Vec<(String, bool)> = Vec::new();
    for (m, group) in single.chain(it.primary_funnel.iter().map(|m| (m, true))).chain(listed) {
        match out.iter_mut().find(|(k, _)| *k == m.key) {
            Some(known) => known.1 |= group,
            None => out.push((m.key.clone(), group)),
        }
    }
    out
}

/// `purchases, revenue and checkout-funnel (metric group)`.
fn listing(metrics: &[(String, bool)]) -> String {
    let names: Vec<String> =
        metrics.iter().map(|(k, group)| if *group { format!("{k} (metric group)") } else { k.clone() }).collect();
    match names.split_last() {
        None => "no metrics".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Treatment rows, named from the iteration's treatments when the result carries only an id.
pub fn rows(r: &ExperimentResults, iteration: Option<&IterationRep>) -> Vec<Row> {
    r.overall().iter().map(|t| row(t, iteration)).collect()
}

fn row(t: &TreatmentResult, iteration: Option<&IterationRep>) -> Row {
    let by_id = t.treatment_id.as_ref().and_then(|id| {
        iteration.and_then(|it| it.treatments.iter().find(|x| x.id.as_ref() == Some(id)).map(|x| x.name.clone()))
    });
    Row {
        treatment: t.treatment_name.clone().or(by_id).or_else(|| t.treatment_id.clone()).unwrap_or_else(|| "?".into()),
        mean: t.mean,
        credible_interval: t.credible_interval.as_ref().map(|c| [c.lower, c.upper]),
        p_best: t.p_best,
        units: t.units,
    }
}

/// The plan that resets the legacy results of `flag`'s `metric` in `environment`: one change, one DELETE. It has
/// no postcondition (a reset leaves nothing a read could tell apart), so the applier never resends it after an
/// unknown outcome. No specs are behind it, hence no specs digest.
pub fn reset_legacy_plan(project: &str, flag: &str, environment: &str, metric: &str) -> Plan {
    let change = Change {
        address: Address::LegacyResults {
            project: project.to_owned(),
            flag: flag.to_owned(),
            environment: environment.to_owned(),
            metric: metric.to_owned(),
        },
        action: Action::ResetResults,
        risks: Vec::new(),
        remote_fingerprint: None,
        before: None,
        after: None,
        fields: Vec::new(),
        requests: vec![requests::reset_legacy_results(project, flag, environment, metric)],
        notes: Vec::new(),
        flags: Vec::new(),
        depends_on: Vec::new(),
    };
    Plan::of(String::new(), vec![change])
}

/// Resets the legacy results of `flag`'s `metric` in `environment` through the applier, the only code that writes.
/// The DELETE is sent once: a single attempt keeps even a 409 from being sent again.
#[cfg(feature = "http")]
pub async fn reset_legacy<C: crate::client::ObjectReads + crate::client::Writer>(
    client: &C,
    project: &str,
    flag: &str,
    environment: &str,
    metric: &str,
) -> crate::apply::ApplyReport {
    let options = crate::apply::ApplyOptions { concurrency: 1, max_attempts: 1, ..Default::default() };
    crate::apply::apply(&reset_legacy_plan(project, flag, environment, metric), client, &options).await
}

#[cfg(test)]
mod tests;
