//! The cleanup ledger of a conformance run: what the probes created and what they borrowed, recorded before the
//! write that creates it is sent (so an answer lost on the way still gets cleaned up), and the cleanup that
//! archives the one and checks (and if need be restores) the other, run whatever the probes did.

use serde::Serialize;
use serde_json::Value;

use super::Target;
use crate::Error;
use crate::api::{ExperimentPatch, Instruction, PatchWithComment};
use crate::client::{Transport, decode};
use crate::plan::PlannedRequest;
use crate::requests;

/// Fields of a flag environment that change with every write, whoever makes it; the rest is its targeting, which
/// must be the same after a run as before.
const VOLATILE: [&str; 3] = ["version", "lastModified", "sel"];

/// The `ruleId` of a flag's default rule.
pub(super) const FALLTHROUGH: &str = "fallthrough";

/// What a run created and borrowed.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Keys of experiments a probe created (or tried to) in the target environment.
    created: Vec<String>,
    /// Keys of those a probe started (or tried to): cleanup stops any still running before it touches the flag,
    /// since a running iteration holds its rule (§9.2) and a restore would be refused.
    started: Vec<String>,
    /// Keys of metrics a probe created (or tried to) and has not deleted yet.
    metrics: Vec<String>,
    /// What a probe had to leave, and why, one line each (a metric the service let an experiment use).
    kept: Vec<String>,
    /// The borrowed flag's rules (`_id`, or `fallthrough`) a probe started an iteration on: the only targeting
    /// cleanup puts back, so that a colleague's edit elsewhere in the flag during the run is left alone.
    rules: Vec<String>,
    /// The borrowed flag's environment as it was before any probe, versions removed.
    flag_before: Option<Value>,
}

/// What cleanup did, and what it could not do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleanup {
    /// Everything the run leaves behind, one line each (experiments cannot be deleted, only archived).
    pub left_behind: Vec<String>,
    /// Whether the borrowed flag's targeting was read again and found as it was (after restoring, if it had to be).
    pub flag_verified: bool,
    /// The fields of the flag's environment that differed after the probes and were patched back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<String>,
    /// What cleanup could not undo or check; a run with any is an error.
    pub problems: Vec<String>,
}

impl Ledger {
    /// Reads the flag the probes may use and keeps its targeting in the target environment. Fails when the flag
    /// or the environment is not there: no probe should run without a snapshot to compare against.
    pub async fn borrow_flag<T: Transport>(&mut self, t: &T, target: &Target) -> Result<(), Error> {
        let (p, f, e) = (&target.project, &target.flag, &target.environment);
        let hint = || {
            Some(format!(
                "lend a flag that is on in {e}, with at least two variations and at least one targeting rule: the \
                 probes turn its first rule into an experiment rollout for a moment and put it back"
            ))
        };
        let resource = format!("flag {p}/{f}");
        let flag = get(t, &requests::get_flag(p, f), &resource).await?.ok_or_else(|| {
            let hint = format!(
                "check --project and --flag (LaunchDarkly answers 404 for either); {}",
                hint().unwrap_or_default()
            );
            Error::config(format!("{resource} does not exist"), Some(hint))
        })?;
        let env = flag
            .get("environments")
            .and_then(|v| v.get(e.as_str()))
            .ok_or_else(|| Error::config(format!("{resource} has no environment {e}"), hint()))?;
        let variations = flag.get("variations").and_then(Value::as_array).map_or(0, Vec::len);
        let rules = env.get("rules").and_then(Value::as_array).map_or(0, Vec::len);
        let problem = if env.get("on").and_then(Value::as_bool) != Some(true) {
            Some(format!("is off in {e}"))
        } else if variations < 2 {
            Some(format!("has {variations} variation(s)"))
        } else if rules == 0 {
            Some(format!("has no targeting rule in {e}, only the fallthrough"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::config(format!("{resource} cannot be lent to the probes: it {problem}"), hint()));
        }
        self.flag_before = Some(without_versions(env.clone()).0);
        Ok(())
    }

    /// Records an experiment key before the create is sent.
    pub fn created(&mut self, key: &str) {
        if !self.created.iter().any(|k| k == key) {
            self.created.push(key.to_owned());
        }
    }

    /// Records an experiment key before its iteration start is sent.
    pub fn started(&mut self, key: &str) {
        if !self.started.iter().any(|k| k == key) {
            self.started.push(key.to_owned());
        }
    }

    /// Records a metric key before the create is sent.
    pub fn metric(&mut self, key: &str) {
        if !self.metrics.iter().any(|k| k == key) {
            self.metrics.push(key.to_owned());
        }
    }

    /// Records a rule of the borrowed flag before an iteration on it is started.
    pub fn touches_rule(&mut self, rule: &str) {
        if !self.rules.iter().any(|r| r == rule) {
            self.rules.push(rule.to_owned());
        }
    }

    /// Records something a probe cannot remove, with why; it is listed as left behind.
    pub fn kept(&mut self, line: String) {
        self.kept.push(line);
    }

    /// Drops a metric that is gone (deleted by its probe, or never created).
    pub fn metric_gone(&mut self, key: &str) {
        self.metrics.retain(|k| k != key);
    }

    /// Drops a key whose create was refused: the experiment under it, if any, is not this run's to archive.
    pub fn refused(&mut self, key: &str) {
        self.created.retain(|k| k != key);
    }

    /// What cleanup is about to see to, one line each, for a user who interrupts it.
    pub fn outstanding(&self, target: &Target) -> Vec<String> {
        let (p, e) = (&target.project, &target.environment);
        let mut out: Vec<String> = Vec::new();
        out.extend(self.started.iter().map(|k| format!("stop experiment {p}/{e}/{k} if it runs")));
        out.extend(self.created.iter().map(|k| format!("archive experiment {p}/{e}/{k}")));
        out.extend(self.metrics.iter().map(|k| format!("delete metric {p}/{k}")));
        if !self.rules.is_empty() {
            out.push(format!("put back {} of flag {p}/{} in {e}", touched(&self.rules), target.flag));
        }
        out
    }

    /// Stops what the probes left running, archives what they created, deletes their metrics, and puts back and
    /// checks the borrowed flag, in that order. Never fails: what it cannot do is listed.
    pub async fn clean<T: Transport>(&self, t: &T, target: &Target) -> Cleanup {
        let mut out = Cleanup::default();
        for key in &self.started {
            let name = format!("experiment {}/{}/{key}", target.project, target.environment);
            if let Err(e) = stop_if_running(t, target, key).await {
                out.problems.push(format!("{name} could not be stopped: {e}"));
            }
        }
        for key in &self.created {
            let name = format!("experiment {}/{}/{key}", target.project, target.environment);
            match archive(t, target, key).await {
                Ok(true) => out.left_behind.push(format!("{name} (archived)")),
                Ok(false) => {}
                Err(e) => out.problems.push(format!("{name} could not be archived: {e}")),
            }
        }
        out.left_behind.extend(self.kept.iter().cloned());
        for key in &self.metrics {
            let name = format!("metric {}/{key}", target.project);
            match delete_metric(t, target, key).await {
                Ok(()) => {}
                Err(e) => out.problems.push(format!("{name} could not be deleted: {e}")),
            }
        }
        if let Some(before) = &self.flag_before {
            let name = format!("flag {}/{} in {}", target.project, target.flag, target.environment);
            match restore(t, target, before, &self.rules).await {
                Ok(FlagAfter::Unchanged) => out.flag_verified = true,
                Ok(FlagAfter::Restored(fields)) => {
                    out.flag_verified = true;
                    out.restored = fields;
                }
                Ok(FlagAfter::StillDiffers(fields)) => out.problems.push(format!(
                    "{name}: targeting differs from before the run: {}; the probes touched {}, so a change elsewhere \
                     was made by someone else during the run and is left as it is",
                    fields.join(", "),
                    touched(&self.rules)
                )),
                Ok(FlagAfter::Gone) => out.problems.push(format!("{name}: the flag or environment is gone")),
                Err(e) => out.problems.push(format!("{name} could not be checked or restored: {e}")),
            }
        }
        out
    }
}

/// What became of the borrowed flag.
enum FlagAfter {
    /// As it was: nothing sent.
    Unchanged,
    /// It differed in these fields, was patched back and read again as it was.
    Restored(Vec<String>),
    /// It still differs in these fields (read-only ones, or a patch that did not take).
    StillDiffers(Vec<String>),
    /// The flag or its environment is gone.
    Gone,
}

/// Reads the flag's environment again and puts the rules in `touched` back as they were in `before` (one JSON
/// patch, guarded by the version), then reads it once more to verify it is all as before.
async fn restore<T: Transport>(t: &T, target: &Target, before: &Value, touched: &[String]) -> Result<FlagAfter, Error> {
    let Some((after, version)) = targeting(t, target).await? else { return Ok(FlagAfter::Gone) };
    if after == *before {
        return Ok(FlagAfter::Unchanged);
    }
    if !before.is_object() || !after.is_object() {
        return Ok(FlagAfter::StillDiffers(vec!["(not objects)".to_owned()]));
    }
    let wanted = put_back(&after, before, touched);
    let fields = changed_fields(&after, &wanted);
    let base = format!("/environments/{}", pointer(&target.environment));
    // Guarded by the version just read: a colleague's edit since then is theirs, and is reported rather than
    // overwritten.
    let guard = version.map(|v| serde_json::json!({"op": "test", "path": format!("{base}/version"), "value": v}));
    // The smallest patch from now back to then (json-patch's diff), so that a rule the start rewrote gets its
    // `variation` back and loses its `rollout`, and nothing else in it (its `_id` above all) is sent. LaunchDarkly's
    // own top-level fields (`_…`) cannot be written: a difference there is reported, not patched.
    let writable = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.retain(|k, _| !k.starts_with('_'));
        }
        v
    };
    let diff = serde_json::to_value(json_patch::diff(&writable(&after), &writable(&wanted)))
        .map_err(|e| Error::Decode { resource: "flag restore patch".to_owned(), reason: e.to_string() })?;
    let ops: Vec<Value> = diff
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .map(|mut op| {
            for field in ["path", "from"] {
                if let Some(p) = op.get(field).and_then(Value::as_str).map(|p| format!("{base}{p}")) {
                    op[field] = Value::String(p);
                }
            }
            op
        })
        .collect();
    if !ops.is_empty() {
        let ops: Vec<Value> = guard.into_iter().chain(ops).collect();
        let patch = serde_json::from_value(Value::Array(ops))
            .map_err(|e| Error::Decode { resource: "flag restore patch".to_owned(), reason: e.to_string() })?;
        let body = PatchWithComment {
            comment: Some("ldexp conformance: restore the targeting as it was before the run".to_owned()),
            patch,
        };
        let req = requests::patch_flag(&target.project, &target.flag, &body);
        let resource = format!("flag {}/{}", target.project, target.flag);
        let answer = t.execute(&req, &resource).await?;
        decode::<T, Value>(t, req.method, &req.path, &resource, &answer)?;
    }
    match targeting(t, target).await? {
        None => Ok(FlagAfter::Gone),
        Some((again, _)) if again == *before => Ok(FlagAfter::Restored(fields)),
        Some((again, _)) => Ok(FlagAfter::StillDiffers(changed_fields(before, &again))),
    }
}

/// The ledger's rules, for a message.
fn touched(rules: &[String]) -> String {
    if rules.is_empty() {
        return "no rule".to_owned();
    }
    rules
        .iter()
        .map(|r| if r == FALLTHROUGH { "the fallthrough".to_owned() } else { format!("rule {r}") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `after` with each rule in `touched` (by `_id`; `fallthrough` for the default rule) as it was in `before`.
fn put_back(after: &Value, before: &Value, touched: &[String]) -> Value {
    let mut out = after.clone();
    let by_id = |env: &Value, id: &str| -> Option<Value> {
        env.get("rules")?.as_array()?.iter().find(|r| r.get("_id").and_then(Value::as_str) == Some(id)).cloned()
    };
    for rule in touched {
        if rule == FALLTHROUGH {
            if let (Some(was), Some(o)) = (before.get("fallthrough"), out.as_object_mut()) {
                o.insert("fallthrough".to_owned(), was.clone());
            }
            continue;
        }
        let Some(was) = by_id(before, rule) else { continue };
        let rules = out.get_mut("rules").and_then(Value::as_array_mut);
        if let Some(now) =
            rules.and_then(|rs| rs.iter_mut().find(|r| r.get("_id").and_then(Value::as_str) == Some(rule)))
        {
            *now = was;
        }
    }
    out
}

/// One JSON-pointer segment (RFC 6901).
fn pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The flag's environment without its versions, and its version; `None` when the flag or the environment does
/// not exist.
async fn targeting<T: Transport>(t: &T, target: &Target) -> Result<Option<(Value, Option<i64>)>, Error> {
    let req = requests::get_flag(&target.project, &target.flag);
    let resource = format!("flag {}/{}", target.project, target.flag);
    let flag: Option<Value> = get(t, &req, &resource).await?;
    Ok(flag
        .and_then(|mut f| f.get_mut("environments")?.get_mut(&target.environment).map(Value::take))
        .map(without_versions))
}

/// A flag environment without the fields every write changes, and its version.
fn without_versions(mut env: Value) -> (Value, Option<i64>) {
    let version = env.get("version").and_then(Value::as_i64);
    if let Some(o) = env.as_object_mut() {
        for k in VOLATILE {
            o.remove(k);
        }
    }
    (env, version)
}

/// Stops the experiment's running iteration, if it has one, naming its first treatment the winner: the flag is put
/// back by the restore that follows, so which variation the stop serves does not matter.
pub(super) async fn stop_if_running<T: Transport>(t: &T, target: &Target, key: &str) -> Result<(), Error> {
    let (project, env) = (&target.project, &target.environment);
    let resource = format!("experiment {project}/{env}/{key}");
    let Some(current) = get(t, &requests::get_experiment(project, env, key), &resource).await? else { return Ok(()) };
    let iteration = current.get("currentIteration");
    if iteration.and_then(|i| i.get("status")).and_then(Value::as_str) != Some("running") {
        return Ok(());
    }
    let winner =
        iteration.and_then(|i| i.get("treatments")?.as_array()?.first()?.get("_id")?.as_str()).map(str::to_owned);
    let patch = ExperimentPatch {
        comment: Some("ldexp conformance: stop the probe experiment".to_owned()),
        instructions: vec![Instruction::StopIteration {
            winning_treatment_id: winner,
            winning_reason: Some("ldexp conformance cleanup".to_owned()),
        }],
    };
    let req = requests::patch_experiment(project, env, key, &patch);
    let answer = t.execute(&req, &resource).await?;
    decode::<T, Value>(t, req.method, &req.path, &resource, &answer)?;
    Ok(())
}

/// Deletes a probe metric; one already gone is fine.
async fn delete_metric<T: Transport>(t: &T, target: &Target, key: &str) -> Result<(), Error> {
    let resource = format!("metric {}/{key}", target.project);
    let req = requests::delete_metric(&target.project, key);
    let answer = t.execute(&req, &resource).await?;
    // 204 has no body to decode.
    if answer.status == 404 || (200..300).contains(&answer.status) {
        return Ok(());
    }
    decode::<T, Value>(t, req.method, &req.path, &resource, &answer)?;
    Ok(())
}

/// Archives one probe experiment unless it already is. `Ok(false)` when it does not exist (the create failed).
pub(super) async fn archive<T: Transport>(t: &T, target: &Target, key: &str) -> Result<bool, Error> {
    let (project, env) = (&target.project, &target.environment);
    let resource = format!("experiment {project}/{env}/{key}");
    let current: Option<Value> = get(t, &requests::get_experiment(project, env, key), &resource).await?;
    let Some(current) = current else { return Ok(false) };
    if current.get("archivedDate").is_some_and(|d| !d.is_null()) {
        return Ok(true);
    }
    let patch = ExperimentPatch {
        comment: Some("ldexp conformance: archive the probe experiment".to_owned()),
        instructions: vec![Instruction::ArchiveExperiment],
    };
    let req = requests::patch_experiment(project, env, key, &patch);
    let answer = t.execute(&req, &resource).await?;
    decode::<T, Value>(t, req.method, &req.path, &resource, &answer)?;
    Ok(true)
}

/// A GET decoded as JSON; `None` on 404.
pub(super) async fn get<T: Transport>(t: &T, req: &PlannedRequest, resource: &str) -> Result<Option<Value>, Error> {
    let answer = t.execute(req, resource).await?;
    decode::<T, Value>(t, req.method, &req.path, resource, &answer)
}

/// The top-level fields that differ between two flag environments, for the message.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return vec!["(not objects)".to_owned()] };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).map(|k| k.to_string()).collect()
}
