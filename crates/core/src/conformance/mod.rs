//! `ldexp conformance` (issue #18): probes that check, against a live LaunchDarkly or an emulator, the service
//! behaviours of contract §9 that ldexp relies on. This module owns the rules, the verdicts, the report and the
//! order probes run in; `probes` owns the probes that only read, `writes` those that write (one experiment's
//! lifecycle on the borrowed flag, a throwaway metric), and `ledger` what they created and the cleanup.
//!
//! Probes talk through [`Transport::execute`] and read answers as raw JSON on purpose: the point is to see what the
//! service sends, so a typed decode that fails or fills defaults would hide exactly what a probe looks for.

mod ledger;
mod probes;
mod writes;

use serde::Serialize;

use crate::Error;
use crate::client::Transport;

pub use ledger::{Cleanup, Ledger};

/// A verdict with what the probe saw besides.
type Found = (Verdict, Option<String>);

/// The key prefix of every experiment a run creates: `ldexp-conformance-<timestamp>`, so that what a run leaves
/// behind (archived; experiments cannot be deleted) is recognisable and never clashes with a user's key.
pub const KEY_PREFIX: &str = "ldexp-conformance-";

/// One behaviour a probe checks: every rule of contract §9 that can be probed without harm, and two from §1 and §8.
/// Not probed: §9.8 (401 for a project the token's role does not cover) needs a second, narrower token; §9.11 (a
/// 409 a retry cannot fix) has no request that reliably provokes it; §9.13 (legacy experiments) is about old
/// contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// §9.7: caller identity tells the token's kind.
    CallerIdentity,
    /// §1: experiment routes refuse the dated `LD-API-Version` (ldexp sends `beta` there).
    DatedVersionOnExperiments,
    /// §8: the experimentation settings answer the default unit first.
    SettingsUnitsOrder,
    /// §9.9: a create answers its iteration as a not-started draft or current iteration.
    CreateIteration,
    /// §9.1: start turns the rule into an experiment rollout, stop makes it serve the winner; each bumps the version.
    FlagRewrite,
    /// §9.2: a second start on a rule a running experiment holds is a 409.
    HeldRule,
    /// §9.3: a stale `flagConfigVersion` is a 409, on a create and on a new iteration.
    StaleFlagVersion,
    /// §9.4: a new iteration with another set of flags is a 400.
    FixedFlags,
    /// §9.5: a restart after a stop without `changeJustification` is a 400.
    RestartJustification,
    /// §9.6: an experiment whose metric does not list its unit is a 400.
    MetricUnit,
    /// §9.10: `total_count` under `lifecycleState=active,archived` counts what the pages hold.
    TotalCount,
    /// §9.12: answers carry the route's and the account-wide `X-Ratelimit-*-Remaining` headers.
    RateLimitHeaders,
}

impl Rule {
    /// Every rule with a probe, in the order they run and are reported: reads first, then the lifecycle of one
    /// experiment on the borrowed flag (create to restart), the throwaway metric, and last what needs the others
    /// done: `TotalCount` counts the archived probe experiments, `RateLimitHeaders` looks at every answer so far.
    pub const ALL: [Rule; 12] = [
        Rule::CallerIdentity,
        Rule::DatedVersionOnExperiments,
        Rule::SettingsUnitsOrder,
        Rule::CreateIteration,
        Rule::FlagRewrite,
        Rule::HeldRule,
        Rule::StaleFlagVersion,
        Rule::FixedFlags,
        Rule::RestartJustification,
        Rule::MetricUnit,
        Rule::TotalCount,
        Rule::RateLimitHeaders,
    ];

    /// A stable id for JSON output, scripts and the emulator's `--differ` switch.
    pub fn id(self) -> &'static str {
        match self {
            Rule::CallerIdentity => "caller-identity",
            Rule::DatedVersionOnExperiments => "dated-version-on-experiments",
            Rule::SettingsUnitsOrder => "settings-units-order",
            Rule::CreateIteration => "create-iteration",
            Rule::FlagRewrite => "flag-rewrite",
            Rule::HeldRule => "held-rule",
            Rule::StaleFlagVersion => "stale-flag-version",
            Rule::FixedFlags => "fixed-flags",
            Rule::RestartJustification => "restart-justification",
            Rule::MetricUnit => "metric-unit",
            Rule::TotalCount => "total-count",
            Rule::RateLimitHeaders => "rate-limit-headers",
        }
    }

    /// The contract section the rule comes from.
    pub fn section(self) -> &'static str {
        match self {
            Rule::CallerIdentity => "9.7",
            Rule::DatedVersionOnExperiments => "1",
            Rule::SettingsUnitsOrder => "8",
            Rule::CreateIteration => "9.9",
            Rule::FlagRewrite => "9.1",
            Rule::HeldRule => "9.2",
            Rule::StaleFlagVersion => "9.3",
            Rule::FixedFlags => "9.4",
            Rule::RestartJustification => "9.5",
            Rule::MetricUnit => "9.6",
            Rule::TotalCount => "9.10",
            Rule::RateLimitHeaders => "9.12",
        }
    }

    /// What ldexp (and its emulator) assume, in one line.
    pub fn statement(self) -> &'static str {
        match self {
            Rule::CallerIdentity => "GET /api/v2/caller-identity says whether the token is a service token",
            Rule::DatedVersionOnExperiments => {
                "experiment routes refuse LD-API-Version: 20240415 (ldexp sends beta there)"
            }
            Rule::SettingsUnitsOrder => "experimentation settings list the default randomization unit first",
            Rule::CreateIteration => {
                "createExperiment answers its iteration not started, as draftIteration or currentIteration"
            }
            Rule::FlagRewrite => {
                "starting turns the rule into an experiment rollout, stopping makes it serve the winner; each bumps \
                 the flag's version"
            }
            Rule::HeldRule => "starting on a rule another running experiment holds is refused with 409",
            Rule::StaleFlagVersion => {
                "a stale flagConfigVersion is refused with 409, on createExperiment and on createIteration"
            }
            Rule::FixedFlags => "a new iteration that names another set of flags is refused with 400",
            Rule::RestartJustification => "restarting a stopped experiment without changeJustification is refused",
            Rule::MetricUnit => "an experiment whose metric does not list its randomization unit is refused with 400",
            Rule::TotalCount => "total_count under lifecycleState=active,archived counts every item the pages hold",
            Rule::RateLimitHeaders => {
                "answers carry X-Ratelimit-Route-Remaining and the account-wide X-Ratelimit-Global-Remaining"
            }
        }
    }

    /// Whether the probe writes. The confirmation lists these.
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Rule::CallerIdentity
                | Rule::DatedVersionOnExperiments
                | Rule::SettingsUnitsOrder
                | Rule::TotalCount
                | Rule::RateLimitHeaders
        )
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// The service behaves as the rule says.
    Holds,
    /// It does not; `seen` is what it did instead (status, code, message or the values read).
    Differs { seen: String },
    /// The probe could not tell, and why (a missing permission, nothing to observe, a failed precondition).
    CouldNotRun { why: String },
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub rule: Rule,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What the probe saw besides the verdict, worth knowing even when the rule holds (the token's kind, which
    /// field a create used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where the probes run: the project, environment and the flag they may borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    pub environment: String,
    pub flag: String,
    /// This run's experiment key prefix, `ldexp-conformance-<timestamp>`.
    pub prefix: String,
    /// The member that creates name as maintainer; a service token must give one (contract §9.7).
    pub maintainer_id: Option<String>,
}

impl Target {
    /// A target whose probe experiments are keyed `ldexp-conformance-<unix milliseconds>`: milliseconds, so that two
    /// runs in one second (a CI matrix, say) do not collide.
    pub fn new(project: &str, environment: &str, flag: &str, unix_millis: u64) -> Target {
        Target {
            project: project.to_owned(),
            environment: environment.to_owned(),
            flag: flag.to_owned(),
            prefix: format!("{KEY_PREFIX}{unix_millis}"),
            maintainer_id: None,
        }
    }
}

/// A whole run: one outcome per rule, then what cleanup did and left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub cleanup: Cleanup,
}

impl Report {
    /// Whether some rule differs (exit 2).
    pub fn differs(&self) -> bool {
        self.outcomes.iter().any(|o| matches!(o.verdict, Verdict::Differs { .. }))
    }

    /// Whether cleanup failed to undo something, which a caller must treat as an error.
    pub fn cleanup_failed(&self) -> bool {
        !self.cleanup.problems.is_empty()
    }
}

/// What a run will do and leave behind, for the confirmation prompt.
pub fn plan_text(target: &Target) -> String {
    let (p, e, f, prefix) = (&target.project, &target.environment, &target.flag, &target.prefix);
    let mut out = format!("ldexp conformance will run {} probes in {p}/{e}:\n", Rule::ALL.len());
    for rule in Rule::ALL {
        let kind = if rule.writes() { "writes" } else { "reads " };
        out.push_str(&format!("  {kind} §{:<5} {}\n", rule.section(), rule.statement()));
    }
    out.push_str(&format!(
        "\nWhat it writes, in order:\n\
         - experiment {prefix}-lifecycle on the first targeting rule of flag {f}: created, started (the rule becomes \
         an experiment rollout for a moment), stopped (the rule serves the winner), given new iterations, one \
         restart refused (if it is not, stopped again), archived;\n\
         - experiments {prefix}-held, {prefix}-stale and {prefix}-unit: created where LaunchDarkly allows it, never \
         left running, archived;\n\
         - metric {prefix}-metric (a custom metric on a randomization unit that is not the default): created, then \
         deleted;\n\
         - another flag of {p}, if there is one, is named in an iteration that should be refused; it is only read.\n\
         Cleanup runs even on Ctrl-C: it stops any probe experiment still running, archives them all, deletes the \
         metric, puts back the targeting of {f} in {e} as it was before the run (versions aside, guarded by a test \
         of the version so a colleague's edit meanwhile is not overwritten) and reads it again to verify.\n\
         Left behind: the archived experiments (experiments cannot be deleted) and new versions of {f}.\n"
    ));
    out
}

/// Runs every probe in order over `transport`, then the cleanup, whatever happened. `dated` is a transport that
/// sends `LD-API-Version: 20240415` on experiment routes; without one that probe cannot run.
///
/// An `Err` is a failure to read the borrowed flag before any probe ran; a probe's own failures become its verdict
/// so that the other probes still run and cleanup always does.
pub async fn run<T: Transport>(transport: &T, dated: Option<&T>, target: &Target) -> Result<Report, Error> {
    let mut ledger = Ledger::default();
    ledger.borrow_flag(transport, target).await?;
    let outcomes = probe_all(transport, dated, target, &mut ledger).await;
    let cleanup = ledger.clean(transport, target).await;
    Ok(Report { outcomes, cleanup })
}

/// The probes alone, recording in `ledger` what they create before they send it. Kept apart from [`run`] so that a
/// caller can drop this future on Ctrl-C and still clean up with the ledger it holds.
pub async fn probe_all<T: Transport>(
    transport: &T,
    dated: Option<&T>,
    target: &Target,
    ledger: &mut Ledger,
) -> Vec<Outcome> {
    let mut found: Vec<(Rule, Found)> = Vec::with_capacity(Rule::ALL.len());
    // Read once each: the read probes judge them, and the write probes take the token's kind and the units from
    // the same answers.
    let identity = probes::read_identity(transport).await;
    found.push((Rule::CallerIdentity, probes::caller_identity(transport, &identity)));
    let dated_found = match dated {
        Some(d) => probes::dated_version(d, target).await,
        None => probes::could_not("no client with the dated LD-API-Version was given"),
    };
    found.push((Rule::DatedVersionOnExperiments, dated_found));
    let settings = probes::settings(transport, target).await;
    found.push((Rule::SettingsUnitsOrder, probes::settings_units_order(&settings)));
    let ingredients = writes::ingredients(transport, target, &identity, &settings).await;
    found.extend(writes::lifecycle(transport, target, ledger, &ingredients).await);
    found.push((Rule::MetricUnit, writes::metric_unit(transport, target, ledger, &ingredients).await));
    found.push((Rule::TotalCount, probes::total_count(transport, target).await));
    found.push((Rule::RateLimitHeaders, probes::rate_limit_headers(transport)));
    let mut outcomes: Vec<Outcome> =
        found.into_iter().map(|(rule, (verdict, note))| Outcome { rule, verdict, note }).collect();
    outcomes.sort_by_key(|o| Rule::ALL.iter().position(|r| *r == o.rule));
    outcomes
}

#[cfg(test)]
mod tests;
