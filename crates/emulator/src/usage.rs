//! Who uses a metric or a metric group: experiments (every iteration of every environment, archived or not), legacy
//! flag experiments, metric groups and holdouts (ended or not). Deletes refuse while anything does, since the users would be left naming an
//! object that no longer exists.

use std::collections::BTreeSet;

use ldexp_core::api::{IterationRep, MetricSummary};
use serde_json::Value;

use crate::model::Project;

/// `experiment `K` (environment `E`)` for every experiment with an iteration for which `uses` holds.
fn experiments_where(project: &Project, uses: impl Fn(&IterationRep) -> bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (env, experiments) in &project.experiments {
        for exp in experiments.values() {
            let mut iterations = exp
                .current_iteration
                .iter()
                .chain(exp.draft_iteration.iter())
                .map(|b| &**b)
                .chain(exp.previous_iterations.iter());
            if iterations.any(&uses) {
                out.insert(format!("experiment `{}` (environment `{env}`)", exp.key));
            }
        }
    }
    out
}

/// `holdout `K` (environment `E`)` for every holdout that measures `key`. A holdout keeps metric keys without
/// saying which are groups, so a metric and a group that share a key both count as used (the stricter reading).
fn holdouts_measuring(project: &Project, key: &str) -> impl Iterator<Item = String> {
    project.holdouts.iter().flat_map(move |(env, holdouts)| {
        holdouts
            .values()
            .filter(move |h| h.primary_metric_key.as_deref() == Some(key) || h.metrics.iter().any(|m| m == key))
            .map(move |h| format!("holdout `{}` (environment `{env}`)", h.key))
    })
}

fn is(m: &MetricSummary, key: &str, group: bool) -> bool {
    m.key == key && (m.is_group == Some(true)) == group
}

/// What keeps metric `key` from being deleted, in a stable order; empty when nothing uses it.
pub(crate) fn metric_users(project: &Project, key: &str) -> Vec<String> {
    let in_iteration = |it: &IterationRep| {
        it.metrics.iter().any(|m| is(m, key, false))
            || it.secondary_metrics.iter().any(|m| m.key == key)
            || it.primary_single_metric.as_ref().is_some_and(|m| m.key == key)
            || it.primary_metric.as_ref().is_some_and(|m| is(m, key, false))
    };
    let mut users: Vec<String> = experiments_where(project, in_iteration).into_iter().collect();
    for (fk, flag) in &project.flags {
        let items = flag.pointer("/experiments/items").and_then(Value::as_array);
        if items.into_iter().flatten().any(|i| i.get("metricKey").and_then(Value::as_str) == Some(key)) {
            users.push(format!("the legacy experiments of flag `{fk}`"));
        }
    }
    for g in project.metric_groups.iter().filter(|g| g.metrics.iter().any(|m| m == key)) {
        users.push(format!("metric group `{}`", g.key));
    }
    users.extend(holdouts_measuring(project, key));
    users
}

/// What keeps metric group `key` from being deleted: experiments that measure it or use it as their primary funnel.
pub(crate) fn group_users(project: &Project, key: &str) -> Vec<String> {
    let in_iteration = |it: &IterationRep| {
        it.metrics.iter().any(|m| is(m, key, true))
            || it.primary_funnel.as_ref().is_some_and(|m| m.key == key)
            || it.primary_metric.as_ref().is_some_and(|m| is(m, key, true))
    };
    let mut users: Vec<String> = experiments_where(project, in_iteration).into_iter().collect();
    users.extend(holdouts_measuring(project, key));
    users
}
