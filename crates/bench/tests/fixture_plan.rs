//! The generated fixture plans, through the in-process emulator, to exactly the mix it was generated with, and
//! the plan's GETs against the HTTP emulator number exactly R_min.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ldexp_bench::fixture::{FixtureParams, Kind, generate};
use ldexp_bench::measure::{self, Emulator, PreparedState};
use ldexp_bench::rmin::RMin;
use ldexp_core::plan::Action;

fn small() -> FixtureParams {
    FixtureParams { experiments: 300, environments: 3, flags: 30, metrics: 60 }
}

#[test]
fn the_plan_has_the_generated_mix_of_changes() {
    let fixture = generate(&small()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec_dir = fixture.write_to(dir.path()).unwrap();
    let (specs, remote) = measure::planner_inputs(&spec_dir, &PreparedState::of(&fixture).unwrap()).unwrap();
    let plan = ldexp_planner::plan(&specs, &remote).unwrap();

    let k = |kind| fixture.counts.kinds.get(&kind).copied().unwrap_or(0);
    let s = plan.summary;
    assert_eq!(s.create, k(Kind::CreateRunning) + k(Kind::CreateDraft));
    assert_eq!(s.start, k(Kind::Start));
    assert_eq!(s.stop, k(Kind::Stop));
    assert_eq!(s.restart, k(Kind::Restart));
    assert_eq!(s.update, k(Kind::Update));
    assert_eq!(s.patch_legacy, fixture.counts.legacy_changed);
    assert_eq!(s.archive + s.restore, 0);
    assert_eq!(plan.unmanaged.len(), fixture.counts.unmanaged);
    let writes: usize = plan.changes.iter().map(|c| c.requests.len()).sum();
    assert_eq!(writes, fixture.expected_writes());
    assert!(plan.changes.iter().filter(|c| c.action == Action::Restart).all(|c| c.requests.len() == 2));
}

#[test]
fn the_http_plan_makes_exactly_r_min_requests() {
    let fixture = generate(&small()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec_dir = fixture.write_to(dir.path()).unwrap();
    let (specs, _) = measure::load_specs(&spec_dir).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let figure = runtime.block_on(async {
        let emu = Emulator::start(&PreparedState::of(&fixture).unwrap(), 0, None).await.unwrap();
        let (_, _, figure) = measure::plan(&emu, &specs, 8).await.unwrap();
        emu.stop().await;
        figure
    });
    let rmin = RMin::of(&fixture.counts);
    assert_eq!(figure.requests, rmin.total() as u64, "by route: {:?}", figure.requests_by_route);
    let route = |r: &str| figure.requests_by_route.get(r).copied().unwrap_or(0);
    let (flag_route, other) = if rmin.flags_listed {
        ("GET /api/v2/flags/{projectKey}", "GET /api/v2/flags/{projectKey}/{featureFlagKey}")
    } else {
        ("GET /api/v2/flags/{projectKey}/{featureFlagKey}", "GET /api/v2/flags/{projectKey}")
    };
    assert_eq!(route(flag_route), rmin.flags as u64, "by route: {:?}", figure.requests_by_route);
    assert_eq!(route(other), 0);
    assert_eq!(route("GET /api/v2/projects/{projectKey}/experiments"), rmin.experiment_pages as u64);
    assert_eq!(route("GET /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments"), 0);
    assert!(rmin.total() * 3 < rmin.v1, "v2 lists make the bound several times smaller: {rmin:?}");
}
