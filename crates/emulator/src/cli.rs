//! `ldexp emulator`: the command-line flags and the run loop (print the address, serve until SIGINT/SIGTERM).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::deviation::Deviation;
use crate::model::DEFAULT_TOKEN;
use crate::server::{ServerConfig, serve};
use crate::{EmulatorError, Seed};

/// Flags of `ldexp emulator`.
#[derive(Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Port to listen on; 0 picks a free one. The address is printed as stdout's first line.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on. Admin routes answer loopback clients only.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Starting state, YAML or JSON (format: the README, "Seed format"); without it the account is empty.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// The access token the API accepts in `Authorization`.
    #[arg(long, value_name = "T", env = "LDEXP_EMULATOR_TOKEN", hide_env_values = true, default_value = DEFAULT_TOKEN, hide_default_value = true)]
    pub token: String,
    /// A second accepted token, standing for a service token: `createExperiment` then needs a `maintainerId`, and
    /// `GET /api/v2/caller-identity` answers `serviceToken: true`.
    #[arg(long, value_name = "T", env = "LDEXP_EMULATOR_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// An extra accepted token that may act only in the listed projects; routes under any other project answer
    /// 401. Repeatable.
    #[arg(long, value_name = "TOKEN=PROJECT[,PROJECT...]")]
    pub scoped_token: Vec<String>,
    /// Creates answer the new iteration as a `not_started` `currentIteration` instead of as `draftIteration`.
    #[arg(long)]
    pub create_as_current: bool,
    /// Experiment lists that ask for archived experiments report in `total_count` only the active ones; items and
    /// `_links.next` stay truthful.
    #[arg(long)]
    pub misreport_total_count: bool,
    /// Milliseconds every API answer takes at least, its handling included.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests per 10 s window per `METHOD route`; beyond it, 429 with X-Ratelimit-* headers.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Requests per 10 s window across all API routes (account-wide); beyond it, 429 with X-Ratelimit-* headers.
    #[arg(long, value_name = "N")]
    pub rate_limit_global: Option<u32>,
    /// 429s carry no X-Ratelimit-* headers and no Retry-After.
    #[arg(long)]
    pub rate_limit_bare: bool,
    /// Probability of answering an API request with a 500, 502 or 503 without handling it.
    #[arg(long = "fault-5xx", value_name = "P", default_value_t = 0.0)]
    pub fault_5xx: f64,
    /// Probability of answering a POST or PATCH API request with 409 `optimistic_locking_error` without handling it.
    #[arg(long = "fault-409", value_name = "P", default_value_t = 0.0)]
    pub fault_409: f64,
    /// Probability of handling an API request, then closing the connection without an answer.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_drop: f64,
    /// Seed of the fault draws.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub fault_seed: u64,
    /// Breaks one service rule on purpose (an id of `ldexp conformance`'s probes), to show that its probe reports
    /// "differs". Repeatable. Hidden: it is for testing ldexp itself, never for standing in for LaunchDarkly.
    #[arg(long, value_name = "RULE", hide = true)]
    pub differ: Vec<Deviation>,
}

// Hand-written so the token never reaches a log line.
impl fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("seed", &self.seed)
            .field("token", &"[redacted]")
            .field("service_token", &self.service_token.as_ref().map(|_| "[redacted]"))
            // Each value holds a token before its `=`; only the count is safe to show.
            .field("scoped_token", &format_args!("[{} redacted]", self.scoped_token.len()))
            .field("create_as_current", &self.create_as_current)
            .field("misreport_total_count", &self.misreport_total_count)
            .field("latency_ms", &self.latency_ms)
            .field("rate_limit", &self.rate_limit)
            .field("rate_limit_global", &self.rate_limit_global)
            .field("rate_limit_bare", &self.rate_limit_bare)
            .field("fault_5xx", &self.fault_5xx)
            .field("fault_409", &self.fault_409)
            .field("fault_drop", &self.fault_drop)
            .field("fault_seed", &self.fault_seed)
            .field("differ", &self.differ)
            .finish()
    }
}

impl EmulatorArgs {
    /// The server configuration these flags describe (reads the seed file).
    pub fn config(&self) -> Result<ServerConfig, EmulatorError> {
        let seed = self.seed.as_deref().map(Seed::from_path).transpose()?;
        Ok(ServerConfig {
            host: self.host,
            port: self.port,
            token: self.token.clone(),
            service_token: self.service_token.clone(),
            scoped_tokens: scoped_tokens(&self.scoped_token)?,
            create_as_current: self.create_as_current,
            misreport_total_count: self.misreport_total_count,
            latency_ms: self.latency_ms,
            rate_limit: self.rate_limit,
            rate_limit_global: self.rate_limit_global,
            rate_limit_bare: self.rate_limit_bare,
            fault_5xx: self.fault_5xx,
            fault_409: self.fault_409,
            fault_drop: self.fault_drop,
            fault_seed: self.fault_seed,
            seed,
            differ: self.differ.iter().copied().collect(),
        })
    }
}

/// Reads `--scoped-token TOKEN=PROJECT[,PROJECT…]` values; a token given twice gets the union of its projects.
/// Errors say which value (by position) is wrong, never its text, which holds a token.
fn scoped_tokens(values: &[String]) -> Result<BTreeMap<String, BTreeSet<String>>, EmulatorError> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, value) in values.iter().enumerate() {
        let parsed = value.split_once('=').filter(|(t, p)| !t.is_empty() && !crate::router::csv(p).is_empty());
        let Some((token, projects)) = parsed else {
            return Err(EmulatorError::Server {
                message: format!("--scoped-token value {} must be TOKEN=PROJECT[,PROJECT...]", i + 1),
            });
        };
        out.entry(token.to_owned()).or_default().extend(crate::router::csv(projects));
    }
    Ok(out)
}

/// Runs the emulator: prints `http://HOST:PORT` as stdout's first line, then serves until SIGINT or SIGTERM.
pub async fn run(args: EmulatorArgs) -> Result<(), EmulatorError> {
    let config = args.config()?;
    let notice = Deviation::notice(&config.differ);
    let server = serve(config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.url())
        .and_then(|()| out.flush())
        .map_err(|e| EmulatorError::Server { message: format!("cannot write the address to stdout: {e}") })?;
    drop(out);
    let mut err = std::io::stderr().lock();
    // Best effort: the address on stdout is what callers need; this line is for people watching.
    let _ = writeln!(
        err,
        "ldexp emulator: admin routes at {0}/_emulator/state, /_emulator/stats, /_emulator/requests, \
         /_emulator/reset",
        server.url()
    );
    if let Some(notice) = notice {
        // Best effort too, but printed whenever it applies: such an emulator must never pass for a faithful one.
        let _ = writeln!(err, "{notice}");
    }
    drop(err);
    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), EmulatorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| EmulatorError::Server { message: format!("cannot listen for SIGTERM: {e}") })?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|e| EmulatorError::Server { message: format!("cannot listen for SIGINT: {e}") }),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), EmulatorError> {
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| EmulatorError::Server { message: format!("cannot listen for Ctrl-C: {e}") })
}
