//! Results: deterministic synthetic numbers derived from the iteration (per metric, per metric group) or from
//! the flag's legacy experiment, and the legacy reset. Same state, same numbers.

use std::collections::BTreeMap;

use ldexp_core::api::{IterationRep, IterationStatus};
use serde_json::{Value, json};

use crate::experiments::{experiment_href, find, group_members};
use crate::ids::unit;
use crate::model::{Data, MetricDef, Project};
use crate::wire::{Fail, Outcome, Response, self_links};

/// Six decimals keep snapshots readable and stable across platforms' float formatting.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn pick_iteration<'a>(
    e: &'a ldexp_core::api::Experiment,
    query: &BTreeMap<String, String>,
) -> Outcome<&'a IterationRep> {
    let all = || {
        e.current_iteration
            .as_deref()
            .into_iter()
            .chain(e.previous_iterations.iter())
            .chain(e.draft_iteration.as_deref())
    };
    match query.get("iterationId") {
        Some(id) => all()
            .find(|i| i.id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| Fail::not_found(format!("Unknown iteration {id} of experiment {}", e.key))),
        None => e
            .current_iteration
            .as_deref()
            .or(e.draft_iteration.as_deref())
            .ok_or_else(|| Fail::not_found(format!("experiment {} has no iteration", e.key))),
    }
}

/// `ExperimentBayesianResultsRep` for one metric of one iteration.
fn bayesian(it: &IterationRep, m: &MetricDef, href: String, traffic: bool) -> Value {
    let iid = it.id.as_deref().unwrap_or_default();
    let started = it.status != IterationStatus::NotStarted;
    let lower_is_better = m.success_criteria.as_deref() == Some("LowerThanBaseline");
    let base = unit(&["base", iid, &m.key]);
    let rows: Vec<(String, String, bool, i64, f64, f64)> = it
        .treatments
        .iter()
        .map(|t| {
            let tid = t.id.clone().unwrap_or_default();
            let share = t.allocation_percent.value().unwrap_or(0.0) / 100.0;
            #[allow(clippy::cast_possible_truncation)]
            let units =
                if started { ((2_000.0 + unit(&["units", iid, &tid]) * 8_000.0) * share).round() as i64 } else { 0 };
            let lift = unit(&["lift", iid, &m.key, &tid]) - 0.5;
            let (mean, sd) = if m.is_numeric {
                let mean = (100.0 + base * 900.0) * (1.0 + lift * 0.2);
                (mean, mean * 0.4)
            } else {
                let p = ((0.05 + base * 0.3) * (1.0 + lift * 0.3)).clamp(0.0, 1.0);
                (p, (p * (1.0 - p)).sqrt())
            };
            (tid, t.name.clone(), t.baseline, units, mean, sd)
        })
        .collect();
    let baseline = rows.iter().find(|r| r.2).or(rows.first()).map(|r| (r.0.clone(), r.4));
    let weights: Vec<f64> = rows
        .iter()
        .map(|r| {
            let rel = baseline.as_ref().map_or(0.0, |b| if b.1 > 0.0 { r.4 / b.1 - 1.0 } else { 0.0 });
            (if lower_is_better { -rel } else { rel } * 20.0).exp()
        })
        .collect();
    let wsum: f64 = weights.iter().sum();
    let results: Vec<Value> = rows
        .iter()
        .zip(&weights)
        .map(|((tid, name, is_baseline, units, mean, sd), w)| {
            let mut v = json!({
                "treatmentId": tid,
                "treatmentName": name,
                "units": units,
                "model": if m.is_numeric { "bayesianNormal" } else { "bayesianBeta" },
            });
            if traffic {
                v["traffic"] = json!(units);
            }
            if *units > 0 {
                #[allow(clippy::cast_precision_loss)]
                let half = 1.96 * sd / (*units as f64).sqrt();
                v["mean"] = json!(r6(*mean));
                v["dataMean"] = json!(r6(*mean));
                v["dataStdDev"] = json!(r6(*sd));
                v["credibleInterval"] = json!({ "lower": r6(mean - half), "upper": r6(mean + half) });
                v["pBest"] = json!(r6(w / wsum));
                if let Some((bid, bmean)) = baseline.as_ref().filter(|_| !is_baseline)
                    && *bmean > 0.0
                {
                    v["relativeDifferences"] = json!([{
                        "fromTreatmentId": bid,
                        "lower": r6((mean - half) / bmean - 1.0),
                        "upper": r6((mean + half) / bmean - 1.0),
                    }]);
                }
            }
            v
        })
        .collect();
    let mut seen = json!({ "ever": started });
    if let Some(t) = it.started_at {
        seen["timestamp"] = json!(t.0);
    }
    json!({
        "_links": self_links(href),
        "metricSeen": seen,
        "probabilityOfMismatch": r6(unit(&["mismatch", iid]) * 0.05),
        "results": [{ "treatmentResults": results }],
        "treatmentResults": results,
    })
}

/// Whether `key` is measured by the iteration, directly or inside one of its groups.
fn measures(it: &IterationRep, key: &str) -> bool {
    it.metrics
        .iter()
        .any(|m| (m.key == key && m.is_group != Some(true)) || m.metrics.iter().flatten().any(|inner| inner.key == key))
}

/// `getExperimentResults`.
pub(crate) fn metric(
    project: &Project,
    env: &str,
    key: &str,
    metric: &str,
    query: &BTreeMap<String, String>,
) -> Outcome<Response> {
    let e = find(project, env, key)?;
    let it = pick_iteration(e, query)?;
    let m = project
        .metric(metric)
        .filter(|_| measures(it, metric))
        .ok_or_else(|| Fail::not_found(format!("metric {metric} is not measured by experiment {key}")))?;
    let traffic = query.get("expand").is_some_and(|x| x.split(',').any(|p| p.trim() == "traffic"));
    let href = format!("{}/metrics/{metric}/results", experiment_href(&project.key, env, key));
    Ok(Response::json(200, bayesian(it, m, href, traffic)))
}

/// `getExperimentResultsForMetricGroup`.
pub(crate) fn group(
    project: &Project,
    env: &str,
    key: &str,
    group: &str,
    query: &BTreeMap<String, String>,
) -> Outcome<Response> {
    let e = find(project, env, key)?;
    let it = pick_iteration(e, query)?;
    let g = project
        .group(group)
        .filter(|_| it.metrics.iter().any(|m| m.key == group && m.is_group == Some(true)))
        .ok_or_else(|| Fail::not_found(format!("metric group {group} is not measured by experiment {key}")))?;
    let base = experiment_href(&project.key, env, key);
    let metrics: Vec<Value> = group_members(project, g)
        .into_iter()
        .filter_map(|summary| {
            let def = project.metric(&summary.key)?;
            let href = format!("{base}/metrics/{}/results", def.key);
            Some(json!({ "metric": summary, "results": bayesian(it, def, href, false) }))
        })
        .collect();
    Ok(Response::json(
        200,
        json!({ "_links": self_links(format!("{base}/metric-groups/{group}/results")), "metrics": metrics }),
    ))
}

fn legacy_item<'a>(project: &'a Project, fk: &str, env: &str, mk: &str) -> Outcome<(&'a Value, &'a Value)> {
    let flag = project
        .flags
        .get(fk)
        .ok_or_else(|| Fail::not_found(format!("Unknown feature flag key {fk} in project {}", project.key)))?;
    if !project.environments.contains_key(env) {
        return Err(Fail::not_found(format!("Unknown environment key {env} in project {}", project.key)));
    }
    let item = flag
        .pointer("/experiments/items")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(|i| i.get("metricKey").and_then(Value::as_str) == Some(mk)))
        .ok_or_else(|| Fail::not_found(format!("flag {fk} has no legacy experiment on metric {mk}")))?;
    Ok((flag, item))
}

/// `getLegacyExperimentResults`: totals per variation; zero where the experiment is not recording.
pub(crate) fn legacy(project: &Project, fk: &str, env: &str, mk: &str) -> Outcome<Response> {
    let (flag, item) = legacy_item(project, fk, env, mk)?;
    let recording =
        item.get("environments").and_then(Value::as_array).is_some_and(|es| es.iter().any(|e| e.as_str() == Some(env)));
    let resets = project.legacy_resets.get(&format!("{fk}/{env}/{mk}")).copied().unwrap_or(0).to_string();
    let baseline_idx = flag.pointer("/experiments/baselineIdx").and_then(Value::as_u64).unwrap_or(0);
    let variations = flag.get("variations").and_then(Value::as_array).cloned().unwrap_or_default();
    let rows: Vec<(i64, f64)> = (0..variations.len())
        .map(|i| {
            let parts = ["legacy", &project.key, fk, env, mk, &resets, &i.to_string()];
            #[allow(clippy::cast_possible_truncation)]
            let impressions = if recording { (1_000.0 + unit(&parts) * 9_000.0).round() as i64 } else { 0 };
            let rate = 0.05 + unit(&[&parts[..], &["rate"]].concat()) * 0.25;
            (impressions, rate)
        })
        .collect();
    let base_rate = rows.get(usize::try_from(baseline_idx).unwrap_or(0)).map_or(0.0, |r| r.1);
    let totals: Vec<Value> = rows
        .iter()
        .map(|(imp, rate)| {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let conversions = (*imp as f64 * rate).round() as i64;
            #[allow(clippy::cast_precision_loss)]
            let half = if *imp > 0 { 1.96 * (rate * (1.0 - rate) / *imp as f64).sqrt() } else { 0.0 };
            json!({
                "cumulativeValue": conversions,
                "cumulativeCount": conversions,
                "cumulativeImpressionCount": imp,
                "cumulativeConversionRate": if *imp > 0 { r6(*rate) } else { 0.0 },
                "cumulativeConfidenceInterval": { "lower": r6(rate - half), "upper": r6(rate + half) },
                "pValue": r6(unit(&[fk, env, mk, "p"]) * 0.2),
                "improvement": if base_rate > 0.0 { r6(rate / base_rate - 1.0) } else { 0.0 },
                "minSampleSize": 1_000,
            })
        })
        .collect();
    let winner = rows.iter().enumerate().max_by(|a, b| a.1.1.total_cmp(&b.1.1)).map_or(0, |(i, _)| i);
    let metadata: Vec<Value> = variations
        .iter()
        .enumerate()
        .map(|(i, v)| json!({ "key": v.get("name").cloned().unwrap_or_else(|| json!(i)) }))
        .collect();
    Ok(Response::json(
        200,
        json!({
            "_links": self_links(format!("/api/v2/flags/{}/{fk}/experiments/{env}/{mk}", project.key)),
            "metadata": metadata,
            "totals": totals,
            "series": [],
            "stats": {
                "pValue": r6(unit(&[fk, env, mk, "p"]) * 0.2),
                "chi2": r6(unit(&[fk, env, mk, "chi2"]) * 10.0),
                "winningVariationIdx": winner,
                "minSampleSizeMet": recording,
            },
            "granularity": "hour",
            "metricSeen": { "ever": recording },
        }),
    ))
}

/// `resetExperiment`: the next legacy results start from fresh numbers. 204.
pub(crate) fn reset_legacy(data: &mut Data, pk: &str, fk: &str, env: &str, mk: &str) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    legacy_item(project, fk, env, mk)?;
    data.tick();
    if let Some(p) = data.projects.get_mut(pk) {
        *p.legacy_resets.entry(format!("{fk}/{env}/{mk}")).or_insert(0) += 1;
    }
    Ok(Response::empty(204))
}
