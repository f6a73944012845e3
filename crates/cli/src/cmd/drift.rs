//! `ldexp drift`: for cron and CI. Plans without writing and reports what differs: exit 0 in sync, 2 on drift,
//! 1 on error.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::plan::{Format, plan_for};
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
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `drift`.
pub(crate) fn run(args: &DriftArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(async {
        let plan = plan_for(&args.connection, &args.paths, false, args.format).await?;
        let report = DriftReport::from_plan(&plan);
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

/// `Success` (0) in sync, `Changes` (2) on drift: the same test as the report's summary line.
pub(crate) fn status(report: &DriftReport) -> ExitStatus {
    if report.in_sync { ExitStatus::Success } else { ExitStatus::Changes }
}
