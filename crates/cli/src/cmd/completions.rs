//! `ldexp completions <shell>`: shell completion scripts generated from the command definition.

use anyhow::Result;
use clap::Args;
use clap_complete::Shell;

use crate::exit::ExitStatus;

/// `ldexp completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `command` (the whole cli) to stdout.
pub(crate) fn run(args: &CompletionsArgs, command: &mut clap::Command) -> Result<ExitStatus> {
    let name = command.get_name().to_owned();
    // Into memory first: generating straight to stdout panics when the reader closes the pipe early.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, command, name, &mut script);
    super::write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitStatus::Success)
}
