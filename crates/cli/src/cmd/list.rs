//! `ldexp list experiments`: the experiments of a project that LaunchDarkly itself selects (`--status`, `--flag` and
//! `--metric` become the list's `filter`, `--archived` its `lifecycleState`), as a table, JSON or markdown; with
//! `--specs`, each marked with the spec file that manages it. What to read is `ldexp_core::views`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use ldexp_core::api::IterationStatus;
use ldexp_core::display::escape;
use ldexp_core::views::{ExperimentFilter, ExperimentRow, list_experiments, status_str};
use serde::Serialize;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render::markdown;

/// `ldexp list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(subcommand)]
    pub kind: ListKind,
}

/// What to list.
#[derive(Debug, Subcommand)]
pub(crate) enum ListKind {
    /// The experiments of a project, filtered by LaunchDarkly: key, environment, status, flag, when the current
    /// iteration started, how many iterations, and (with --specs) the spec that manages each.
    Experiments(ExperimentsArgs),
}

/// `ldexp list experiments`.
#[derive(Debug, Args)]
pub(crate) struct ExperimentsArgs {
    /// Project key.
    #[arg(long)]
    pub project: String,
    /// Environments to list (repeatable): one listing each. Every environment, in one listing, when omitted.
    #[arg(long = "environment", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Only experiments whose current iteration has this status (one never started is not_started).
    #[arg(long, value_enum, value_name = "STATUS")]
    pub status: Option<StatusArg>,
    /// Only experiments that use this flag.
    #[arg(long, value_name = "FLAG", value_parser = filter_key)]
    pub flag: Option<String>,
    /// Only experiments that use this metric, as LaunchDarkly's `metricKey` filter decides.
    #[arg(long, value_name = "METRIC", value_parser = filter_key)]
    pub metric: Option<String>,
    /// The archived experiments instead of the active ones.
    #[arg(long)]
    pub archived: bool,
    /// Spec files or directories (repeatable): mark each experiment with the spec file that manages it.
    #[arg(long, value_name = "PATH")]
    pub specs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[command(flatten)]
    pub connection: Connection,
}

/// An iteration status, as the API writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    #[value(name = "not_started", alias = "not-started")]
    NotStarted,
    Running,
    Stopped,
}

impl From<StatusArg> for IterationStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::NotStarted => IterationStatus::NotStarted,
            StatusArg::Running => IterationStatus::Running,
            StatusArg::Stopped => IterationStatus::Stopped,
        }
    }
}

/// Output format of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// Aligned columns.
    Table,
    /// `{"project", "experiments": [...]}`; see the README for the fields.
    Json,
    /// A GitHub markdown table.
    Markdown,
}

/// A key the list's `filter` can carry: `field:value` terms are comma-separated, so a comma would start another.
fn filter_key(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.contains(',') {
        return Err("expected one key, without commas".to_owned());
    }
    Ok(s.to_owned())
}

/// Runs `list`.
pub(crate) fn run(args: &ListArgs, g: &Globals) -> Result<ExitStatus> {
    match &args.kind {
        ListKind::Experiments(a) => crate::client::runtime()?.block_on(experiments(a, g)),
    }
}

async fn experiments(args: &ExperimentsArgs, _g: &Globals) -> Result<ExitStatus> {
    // Specs first: a spec problem is found without a network call.
    let managed = if args.specs.is_empty() { None } else { Some(managed_by(&args.specs, &args.project)?) };
    let client = crate::client::client(&args.connection)?;
    let filter = ExperimentFilter {
        status: args.status.map(IterationStatus::from),
        flag: args.flag.clone(),
        metric: args.metric.clone(),
        archived: args.archived,
    };
    let found = list_experiments(&client, &args.project, &args.environments, &filter).await?;
    let listing = Listing {
        project: args.project.clone(),
        experiments: found
            .iter()
            .map(|x| {
                let spec = managed.as_ref().map(|m| m.get(&(x.environment_key.clone(), x.key.clone())).cloned());
                Listed { row: ExperimentRow::of(x), spec }
            })
            .collect(),
    };
    let text = match args.format {
        ListFormat::Json => crate::render::to_pretty_json(&listing),
        _ if listing.experiments.is_empty() => {
            format!("No experiments in {} match: {}.\n", scope(&args.project, &args.environments), filter.describe())
        }
        ListFormat::Table => table(&listing),
        ListFormat::Markdown => markdown_table(&listing),
    };
    super::write_stdout(&text)?;
    Ok(ExitStatus::Success)
}

/// `project shop`, or `shop/production and shop/staging`.
fn scope(project: &str, environments: &[String]) -> String {
    if environments.is_empty() {
        return format!("project {project}");
    }
    let envs: Vec<String> = environments.iter().map(|e| format!("{project}/{e}")).collect();
    envs.join(" and ")
}

/// `(environment, key)` → the spec file of every experiment spec of `project`, in each of its environments.
fn managed_by(paths: &[PathBuf], project: &str) -> Result<BTreeMap<(String, String), String>> {
    let specs = ldexp_core::spec::load(paths)?;
    let mut out = BTreeMap::new();
    for located in specs.experiments.iter().filter(|l| l.spec.project == project) {
        for env in located.spec.target_environments() {
            out.insert((env.to_owned(), located.spec.key.clone()), located.location.file.to_string());
        }
    }
    Ok(out)
}

/// The JSON document: `{"project", "experiments": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Listing {
    pub project: String,
    pub experiments: Vec<Listed>,
}

/// One experiment: its row, and with `--specs` the file of the spec that manages it (`null` when none does).
#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    #[serde(flatten)]
    pub row: ExperimentRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Option<String>>,
}

impl Listed {
    /// The cells of the table and markdown renderings, `-` for what is not there.
    fn cells(&self) -> Vec<String> {
        let r = &self.row;
        let status =
            if r.archived { format!("{} (archived)", status_str(r.status)) } else { status_str(r.status).to_owned() };
        let mut cells = vec![
            r.key.clone(),
            r.environment.clone(),
            status,
            if r.flags.is_empty() { "-".to_owned() } else { r.flags.join(", ") },
            r.started_at.clone().unwrap_or_else(|| "-".to_owned()),
            r.iterations.to_string(),
        ];
        if let Some(spec) = &self.spec {
            cells.push(spec.clone().unwrap_or_else(|| "-".to_owned()));
        }
        cells
    }
}

const HEAD: [&str; 7] = ["key", "environment", "status", "flag", "started", "iterations", "spec"];

/// The head of both tables: the spec column only when `--specs` was given.
fn head(listing: &Listing) -> &'static [&'static str] {
    let with_specs = listing.experiments.first().is_some_and(|x| x.spec.is_some());
    if with_specs { &HEAD } else { &HEAD[..6] }
}

/// Aligned columns and a count; text from LaunchDarkly and from specs shown with control characters escaped.
pub(crate) fn table(listing: &Listing) -> String {
    let head = head(listing);
    let rows: Vec<Vec<String>> = listing
        .experiments
        .iter()
        .map(|x| x.cells().iter().map(|c| escape(c).replace('\n', "\\n")).collect())
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out.push_str(&count_line(listing));
    out
}

/// A GitHub markdown table and a count.
pub(crate) fn markdown_table(listing: &Listing) -> String {
    let head = head(listing);
    let mut out = format!("| {} |\n", head.join(" | "));
    let rule: Vec<&str> = head.iter().map(|h| if *h == "iterations" { "---:" } else { "---" }).collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for x in &listing.experiments {
        let cells: Vec<String> = x
            .cells()
            .into_iter()
            .enumerate()
            .map(|(i, c)| match head.get(i) {
                Some(&"key" | &"flag" | &"spec") if c != "-" => markdown::code(&escape(&c), true),
                _ => markdown::cell(&escape(&c)),
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
    out.push_str(&count_line(listing));
    out
}

/// `3 experiments.`, and with `--specs` how many a spec manages.
fn count_line(listing: &Listing) -> String {
    let n = listing.experiments.len();
    let mut line = format!("{n} experiment{}", if n == 1 { "" } else { "s" });
    if head(listing).len() == HEAD.len() {
        let managed = listing.experiments.iter().filter(|x| matches!(x.spec, Some(Some(_)))).count();
        line.push_str(&format!(", {managed} managed by a spec"));
    }
    line.push_str(".\n");
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(key: &str, env: &str, status: IterationStatus, started: Option<&str>, iterations: usize) -> ExperimentRow {
        ExperimentRow {
            key: key.into(),
            environment: env.into(),
            name: format!("Experiment {key}"),
            status,
            archived: false,
            flags: vec!["checkout-button".into()],
            started_at: started.map(str::to_owned),
            iterations,
        }
    }

    fn listing(with_specs: bool) -> Listing {
        let mut archived = row("old-copy", "staging", IterationStatus::Stopped, Some("2024-01-02T03:04:05Z"), 3);
        archived.archived = true;
        archived.flags = vec!["banner".into(), "checkout-button".into()];
        let rows = [
            (row("checkout-color", "production", IterationStatus::Running, Some("2024-05-01T09:33:20Z"), 2), true),
            (row("draft-\u{202E}x", "production", IterationStatus::NotStarted, None, 1), false),
            (archived, true),
        ];
        Listing {
            project: "shop".into(),
            experiments: rows
                .into_iter()
                .map(|(row, managed)| {
                    let spec = managed.then(|| format!("specs/{}.yaml", row.key));
                    Listed { row, spec: with_specs.then_some(spec) }
                })
                .collect(),
        }
    }

    #[test]
    fn table_without_specs() {
        insta::assert_snapshot!(table(&listing(false)));
    }

    #[test]
    fn table_with_specs() {
        insta::assert_snapshot!(table(&listing(true)));
    }

    #[test]
    fn markdown_with_specs() {
        insta::assert_snapshot!(markdown_table(&listing(true)));
    }

    #[test]
    fn json_with_and_without_specs() {
        insta::assert_snapshot!(crate::render::to_pretty_json(&listing(true)));
        let plain = serde_json::to_value(listing(false)).unwrap();
        assert!(plain["experiments"].as_array().unwrap().iter().all(|x| x.get("spec").is_none()), "{plain}");
    }

    #[test]
    fn a_filter_key_is_one_key() {
        assert_eq!(filter_key("checkout-button").unwrap(), "checkout-button");
        assert!(filter_key("a,b").is_err());
        assert!(filter_key(" ").is_err());
        assert_eq!(scope("shop", &[]), "project shop");
        assert_eq!(scope("shop", &["production".into(), "staging".into()]), "shop/production and shop/staging");
    }
}
