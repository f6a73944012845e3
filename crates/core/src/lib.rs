//! ldexp's domain types and I/O layer: specs, LaunchDarkly representations, the plan, and (feature `http`) the
//! REST client and the applier.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
#[cfg(feature = "http")]
pub mod apply;
pub mod catalog;
pub mod client;
pub mod conformance;
pub mod design;
pub mod digest;
pub mod display;
mod error;
pub mod export;
pub mod fetch;
pub mod flag_map;
pub mod identity;
pub mod json_text;
pub mod managed;
pub mod percent;
pub mod plan;
pub mod pull;
pub mod remote;
pub mod requests;
pub mod results;
pub mod spec;
#[cfg(test)]
mod testing;
pub mod verify;
pub mod views;

pub use error::{ApiError, Error};
