//! The figures of one run and their rendering: the table printed to stdout and the `BENCHMARKS.md` document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::fixture::FixtureCounts;
use crate::machine::Machine;
use crate::rmin::RMin;

/// The targets of the issue.
pub const TARGET_PLAN_WALL_RATIO: f64 = 1.2;
pub const TARGET_SPEEDUP: f64 = 20.0;
pub const TARGET_PLANNER_CPU_MS: f64 = 100.0;
pub const TARGET_RSS_MB: f64 = 150.0;
pub const TARGET_APPLY_RATIO: f64 = 1.15;
/// LaunchDarkly's rate-limit window.
pub const WINDOW_S: u64 = 10;

/// The run's knobs, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunParams {
    pub experiments: usize,
    pub environments: usize,
    pub flags: usize,
    pub metrics: usize,
    pub latency_ms: u64,
    pub concurrency: usize,
    pub rate_limit: usize,
    pub scale_experiments: usize,
}

/// The plan measured against the latency-only emulator.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFigure {
    /// HTTP requests the emulator counted for load + fetch + plan.
    pub requests: u64,
    pub requests_by_route: BTreeMap<String, u64>,
    /// Wall time of fetch + plan (what the network bounds), and of spec loading separately.
    pub wall: Duration,
    pub load: Duration,
    pub changes: usize,
    pub writes: usize,
    pub unmanaged: usize,
}

/// The Terraform-provider access pattern replayed through the same client.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineFigure {
    pub requests: u64,
    pub wall: Duration,
}

/// Planner CPU (no I/O) at scale.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuFigure {
    pub experiments: usize,
    pub runs: Vec<Duration>,
}

impl CpuFigure {
    /// Median of the runs.
    pub fn median(&self) -> Duration {
        let mut v = self.runs.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

/// Peak RSS of the real binary.
#[derive(Debug, Clone, PartialEq)]
pub struct RssFigure {
    pub experiments: usize,
    pub peak_kib: u64,
    pub wall: Duration,
    pub exit_code: Option<i32>,
}

/// Apply of the plan under a per-route rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyFigure {
    pub limit: usize,
    pub writes: usize,
    pub writes_by_route: BTreeMap<String, usize>,
    pub busiest_route: String,
    pub busiest_writes: usize,
    pub bound: Duration,
    pub wall: Duration,
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
    pub rate_limited: u64,
    /// Changes a fresh plan still finds after the apply (0 when it converged), when checked.
    pub replan_changes: Option<usize>,
}

/// `ldexp export` of the default fixture, and the plan of what it wrote.
#[derive(Debug, Clone)]
pub struct ExportFigure {
    pub requests: u64,
    pub requests_by_route: BTreeMap<String, u64>,
    pub wall: Duration,
    /// Files (and directories) the export wrote at the top of its output directory.
    pub files: usize,
    /// `ldexp plan --detailed-exitcode` over the export: 0 when it describes the remote exactly.
    pub plan_exit: Option<i32>,
    pub plan_stderr: String,
}

/// Everything measured in one run.
#[derive(Debug, Clone)]
pub struct Figures {
    pub machine: Machine,
    pub command: String,
    pub params: RunParams,
    pub counts: FixtureCounts,
    pub rmin: RMin,
    pub plan: PlanFigure,
    pub baseline: Option<BaselineFigure>,
    pub cpu: Option<CpuFigure>,
    pub rss: Option<RssFigure>,
    pub apply: Option<ApplyFigure>,
    /// The same apply under an account-wide window instead of per-route ones.
    pub apply_global: Option<ApplyFigure>,
    pub export: Option<ExportFigure>,
    pub notes: Vec<String>,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 { format!("{:.0} ms", s * 1000.0) } else { format!("{s:.2} s") }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mark(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

impl Figures {
    /// requests / R_min.
    pub fn request_ratio(&self) -> f64 {
        self.plan.requests as f64 / self.rmin.total().max(1) as f64
    }

    /// Whether the plan made exactly R_min requests.
    pub fn requests_at_bound(&self) -> bool {
        self.plan.requests == self.rmin.total() as u64
    }

    /// `R_min × latency / concurrency`.
    pub fn plan_bound(&self) -> Duration {
        let p = &self.params;
        Duration::from_secs_f64(self.rmin.total() as f64 * p.latency_ms as f64 / 1000.0 / p.concurrency.max(1) as f64)
    }

    /// Plan wall / bound; `None` without latency (the bound is zero).
    pub fn plan_ratio(&self) -> Option<f64> {
        let b = self.plan_bound().as_secs_f64();
        (b > 0.0).then(|| self.plan.wall.as_secs_f64() / b)
    }

    /// Baseline wall / plan wall.
    pub fn speedup(&self) -> Option<f64> {
        self.baseline.as_ref().map(|b| b.wall.as_secs_f64() / self.plan.wall.as_secs_f64().max(1e-9))
    }

    /// The deterministic checks CI asserts: requests = R_min and, when measured, no failed apply.
    pub fn deterministic_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.requests_at_bound() {
            out.push(format!(
                "plan made {} requests, R_min is {} (ratio {:.2})",
                self.plan.requests,
                self.rmin.total(),
                self.request_ratio()
            ));
        }
        if let Some(a) = &self.apply_global
            && a.failed + a.skipped > 0
        {
            out.push(format!(
                "apply under the account-wide window: {} failed, {} skipped{}",
                a.failed,
                a.skipped,
                a.first_failure.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
            ));
        }
        if let Some(a) = &self.apply {
            if a.failed + a.skipped > 0 {
                out.push(format!(
                    "apply under the rate limit: {} failed, {} skipped{}",
                    a.failed,
                    a.skipped,
                    a.first_failure.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
                ));
            }
            if let Some(n) = a.replan_changes.filter(|n| *n > 0) {
                out.push(format!("a plan after the apply still has {n} changes"));
            }
        }
        out
    }

    /// The headline table, markdown.
    pub fn table(&self) -> String {
        let p = &self.params;
        let mut t = String::new();
        t.push_str("| figure | measured | bound or reference | ratio | target | met |\n");
        t.push_str("|---|---|---|---|---|---|\n");
        let _ = writeln!(
            t,
            "| plan requests / R_min v2 | {} requests | R_min v2 = {} (R_min v1 = {}) | {:.2} | 1.00 | {} |",
            self.plan.requests,
            self.rmin.total(),
            self.rmin.v1,
            self.request_ratio(),
            mark(self.requests_at_bound())
        );
        let bound = self.plan_bound();
        let _ = writeln!(
            t,
            "| plan wall (fetch + plan) | {} | R_min × {} ms / {} = {} | {} | ≤ {TARGET_PLAN_WALL_RATIO} | {} |",
            secs(self.plan.wall),
            p.latency_ms,
            p.concurrency,
            secs(bound),
            self.plan_ratio().map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}")),
            self.plan_ratio().map_or("n/a", |r| mark(r <= TARGET_PLAN_WALL_RATIO))
        );
        match (&self.baseline, self.speedup()) {
            (Some(b), Some(s)) => {
                let _ = writeln!(
                    t,
                    "| speed-up vs serial per-resource GETs | ldexp {} | serial baseline {} ({} requests) | {s:.1}× | ≥ {TARGET_SPEEDUP}× | {} |",
                    secs(self.plan.wall),
                    secs(b.wall),
                    b.requests,
                    mark(s >= TARGET_SPEEDUP)
                );
            }
            _ => {
                t.push_str("| speed-up vs serial per-resource GETs | not measured (--skip-baseline) | | | ≥ 20× | |\n")
            }
        }
        match &self.cpu {
            Some(c) => {
                let med = c.median();
                let min = c.runs.iter().min().copied().unwrap_or_default();
                let max = c.runs.iter().max().copied().unwrap_or_default();
                let _ = writeln!(
                    t,
                    "| planner CPU, {} experiments (no I/O) | median {} of {} runs | min {}, max {} | | ≤ {TARGET_PLANNER_CPU_MS} ms | {} |",
                    c.experiments,
                    ms(med),
                    c.runs.len(),
                    ms(min),
                    ms(max),
                    mark(med.as_secs_f64() * 1000.0 <= TARGET_PLANNER_CPU_MS)
                );
            }
            None => t.push_str("| planner CPU, 10k experiments | not measured (--skip-scale) | | | ≤ 100 ms | |\n"),
        }
        match &self.rss {
            Some(r) => {
                let mb = r.peak_kib as f64 / 1024.0;
                let _ = writeln!(
                    t,
                    "| peak RSS of `ldexp plan`, {} experiments | {mb:.1} MiB | wall {}, exit {} | | ≤ {TARGET_RSS_MB} MB | {} |",
                    r.experiments,
                    secs(r.wall),
                    r.exit_code.map_or_else(|| "signal".to_owned(), |c| c.to_string()),
                    mark(mb * 1.048_576 <= TARGET_RSS_MB)
                );
            }
            None => t.push_str("| peak RSS of `ldexp plan`, 10k experiments | not measured | | | ≤ 150 MB | |\n"),
        }
        match &self.apply {
            Some(a) => {
                let _ = writeln!(
                    t,
                    "| apply under {} req/{WINDOW_S} s per route: failures | {} failed, {} skipped of {} changes | {} writes, {} HTTP 429s absorbed | | 0 | {} |",
                    a.limit,
                    a.failed,
                    a.skipped,
                    a.applied + a.failed + a.skipped,
                    a.writes,
                    a.rate_limited,
                    mark(a.failed + a.skipped == 0)
                );
                let ratio = a.wall.as_secs_f64() / a.bound.as_secs_f64().max(1e-9);
                let _ = writeln!(
                    t,
                    "| apply under the rate limit: wall | {} | ceil({} / {}) × {WINDOW_S} s = {} (busiest route) | {ratio:.2} | ≤ {TARGET_APPLY_RATIO} | {} |",
                    secs(a.wall),
                    a.busiest_writes,
                    a.limit,
                    secs(a.bound),
                    mark(ratio <= TARGET_APPLY_RATIO)
                );
            }
            None => {
                t.push_str("| apply under the rate limit | not measured (--skip-apply) | | | 0 failures, ≤ 1.15 | |\n")
            }
        }
        if let Some(x) = &self.export {
            let bound_requests = self.rmin.export_total();
            let bound = Duration::from_secs_f64(
                bound_requests as f64 * p.latency_ms as f64 / 1000.0 / p.concurrency.max(1) as f64,
            );
            let ratio = x.wall.as_secs_f64() / bound.as_secs_f64().max(1e-9);
            let _ = writeln!(
                t,
                "| `ldexp export` of the whole project: wall | {} ({} requests, {} top-level entries written; the binary's start and the writing included) | \
                 {bound_requests} requests × {} ms / {} = {} | {ratio:.2} | ≤ 1.3 | {} |",
                secs(x.wall),
                x.requests,
                x.files,
                p.latency_ms,
                p.concurrency,
                secs(bound),
                mark(ratio <= 1.3)
            );
            let _ = writeln!(
                t,
                "| `ldexp plan` over the export | exit {} | | | 0 (empty) | {} |",
                x.plan_exit.map_or_else(|| "signal".to_owned(), |c| c.to_string()),
                mark(x.plan_exit == Some(0))
            );
        }
        if let Some(a) = &self.apply_global {
            let ratio = a.wall.as_secs_f64() / a.bound.as_secs_f64().max(1e-9);
            let _ = writeln!(
                t,
                "| apply under {} req/{WINDOW_S} s account-wide: failures | {} failed, {} skipped of {} changes | {} \
                 writes, {} HTTP 429s absorbed | | 0 | {} |",
                a.limit,
                a.failed,
                a.skipped,
                a.applied + a.failed + a.skipped,
                a.writes,
                a.rate_limited,
                mark(a.failed + a.skipped == 0)
            );
            let _ = writeln!(
                t,
                "| apply under the account-wide window: wall | {} | ceil({} / {}) × {WINDOW_S} s = {} (every write) | \
                 {ratio:.2} | ≤ {TARGET_APPLY_RATIO} | {} |",
                secs(a.wall),
                a.busiest_writes,
                a.limit,
                secs(a.bound),
                mark(ratio <= TARGET_APPLY_RATIO)
            );
        }
        t
    }

    /// The whole `BENCHMARKS.md`.
    pub fn markdown(&self) -> String {
        let p = &self.params;
        let c = &self.counts;
        let r = &self.rmin;
        let mut md = String::new();
        md.push_str("# ldexp benchmarks\n\n");
        md.push_str("Generated by `ldexp-bench` (`crates/bench`); every figure below comes from the one run shown. ");
        md.push_str("See the README's Benchmarks section for what each figure means and how it is measured.\n\n");
        let _ = writeln!(md, "**Machine:** {}\n", self.machine);
        let _ = writeln!(md, "**Command:**\n\n```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            md,
            "**Fixture:** {} experiments in {} environments, {} flags, {} metrics and {} metric groups in one project; \
             emulator latency {} ms per request, client concurrency {}.\n",
            p.experiments, p.environments, p.flags, c.metrics, c.metric_groups, p.latency_ms, p.concurrency
        );
        md.push_str("## Results\n\n");
        md.push_str(&self.table());
        md.push('\n');
        if !self.notes.is_empty() {
            md.push_str("## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
            md.push('\n');
        }
        md.push_str("## R_min, computed from the fixture\n\n");
        md.push_str(
            "R_min v2 is the fewest requests the v2 contract's endpoints allow; R_min v1, one experiment list per \
             environment and one GET per flag, was the bound before them.\n\n",
        );
        md.push_str("| part | R_min v2 | R_min v1 |\n|---|---|---|\n");
        let remote: usize = c.remote_experiments.values().sum();
        let v1_lists: usize = c
            .remote_experiments
            .iter()
            .filter(|(env, _)| c.targeted_environments.contains(*env))
            .map(|(_, n)| n.div_ceil(crate::rmin::EXPERIMENT_PAGE).max(1))
            .sum();
        let _ = writeln!(
            md,
            "| experiments: {remote} in {} environments, pages of {} (v2: one listing of every environment; v1: one \
             list per environment) | {} | {v1_lists} |",
            c.targeted_environments.len(),
            crate::rmin::EXPERIMENT_PAGE,
            r.experiment_pages
        );
        let _ = writeln!(
            md,
            "| flags: {} referenced, {} listed (v2: {}; v1: one GET each) | {} | {} |",
            c.referenced_flags.len(),
            c.listed_flags,
            if r.flags_listed {
                format!("the list in {} environments, {} a page", c.flag_environments.len(), crate::rmin::FLAG_ENV_PAGE)
            } else {
                "one GET each, fewer than the list's pages".to_owned()
            },
            r.flags,
            c.referenced_flags.len()
        );
        let _ = writeln!(
            md,
            "| metric pages ({} metrics, limit 50) | {} | {} |",
            c.metrics, r.metric_pages, r.metric_pages
        );
        let _ = writeln!(
            md,
            "| metric-group pages ({} groups) | {} | {} |",
            c.metric_groups, r.metric_group_pages, r.metric_group_pages
        );
        let _ = writeln!(md, "| experimentation settings | {} | {} |", r.settings, r.settings);
        let _ = writeln!(md, "| **total** | **{}** | **{}** |\n", r.total(), r.v1);

        md.push_str("## Requests the plan made, per route (from `/_emulator/stats`)\n\n");
        md.push_str("| route | requests |\n|---|---|\n");
        for (route, n) in &self.plan.requests_by_route {
            let _ = writeln!(md, "| `{route}` | {n} |");
        }
        let _ = writeln!(
            md,
            "\nSpec loading ({} files) took {} and is not part of the plan wall above.\n",
            p.experiments + c.legacy_changed + c.legacy_unchanged,
            secs(self.plan.load)
        );

        md.push_str("## The fixture's mix\n\n| spec'd object | count |\n|---|---|\n");
        for (kind, n) in &c.kinds {
            let _ = writeln!(md, "| experiment: {} | {n} |", kind.label());
        }
        let _ = writeln!(md, "| legacy flag spec, unchanged | {} |", c.legacy_unchanged);
        let _ = writeln!(md, "| legacy flag spec, starts recording in a second environment | {} |", c.legacy_changed);
        let _ = writeln!(md, "| remote experiment in no spec (listed, reported as unmanaged) | {} |", c.unmanaged);
        let _ = writeln!(
            md,
            "\nThe plan has {} changes with {} writes and reports {} unmanaged experiments.\n",
            self.plan.changes, self.plan.writes, self.plan.unmanaged
        );

        if let Some(a) = &self.apply {
            md.push_str("## Apply under the rate limit\n\n");
            let _ = writeln!(
                md,
                "The emulator allows {} requests per {WINDOW_S} s window **per route** (`METHOD` + URL pattern, as \
                 LaunchDarkly does), so routes drain in parallel and the bound is set by the busiest one: \
                 `ceil({} / {}) × {WINDOW_S} s = {}` for `{}`. Writes per route:\n",
                a.limit,
                a.busiest_writes,
                a.limit,
                secs(a.bound),
                a.busiest_route
            );
            md.push_str("| route | writes |\n|---|---|\n");
            for (route, n) in &a.writes_by_route {
                let _ = writeln!(md, "| `{route}` | {n} |");
            }
            let _ = writeln!(
                md,
                "\nResult: {} applied, {} failed, {} skipped; {} answers were HTTP 429 and were waited out.",
                a.applied, a.failed, a.skipped, a.rate_limited
            );
            if let Some(n) = a.replan_changes {
                let _ = writeln!(md, "A fresh plan after the apply has {n} changes.");
            }
            md.push('\n');
        }
        md
    }
}

/// `new_md` with a "previous run" column in its results table, holding what `old_md` (the report this run
/// replaces) measured for the same figure, so a reader sees both runs side by side. Figures the old report lacks
/// show `–`; without an old report the table is unchanged.
pub fn with_previous(new_md: &str, old_md: Option<&str>) -> String {
    let Some(old_md) = old_md else { return new_md.to_owned() };
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect()
    };
    let header = "| figure | measured |";
    let old: std::collections::BTreeMap<String, String> = old_md
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let c = cells(l);
            Some((c.first()?.clone(), c.get(1)?.clone()))
        })
        .collect();
    let mut out = String::new();
    let mut in_table = false;
    for line in new_md.lines() {
        if line.starts_with(header) {
            in_table = true;
            out.push_str(&line.replacen("| measured |", "| measured | previous run |", 1));
        } else if in_table && line.starts_with("|---") {
            out.push_str(&line.replacen("|---|", "|---|---|", 1));
        } else if in_table && line.starts_with('|') {
            let c = cells(line);
            let previous = c.first().and_then(|f| old.get(f)).map_or("–", String::as_str);
            let mut c = c.clone();
            c.insert(2.min(c.len()), previous.to_owned());
            out.push_str(&format!("| {} |", c.join(" | ")));
        } else {
            in_table = false;
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod previous_tests {
    #[test]
    fn the_previous_run_sits_beside_each_figure() {
        let old =
            "# b\n\n| figure | measured | bound | met |\n|---|---|---|---|\n| plan wall | 415 ms | 206 ms | no |\n";
        let new = "# b\n\n| figure | measured | bound | met |\n|---|---|---|---|\n| plan wall | 298 ms | 206 ms | no |\n\
                   | export | 1 s | x | no |\n\nafter\n";
        assert_eq!(
            super::with_previous(new, Some(old)),
            "# b\n\n| figure | measured | previous run | bound | met |\n|---|---|---|---|---|\n\
             | plan wall | 298 ms | 415 ms | 206 ms | no |\n| export | 1 s | – | x | no |\n\nafter\n"
        );
        assert_eq!(super::with_previous(new, None), new);
    }
}
