//! A dependency chain (settings → metric → funnel group → experiment) applied against the in-memory emulator: it
//! converges in one apply, and an apply killed after any number of writes leaves a plan of exactly what is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use ldexp_core::Error;
use ldexp_core::apply::{ApplyOptions, OutcomeStatus, apply};
use ldexp_core::client::{Answer, Transport};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::{Method, Plan, PlannedRequest};
use ldexp_core::remote::Requirements;
use ldexp_core::spec::{SpecSet, load_str};
use ldexp_emulator::{InMemory, Seed, State};

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the in-memory emulator did not complete");
}

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
    let settings = "kind: ExperimentationSettings\nproject: demo\nrandomizationUnits:\n  - {randomizationUnit: user, \
                    default: true}\n  - {randomizationUnit: organization}\n  - {randomizationUnit: device}\n";
    // The metric allows the unit the settings add, so it waits for them.
    let metrics = metrics.replace("randomizationUnits: [user]", "randomizationUnits: [user, device]");
    load_str("specs.yaml", &format!("{settings}---\n{metrics}\n---\n{experiment}")).unwrap()
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
    assert_eq!(total, 5, "settings, metric, group, experiment create and start");
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
