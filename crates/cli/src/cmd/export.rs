//! `ldexp export`: write spec YAML for what already exists (experiments, legacy flag experiments, metrics, metric
//! groups, the experimentation settings, layers and holdouts, or the `--kinds` asked for), one file per object, so a team can adopt
//! ldexp; planning the written specs against the same remote is empty. Everything is read
//! (`ldexp_core::export::fetch`) and rendered before anything is written, and files edited locally are not
//! overwritten without `--force`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use ldexp_core::export::{
    Fetched, Kinds, export_experiment, export_group, export_holdout, export_layer, export_legacy, export_metric,
    export_settings, fetch, place, to_yaml,
};
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
    /// What to export (comma-separated or repeated); every kind when omitted. A kind left out is not read.
    #[arg(long = "kinds", value_name = "KIND", value_enum, value_delimiter = ',')]
    pub kinds: Vec<Kind>,
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

/// A kind of spec `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// `kind: Experiment`, one file per experiment: experiments/<environment>/<key>.yaml
    Experiments,
    /// `kind: LegacyFlagExperiments`, one file per flag with legacy experiments: legacy/<flag>.yaml
    Legacy,
    /// `kind: Metric`, one file per metric: metrics/<key>.yaml
    Metrics,
    /// `kind: MetricGroup`, one file per metric group: metric-groups/<key>.yaml
    #[value(name = "metricGroups", alias = "metric-groups")]
    MetricGroups,
    /// `kind: ExperimentationSettings`: experimentation-settings.yaml
    Settings,
    /// `kind: Layer`, one file per layer: layers/<key>.yaml
    Layers,
    /// `kind: Holdout`, one file per holdout: holdouts/<environment>/<key>.yaml
    Holdouts,
}

/// The kinds named, or every kind when none is.
fn kinds(named: &[Kind]) -> Kinds {
    if named.is_empty() {
        return Kinds::ALL;
    }
    let mut k = Kinds::NONE;
    for kind in named {
        match kind {
            Kind::Experiments => k.experiments = true,
            Kind::Legacy => k.legacy = true,
            Kind::Metrics => k.metrics = true,
            Kind::MetricGroups => k.metric_groups = true,
            Kind::Settings => k.settings = true,
            Kind::Layers => k.layers = true,
            Kind::Holdouts => k.holdouts = true,
        }
    }
    k
}

/// Runs `export`.
pub(crate) fn run(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    crate::client::runtime()?.block_on(run_async(args, g))
}

async fn run_async(args: &ExportArgs, g: &Globals) -> Result<ExitStatus> {
    let client = crate::client::client(&args.connection)?;
    let p = &args.project;
    let fetched = fetch(&client, p, &args.environments, &args.flags, kinds(&args.kinds)).await?;
    for key in &fetched.missing_flags {
        eprintln!("warning: flag {p}/{key} does not exist; experiments using it cannot be exported");
    }
    let Rendered { files, problems, warnings } = files(p, &fetched, &args.schema);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        bail!(
            "{} object(s) cannot be exported; nothing was written to {} (--kinds can leave their kind out)",
            problems.len(),
            args.out.display()
        );
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

/// What export writes, what it cannot, and what the files cannot say.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub files: Vec<NewFile>,
    /// Objects that cannot be exported: any one fails the export.
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// The files for the kinds `fetched` holds, plus what could not be exported.
pub(crate) fn files(project: &str, fetched: &Fetched, schema: &str) -> Rendered {
    let mut out = Rendered::default();
    let mut file = |path: PathBuf, doc: Result<SpecDocument, ldexp_core::Error>| match doc {
        Ok(doc) => out.files.push(NewFile { path, contents: to_yaml(&doc, schema) }),
        Err(e) => out.problems.push(e.to_string()),
    };
    let yaml = |key: &str| format!("{}.yaml", safe(key));
    for x in &fetched.experiments {
        file(
            Path::new("experiments").join(safe(&x.environment_key)).join(yaml(&x.key)),
            export_experiment(x, &fetched.flags, project)
                .and_then(|mut spec| {
                    let holdouts = fetched.holdouts.get(&x.environment_key).map_or(&[][..], Vec::as_slice);
                    place(&mut spec, &fetched.layers, holdouts)?;
                    Ok(spec)
                })
                .map(SpecDocument::Experiment),
        );
    }
    if fetched.kinds.legacy {
        for (key, flag) in &fetched.flags {
            if let Some(spec) = export_legacy(flag, project) {
                file(Path::new("legacy").join(yaml(key)), Ok(SpecDocument::LegacyFlagExperiments(spec)));
            }
        }
    }
    let mut warnings = Vec::new();
    for m in &fetched.metrics {
        file(
            Path::new("metrics").join(yaml(&m.key)),
            export_metric(m, project, &mut warnings).map(SpecDocument::Metric),
        );
    }
    for g in &fetched.metric_groups {
        file(
            Path::new("metric-groups").join(yaml(&g.key)),
            export_group(g, project, &mut warnings).map(SpecDocument::MetricGroup),
        );
    }
    if let Some(s) = &fetched.settings {
        file(
            PathBuf::from("experimentation-settings.yaml"),
            export_settings(s, project).map(SpecDocument::ExperimentationSettings),
        );
    }
    if fetched.kinds.layers {
        for l in &fetched.layers {
            file(Path::new("layers").join(yaml(&l.key)), Ok(SpecDocument::Layer(export_layer(l, project))));
        }
    }
    if fetched.kinds.holdouts {
        for (env, holdouts) in &fetched.holdouts {
            for h in holdouts {
                file(
                    Path::new("holdouts").join(safe(env)).join(yaml(h.key())),
                    export_holdout(h, project, env).map(SpecDocument::Holdout),
                );
            }
        }
    }
    out.warnings = warnings;
    out
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

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExportArgs,
    }

    fn parsed(argv: &[&str]) -> Result<Kinds, clap::Error> {
        use clap::Parser;
        let argv = ["export", "--project", "demo"].iter().chain(argv);
        Cli::try_parse_from(argv).map(|c| kinds(&c.args.kinds))
    }

    #[test]
    fn kinds_are_comma_separated_or_repeated_and_default_to_all() {
        assert_eq!(parsed(&[]).unwrap(), Kinds::ALL);
        let metrics = Kinds { metrics: true, ..Kinds::NONE };
        assert_eq!(parsed(&["--kinds", "metrics"]).unwrap(), metrics);
        let three = Kinds { metrics: true, metric_groups: true, settings: true, ..Kinds::NONE };
        assert_eq!(parsed(&["--kinds", "metrics,metricGroups", "--kinds", "settings"]).unwrap(), three);
        assert_eq!(parsed(&["--kinds=settings,metric-groups", "--kinds", "metrics"]).unwrap(), three);
        let rest = Kinds { experiments: true, legacy: true, ..Kinds::NONE };
        assert_eq!(parsed(&["--kinds", "legacy,experiments"]).unwrap(), rest);
        let org = Kinds { layers: true, holdouts: true, ..Kinds::NONE };
        assert_eq!(parsed(&["--kinds", "layers,holdouts"]).unwrap(), org);
        let e = parsed(&["--kinds", "segments"]).unwrap_err().to_string();
        assert!(e.contains("invalid value 'segments'") && e.contains("metricGroups"), "{e}");
    }

    #[test]
    fn keys_cannot_escape_the_output_directory() {
        assert_eq!(safe("checkout-button"), "checkout-button");
        assert_eq!(safe("../etc"), "_.._etc");
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe(""), "_");
    }
}
