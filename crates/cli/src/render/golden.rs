//! Real plans for the rendering tests: the planner's output for `testdata/specs.yaml` against the emulator seeded with
//! `testdata/seed.yaml` (every action, risk, refusal and divergence in one plan), and the golden plans the planner's
//! own scenario tests keep. Renderings are only ever snapshotted from plans the planner really makes.

use std::path::Path;

use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::Plan;
use ldexp_core::remote::Requirements;
use ldexp_emulator::{InMemory, Seed, State};
use ldexp_planner::PlanOptions;

/// The gallery plan; with `prune`, the unmanaged running experiment is stopped and archived too.
pub(crate) fn gallery(prune: bool) -> Plan {
    let seed = Seed::from_str(include_str!("testdata/seed.yaml")).expect("the gallery seed parses");
    let emu = InMemory::new(State::from_seed(&seed).expect("the gallery seed is consistent"));
    let specs = ldexp_core::spec::load_str("specs.yaml", include_str!("testdata/specs.yaml"))
        .unwrap_or_else(|e| panic!("the gallery specs load: {e:?}"));
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let remote = runtime.block_on(fetch_remote(&emu, &Requirements::of(&specs))).expect("the gallery fetch");
    ldexp_planner::plan_with(&specs, &remote, &PlanOptions { prune })
        .unwrap_or_else(|e| panic!("the gallery plans: {:#?}", e.problems()))
}

/// A plan with nothing in it, as the planner makes when the remote matches the specs.
pub(crate) fn empty() -> Plan {
    let mut plan = gallery(false);
    plan.changes.clear();
    plan.unmanaged.clear();
    plan.warnings.clear();
    plan.divergences.clear();
    plan.summary = ldexp_core::plan::Summary::default();
    plan
}

/// Every plan the planner's golden tests keep (`crates/planner/tests/snapshots/*.snap` whose body is a plan, or one
/// change of a plan, which is wrapped in one), by file name.
pub(crate) fn planner_goldens() -> Vec<(String, Plan)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../planner/tests/snapshots");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the planner's snapshots") {
        let path = entry.expect("a snapshot").path();
        let text = std::fs::read_to_string(&path).expect("a readable snapshot");
        // insta's header is the first `---`-fenced block.
        let body = text.splitn(3, "---\n").nth(2).unwrap_or_default();
        let plan = serde_json::from_str::<Plan>(body).ok().or_else(|| {
            let change = serde_json::from_str::<ldexp_core::plan::Change>(body).ok()?;
            let mut plan = empty();
            plan.summary = ldexp_core::plan::Summary::of(std::slice::from_ref(&change), 0);
            plan.changes.push(change);
            Some(plan)
        });
        if let Some(plan) = plan {
            out.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), plan));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 20, "only {} golden plans found in {}", out.len(), dir.display());
    out
}
