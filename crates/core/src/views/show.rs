//! `ldexp show ADDRESS`: one object's remote state, as the spec document export would write for it, and for an
//! experiment its status (which iteration, since when, the treatments and their allocation), which no spec holds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{iteration_count, utc};
use crate::Error;
use crate::api::{Experiment, FeatureFlag, IterationRep, IterationStatus};
use crate::client::{CatalogReads, OrgReads, PlanReads, ResultsReads};
use crate::export::{
    export_experiment, export_group, export_holdout, export_layer, export_legacy, export_metric, export_settings, place,
};
use crate::plan::Address;
use crate::spec::SpecDocument;

/// What `show` found at an address.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The spec that describes the object: planning it against the same remote is empty.
    pub document: SpecDocument,
    /// For an experiment, its status; `None` for the kinds that have none.
    pub status: Option<ExperimentStatus>,
    /// What the document cannot say about the object (export's warnings), and flags of the experiment that are gone.
    pub warnings: Vec<String>,
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// When it was archived, as a UTC date-time.
    pub archived_at: Option<String>,
    /// How many iterations it has, a draft waiting to start included.
    pub iterations: usize,
    /// The current iteration, or the draft of an experiment never started.
    pub iteration: Option<IterationView>,
    /// A draft waits to be started behind a current iteration that has started: the spec above describes the
    /// current one, not the draft.
    pub draft_pending: bool,
}

/// One iteration, as `show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IterationView {
    /// LaunchDarkly's `_id`.
    pub id: Option<String>,
    /// 1 for the first iteration.
    pub number: usize,
    pub status: IterationStatus,
    /// Since when it has this status: when it started (running), ended (stopped), or was created (not started).
    pub since: Option<String>,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub treatments: Vec<TreatmentView>,
}

/// A treatment and its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreatmentView {
    pub name: String,
    /// As LaunchDarkly writes it, a number of percent (`"50"`).
    pub allocation_percent: String,
    pub baseline: bool,
    /// The declared winner of a stopped iteration.
    pub winner: bool,
}

/// Reads the object `address` names and the flags it needs, and describes it. `Ok(None)` when LaunchDarkly has no
/// such object (for `legacy/…`: no such flag, or a flag without legacy experiments). An address of a kind that is
/// no spec of its own (`legacy-results/…`) is an [`Error::Config`].
pub async fn show<R: PlanReads + ResultsReads + CatalogReads + OrgReads>(
    reader: &R,
    address: &Address,
) -> Result<Option<Shown>, Error> {
    let mut warnings = Vec::new();
    let document = match address {
        Address::Experiment { project, environment, key } => {
            let Some(exp) = reader.get_experiment(project, environment, key).await? else { return Ok(None) };
            let flags = flags_of(reader, project, environment, &exp, &mut warnings).await?;
            let mut spec = export_experiment(&exp, &flags, project)?;
            // Its place in a layer and a holdout, as export writes it, so that the document still plans empty.
            let layers = reader.list_layers(project).await?.unwrap_or_default();
            let holdouts = match exp.holdout_id {
                Some(_) => reader.list_holdouts(project, environment).await?.unwrap_or_default(),
                None => Vec::new(),
            };
            place(&mut spec, &layers, &holdouts)?;
            return Ok(Some(Shown { document: SpecDocument::Experiment(spec), status: Some(status(&exp)), warnings }));
        }
        Address::Layer { project, key } => {
            let layers = reader.list_layers(project).await?.unwrap_or_default();
            match layers.iter().find(|l| l.key == *key) {
                Some(l) => SpecDocument::Layer(export_layer(l, project)),
                None => return Ok(None),
            }
        }
        Address::Holdout { project, environment, key } => {
            // The list names it; only the detail shows its amount: export reads both, and so does show.
            let listed = reader.list_holdouts(project, environment).await?.unwrap_or_default();
            let Some(item) = listed.into_iter().find(|h| h.key() == key) else { return Ok(None) };
            let holdout = match reader.get_holdout(project, environment, key).await? {
                Some(detail) => item.merged(detail),
                None => return Ok(None),
            };
            SpecDocument::Holdout(export_holdout(&holdout, project, environment)?)
        }
        Address::Metric { project, key } => match reader.get_metric(project, key).await? {
            Some(m) => SpecDocument::Metric(export_metric(&m, project, &mut warnings)?),
            None => return Ok(None),
        },
        Address::MetricGroup { project, key } => match reader.get_metric_group(project, key).await? {
            Some(g) => SpecDocument::MetricGroup(export_group(&g, project, &mut warnings)?),
            None => return Ok(None),
        },
        Address::Settings { project } => match reader.get_settings(project).await? {
            Some(s) => SpecDocument::ExperimentationSettings(export_settings(&s, project)?),
            None => return Ok(None),
        },
        Address::Legacy { project, flag } => {
            match reader.get_flag(project, flag).await?.and_then(|f| export_legacy(&f.flag, project)) {
                Some(spec) => SpecDocument::LegacyFlagExperiments(spec),
                None => return Ok(None),
            }
        }
        // Any kind without a spec document of its own, today legacy results.
        other => {
            return Err(Error::config(
                format!("{other} cannot be shown: it is no spec document of its own"),
                Some(format!("show reads {SHOWABLE_FORMS}")),
            ));
        }
    };
    Ok(Some(Shown { document, status: None, warnings }))
}

/// The forms of address `show` reads.
pub const SHOWABLE_FORMS: &str = "experiment/<project>/<environment>/<key>, metric/<project>/<key>, \
                                         metric-group/<project>/<key>, experimentation-settings/<project>, \
                                         legacy/<project>/<flag>, layer/<project>/<key>, \
                                         holdout/<project>/<environment>/<key>";

/// The flags of `exp`'s current and draft iterations, read as a plan reads them; a flag that is gone is a warning
/// (the document then fails to describe the iteration that uses it, naming it).
async fn flags_of<R: PlanReads>(
    reader: &R,
    project: &str,
    env: &str,
    exp: &Experiment,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, FeatureFlag>, Error> {
    let mut keys: Vec<&str> = exp
        .current_iteration
        .iter()
        .chain(exp.draft_iteration.iter())
        .flat_map(|it| it.flags.keys().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let read = crate::fetch::read_flags(reader, project, &keys, &[env]).await?;
    let mut flags = BTreeMap::new();
    for (key, flag) in read.flags {
        match flag {
            Some(f) => {
                flags.insert(key, f.flag);
            }
            None => warnings.push(format!("flag {project}/{key} of the experiment does not exist")),
        }
    }
    Ok(flags)
}

/// The status of `exp`: its current iteration, else its draft.
pub(crate) fn status(exp: &Experiment) -> ExperimentStatus {
    let previous = exp.previous_iterations.len();
    let current = exp.current_iteration.as_deref();
    let iteration = current.or(exp.draft_iteration.as_deref()).map(|it| view(it, previous + 1));
    let draft_pending = current.is_some_and(|c| c.status != IterationStatus::NotStarted)
        && exp.draft_iteration.as_deref().is_some_and(|d| current.is_none_or(|c| c.id != d.id));
    ExperimentStatus {
        archived_at: exp.archived_date.map(utc),
        iterations: iteration_count(exp),
        iteration,
        draft_pending,
    }
}

fn view(it: &IterationRep, number: usize) -> IterationView {
    // LaunchDarkly always dates an iteration's creation; a zero is a field that was absent.
    let created_at = Some(it.created_at).filter(|c| c.0 != 0).map(utc);
    let started_at = it.started_at.map(utc);
    let ended_at = it.ended_at.map(utc);
    let since = match it.status {
        IterationStatus::Running => started_at.clone(),
        IterationStatus::Stopped => ended_at.clone().or_else(|| started_at.clone()),
        IterationStatus::NotStarted => created_at.clone(),
    };
    let stopped = it.status == IterationStatus::Stopped;
    IterationView {
        id: it.id.clone(),
        number,
        status: it.status,
        since,
        created_at,
        started_at,
        ended_at,
        treatments: it
            .treatments
            .iter()
            .map(|t| TreatmentView {
                name: t.name.clone(),
                allocation_percent: t.allocation_percent.to_string(),
                baseline: t.baseline,
                winner: stopped && t.id.is_some() && t.id == it.winning_treatment_id,
            })
            .collect(),
    }
}
