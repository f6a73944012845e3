//! The subcommands, each `cmd::<name>::run(args, &globals) -> anyhow::Result<ExitStatus>`, and the global options
//! they share.

pub mod apply;
pub mod completions;
pub mod demo;
pub mod drift;
pub mod export;
pub mod plan;
pub mod results;
pub mod schema;
pub mod validate;

use std::io::IsTerminal;

use clap::{Args, ValueEnum};

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// When the stream is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always, even when `NO_COLOR` is set.
    Always,
    /// Never.
    Never,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// LaunchDarkly base URL: https://app.launchdarkly.com (default), https://app.launchdarkly.us,
    /// https://app.eu.launchdarkly.com, or an emulator's address.
    #[arg(long, env = "LD_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Requests in flight at once.
    #[arg(long, global = true, default_value_t = ldexp_core::client::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// `LD-API-Version` for flag and metric routes. The contract marks the per-route split as not verified
    /// against the live API, hence configurable.
    #[arg(long, global = true, env = "LD_API_VERSION", default_value = ldexp_core::client::DEFAULT_API_VERSION,
          value_name = "VERSION", hide_env_values = true)]
    pub api_version: String,
    /// `LD-API-Version` for the beta routes: experiments, experimentation settings, results and metric groups.
    #[arg(long, global = true, env = "LD_API_VERSION_BETA",
          default_value = ldexp_core::client::DEFAULT_API_VERSION_BETA, value_name = "VERSION")]
    pub api_version_beta: String,
    /// More logging (-v debug, -vv trace), on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour output (`NO_COLOR` turns `auto` off).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 256".to_owned()),
    }
}

/// Writes `text` to stdout. A closed pipe (`ldexp … | head`) is not an error: the reader has what it wanted, and
/// `println!` would panic there.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

impl Globals {
    /// Whether to colour standard output.
    pub fn color_stdout(&self) -> bool {
        self.color_for(std::io::stdout().is_terminal())
    }

    /// Whether to colour standard error.
    pub fn color_stderr(&self) -> bool {
        self.color_for(std::io::stderr().is_terminal())
    }

    fn color_for(&self, terminal: bool) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        }
    }
}
