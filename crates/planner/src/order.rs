//! Plan order and bound fields: changes that share a flag in one environment run one after another in plan order,
//! so a change that takes a rule another change frees is put after it; and a body that carries a flag's version
//! which an earlier start or stop of the same apply moves has that field bound at send time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use ldexp_core::api::Experiment;
use ldexp_core::plan::{Address, Binding, BoundValue, Change, Expectation, Method, PlannedRequest, Warning};
use ldexp_core::remote::RemoteState;

/// `(project, environment, flag, rule)`: what one running iteration holds.
type Rule = (String, String, String, String);

fn starts(r: &PlannedRequest) -> bool {
    r.expect.iter().any(|e| matches!(e, Expectation::RunningDesign { .. }))
}

fn stops(r: &PlannedRequest) -> bool {
    r.expect.iter().any(|e| matches!(e, Expectation::IterationStopped { .. }))
}

/// The rules a change takes (its start) and frees (its stop, or the running iteration a restart replaces).
fn holds(c: &Change, remote: &RemoteState) -> (BTreeSet<Rule>, BTreeSet<Rule>) {
    let Address::Experiment { project, environment, .. } = &c.address else { return Default::default() };
    let rule = |flag: &str, rule: &str| (project.clone(), environment.clone(), flag.to_owned(), rule.to_owned());
    let mut takes = BTreeSet::new();
    for e in c.requests.iter().flat_map(|r| &r.expect) {
        if let Expectation::RunningDesign { design } = e {
            takes.extend(design.flags.iter().map(|(flag, f)| rule(flag, &f.rule_id)));
        }
    }
    let mut frees = BTreeSet::new();
    if c.requests.iter().any(|r| starts(r) || stops(r))
        && let Some(it) = remote.experiment(&c.address).and_then(Experiment::running_iteration)
    {
        for (flag, f) in it.flags.iter() {
            frees.insert(rule(flag, f.targeting_rule.as_deref().unwrap_or("fallthrough")));
        }
    }
    (takes, frees)
}

/// Reorders `changes` (sorted by address) so that each change comes after the changes that free a rule it takes,
/// keeping address order otherwise. Changes that would wait on each other (two experiments trading rules) keep
/// address order, with a warning: LaunchDarkly will refuse one start, and the plan says so.
pub(crate) fn order(changes: Vec<Change>, remote: &RemoteState, warnings: &mut Vec<Warning>) -> Vec<Change> {
    let held: Vec<(BTreeSet<Rule>, BTreeSet<Rule>)> = changes.iter().map(|c| holds(c, remote)).collect();
    let mut freed_by: BTreeMap<&Rule, Vec<usize>> = BTreeMap::new();
    for (j, (_, frees)) in held.iter().enumerate() {
        for r in frees {
            freed_by.entry(r).or_default().push(j);
        }
    }
    if freed_by.is_empty() {
        return changes;
    }
    // Edges j → i: j frees a rule i takes.
    let mut waits_on = vec![0usize; changes.len()];
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, (takes, _)) in held.iter().enumerate() {
        let before: BTreeSet<usize> =
            takes.iter().flat_map(|r| freed_by.get(r).into_iter().flatten().copied()).filter(|&j| j != i).collect();
        waits_on[i] = before.len();
        for j in before {
            unblocks[j].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..changes.len()).filter(|&i| waits_on[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(Reverse(j)) = ready.pop() {
        order.push(j);
        for &i in &unblocks[j] {
            waits_on[i] -= 1;
            if waits_on[i] == 0 {
                ready.push(Reverse(i));
            }
        }
    }
    if order.len() < changes.len() {
        let placed: BTreeSet<usize> = order.iter().copied().collect();
        let stuck: Vec<usize> = (0..changes.len()).filter(|i| !placed.contains(i)).collect();
        let names: Vec<String> = stuck.iter().map(|&i| changes[i].address.to_string()).collect();
        for &i in &stuck {
            warnings.push(Warning {
                address: Some(changes[i].address.clone()),
                message: format!(
                    "{} take each other's flag rules; LaunchDarkly runs one experiment per rule, so one of the starts \
                     will be refused: stop one of them in a first apply, then apply the rest",
                    names.join(" and ")
                ),
            });
        }
        order.extend(stuck);
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// JSON pointer escaping of one reference token (RFC 6901).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Binds the `flagConfigVersion` of every create or new iteration whose flag an earlier start or stop of the plan
/// moves, in the order the applier runs them (plan order, per flag and environment).
pub(crate) fn bind(changes: &mut [Change]) {
    let mut moved: BTreeSet<(String, String, String)> = BTreeSet::new();
    for c in changes.iter_mut() {
        let Address::Experiment { project, environment, .. } = &c.address else { continue };
        for r in &mut c.requests {
            if r.method == Method::Post && !moved.is_empty() {
                bind_request(r, project, environment, &moved);
            }
            // A stop followed by a new iteration in one change moves the flag under the latter too.
            if starts(r) || stops(r) {
                moved.extend(c.flags.iter().map(|f| (project.clone(), environment.clone(), f.clone())));
            }
        }
    }
}

fn bind_request(r: &mut PlannedRequest, project: &str, environment: &str, moved: &BTreeSet<(String, String, String)>) {
    let flags_at = if r.path.ends_with("/iterations") { "/flags" } else { "/iteration/flags" };
    let Some(flags) = r.body.as_ref().and_then(|b| b.pointer(flags_at)).and_then(|f| f.as_object()) else { return };
    for flag in flags.keys() {
        if moved.contains(&(project.to_owned(), environment.to_owned(), flag.clone())) {
            r.bind.push(Binding {
                pointer: format!("{flags_at}/{}/flagConfigVersion", token(flag)),
                value: BoundValue::FlagVersion {
                    project: project.to_owned(),
                    flag: flag.clone(),
                    environment: environment.to_owned(),
                },
            });
        }
    }
}
