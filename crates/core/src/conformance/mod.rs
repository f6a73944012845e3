//! `ldexp conformance` (issue #18): probes that check, against a live LaunchDarkly or an emulator, the service
//! behaviours of contract §9 that ldexp relies on. This module owns the rules, the verdicts, the report and the
//! order probes run in; `probes` owns what each probe sends and how it judges the answer; `ledger` owns the cleanup.
//!
//! Probes talk through [`Transport::execute`] and read answers as raw JSON on purpose: the point is to see what the
//! service sends, so a typed decode that fails or fills defaults would hide exactly what a probe looks for.

mod ledger;
mod probes;

use serde::Serialize;

use crate::Error;
use crate::client::Transport;

pub use ledger::{Cleanup, Ledger};

/// The key prefix of every experiment a run creates: `ldexp-conformance-<timestamp>`, so that what a run leaves
/// behind (archived; experiments cannot be deleted) is recognisable and never clashes with a user's key.
pub const KEY_PREFIX: &str = "ldexp-conformance-";

/// One behaviour a probe checks. Only rules with a probe are listed; the rest of #18's list is in
/// docs/conformance-todo.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// §9.10: `total_count` under `lifecycleState=active,archived` counts what the pages hold.
    TotalCount,
}

impl Rule {
    /// Every rule with a probe, in the order they run: reads first, then the one that writes. `TotalCount` runs
    /// after the create so that at least one archived experiment (the probe's own) is there to be counted.
    pub const ALL: [Rule; 5] = [
        Rule::CallerIdentity,
        Rule::DatedVersionOnExperiments,
        Rule::SettingsUnitsOrder,
        Rule::CreateIteration,
        Rule::TotalCount,
    ];

    /// A stable id for JSON output and scripts.
    pub fn id(self) -> &'static str {
        match self {
            Rule::CallerIdentity => "caller-identity",
            Rule::DatedVersionOnExperiments => "dated-version-on-experiments",
            Rule::SettingsUnitsOrder => "settings-units-order",
            Rule::CreateIteration => "create-iteration",
            Rule::TotalCount => "total-count",
        }
    }

    /// The contract section the rule comes from.
    pub fn section(self) -> &'static str {
        match self {
            Rule::CallerIdentity => "9.7",
            Rule::DatedVersionOnExperiments => "1",
            Rule::SettingsUnitsOrder => "8",
            Rule::CreateIteration => "9.9",
            Rule::TotalCount => "9.10",
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
            Rule::TotalCount => "total_count under lifecycleState=active,archived counts every item the pages hold",
        }
    }

    /// Whether the probe writes (creates something). The confirmation lists these.
    pub fn writes(self) -> bool {
        matches!(self, Rule::CreateIteration)
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
    let mut out = format!(
        "ldexp conformance will run {} probes in {}/{}:\n",
        Rule::ALL.len(),
        target.project,
        target.environment
    );
    for rule in Rule::ALL {
        let kind = if rule.writes() { "writes" } else { "reads " };
        out.push_str(&format!("  {kind} §{:<5} {}\n", rule.section(), rule.statement()));
    }
    out.push_str(&format!(
        "It will create experiment {}-create on flag {} (not started, so the flag is unchanged) and archive it; \
         experiments cannot be deleted, so it stays behind, archived.\nThe flag's targeting in {} is read before \
         and compared after.\n",
        target.prefix, target.flag, target.environment
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
    let mut outcomes = Vec::with_capacity(Rule::ALL.len());
    for rule in Rule::ALL {
        let (verdict, note) = probes::probe(rule, transport, dated, target, ledger).await;
        outcomes.push(Outcome { rule, verdict, note });
    }
    outcomes
}

#[cfg(test)]
mod tests;
