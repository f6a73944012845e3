//! `ldexp export`: write spec YAML for the experiments (and legacy flag experiments) that already exist, one file
//! per object, so a team can adopt ldexp; planning the written specs against the same remote is empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use ldexp_core::api::{Experiment, FeatureFlag};
use ldexp_core::client::{HttpClient, Reader};
use ldexp_core::export::{export_experiment, export_legacy, to_yaml};
use ldexp_core::spec::SpecDocument;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;

/// `ldexp export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Project key.
    #[arg(long)]
    pub project: String,
    /// Environments to export (repeatable); every environment when omitted.
    #[arg(long = "environment", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Flags whose legacy experiments to export besides those the experiments use (repeatable).
    #[arg(long = "flag", value_name = "FLAG")]
    pub flags: Vec<String>,
    /// Directory to write into (created if needed).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// `$schema` written in each file's modeline, for editor validation.
    #[arg(long, default_value = "https://raw.githubusercontent.com/ldexp/ldexp/main/schema/ldexp.schema.json")]
    pub schema: String,
    #[command(flatten)]
    pub connection: Connection,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFile {
    /// Relative to the output directory.
    pub path: PathBuf,
    pub contents: String,
}

/// Runs `export`.
pub fn run(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let experiments = fetch_experiments(&client, &args.project, &args.environments).await?;
    let mut flag_keys: BTreeSet<String> = args.flags.iter().cloned().collect();
    for x in &experiments {
        for it in x.current_iteration.iter().chain(x.draft_iteration.iter()) {
            flag_keys.extend(it.flags.keys().cloned());
        }
    }
    let mut flags = BTreeMap::new();
    for key in flag_keys {
        match client.get_flag(&args.project, &key).await? {
            Some(f) => {
                flags.insert(key, f.flag);
            }
            None => eprintln!(
                "warning: flag {}/{key} does not exist; experiments using it cannot be exported",
                args.project
            ),
        }
    }
    let (files, problems) = files(&args.project, &experiments, &flags, &args.schema);
    for p in &problems {
        eprintln!("warning: {p}");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for f in &files {
        write(&args.out, f)?;
    }
    if !g.quiet {
        eprintln!("Wrote {} file(s) to {}.", files.len(), args.out.display());
    }
    Ok(if problems.is_empty() { ExitStatus::Success } else { ExitStatus::Failure })
}

async fn fetch_experiments(client: &HttpClient, project: &str, envs: &[String]) -> Result<Vec<Experiment>> {
    if envs.is_empty() {
        return match client.list_experiments_any_env(project).await? {
            Some(x) => Ok(x),
            None => bail!("project {project} does not exist"),
        };
    }
    let mut all = Vec::new();
    for env in envs {
        match client.list_experiments(project, env).await? {
            Some(x) => all.extend(x),
            None => bail!("environment {project}/{env} does not exist"),
        }
    }
    Ok(all)
}

/// The files for `experiments` and the legacy experiments of `flags`, plus what could not be exported.
pub fn files(
    project: &str,
    experiments: &[Experiment],
    flags: &BTreeMap<String, FeatureFlag>,
    schema: &str,
) -> (Vec<ExportedFile>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for x in experiments {
        match export_experiment(x, flags, project) {
            Ok(spec) => out.push(ExportedFile {
                path: Path::new("experiments").join(safe(&x.environment_key)).join(format!("{}.yaml", safe(&x.key))),
                contents: to_yaml(&SpecDocument::Experiment(spec), schema),
            }),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for (key, flag) in flags {
        if let Some(spec) = export_legacy(flag, project) {
            out.push(ExportedFile {
                path: Path::new("legacy").join(format!("{}.yaml", safe(key))),
                contents: to_yaml(&SpecDocument::LegacyFlagExperiments(spec), schema),
            });
        }
    }
    (out, problems)
}

/// A key as a file name: LaunchDarkly keys are `[A-Za-z0-9._-]`; anything else (or a leading dot) becomes `_`.
fn safe(key: &str) -> String {
    let s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if s.starts_with('.') || s.is_empty() { format!("_{s}") } else { s }
}

fn write(dir: &Path, f: &ExportedFile) -> Result<()> {
    let path = dir.join(&f.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, &f.contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_output_directory() {
        assert_eq!(safe("checkout-button"), "checkout-button");
        assert_eq!(safe("../etc"), "_.._etc");
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe(""), "_");
    }
}
