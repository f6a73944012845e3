//! The read views, `ldexp list experiments` and `ldexp show`: what they ask LaunchDarkly for and the plain data the
//! cli renders. A list is filtered by LaunchDarkly itself, with the experiment lists' own `filter` and
//! `lifecycleState` (contract §2); `show` (module `show`) reads one object and describes it with export's writers.

mod show;

pub use show::{ExperimentStatus, IterationView, SHOWABLE_FORMS, Shown, TreatmentView, show};

use futures::future::try_join_all;
use serde::Serialize;

use crate::Error;
use crate::api::{Experiment, IterationStatus, Millis};
use crate::client::ListReads;

/// Which experiments a list asks for. Every field narrows the list, and each is sent to LaunchDarkly: the contract
/// documents `filter` terms for exactly these three fields (`status`, `flagKey`, `metricKey`), and `lifecycleState`
/// for archived experiments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentFilter {
    /// Experiments whose current iteration has this status (one never started counts as `not_started`).
    pub status: Option<IterationStatus>,
    /// Experiments that use this flag.
    pub flag: Option<String>,
    /// Experiments that measure this metric.
    pub metric: Option<String>,
    /// The archived experiments instead of the active ones.
    pub archived: bool,
}

impl ExperimentFilter {
    /// The `filter` query parameter, `status:running,flagKey:F,metricKey:M`; `None` when nothing is filtered.
    pub fn filter_param(&self) -> Option<String> {
        let mut terms = Vec::new();
        if let Some(s) = self.status {
            terms.push(format!("status:{}", status_str(s)));
        }
        if let Some(f) = &self.flag {
            terms.push(format!("flagKey:{f}"));
        }
        if let Some(m) = &self.metric {
            terms.push(format!("metricKey:{m}"));
        }
        Some(terms.join(",")).filter(|t| !t.is_empty())
    }

    /// The `lifecycleState` query parameter.
    pub fn lifecycle_state(&self) -> &'static str {
        if self.archived { "archived" } else { "active" }
    }

    /// The filter in words, for a message about an empty list: `archived, with status running, using flag F`.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.archived { "archived" } else { "active" }.to_owned()];
        if let Some(s) = self.status {
            parts.push(format!("with status {}", status_str(s)));
        }
        if let Some(f) = &self.flag {
            parts.push(format!("using flag {f}"));
        }
        if let Some(m) = &self.metric {
            parts.push(format!("measuring metric {m}"));
        }
        parts.join(", ")
    }

    /// A key the `filter` syntax cannot carry: a comma would start another term, and an empty key matches nothing
    /// LaunchDarkly can hold.
    fn check(&self) -> Result<(), Error> {
        for (what, key) in [("flag", &self.flag), ("metric", &self.metric)] {
            if let Some(k) = key.as_deref().filter(|k| k.trim().is_empty() || k.contains(',')) {
                return Err(Error::config(
                    format!("{what} key `{k}` cannot be sent in an experiment list's filter"),
                    Some("LaunchDarkly keys are letters, digits, `.`, `_` and `-`; name one key".to_owned()),
                ));
            }
        }
        Ok(())
    }
}

/// `running`, `stopped` or `not_started`, as the API and its `status` filter write them.
pub fn status_str(s: IterationStatus) -> &'static str {
    match s {
        IterationStatus::NotStarted => "not_started",
        IterationStatus::Running => "running",
        IterationStatus::Stopped => "stopped",
    }
}

/// The experiments of `project` that `filter` selects, sorted by environment, then key. With no environment, one
/// `getExperimentsAnyEnv` listing; with one or more, one `getExperiments` listing each, read at once (the any-env
/// listing has no environment filter in the contract). A project or environment that does not exist is an
/// [`Error::NotFound`].
pub async fn list_experiments<R: ListReads>(
    reader: &R,
    project: &str,
    environments: &[String],
    filter: &ExperimentFilter,
) -> Result<Vec<Experiment>, Error> {
    filter.check()?;
    let mut all = if environments.is_empty() {
        reader
            .list_experiments_where(project, None, filter)
            .await?
            .ok_or_else(|| Error::NotFound { message: format!("project {project} does not exist") })?
    } else {
        let mut envs: Vec<&String> = environments.iter().collect();
        envs.sort();
        envs.dedup();
        let lists =
            try_join_all(envs.iter().map(|env| reader.list_experiments_where(project, Some(env), filter))).await?;
        let mut all = Vec::new();
        for (env, list) in envs.iter().zip(lists) {
            all.extend(list.ok_or_else(|| Error::NotFound {
                message: format!("environment {project}/{env} does not exist (or project {project} does not)"),
            })?);
        }
        all
    };
    all.sort_by(|a, b| (&a.environment_key, &a.key).cmp(&(&b.environment_key, &b.key)));
    Ok(all)
}

/// One line of `ldexp list experiments`, and its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentRow {
    pub key: String,
    pub environment: String,
    pub name: String,
    /// The current iteration's status; `not_started` for an experiment never started.
    pub status: IterationStatus,
    pub archived: bool,
    /// The flags of the current iteration (of the draft for an experiment never started), in key order.
    pub flags: Vec<String>,
    /// When the current iteration started, as a UTC date-time; `None` when it has not.
    pub started_at: Option<String>,
    /// How many iterations the experiment has: the previous ones, the current one, and a draft waiting to start.
    pub iterations: usize,
}

impl ExperimentRow {
    /// The row of `e`, as listed (with `draftIteration` and `previousIterations` expanded).
    pub fn of(e: &Experiment) -> Self {
        let current = e.current_iteration.as_deref();
        let shown = current.or(e.draft_iteration.as_deref());
        ExperimentRow {
            key: e.key.clone(),
            environment: e.environment_key.clone(),
            name: e.name.clone(),
            status: current.map_or(IterationStatus::NotStarted, |c| c.status),
            archived: e.is_archived(),
            flags: shown.map(|i| i.flags.keys().cloned().collect()).unwrap_or_default(),
            started_at: current.and_then(|c| c.started_at).map(utc),
            iterations: iteration_count(e),
        }
    }
}

/// The previous iterations, the current one, and a draft that is not the current one.
pub(crate) fn iteration_count(e: &Experiment) -> usize {
    let current = e.current_iteration.as_deref();
    let separate_draft = e.draft_iteration.as_deref().is_some_and(|d| current.is_none_or(|c| c.id != d.id));
    e.previous_iterations.len() + usize::from(current.is_some()) + usize::from(separate_draft)
}

/// Epoch milliseconds as an RFC 3339 UTC date-time to the second, `2024-05-01T09:30:00Z`.
pub fn utc(m: Millis) -> String {
    let secs = m.0.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests;
