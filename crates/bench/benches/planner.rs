//! Planner CPU only (no I/O): `ldexp_planner::plan` on the benchmark fixture at 2,000 and 10,000 experiments.
//! The remote state is read once, before timing, through the in-process emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ldexp_bench::fixture::{FixtureParams, generate};
use ldexp_bench::measure::{PreparedState, planner_inputs};

// The allocator the `ldexp` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

#[divan::bench(args = [2_000, 10_000], sample_count = 10, sample_size = 1)]
fn plan(bencher: divan::Bencher, experiments: usize) {
    let fixture = generate(&FixtureParams { experiments, environments: 4, flags: 500, metrics: 200 }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec_dir = fixture.write_to(dir.path()).unwrap();
    let (specs, remote) = planner_inputs(&spec_dir, &PreparedState::of(&fixture).unwrap()).unwrap();
    bencher.bench_local(|| ldexp_planner::plan(divan::black_box(&specs), divan::black_box(&remote)).unwrap());
}
