//! Property tests against the emulator: for random specs and random remote states (themselves built by
//! applying earlier random plans, sometimes only partly, as a crashed apply would), applying a plan makes the
//! next plan empty; planning is byte-deterministic; nothing unmanaged is touched without `prune`; and every
//! request's postconditions are false just before it is sent and true just after, so the applier never mistakes a
//! lost response for success.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use futures::executor::block_on;
use ldexp_core::api::Experiment;
use ldexp_core::apply::{ApplyOptions, OutcomeStatus};
use ldexp_core::client::ObjectReads;
use ldexp_core::client::{Answer, Transport};
use ldexp_core::design::Design;
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::{Address, Expectation, Method, Plan, PlannedRequest};
use ldexp_core::remote::{RemoteState, Requirements};
use ldexp_core::spec::{
    ExperimentSpec, ExperimentState, FlagSpec, IterationSpec, LegacyFlagExperimentsSpec, LegacyMetricSpec, Located,
    MetricRef, MetricRefDetailed, SourceLocation, SpecSet, StopSpec, TreatmentSpec, VariationRef,
};
use ldexp_core::verify::{Check, Object, check_all};
use ldexp_emulator::{InMemory, Seed, State};
use ldexp_planner::{PlanOptions, plan_with};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SEED: &str = r#"
projects:
  - key: demo
    environments: [production, staging]
    randomizationUnits: [user, device]
    metrics:
      - { key: m1, kind: custom, eventKey: e1, randomizationUnits: [user, device] }
      - { key: m2, kind: custom, eventKey: e2, isNumeric: true, randomizationUnits: [user, device] }
      - { key: m3, kind: pageview, randomizationUnits: [user, device] }
    metricGroups:
      - { key: g1, kind: funnel, metrics: [m3, m1] }
    flags:
      # Each experiment key runs on rules of its own (LaunchDarkly runs one experiment per rule), two per flag so a
      # design can move between them.
      - key: f1
        variations: [ { name: a, value: a }, { name: b, value: b }, { name: c, value: c } ]
        environments:
          production: &f1-rules { on: true, rules: [
            { description: r0a, variation: 1, clauses: [] }, { description: r0b, variation: 1, clauses: [] },
            { description: r1a, variation: 1, clauses: [] }, { description: r1b, variation: 1, clauses: [] },
            { description: r2a, variation: 1, clauses: [] }, { description: r2b, variation: 1, clauses: [] } ] }
          staging: *f1-rules
      - key: f2
        variations: [ { name: "off", value: false }, { name: "on", value: true } ]
        environments:
          production: &f2-rules { on: true, rules: [
            { description: s0, variation: 0, clauses: [] }, { description: s1, variation: 0, clauses: [] },
            { description: s2, variation: 0, clauses: [] } ] }
          staging: *f2-rules
      - key: lg
        variations: [ { name: x, value: 1 }, { name: y, value: 2 } ]
        environments:
          production: { on: true }
          staging: { on: true }
        experiments:
          baselineIdx: 0
          items:
            - { metricKey: m1, environments: [production] }
            - { metricKey: m2, environments: [production, staging] }
"#;

fn loc() -> SourceLocation {
    SourceLocation { file: "prop.yaml".into(), line: 1, column: 1 }
}

fn located<T>(spec: T) -> Located<T> {
    Located { spec, location: loc(), field_locations: Default::default() }
}

/// One random experiment: key index, environments, state, and design knobs.
#[derive(Debug, Clone)]
struct Exp {
    key: usize,
    envs: u8,
    state: ExperimentState,
    name: bool,
    hypothesis: bool,
    split: bool,
    metrics: u8,
    primary_group: bool,
    rule_beta: bool,
    with_f2: bool,
    unit_device: bool,
    reshuffle: bool,
    attrs: u8,
    winner: bool,
    nie: bool,
}

fn exp() -> impl Strategy<Value = Exp> {
    (
        (0usize..3, 1u8..4, 0u8..4, any::<bool>(), any::<bool>(), any::<bool>(), 0u8..8, any::<bool>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), 0u8..4, any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (key, envs, st, name, hypothesis, split, metrics, primary_group),
                (rule_beta, with_f2, unit_device, reshuffle, attrs, winner, nie),
            )| Exp {
                key,
                envs,
                state: [
                    ExperimentState::Draft,
                    ExperimentState::Running,
                    ExperimentState::Stopped,
                    ExperimentState::Archived,
                ][usize::from(st)],
                name,
                hypothesis,
                split,
                metrics,
                primary_group,
                rule_beta,
                with_f2,
                unit_device,
                reshuffle,
                attrs,
                winner,
                nie,
            },
        )
}

fn experiment_spec(e: &Exp) -> ExperimentSpec {
    let mut metrics: Vec<MetricRef> = Vec::new();
    for (bit, key) in [(1, "m1"), (2, "m2"), (4, "m3")] {
        if e.metrics & bit != 0 {
            metrics.push(MetricRef::Key(key.into()));
        }
    }
    let primary = if e.primary_group {
        metrics.push(MetricRef::Detailed(MetricRefDetailed { key: "g1".into(), group: true }));
        "g1".to_owned()
    } else {
        if metrics.is_empty() {
            metrics.push(MetricRef::Key("m2".into()));
        }
        metrics[0].key().to_owned()
    };
    let mut flags = ldexp_core::spec::FlagMap::new();
    flags.insert(
        "f1".to_owned(),
        FlagSpec {
            rule: Some(format!("r{}{}", e.key, if e.rule_beta { "b" } else { "a" })),
            rule_id: None,
            not_in_experiment_variation: e.nie.then(|| VariationRef::Text("c".into())),
        },
    );
    if e.with_f2 {
        flags.insert("f2".to_owned(), FlagSpec { rule: Some(format!("s{}", e.key)), ..FlagSpec::default() });
    }
    let (a, b) = if e.split { (50.0, 50.0) } else { (30.0, 70.0) };
    let treatment = |name: &str, baseline: bool, pct: f64, v1: &str, v2: bool| {
        let mut variations = ldexp_core::spec::FlagMap::new();
        variations.insert("f1".to_owned(), VariationRef::Text(v1.to_owned()));
        if e.with_f2 {
            variations.insert("f2".to_owned(), VariationRef::Bool(v2));
        }
        TreatmentSpec {
            name: name.to_owned(),
            baseline,
            allocation_percent: ldexp_core::spec::Percent::new(pct).unwrap(),
            variations,
        }
    };
    let environments: Vec<String> = [(1, "production"), (2, "staging")]
        .into_iter()
        .filter(|(bit, _)| e.envs & bit != 0)
        .map(|(_, env)| env.to_owned())
        .collect();
    let attrs = ["country", "plan"];
    ExperimentSpec {
        project: "demo".into(),
        environment: None,
        environments: Some(environments),
        key: format!("exp-{}", e.key),
        name: if e.name { format!("Experiment {}", e.key) } else { format!("Renamed {}", e.key) },
        description: e.hypothesis.then(|| "described".to_owned()),
        maintainer_id: None,
        tags: None,
        methodology: None,
        analysis_config: None,
        data_source: None,
        holdout_id: None,
        holdout: None,
        layer: None,
        state: e.state,
        iteration: IterationSpec {
            hypothesis: if e.hypothesis { "h1".into() } else { "h2".into() },
            can_reshuffle_traffic: Some(e.reshuffle),
            randomization_unit: Some(if e.unit_device { "device" } else { "user" }.to_owned()),
            attributes: Some(
                attrs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| e.attrs & (1 << i) != 0)
                    .map(|(_, a)| (*a).to_owned())
                    .collect(),
            ),
            change_justification: Some("design changed".into()),
            primary_metric: primary,
            metrics,
            flags,
            treatments: vec![treatment("control", true, a, "a", false), treatment("variant", false, b, "b", true)],
        },
        stop: matches!(e.state, ExperimentState::Stopped | ExperimentState::Archived).then(|| StopSpec {
            winner: if e.winner { "variant" } else { "control" }.to_owned(),
            reason: Some("done".into()),
        }),
    }
}

/// An experiment whose design is one of two per key, so that histories run, stop, archive and redraft the same
/// designs and the target meets its own design in every slot.
fn pooled_exp() -> impl Strategy<Value = Exp> {
    (0usize..3, any::<bool>(), 0u8..4, 1u8..4, any::<bool>(), any::<bool>()).prop_map(
        |(key, second, st, envs, name, winner)| {
            let d = key * 2 + usize::from(second);
            Exp {
                key,
                envs,
                state: [
                    ExperimentState::Draft,
                    ExperimentState::Running,
                    ExperimentState::Stopped,
                    ExperimentState::Archived,
                ][usize::from(st)],
                name,
                hypothesis: d % 2 == 0,
                split: d % 3 == 0,
                metrics: [1, 3, 5, 6, 2, 7][d],
                primary_group: d == 4,
                rule_beta: d % 2 == 1,
                with_f2: d >= 3,
                unit_device: d == 5,
                reshuffle: d != 2,
                attrs: [0, 1, 2, 3, 1, 0][d],
                winner,
                nie: d == 1,
            }
        },
    )
}

fn legacy() -> impl Strategy<Value = Option<(u8, Vec<(u8, u8)>)>> {
    proptest::option::of((0u8..2, proptest::collection::vec((0u8..3, 0u8..4), 0..4)))
}

fn spec_set(exps: &[Exp], legacy: &Option<(u8, Vec<(u8, u8)>)>) -> SpecSet {
    let mut set = SpecSet { digest: "sha256:prop".into(), ..SpecSet::default() };
    let mut seen = BTreeSet::new();
    for e in exps {
        if seen.insert(e.key) {
            set.experiments.push(located(experiment_spec(e)));
        }
    }
    if let Some((baseline, items)) = legacy {
        let mut keys = BTreeSet::new();
        let metrics = items
            .iter()
            .filter(|(m, _)| keys.insert(*m))
            .map(|(m, envs)| LegacyMetricSpec {
                key: format!("m{}", m + 1),
                environments: [(1, "production"), (2, "staging")]
                    .into_iter()
                    .filter(|(bit, _)| envs & bit != 0)
                    .map(|(_, e)| e.to_owned())
                    .collect(),
            })
            .collect();
        set.legacy.push(located(LegacyFlagExperimentsSpec {
            project: "demo".into(),
            flag: "lg".into(),
            baseline: VariationRef::Text(if *baseline == 0 { "x" } else { "y" }.into()),
            metrics,
        }));
    }
    set
}

fn fetch(emu: &InMemory, specs: &SpecSet) -> RemoteState {
    block_on(fetch_remote(emu, &Requirements::of(specs))).unwrap()
}

/// The emulator behind a connection that stops carrying writes after `limit` of them, as a crash would: the
/// applier under test is the real one, binding fields and ordering changes as it does in production.
struct Cut<'a> {
    emu: &'a InMemory,
    left: std::sync::atomic::AtomicUsize,
}

impl Transport for Cut<'_> {
    async fn execute(&self, request: &PlannedRequest, resource: &str) -> Result<Answer, ldexp_core::Error> {
        use std::sync::atomic::Ordering;
        if request.method != Method::Get
            && self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err()
        {
            return Err(ldexp_core::Error::Transport {
                resource: resource.to_owned(),
                url: "cut".to_owned(),
                reason: "the apply crashed".to_owned(),
            });
        }
        self.emu.execute(request, resource).await
    }
}

/// Applies `plan` with the real applier until `limit` writes went through; every write sent must succeed.
fn apply(emu: &InMemory, plan: &Plan, limit: usize) -> Result<(), TestCaseError> {
    let cut = Cut { emu, left: std::sync::atomic::AtomicUsize::new(limit) };
    let options = ApplyOptions { concurrency: 1, retry_delay: std::time::Duration::ZERO, ..ApplyOptions::default() };
    let report = block_on(ldexp_core::apply::apply(plan, &cut, &options));
    for o in &report.outcomes {
        if let OutcomeStatus::Failed { error, request, .. } = &o.status {
            prop_assert!(
                matches!(error, ldexp_core::Error::Transport { .. }),
                "{} {request}: {error} ({:?})",
                o.address,
                error.hint()
            );
        }
    }
    Ok(())
}

/// The value a bound field takes from the emulator now.
fn flag_version(emu: &InMemory, v: &ldexp_core::plan::BoundValue) -> Option<serde_json::Value> {
    let ldexp_core::plan::BoundValue::FlagVersion { project, flag, environment } = v else { return None };
    let Object::Flag(Some(snap)) = read(emu, &Address::Legacy { project: project.clone(), flag: flag.clone() }) else {
        return None;
    };
    snap.flag.environments.get(environment).map(|e| e.version.into())
}

fn managed(specs: &SpecSet) -> BTreeSet<Address> {
    let mut out = BTreeSet::new();
    for e in &specs.experiments {
        for env in e.spec.target_environments() {
            out.insert(Address::Experiment {
                project: e.spec.project.clone(),
                environment: env.to_owned(),
                key: e.spec.key.clone(),
            });
        }
    }
    for l in &specs.legacy {
        out.insert(Address::Legacy { project: l.spec.project.clone(), flag: l.spec.flag.clone() });
    }
    out
}

/// The experiment key a request path or create body names.
fn request_key(r: &ldexp_core::plan::PlannedRequest) -> Option<String> {
    let rest = r.path.split("/experiments").nth(1)?;
    match rest.trim_start_matches('/').split('/').next() {
        Some(k) if !k.is_empty() => Some(k.to_owned()),
        _ => r.body.as_ref()?.get("key")?.as_str().map(str::to_owned),
    }
}

/// Plans `specs`, dropping the specs that have problems (an impossible transition such as stopping what never
/// ran is a plan error by design) until the rest plans; returns the specs planned and the plan.
fn plannable(emu: &InMemory, mut specs: SpecSet, options: &PlanOptions) -> (SpecSet, RemoteState, Plan) {
    loop {
        let remote = fetch(emu, &specs);
        match plan_with(&specs, &remote, options) {
            Ok(p) => return (specs, remote, p),
            Err(e) => {
                let bad: BTreeSet<String> = e
                    .problems()
                    .iter()
                    .map(|p| match &p.address {
                        Address::Experiment { key, .. } => key.clone(),
                        Address::Legacy { flag, .. } | Address::LegacyResults { flag, .. } => flag.clone(),
                        Address::Metric { key, .. }
                        | Address::MetricGroup { key, .. }
                        | Address::Layer { key, .. }
                        | Address::Holdout { key, .. } => key.clone(),
                        Address::Settings { project } => project.clone(),
                    })
                    .collect();
                assert!(!bad.is_empty());
                specs.experiments.retain(|e| !bad.contains(&e.spec.key));
                specs.legacy.retain(|l| !bad.contains(&l.spec.flag));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn applying_a_plan_converges(
        history in proptest::collection::vec((proptest::collection::vec(exp(), 0..4), legacy(), 0usize..8, any::<bool>()), 0..6),
        target in proptest::collection::vec(exp(), 0..4),
        target_legacy in legacy(),
        prune in any::<bool>(),
        crash in any::<u16>(),
    ) {
        let emu = InMemory::new(State::from_seed(&Seed::from_str(SEED).unwrap()).unwrap());
        // Build a random remote state: earlier spec sets, each applied fully or cut off part-way.
        for (exps, leg, cut, full) in &history {
            let (_, _, p) = plannable(&emu, spec_set(exps, leg), &PlanOptions::default());
            apply(&emu, &p, if *full { usize::MAX } else { *cut })?;
        }
        let options = PlanOptions { prune };
        let (specs, remote, first) = plannable(&emu, spec_set(&target, &target_legacy), &options);
        // Deterministic to the byte.
        let again = plan_with(&specs, &remote, &options).unwrap();
        prop_assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&again).unwrap());
        // Nothing unmanaged is touched without prune.
        if !prune {
            let ours = managed(&specs);
            let keys: BTreeSet<String> = specs.experiments.iter().map(|e| e.spec.key.clone()).collect();
            for c in &first.changes {
                prop_assert!(ours.contains(&c.address), "{} is not managed", c.address);
                for r in &c.requests {
                    if let Some(k) = request_key(r) {
                        prop_assert!(keys.contains(&k), "{} {} targets unmanaged `{k}`", r.method, r.path);
                    }
                }
            }
            let unmanaged: BTreeSet<&Address> = first.unmanaged.iter().map(|u| &u.address).collect();
            prop_assert!(first.changes.iter().all(|c| !unmanaged.contains(&c.address)));
        }
        // Crash after `cut` requests: the next plan is exactly the rest of this one (docs/semantics.md).
        let sent: Vec<_> = first.changes.iter().flat_map(|c| c.requests.iter().cloned()).collect();
        let cut = usize::from(crash) % (sent.len() + 1);
        apply(&emu, &first, cut)?;
        let resumed = plan_with(&specs, &fetch(&emu, &specs), &options)
            .map_err(|e| TestCaseError::fail(format!("re-plan after a crash failed: {:?}", e.problems())))?;
        let rest: Vec<_> = resumed.changes.iter().flat_map(|c| c.requests.iter().cloned()).collect();
        // Equal but for bound fields: the resumed plan sees the versions the first requests moved.
        prop_assert!(
            rest.len() == sent.len() - cut && rest.iter().zip(&sent[cut..]).all(|(a, b)| a.sends_the_same_as(b)),
            "after {} of {} requests: {:#?} is not the tail of {:#?}", cut, sent.len(), rest, sent
        );
        apply(&emu, &resumed, usize::MAX)?;
        let after = plan_with(&specs, &fetch(&emu, &specs), &options);
        let after = after.map_err(|e| TestCaseError::fail(format!("re-plan failed: {:?}", e.problems())))?;
        prop_assert!(after.is_empty(), "re-plan is not empty:\n{}", serde_json::to_string_pretty(&after.changes).unwrap());
        if prune {
            prop_assert!(after.unmanaged.iter().all(|u| u.state == "archived"));
        }
    }
}

/// A fresh read of the object `address` names, as the applier makes one after a lost response.
fn read(emu: &InMemory, address: &Address) -> Object {
    block_on(emu.reread(address)).unwrap()
}

/// What a request does, for the coverage count: the instruction kinds of a semantic patch, or the route.
fn request_kind(r: &PlannedRequest) -> String {
    if let Some(ins) = r.body.as_ref().and_then(|b| b.get("instructions")).and_then(|i| i.as_array()) {
        let kinds: Vec<&str> = ins.iter().filter_map(|i| i["kind"].as_str()).collect();
        return kinds.join("+");
    }
    if r.path.starts_with("/api/v2/flags/") {
        "legacyFlagPatch".into()
    } else if r.path.ends_with("/iterations") {
        "createIteration".into()
    } else {
        "createExperiment".into()
    }
}

/// The states in which a loose postcondition would lie, found just before a design-bearing request: each is counted,
/// and the test fails if the generator never produced one.
fn tempting(x: &Experiment, expect: &[Expectation], seen: &mut BTreeSet<&'static str>) {
    let design = expect.iter().find_map(|e| match e {
        Expectation::PendingDesign { design } | Expectation::RunningDesign { design } => Some(design.as_ref()),
        _ => None,
    });
    let Some(d) = design else { return };
    let same = |it: Option<&ldexp_core::api::IterationRep>| it.is_some_and(|it| d.matches_iteration(it));
    let cur = x.current_iteration.as_deref();
    let started = cur.is_some_and(|c| c.status != ldexp_core::api::IterationStatus::NotStarted);
    if started && x.draft_iteration.as_deref().is_some_and(|it| !d.matches_iteration(it)) {
        seen.insert("a stale draft beside a started iteration");
    }
    if cur.is_some_and(|c| c.status == ldexp_core::api::IterationStatus::Stopped) && same(cur) {
        seen.insert("the spec's design in a stopped current iteration");
    }
    if x.is_archived() && (same(cur) || same(x.pending_iteration())) {
        seen.insert("the spec's design in an archived experiment");
    }
    let running_pending = expect.iter().any(|e| matches!(e, Expectation::RunningDesign { .. }));
    if running_pending && same(x.pending_iteration()) {
        seen.insert("the spec's design pending, not running, before a start");
    }
    if !running_pending && started && same(cur) {
        seen.insert("the spec's design current, not pending, before a new iteration");
    }
    if x.previous_iterations.iter().any(|p| Design::from_iteration(p) == *d) {
        seen.insert("the spec's design in a previous iteration");
    }
}

/// For every request of plans over random remote states (stale drafts, stopped and archived iterations, the spec's
/// design in the wrong slot), each postcondition is false on a fresh read just before the request and true just
/// after. A postcondition true before its request would let the applier count a lost request as done.
#[test]
fn postconditions_identify_their_request() {
    let mut kinds: BTreeSet<String> = BTreeSet::new();
    let mut states: BTreeSet<&'static str> = BTreeSet::new();
    let seen = std::cell::RefCell::new((&mut kinds, &mut states));
    let some_exp = || prop_oneof![exp(), pooled_exp(), pooled_exp()];
    let strategy = (
        proptest::collection::vec(
            (proptest::collection::vec(some_exp(), 0..4), legacy(), 0usize..8, any::<bool>()),
            0..7,
        ),
        proptest::collection::vec(some_exp(), 1..4),
        // Designs the history used, brought back in another state: equal designs in every slot.
        proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..4), 0..3),
        legacy(),
        any::<bool>(),
    );
    // The property means something only if the generator reached every request kind and every tempting state: random
    // batches run until it has (usually the first or second), and the test fails if 32 did not. With eight, a rare
    // state was missed in about one run of eight; a batch stops as soon as everything was seen, so the bound costs
    // nothing in the common case.
    let want_kinds = [
        "createExperiment",
        "createIteration",
        "legacyFlagPatch",
        "startIteration",
        "stopIteration",
        "archiveExperiment",
        "restoreExperiment",
        "updateName",
        "updateDescription",
    ];
    let want_states = [
        "a stale draft beside a started iteration",
        "the spec's design in a stopped current iteration",
        "the spec's design in an archived experiment",
        "the spec's design pending, not running, before a start",
        "the spec's design current, not pending, before a new iteration",
        "the spec's design in a previous iteration",
    ];
    for _batch in 0..32 {
        let config = Config { cases: 128, max_shrink_iters: 2000, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |(history, fresh, reuse, target_legacy, prune)| {
            let emu = InMemory::new(State::from_seed(&Seed::from_str(SEED).unwrap()).unwrap());
            for (exps, leg, cut, full) in &history {
                let (_, _, p) = plannable(&emu, spec_set(exps, leg), &PlanOptions::default());
                apply(&emu, &p, if *full { usize::MAX } else { *cut })?;
            }
            let used: Vec<&Exp> = history.iter().flat_map(|(exps, ..)| exps.iter()).collect();
            let mut target: Vec<Exp> = Vec::new();
            if !used.is_empty() {
                for (pick, state) in &reuse {
                    let mut e = used[pick.index(used.len())].clone();
                    e.state = [
                        ExperimentState::Draft,
                        ExperimentState::Running,
                        ExperimentState::Stopped,
                        ExperimentState::Archived,
                    ][usize::from(*state)];
                    target.push(e);
                }
            }
            target.extend(fresh);
            let (_, _, plan) = plannable(&emu, spec_set(&target, &target_legacy), &PlanOptions { prune });
            let mut seen = seen.borrow_mut();
            for c in &plan.changes {
                // The archived case tempts before the restore: the design-bearing requests come after it.
                if let Object::Experiment(Some(x)) = read(&emu, &c.address) {
                    let all: Vec<Expectation> = c.requests.iter().flat_map(|r| r.expect.iter().cloned()).collect();
                    if x.is_archived() {
                        tempting(&x, &all, seen.1);
                    }
                }
                for (i, r) in c.requests.iter().enumerate() {
                    prop_assert!(!r.expect.is_empty(), "{} request {i} has no postcondition", c.address);
                    let before = read(&emu, &c.address);
                    if let Object::Experiment(Some(x)) = &before {
                        tempting(x, &r.expect, seen.1);
                    }
                    prop_assert!(
                        matches!(check_all(&r.expect, &before), Check::Unsatisfied(_)),
                        "{} request {i} ({} {}): its postconditions already hold before it is sent, so a lost response \
                         would be taken for success\nexpect: {}\nobject: {before:?}",
                        c.address,
                        r.method,
                        r.path,
                        serde_json::to_string(&r.expect).unwrap()
                    );
                    // Bound fields filled in from the flag as the applier does, just before sending.
                    let sent = r.with_bound(|v| flag_version(&emu, v)).map_err(TestCaseError::fail)?;
                    let resp = emu.with_state(|s| s.handle_planned(&sent));
                    prop_assert!(
                        (200..300).contains(&resp.status),
                        "{} {} answered {}: {:?}",
                        r.method,
                        r.path,
                        resp.status,
                        resp.body
                    );
                    let after = read(&emu, &c.address);
                    prop_assert_eq!(
                        check_all(&r.expect, &after),
                        Check::Satisfied,
                        "{} request {} ({} {}): the postconditions do not hold after it took effect",
                        c.address,
                        i,
                        r.method,
                        r.path
                    );
                    seen.0.insert(request_kind(r));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let (k, st) = &*seen.borrow();
        let joined = covered_kinds(k);
        if want_kinds.iter().all(|w| joined.contains(w)) && want_states.iter().all(|w| st.contains(w)) {
            break;
        }
    }
    let joined = covered_kinds(&kinds);
    for k in want_kinds {
        assert!(joined.contains(&k), "no `{k}` request was generated; kinds seen: {kinds:?}");
    }
    for s in want_states {
        assert!(states.contains(s), "the generator never produced {s}; seen: {states:?}");
    }
}

/// The instruction kinds and routes of the requests seen, each once.
fn covered_kinds(kinds: &BTreeSet<String>) -> Vec<&str> {
    kinds.iter().flat_map(|k| k.split('+')).collect()
}
