//! A dependency chain (settings → metric → funnel group → experiment) applied against the in-memory emulator: it
//! converges in one apply, and an apply killed after any number of writes leaves a plan of exactly what is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::block_on;
use ldexp_core::Error;
use ldexp_core::apply::{ApplyOptions, OutcomeStatus, apply};
use ldexp_core::client::{Answer, Transport};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::{Method, Plan, PlannedRequest};
use ldexp_core::remote::Requirements;
use ldexp_core::spec::{SpecSet, load_str};
use ldexp_emulator::{InMemory, Seed, State};

fn emulator() -> InMemory {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seed = Seed::from_path(&root.join("examples/remote.yaml")).unwrap();
    // A unit the settings spec adds must be a context kind of the project.
    seed.projects[0].context_kinds = vec!["user".into(), "organization".into(), "device".into()];
    InMemory::new(State::from_seed(&seed).unwrap())
}

fn specs() -> SpecSet {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let metrics = std::fs::read_to_string(root.join("examples/checkout-metrics.yaml")).unwrap();
    let experiment = std::fs::read_to_string(root.join("examples/checkout-button-placement.yaml")).unwrap();
    // The experiment reserves traffic in the examples' layer: a crash between its create, its reservation and its
    // start must resume too.
    let layer = std::fs::read_to_string(root.join("examples/checkout-layers.yaml")).unwrap();
    let settings = "kind: ExperimentationSettings\nproject: demo\nrandomizationUnits:\n  - {randomizationUnit: user, \
                    default: true}\n  - {randomizationUnit: organization}\n  - {randomizationUnit: device}\n";
    // The metric allows the unit the settings add, so it waits for them.
    let metrics = metrics.replace("randomizationUnits: [user]", "randomizationUnits: [user, device]");
    load_str("specs.yaml", &format!("{settings}---\n{metrics}\n---\n{layer}\n---\n{experiment}")).unwrap()
}

fn plan(mem: &InMemory, specs: &SpecSet) -> Plan {
    let remote = block_on(fetch_remote(mem, &Requirements::of(specs))).unwrap();
    ldexp_planner::plan(specs, &remote).unwrap()
}

/// The in-memory emulator, as a process that dies after `writes` writes: every later write fails to connect.
struct Killed<'a> {
    inner: &'a InMemory,
    writes: AtomicUsize,
}

impl Transport for Killed<'_> {
    async fn execute(&self, request: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        if request.method != Method::Get
            && self.writes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err()
        {
            return Err(Error::Transport {
                resource: resource.to_owned(),
                url: request.path.clone(),
                reason: "killed".to_owned(),
            });
        }
        self.inner.execute(request, resource).await
    }
}

fn options() -> ApplyOptions {
    ApplyOptions { concurrency: 1, max_attempts: 1, retry_delay: std::time::Duration::ZERO, ..ApplyOptions::default() }
}

#[test]
fn the_chain_is_applied_in_dependency_order_and_converges() {
    let mem = emulator();
    let specs = specs();
    let first = plan(&mem, &specs);
    let order: Vec<String> = first.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(
        order,
        [
            "experimentation-settings/demo",
            "metric/demo/add-to-cart",
            "metric-group/demo/cart-funnel",
            "layer/demo/checkout-surface",
            "experiment/demo/production/checkout-button-placement"
        ]
    );
    let report = block_on(apply(&first, &mem, &options()));
    assert!(report.succeeded(), "{report:#?}");
    assert!(plan(&mem, &specs).is_empty(), "a second plan is empty");
}

#[test]
fn an_apply_killed_after_k_writes_leaves_a_plan_of_exactly_what_is_left() {
    let specs = specs();
    let total: usize = plan(&emulator(), &specs).changes.iter().map(|c| c.requests.len()).sum();
    assert_eq!(total, 7, "settings, metric, group, layer, experiment create, its reservation and its start");
    for k in 0..=total {
        let mem = emulator();
        let first = plan(&mem, &specs);
        let killed = Killed { inner: &mem, writes: AtomicUsize::new(k) };
        let report = block_on(apply(&first, &killed, &options()));
        let sent: usize = report.outcomes.iter().map(|o| o.requests_done).sum();
        assert_eq!(sent, k, "k = {k}: exactly the writes before the kill took effect");
        // What is left: of each change, the requests not done, unless a dependency failed (then all of them).
        let mut left: Vec<(String, Vec<String>)> = Vec::new();
        for (c, o) in first.changes.iter().zip(&report.outcomes) {
            let rest: Vec<String> =
                c.requests[o.requests_done..].iter().map(|r| format!("{} {}", r.method, r.path)).collect();
            if !rest.is_empty() {
                left.push((c.address.to_string(), rest));
            }
            if k == total {
                assert!(matches!(o.status, OutcomeStatus::Applied));
            }
        }
        let again = plan(&mem, &specs);
        let planned: Vec<(String, Vec<String>)> = again
            .changes
            .iter()
            .filter(|c| !c.requests.is_empty())
            .map(|c| (c.address.to_string(), c.requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()))
            .collect();
        assert_eq!(planned, left, "k = {k}");
        // And the plan of what is left finishes the job.
        assert!(block_on(apply(&again, &mem, &options())).succeeded(), "k = {k}");
        assert!(plan(&mem, &specs).is_empty(), "k = {k}");
    }
}

/// Counts the requests a transport is asked to send.
struct Counting<'a> {
    inner: &'a InMemory,
    sent: AtomicUsize,
}

impl Transport for Counting<'_> {
    async fn execute(&self, request: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.execute(request, resource).await
    }
}

#[test]
fn declaring_every_metric_adds_at_most_one_read() {
    let mem = emulator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let experiment = std::fs::read_to_string(root.join("examples/search-ranking.yaml")).unwrap();
    let alone = load_str("x.yaml", &experiment).unwrap();
    let metrics: Vec<String> =
        ["checkout-conversion", "page-load-ms", "page-view", "search-clicks", "signup-completed"]
            .iter()
            .map(|k| format!("kind: Metric\nproject: demo\nkey: {k}\nname: {k}\neventKind: custom\neventKey: {k}\n"))
            .collect();
    let with = load_str("x.yaml", &format!("{experiment}\n---\n{}", metrics.join("---\n"))).unwrap();
    let count = |specs: &SpecSet| {
        let c = Counting { inner: &mem, sent: AtomicUsize::new(0) };
        block_on(fetch_remote(&c, &Requirements::of(specs))).unwrap();
        c.sent.load(Ordering::SeqCst)
    };
    // The metric list is read for the experiment anyway; the metrics' units add the settings read.
    assert!(count(&with) <= count(&alone) + 1, "{} against {}", count(&with), count(&alone));
}

mod convergence {
    use proptest::prelude::*;

    use super::*;

    /// A catalog spec set: a metric with random name, tags and units, a funnel over it sometimes, settings
    /// sometimes, and the example experiment measuring the metric.
    fn catalog() -> impl Strategy<Value = String> {
        (
            "[A-Z][a-z]{1,8}( [a-z]{1,6})?",
            proptest::collection::vec("[a-z]{2,6}", 0..3),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(name, tags, device, group, settings)| {
                let units = if device { "[user, device]" } else { "[user]" };
                let mut docs = vec![format!(
                    "kind: Metric\nproject: demo\nkey: add-to-cart\nname: {name}\neventKind: custom\neventKey: \
                     add-to-cart\nisNumeric: false\nrandomizationUnits: {units}\ntags: [{}]\n",
                    tags.join(", ")
                )];
                if group {
                    docs.push(
                        "kind: MetricGroup\nproject: demo\nkey: cart-funnel\nname: Cart\ngroupKind: funnel\nmetrics:\n  \
                         - {key: page-view, nameInGroup: Viewed}\n  - {key: add-to-cart, nameInGroup: Added}\n\
                         maintainerId: 569f183514f4432160000007\n"
                            .to_owned(),
                    );
                }
                if settings || device {
                    docs.push(
                        "kind: ExperimentationSettings\nproject: demo\nrandomizationUnits:\n  - {randomizationUnit: \
                         user, default: true}\n  - {randomizationUnit: device}\n"
                            .to_owned(),
                    );
                }
                docs.join("---\n")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Apply, then plan again: empty; and planning twice gives the same plan.
        #[test]
        fn catalog_specs_converge_and_plan_deterministically(first in catalog(), second in catalog()) {
            let mem = emulator();
            for text in [first, second] {
                let specs = load_str("c.yaml", &text).unwrap();
                let p = plan(&mem, &specs);
                prop_assert_eq!(&p, &plan(&mem, &specs));
                let report = block_on(apply(&p, &mem, &options()));
                prop_assert!(report.succeeded(), "{:#?}", report);
                prop_assert!(plan(&mem, &specs).is_empty());
            }
        }
    }
}

#[test]
fn a_group_s_members_and_maintainer_change_under_guards_that_match_its_representation() {
    let mem = emulator();
    let specs = specs();
    assert!(block_on(apply(&plan(&mem, &specs), &mem, &options())).succeeded());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let metrics = std::fs::read_to_string(root.join("examples/checkout-metrics.yaml")).unwrap();
    let edited = metrics
        .replace("randomizationUnits: [user]", "randomizationUnits: [user, device]")
        .replace("  - {key: page-view, nameInGroup: Viewed a page}\n", "")
        .replace("nameInGroup: Checked out", "nameInGroup: Paid")
        .replace("maintainerId: 569f183514f4432160000007", "maintainerId: 0000000000000000000000aa");
    let settings = "kind: ExperimentationSettings\nproject: demo\nrandomizationUnits:\n  - {randomizationUnit: user, \
                    default: true}\n  - {randomizationUnit: organization}\n  - {randomizationUnit: device}\n";
    let specs = load_str("specs.yaml", &format!("{settings}---\n{edited}")).unwrap();
    let p = plan(&mem, &specs);
    let group = p.changes.iter().find(|c| c.address.to_string() == "metric-group/demo/cart-funnel").unwrap();
    let ops: Vec<String> = group.requests[0]
        .body
        .as_ref()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["op"].as_str().unwrap(), o["path"].as_str().unwrap()))
        .collect();
    assert!(
        ops.contains(&"test /metrics/2/nameInGroup".to_owned()) && ops.contains(&"add /maintainerId".to_owned()),
        "{ops:?}"
    );
    let report = block_on(apply(&p, &mem, &options()));
    assert!(report.succeeded(), "{report:#?}");
    assert!(plan(&mem, &specs).is_empty());
}
