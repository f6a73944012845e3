//! The subcommands, each `cmd::<name>::run(args, &globals) -> anyhow::Result<ExitStatus>`, the global options
//! they share, and the connection options of those that call LaunchDarkly.

pub(crate) mod apply;
pub(crate) mod completions;
pub(crate) mod conformance;
pub(crate) mod demo;
pub(crate) mod drift;
pub(crate) mod export;
pub(crate) mod list;
pub(crate) mod plan;
pub(crate) mod pull;
pub(crate) mod results;
pub(crate) mod schema;
pub(crate) mod show;
pub(crate) mod validate;

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum ColorChoice {
    /// When the stream is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always, even when `NO_COLOR` is set.
    Always,
    /// Never.
    Never,
}

/// Options every subcommand accepts: logging and colour.
#[derive(Debug, Clone, Args)]
pub(crate) struct Globals {
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

/// How to reach LaunchDarkly, for the commands that call it (`plan`, `apply`, `drift`, `export`, `pull`, `results`, `list`,
/// `show`, `conformance`). The token is read only from `LD_ACCESS_TOKEN`. Environment values are hidden in the help: one is the
/// token's neighbour, and `[env: NAME=]` would read as if the variable were set to nothing.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Connection {
    /// LaunchDarkly base URL: https://app.launchdarkly.com (default), https://app.launchdarkly.us,
    /// https://app.eu.launchdarkly.com, or an emulator's address.
    #[arg(long, env = "LD_BASE_URL", hide_env_values = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = ldexp_core::client::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Seconds one request may take, from sending it to the end of the answer. A read that times out is retried
    /// once; a write that was sent and timed out is reported as having an unknown outcome.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Seconds to open a connection (TCP and TLS); a connect that times out is retried once.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
    /// `LD-API-Version` for flag and metric routes. The contract marks the per-route split as not verified
    /// against the live API, hence configurable.
    #[arg(long, env = "LD_API_VERSION", default_value = ldexp_core::client::DEFAULT_API_VERSION,
          value_name = "VERSION", hide_env_values = true)]
    pub api_version: String,
    /// `LD-API-Version` for the beta routes: experiments, experimentation settings, results and metric groups.
    #[arg(long, env = "LD_API_VERSION_BETA", default_value = ldexp_core::client::DEFAULT_API_VERSION_BETA,
          value_name = "VERSION", hide_env_values = true)]
    pub api_version_beta: String,
}

impl Connection {
    /// The defaults, pointed at `base_url` (the demo's in-process emulator).
    pub(crate) fn to(base_url: String) -> Self {
        Connection {
            base_url: Some(base_url),
            concurrency: ldexp_core::client::DEFAULT_CONCURRENCY,
            timeout: ldexp_core::client::DEFAULT_TIMEOUT,
            connect_timeout: ldexp_core::client::DEFAULT_CONNECT_TIMEOUT,
            api_version: ldexp_core::client::DEFAULT_API_VERSION.to_owned(),
            api_version_beta: ldexp_core::client::DEFAULT_API_VERSION_BETA.to_owned(),
        }
    }
}

/// Longer than an hour is a mistake rather than patience; zero would fail every request.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err("expected a number of seconds above 0 and at most 3600, e.g. 30 or 2.5".to_owned()),
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 256".to_owned()),
    }
}

/// A failure as a JSON object on stdout, for `--format json`: a consumer that reads stdout gets an answer it can
/// parse, never nothing. `{"error": {"message", "hint"?, "problems"?: [{"file", "line", "column", "message",
/// "help"?}]}}`; the same error is also printed for people on stderr.
pub(crate) fn json_error(e: &anyhow::Error) -> String {
    let mut error = serde_json::Map::new();
    error.insert("message".into(), format!("{e:#}").into());
    let core = e.chain().find_map(|c| c.downcast_ref::<ldexp_core::Error>());
    if let Some(hint) = core.and_then(ldexp_core::Error::hint) {
        error.insert("hint".into(), hint.into());
    }
    let problems = match (core, e.chain().find_map(|c| c.downcast_ref::<ldexp_planner::PlanError>())) {
        (Some(ldexp_core::Error::Spec { diagnostics }), _) => Some(diagnostics.clone()),
        (_, Some(plan)) => Some(plan.diagnostics()),
        _ => None,
    };
    if let Some(p) = problems {
        error.insert("problems".into(), serde_json::to_value(p).unwrap_or_default());
    }
    crate::render::to_pretty_json(&serde_json::json!({ "error": error }))
}

/// Writes `text` to stdout. A closed pipe (`ldexp … | head`) is not an error: the reader has what it wanted, and
/// `println!` would panic there.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

impl Globals {
    /// Whether to colour standard output.
    pub(crate) fn color_stdout(&self) -> bool {
        self.color_for(std::io::stdout().is_terminal())
    }

    /// Whether to colour standard error.
    pub(crate) fn color_stderr(&self) -> bool {
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
