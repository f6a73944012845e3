//! What the service refuses in an iteration beyond its schema (contract §9.3, §9.4, §9.6): a stale
//! `flagConfigVersion`, a flag set that differs from the experiment's first iteration, and metrics that do not
//! list the iteration's randomization unit.

use std::collections::BTreeSet;

use ldexp_core::api::{Experiment, IterationRep};
use serde_json::Value;

use crate::deviation::Deviation;
use crate::model::Project;
use crate::wire::{Fail, Outcome};

/// Every refusal of this module for iteration `it` of a create (`exp` is `None`) or of `createIteration` on
/// `exp`, in the service's order: the 400s, then the 409. A rule in `differ` is not checked (`--differ`).
pub(crate) fn iteration(
    project: &Project,
    env: &str,
    exp: Option<&Experiment>,
    it: &IterationRep,
    differ: &BTreeSet<Deviation>,
) -> Outcome<()> {
    if !differ.contains(&Deviation::MetricUnit) {
        metrics_fit_unit(project, it)?;
    }
    if let Some(exp) = exp
        && !differ.contains(&Deviation::FixedFlags)
    {
        fixed_flags(exp, it)?;
    }
    if !differ.contains(&Deviation::StaleFlagVersion) {
        flag_versions(project, env, it)?;
    }
    Ok(())
}

/// 409 when a `flagConfigVersion` of `it` is not its flag's current `environments.<env>.version`. Whether
/// LaunchDarkly rejects a stale version is unconfirmed (§9.3, inferred); a planner that binds the version at send
/// time passes either way. Checked after every 400, since a 409 invites a re-read and a retry.
fn flag_versions(project: &Project, env: &str, it: &IterationRep) -> Outcome<()> {
    for (fk, rep) in &it.flags {
        let Some(flag) = project.flags.get(fk) else { continue };
        let current = flag.pointer(&format!("/environments/{env}/version")).and_then(Value::as_i64).unwrap_or(0);
        let sent = rep.flag_config_version.unwrap_or(0);
        if current != sent {
            return Err(Fail::conflict(format!(
                "flag `{fk}` is at version {current} in environment `{env}`, but the iteration was built from \
                 version {sent} (flagConfigVersion); read the flag again"
            )));
        }
    }
    Ok(())
}

fn keys(it: &IterationRep) -> BTreeSet<&str> {
    it.flags.keys().map(String::as_str).collect()
}

fn list(set: &BTreeSet<&str>) -> String {
    set.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// 400 when `it` names other flags than the experiment's first iteration: an experiment's flags are fixed.
fn fixed_flags(exp: &Experiment, it: &IterationRep) -> Outcome<()> {
    let first = exp.previous_iterations.first().or(exp.current_iteration.as_deref()).or(exp.draft_iteration.as_deref());
    let Some(first) = first else { return Ok(()) };
    let (was, now) = (keys(first), keys(it));
    if was != now {
        return Err(Fail::bad(format!(
            "the flags of experiment `{}` cannot change: its first iteration uses {} but this iteration uses {}; \
             create a new experiment instead",
            exp.key,
            list(&was),
            list(&now)
        )));
    }
    Ok(())
}

/// 400 when a metric of `it`, or a member of one of its metric groups, does not list the iteration's unit.
fn metrics_fit_unit(project: &Project, it: &IterationRep) -> Outcome<()> {
    let Some(unit) = it.randomization_unit.as_deref() else { return Ok(()) };
    let refuse = |metric: &str, group: Option<&str>, units: &[String]| {
        let within = group.map(|g| format!(" (in metric group `{g}`)")).unwrap_or_default();
        Fail::bad(format!(
            "metric `{metric}`{within} cannot be used with randomization unit `{unit}`: its randomizationUnits are \
             [{}]",
            units.join(", ")
        ))
    };
    for m in &it.metrics {
        if m.is_group == Some(true) {
            let Some(g) = project.group(&m.key) else { continue };
            for member in g.metrics.iter().filter_map(|k| project.metric(k)) {
                if !member.randomization_units.iter().any(|u| u == unit) {
                    return Err(refuse(&member.key, Some(&g.key), &member.randomization_units));
                }
            }
        } else if let Some(def) = project.metric(&m.key)
            && !def.randomization_units.iter().any(|u| u == unit)
        {
            return Err(refuse(&def.key, None, &def.randomization_units));
        }
    }
    Ok(())
}
