//! Export round trip: for several remote states of the emulator, `export` → YAML files → `spec::load` → `plan`
//! against the same remote is empty (no change, no warning, nothing unmanaged).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use ldexp_core::api::{Experiment, FeatureFlag, IterationRep};
use ldexp_core::export::{export_experiment, export_legacy, to_yaml};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::Plan;
use ldexp_core::remote::{RemoteState, Requirements};
use ldexp_core::spec::{ExperimentState, SpecDocument, SpecSet, StopSpec, load};
use ldexp_emulator::{InMemory, Seed, State};

const SCHEMA: &str = "../../schema/ldexp.schema.json";

/// The in-memory emulator answers every read at once, so polling once with a no-op waker completes; a future that
/// stays pending would mean a real wait, which this test must never do.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the in-memory reader did not complete");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's remote, with a targeting rule per copy on every flag: LaunchDarkly runs one experiment per rule, so
/// the copies of [`with_copies`] run beside their originals on rules of their own.
fn seed() -> Seed {
    let mut seed = Seed::from_path(&root().join("examples/remote.yaml")).expect("examples/remote.yaml is a valid seed");
    for f in seed.projects.iter_mut().flat_map(|p| p.flags.iter_mut()) {
        for env in f.environments.values_mut() {
            for suffix in COPIES {
                env.rules.push(ldexp_emulator::SeedRule {
                    description: Some(format!("copy-{suffix}")),
                    variation: Some(0),
                    ..ldexp_emulator::SeedRule::default()
                });
            }
        }
    }
    seed
}

const COPIES: [&str; 2] = ["draft", "run"];

fn emulator() -> InMemory {
    InMemory::new(State::from_seed(&seed()).unwrap())
}

/// The iteration whose flags an export reads: the pending draft or the current iteration.
fn iterations(e: &Experiment) -> impl Iterator<Item = &IterationRep> {
    e.draft_iteration.as_deref().into_iter().chain(e.current_iteration.as_deref())
}

/// Every experiment of every seeded environment, and every flag's legacy experiments, as spec documents named
/// by file.
fn export_all(mem: &InMemory) -> BTreeMap<String, SpecDocument> {
    let mut docs = BTreeMap::new();
    for p in &seed().projects {
        let mut flags: BTreeMap<String, FeatureFlag> = BTreeMap::new();
        for f in &p.flags {
            let snap = block_on(ldexp_core::client::PlanReads::get_flag(mem, &p.key, &f.key)).unwrap().unwrap();
            flags.insert(f.key.clone(), snap.flag);
        }
        for env in &p.environments {
            let list =
                block_on(ldexp_core::client::PlanReads::list_experiments(mem, &p.key, env.key())).unwrap().unwrap();
            for e in list {
                let needed: BTreeMap<String, FeatureFlag> = iterations(&e)
                    .flat_map(|it| it.flags.keys())
                    .filter_map(|k| flags.get(k).map(|f| (k.clone(), f.clone())))
                    .collect();
                let spec = export_experiment(&e, &needed, &p.key).unwrap_or_else(|err| panic!("{err}"));
                docs.insert(format!("{}-{}-{}.yaml", p.key, env.key(), e.key), SpecDocument::Experiment(spec));
            }
        }
        for f in flags.values() {
            if let Some(spec) = export_legacy(f, &p.key) {
                docs.insert(format!("{}-legacy-{}.yaml", p.key, f.key), SpecDocument::LegacyFlagExperiments(spec));
            }
        }
    }
    docs
}

/// Writes `docs` as YAML files into a fresh directory and loads them back, as `ldexp export` then `ldexp plan`
/// would.
fn write_and_load(scenario: &str, docs: &BTreeMap<String, SpecDocument>) -> SpecSet {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("export_roundtrip").join(scenario);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, doc) in docs {
        let yaml = to_yaml(doc, SCHEMA);
        assert!(yaml.starts_with(&format!("# yaml-language-server: $schema={SCHEMA}\n")));
        std::fs::write(dir.join(name), yaml).unwrap();
    }
    load(&[&dir]).unwrap_or_else(|e| match e {
        ldexp_core::Error::Spec { diagnostics } => {
            panic!("exported specs do not load:\n{}", diagnostics.iter().map(|d| format!("{d}\n")).collect::<String>())
        }
        other => panic!("{other}"),
    })
}

fn remote_for(mem: &InMemory, specs: &SpecSet) -> RemoteState {
    block_on(fetch_remote(mem, &Requirements::of(specs))).unwrap()
}

fn plan(mem: &InMemory, specs: &SpecSet) -> Plan {
    ldexp_planner::plan(specs, &remote_for(mem, specs)).unwrap_or_else(|e| panic!("{e}: {:#?}", e.problems()))
}

/// Applies `plan` with the real applier (which binds the flag versions that earlier starts and stops move); every
/// change must succeed.
fn apply(mem: &InMemory, plan: &Plan) {
    let options = ldexp_core::apply::ApplyOptions {
        concurrency: 1,
        retry_delay: std::time::Duration::ZERO,
        ..ldexp_core::apply::ApplyOptions::default()
    };
    let report = block_on(ldexp_core::apply::apply(plan, mem, &options));
    assert!(report.succeeded(), "{report:#?}");
}

/// Exports the emulator's state, writes and loads it, plans it against the same state: nothing to do.
/// Returns the documents, for scenarios that change them and apply.
fn assert_round_trip(scenario: &str, mem: &InMemory) -> BTreeMap<String, SpecDocument> {
    let docs = export_all(mem);
    assert!(!docs.is_empty());
    let specs = write_and_load(scenario, &docs);
    let p = plan(mem, &specs);
    assert!(
        p.changes.is_empty(),
        "{scenario}: exported specs plan changes: {}",
        serde_json::to_string_pretty(&p).unwrap()
    );
    assert!(p.warnings.is_empty(), "{scenario}: {:#?}", p.warnings);
    assert!(p.unmanaged.is_empty(), "{scenario}: {:#?}", p.unmanaged);
    docs
}

/// Applies `docs` (changed specs) to the emulator, checking that a second plan is empty.
fn converge(scenario: &str, mem: &InMemory, docs: &BTreeMap<String, SpecDocument>) {
    let specs = write_and_load(&format!("{scenario}-input"), docs);
    let p = plan(mem, &specs);
    assert!(!p.is_empty(), "{scenario}: the changed specs should change something");
    apply(mem, &p);
    assert!(plan(mem, &specs).is_empty(), "{scenario}: not converged");
}

fn experiments_mut(
    docs: &mut BTreeMap<String, SpecDocument>,
) -> impl Iterator<Item = &mut ldexp_core::spec::ExperimentSpec> {
    docs.values_mut().filter_map(|d| match d {
        SpecDocument::Experiment(e) => Some(e),
        _ => None,
    })
}

fn states(docs: &BTreeMap<String, SpecDocument>) -> Vec<(String, ExperimentState)> {
    docs.iter()
        .filter_map(|(n, d)| match d {
            SpecDocument::Experiment(e) => Some((n.clone(), e.state)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_seeded_remote_round_trips() {
    let mem = emulator();
    let docs = assert_round_trip("seed", &mem);
    assert!(docs.keys().any(|k| k.contains("-legacy-")), "the seed has legacy experiments: {:?}", docs.keys());
}

/// Copies of every seeded experiment under new keys, as drafts and as running experiments, each on the flags' rule
/// of its copy, so every lifecycle state can be reached from creation.
fn with_copies(docs: &BTreeMap<String, SpecDocument>) -> BTreeMap<String, SpecDocument> {
    let mut out = docs.clone();
    for (name, doc) in docs {
        let SpecDocument::Experiment(e) = doc else { continue };
        for (suffix, state) in [("draft", ExperimentState::Draft), ("run", ExperimentState::Running)] {
            let mut c = e.clone();
            c.key = format!("{}-{suffix}", e.key);
            c.name = format!("{} ({suffix})", e.name);
            c.state = state;
            c.stop = None;
            for (_, f) in c.iteration.flags.iter_mut() {
                f.rule = Some(format!("copy-{suffix}"));
                f.rule_id = None;
            }
            out.insert(name.replace(".yaml", &format!("-{suffix}.yaml")), SpecDocument::Experiment(c));
        }
    }
    out
}

#[test]
fn every_lifecycle_state_round_trips() {
    let mem = emulator();
    let seeded = assert_round_trip("seed-again", &mem);

    converge("created", &mem, &with_copies(&seeded));
    let mut docs = assert_round_trip("created", &mem);
    let created = states(&docs);
    assert!(created.iter().any(|(_, s)| *s == ExperimentState::Draft), "{created:?}");
    assert!(created.iter().any(|(_, s)| *s == ExperimentState::Running), "{created:?}");

    // Drafts start; running experiments stop with their baseline as the winner.
    for e in experiments_mut(&mut docs) {
        match e.state {
            ExperimentState::Draft => e.state = ExperimentState::Running,
            ExperimentState::Running => {
                let baseline = e.iteration.treatments.iter().find(|t| t.baseline).unwrap().name.clone();
                e.state = ExperimentState::Stopped;
                e.stop = Some(StopSpec { winner: baseline, reason: Some("inconclusive".into()) });
            }
            _ => {}
        }
    }
    converge("started-and-stopped", &mem, &docs);
    let mut docs = assert_round_trip("started-and-stopped", &mem);
    let now = states(&docs);
    assert!(now.iter().any(|(_, s)| *s == ExperimentState::Stopped), "{now:?}");
    assert!(now.iter().any(|(_, s)| *s == ExperimentState::Running), "{now:?}");

    // New designs everywhere: stopped experiments run again, running ones restart with a justification.
    for e in experiments_mut(&mut docs) {
        e.state = ExperimentState::Running;
        e.stop = None;
        e.iteration.hypothesis.push_str(" Second design.");
        e.iteration.change_justification = Some("second design".into());
    }
    converge("restarted", &mem, &docs);
    let mut docs = assert_round_trip("restarted", &mem);
    assert!(states(&docs).iter().all(|(_, s)| *s == ExperimentState::Running));

    // A draft prepared behind each running iteration: the export describes what runs, and still plans empty.
    for e in experiments_mut(&mut docs) {
        e.state = ExperimentState::Draft;
        e.iteration.hypothesis.push_str(" Third design.");
    }
    converge("drafts-behind-running", &mem, &docs);
    let mut docs = assert_round_trip("drafts-behind-running", &mem);
    assert!(states(&docs).iter().all(|(_, s)| *s == ExperimentState::Running));
    assert!(experiments_mut(&mut docs).all(|e| !e.iteration.hypothesis.contains("Third design")));

    // Everything archived (running ones are stopped first).
    for e in experiments_mut(&mut docs) {
        e.state = ExperimentState::Archived;
    }
    converge("archived", &mem, &docs);
    let mut docs = assert_round_trip("archived", &mem);
    assert!(states(&docs).iter().all(|(_, s)| *s == ExperimentState::Archived));

    // Restored: each comes back in the state of its last iteration, stopped with the winner the archive chose.
    for e in experiments_mut(&mut docs) {
        e.state = ExperimentState::Draft;
    }
    let specs = write_and_load("restored-input", &docs);
    apply(&mem, &plan(&mem, &specs));
    let docs = assert_round_trip("restored", &mem);
    assert!(states(&docs).iter().all(|(_, s)| *s == ExperimentState::Stopped), "{:?}", states(&docs));
}

#[test]
fn changed_legacy_experiments_round_trip() {
    let mem = emulator();
    let mut docs = assert_round_trip("legacy-seed", &mem);
    let mut changed = 0;
    for d in docs.values_mut() {
        if let SpecDocument::LegacyFlagExperiments(l) = d {
            for m in &mut l.metrics {
                m.environments = vec!["production".into(), "staging".into()];
            }
            l.metrics.push(ldexp_core::spec::LegacyMetricSpec { key: "signup-completed".into(), environments: vec![] });
            changed += 1;
        }
    }
    assert!(changed > 0);
    converge("legacy-changed", &mem, &docs);
    let docs = assert_round_trip("legacy-changed", &mem);
    let legacy: Vec<&SpecDocument> =
        docs.values().filter(|d| matches!(d, SpecDocument::LegacyFlagExperiments(_))).collect();
    assert!(legacy.iter().any(|d| matches!(d, SpecDocument::LegacyFlagExperiments(l)
        if l.metrics.iter().any(|m| m.key == "signup-completed"))));
}
