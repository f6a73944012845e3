//! ldexp command line: parses the global options and the subcommand, runs it, and maps the outcome to an exit code.
//!
//! A library so that two binaries can be it: `ldexp` (src/main.rs), and the pre-commit hook's `ldexp-validate`
//! (hooks/ldexp-validate.rs, in the repository's root package, which is what pre-commit's `language: rust` installs).
// The command line is where ldexp talks to people: stdout and stderr are its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod baseline;
mod client;
mod cmd;
mod diagnostics;
mod exit;
mod render;
mod writes;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::Globals;
use crate::exit::ExitStatus;

/// `ldexp --version`: the version and the git commit the binary was built from (`unknown` outside a git checkout;
/// see build.rs), so a CI log or a bug report says exactly which code ran.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("LDEXP_GIT_COMMIT"), ")");

/// Declarative, idempotent sync of LaunchDarkly experiments from YAML specs.
#[derive(Debug, Parser)]
#[command(name = "ldexp", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check specs offline: syntax, fields, keys, treatments, metrics, stop and duplicates.
    Validate(cmd::validate::ValidateArgs),
    /// Print the JSON Schema of spec documents (the source of schema/ldexp.schema.json).
    #[command(hide = true)]
    Schema(cmd::schema::SchemaArgs),
    /// Show what apply would change: the exact requests, per object.
    Plan(cmd::plan::PlanArgs),
    /// Apply the specs (or a saved plan) to LaunchDarkly.
    Apply(cmd::apply::ApplyArgs),
    /// Report where LaunchDarkly differs from the specs: exit 0 in sync, 2 on drift, 1 on error.
    Drift(cmd::drift::DriftArgs),
    /// Write specs for the experiments, legacy flag experiments, metrics, metric groups and experimentation settings
    /// that already exist.
    Export(cmd::export::ExportArgs),
    /// Rewrite the values experiment specs write to LaunchDarkly's, in place, keeping comments and formatting.
    Pull(cmd::pull::PullArgs),
    /// Show experiment results per treatment, or legacy results; `results reset-legacy` resets legacy results.
    // Boxed: with its connection options twice (show and reset-legacy) it is twice the size of the others.
    Results(Box<cmd::results::ResultsArgs>),
    /// List objects in LaunchDarkly, filtered by LaunchDarkly itself: `list experiments`.
    List(cmd::list::ListArgs),
    /// Print one object's remote state as the spec YAML that describes it, then an experiment's status.
    Show(cmd::show::ShowArgs),
    /// Check that LaunchDarkly (or an emulator) behaves as ldexp assumes: one probe per rule of the contract's §9
    /// that can be checked without harm. It writes to the project you name (archived probe experiments stay) and
    /// asks first. Exit 0 when every probe holds or could not run, 2 when one differs, 1 on an error or a cleanup
    /// that could not undo something.
    Conformance(cmd::conformance::ConformanceArgs),
    /// A narrated tour on a throwaway in-process emulator: plan, apply, plan again, drift. No credentials needed.
    Demo(cmd::demo::DemoArgs),
    /// Print shell completions.
    Completions(cmd::completions::CompletionsArgs),
    /// Run the LaunchDarkly emulator (for tests, demos and CI); prints its address as the first line.
    Emulator(ldexp_emulator::cli::EmulatorArgs),
}

/// Runs the command line `args` (the program name first, as in [`std::env::args_os`]) and returns its exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // Usage errors exit 1, not clap's 2: 2 means "there are changes" for `plan --detailed-exitcode` and `drift`.
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitStatus::Failure } else { ExitStatus::Success }.into();
        }
    };
    init_logging(&cli.globals);
    let outcome = match &cli.command {
        Command::Validate(args) => cmd::validate::run(args, &cli.globals),
        Command::Schema(args) => cmd::schema::run(args, &cli.globals),
        Command::Plan(args) => cmd::plan::run(args, &cli.globals),
        Command::Apply(args) => cmd::apply::run(args, &cli.globals),
        Command::Drift(args) => cmd::drift::run(args, &cli.globals),
        Command::Export(args) => cmd::export::run(args, &cli.globals),
        Command::Pull(args) => cmd::pull::run(args, &cli.globals),
        Command::Results(args) => cmd::results::run(args, &cli.globals),
        Command::List(args) => cmd::list::run(args, &cli.globals),
        Command::Show(args) => cmd::show::run(args, &cli.globals),
        Command::Conformance(args) => cmd::conformance::run(args, &cli.globals),
        Command::Demo(args) => cmd::demo::run(args, &cli.globals),
        Command::Completions(args) => cmd::completions::run(args, &mut <Cli as clap::CommandFactory>::command()),
        Command::Emulator(args) => client::runtime()
            .and_then(|rt| Ok(rt.block_on(ldexp_emulator::cli::run(args.clone()))?))
            .map(|()| ExitStatus::Success),
    };
    match outcome {
        Ok(status) => status.into(),
        Err(e) => {
            report(&e, &cli.globals);
            ExitStatus::Failure.into()
        }
    }
}

/// Prints an error with its causes and, for ldexp's own errors, what to do about it.
fn report(e: &anyhow::Error, globals: &Globals) {
    let core = e.chain().find_map(|c| c.downcast_ref::<ldexp_core::Error>());
    if let Some(ldexp_core::Error::Spec { diagnostics }) = core {
        eprint!("{}", diagnostics::render(diagnostics, globals.color_stderr()));
    }
    eprintln!("error: {e:#}");
    if let Some(hint) = core.and_then(ldexp_core::Error::hint) {
        eprintln!("hint: {hint}");
    }
}

/// Logs go to stderr: warnings by default, more with `-v`, only errors with `-q`; `RUST_LOG` overrides.
fn init_logging(g: &Globals) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(g.color_stderr())
        .without_time()
        .try_init();
}
