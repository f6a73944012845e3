//! An in-memory LaunchDarkly Experimentation API: a pure request handler ([`State::handle`]), an in-process
//! client ([`InMemory`]) and an HTTP server with fault injection ([`serve`], `ldexp emulator`).
//!
//! The wire behaviour follows `../shared/contract/README.md` and `docs/semantics.md`; the README's emulator section
//! documents the seed format, the server flags and the admin routes.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod catalog;
mod checks;
pub mod cli;
mod deviation;
mod experiments;
mod flags;
mod groups;
mod holdouts;
mod ids;
mod inmemory;
mod instructions;
mod layers;
mod limits;
mod metric_post;
mod metrics;
mod model;
mod patching;
mod results;
mod rollout;
mod router;
mod seed;
mod server;
mod usage;
mod wire;

use std::path::PathBuf;

pub use deviation::Deviation;
pub use inmemory::InMemory;
pub use model::{DEFAULT_TOKEN, State};
pub use router::is_read;
pub use seed::{
    Seed, SeedEnvironment, SeedFlag, SeedFlagEnvironment, SeedMetric, SeedMetricGroup, SeedOptions, SeedProject,
    SeedRule, SeedVariation,
};
pub use server::{RunningServer, ServerConfig, Stats, serve};
pub use wire::{Request, Response};

/// Every failure of the emulator outside the HTTP answers it serves (those are [`Response`]s).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The seed file could not be read. The OS reason is the `source`; it stays out of this message because
    /// reporters print the whole chain.
    #[error("seed file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The seed text is not valid YAML or JSON of the seed format.
    #[error("seed{}: {message}", path.as_ref().map(|p| format!(" file {}", p.display())).unwrap_or_default())]
    SeedSyntax { path: Option<PathBuf>, message: String },
    /// The seed parses but is inconsistent (unknown metric in a group, duplicate key, ...).
    #[error("seed project `{project}`: {message}")]
    SeedInvalid { project: String, message: String },
    /// A state document (admin `PUT /_emulator/state`) does not describe an emulator state.
    #[error("emulator state document: {message}")]
    StateDocument { message: String },
    /// The listening socket could not be opened (the OS reason is the `source`).
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running, or a server setting is out of range.
    #[error("emulator server: {message}")]
    Server { message: String },
}
