//! `ldexp plan`: load the specs, fetch only what they need, print the plan, optionally save it; and the fresh-plan
//! helper `apply`, `drift` and `demo` share.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ldexp_core::client::{IdentityReads, OrgReads, PlanReads};
use ldexp_core::plan::Plan;
use ldexp_core::remote::Requirements;
use ldexp_planner::PlanOptions;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::render;

/// How to print a plan or a drift report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
    Markdown,
}

/// `ldexp plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Spec files or directories (searched for *.yaml / *.yml).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Also save the plan as JSON to this file, for `ldexp apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Exit 2 when there are changes (0 when none, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Archive experiments that exist in a targeted environment but are in no spec.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `plan`.
pub(crate) fn run(args: &PlanArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &PlanArgs, g: &Globals) -> Result<ExitStatus> {
    let plan = plan_for(&args.connection, &args.paths, args.prune, args.format).await?;
    if let Some(out) = &args.out {
        write_plan(out, &plan)?;
    }
    super::write_stdout(&rendered(&plan, args.format, g.color_stdout()))?;
    if let Some(out) = &args.out
        && !g.quiet
    {
        eprintln!("Saved the plan to {}; apply it with `{}`.", out.display(), apply_command(out, &args.paths));
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}

/// A fresh plan for `plan` and `drift`; with `--format json`, a failure is also written to stdout as a JSON error
/// object, so a program reading stdout always gets JSON.
pub(crate) async fn plan_for(connection: &Connection, paths: &[PathBuf], prune: bool, format: Format) -> Result<Plan> {
    let planned = async {
        let client = crate::client::client(connection)?;
        fresh_plan(&client, paths, prune).await
    };
    match planned.await {
        Ok(plan) => Ok(plan),
        Err(e) => {
            if format == Format::Json {
                super::write_stdout(&super::json_error(&e))?;
            }
            Err(e)
        }
    }
}

/// The `ldexp apply --plan` command that applies a saved plan, with the spec paths the plan was made from, quoted
/// for a POSIX shell: it works when copied as is. `--prune` is recorded in the plan itself.
pub(crate) fn apply_command(out: &Path, paths: &[PathBuf]) -> String {
    let mut words =
        vec!["ldexp".to_owned(), "apply".to_owned(), "--plan".to_owned(), shell_quote(&out.display().to_string())];
    words.extend(paths.iter().map(|p| shell_quote(&p.display().to_string())));
    words.join(" ")
}

/// `s` as one POSIX shell word: unchanged when it is plain, else in single quotes.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// 1 when an object is refused (its spec cannot be applied: the plan is an error for it, whatever else it does);
/// otherwise success without changes, and with changes `Changes` (2) under `--detailed-exitcode`, else success.
/// Derived from the same [`Plan::is_empty`] and refusals as the printed summary line, so the two always agree.
pub(crate) fn exit_code(plan: &Plan, detailed: bool) -> ExitStatus {
    if !plan.refused_addresses().is_empty() {
        ExitStatus::Failure
    } else if detailed && !plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// The plan in `format`.
pub(crate) fn rendered(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Human => render::human::human(plan, color),
        Format::Json => render::json(plan),
        Format::Markdown => render::markdown::markdown(plan),
    }
}

/// Writes the JSON plan; the plan holds requests and remote data but never the token.
pub(crate) fn write_plan(path: &Path, plan: &Plan) -> Result<()> {
    std::fs::write(path, render::json(plan)).with_context(|| format!("cannot write the plan to {}", path.display()))
}

/// Reads a plan saved by `plan --out`.
pub(crate) fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a plan written by `ldexp plan --out`", path.display()))?;
    if plan.format_version != ldexp_core::plan::FORMAT_VERSION {
        anyhow::bail!(
            "{} has plan format {}, this ldexp reads format {}; plan again with this version",
            path.display(),
            plan.format_version,
            ldexp_core::plan::FORMAT_VERSION
        );
    }
    Ok(plan)
}

/// Loads the specs, fetches what they need (with a spinner on a terminal) and plans.
pub(crate) async fn fresh_plan<R: PlanReads + OrgReads + IdentityReads>(
    client: &R,
    paths: &[PathBuf],
    prune: bool,
) -> Result<Plan> {
    let specs = ldexp_core::spec::load(paths)?;
    let requirements = Requirements::of(&specs);
    let spinner = spinner("Reading LaunchDarkly");
    let remote = ldexp_core::fetch::fetch_remote(client, &requirements).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let remote = remote?;
    let options = PlanOptions { prune };
    let mut plan = ldexp_planner::plan_with(&specs, &remote, &options).map_err(|e| {
        // The error's message only counts the problems; each names its spec location, so show them all.
        for p in e.problems() {
            eprintln!("{p}");
        }
        anyhow::Error::from(e)
    })?;
    ldexp_core::identity::warn_service_token(client, &mut plan).await;
    Ok(plan)
}

/// A spinner on stderr, only when stderr is a terminal: logs and CI output stay clean.
pub(crate) fn spinner(message: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(message.to_owned());
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_plan_hint_names_the_spec_paths_quoted_for_a_shell() {
        let paths = [PathBuf::from("examples"), PathBuf::from("my specs/it's here.yaml")];
        assert_eq!(
            apply_command(Path::new("out/plan.json"), &paths),
            "ldexp apply --plan out/plan.json examples 'my specs/it'\\''s here.yaml'"
        );
        assert_eq!(apply_command(Path::new("plan.json"), &[PathBuf::from(".")]), "ldexp apply --plan plan.json .");
    }
}
