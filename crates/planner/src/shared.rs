//! One running experiment per flag rule: LaunchDarkly refuses to start an iteration on a rule (or the fallthrough)
//! that another running iteration uses in the same environment (contract §9.2), so the planner refuses a plan that
//! would end with two running there, naming the other party.

use std::collections::BTreeMap;

use ldexp_core::plan::{Address, Unmanaged};
use ldexp_core::remote::RemoteState;
use ldexp_core::spec::{ExperimentSpec, Located, SourceLocation};

use crate::error::{ProblemKind, Problems};

/// Who would be running on a rule once the plan is applied.
#[derive(Debug)]
enum Party<'a> {
    /// A spec with `state: running`, at its `iteration.flags.<flag>` location; or a draft spec whose experiment
    /// keeps running (`keeps`), which is not the one to blame for a clash.
    Spec { address: Address, location: SourceLocation, spec: &'a Located<ExperimentSpec>, keeps: bool },
    /// An experiment no spec manages, running in LaunchDarkly and not archived by this plan.
    Unmanaged { address: Address },
}

impl Party<'_> {
    fn describe(&self) -> String {
        match self {
            Party::Spec { address, location, .. } => format!("{address} (the spec at {location})"),
            Party::Unmanaged { address } => format!("{address} (running in LaunchDarkly, in no spec)"),
        }
    }
}

/// Who runs on one rule after the plan, and how a spec names the rule (its `_id` is a UUID nobody wrote).
#[derive(Debug, Default)]
struct Slot<'a> {
    label: Option<String>,
    parties: Vec<Party<'a>>,
}

/// `(project, environment, flag, rule _id)` → who runs there after the plan.
#[derive(Debug, Default)]
pub(crate) struct Runners<'a>(BTreeMap<(String, String, String, String), Slot<'a>>);

impl<'a> Runners<'a> {
    /// A spec that leaves its experiment running on `rules` (flag → rule `_id`): its own design when it says
    /// `running` (`own`: the rules are the spec's, so its words name them), or the iteration that runs now when it
    /// says `draft` (a draft waits behind it).
    pub(crate) fn spec<'r>(
        &mut self,
        spec: &'a Located<ExperimentSpec>,
        address: &Address,
        own: bool,
        rules: impl IntoIterator<Item = (&'r String, &'r str)>,
    ) {
        let Address::Experiment { project, environment, .. } = address else { return };
        for (flag, rule) in rules {
            let location = spec.location_of(&format!("iteration.flags.{flag}"));
            let slot = self.0.entry((project.clone(), environment.clone(), flag.clone(), rule.to_owned())).or_default();
            // The spec's own words for the rule, when they name this one.
            let named = spec
                .spec
                .iteration
                .flags
                .get(flag.as_str())
                .filter(|_| own)
                .and_then(|f| f.rule.clone().or(f.rule_id.clone()));
            if slot.label.is_none() && named.as_deref().is_some_and(|n| n != rule && n != "fallthrough") {
                slot.label = named;
            }
            slot.parties.push(Party::Spec { address: address.clone(), location, spec, keeps: !own });
        }
    }

    /// The unmanaged experiments that stay running: listed, running, and not archived by `--prune`.
    pub(crate) fn unmanaged(&mut self, unmanaged: &[Unmanaged], archived: &[&Address], remote: &RemoteState) {
        for u in unmanaged.iter().filter(|u| u.state == "running" && !archived.contains(&&u.address)) {
            let Address::Experiment { project, environment, .. } = &u.address else { continue };
            let Some(it) = remote.experiment(&u.address).and_then(|x| x.running_iteration()) else { continue };
            for (flag, f) in it.flags.iter() {
                let rule = f.targeting_rule.clone().unwrap_or_else(|| "fallthrough".to_owned());
                self.0
                    .entry((project.clone(), environment.clone(), flag.clone(), rule))
                    .or_default()
                    .parties
                    .push(Party::Unmanaged { address: u.address.clone() });
            }
        }
    }

    /// One problem per spec that would share a rule with another party.
    pub(crate) fn check(self, problems: &mut Problems) {
        for ((_, env, flag, rule), Slot { label, parties }) in self.0 {
            if parties.len() < 2 {
                continue;
            }
            let what = match label {
                _ if rule == "fallthrough" => "the fallthrough".to_owned(),
                Some(name) => format!("rule `{name}` ({rule})"),
                None => format!("rule `{rule}`"),
            };
            for (i, p) in parties.iter().enumerate() {
                let Party::Spec { address, location, spec, keeps: false } = p else { continue };
                let others: Vec<String> =
                    parties.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o.describe()).collect();
                problems.push(
                    ProblemKind::Conflict,
                    location,
                    address,
                    format!(
                        "would run on {what} of flag `{flag}` in `{env}` at the same time as {}; LaunchDarkly runs one \
                         experiment per rule",
                        others.join(" and ")
                    ),
                    Some(format!(
                        "run one of them on another rule of `{flag}`, or stop the other first (state: stopped or \
                         archived){}",
                        if spec.spec.environment.is_none() { ", in this environment" } else { "" }
                    )),
                );
            }
        }
    }
}
