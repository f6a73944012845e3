//! `ldexp apply`: plan (or check a saved plan against a fresh one), confirm, execute through the core applier,
//! report each object as it finishes (applied, failed, skipped or stopped), and stop cleanly on Ctrl-C.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ldexp_core::apply::{
    ApplyEvent, ApplyOptions, ApplyReport, ChangeOutcome, OutcomeStatus, Staleness, Verdict, apply, compare,
};
use ldexp_core::client::{ObjectReads, Writer};
use ldexp_core::plan::Plan;

use super::plan::{Format, fresh_plan, read_plan, rendered};
use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render;

/// `ldexp apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
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
pub(crate) fn run(args: &ApplyArgs, g: &Globals) -> Result<ExitStatus> {
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
            // `-q` keeps results and errors only: the plan's closing sentence says what is about to happen.
            let shown = if g.quiet {
                format!("{}\n", render::summary_line(&plan))
            } else {
                rendered(&plan, Format::Human, g.color_stdout())
            };
            super::write_stdout(&shown)?;
            if plan.is_empty() {
                return Ok(refusal_status(&plan));
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
        super::write_stdout(&format!("{}\n", render::summary_line(&plan)))?;
        return Ok(refusal_status(&plan));
    }
    let grace = args.connection.timeout.min(MAX_GRACE);
    let report = match execute(&plan, &client, args.connection.concurrency, grace).await {
        Execution::Finished(report) => report,
        Execution::Abandoned => {
            eprintln!(
                "Gave up waiting after {} s for the requests in flight; their outcome is unknown. Run `ldexp plan` to \
                 see what took effect, then `ldexp apply` again to finish.",
                grace.as_secs()
            );
            return Ok(ExitStatus::Interrupted);
        }
    };
    super::write_stdout(&closing(&report, &plan))?;
    Ok(if report.interrupted() {
        ExitStatus::Interrupted
    } else if report.succeeded() {
        refusal_status(&plan)
    } else {
        ExitStatus::Failure
    })
}

/// Refused objects are errors: apply did everything else, and the spec still needs fixing.
fn refusal_status(plan: &Plan) -> ExitStatus {
    if plan.refused_addresses().is_empty() { ExitStatus::Success } else { ExitStatus::Failure }
}

/// The longest wait for requests in flight after the first Ctrl-C; never longer than one request's timeout.
const MAX_GRACE: Duration = Duration::from_secs(30);

/// How an apply ended.
pub(crate) enum Execution {
    /// Every object finished, failed, was skipped, or was interrupted cleanly (requests in flight finished).
    Finished(ApplyReport),
    /// Interrupted, and the requests in flight did not finish within the grace period.
    Abandoned,
}

/// Applies, printing one line per object as it finishes, with a progress bar on stderr when it is a terminal.
///
/// The first Ctrl-C stops sending: requests in flight finish (for at most `grace`), everything else is reported as
/// interrupted. A second Ctrl-C exits at once with 130.
pub(crate) async fn execute<C: ObjectReads + Writer>(
    plan: &Plan,
    client: &C,
    concurrency: usize,
    grace: Duration,
) -> Execution {
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
    let stop = options.stop.clone();
    let pb = bar.clone();
    options.on_event = Some(Arc::new(move |e: &ApplyEvent<'_>| match e {
        ApplyEvent::Started { address } => {
            if let Some(pb) = &pb {
                pb.set_message(address.to_string());
            }
        }
        ApplyEvent::Verifying { address, .. } => {
            if let Some(pb) = &pb {
                pb.set_message(format!("{address}: response lost, re-reading"));
            }
        }
        ApplyEvent::Finished { outcome } => {
            // Streamed as objects finish, so an interrupted or killed run has already said what it did.
            let line = object_line(outcome);
            match &pb {
                Some(pb) => {
                    pb.suspend(|| super::write_stdout(&line).ok());
                    pb.inc(1);
                }
                None => {
                    let _ = super::write_stdout(&line);
                }
            }
        }
    }));
    let applying = apply(plan, client, &options);
    tokio::pin!(applying);
    let outcome = tokio::select! {
        report = &mut applying => Execution::Finished(report),
        _ = tokio::signal::ctrl_c() => {
            stop.store(true, Ordering::SeqCst);
            let note = format!(
                "\nInterrupted: sending nothing new, waiting up to {} s for the requests in flight. Press Ctrl-C \
                 again to exit at once.",
                grace.as_secs()
            );
            match &bar {
                Some(pb) => pb.suspend(|| eprintln!("{note}")),
                None => eprintln!("{note}"),
            }
            tokio::select! {
                report = &mut applying => Execution::Finished(report),
                _ = tokio::time::sleep(grace) => Execution::Abandoned,
                _ = tokio::signal::ctrl_c() => {
                    if let Some(pb) = &bar {
                        pb.finish_and_clear();
                    }
                    eprintln!(
                        "Interrupted again: exiting now. Requests in flight may or may not have taken effect; run \
                         `ldexp plan` to see what is left."
                    );
                    std::process::exit(i32::from(ExitStatus::Interrupted.code()));
                }
            }
        }
    };
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    outcome
}

/// Asks on the terminal; anything but `y`/`yes` is no.
pub(crate) fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    err.write_all(question.as_bytes())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// One object's result line (with its error and hint when it failed), as printed when it finishes.
pub(crate) fn object_line(o: &ChangeOutcome) -> String {
    let mut out = String::new();
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
        OutcomeStatus::Interrupted => {
            let _ = writeln!(
                out,
                "  stopped  {} [{}]: interrupted after {} of {} request(s){extra}",
                o.address, o.action, o.requests_done, o.requests_total
            );
        }
    }
    out
}

/// What follows the streamed lines: the counts, and what to do next.
pub(crate) fn closing(report: &ApplyReport, plan: &Plan) -> String {
    let c = report.counts();
    let mut out = String::from("\n");
    if report.interrupted() {
        let _ = writeln!(
            out,
            "Apply interrupted: {} applied, {} failed, {} skipped, {} not finished. Run `ldexp apply` again to \
             finish; `ldexp plan` shows what is left.",
            c.applied, c.failed, c.skipped, c.interrupted
        );
    } else {
        let _ = writeln!(
            out,
            "{}: {} applied, {} failed, {} skipped.",
            if report.succeeded() { "Apply complete" } else { "Apply incomplete" },
            c.applied,
            c.failed,
            c.skipped
        );
        if !report.succeeded() {
            out.push_str("Run `ldexp plan` to see what remains; `ldexp apply` again converges safely.\n");
        }
    }
    let refused = plan.refused_addresses();
    if !refused.is_empty() {
        let list: Vec<String> = refused.iter().map(ToString::to_string).collect();
        // Each refusal's own hint says what to do: a spec to fix, or a token's role to widen.
        let _ = writeln!(
            out,
            "Refused, nothing sent: {}. See \"Cannot be applied\" in the plan for why, and what to do.",
            list.join(", ")
        );
    }
    out
}

/// Why a saved plan was refused, object by object.
pub(crate) fn stale_report(s: &Staleness, file: &str) -> String {
    let mut out = if s.specs_changed {
        format!("Error: stale plan: the specs changed since {file} was made; nothing was applied.\n")
    } else {
        format!("Error: stale plan: {file} no longer matches LaunchDarkly; nothing was applied.\n")
    };
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
pub(crate) fn partial_note(s: &Staleness) -> String {
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
    fn each_object_gets_its_line_with_the_error_and_its_hint_and_the_closing_counts_them() {
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
        let lines: String = report.outcomes.iter().map(object_line).collect();
        assert_eq!(
            lines,
            "  applied  experiment/demo/production/a [create] (1 lost response(s) confirmed by re-reading, 0 \
             request(s) resent)\n  failed   experiment/demo/production/b [create] at request 2/2 (PATCH /x) (0 lost \
             response(s) confirmed by re-reading, 3 request(s) resent)\n           experiment \
             demo/production/b: PATCH /api/v2/projects/demo/environments/production/experiments/b failed with HTTP \
             409 optimistic_locking_error: conflict\n           hint: the object changed concurrently (optimistic \
             locking); run `ldexp plan` again and re-apply\n  skipped  experiment/demo/production/c [create]: not \
             attempted\n"
        );
        let plan = crate::render::golden::empty();
        assert_eq!(
            closing(&report, &plan),
            "\nApply incomplete: 1 applied, 1 failed, 1 skipped.\nRun `ldexp plan` to see what remains; `ldexp \
             apply` again converges safely.\n"
        );
        let ok = ApplyReport { outcomes: vec![outcome("a", OutcomeStatus::Applied, 0, 0)] };
        assert_eq!(closing(&ok, &plan), "\nApply complete: 1 applied, 0 failed, 0 skipped.\n");
    }

    #[test]
    fn an_interrupted_apply_says_what_was_left_and_how_to_finish() {
        let mut stopped = outcome("b", OutcomeStatus::Interrupted, 0, 0);
        stopped.requests_done = 1;
        assert_eq!(
            object_line(&stopped),
            "  stopped  experiment/demo/production/b [create]: interrupted after 1 of 2 request(s)\n"
        );
        let report = ApplyReport {
            outcomes: vec![
                outcome("a", OutcomeStatus::Applied, 0, 0),
                stopped,
                outcome("c", OutcomeStatus::Interrupted, 0, 0),
            ],
        };
        assert_eq!(
            closing(&report, &crate::render::golden::empty()),
            "\nApply interrupted: 1 applied, 0 failed, 0 skipped, 2 not finished. Run `ldexp apply` again to finish; \
             `ldexp plan` shows what is left.\n"
        );
    }

    #[test]
    fn a_stale_report_shows_what_moved_and_partial_applies_are_noted() {
        let s = Staleness {
            plan_reasons: vec!["the specs changed".into()],
            specs_changed: true,
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
            "Error: stale plan: the specs changed since plan.json was made; nothing was applied.\n  - the specs \
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
