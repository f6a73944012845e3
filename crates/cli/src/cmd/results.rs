//! `ldexp results`: Bayesian results per treatment of an experiment's metrics, legacy results of a flag and metric,
//! and `results reset-legacy`; the arguments and the presentation (what to read and send is
//! `ldexp_core::results`'s). The results endpoints are deprecated upstream, so a 404 is a message, not a crash.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use ldexp_core::api::LegacyResults;
use ldexp_core::apply::OutcomeStatus;
use ldexp_core::client::{HttpClient, ResultsReads};
use ldexp_core::results::{Report, fetch_report};

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;

/// Output format of `results`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ResultsFormat {
    Human,
    Json,
}

/// `ldexp results`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ResultsArgs {
    #[command(subcommand)]
    pub command: Option<ResultsCommand>,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// What to show.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// Project key.
    #[arg(long, required = true)]
    pub project: Option<String>,
    /// Environment key.
    #[arg(long, required = true)]
    pub environment: Option<String>,
    /// Experiment key (new-model results).
    #[arg(long, required_unless_present = "flag", conflicts_with = "flag")]
    pub experiment: Option<String>,
    /// Flag key (legacy results; needs --metric).
    #[arg(long, requires = "metric")]
    pub flag: Option<String>,
    /// One metric or metric group; all of the iteration's when omitted.
    #[arg(long)]
    pub metric: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ResultsFormat,
    #[command(flatten)]
    pub connection: Connection,
}

/// `results` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ResultsCommand {
    /// Reset the legacy results of a flag and metric in an environment (asks first).
    ResetLegacy(ResetArgs),
}

/// `ldexp results reset-legacy`.
#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub flag: String,
    #[arg(long)]
    pub metric: String,
    /// Do not ask; required without a terminal.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `results`.
pub(crate) fn run(args: &ResultsArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &ResultsArgs, _g: &Globals) -> Result<ExitStatus> {
    if let Some(ResultsCommand::ResetLegacy(r)) = &args.command {
        return reset(r, &crate::client::client(&r.connection)?).await;
    }
    let s = &args.show;
    let client = crate::client::client(&s.connection)?;
    let (Some(project), Some(env)) = (s.project.as_deref(), s.environment.as_deref()) else {
        bail!("--project and --environment are required");
    };
    if let Some(flag) = &s.flag {
        let metric = s.metric.as_deref().unwrap_or_default();
        return match client.legacy_results(project, flag, env, metric).await? {
            Some(r) => {
                match s.format {
                    ResultsFormat::Json => super::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&r)?))?,
                    ResultsFormat::Human => super::write_stdout(&legacy_table(flag, metric, env, &r))?,
                }
                Ok(ExitStatus::Success)
            }
            None => {
                eprintln!(
                    "{}",
                    unavailable(&format!("legacy results of flag {project}/{flag}, metric {metric} in {env}"))
                );
                Ok(ExitStatus::Failure)
            }
        };
    }
    let key = s.experiment.as_deref().unwrap_or_default();
    let report = fetch_report(&client, project, env, key, s.metric.as_deref()).await?;
    let any = report.metrics.iter().any(|m| m.treatments.is_some());
    match s.format {
        ResultsFormat::Json => super::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
        ResultsFormat::Human => super::write_stdout(&table(&report))?,
    }
    Ok(if any { ExitStatus::Success } else { ExitStatus::Failure })
}

fn unavailable(what: &str) -> String {
    format!(
        "No {what}: LaunchDarkly answered 404. The results endpoints are deprecated upstream and may no longer be \
         served; see the experiment in the LaunchDarkly UI."
    )
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// The human table.
pub(crate) fn table(r: &Report) -> String {
    let mut out = format!(
        "Experiment {}/{}/{}{}\n",
        r.project,
        r.environment,
        r.experiment,
        r.iteration_id.as_deref().map(|i| format!(", iteration {i}")).unwrap_or_default()
    );
    if r.metrics.is_empty() {
        out.push_str("\nThe experiment has no iteration with metrics.\n");
    }
    for m in &r.metrics {
        out.push_str(&format!("\nMetric {}\n", m.metric));
        let Some(rows) = &m.treatments else {
            out.push_str(&format!("  {}\n", unavailable("results for this metric")));
            continue;
        };
        let cells: Vec<[String; 5]> = rows
            .iter()
            .map(|t| {
                [
                    t.treatment.clone(),
                    num(t.mean),
                    t.credible_interval.map_or_else(|| "-".into(), |[l, u]| format!("[{l:.4}, {u:.4}]")),
                    t.p_best.map_or_else(|| "-".into(), |p| format!("{:.1}%", p * 100.0)),
                    t.units.map_or_else(|| "-".into(), |u| u.to_string()),
                ]
            })
            .collect();
        out.push_str(&grid(&["treatment", "mean", "credible interval", "pBest", "units"], &cells));
    }
    out
}

/// The legacy results table: one row per variation.
pub(crate) fn legacy_table(flag: &str, metric: &str, env: &str, r: &LegacyResults) -> String {
    let mut out = format!("Legacy experiment on flag {flag}, metric {metric}, environment {env}\n\n");
    let cells: Vec<[String; 5]> = r
        .totals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            [
                format!("variation {i}"),
                t.cumulative_count.map_or_else(|| "-".into(), |c| c.to_string()),
                t.cumulative_conversion_rate.map_or_else(|| "-".into(), |c| format!("{:.2}%", c * 100.0)),
                num(t.improvement),
                num(t.p_value),
            ]
        })
        .collect();
    out.push_str(&grid(&["variation", "conversions", "conversion rate", "improvement", "p-value"], &cells));
    if let Some(s) = &r.stats
        && let Some(w) = s.winning_variation_idx
    {
        out.push_str(&format!("\nWinning variation: {w}\n"));
    }
    out
}

fn grid<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("  {}\n", s.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

async fn reset(r: &ResetArgs, client: &HttpClient) -> Result<ExitStatus> {
    let what = format!("legacy results of flag {}/{}, metric {} in {}", r.project, r.flag, r.metric, r.environment);
    if !r.yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to reset {what} without a terminal to confirm; pass --yes");
        }
        if !super::apply::confirm(&format!("Reset the {what}? This cannot be undone. [y/N] "))? {
            eprintln!("Nothing reset.");
            return Ok(ExitStatus::Failure);
        }
    }
    let report = ldexp_core::results::reset_legacy(client, &r.project, &r.flag, &r.environment, &r.metric).await;
    match report.outcomes.into_iter().next().map(|o| o.status) {
        Some(OutcomeStatus::Applied) => {
            super::write_stdout(&format!("Reset the {what}.\n"))?;
            Ok(ExitStatus::Success)
        }
        Some(OutcomeStatus::Failed { error: ldexp_core::Error::Api(e), .. }) if e.status == 404 || e.status == 410 => {
            eprintln!("{}", unavailable(&what));
            Ok(ExitStatus::Failure)
        }
        Some(OutcomeStatus::Failed { error, .. }) => Err(error.into()),
        Some(OutcomeStatus::Skipped { reason }) => bail!("the {what} were not reset: {reason}"),
        Some(OutcomeStatus::Interrupted) | None => bail!("the {what} were not reset: nothing was sent"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use ldexp_core::results::{MetricResults, Row};

    use super::*;

    #[test]
    fn the_table_lines_up_and_says_when_results_are_gone() {
        let r = Report {
            project: "demo".into(),
            environment: "production".into(),
            experiment: "checkout".into(),
            iteration_id: Some("it-1".into()),
            metrics: vec![
                MetricResults {
                    metric: "purchases".into(),
                    treatments: Some(vec![
                        Row {
                            treatment: "control".into(),
                            mean: Some(0.12),
                            credible_interval: Some([0.11, 0.13]),
                            p_best: Some(0.12),
                            units: Some(5021),
                        },
                        Row {
                            treatment: "green".into(),
                            mean: Some(0.142),
                            credible_interval: Some([0.131, 0.153]),
                            p_best: Some(0.88),
                            units: None,
                        },
                    ]),
                },
                MetricResults { metric: "revenue".into(), treatments: None },
            ],
        };
        assert_eq!(
            table(&r),
            "Experiment demo/production/checkout, iteration it-1\n\nMetric purchases\n  treatment  mean    credible \
             interval  pBest  units\n  control    0.1200  [0.1100, 0.1300]   12.0%  5021\n  green      0.1420  \
             [0.1310, 0.1530]   88.0%  -\n\nMetric revenue\n  No results for this metric: LaunchDarkly answered 404. \
             The results endpoints are deprecated upstream and may no longer be served; see the experiment in the \
             LaunchDarkly UI.\n"
        );
    }
}
