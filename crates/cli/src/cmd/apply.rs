//! `ldexp apply`: plan (or check a saved plan against a fresh one), confirm, execute through the core applier and
//! report every object as applied, failed or skipped.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ldexp_core::apply::{ApplyEvent, ApplyOptions, ApplyReport, OutcomeStatus, Staleness, Verdict, apply, compare};
use ldexp_core::client::{Reader, Writer};
use ldexp_core::plan::Plan;

use super::plan::{Format, fresh_plan, read_plan, rendered};
use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;

/// `ldexp apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Spec files or directories (searched for *.yaml / *.yml).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Apply a plan saved by `ldexp plan --out`, after checking it still fits the remote.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Archive experiments that exist in a targeted environment but are in no spec.
    #[arg(long, conflicts_with = "plan")]
    pub prune: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `apply`.
pub fn run(args: &ApplyArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &ApplyArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let plan = match &args.plan {
        Some(file) => {
            let saved = read_plan(file)?;
            let fresh = fresh_plan(&client, &args.paths, saved.prune).await?;
            let staleness = compare(&saved, &fresh);
            if staleness.is_stale() {
                eprint!("{}", stale_report(&staleness, &file.display().to_string()));
                return Ok(ExitStatus::Stale);
            }
            if !g.quiet {
                super::write_stdout(&partial_note(&staleness))?;
            }
            fresh
        }
        None => {
            let plan = fresh_plan(&client, &args.paths, args.prune).await?;
            super::write_stdout(&rendered(&plan, Format::Human, g.color_stdout()))?;
            if plan.is_empty() {
                return Ok(ExitStatus::Success);
            }
            if !args.auto_approve {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve");
                }
                if !confirm("\nApply these changes? [y/N] ")? {
                    super::write_stdout("Apply cancelled; nothing was sent.\n")?;
                    return Ok(ExitStatus::Failure);
                }
            }
            plan
        }
    };
    if plan.is_empty() {
        super::write_stdout("No changes. Remote matches the specs.\n")?;
        return Ok(ExitStatus::Success);
    }
    let report = execute(&plan, &client, args.connection.concurrency).await;
    super::write_stdout(&report_text(&report))?;
    Ok(if report.succeeded() { ExitStatus::Success } else { ExitStatus::Failure })
}

/// Applies with a progress bar on stderr when it is a terminal.
pub async fn execute<C: Reader + Writer>(plan: &Plan, client: &C, concurrency: usize) -> ApplyReport {
    let total = plan.changes.iter().filter(|c| !c.requests.is_empty()).count() as u64;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });
    let mut options = ApplyOptions { concurrency, ..ApplyOptions::default() };
    if let Some(pb) = bar.clone() {
        options.on_event = Some(Arc::new(move |e: &ApplyEvent| match e {
            ApplyEvent::Started { address } => pb.set_message(address.to_string()),
            ApplyEvent::Verifying { address, .. } => pb.set_message(format!("{address}: response lost, re-reading")),
            ApplyEvent::Finished { .. } => pb.inc(1),
        }));
    }
    let report = apply(plan, client, &options).await;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    report
}

/// Asks on the terminal; anything but `y`/`yes` is no.
pub fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    err.write_all(question.as_bytes())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// The end report: one line per object, errors with their hint, then the counts.
pub fn report_text(report: &ApplyReport) -> String {
    let mut out = String::from("\n");
    for o in &report.outcomes {
        let extra = match (o.recovered, o.resent) {
            (0, 0) => String::new(),
            (r, s) => format!(" ({r} lost response(s) confirmed by re-reading, {s} request(s) resent)"),
        };
        match &o.status {
            OutcomeStatus::Applied => {
                let _ = writeln!(out, "  applied  {} [{}]{extra}", o.address, o.action);
            }
            OutcomeStatus::Failed { step, request, error } => {
                let _ = writeln!(
                    out,
                    "  failed   {} [{}] at request {}/{} ({request}){extra}\n           {error}",
                    o.address,
                    o.action,
                    step + 1,
                    o.requests_total
                );
                if let Some(hint) = error.hint() {
                    let _ = writeln!(out, "           hint: {hint}");
                }
            }
            OutcomeStatus::Skipped { reason } => {
                let _ = writeln!(out, "  skipped  {} [{}]: {reason}", o.address, o.action);
            }
        }
    }
    let (applied, failed, skipped) = report.counts();
    let _ = writeln!(
        out,
        "\n{}: {applied} applied, {failed} failed, {skipped} skipped.",
        if report.succeeded() { "Apply complete" } else { "Apply incomplete" }
    );
    if !report.succeeded() {
        out.push_str("Run `ldexp plan` to see what remains; `ldexp apply` again converges safely.\n");
    }
    out
}

/// Why a saved plan was refused, object by object.
pub fn stale_report(s: &Staleness, file: &str) -> String {
    let mut out = format!("Error: stale plan: {file} no longer matches LaunchDarkly; nothing was applied.\n");
    for r in &s.plan_reasons {
        let _ = writeln!(out, "  - {r}");
    }
    for o in &s.objects {
        if let Verdict::Stale { reasons } = &o.verdict {
            let _ = writeln!(out, "  {}:", o.address);
            for r in reasons {
                let _ = writeln!(out, "    - {r}");
            }
            let _ = writeln!(out, "    saved: {}", list(&o.saved_requests));
            let _ = writeln!(out, "    fresh: {}", list(&o.fresh_requests));
        }
    }
    out.push_str("Run `ldexp plan` again, review it, and apply the new plan.\n");
    out
}

fn list(r: &[String]) -> String {
    if r.is_empty() { "(nothing)".into() } else { r.join(", ") }
}

/// Notes for objects an earlier apply got part way through.
pub fn partial_note(s: &Staleness) -> String {
    let mut out = String::new();
    for o in s.partially_applied() {
        if let Verdict::PartiallyApplied { done, remaining } = o.verdict {
            let _ = writeln!(
                out,
                "{}: partially applied before ({done} request(s) already took effect, {remaining} remaining).",
                o.address
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ldexp_core::apply::{ChangeOutcome, ObjectStaleness};
    use ldexp_core::plan::{Action, Address};
    use ldexp_core::{ApiError, Error};

    use super::*;

    fn addr(key: &str) -> Address {
        Address::Experiment { project: "demo".into(), environment: "production".into(), key: key.into() }
    }

    fn outcome(key: &str, status: OutcomeStatus, recovered: usize, resent: usize) -> ChangeOutcome {
        ChangeOutcome {
            address: addr(key),
            action: Action::Create,
            requests_done: 0,
            requests_total: 2,
            recovered,
            resent,
            status,
        }
    }

    #[test]
    fn the_report_lists_every_object_with_the_error_and_its_hint() {
        let error = Error::from(ApiError {
            resource: "experiment demo/production/b".into(),
            method: "PATCH".into(),
            path: "/api/v2/projects/demo/environments/production/experiments/b".into(),
            status: 409,
            code: Some("optimistic_locking_error".into()),
            message: "conflict".into(),
            request_id: None,
        });
        let report = ApplyReport {
            outcomes: vec![
                outcome("a", OutcomeStatus::Applied, 1, 0),
                outcome("b", OutcomeStatus::Failed { step: 1, request: "PATCH /x".into(), error }, 0, 3),
                outcome("c", OutcomeStatus::Skipped { reason: "not attempted".into() }, 0, 0),
            ],
        };
        assert_eq!(
            report_text(&report),
            "\n  applied  experiment/demo/production/a [create] (1 lost response(s) confirmed by re-reading, 0 \
             request(s) resent)\n  failed   experiment/demo/production/b [create] at request 2/2 (PATCH /x) (0 lost \
             response(s) confirmed by re-reading, 3 request(s) resent)\n           experiment \
             demo/production/b: PATCH /api/v2/projects/demo/environments/production/experiments/b failed with HTTP \
             409 optimistic_locking_error: conflict\n           hint: the object changed concurrently (optimistic \
             locking); run `ldexp plan` again and re-apply\n  skipped  experiment/demo/production/c [create]: not \
             attempted\n\nApply incomplete: 1 applied, 1 failed, 1 skipped.\nRun `ldexp plan` to see what remains; \
             `ldexp apply` again converges safely.\n"
        );
        let ok = ApplyReport { outcomes: vec![outcome("a", OutcomeStatus::Applied, 0, 0)] };
        assert_eq!(
            report_text(&ok),
            "\n  applied  experiment/demo/production/a [create]\n\nApply complete: 1 applied, 0 failed, 0 skipped.\n"
        );
    }

    #[test]
    fn a_stale_report_shows_what_moved_and_partial_applies_are_noted() {
        let s = Staleness {
            plan_reasons: vec!["the specs changed".into()],
            objects: vec![
                ObjectStaleness {
                    address: addr("a"),
                    verdict: Verdict::Stale { reasons: vec!["the remote object moved (x when planned, y now)".into()] },
                    saved_fingerprint: Some("x".into()),
                    fresh_fingerprint: Some("y".into()),
                    saved_requests: vec!["PATCH /a".into()],
                    fresh_requests: vec![],
                },
                ObjectStaleness {
                    address: addr("b"),
                    verdict: Verdict::PartiallyApplied { done: 1, remaining: 1 },
                    saved_fingerprint: None,
                    fresh_fingerprint: Some("z".into()),
                    saved_requests: vec!["POST /b".into(), "PATCH /b".into()],
                    fresh_requests: vec!["PATCH /b".into()],
                },
            ],
        };
        assert_eq!(
            stale_report(&s, "plan.json"),
            "Error: stale plan: plan.json no longer matches LaunchDarkly; nothing was applied.\n  - the specs \
             changed\n  experiment/demo/production/a:\n    - the remote object moved (x when planned, y now)\n    \
             saved: PATCH /a\n    fresh: (nothing)\nRun `ldexp plan` again, review it, and apply the new plan.\n"
        );
        assert_eq!(
            partial_note(&s),
            "experiment/demo/production/b: partially applied before (1 request(s) already took effect, 1 \
             remaining).\n"
        );
    }
}
