//! End-to-end tests of the real `ldexp` binary against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Figures for the closing notes are printed by the tests themselves.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod action;
mod baseline;
mod chaos;
mod conformance;
mod demo;
mod export;
mod interrupt;
mod lifecycle;
mod limits;
mod lost_responses;
mod options;
mod org;
mod plan_format;
mod pull;
mod readme;
mod recipes;
mod refusals;
mod service_rules;
mod spec_features;
mod specs;
mod stale;
mod support;
mod tty;
mod validate;
mod views;
