//! `ldexp schema` (hidden): prints the JSON Schema of spec documents, generated from the Rust spec types.
//! `schema/ldexp.schema.json` is its output; a test fails when the committed file is out of date.

use anyhow::Result;
use clap::Args;

use super::{Globals, write_stdout};
use crate::exit::ExitStatus;

/// `ldexp schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// The schema as committed: pretty JSON with a final newline.
pub fn text() -> Result<String> {
    Ok(serde_json::to_string_pretty(&ldexp_core::spec::json_schema())? + "\n")
}

/// Prints the schema on stdout.
pub fn run(_args: &SchemaArgs, _globals: &Globals) -> Result<ExitStatus> {
    write_stdout(&text()?)?;
    Ok(ExitStatus::Success)
}
