//! `ldexp conformance` (issue #18): says what it will do and leave behind, asks (unless `--yes`), runs the probes of
//! `ldexp_core::conformance` against `LD_BASE_URL`, cleans up even on Ctrl-C, and prints one line per rule as
//! text, JSON or markdown. Exit 0 when nothing differs, 2 when a rule differs, 1 on an error or a failed cleanup.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use ldexp_core::conformance::{Ledger, Outcome, Report, Target, Verdict, plan_text, probe_all};
use serde::Serialize;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render::markdown;

/// The dated version whose acceptance on experiment routes one probe checks (contract §1).
const DATED_VERSION: &str = "20240415";

/// `ldexp conformance`.
#[derive(Debug, Args)]
pub(crate) struct ConformanceArgs {
    /// Project key the probes run in.
    #[arg(long)]
    pub project: String,
    /// Environment the probes run in.
    #[arg(long)]
    pub environment: String,
    /// A flag the probes may borrow: on in the environment, with at least two variations and a targeting rule. Its
    /// first rule serves an experiment for a moment; cleanup puts it back and checks the targeting is as before.
    #[arg(long)]
    pub flag: String,
    /// The member id the probes' creates name as maintainer; needed with a service token (contract §9.7).
    #[arg(long, value_name = "ID")]
    pub maintainer_id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ConformanceFormat,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Output format of `conformance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConformanceFormat {
    /// One line per rule, then the cleanup.
    Human,
    /// `{"project", "environment", "flag", "rules": [{"rule", "section", "statement", "verdict", "seen"|"why"|"note"}], "cleanup": {...}}`.
    Json,
    /// A GitHub markdown table, then the cleanup.
    Markdown,
}

/// Runs `conformance`.
pub(crate) fn run(args: &ConformanceArgs, g: &Globals) -> Result<ExitStatus> {
    let result = crate::client::runtime()?.block_on(conformance(args, g));
    // A program reading `--format json` gets JSON on a failure too, as from plan and drift.
    if let Err(e) = &result
        && args.format == ConformanceFormat::Json
    {
        super::write_stdout(&super::json_error(e))?;
    }
    result
}

async fn conformance(args: &ConformanceArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let mut dated_connection = args.connection.clone();
    DATED_VERSION.clone_into(&mut dated_connection.api_version_beta);
    let dated = crate::client::client(&dated_connection)?;
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let mut target =
        Target::new(&args.project, &args.environment, &args.flag, u64::try_from(millis).unwrap_or(u64::MAX));
    target.maintainer_id.clone_from(&args.maintainer_id);
    // Read (and checked) before asking, so that an unusable flag is said before anyone says yes.
    let mut ledger = Ledger::default();
    ledger.borrow_flag(&client, &target).await?;
    // On stderr, so that `--format json` keeps stdout a single document.
    if !g.quiet || !args.yes {
        eprintln!("{}", plan_text(&target));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to run without confirmation: stdin is not a terminal; pass --yes");
        }
        if !super::apply::confirm("Run these probes? [y/N] ")? {
            eprintln!("Cancelled; nothing was sent.");
            return Ok(ExitStatus::Failure);
        }
    }
    // The probes are dropped on Ctrl-C; the ledger stays here, so cleanup still archives what they created.
    let probing = probe_all(&client, Some(&dated), &target, &mut ledger);
    let (outcomes, interrupted) = tokio::select! {
        outcomes = probing => (outcomes, false),
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nInterrupted: cleaning up before exiting. Press Ctrl-C again to exit at once.");
            (Vec::new(), true)
        }
    };
    let outstanding = ledger.outstanding(&target);
    let cleanup = tokio::select! {
        cleanup = ledger.clean(&client, &target) => cleanup,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nInterrupted during cleanup: exiting now. It may not have got to:");
            for line in &outstanding {
                eprintln!("  {line}");
            }
            std::process::exit(i32::from(ExitStatus::Interrupted.code()));
        }
    };
    let report = Report { outcomes, cleanup };
    let text = match args.format {
        ConformanceFormat::Human => human(&report),
        ConformanceFormat::Json => crate::render::to_pretty_json(&Document::of(args, &report)),
        ConformanceFormat::Markdown => markdown_text(&report, args, client.config().base_url.as_str()),
    };
    super::write_stdout(&text)?;
    Ok(if interrupted {
        ExitStatus::Interrupted
    } else if report.cleanup_failed() {
        ExitStatus::Failure
    } else if report.differs() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// The JSON document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    project: &'a str,
    environment: &'a str,
    flag: &'a str,
    rules: Vec<Rule<'a>>,
    cleanup: &'a ldexp_core::conformance::Cleanup,
}

/// One rule in the JSON document: its section and statement, then the outcome (whose `rule` is the rule's id).
#[derive(Debug, Serialize)]
struct Rule<'a> {
    section: &'static str,
    statement: &'static str,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

impl<'a> Document<'a> {
    fn of(args: &'a ConformanceArgs, report: &'a Report) -> Self {
        Document {
            project: &args.project,
            environment: &args.environment,
            flag: &args.flag,
            rules: report
                .outcomes
                .iter()
                .map(|o| Rule { section: o.rule.section(), statement: o.rule.statement(), outcome: o })
                .collect(),
            cleanup: &report.cleanup,
        }
    }
}

/// `holds`, `differs: <seen>` or `could not run: <why>`.
fn verdict_text(o: &Outcome) -> String {
    match &o.verdict {
        Verdict::Holds => "holds".to_owned(),
        Verdict::Differs { seen } => format!("differs: {seen}"),
        Verdict::CouldNotRun { why } => format!("could not run: {why}"),
    }
}

/// One line per rule: the id, the section, the verdict with what was seen when it differs or why it could not run.
/// What a holding probe saw is in the JSON and markdown reports, which are the ones worth filing.
fn human(report: &Report) -> String {
    let mut out = format!("{:<29} {:<6} {}\n", "RULE", "§", "VERDICT");
    for o in &report.outcomes {
        out.push_str(&format!("{:<29} {:<6} {}\n", o.rule.id(), o.rule.section(), verdict_text(o)));
    }
    let counts = |f: fn(&Verdict) -> bool| report.outcomes.iter().filter(|o| f(&o.verdict)).count();
    out.push_str(&format!(
        "\n{} hold, {} differ, {} could not run.\n",
        counts(|v| matches!(v, Verdict::Holds)),
        counts(|v| matches!(v, Verdict::Differs { .. })),
        counts(|v| matches!(v, Verdict::CouldNotRun { .. }))
    ));
    if report.differs() {
        out.push_str(
            "A rule differs: please file the markdown report (--format markdown) at https://github.com/ldexp/ldexp/issues.\n",
        );
    }
    out.push_str(&cleanup_lines(report, ""));
    out
}

/// What cleanup did and left; `bullet` starts each item (`- ` in markdown).
fn cleanup_lines(report: &Report, bullet: &str) -> String {
    let c = &report.cleanup;
    let item = if bullet.is_empty() { "  " } else { bullet };
    let mut out = String::from("\nCleanup:\n");
    if !bullet.is_empty() {
        out.push('\n');
    }
    if !c.restored.is_empty() {
        out.push_str(&format!("{item}put the flag's {} back as they were\n", c.restored.join(", ")));
    }
    if c.flag_verified {
        out.push_str(&format!("{item}the flag's targeting is as it was before the run (versions aside)\n"));
    }
    for p in &c.problems {
        out.push_str(&format!("{item}problem: {p}\n"));
    }
    if c.left_behind.is_empty() {
        out.push_str(&format!("{item}nothing left behind\n"));
    } else {
        out.push_str(&format!("{item}left behind:\n"));
        let sub = if bullet.is_empty() { "    " } else { "  - " };
        for l in &c.left_behind {
            out.push_str(&format!("{sub}{l}\n"));
        }
    }
    out
}

/// A report to paste into an issue: which ldexp, against what, then one row per rule with everything seen.
fn markdown_text(report: &Report, args: &ConformanceArgs, base_url: &str) -> String {
    let mut out = format!(
        "### ldexp conformance\n\nldexp {} against {} (project {}, environment {}, flag {})\n\n",
        crate::VERSION,
        markdown::code(base_url, true),
        markdown::code(&args.project, true),
        markdown::code(&args.environment, true),
        markdown::code(&args.flag, true)
    );
    out.push_str("| § | Rule | ldexp assumes | Verdict | Seen |\n|---|---|---|---|---|\n");
    for o in &report.outcomes {
        let (verdict, seen) = match (&o.verdict, &o.note) {
            (Verdict::Holds, note) => ("holds", note.clone().unwrap_or_default()),
            (Verdict::Differs { seen }, _) => ("**differs**", seen.clone()),
            (Verdict::CouldNotRun { why }, _) => ("could not run", why.clone()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {verdict} | {} |\n",
            o.rule.section(),
            markdown::code(o.rule.id(), true),
            markdown::cell(o.rule.statement()),
            markdown::cell(&seen)
        ));
    }
    out.push_str(&cleanup_lines(report, "- "));
    out
}
