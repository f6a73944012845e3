//! ldexp's benchmark harness: a deterministic fixture, the request bound `R_min`, the measurements (plan against a
//! latency-injecting emulator, the Terraform-style serial baseline, planner CPU, peak RSS of `ldexp plan`, apply
//! under a route rate limit) and the `BENCHMARKS.md` report.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod fixture;
pub mod machine;
pub mod measure;
pub mod report;
pub mod rmin;
pub mod routes;
pub mod seeding;

use std::path::PathBuf;

/// Every failure of the harness, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The fixture could not be generated or rendered.
    #[error("fixture: {0}")]
    Fixture(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The emulator could not start or answered its admin routes unexpectedly.
    #[error("emulator: {0}")]
    Emulator(String),
    /// ldexp itself failed (spec loading, fetching, planning).
    #[error("{stage}: {message}")]
    Ldexp { stage: &'static str, message: String },
    /// The `ldexp` binary could not be run for the RSS measurement.
    #[error("ldexp binary {}: {message}", path.display())]
    Binary { path: PathBuf, message: String },
}

impl BenchError {
    /// An ldexp failure during `stage`.
    pub fn ldexp(stage: &'static str, e: impl std::fmt::Display) -> Self {
        BenchError::Ldexp { stage, message: e.to_string() }
    }
}
