//! `ldexp export`: write spec YAML for the experiments (and legacy flag experiments) that already exist, one file
//! per object, so a team can adopt ldexp; planning the written specs against the same remote is empty. Everything
//! is read (`ldexp_core::export::fetch`) and rendered before anything is written, and files edited locally are not
//! overwritten without `--force`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use ldexp_core::api::{Experiment, FeatureFlag};
use ldexp_core::export::{export_experiment, export_legacy, fetch, to_yaml};
use ldexp_core::spec::SpecDocument;

use crate::cmd::{Connection, Globals};
use crate::exit::ExitStatus;
use crate::writes::{self, Existing, NewFile};

/// Lines of unified diff shown per file that export refuses to overwrite.
const DIFF_LINES: usize = 60;

/// `ldexp export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Project key.
    #[arg(long)]
    pub project: String,
    /// Environments to export (repeatable); every environment when omitted.
    #[arg(long = "environment", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Flags to read besides those the experiments use and those the flag list shows with legacy experiments
    /// (repeatable); e.g. an archived flag, which the list leaves out.
    #[arg(long = "flag", value_name = "FLAG")]
    pub flags: Vec<String>,
    /// Directory to write into (created if needed).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// `$schema` written in each file's modeline, for editor validation.
    #[arg(long, default_value = "https://raw.githubusercontent.com/ldexp/ldexp/main/schema/ldexp.schema.json")]
    pub schema: String,
    /// Overwrite files that differ from what export writes (local edits to them are lost).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Runs `export`.
pub(crate) fn run(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let p = &args.project;
    let fetched = fetch(&client, p, &args.environments, &args.flags).await?;
    for key in &fetched.missing_flags {
        eprintln!("warning: flag {p}/{key} does not exist; experiments using it cannot be exported");
    }
    let (files, problems) = files(p, &fetched.experiments, &fetched.flags, &args.schema);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        bail!("{} object(s) cannot be exported; nothing was written to {}", problems.len(), args.out.display());
    }
    let existing = writes::inspect(&args.out, &files)?;
    let edited: Vec<(&NewFile, &String)> = files
        .iter()
        .zip(&existing)
        .filter_map(|(f, e)| match e {
            Existing::Differs(local) => Some((f, local)),
            _ => None,
        })
        .collect();
    if !edited.is_empty() && !args.force {
        for (f, local) in &edited {
            eprint!("{}", writes::diff(&f.path.display().to_string(), local, &f.contents, DIFF_LINES));
        }
        bail!(
            "{} file(s) in {} differ from what export would write (edited since an earlier export?); nothing was \
             written. Keep your edits, or pass --force to overwrite them with LaunchDarkly's state",
            edited.len(),
            args.out.display()
        );
    }
    let done = writes::commit(&args.out, &files, &existing)?;
    if !g.quiet {
        let unchanged = match done.unchanged.len() {
            0 => String::new(),
            n => format!("; {n} already up to date"),
        };
        eprintln!("Wrote {} file(s) to {}{unchanged}.", done.written.len(), args.out.display());
    }
    Ok(ExitStatus::Success)
}

/// The files for `experiments` and the legacy experiments of `flags`, plus what could not be exported.
pub(crate) fn files(
    project: &str,
    experiments: &[Experiment],
    flags: &BTreeMap<String, FeatureFlag>,
    schema: &str,
) -> (Vec<NewFile>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for x in experiments {
        match export_experiment(x, flags, project) {
            Ok(spec) => out.push(NewFile {
                path: Path::new("experiments").join(safe(&x.environment_key)).join(format!("{}.yaml", safe(&x.key))),
                contents: to_yaml(&SpecDocument::Experiment(spec), schema),
            }),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for (key, flag) in flags {
        if let Some(spec) = export_legacy(flag, project) {
            out.push(NewFile {
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
