//! How experiments change and hold their flags (contract §9.1, §9.2): starting an iteration turns the rule (or
//! fallthrough) it uses into an experiment rollout, stopping it makes that rule serve the winner, and while it runs
//! no other iteration may start on that rule and no flag patch may change it.

use std::collections::BTreeMap;

use ldexp_core::api::{IterationRep, IterationStatus};
use serde_json::{Map, Value, json};

use crate::model::Project;
use crate::wire::{Fail, Outcome};

/// Rollout weights are in thousandths of a percent.
const ALL_TRAFFIC: i64 = 100_000;

/// The `ruleId` of the default rule.
const FALLTHROUGH: &str = "fallthrough";

/// One flag rule a running iteration holds.
struct Hold<'a> {
    experiment: &'a str,
    flag: &'a str,
    rule: &'a str,
}

fn rule_of(rep: &ldexp_core::api::FlagRep) -> &str {
    rep.targeting_rule.as_deref().unwrap_or(FALLTHROUGH)
}

/// The rules running iterations in `env` hold, whether they came from the API or the seed.
fn holds<'a>(project: &'a Project, env: &str) -> impl Iterator<Item = Hold<'a>> {
    project.experiments.get(env).into_iter().flat_map(|m| m.values()).flat_map(|e| {
        e.current_iteration
            .as_deref()
            .filter(|it| it.status == IterationStatus::Running)
            .into_iter()
            .flat_map(|it| it.flags.iter())
            .map(|(fk, rep)| Hold { experiment: e.key.as_str(), flag: fk.as_str(), rule: rule_of(rep) })
    })
}

fn describe(rule: &str) -> String {
    if rule == FALLTHROUGH { "the fallthrough".to_owned() } else { format!("rule `{rule}`") }
}

/// 409 when another experiment's running iteration in `env` holds a rule that `it` would start on.
pub(crate) fn check_free(project: &Project, env: &str, key: &str, it: &IterationRep) -> Outcome<()> {
    for (fk, rep) in &it.flags {
        let rule = rule_of(rep);
        if let Some(h) = holds(project, env).find(|h| h.experiment != key && h.flag == fk && h.rule == rule) {
            return Err(Fail::conflict(format!(
                "flag `{fk}` {} in environment `{env}` is already used by running experiment `{}`; stop that \
                 experiment before starting another one on the same rule",
                describe(rule),
                h.experiment
            )));
        }
    }
    Ok(())
}

/// 409 when a flag patch changes or removes a rule (or the fallthrough) that a running iteration holds.
pub(crate) fn check_patch(project: &Project, fk: &str, before: &Value, after: &Value) -> Outcome<()> {
    for env in project.experiments.keys() {
        for h in holds(project, env).filter(|h| h.flag == fk) {
            let (was, now) = (target(before, env, h.rule), target(after, env, h.rule));
            let verb = match now {
                None => "removes",
                Some(n) if Some(n) != was => "changes",
                Some(_) => continue,
            };
            return Err(Fail::conflict(format!(
                "the patch {verb} {} of flag `{fk}` in environment `{env}`, which running experiment `{}` uses; stop \
                 the experiment first",
                describe(h.rule),
                h.experiment
            )));
        }
    }
    Ok(())
}

/// The rule object with this `_id`, or the fallthrough object.
fn target<'a>(flag: &'a Value, env: &str, rule: &str) -> Option<&'a Value> {
    let cfg = flag.get("environments")?.get(env)?;
    if rule == FALLTHROUGH {
        return cfg.get(FALLTHROUGH);
    }
    cfg.get("rules")?.as_array()?.iter().find(|r| r.get("_id").and_then(Value::as_str) == Some(rule))
}

fn target_mut<'a>(flag: &'a mut Value, env: &str, rule: &str) -> Option<&'a mut Map<String, Value>> {
    let cfg = flag.get_mut("environments")?.get_mut(env)?;
    if rule == FALLTHROUGH {
        return cfg.get_mut(FALLTHROUGH)?.as_object_mut();
    }
    cfg.get_mut("rules")?
        .as_array_mut()?
        .iter_mut()
        .find(|r| r.get("_id").and_then(Value::as_str) == Some(rule))?
        .as_object_mut()
}

fn variation_index(flag: &Value, id: &str) -> Option<usize> {
    flag.get("variations")?.as_array()?.iter().position(|v| v.get("_id").and_then(Value::as_str) == Some(id))
}

/// Bumps what a targeting change bumps: the environment's `version` and `lastModified`, and the flag's `_version`.
fn bump(flag: &mut Value, env: &str, now: i64) {
    if let Some(cfg) = flag.get_mut("environments").and_then(|e| e.get_mut(env)) {
        cfg["version"] = json!(cfg["version"].as_i64().unwrap_or(0) + 1);
        cfg["lastModified"] = json!(now);
    }
    flag["_version"] = json!(flag["_version"].as_i64().unwrap_or(0) + 1);
}

/// Flags a semantic patch changes, copied from the project on first write, so a failed patch leaves no trace
/// and an untouched flag is never cloned.
pub(crate) struct FlagEdits<'a> {
    project: &'a Project,
    changed: BTreeMap<String, Value>,
}

impl<'a> FlagEdits<'a> {
    pub(crate) fn new(project: &'a Project) -> Self {
        FlagEdits { project, changed: BTreeMap::new() }
    }

    /// The flags that changed, to store once the whole patch succeeded.
    pub(crate) fn into_changed(self) -> BTreeMap<String, Value> {
        self.changed
    }

    fn get_mut(&mut self, fk: &str) -> Outcome<&mut Value> {
        if !self.changed.contains_key(fk) {
            let flag = self.project.flags.get(fk).ok_or_else(|| Fail::bad(format!("flag `{fk}` does not exist")))?;
            self.changed.insert(fk.to_owned(), flag.clone());
        }
        self.changed.get_mut(fk).ok_or_else(|| Fail::bad(format!("flag `{fk}` does not exist")))
    }

    /// Turns each rule `it` uses into its experiment rollout: one weighted variation per treatment
    /// (`allocationPercent` × 1000), the rest of the traffic `_untracked` on the not-in-experiment variation.
    pub(crate) fn start(&mut self, env: &str, it: &IterationRep, now: i64) -> Outcome<()> {
        for (fk, rep) in &it.flags {
            let flag = self.get_mut(fk)?;
            let index = |id: &str| {
                variation_index(flag, id)
                    .ok_or_else(|| Fail::bad(format!("variation `{id}` is no longer a variation of flag `{fk}`")))
            };
            let mut weighted = Vec::new();
            let mut used = 0;
            let mut baseline = None;
            for t in &it.treatments {
                let id = variation_for(t, fk)?;
                let idx = index(id)?;
                if t.baseline {
                    baseline = Some(id);
                }
                let weight = t.allocation_percent.value().map_or(0, |p| (p * 1000.0).round() as i64);
                used += weight;
                weighted.push(json!({ "variation": idx, "weight": weight }));
            }
            let outside_id = rep.not_in_experiment_variation_id.as_deref().or(baseline).ok_or_else(|| {
                Fail::bad(format!("flag `{fk}`: no notInExperimentVariationId and no baseline treatment"))
            })?;
            let outside = index(outside_id)?;
            if used < ALL_TRAFFIC {
                weighted.push(json!({ "variation": outside, "weight": ALL_TRAFFIC - used, "_untracked": true }));
            }
            let mut rollout = json!({
                "variations": weighted,
                "experimentAllocation": {
                    "defaultVariation": outside,
                    "canReshuffle": it.can_reshuffle_traffic.unwrap_or(true),
                },
            });
            if let Some(unit) = &it.randomization_unit {
                rollout["contextKind"] = json!(unit);
            }
            let rule = rule_of(rep);
            let slot = target_mut(flag, env, rule).ok_or_else(|| {
                Fail::bad(format!("{} is no longer a rule of flag `{fk}` in environment `{env}`", describe(rule)))
            })?;
            slot.remove("variation");
            slot.insert("rollout".into(), rollout);
            bump(flag, env, now);
        }
        Ok(())
    }

    /// Makes each rule `it` uses serve the variation of treatment `treatment_id`, except rules `next` is about to
    /// take over (a restart rewrites them once, not twice).
    pub(crate) fn serve(
        &mut self,
        env: &str,
        it: &IterationRep,
        treatment_id: &str,
        next: Option<&IterationRep>,
        now: i64,
    ) -> Outcome<()> {
        let treatment = it
            .treatments
            .iter()
            .find(|t| t.id.as_deref() == Some(treatment_id))
            .ok_or_else(|| Fail::bad(format!("`{treatment_id}` is not a treatment of the iteration")))?;
        for (fk, rep) in &it.flags {
            let rule = rule_of(rep);
            if next.is_some_and(|n| n.flags.get(fk).is_some_and(|r| rule_of(r) == rule)) {
                continue;
            }
            let id = variation_for(treatment, fk)?;
            let flag = self.get_mut(fk)?;
            let idx = variation_index(flag, id)
                .ok_or_else(|| Fail::bad(format!("variation `{id}` is no longer a variation of flag `{fk}`")))?;
            let slot = target_mut(flag, env, rule).ok_or_else(|| {
                Fail::bad(format!("{} is no longer a rule of flag `{fk}` in environment `{env}`", describe(rule)))
            })?;
            slot.remove("rollout");
            slot.insert("variation".into(), json!(idx));
            bump(flag, env, now);
        }
        Ok(())
    }
}

fn variation_for<'t>(t: &'t ldexp_core::api::TreatmentRep, fk: &str) -> Outcome<&'t str> {
    t.parameters
        .iter()
        .find(|p| p.flag_key.as_deref() == Some(fk))
        .and_then(|p| p.variation_id.as_deref())
        .ok_or_else(|| Fail::bad(format!("treatment `{}` has no variation for flag `{fk}`", t.name)))
}
