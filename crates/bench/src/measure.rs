//! The measurements: each drives real ldexp code (spec loading, the HTTP client, `fetch_remote`, the planner,
//! the applier, the `ldexp` binary) against the emulator and returns one figure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ldexp_core::apply::{ApplyOptions, OutcomeStatus, apply};
use ldexp_core::client::{AccessToken, BaseUrl, ClientConfig, HttpClient};
use ldexp_core::client::{CatalogReads as _, PlanReads as _, ResultsReads as _};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::Plan;
use ldexp_core::remote::{RemoteState, Requirements};
use ldexp_core::spec::{self, SpecSet};
use ldexp_emulator::{InMemory, RunningServer, Seed, ServerConfig, State};
use serde_json::Value;

use crate::BenchError;
use crate::fixture::Fixture;
use crate::report::{ApplyFigure, BaselineFigure, CpuFigure, PlanFigure, RssFigure, WINDOW_S};
use crate::{routes, seeding};

/// The token the emulator accepts and the client sends; a fixed, non-secret value for a local emulator.
pub const BENCH_TOKEN: &str = "api-bench-local-emulator";

/// A fixture's emulator state, prepared once: the seed without experiments (what the server boots with) and the
/// full state document (what it is then given). See [`crate::seeding`] for why.
#[derive(Debug, Clone)]
pub struct PreparedState {
    bare: Seed,
    document: Value,
}

impl PreparedState {
    /// Prepares `fixture`'s seed.
    pub fn of(fixture: &Fixture) -> Result<PreparedState, BenchError> {
        Ok(PreparedState {
            bare: seeding::seed_without_experiments(&fixture.seed)?,
            document: seeding::state_document(&fixture.seed)?,
        })
    }

    /// The state itself, for the in-process emulator.
    pub fn state(&self) -> Result<State, BenchError> {
        State::from_json(&self.document).map_err(|e| BenchError::Emulator(e.to_string()))
    }
}

/// A running emulator and the admin calls the harness makes.
#[derive(Debug)]
pub struct Emulator {
    server: RunningServer,
    base_url: String,
    admin: reqwest::Client,
}

/// `/_emulator/stats`, reduced to what the harness reads.
///
/// Counts are taken as the difference of two snapshots rather than after `POST /_emulator/reset`, because that
/// route also restores the seeded state, which would undo an apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmulatorStats {
    pub total: u64,
    pub by_route: BTreeMap<String, u64>,
    pub rate_limited: u64,
}

impl Emulator {
    /// Starts an emulator on a free loopback port holding `seed`.
    pub async fn start(
        seed: &PreparedState,
        latency_ms: u64,
        rate_limit: Option<usize>,
    ) -> Result<Emulator, BenchError> {
        Self::start_limited(seed, latency_ms, rate_limit, None).await
    }

    /// [`Emulator::start`], with an account-wide window of `global` requests per 10 s too.
    pub async fn start_limited(
        seed: &PreparedState,
        latency_ms: u64,
        rate_limit: Option<usize>,
        global: Option<usize>,
    ) -> Result<Emulator, BenchError> {
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let config = ServerConfig {
            token: BENCH_TOKEN.to_owned(),
            latency_ms,
            rate_limit: rate_limit.map(to_u32),
            rate_limit_global: global.map(to_u32),
            seed: Some(seed.bare.clone()),
            ..ServerConfig::default()
        };
        let server = ldexp_emulator::serve(config).await.map_err(|e| BenchError::Emulator(e.to_string()))?;
        let base_url = server.url();
        let admin = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| BenchError::Emulator(format!("admin client: {e}")))?;
        let url = format!("{base_url}/_emulator/state");
        let r = admin
            .put(&url)
            .json(&seed.document)
            .send()
            .await
            .map_err(|e| BenchError::Emulator(format!("PUT {url}: {e}")))?;
        if !r.status().is_success() {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            return Err(BenchError::Emulator(format!("PUT {url} answered {status}: {body}")));
        }
        Ok(Emulator { server, base_url, admin })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A client of this emulator with `concurrency` requests in flight at most.
    pub fn client(&self, concurrency: usize) -> Result<HttpClient, BenchError> {
        let base = BaseUrl::parse(&self.base_url).map_err(|e| BenchError::ldexp("client", e))?;
        let token = AccessToken::new(BENCH_TOKEN).map_err(|e| BenchError::ldexp("client", e))?;
        let mut config = ClientConfig::new(base, token);
        config.concurrency = concurrency.max(1);
        HttpClient::new(config).map_err(|e| BenchError::ldexp("client", e))
    }

    /// `GET /_emulator/stats`.
    pub async fn stats(&self) -> Result<EmulatorStats, BenchError> {
        let url = format!("{}/_emulator/stats", self.base_url);
        let r = self.admin.get(&url).send().await.map_err(|e| BenchError::Emulator(format!("{url}: {e}")))?;
        let v: Value = r.json().await.map_err(|e| BenchError::Emulator(format!("{url}: {e}")))?;
        parse_stats(&v).ok_or_else(|| BenchError::Emulator(format!("{url}: unexpected body {v}")))
    }

    /// Counts since `before`.
    pub async fn stats_since(&self, before: &EmulatorStats) -> Result<EmulatorStats, BenchError> {
        let now = self.stats().await?;
        let by_route = now
            .by_route
            .iter()
            .map(|(k, n)| (k.clone(), n.saturating_sub(before.by_route.get(k).copied().unwrap_or(0))))
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(EmulatorStats {
            total: now.total.saturating_sub(before.total),
            by_route,
            rate_limited: now.rate_limited.saturating_sub(before.rate_limited),
        })
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// Reads `{total, byRoute | routes: {"METHOD pattern": n}, rateLimited | 429}` leniently.
fn parse_stats(v: &Value) -> Option<EmulatorStats> {
    let num = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k).and_then(Value::as_u64));
    let total = num(&["total", "requests", "totalRequests"])?;
    let by_route = ["byRoute", "routes", "perRoute"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_object))
        .map(|m| m.iter().filter_map(|(k, n)| Some((k.clone(), n.as_u64()?))).collect())
        .unwrap_or_default();
    let rate_limited = num(&["rateLimited", "429", "status429", "throttled"]).unwrap_or(0);
    Some(EmulatorStats { total, by_route, rate_limited })
}

/// Loads the specs, timing it.
pub fn load_specs(dir: &Path) -> Result<(SpecSet, Duration), BenchError> {
    let t = Instant::now();
    let specs = spec::load(&[dir]).map_err(|e| spec_error(&e))?;
    Ok((specs, t.elapsed()))
}

fn spec_error(e: &ldexp_core::Error) -> BenchError {
    let detail = match e {
        ldexp_core::Error::Spec { diagnostics } => {
            diagnostics.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join("; ")
        }
        _ => String::new(),
    };
    BenchError::ldexp("loading the generated specs", format!("{e}: {detail}"))
}

/// Plans `specs` against the emulator: fetch + plan, with the request count from the emulator's stats.
pub async fn plan(
    emu: &Emulator,
    specs: &SpecSet,
    concurrency: usize,
) -> Result<(Plan, RemoteState, PlanFigure), BenchError> {
    let client = emu.client(concurrency)?;
    let before = emu.stats().await?;
    let t = Instant::now();
    let remote = fetch_remote(&client, &Requirements::of(specs)).await.map_err(|e| BenchError::ldexp("fetching", e))?;
    let plan = ldexp_planner::plan(specs, &remote).map_err(|e| plan_error(&e))?;
    let wall = t.elapsed();
    let stats = emu.stats_since(&before).await?;
    let writes = plan.changes.iter().map(|c| c.requests.len()).sum();
    let figure = PlanFigure {
        requests: stats.total,
        requests_by_route: stats.by_route,
        wall,
        load: Duration::ZERO,
        changes: plan.changes.iter().filter(|c| !c.requests.is_empty()).count(),
        writes,
        unmanaged: plan.unmanaged.len(),
    };
    Ok((plan, remote, figure))
}

fn plan_error(e: &ldexp_planner::PlanError) -> BenchError {
    let detail = match e {
        ldexp_planner::PlanError::Problems { problems } => {
            problems.iter().take(5).map(|p| format!("{p:?}")).collect::<Vec<_>>().join("; ")
        }
        #[allow(unreachable_patterns)]
        _ => String::new(),
    };
    BenchError::ldexp("planning", format!("{e}: {detail}"))
}

/// LaunchDarkly's Terraform provider reads each managed resource with its own GET, one at a time
/// (`max_concurrency = 1`): one per experiment, per flag and per metric the configuration names. Replayed through
/// the same client, against the same emulator.
pub async fn serial_baseline(emu: &Emulator, specs: &SpecSet) -> Result<BaselineFigure, BenchError> {
    let client = emu.client(1)?;
    let mut experiments = Vec::new();
    let mut flags = std::collections::BTreeSet::new();
    let mut metrics = std::collections::BTreeSet::new();
    for e in &specs.experiments {
        let s = &e.spec;
        for env in s.target_environments() {
            experiments.push((s.project.clone(), env.to_owned(), s.key.clone()));
        }
        flags.extend(s.iteration.flags.keys().map(|f| (s.project.clone(), f.clone())));
        metrics.extend(
            s.iteration.metrics.iter().filter(|m| !m.is_group()).map(|m| (s.project.clone(), m.key().to_owned())),
        );
    }
    for l in &specs.legacy {
        flags.insert((l.spec.project.clone(), l.spec.flag.clone()));
        metrics.extend(l.spec.metrics.iter().map(|m| (l.spec.project.clone(), m.key.clone())));
    }
    let before = emu.stats().await?;
    let t = Instant::now();
    for (p, env, key) in &experiments {
        client.get_experiment(p, env, key).await.map_err(|e| BenchError::ldexp("baseline", e))?;
    }
    for (p, f) in &flags {
        client.get_flag(p, f).await.map_err(|e| BenchError::ldexp("baseline", e))?;
    }
    for (p, m) in &metrics {
        client.get_metric(p, m).await.map_err(|e| BenchError::ldexp("baseline", e))?;
    }
    let wall = t.elapsed();
    Ok(BaselineFigure { requests: emu.stats_since(&before).await?.total, wall })
}

/// The inputs of a planner-only measurement: specs loaded from `spec_dir` and the remote state of `seed`, read
/// through the in-process emulator (no HTTP, no latency).
pub fn planner_inputs(spec_dir: &Path, seed: &PreparedState) -> Result<(SpecSet, RemoteState), BenchError> {
    let (specs, _) = load_specs(spec_dir)?;
    let reader = InMemory::new(seed.state()?);
    let remote = futures::executor::block_on(fetch_remote(&reader, &Requirements::of(&specs)))
        .map_err(|e| BenchError::ldexp("fetching in memory", e))?;
    Ok((specs, remote))
}

/// This process's resident set size in KiB (`VmRSS`), for attributing memory to the stages of a plan.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory added by loading the specs, fetching the remote state and planning, in MiB, measured in
/// this process on the scale fixture (RSS deltas: approximate, allocator caching included).
pub fn memory_by_stage(spec_dir: &Path, seed: &PreparedState) -> Result<[(&'static str, f64); 3], BenchError> {
    let mib = |a: Option<u64>, b: Option<u64>| b.unwrap_or(0).saturating_sub(a.unwrap_or(0)) as f64 / 1024.0;
    let reader = InMemory::new(seed.state()?);
    let r0 = rss_kib();
    let (specs, _) = load_specs(spec_dir)?;
    let r1 = rss_kib();
    let remote = futures::executor::block_on(fetch_remote(&reader, &Requirements::of(&specs)))
        .map_err(|e| BenchError::ldexp("fetching in memory", e))?;
    let r2 = rss_kib();
    let plan = ldexp_planner::plan(&specs, &remote).map_err(|e| plan_error(&e))?;
    let r3 = rss_kib();
    drop((plan, remote, specs));
    Ok([("specs", mib(r0, r1)), ("remote state", mib(r1, r2)), ("plan", mib(r2, r3))])
}

/// Planner CPU: `runs` timed calls of the pure planner on the same inputs (one untimed warm-up first).
pub fn planner_cpu(specs: &SpecSet, remote: &RemoteState, runs: usize) -> Result<CpuFigure, BenchError> {
    ldexp_planner::plan(specs, remote).map_err(|e| plan_error(&e))?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let plan = ldexp_planner::plan(specs, remote).map_err(|e| plan_error(&e))?;
        times.push(t.elapsed());
        drop(plan);
    }
    Ok(CpuFigure { experiments: specs.experiments.len(), runs: times })
}

/// `ldexp export` of the whole project through the binary (requests counted by the emulator, wall timed), then
/// `ldexp plan --detailed-exitcode` of what it wrote: 0 when the export describes the remote exactly.
pub async fn export(
    emu: &Emulator,
    binary: &Path,
    dir: &Path,
    concurrency: usize,
) -> Result<crate::report::ExportFigure, BenchError> {
    let bin_err = |message: String| BenchError::Binary { path: binary.to_owned(), message };
    let run = |args: &[&str]| {
        Command::new(binary)
            .args(args)
            .arg("--base-url")
            .arg(emu.base_url())
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .env("LD_ACCESS_TOKEN", BENCH_TOKEN)
            .env_remove("LD_BASE_URL")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| bin_err(format!("cannot run: {e}")))
    };
    let out_dir = dir.join("exported");
    let out = out_dir.to_string_lossy().into_owned();
    let before = emu.stats().await?;
    let t = Instant::now();
    let exported =
        tokio::task::block_in_place(|| run(&["export", "--project", crate::fixture::PROJECT, "--out", &out]))?;
    let wall = t.elapsed();
    let stats = emu.stats_since(&before).await?;
    if !exported.status.success() {
        return Err(bin_err(format!("`ldexp export` failed: {}", String::from_utf8_lossy(&exported.stderr))));
    }
    let files = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    let planned = tokio::task::block_in_place(|| run(&["plan", "--detailed-exitcode", "-q", &out]))?;
    Ok(crate::report::ExportFigure {
        requests: stats.total,
        requests_by_route: stats.by_route,
        wall,
        files,
        plan_exit: planned.status.code(),
        plan_stderr: String::from_utf8_lossy(&planned.stderr).lines().take(5).collect::<Vec<_>>().join("\n"),
    })
}

/// Peak RSS of `ldexp plan <spec_dir>` against `base_url`, read from `/usr/bin/time -v`.
pub fn plan_rss(
    binary: &Path,
    spec_dir: &Path,
    base_url: &str,
    concurrency: usize,
    experiments: usize,
) -> Result<RssFigure, BenchError> {
    let time = PathBuf::from("/usr/bin/time");
    let bin_err = |message: String| BenchError::Binary { path: binary.to_owned(), message };
    if !binary.is_file() {
        return Err(bin_err("not found; build it with `cargo build --release -p ldexp`".to_owned()));
    }
    if !time.is_file() {
        return Err(bin_err("/usr/bin/time is missing (Debian package `time`)".to_owned()));
    }
    let t = Instant::now();
    let out = Command::new(&time)
        .arg("-v")
        .arg(binary)
        .arg("plan")
        .arg(spec_dir)
        .arg("--base-url")
        .arg(base_url)
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .env("LD_ACCESS_TOKEN", BENCH_TOKEN)
        .env_remove("LD_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| bin_err(format!("cannot run /usr/bin/time: {e}")))?;
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak_kib = parse_max_rss(&stderr).ok_or_else(|| {
        bin_err(format!("no `Maximum resident set size` in the output of time -v: {}", tail(&stderr)))
    })?;
    let exit_code = parse_exit_status(&stderr);
    if !matches!(exit_code, Some(0 | 2)) {
        return Err(bin_err(format!("`ldexp plan` exited with {exit_code:?}: {}", tail(&stderr))));
    }
    Ok(RssFigure { experiments, peak_kib, wall, exit_code })
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `Maximum resident set size (kbytes): N` of GNU time.
fn parse_max_rss(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):")?.trim().parse().ok())
}

/// `Exit status: N` of GNU time (the child's).
fn parse_exit_status(text: &str) -> Option<i32> {
    text.lines().find_map(|l| l.trim().strip_prefix("Exit status:")?.trim().parse().ok())
}

/// Which window an apply runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `limit` requests per window per route: the busiest route sets the bound.
    PerRoute,
    /// `limit` requests per window across the account: every write counts against one window.
    Global,
}

/// Applies `plan` through a client of `emu` (started with a rate limit of `limit` per window, per route or
/// account-wide) and checks the outcome.
pub async fn apply_rate_limited(
    emu: &Emulator,
    plan: &Plan,
    concurrency: usize,
    limit: usize,
    window: Window,
) -> Result<ApplyFigure, BenchError> {
    let client = emu.client(concurrency)?;
    let writes_by_route = routes::plan_writes_by_route(plan);
    let (busiest_route, busiest_writes, bound_s) = match window {
        Window::PerRoute => routes::rate_limit_bound(&writes_by_route, limit, WINDOW_S),
        Window::Global => {
            let writes: usize = writes_by_route.values().sum();
            let windows = u64::try_from(writes.div_ceil(limit.max(1))).unwrap_or(u64::MAX);
            ("every route (one account-wide window)".to_owned(), writes, windows.saturating_mul(WINDOW_S))
        }
    };
    let options = ApplyOptions { concurrency: concurrency.max(1), ..ApplyOptions::default() };
    let before = emu.stats().await?;
    let t = Instant::now();
    let report = apply(plan, &client, &options).await;
    let wall = t.elapsed();
    let stats = emu.stats_since(&before).await?;
    let c = report.counts();
    let (applied, failed, skipped) = (c.applied, c.failed, c.skipped + c.interrupted);
    let first_failure = report.outcomes.iter().find_map(|o| match &o.status {
        OutcomeStatus::Failed { error, request, .. } => Some(format!("{}: {request}: {error}", o.address)),
        OutcomeStatus::Skipped { reason } => Some(format!("{}: skipped: {reason}", o.address)),
        OutcomeStatus::Interrupted => Some(format!("{}: interrupted", o.address)),
        OutcomeStatus::Applied => None,
    });
    Ok(ApplyFigure {
        limit,
        writes: writes_by_route.values().sum(),
        writes_by_route,
        busiest_route,
        busiest_writes,
        bound: Duration::from_secs(bound_s),
        wall,
        applied,
        failed,
        skipped,
        first_failure,
        rate_limited: stats.rate_limited,
        replan_changes: None,
    })
}

/// Applies `plan` without a rate limit, then plans again: the number of changes left (0 when apply converged).
pub async fn apply_and_replan(
    emu: &Emulator,
    plan: &Plan,
    specs: &SpecSet,
    concurrency: usize,
) -> Result<(usize, usize), BenchError> {
    let client = emu.client(concurrency)?;
    let options = ApplyOptions { concurrency: concurrency.max(1), ..ApplyOptions::default() };
    let report = apply(plan, &client, &options).await;
    let c = report.counts();
    let (failed, skipped) = (c.failed, c.skipped + c.interrupted);
    let remote =
        fetch_remote(&client, &Requirements::of(specs)).await.map_err(|e| BenchError::ldexp("re-fetching", e))?;
    let again = ldexp_planner::plan(specs, &remote).map_err(|e| plan_error(&e))?;
    Ok((failed + skipped, again.changes.iter().filter(|c| !c.requests.is_empty()).count()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gnu_time_output_is_parsed() {
        let text =
            "\tCommand being timed: \"ldexp plan\"\n\tMaximum resident set size (kbytes): 91234\n\tExit status: 0\n";
        assert_eq!(parse_max_rss(text), Some(91234));
        assert_eq!(parse_exit_status(text), Some(0));
        assert_eq!(parse_max_rss("nothing"), None);
    }

    #[test]
    fn stats_are_read_from_the_admin_body() {
        let v = json!({ "total": 12, "byRoute": { "GET /api/v2/flags/{projectKey}/{featureFlagKey}": 10 }, "rateLimited": 3 });
        let s = parse_stats(&v).unwrap();
        assert_eq!(s.total, 12);
        assert_eq!(s.rate_limited, 3);
        assert_eq!(s.by_route["GET /api/v2/flags/{projectKey}/{featureFlagKey}"], 10);
        assert_eq!(parse_stats(&json!({})), None);
    }
}
