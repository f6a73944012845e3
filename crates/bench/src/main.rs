//! `ldexp-bench`: generates the fixture, runs every measurement in one process, prints the table and writes
//! `BENCHMARKS.md`. `--check` turns the deterministic figures into an exit status for CI.
// The bench reports on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ldexp_bench::BenchError;
use ldexp_bench::fixture::{FixtureParams, generate};
use ldexp_bench::machine::Machine;
use ldexp_bench::measure::{self, Emulator};
use ldexp_bench::report::{Figures, RunParams};
use ldexp_bench::rmin::RMin;

// The planner-CPU figure is measured in this process: it runs on the allocator the `ldexp` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks ldexp plan and apply against the emulator with injected latency and a per-route rate limit.
#[derive(Debug, Parser)]
#[command(name = "ldexp-bench", version)]
struct Args {
    /// Experiments in the specs (one per environment and key).
    #[arg(long, default_value_t = 2000)]
    experiments: usize,
    #[arg(long, default_value_t = 4)]
    environments: usize,
    #[arg(long, default_value_t = 500)]
    flags: usize,
    #[arg(long, default_value_t = 200)]
    metrics: usize,
    /// Latency the emulator adds to every API response.
    #[arg(long, default_value_t = 25)]
    latency_ms: u64,
    /// Client concurrency (requests in flight) and applier concurrency (objects at once).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests per 10 s window per route for the rate-limited apply.
    #[arg(long, default_value_t = 20)]
    rate_limit: usize,
    /// Requests per 10 s window across the whole account for the second rate-limited apply.
    #[arg(long, default_value_t = 60)]
    rate_limit_global: usize,
    /// Experiments of the planner-CPU and peak-RSS fixture.
    #[arg(long, default_value_t = 10_000)]
    scale_experiments: usize,
    /// Timed planner runs at scale; the median is reported.
    #[arg(long, default_value_t = 9)]
    cpu_runs: usize,
    /// The `ldexp` binary for the RSS figure; default: next to this executable (built if missing).
    #[arg(long)]
    ldexp_bin: Option<PathBuf>,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Print only; do not write the report.
    #[arg(long)]
    no_write: bool,
    /// Skip the serial baseline.
    #[arg(long)]
    skip_baseline: bool,
    /// Skip the planner-CPU and RSS measurements at scale.
    #[arg(long)]
    skip_scale: bool,
    /// Skip the RSS measurement (it needs the release `ldexp` binary).
    #[arg(long)]
    skip_rss: bool,
    /// Skip both applies (without and under the rate limit).
    #[arg(long)]
    skip_apply: bool,
    /// Skip `ldexp export` of the fixture and the plan over it.
    #[arg(long)]
    skip_export: bool,
    /// Exit 1 unless requests = R_min, the rate-limited apply had no failure and a re-plan is empty.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ldexp-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(figures) => {
            println!("{}", figures.table());
            if !args.no_write {
                // The report this run replaces, so that its figures are shown beside the new ones.
                let previous = std::fs::read_to_string(&args.out).ok();
                let md = ldexp_bench::report::with_previous(&figures.markdown(), previous.as_deref());
                if let Err(e) = std::fs::write(&args.out, md) {
                    eprintln!("ldexp-bench: {}: {e}", args.out.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", args.out.display());
            }
            let failures = figures.deterministic_failures();
            for f in &failures {
                eprintln!("ldexp-bench: check failed: {f}");
            }
            if args.check && !failures.is_empty() {
                return ExitCode::FAILURE;
            }
            if args.check {
                eprintln!("ldexp-bench: deterministic checks passed (requests = R_min, no failed apply)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ldexp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(what: &str) -> Instant {
    eprintln!("== {what}");
    Instant::now()
}

fn done(t: Instant) {
    eprintln!("   ({:.1} s)", t.elapsed().as_secs_f64());
}

/// The command line as run, for the report.
fn command_line() -> String {
    let args: Vec<String> =
        std::env::args().skip(1).map(|a| if a.contains(char::is_whitespace) { format!("'{a}'") } else { a }).collect();
    format!("cargo run --release -p ldexp-bench -- {}", args.join(" ")).trim_end().to_owned()
}

async fn run(args: &Args) -> Result<Figures, BenchError> {
    let params = FixtureParams {
        experiments: args.experiments,
        environments: args.environments,
        flags: args.flags,
        metrics: args.metrics,
    };
    let dir = tempfile::tempdir().map_err(|e| BenchError::Io { path: std::env::temp_dir(), source: e })?;
    let t = step(&format!("fixture: {} experiments", args.experiments));
    let fixture = generate(&params)?;
    let spec_dir = fixture.write_to(dir.path())?;
    let seed = measure::PreparedState::of(&fixture)?;
    let rmin = RMin::of(&fixture.counts);
    let (specs, load) = measure::load_specs(&spec_dir)?;
    done(t);
    let mut notes = Vec::new();

    let t =
        step(&format!("plan against the emulator ({} ms latency, concurrency {})", args.latency_ms, args.concurrency));
    let emu = Emulator::start(&seed, args.latency_ms, None).await?;
    let (plan, _remote, mut plan_fig) = measure::plan(&emu, &specs, args.concurrency).await?;
    plan_fig.load = load;
    done(t);
    eprintln!("   {} requests (R_min {}), {:.2} s", plan_fig.requests, rmin.total(), plan_fig.wall.as_secs_f64());

    let baseline = if args.skip_baseline {
        None
    } else {
        let t = step("serial per-resource baseline (concurrency 1)");
        let b = measure::serial_baseline(&emu, &specs).await?;
        done(t);
        Some(b)
    };

    let export = if args.skip_export {
        None
    } else {
        let t = step("ldexp export of the whole project, then ldexp plan of what it wrote");
        let binary = match &args.ldexp_bin {
            Some(b) => b.clone(),
            None => default_binary()?,
        };
        let x = measure::export(&emu, &binary, dir.path(), args.concurrency).await?;
        done(t);
        if x.plan_exit != Some(0) {
            notes.push(format!("`ldexp plan` over the export exited {:?}: {}", x.plan_exit, x.plan_stderr));
        }
        Some(x)
    };

    let replan = if args.skip_apply {
        None
    } else {
        let t = step("apply without a rate limit, then plan again");
        let (failed, left) = measure::apply_and_replan(&emu, &plan, &specs, args.concurrency).await?;
        done(t);
        if failed > 0 {
            notes.push(format!("The apply without a rate limit had {failed} failed or skipped changes."));
        }
        Some(left)
    };
    emu.stop().await;

    let (cpu, rss) = if args.skip_scale { (None, None) } else { scale(args, dir.path(), &mut notes).await? };

    let apply = if args.skip_apply {
        None
    } else {
        let t = step(&format!("apply under {} requests / 10 s per route", args.rate_limit));
        let emu = Emulator::start(&seed, args.latency_ms, Some(args.rate_limit)).await?;
        let mut a =
            measure::apply_rate_limited(&emu, &plan, args.concurrency, args.rate_limit, measure::Window::PerRoute)
                .await?;
        emu.stop().await;
        a.replan_changes = replan;
        done(t);
        Some(a)
    };

    let apply_global = if args.skip_apply {
        None
    } else {
        let t = step(&format!("apply under {} requests / 10 s across the account", args.rate_limit_global));
        let emu = Emulator::start_limited(&seed, args.latency_ms, None, Some(args.rate_limit_global)).await?;
        let a =
            measure::apply_rate_limited(&emu, &plan, args.concurrency, args.rate_limit_global, measure::Window::Global)
                .await?;
        emu.stop().await;
        done(t);
        Some(a)
    };

    Ok(Figures {
        machine: Machine::describe(),
        command: command_line(),
        params: RunParams {
            experiments: args.experiments,
            environments: args.environments,
            flags: args.flags,
            metrics: args.metrics,
            latency_ms: args.latency_ms,
            concurrency: args.concurrency,
            rate_limit: args.rate_limit,
            scale_experiments: args.scale_experiments,
        },
        counts: fixture.counts.clone(),
        rmin,
        plan: plan_fig,
        baseline,
        cpu,
        rss,
        apply,
        apply_global,
        export,
        notes,
    })
}

/// Planner CPU and peak RSS at `--scale-experiments`.
async fn scale(
    args: &Args,
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(Option<ldexp_bench::report::CpuFigure>, Option<ldexp_bench::report::RssFigure>), BenchError> {
    let t = step(&format!("planner CPU at {} experiments ({} runs)", args.scale_experiments, args.cpu_runs));
    let params = FixtureParams {
        experiments: args.scale_experiments,
        environments: args.environments,
        flags: args.flags,
        metrics: args.metrics,
    };
    let fixture = generate(&params)?;
    let scale_dir = dir.join("scale");
    std::fs::create_dir_all(&scale_dir).map_err(|e| BenchError::Io { path: scale_dir.clone(), source: e })?;
    let spec_dir = fixture.write_to(&scale_dir)?;
    let seed = measure::PreparedState::of(&fixture)?;
    // Before anything else allocates at this scale, so the deltas are not hidden by memory the allocator keeps.
    let stages = measure::memory_by_stage(&spec_dir, &seed)?;
    notes.push(format!(
        "Resident memory each stage of an in-process plan adds at {} experiments (RSS deltas of the harness, \
         approximate; the in-process emulator state is loaded before): {}.",
        args.scale_experiments,
        stages.iter().map(|(k, v)| format!("{k} +{v:.0} MiB")).collect::<Vec<_>>().join(", ")
    ));
    let (specs, remote) = measure::planner_inputs(&spec_dir, &seed)?;
    let cpu = measure::planner_cpu(&specs, &remote, args.cpu_runs)?;
    drop((specs, remote));
    done(t);
    if args.skip_rss {
        return Ok((Some(cpu), None));
    }

    let t = step(&format!("peak RSS of `ldexp plan` at {} experiments", args.scale_experiments));
    let binary = match &args.ldexp_bin {
        Some(b) => b.clone(),
        None => default_binary()?,
    };
    let emu = Emulator::start(&seed, args.latency_ms, None).await?;
    let rss = measure::plan_rss(&binary, &spec_dir, emu.base_url(), args.concurrency, args.scale_experiments);
    emu.stop().await;
    done(t);
    match rss {
        Ok(r) => Ok((Some(cpu), Some(r))),
        Err(e) => {
            notes.push(format!("Peak RSS not measured: {e}"));
            Ok((Some(cpu), None))
        }
    }
}

/// `ldexp` next to this executable, built with the same cargo when it is missing.
fn default_binary() -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Io { path: PathBuf::from("current_exe"), source: e })?;
    let binary = exe.with_file_name("ldexp");
    if binary.is_file() {
        return Ok(binary);
    }
    let profile = exe.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let Ok(cargo) = std::env::var("CARGO") else { return Ok(binary) };
    eprintln!("   building the {profile} `ldexp` binary");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "ldexp", "--bin", "ldexp"]);
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| BenchError::Binary { path: binary.clone(), message: e.to_string() })?;
    if !status.success() {
        return Err(BenchError::Binary { path: binary, message: format!("cargo build failed ({status})") });
    }
    Ok(binary)
}
