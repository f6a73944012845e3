//! The deterministic benchmark fixture: an emulator seed and the spec files that plan against it, with a
//! realistic mix of unchanged objects and changes, plus the counts the bounds are computed from.
//!
//! Everything is a pure function of [`FixtureParams`]: the same parameters give byte-identical seed and specs,
//! so two runs (or the CI smoke and a laptop) measure the same workload.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::BenchError;

/// The one project the fixture lives in.
pub const PROJECT: &str = "bench";
/// The randomization unit every spec names, so the plan needs the project's experimentation settings.
pub const RANDOMIZATION_UNIT: &str = "user";
/// A fixed logical epoch (ms) for seeded timestamps; real time would make the seed differ between runs.
const EPOCH_MS: i64 = 1_700_000_000_000;
const MAINTAINER: &str = "bench-maintainer";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureParams {
    /// Experiments in the specs, one per (environment, key).
    pub experiments: usize,
    pub environments: usize,
    pub flags: usize,
    pub metrics: usize,
}

/// What each spec'd experiment (or legacy flag) asks of the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Spec equals remote; the remote state is the one in the tuple's name.
    UnchangedRunning,
    UnchangedDraft,
    UnchangedStopped,
    UnchangedArchived,
    /// Absent remotely; the spec wants it running (create + start).
    CreateRunning,
    /// Absent remotely; the spec wants a draft (create only).
    CreateDraft,
    /// Running remotely; the spec renames it.
    Update,
    /// Draft remotely; the spec wants it running.
    Start,
    /// Running remotely; the spec wants it stopped with a winner.
    Stop,
    /// Running remotely; the spec changes the design and justifies a restart.
    Restart,
}

impl Kind {
    /// Deterministic assignment of experiment `i`. The multiplier scatters each kind across environments and
    /// flags instead of banding them at the start of the list.
    fn of(i: usize) -> Kind {
        match (i.wrapping_mul(7919) + 13) % 100 {
            0..=1 => Kind::CreateRunning,
            2 => Kind::CreateDraft,
            3..=6 => Kind::Update,
            7..=9 => Kind::Start,
            10..=11 => Kind::Stop,
            12..=13 => Kind::Restart,
            14..=16 => Kind::UnchangedArchived,
            17..=31 => Kind::UnchangedDraft,
            32..=49 => Kind::UnchangedStopped,
            _ => Kind::UnchangedRunning,
        }
    }

    /// The label used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::UnchangedRunning => "unchanged (running)",
            Kind::UnchangedDraft => "unchanged (draft)",
            Kind::UnchangedStopped => "unchanged (stopped)",
            Kind::UnchangedArchived => "unchanged (archived)",
            Kind::CreateRunning => "create + start",
            Kind::CreateDraft => "create (draft)",
            Kind::Update => "update (rename)",
            Kind::Start => "start",
            Kind::Stop => "stop",
            Kind::Restart => "restart (new iteration)",
        }
    }

    fn exists_remotely(self) -> bool {
        !matches!(self, Kind::CreateRunning | Kind::CreateDraft)
    }
}

/// The counts R_min and the expected writes are computed from, read off the generated data (not off the client).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixtureCounts {
    /// Environment → experiments the emulator holds there (managed, unmanaged, active and archived).
    pub remote_experiments: BTreeMap<String, usize>,
    /// Environments some experiment spec targets: only these lists are fetched.
    pub targeted_environments: BTreeSet<String>,
    /// Flags named by an experiment spec or a legacy spec.
    pub referenced_flags: BTreeSet<String>,
    /// Flags the project's flag list holds (none is archived).
    pub listed_flags: usize,
    /// Environments whose flag configuration the specs read: the targeted ones, and those legacy specs record in.
    pub flag_environments: BTreeSet<String>,
    pub metrics: usize,
    pub metric_groups: usize,
    /// Whether any spec names a randomization unit (the plan then reads the experimentation settings).
    pub settings_needed: bool,
    /// Spec'd experiments per kind.
    pub kinds: BTreeMap<Kind, usize>,
    /// Experiments in the seed that no spec mentions.
    pub unmanaged: usize,
    pub legacy_unchanged: usize,
    pub legacy_changed: usize,
}

/// A generated fixture.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub params: FixtureParams,
    /// The emulator seed, in the seed format of the emulator issue (JSON is valid YAML).
    pub seed: Value,
    /// Spec files: relative path → YAML text.
    pub specs: BTreeMap<String, String>,
    pub counts: FixtureCounts,
}

/// Environment names: the usual four, then numbered ones.
pub fn environment_names(n: usize) -> Vec<String> {
    const NAMED: [&str; 4] = ["production", "staging", "development", "qa"];
    (0..n).map(|i| NAMED.get(i).map_or_else(|| format!("env-{i}"), |s| (*s).to_owned())).collect()
}

fn flag_key(j: usize) -> String {
    format!("flag-{j:04}")
}

fn metric_key(m: usize) -> String {
    format!("metric-{m:04}")
}

fn group_key(g: usize) -> String {
    format!("funnel-{g:03}")
}

/// Variation names of every flag, in index order.
const VARIATIONS: [&str; 3] = ["control", "treatment-a", "treatment-b"];

fn variation_id(flag: &str, v: usize) -> String {
    format!("{flag}-var-{v}")
}

/// Numbers of legacy flags and of flags used by new-model experiments.
fn flag_split(flags: usize) -> (usize, usize) {
    let legacy = if flags >= 2 { (flags / 10).max(1) } else { 0 };
    (legacy, flags - legacy)
}

fn group_count(metrics: usize) -> usize {
    if metrics >= 3 { (metrics / 25).max(1) } else { 0 }
}

/// The design of experiment `i`, in the pieces both the seed and the spec are written from.
struct ExperimentShape {
    key: String,
    env: String,
    flag: String,
    /// The targeting rule the experiment runs on: its own (LaunchDarkly runs one experiment per rule), described by
    /// the experiment's key, or `fallthrough` for the unmanaged ones.
    rule: Option<String>,
    treatments: Vec<(&'static str, &'static str, usize)>,
    primary: String,
    secondary: Vec<(String, bool)>,
    hypothesis: String,
}

fn shape(i: usize, envs: &[String], experiment_flags: usize, metrics: usize, groups: usize) -> ExperimentShape {
    let flag = flag_key(i % experiment_flags);
    let treatments = if i.is_multiple_of(5) {
        vec![("control", "34", 0), ("treatment-a", "33", 1), ("treatment-b", "33", 2)]
    } else {
        vec![("control", "50", 0), ("treatment-a", "50", 1)]
    };
    let mut secondary = Vec::new();
    if metrics > 1 {
        secondary.push((metric_key((i + 1) % metrics), false));
    }
    if groups > 0 && i % 10 == 3 {
        secondary.push((group_key(i % groups), true));
    }
    ExperimentShape {
        key: format!("exp-{i:05}"),
        env: envs[i % envs.len()].clone(),
        flag,
        rule: Some(format!("exp-{i:05}")),
        treatments,
        primary: metric_key(i % metrics),
        secondary,
        hypothesis: format!("Variant copy lifts conversion for cohort {i}"),
    }
}

/// The `_id` of the rule `s` runs on.
fn rule_id(s: &ExperimentShape) -> String {
    s.rule.as_ref().map_or_else(|| "fallthrough".to_owned(), |r| format!("{r}-rule"))
}

fn metric_summary(key: &str, group: bool) -> Value {
    json!({ "key": key, "name": key, "kind": if group { "funnel" } else { "custom" }, "isGroup": group, "_links": {} })
}

/// An API-shaped IterationRep for `s`. `n` makes iteration ids unique within the experiment.
fn iteration(s: &ExperimentShape, status: &str, n: usize, hypothesis: &str) -> Value {
    let treatments: Vec<Value> = s
        .treatments
        .iter()
        .map(|(name, pct, v)| {
            json!({
                "_id": format!("{}-{}-it{n}-{name}", s.env, s.key),
                "name": name,
                "allocationPercent": pct,
                "baseline": *v == 0,
                "parameters": [ { "flagKey": s.flag, "variationId": variation_id(&s.flag, *v) } ],
            })
        })
        .collect();
    let mut metrics = vec![metric_summary(&s.primary, false)];
    metrics.extend(s.secondary.iter().map(|(k, g)| metric_summary(k, *g)));
    let mut it = json!({
        "_id": format!("{}-{}-it{n}", s.env, s.key),
        "hypothesis": hypothesis,
        "status": status,
        "createdAt": EPOCH_MS + n as i64,
        "canReshuffleTraffic": true,
        "flags": { s.flag.clone(): { "targetingRule": rule_id(s), "flagConfigVersion": 1, "_links": {} } },
        "randomizationUnit": RANDOMIZATION_UNIT,
        "treatments": treatments,
        "primarySingleMetric": metric_summary(&s.primary, false),
        "metrics": metrics,
    });
    if status != "not_started" {
        it["startedAt"] = json!(EPOCH_MS + 1000 + n as i64);
    }
    if status == "stopped" {
        it["endedAt"] = json!(EPOCH_MS + 2000 + n as i64);
        it["winningTreatmentId"] = json!(format!("{}-{}-it{n}-control", s.env, s.key));
        it["winningReason"] = json!("No significant difference; keeping control");
    }
    it
}

fn remote_experiment(s: &ExperimentShape, kind: Kind) -> Value {
    let mut e = json!({
        "_id": format!("seed-{}-{}", s.env, s.key),
        "key": s.key,
        "name": format!("Experiment {}", s.key),
        "description": "Generated by ldexp-bench",
        "_maintainerId": MAINTAINER,
        "_creationDate": EPOCH_MS,
        "environmentKey": s.env,
        "_links": {},
    });
    match kind {
        Kind::UnchangedDraft | Kind::Start => e["draftIteration"] = iteration(s, "not_started", 1, &s.hypothesis),
        Kind::UnchangedStopped | Kind::Stop | Kind::UnchangedArchived => {
            // Stop: the seed is running; the spec asks for stopped.
            let status = if kind == Kind::Stop { "running" } else { "stopped" };
            e["currentIteration"] = iteration(s, status, 1, &s.hypothesis);
            if kind == Kind::UnchangedArchived {
                e["archivedDate"] = json!(EPOCH_MS + 3000);
            }
        }
        _ => e["currentIteration"] = iteration(s, "running", 1, &s.hypothesis),
    }
    e
}

fn spec_document(s: &ExperimentShape, kind: Kind) -> Value {
    let state = match kind {
        Kind::UnchangedDraft | Kind::CreateDraft => "draft",
        Kind::UnchangedStopped | Kind::Stop => "stopped",
        Kind::UnchangedArchived => "archived",
        _ => "running",
    };
    let name =
        if kind == Kind::Update { format!("Experiment {} (renamed)", s.key) } else { format!("Experiment {}", s.key) };
    let mut metrics: Vec<Value> = vec![json!(s.primary)];
    metrics.extend(s.secondary.iter().map(|(k, g)| if *g { json!({ "key": k, "group": true }) } else { json!(k) }));
    let treatments: Vec<Value> = s
        .treatments
        .iter()
        .map(|(name, pct, v)| {
            json!({
                "name": name,
                "baseline": *v == 0,
                "allocationPercent": pct,
                "variations": { s.flag.clone(): VARIATIONS[*v] },
            })
        })
        .collect();
    let mut iteration = json!({
        "hypothesis": s.hypothesis,
        "randomizationUnit": RANDOMIZATION_UNIT,
        "primaryMetric": s.primary,
        "metrics": metrics,
        "flags": { s.flag.clone(): { "rule": s.rule.as_deref().unwrap_or("fallthrough") } },
        "treatments": treatments,
    });
    if kind == Kind::Restart {
        iteration["hypothesis"] = json!(format!("{} (revised)", s.hypothesis));
        iteration["changeJustification"] = json!("Revised hypothesis after the design review");
    }
    let mut doc = json!({
        "kind": "Experiment",
        "project": PROJECT,
        "environment": s.env,
        "key": s.key,
        "name": name,
        "description": "Generated by ldexp-bench",
        "maintainerId": MAINTAINER,
        "state": state,
        "iteration": iteration,
    });
    if matches!(kind, Kind::UnchangedStopped | Kind::Stop | Kind::UnchangedArchived) {
        doc["stop"] = json!({ "winner": "control", "reason": "No significant difference; keeping control" });
    }
    doc
}

/// A flag with a beta rule, then one rule per experiment that runs on it, in each environment.
fn flag_json(
    key: &str,
    envs: &[String],
    rules: &BTreeMap<(String, String), Vec<String>>,
    legacy: Option<Value>,
) -> Value {
    let variations: Vec<Value> = VARIATIONS
        .iter()
        .enumerate()
        .map(|(v, name)| json!({ "_id": variation_id(key, v), "name": name, "value": name }))
        .collect();
    let environments: serde_json::Map<String, Value> = envs
        .iter()
        .map(|e| {
            let mut list = vec![json!({ "description": "Beta users", "variation": 1 })];
            for r in rules.get(&(key.to_owned(), e.clone())).into_iter().flatten() {
                list.push(json!({ "_id": format!("{r}-rule"), "description": r, "variation": 0 }));
            }
            (e.clone(), json!({ "on": true, "rules": list }))
        })
        .collect();
    let mut f =
        json!({ "key": key, "name": format!("Flag {key}"), "variations": variations, "environments": environments });
    if let Some(l) = legacy {
        f["experiments"] = l;
    }
    f
}

fn to_yaml(v: &Value) -> Result<String, BenchError> {
    serde_yaml::to_string(v).map_err(|e| BenchError::Fixture(format!("cannot render YAML: {e}")))
}

/// Generates the fixture for `p`.
pub fn generate(p: &FixtureParams) -> Result<Fixture, BenchError> {
    if p.environments == 0 || p.flags < 2 || p.metrics < 3 || p.experiments == 0 {
        return Err(BenchError::Fixture("need at least 1 experiment, 1 environment, 2 flags and 3 metrics".to_owned()));
    }
    let envs = environment_names(p.environments);
    let (legacy_flags, experiment_flags) = flag_split(p.flags);
    let groups = group_count(p.metrics);
    let mut counts = FixtureCounts {
        metrics: p.metrics,
        listed_flags: p.flags,
        metric_groups: groups,
        settings_needed: true,
        remote_experiments: envs.iter().map(|e| (e.clone(), 0)).collect(),
        ..FixtureCounts::default()
    };
    let mut specs = BTreeMap::new();
    let mut remote: BTreeMap<String, Vec<Value>> = envs.iter().map(|e| (e.clone(), Vec::new())).collect();
    let mut rules: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();

    for i in 0..p.experiments {
        let kind = Kind::of(i);
        let s = shape(i, &envs, experiment_flags, p.metrics, groups);
        *counts.kinds.entry(kind).or_default() += 1;
        counts.targeted_environments.insert(s.env.clone());
        counts.flag_environments.insert(s.env.clone());
        counts.referenced_flags.insert(s.flag.clone());
        if let Some(r) = &s.rule {
            rules.entry((s.flag.clone(), s.env.clone())).or_default().push(r.clone());
        }
        if kind.exists_remotely() {
            remote.entry(s.env.clone()).or_default().push(remote_experiment(&s, kind));
        }
        specs.insert(format!("experiments/{}/{}.yaml", s.env, s.key), to_yaml(&spec_document(&s, kind))?);
    }
    // Experiments created in the UI that no spec mentions: they are listed (and paid for) but never planned.
    let unmanaged = p.experiments / 50;
    for u in 0..unmanaged {
        let mut s = shape(u, &envs, experiment_flags, p.metrics, groups);
        s.key = format!("adhoc-{u:04}");
        s.rule = None;
        remote.entry(s.env.clone()).or_default().push(remote_experiment(&s, Kind::UnchangedRunning));
    }
    counts.unmanaged = unmanaged;
    for (env, items) in &remote {
        counts.remote_experiments.insert(env.clone(), items.len());
    }

    let mut flags = Vec::with_capacity(p.flags);
    for j in 0..experiment_flags {
        flags.push(flag_json(&flag_key(j), &envs, &rules, None));
    }
    for l in 0..legacy_flags {
        let key = flag_key(experiment_flags + l);
        let metric = metric_key(l % p.metrics);
        let seeded = json!({ "baselineIdx": 0, "items": [ { "metricKey": metric, "environments": [envs[0]] } ] });
        flags.push(flag_json(&key, &envs, &rules, Some(seeded)));
        // Every other legacy flag starts recording in a second environment (one guarded JSON patch).
        let changed = l % 2 == 1 && envs.len() > 1;
        let mut recording = vec![envs[0].clone()];
        if changed {
            recording.push(envs[1].clone());
            counts.legacy_changed += 1;
        } else {
            counts.legacy_unchanged += 1;
        }
        counts.referenced_flags.insert(key.clone());
        counts.flag_environments.extend(recording.iter().cloned());
        let doc = json!({
            "kind": "LegacyFlagExperiments",
            "project": PROJECT,
            "flag": key,
            "baseline": "control",
            "metrics": [ { "key": metric, "environments": recording } ],
        });
        specs.insert(format!("legacy/{key}.yaml"), to_yaml(&doc)?);
    }

    let metrics: Vec<Value> = (0..p.metrics)
        .map(|m| {
            json!({ "key": metric_key(m), "kind": "custom", "eventKey": format!("event-{m:04}"), "isNumeric": m.is_multiple_of(4) })
        })
        .collect();
    let metric_groups: Vec<Value> = (0..groups)
        .map(|g| {
            let members: Vec<String> = (0..3).map(|k| metric_key((g * 3 + k) % p.metrics)).collect();
            json!({ "key": group_key(g), "kind": "funnel", "metrics": members })
        })
        .collect();
    let seed = json!({
        "projects": [ {
            "key": PROJECT,
            "environments": envs,
            "randomizationUnits": [RANDOMIZATION_UNIT, "organization"],
            "metrics": metrics,
            "metricGroups": metric_groups,
            "flags": flags,
            "experiments": remote,
        } ]
    });
    Ok(Fixture { params: p.clone(), seed, specs, counts })
}

impl Fixture {
    /// Writes the seed (`seed.json`) and the specs (`specs/…`) under `dir`; returns the spec directory.
    pub fn write_to(&self, dir: &Path) -> Result<std::path::PathBuf, BenchError> {
        let io = |path: &Path, e: std::io::Error| BenchError::Io { path: path.to_owned(), source: e };
        let seed_path = dir.join("seed.json");
        let seed = serde_json::to_vec(&self.seed).map_err(|e| BenchError::Fixture(e.to_string()))?;
        std::fs::write(&seed_path, seed).map_err(|e| io(&seed_path, e))?;
        let spec_dir = dir.join("specs");
        for (rel, text) in &self.specs {
            let path = spec_dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        }
        Ok(spec_dir)
    }

    /// The writes a correct plan makes, by kind: create + start is two requests, a restart is a new iteration and
    /// a start, a changed legacy flag is one guarded JSON patch.
    pub fn expected_writes(&self) -> usize {
        let k = |kind| self.counts.kinds.get(&kind).copied().unwrap_or(0);
        2 * k(Kind::CreateRunning)
            + k(Kind::CreateDraft)
            + k(Kind::Update)
            + k(Kind::Start)
            + k(Kind::Stop)
            + 2 * k(Kind::Restart)
            + self.counts.legacy_changed
    }
}
