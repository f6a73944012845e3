//! `ldexp schema` (hidden): prints the JSON Schema of spec documents, or with `--plan` of plan files, generated from
//! the Rust types. `schema/ldexp.schema.json` and `schema/plan.schema.json` are its output; a test fails when a
//! committed file is out of date.

use anyhow::Result;
use clap::Args;

use super::{Globals, write_stdout};
use crate::exit::ExitStatus;

/// `ldexp schema`.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// The schema of plan files (`ldexp plan --out`) instead of spec documents.
    #[arg(long)]
    pub plan: bool,
}

/// The schema as committed: pretty JSON with a final newline.
pub(crate) fn text(plan: bool) -> Result<String> {
    let schema = if plan { ldexp_core::plan::json_schema() } else { ldexp_core::spec::json_schema() };
    Ok(serde_json::to_string_pretty(&schema)? + "\n")
}

/// Prints the schema on stdout.
pub(crate) fn run(args: &SchemaArgs, _globals: &Globals) -> Result<ExitStatus> {
    write_stdout(&text(args.plan)?)?;
    Ok(ExitStatus::Success)
}
