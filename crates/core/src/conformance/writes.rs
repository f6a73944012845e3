//! The probes that write (contract §9.1–§9.6 and §9.9): one experiment on the borrowed flag's first rule walks from
//! create through start, a rival start, stop, refused iterations and a refused restart; a throwaway metric on
//! another unit tries to join a create. Every key is recorded in the [`Ledger`] before the request that makes it
//! is sent, so cleanup finds it whatever happens next.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ledger::{FALLTHROUGH, Ledger, archive, get, stop_if_running};
use super::probes::{could_not, differs, judge_created, seen, units};
use super::{Found, Rule, Target, Verdict};
use crate::api::{
    ExperimentPatch, ExperimentPost, FlagInput, Instruction, IterationInput, MetricInput, TreatmentInput,
    TreatmentParameterInput,
};
use crate::client::{Answer, Transport};
use crate::percent::Percent;
use crate::requests;

/// The rules the lifecycle walk reports, in its order.
const LIFECYCLE: [Rule; 6] = [
    Rule::CreateIteration,
    Rule::FlagRewrite,
    Rule::HeldRule,
    Rule::StaleFlagVersion,
    Rule::FixedFlags,
    Rule::RestartJustification,
];

/// A flag as a probe iteration uses it.
#[derive(Debug, Clone)]
struct FlagUse {
    key: String,
    /// The `_id`s of its first two variations: control and probe.
    variations: [String; 2],
    /// The rule the iteration runs on: a rule's `_id`, or `fallthrough`.
    rule: String,
    /// `environments.<env>.version` when last read.
    version: i64,
}

/// What the write probes need from the project, read once for all of them.
pub(super) struct Ingredients {
    /// The default randomization unit.
    unit: String,
    /// Every unit of the settings, as `(unit, default)`.
    units: Vec<(String, bool)>,
    /// A metric that fits it.
    metric: String,
    /// The borrowed flag on its first rule.
    flag: FlagUse,
}

fn ok(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
}

async fn send<T: Transport>(t: &T, req: &crate::plan::PlannedRequest, resource: &str) -> Result<Answer, String> {
    t.execute(req, resource).await.map_err(|e| e.to_string())
}

/// A flag's JSON.
async fn read_flag<T: Transport>(t: &T, target: &Target, key: &str) -> Result<Value, String> {
    let resource = format!("flag {}/{key}", target.project);
    get(t, &requests::get_flag(&target.project, key), &resource)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{resource}: not found"))
}

/// A flag's environment, versions and all.
async fn read_env<T: Transport>(t: &T, target: &Target, key: &str) -> Result<Value, String> {
    let flag = read_flag(t, target, key).await?;
    flag.get("environments")
        .and_then(|e| e.get(&target.environment))
        .cloned()
        .ok_or_else(|| format!("flag {}/{key} has no environment {}", target.project, target.environment))
}

fn version_of(env: &Value) -> Option<i64> {
    env.get("version").and_then(Value::as_i64)
}

/// `flag` as an iteration would use it on its first rule (`first_rule`) or its fallthrough.
fn flag_use(flag: &Value, target: &Target, first_rule: bool) -> Result<FlagUse, String> {
    let key = flag.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = format!("flag {}/{key}", target.project);
    let ids: Vec<String> = flag
        .get("variations")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(|v| Some(v.get("_id")?.as_str()?.to_owned())).collect())
        .unwrap_or_default();
    let [a, b, ..] = ids.as_slice() else { return Err(format!("{name} has fewer than two variations")) };
    let env = flag
        .get("environments")
        .and_then(|e| e.get(&target.environment))
        .ok_or_else(|| format!("{name} has no environment {}", target.environment))?;
    let version = version_of(env).ok_or_else(|| format!("{name} has no version in {}", target.environment))?;
    let rule = if first_rule {
        env.get("rules")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("_id")?.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("{name} has no targeting rule in {}; lend a flag with at least one rule", target.environment)
            })?
    } else {
        FALLTHROUGH.to_owned()
    };
    Ok(FlagUse { key, variations: [a.clone(), b.clone()], rule, version })
}

/// The same use with the flag's version read again: every iteration input must carry the current one (§9.3).
async fn fresh<T: Transport>(t: &T, target: &Target, f: &FlagUse) -> Result<FlagUse, String> {
    let env = read_env(t, target, &f.key).await?;
    let version = version_of(&env).ok_or_else(|| format!("flag {} has no version", f.key))?;
    Ok(FlagUse { version, ..f.clone() })
}

/// The probe iteration on the borrowed flag's rule, built from its current version.
async fn fresh_iteration<T: Transport>(t: &T, target: &Target, ing: &Ingredients) -> Result<IterationInput, String> {
    iteration(&ing.unit, &ing.metric, &fresh(t, target, &ing.flag).await?)
}

/// The ingredients, from the caller identity and the settings the read probes already have, the metric list and
/// the borrowed flag. An `Err` says why no write probe can run.
pub(super) async fn ingredients<T: Transport>(
    t: &T,
    target: &Target,
    identity: &Result<Answer, String>,
    settings: &Result<Value, String>,
) -> Result<Ingredients, String> {
    let identity = identity.as_ref().map_err(Clone::clone)?;
    if !ok(identity) {
        return Err(format!("caller identity: {}", seen(t, identity)));
    }
    let service = serde_json::from_slice::<Value>(&identity.body)
        .ok()
        .and_then(|v| v.get("serviceToken")?.as_bool())
        .unwrap_or(false);
    if service && target.maintainer_id.is_none() {
        // §9.7: a create with a service token needs a maintainer, which only the user can name.
        return Err("the token is a service token, which needs a maintainer to create; pass --maintainer-id".to_owned());
    }
    let units = units(settings.as_ref().map_err(Clone::clone)?);
    let unit = units.iter().find(|(_, d)| *d).or(units.first()).map_or_else(|| "user".to_owned(), |(u, _)| u.clone());
    let resource = format!("metrics of project {}", target.project);
    let metrics = get(t, &requests::list_metrics(&target.project, 0), &resource).await.map_err(|e| e.to_string())?;
    let fits = |m: &&Value| {
        m.get("randomizationUnits")
            .and_then(Value::as_array)
            .is_none_or(|us| us.iter().any(|u| u.as_str() == Some(unit.as_str())))
    };
    let metric = metrics
        .as_ref()
        .and_then(|m| m.get("items"))
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(fits))
        .and_then(|m| m.get("key")?.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("no metric of project {} (first page) fits unit {unit}", target.project))?;
    let flag = read_flag(t, target, &target.flag).await?;
    let on = flag.get("environments").and_then(|e| e.get(&target.environment)).and_then(|e| e.get("on"));
    if on.and_then(Value::as_bool) != Some(true) {
        return Err(format!(
            "flag {}/{} is off in {}; an iteration starts only on a flag that is on",
            target.project, target.flag, target.environment
        ));
    }
    Ok(Ingredients { unit, units, metric, flag: flag_use(&flag, target, true)? })
}

/// Two 50/50 treatments, `control` (the baseline) on the flag's first variation and `probe` on its second.
fn iteration(unit: &str, metric: &str, f: &FlagUse) -> Result<IterationInput, String> {
    let half = Percent::new(50.0).ok_or("50 is not a percentage")?;
    let treatment = |name: &str, baseline: bool, variation: &str| TreatmentInput {
        name: name.to_owned(),
        baseline,
        allocation_percent: half.clone(),
        parameters: vec![TreatmentParameterInput { flag_key: f.key.clone(), variation_id: variation.to_owned() }],
    };
    let flag =
        FlagInput { rule_id: f.rule.clone(), flag_config_version: f.version, not_in_experiment_variation_id: None };
    Ok(IterationInput {
        hypothesis: "ldexp conformance probe".to_owned(),
        can_reshuffle_traffic: None,
        metrics: vec![MetricInput { key: metric.to_owned(), is_group: false }],
        primary_single_metric_key: Some(metric.to_owned()),
        primary_funnel_key: None,
        treatments: vec![treatment("control", true, &f.variations[0]), treatment("probe", false, &f.variations[1])],
        flags: BTreeMap::from([(f.key.clone(), flag)]),
        randomization_unit: Some(unit.to_owned()),
        attributes: None,
    })
}

fn resource(target: &Target, key: &str) -> String {
    format!("experiment {}/{}/{key}", target.project, target.environment)
}

/// Sends a create of `key`, recorded in the ledger first; a 4xx means it did not happen, so the key is dropped
/// again (a key someone else holds stays theirs).
async fn create<T: Transport>(
    t: &T,
    target: &Target,
    ledger: &mut Ledger,
    key: &str,
    iteration: IterationInput,
) -> Result<Answer, String> {
    let post = ExperimentPost {
        name: format!("{key} (ldexp conformance probe)"),
        key: key.to_owned(),
        description: Some("Created by `ldexp conformance`; archived when the run ends.".to_owned()),
        maintainer_id: target.maintainer_id.clone(),
        iteration,
        holdout_id: None,
        tags: None,
        methodology: None,
        analysis_config: None,
        data_source: None,
    };
    let req = requests::create_experiment(&target.project, &target.environment, &post);
    ledger.created(key);
    let answer = send(t, &req, &resource(target, key)).await?;
    if (400..500).contains(&answer.status) {
        ledger.refused(key);
    }
    Ok(answer)
}

async fn patch<T: Transport>(t: &T, target: &Target, key: &str, instruction: Instruction) -> Result<Answer, String> {
    let body = ExperimentPatch { comment: Some("ldexp conformance probe".to_owned()), instructions: vec![instruction] };
    let req = requests::patch_experiment(&target.project, &target.environment, key, &body);
    send(t, &req, &resource(target, key)).await
}

fn start() -> Instruction {
    Instruction::StartIteration { change_justification: None }
}

async fn new_iteration<T: Transport>(t: &T, target: &Target, key: &str, it: &IterationInput) -> Result<Answer, String> {
    let req = requests::create_iteration(&target.project, &target.environment, key, it);
    send(t, &req, &resource(target, key)).await
}

/// Runs the lifecycle walk and gives one finding per rule of [`LIFECYCLE`]; a rule the walk did not reach could
/// not run, for the reason the walk stopped.
pub(super) async fn lifecycle<T: Transport>(
    t: &T,
    target: &Target,
    ledger: &mut Ledger,
    ingredients: &Result<Ingredients, String>,
) -> Vec<(Rule, Found)> {
    let mut done = Vec::new();
    let stopped = match ingredients {
        Ok(ing) => walk(t, target, ledger, ing, &mut done).await.err(),
        Err(why) => Some(why.clone()),
    };
    for rule in LIFECYCLE {
        if !done.iter().any(|(r, _)| *r == rule) {
            let why = stopped.clone().unwrap_or_else(|| "not reached".to_owned());
            done.push((rule, could_not(why)));
        }
    }
    done
}

/// One experiment, `<prefix>-lifecycle`, through create, start, a rival start, stop, two refused iterations and a
/// refused restart. `Err` says why the walk could not go on.
async fn walk<T: Transport>(
    t: &T,
    target: &Target,
    ledger: &mut Ledger,
    ing: &Ingredients,
    done: &mut Vec<(Rule, Found)>,
) -> Result<(), String> {
    let key = format!("{}-lifecycle", target.prefix);
    let answer = create(t, target, ledger, &key, iteration(&ing.unit, &ing.metric, &ing.flag)?).await?;
    if !ok(&answer) {
        return Err(format!("the create of {key} was refused: {}", seen(t, &answer)));
    }
    done.push((Rule::CreateIteration, judge_created(&serde_json::from_slice(&answer.body).unwrap_or(Value::Null))));
    // Read again rather than trust the create's answer, whose shape is what §9.9 questions.
    let experiment = get(t, &requests::get_experiment(&target.project, &target.environment, &key), &key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is not there after its create", resource(target, &key)))?;
    let treatments = treatments(&experiment);
    let before = read_env(t, target, &target.flag).await?;
    ledger.touches_rule(&ing.flag.rule);
    ledger.started(&key);
    let answer = patch(t, target, &key, start()).await?;
    if !ok(&answer) {
        return Err(format!("{key} could not be started: {}", seen(t, &answer)));
    }
    let on_start = read_env(t, target, &target.flag).await?;
    done.push((Rule::HeldRule, held_rule(t, target, ledger, ing).await));
    // The winner serves another variation than the rule did, so that the stop's rewrite can be seen.
    let served = rule_of(&before, &ing.flag.rule).and_then(|r| r.get("variation")).and_then(Value::as_i64);
    let winner_index = if served == Some(1) { 0 } else { 1 };
    let winner = treatments.iter().find(|(_, v)| *v == ing.flag.variations[winner_index]).map(|(id, _)| id.clone());
    let stop = Instruction::StopIteration {
        winning_treatment_id: winner,
        winning_reason: Some("ldexp conformance probe".to_owned()),
    };
    let answer = patch(t, target, &key, stop).await?;
    if !ok(&answer) {
        return Err(format!("{key} could not be stopped: {}", seen(t, &answer)));
    }
    let on_stop = read_env(t, target, &target.flag).await?;
    done.push((Rule::FlagRewrite, judge_rewrite(&before, &on_start, &on_stop, &ing.flag.rule, winner_index)));
    done.push((Rule::StaleFlagVersion, stale_version(t, target, ledger, ing, &key).await));
    done.push((Rule::FixedFlags, fixed_flags(t, target, ing, &key).await));
    done.push((Rule::RestartJustification, restart(t, target, ing, &key).await));
    // Archived now, so that `total-count` has one to count; cleanup archives it again if this fails.
    let _ = archive(t, target, &key).await;
    Ok(())
}

/// The treatments of the experiment's not-started iteration: `(_id, variation id)`.
fn treatments(experiment: &Value) -> Vec<(String, String)> {
    let it = ["draftIteration", "currentIteration"].iter().find_map(|f| experiment.get(*f).filter(|v| v.is_object()));
    let list = it.and_then(|i| i.get("treatments")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter_map(|tr| {
            let id = tr.get("_id")?.as_str()?.to_owned();
            let variation = tr.get("parameters")?.as_array()?.first()?.get("variationId")?.as_str()?.to_owned();
            Some((id, variation))
        })
        .collect()
}

fn rule_of<'a>(env: &'a Value, rule: &str) -> Option<&'a Value> {
    if rule == FALLTHROUGH {
        return env.get("fallthrough");
    }
    env.get("rules")?.as_array()?.iter().find(|r| r.get("_id").and_then(Value::as_str) == Some(rule))
}

/// `serves variation 1` or `serves an experiment rollout`, as a finding.
fn serving(env: &Value, rule: &str) -> (bool, Option<i64>, String) {
    let Some(r) = rule_of(env, rule) else { return (false, None, "is gone".to_owned()) };
    let rollout = r.get("rollout").and_then(|ro| ro.get("experimentAllocation")).is_some_and(|a| !a.is_null());
    let variation = r.get("variation").and_then(Value::as_i64);
    let text = match (rollout, variation) {
        (true, _) => "serves an experiment rollout".to_owned(),
        (false, Some(v)) => format!("serves variation {v}"),
        (false, None) => "serves a plain rollout".to_owned(),
    };
    (rollout, variation, text)
}

/// §9.1: the start made the rule an experiment rollout and bumped the version; the stop made it serve the winner
/// and bumped it again.
pub(super) fn judge_rewrite(before: &Value, on_start: &Value, on_stop: &Value, rule: &str, winner: usize) -> Found {
    let (v0, v1, v2) = (version_of(before), version_of(on_start), version_of(on_stop));
    let (start_rollout, _, start_text) = serving(on_start, rule);
    let (stop_rollout, stop_variation, stop_text) = serving(on_stop, rule);
    let winner = i64::try_from(winner).unwrap_or(-1);
    let start_ok = start_rollout && v1 > v0;
    let stop_ok = !stop_rollout && stop_variation == Some(winner) && v2 > v1;
    let show = |v: Option<i64>| v.map_or("(none)".to_owned(), |v| v.to_string());
    let text = format!(
        "on start, version {} → {} and rule {rule} {start_text}; on stop, version {} → {} and it {stop_text} (the \
         winner is variation {winner})",
        show(v0),
        show(v1),
        show(v1),
        show(v2)
    );
    if start_ok && stop_ok { (Verdict::Holds, Some(text)) } else { differs(text) }
}

/// §9.2: while the lifecycle experiment runs, a second experiment on the same rule is created (never a problem)
/// and started: that start must be a 409.
async fn held_rule<T: Transport>(t: &T, target: &Target, ledger: &mut Ledger, ing: &Ingredients) -> Found {
    let key = format!("{}-held", target.prefix);
    let it = match fresh_iteration(t, target, ing).await {
        Ok(it) => it,
        Err(e) => return could_not(e),
    };
    let answer = match create(t, target, ledger, &key, it).await {
        Ok(a) => a,
        Err(e) => return could_not(e),
    };
    if answer.status == 409 {
        // Refused even earlier than at its start: the rule holds all the more.
        return (Verdict::Holds, Some(format!("the create was already refused: {}", seen(t, &answer))));
    }
    if !ok(&answer) {
        return could_not(format!("the create of {key} was refused: {}", seen(t, &answer)));
    }
    ledger.started(&key);
    let found = match patch(t, target, &key, start()).await {
        Err(e) => could_not(e),
        Ok(a) if a.status == 409 => (Verdict::Holds, Some(seen(t, &a))),
        Ok(a) if ok(&a) => {
            // Two experiments on one rule: stop this one now rather than leave it to cleanup.
            let _ = stop_if_running(t, target, &key).await;
            differs(format!("status {}: the second start was accepted", a.status))
        }
        Ok(a) => differs(seen(t, &a)),
    };
    let _ = archive(t, target, &key).await;
    found
}

/// A 409 holds, a 2xx differs; what else the service said differs too, since it is not the refusal ldexp expects.
fn expect(t: &impl Transport, answer: &Answer, status: u16, what: &str) -> Result<String, String> {
    if answer.status == status {
        Ok(format!("{what}: {}", seen(t, answer)))
    } else if ok(answer) {
        Err(format!("{what}: status {}, accepted", answer.status))
    } else {
        Err(format!("{what}: {}", seen(t, answer)))
    }
}

/// Both findings hold, or what differed.
fn both(a: Result<String, String>, b: Result<String, String>) -> Found {
    match (a, b) {
        (Ok(a), Ok(b)) => (Verdict::Holds, Some(format!("{a}; {b}"))),
        (Err(a), Err(b)) => differs(format!("{a}; {b}")),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => differs(e),
    }
}

/// §9.3: a create, and a new iteration of the stopped lifecycle experiment, built from the version before the
/// current one, are each refused with 409.
async fn stale_version<T: Transport>(
    t: &T,
    target: &Target,
    ledger: &mut Ledger,
    ing: &Ingredients,
    lifecycle: &str,
) -> Found {
    let flag = match fresh(t, target, &ing.flag).await {
        Ok(f) if f.version > 1 => FlagUse { version: f.version - 1, ..f },
        Ok(f) => return could_not(format!("flag {} is at version {}; no earlier version to send", f.key, f.version)),
        Err(e) => return could_not(e),
    };
    let stale_on_fallthrough = FlagUse { rule: FALLTHROUGH.to_owned(), ..flag.clone() };
    let (Ok(create_it), Ok(iteration_it)) =
        (iteration(&ing.unit, &ing.metric, &stale_on_fallthrough), iteration(&ing.unit, &ing.metric, &flag))
    else {
        return could_not("50 is not a percentage");
    };
    let key = format!("{}-stale", target.prefix);
    let on_create = match create(t, target, ledger, &key, create_it).await {
        Ok(a) => expect(t, &a, 409, "createExperiment"),
        Err(e) => return could_not(e),
    };
    let on_iteration = match new_iteration(t, target, lifecycle, &iteration_it).await {
        Ok(a) => expect(t, &a, 409, "createIteration"),
        Err(e) => return could_not(e),
    };
    if on_create.is_err() {
        let _ = archive(t, target, &key).await;
    }
    both(on_create, on_iteration)
}

/// Another flag of the project with two variations, on its fallthrough: named in an iteration, never written.
async fn other_flag<T: Transport>(t: &T, target: &Target) -> Result<FlagUse, String> {
    let resource = format!("flags of project {}", target.project);
    let list = get(t, &requests::list_flags(&target.project, 0), &resource)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{resource}: not found"))?;
    let items = list.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for item in items {
        let Some(key) = item.get("key").and_then(Value::as_str).filter(|k| *k != target.flag) else { continue };
        let flag = read_flag(t, target, key).await?;
        if let Ok(f) = flag_use(&flag, target, false) {
            return Ok(f);
        }
    }
    Err(format!(
        "project {} has no other flag with two variations in {} (first page)",
        target.project, target.environment
    ))
}

/// §9.4: a new iteration of the lifecycle experiment on another flag is refused with 400.
async fn fixed_flags<T: Transport>(t: &T, target: &Target, ing: &Ingredients, lifecycle: &str) -> Found {
    let other = match other_flag(t, target).await {
        Ok(f) => f,
        Err(e) => return could_not(e),
    };
    let it = match iteration(&ing.unit, &ing.metric, &other) {
        Ok(it) => it,
        Err(e) => return could_not(e),
    };
    match new_iteration(t, target, lifecycle, &it).await {
        Err(e) => could_not(e),
        Ok(a) => match expect(t, &a, 400, &format!("createIteration on flag {}", other.key)) {
            Ok(note) => (Verdict::Holds, Some(note)),
            Err(seen) => differs(seen),
        },
    }
}

/// §9.5: a valid new iteration of the stopped lifecycle experiment is accepted, and starting it without a
/// `changeJustification` is refused with 400. An accepted restart is stopped at once.
async fn restart<T: Transport>(t: &T, target: &Target, ing: &Ingredients, lifecycle: &str) -> Found {
    let it = match fresh_iteration(t, target, ing).await {
        Ok(it) => it,
        Err(e) => return could_not(e),
    };
    match new_iteration(t, target, lifecycle, &it).await {
        Err(e) => return could_not(e),
        Ok(a) if !ok(&a) => return could_not(format!("a valid new iteration was refused: {}", seen(t, &a))),
        Ok(_) => {}
    }
    match patch(t, target, lifecycle, start()).await {
        Err(e) => could_not(e),
        Ok(a) if a.status == 400 => (Verdict::Holds, Some(seen(t, &a))),
        Ok(a) if ok(&a) => {
            let _ = stop_if_running(t, target, lifecycle).await;
            differs(format!("status {}: the restart was accepted without a changeJustification", a.status))
        }
        Ok(a) => differs(seen(t, &a)),
    }
}

/// §9.6: a throwaway custom metric on a unit that is not the default one, then a create that uses it with the
/// default unit, which must be a 400. The metric is deleted right after; cleanup tries again if that fails.
pub(super) async fn metric_unit<T: Transport>(
    t: &T,
    target: &Target,
    ledger: &mut Ledger,
    ingredients: &Result<Ingredients, String>,
) -> Found {
    let ing = match ingredients {
        Ok(i) => i,
        Err(e) => return could_not(e.clone()),
    };
    let Some((other, _)) = ing.units.iter().find(|(u, _)| *u != ing.unit) else {
        return could_not(format!(
            "project {} has one randomization unit, so no metric can miss the experiment's",
            target.project
        ));
    };
    let metric = format!("{}-metric", target.prefix);
    let mut body = json!({
        "key": metric,
        "name": format!("{metric} (ldexp conformance probe)"),
        "description": "Created by `ldexp conformance`; deleted when the run ends.",
        "kind": "custom",
        "eventKey": "ldexp-conformance-probe",
        "isNumeric": false,
        "randomizationUnits": [other],
    });
    if let Some(m) = &target.maintainer_id {
        body["maintainerId"] = json!(m);
    }
    ledger.metric(&metric);
    let name = format!("metric {}/{metric}", target.project);
    match send(t, &requests::post_metric(&target.project, &body), &name).await {
        Err(e) => return could_not(e),
        Ok(a) if !ok(&a) => {
            if a.status < 500 {
                ledger.metric_gone(&metric);
            }
            return could_not(format!("the throwaway metric was refused: {}", seen(t, &a)));
        }
        Ok(_) => {}
    }
    // The lifecycle moved the flag's version: a stale one would be refused for that instead (§9.3).
    let flag = match fresh(t, target, &ing.flag).await {
        Ok(f) => FlagUse { rule: FALLTHROUGH.to_owned(), ..f },
        Err(e) => return could_not(e),
    };
    let key = format!("{}-unit", target.prefix);
    let mut accepted = false;
    let found = match iteration(&ing.unit, &metric, &flag) {
        Err(e) => could_not(e),
        Ok(it) => match create(t, target, ledger, &key, it).await {
            Err(e) => could_not(e),
            Ok(a) => match expect(t, &a, 400, &format!("a create with unit {} and metric on {other}", ing.unit)) {
                Ok(note) => (Verdict::Holds, Some(note)),
                Err(seen) => {
                    accepted = ok(&a);
                    let _ = archive(t, target, &key).await;
                    differs(seen)
                }
            },
        },
    };
    let deleted = send(t, &requests::delete_metric(&target.project, &metric), &name).await;
    match deleted {
        Ok(a) if ok(&a) || a.status == 404 => ledger.metric_gone(&metric),
        // The service took the experiment, which now uses the metric: that it cannot go is the finding's
        // consequence, not a failed cleanup.
        Ok(a) if accepted => {
            ledger.metric_gone(&metric);
            ledger.kept(format!("{name} (used by experiment {key}, which LaunchDarkly accepted: {})", seen(t, &a)));
        }
        _ => {}
    }
    found
}
