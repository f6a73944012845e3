//! `ldexp validate [PATH]...`: loads and checks specs offline, printing every problem or a one-line summary.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ldexp_core::spec::{self, Diagnostic, SpecSet};
use serde::Serialize;

use super::{Globals, write_stdout};
use crate::diagnostics;
use crate::exit::ExitStatus;

/// How `validate` prints problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ValidateFormat {
    /// Source snippets with a caret and a hint, on stderr.
    Human,
    /// A JSON list of `{file, line, column, message, help, severity}` on stdout (`[]` when valid without warnings).
    Json,
}

/// `ldexp validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Spec files or directories (searched recursively for *.yaml / *.yml).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
}

/// One item of the JSON list: a diagnostic and whether it is an error or a warning.
#[derive(Serialize)]
struct Item<'a> {
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
    severity: &'static str,
}

fn json(diagnostics: &[Diagnostic], severity: &'static str) -> Result<String> {
    let items: Vec<Item<'_>> = diagnostics.iter().map(|diagnostic| Item { diagnostic, severity }).collect();
    Ok(serde_json::to_string_pretty(&items)? + "\n")
}

/// Validates; exit 0 when valid (warnings or not), 1 with every problem listed otherwise.
pub(crate) fn run(args: &ValidateArgs, globals: &Globals) -> Result<ExitStatus> {
    match spec::load(&args.paths) {
        Ok(set) => {
            let warnings = match set.warnings.len() {
                0 => String::new(),
                n => format!(", with {}", plural(n, "warning", "warnings")),
            };
            match args.format {
                ValidateFormat::Json => write_stdout(&json(&set.warnings, "warning")?)?,
                ValidateFormat::Human => {
                    eprint!("{}", diagnostics::render_warnings(&set.warnings, globals.color_stderr()));
                    let valid = if globals.color_stdout() { "\x1b[32mvalid\x1b[0m" } else { "valid" };
                    write_stdout(&format!("{}: {valid}{warnings}\n", summary(&set)))?;
                }
            }
            Ok(ExitStatus::Success)
        }
        Err(ldexp_core::Error::Spec { diagnostics }) => {
            match args.format {
                ValidateFormat::Json => write_stdout(&json(&diagnostics, "error")?)?,
                ValidateFormat::Human => {
                    eprint!("{}", diagnostics::render(&diagnostics, globals.color_stderr()));
                    eprintln!("error: {}", ldexp_core::Error::Spec { diagnostics });
                }
            }
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e.into()),
    }
}

/// `3 files, 5 experiments, 1 legacy flag spec`, then metrics, metric groups, settings and workspaces when there
/// are any; a spec with
/// `environments` counts once per environment.
pub(crate) fn summary(set: &SpecSet) -> String {
    let experiments: usize = set.experiments.iter().map(|e| e.spec.target_environments().len()).sum();
    let mut s = format!(
        "{}, {}, {}",
        plural(set.files.len(), "file", "files"),
        plural(experiments, "experiment", "experiments"),
        plural(set.legacy.len(), "legacy flag spec", "legacy flag specs")
    );
    for (n, one, many) in [
        (set.metrics.len(), "metric", "metrics"),
        (set.metric_groups.len(), "metric group", "metric groups"),
        (set.layers.len(), "layer", "layers"),
        (set.holdouts.len(), "holdout", "holdouts"),
        (set.settings.len(), "settings document", "settings documents"),
        (set.workspaces.len(), "workspace", "workspaces"),
    ] {
        if n > 0 {
            s.push_str(&format!(", {}", plural(n, one, many)));
        }
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
