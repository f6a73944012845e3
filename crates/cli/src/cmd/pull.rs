//! `ldexp pull`: rewrite the values experiment specs write to LaunchDarkly's, in place (`ldexp_core::pull`), when
//! the remote drifted on purpose. Every file is rewritten in memory and planned against the same remote state
//! before any is written; `--dry-run` prints the unified diff instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use ldexp_core::export::export_experiment;
use ldexp_core::plan::Address;
use ldexp_core::pull::{PulledFile, pull_text};
use ldexp_core::remote::{RemoteState, Requirements};
use ldexp_core::spec::ExperimentSpec;
use ldexp_planner::PlanOptions;
use similar::TextDiff;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::writes::{self, Existing, NewFile};

/// `ldexp pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Spec files or directories (searched for *.yaml / *.yml).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Print the unified diff that pull would write, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `pull`.
pub(crate) fn run(args: &PullArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &PullArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let specs = ldexp_core::spec::load(&args.paths)?;
    let remote = ldexp_core::fetch::fetch_remote(&client, &Requirements::of(&specs)).await?;
    let remote_spec = |spec: &ExperimentSpec| remote_spec(&remote, spec);

    let mut pulled: Vec<(PathBuf, String, PulledFile)> = Vec::new();
    for file in &specs.files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let p = pull_text(&file.display().to_string(), &text, &remote_spec)?;
        pulled.push((file.clone(), text, p));
    }
    let mut failed = 0;
    for (file, _, p) in &pulled {
        for s in &p.skipped {
            failed += 1;
            eprintln!("error: {}:{}:{}: {}: not pulled: {}", file.display(), s.line, s.column, s.object, s.reason);
        }
    }
    let changed: Vec<&(PathBuf, String, PulledFile)> =
        pulled.iter().filter(|(_, _, p)| !p.changes.is_empty()).collect();
    if !changed.is_empty() {
        still_differs(&pulled, &remote)?;
    }
    if args.dry_run {
        let mut out = String::new();
        for (file, text, p) in &changed {
            let name = file.display().to_string();
            out.push_str(&TextDiff::from_lines(text, &p.text).unified_diff().header(&name, &name).to_string());
        }
        super::write_stdout(&out)?;
    } else if !changed.is_empty() {
        let files: Vec<NewFile> =
            changed.iter().map(|(f, _, p)| NewFile { path: f.clone(), contents: p.text.clone() }).collect();
        let existing: Vec<Existing> = changed.iter().map(|(_, t, _)| Existing::Differs(t.clone())).collect();
        writes::commit(Path::new(""), &files, &existing)?;
    }
    if !g.quiet {
        for (file, _, p) in &changed {
            for c in &p.changes {
                eprintln!(
                    "{}:{}:{}: {} {}: {} -> {}",
                    file.display(),
                    c.line,
                    c.column,
                    c.object,
                    c.field,
                    c.from,
                    c.to
                );
            }
        }
        let verb = if args.dry_run { "Would rewrite" } else { "Rewrote" };
        let values: usize = changed.iter().map(|(_, _, p)| p.changes.len()).sum();
        eprintln!("{verb} {values} value(s) in {} file(s).", changed.len());
    }
    if failed > 0 {
        bail!(
            "{failed} object(s) could not be pulled; the rest were {}",
            if args.dry_run { "shown" } else { "pulled" }
        );
    }
    Ok(ExitStatus::Success)
}

/// The specs that describe the remote experiment `spec` names, as export would write them: one per environment the
/// spec targets where the experiment exists.
fn remote_spec(remote: &RemoteState, spec: &ExperimentSpec) -> Result<Vec<ExperimentSpec>, String> {
    let Some(Some(project)) = remote.projects.get(&spec.project) else { return Ok(Vec::new()) };
    let envs: Vec<&String> = spec.environment.iter().chain(spec.environments.iter().flatten()).collect();
    let flags: BTreeMap<String, _> =
        project.flags.iter().filter_map(|(k, f)| f.as_ref().map(|f| (k.clone(), f.flag.clone()))).collect();
    envs.into_iter()
        .filter_map(|env| project.environments.get(env).and_then(Option::as_ref).and_then(|e| e.get(&spec.key)))
        .map(|exp| export_experiment(exp, &flags, &spec.project).map_err(|e| e.to_string()))
        .collect()
}

/// Plans the rewritten files against the same remote state, and warns for each pulled experiment whose plan still
/// has changes (a field the spec does not write, or one export cannot read back).
fn still_differs(pulled: &[(PathBuf, String, PulledFile)], remote: &RemoteState) -> Result<()> {
    let sources: Vec<(PathBuf, String)> = pulled.iter().map(|(f, _, p)| (f.clone(), p.text.clone())).collect();
    let after = ldexp_core::spec::load_sources(&sources)?;
    let plan = ldexp_planner::plan_with(&after, remote, &PlanOptions { prune: false })?;
    let objects: Vec<String> = pulled.iter().flat_map(|(_, _, p)| p.changes.iter().map(|c| c.object.clone())).collect();
    for change in plan.changes.iter().filter(|c| !c.requests.is_empty()) {
        if let Address::Experiment { project, environment, key } = &change.address {
            let object = format!("experiment/{project}/{environment}/{key}");
            // A spec for several environments is labelled with `*` for its environment.
            if objects.contains(&object) || objects.contains(&format!("experiment/{project}/*/{key}")) {
                eprintln!(
                    "warning: {object} still differs from LaunchDarkly after pull (a field the spec does not write, or \
                     one pull cannot express); see `ldexp plan`"
                );
            }
        }
    }
    Ok(())
}
