//! [`Deviation`]: the live-service rules the emulator can be told to break (`--differ`), so that the probes of
//! `ldexp conformance` can be shown to report "differs". Each rule is checked at the one place it is enforced;
//! this module only names them.

use std::collections::BTreeSet;

/// One service rule the emulator can be told to break, for testing `ldexp conformance` (never for anything else).
///
/// The kebab-case names are the probes' ids, so they are part of the contract with `ldexp conformance`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Deviation {
    /// Contract §9.7: `GET /api/v2/caller-identity` answers without `tokenKind` and `serviceToken`.
    CallerIdentity,
    /// Contract §9.12: no answer carries `X-Ratelimit-Global-Remaining`, even under `--rate-limit-global`.
    RateLimitHeaders,
    /// Contract §1: beta routes also accept the dated `LD-API-Version: 20240415`.
    DatedVersionOnExperiments,
    /// Contract §8: `GET …/experimentation-settings` lists the default randomization unit last, not first.
    SettingsUnitsOrder,
    /// Contract §9.9: the answer to `createExperiment` carries neither `draftIteration` nor `currentIteration`.
    CreateIteration,
    /// Contract §9.10: the same as `--misreport-total-count`.
    TotalCount,
    /// Contract §9.1: starting and stopping an iteration leave its flags untouched.
    FlagRewrite,
    /// Contract §9.2: `startIteration` on a rule another running experiment holds is accepted, not 409.
    HeldRule,
    /// Contract §9.3: a stale `flagConfigVersion` is accepted, not 409.
    StaleFlagVersion,
    /// Contract §9.4: a new iteration may name other flags than the experiment's first iteration, not 400.
    FixedFlags,
    /// Contract §9.5: restarting a stopped experiment needs no `changeJustification`.
    RestartJustification,
    /// Contract §9.6: metrics that do not list the iteration's randomization unit are accepted, not 400.
    MetricUnit,
}

impl Deviation {
    /// Every deviation, in declaration (and id) order.
    pub const ALL: [Deviation; 12] = [
        Deviation::CallerIdentity,
        Deviation::RateLimitHeaders,
        Deviation::DatedVersionOnExperiments,
        Deviation::SettingsUnitsOrder,
        Deviation::CreateIteration,
        Deviation::TotalCount,
        Deviation::FlagRewrite,
        Deviation::HeldRule,
        Deviation::StaleFlagVersion,
        Deviation::FixedFlags,
        Deviation::RestartJustification,
        Deviation::MetricUnit,
    ];

    /// The kebab-case id, as `--differ` and the probes of `ldexp conformance` spell it.
    pub fn id(self) -> &'static str {
        match self {
            Deviation::CallerIdentity => "caller-identity",
            Deviation::RateLimitHeaders => "rate-limit-headers",
            Deviation::DatedVersionOnExperiments => "dated-version-on-experiments",
            Deviation::SettingsUnitsOrder => "settings-units-order",
            Deviation::CreateIteration => "create-iteration",
            Deviation::TotalCount => "total-count",
            Deviation::FlagRewrite => "flag-rewrite",
            Deviation::HeldRule => "held-rule",
            Deviation::StaleFlagVersion => "stale-flag-version",
            Deviation::FixedFlags => "fixed-flags",
            Deviation::RestartJustification => "restart-justification",
            Deviation::MetricUnit => "metric-unit",
        }
    }

    /// The line an emulator that breaks rules on purpose prints at startup, so nobody mistakes it for a faithful
    /// one; `None` when it breaks none.
    pub fn notice(set: &BTreeSet<Deviation>) -> Option<String> {
        if set.is_empty() {
            return None;
        }
        let ids: Vec<&str> = set.iter().map(|d| d.id()).collect();
        Some(format!("ldexp emulator: differing on purpose from: {}", ids.join(", ")))
    }
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn there_is_one_deviation_per_conformance_rule_under_the_same_id() {
        // The probes and the switches are two lists in two crates; this keeps them one set.
        let mut rules: Vec<&str> = ldexp_core::conformance::Rule::ALL.iter().map(|r| r.id()).collect();
        let mut deviations: Vec<&str> = Deviation::ALL.iter().map(|d| d.id()).collect();
        rules.sort_unstable();
        deviations.sort_unstable();
        assert_eq!(rules, deviations);
    }

    #[test]
    fn ids_agree_with_clap_and_serde_and_all_is_complete_and_sorted() {
        let mut seen = BTreeSet::new();
        for d in Deviation::ALL {
            let clap_name = d.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(clap_name.as_deref(), Some(d.id()));
            assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!(d.id()));
            assert_eq!(serde_json::from_value::<Deviation>(serde_json::json!(d.id())).unwrap(), d);
            assert_eq!(d.to_string(), d.id());
            seen.insert(d);
        }
        assert_eq!(seen.len(), Deviation::value_variants().len());
        assert!(Deviation::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_notice_names_every_deviation_in_order() {
        assert_eq!(Deviation::notice(&BTreeSet::new()), None);
        let set = BTreeSet::from([Deviation::MetricUnit, Deviation::HeldRule]);
        assert_eq!(
            Deviation::notice(&set).as_deref(),
            Some("ldexp emulator: differing on purpose from: held-rule, metric-unit")
        );
    }
}
