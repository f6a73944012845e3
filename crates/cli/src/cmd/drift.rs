//! `ldexp drift`: for cron and CI. Plans without writing and reports what differs: exit 0 in sync, 2 on drift,
//! 1 on error. With `--baseline REF` (or `--baseline-dir DIR`) each difference is classed as drift, pending or
//! conflict against the specs as last applied, and only drift and conflicts exit 2.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use ldexp_core::client::{IdentityReads, OrgReads, PlanReads};
use ldexp_core::plan::Plan;
use ldexp_core::remote::Requirements;
use ldexp_planner::PlanOptions;

use super::plan::{Format, plan_for};
use crate::baseline::Source;
use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render::drift::{self, DriftReport};

/// `ldexp drift`.
#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// Spec files or directories (searched for *.yaml / *.yml).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Output format; `json` lists each drifted object with the fields that differ, remote value vs spec value.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// The git revision (tag or commit) last applied: each difference is then drift (the remote moved), pending
    /// (the spec changed, not yet applied) or a conflict (both moved); pending alone exits 0.
    #[arg(long, value_name = "REF", conflicts_with = "baseline_dir")]
    pub baseline: Option<String>,
    /// Like `--baseline`, with the specs as last applied in a folder.
    #[arg(long, value_name = "DIR")]
    pub baseline_dir: Option<PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `drift`.
pub(crate) fn run(args: &DriftArgs, g: &Globals) -> Result<ExitStatus> {
    let source = match (&args.baseline, &args.baseline_dir) {
        (Some(r), _) => Some(Source::Git(r.clone())),
        (None, Some(d)) => Some(Source::Dir(d.clone())),
        (None, None) => None,
    };
    crate::client::runtime()?.block_on(async {
        let report = match &source {
            None => DriftReport::from_plan(&plan_for(&args.connection, &args.paths, false, args.format).await?),
            Some(source) => {
                let classified = async {
                    let client = crate::client::client(&args.connection)?;
                    classified_report(&client, &args.paths, source).await
                };
                match classified.await {
                    Ok(r) => r,
                    Err(e) => {
                        // As `plan_for` does: a program reading JSON from stdout gets JSON even on failure.
                        if args.format == Format::Json {
                            super::write_stdout(&super::json_error(&e))?;
                        }
                        return Err(e);
                    }
                }
            }
        };
        super::write_stdout(&rendered(&report, args.format, g.color_stdout()))?;
        Ok(status(&report))
    })
}

/// The report in `format`.
pub(crate) fn rendered(report: &DriftReport, format: Format, color: bool) -> String {
    match format {
        Format::Human => drift::human(report, color),
        Format::Json => drift::json(report),
        Format::Markdown => drift::markdown(report),
    }
}

/// `Success` (0) in sync (or, with a baseline, only pending), `Changes` (2) on drift or conflict: the same test as
/// the report's summary line.
pub(crate) fn status(report: &DriftReport) -> ExitStatus {
    if report.needs_attention() { ExitStatus::Changes } else { ExitStatus::Success }
}

/// Plans the current specs and the baseline's against one read of LaunchDarkly (so both see the same remote), and
/// classes the differences.
async fn classified_report<R: PlanReads + OrgReads + IdentityReads>(
    client: &R,
    paths: &[PathBuf],
    source: &Source,
) -> Result<DriftReport> {
    let specs = ldexp_core::spec::load(paths)?;
    let baseline = crate::baseline::load(source, paths)?;
    let mut requirements = Requirements::of(&specs);
    union(&mut requirements, Requirements::of(&baseline));
    let spinner = super::plan::spinner("Reading LaunchDarkly");
    let remote = ldexp_core::fetch::fetch_remote(client, &requirements).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let remote = remote?;
    let options = PlanOptions { prune: false };
    let mut current = ldexp_planner::plan_with(&specs, &remote, &options).map_err(|e| {
        // Each problem names its spec location; the error itself only counts them.
        for p in e.problems() {
            eprintln!("{p}");
        }
        anyhow::Error::from(e)
    })?;
    let label = source.label();
    let before: Plan = ldexp_planner::plan_with(&baseline, &remote, &options).map_err(|e| {
        for p in e.problems() {
            eprintln!("baseline {label}: {p}");
        }
        anyhow::Error::from(e).context(format!(
            "cannot plan the baseline specs at `{label}` against LaunchDarkly; check that the revision holds specs \
             this ldexp reads"
        ))
    })?;
    ldexp_core::identity::warn_service_token(client, &mut current).await;
    let mut report = DriftReport::from_plan(&current);
    crate::render::drift_baseline::classify(&mut report, &current, &before, &label);
    Ok(report)
}

/// Adds `other` to `r`, so one fetch serves the current and the baseline specs. Destructured, so a new kind of
/// requirement fails to compile here rather than going unfetched.
fn union(r: &mut Requirements, other: Requirements) {
    let Requirements {
        experiment_lists,
        flags,
        flag_environments,
        metrics,
        settings,
        layers,
        holdouts,
        holdout_details,
    } = other;
    r.experiment_lists.extend(experiment_lists);
    r.flags.extend(flags);
    r.flag_environments.extend(flag_environments);
    r.metrics.extend(metrics);
    r.settings.extend(settings);
    r.layers.extend(layers);
    r.holdouts.extend(holdouts);
    r.holdout_details.extend(holdout_details);
}
