//! `patchExperiment`: the six semantic-patch instructions, validated together and applied atomically, with the
//! flag changes starting and stopping make (`rollout.rs`).

use std::collections::BTreeSet;

use ldexp_core::api::{Experiment, ExperimentPatch, Instruction, IterationRep, IterationStatus, Millis};
use serde_json::Value;

use crate::deviation::Deviation;
use crate::experiments::{Expand, find, render};
use crate::model::{Data, Project};
use crate::rollout::{self, FlagEdits};
use crate::wire::{Fail, Outcome, Response};

/// Applies every instruction to a copy of the experiment; the copy replaces the original only if all succeed.
/// `differ` names the service rules broken on purpose (`--differ`).
pub(crate) fn patch(
    data: &mut Data,
    pk: &str,
    env: &str,
    key: &str,
    body: &Value,
    differ: &BTreeSet<Deviation>,
) -> Outcome<Response> {
    let project = data.projects.get(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    let original = find(project, env, key)?;
    let patch: ExperimentPatch =
        serde_json::from_value(body.clone()).map_err(|e| Fail::bad(format!("invalid semantic patch: {e}")))?;
    if patch.instructions.is_empty() {
        return Err(Fail::bad("a semantic patch needs at least one instruction"));
    }
    // Every instruction of one patch shares one instant: the patch is one change.
    let now = data.peek_tick();
    let mut next = original.clone();
    let mut edits = FlagEdits::new(project);
    for (i, ins) in patch.instructions.iter().enumerate() {
        apply(project, env, &mut next, &mut edits, ins, now, differ)
            .map_err(|f| Fail { message: format!("instruction {i} ({}): {}", kind(ins), f.message), ..f })?;
    }
    let flags = edits.into_changed();
    if &next == original {
        // Everything already held: nothing changes, not even the clock.
        return Ok(Response::json(200, render(project, original, Expand::ALL)));
    }
    data.tick();
    let project = data.projects.get_mut(pk).ok_or_else(|| Fail::not_found(format!("Unknown project key {pk}")))?;
    if let Some(slot) = project.experiments.get_mut(env).and_then(|m| m.get_mut(key)) {
        *slot = next.clone();
    }
    // Under `--differ flag-rewrite` the flags keep their targeting and version (contract §9.1); which rules the
    // running iterations hold is read from the experiments, so that bookkeeping stays.
    if !differ.contains(&Deviation::FlagRewrite) {
        project.flags.extend(flags);
    }
    Ok(Response::json(200, render(project, &next, Expand::ALL)))
}

fn kind(ins: &Instruction) -> &'static str {
    match ins {
        Instruction::UpdateName { .. } => "updateName",
        Instruction::UpdateDescription { .. } => "updateDescription",
        Instruction::StartIteration { .. } => "startIteration",
        Instruction::StopIteration { .. } => "stopIteration",
        Instruction::ArchiveExperiment => "archiveExperiment",
        Instruction::RestoreExperiment => "restoreExperiment",
    }
}

fn apply(
    project: &Project,
    env: &str,
    e: &mut Experiment,
    edits: &mut FlagEdits<'_>,
    ins: &Instruction,
    now: i64,
    differ: &BTreeSet<Deviation>,
) -> Outcome<()> {
    match ins {
        Instruction::UpdateName { value } => {
            if value.trim().is_empty() {
                return Err(Fail::bad("the name must not be empty"));
            }
            e.name = value.clone();
        }
        Instruction::UpdateDescription { value } => e.description = Some(value.clone()),
        Instruction::ArchiveExperiment => {
            if e.archived_date.is_none() {
                e.archived_date = Some(Millis(now));
            }
        }
        Instruction::RestoreExperiment => e.archived_date = None,
        Instruction::StartIteration { change_justification } => {
            start(project, env, e, edits, change_justification.as_deref(), now, differ)?;
        }
        Instruction::StopIteration { winning_treatment_id, winning_reason } => {
            stop(e, winning_treatment_id.as_deref(), winning_reason.as_deref(), now)?;
            if let (Some(it), Some(winner)) = (e.current_iteration.as_deref(), winning_treatment_id.as_deref()) {
                edits.serve(env, it, winner, None, now)?;
            }
        }
    }
    Ok(())
}

fn start(
    project: &Project,
    env: &str,
    e: &mut Experiment,
    edits: &mut FlagEdits<'_>,
    justification: Option<&str>,
    now: i64,
    differ: &BTreeSet<Deviation>,
) -> Outcome<()> {
    if e.archived_date.is_some() {
        return Err(Fail::bad("the experiment is archived; restore it before starting an iteration"));
    }
    let current_status = e.current_iteration.as_ref().map(|c| c.status);
    // A create may leave its iteration as a `not_started` current one (contract §9.9); with no newer draft, that
    // is the iteration to start.
    let from_current = e.draft_iteration.is_none() && current_status == Some(IterationStatus::NotStarted);
    let candidate: &IterationRep = match (e.draft_iteration.as_deref(), e.current_iteration.as_deref()) {
        (Some(draft), _) => draft,
        (None, Some(current)) if from_current => current,
        _ => return Err(Fail::bad("there is no draft iteration to start; create one with POST …/iterations")),
    };
    let unjustified = justification.is_none_or(|j| j.trim().is_empty());
    if unjustified && current_status == Some(IterationStatus::Running) {
        return Err(Fail::bad("changeJustification is required to start an iteration while another one is running"));
    }
    let ran_before = current_status == Some(IterationStatus::Stopped)
        || e.previous_iterations.iter().any(|p| p.status != IterationStatus::NotStarted);
    if unjustified && ran_before && !differ.contains(&Deviation::RestartJustification) {
        return Err(Fail::bad(
            "changeJustification is required to start an iteration of an experiment that has already run one",
        ));
    }
    for fk in candidate.flags.keys() {
        let flag = project.flags.get(fk).ok_or_else(|| Fail::bad(format!("flag `{fk}` does not exist")))?;
        if flag.get("archived").and_then(Value::as_bool) == Some(true) {
            return Err(Fail::bad(format!("flag `{fk}` is archived")));
        }
        let cfg = flag.pointer(&format!("/environments/{env}"));
        if cfg.and_then(|c| c.get("archived")).and_then(Value::as_bool) == Some(true) {
            return Err(Fail::bad(format!("flag `{fk}` is archived in environment `{env}`")));
        }
        if cfg.and_then(|c| c.get("on")).and_then(Value::as_bool) != Some(true) {
            return Err(Fail::bad(format!("flag `{fk}` must be on in environment `{env}` to start an iteration")));
        }
    }
    if candidate.randomization_unit.as_deref().is_none_or(str::is_empty) {
        return Err(Fail::bad("the draft iteration has no randomizationUnit"));
    }
    if !candidate.treatments.iter().any(|t| t.allocation_percent.value().is_some_and(|v| v > 0.0)) {
        return Err(Fail::bad("at least one treatment needs a non-zero allocationPercent"));
    }
    crate::layers::check_start(project, env, &e.key)?;
    if !differ.contains(&Deviation::HeldRule) {
        rollout::check_free(project, env, &e.key, candidate)?;
    }
    // A restart ends the running iteration with no winner: its rules fall back to the baseline's variation, unless
    // the new iteration takes them over.
    if let Some(running) = e.current_iteration.as_deref().filter(|c| c.status == IterationStatus::Running)
        && let Some(baseline) = running.treatments.iter().find(|t| t.baseline).and_then(|t| t.id.as_deref())
    {
        edits.serve(env, running, baseline, Some(candidate), now)?;
    }
    edits.start(env, candidate, now)?;
    let mut next = match e.draft_iteration.take() {
        Some(draft) => {
            match e.current_iteration.take() {
                Some(mut current) if current.status == IterationStatus::Running => {
                    current.status = IterationStatus::Stopped;
                    current.ended_at = Some(Millis(now));
                    e.previous_iterations.push(*current);
                }
                Some(current) if current.status == IterationStatus::Stopped => e.previous_iterations.push(*current),
                // A current iteration that never ran has no history to keep; the newer draft replaces it.
                _ => {}
            }
            draft
        }
        None => e.current_iteration.take().ok_or_else(|| Fail::bad("there is no draft iteration to start"))?,
    };
    next.status = IterationStatus::Running;
    next.started_at = Some(Millis(now));
    e.current_iteration = Some(next);
    Ok(())
}

fn stop(e: &mut Experiment, winner: Option<&str>, reason: Option<&str>, now: i64) -> Outcome<()> {
    let Some(current) = e.current_iteration.as_mut() else {
        return Err(Fail::bad("the experiment has no running iteration to stop"));
    };
    // `stopIteration` needs a running current iteration (docs/semantics.md); a stopped one is not "already
    // satisfied", since the winner it names may differ from the recorded one.
    if current.status != IterationStatus::Running {
        return Err(Fail::bad("the current iteration is not running"));
    }
    let Some(winner) = winner.filter(|w| !w.is_empty()) else {
        return Err(Fail::bad(
            "winningTreatmentId is required to stop an iteration (declare the baseline if inconclusive)",
        ));
    };
    if !current.treatments.iter().any(|t| t.id.as_deref() == Some(winner)) {
        return Err(Fail::bad(format!("winningTreatmentId `{winner}` is not a treatment of the running iteration")));
    }
    current.status = IterationStatus::Stopped;
    current.ended_at = Some(Millis(now));
    current.winning_treatment_id = Some(winner.to_owned());
    current.winning_reason = reason.map(str::to_owned);
    Ok(())
}
