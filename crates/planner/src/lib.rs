//! The planner: diffs loaded specs against a fetched LaunchDarkly snapshot into a deterministic [`Plan`] of
//! exact requests. Pure and synchronous: no I/O, no clock, no randomness.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod catalog;
mod checks;
mod creation;
mod error;
mod experiment;
mod fields;
mod index;
mod legacy;
mod order;
mod org;
mod resolve;
mod shared;
mod unmanaged;

use foldhash::HashMap;

use ldexp_core::plan::{Action, Address, Change, Divergence, FORMAT_VERSION, Plan, Summary};
use ldexp_core::remote::RemoteState;
use ldexp_core::spec::{ExperimentSpec, ExperimentState, LegacyFlagExperimentsSpec, Located, SourceLocation, SpecSet};

pub use error::{PlanError, Problem, ProblemKind};
pub use experiment::ARCHIVE_REASON;
pub use unmanaged::PRUNE_REASON;

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Archive unmanaged experiments in targeted environments (stopping them first where they run).
    pub prune: bool,
}

/// Plans `specs` against `remote` without pruning.
pub fn plan(specs: &SpecSet, remote: &RemoteState) -> Result<Plan, PlanError> {
    plan_with(specs, remote, &PlanOptions::default())
}

/// The refusal of an object in a project the token may not read (contract §9.8): the other projects still plan,
/// and `plan` and `apply` exit 1 naming it.
pub(crate) fn forbidden(address: Address, project: &str, why: &str, location: SourceLocation) -> Divergence {
    Divergence {
        address,
        field: "project".to_owned(),
        remote: None,
        spec: Some(project.into()),
        reason: format!(
            "no permission for project {project} (or the token is invalid): LaunchDarkly answered 401: {why}"
        ),
        hint: Some(
            "give the token a role that can read and write this project; the other projects are planned".to_owned(),
        ),
        location,
        refuses: true,
    }
}

/// Plans `specs` against `remote`. Every problem found is reported, not just the first.
pub fn plan_with(specs: &SpecSet, remote: &RemoteState, options: &PlanOptions) -> Result<Plan, PlanError> {
    let overlays = catalog::overlays(specs, remote, options.prune);
    let index = index::build(remote, &overlays);
    let mut problems = error::Problems::default();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut divergences = Vec::new();
    // Keyed by borrowed keys, not `Address`es: one lookup per experiment, no clones. The owning spec's location is
    // looked up only for a conflict.
    let mut owners: HashMap<(&str, &str, &str), &Located<ExperimentSpec>> = HashMap::default();
    let mut legacy_owners: HashMap<(&str, &str), &Located<LegacyFlagExperimentsSpec>> = HashMap::default();
    let mut runners = shared::Runners::default();
    let catalog = catalog::plan(specs, remote, options.prune, &mut problems, &mut divergences);
    // What an experiment change waits for: the catalog changes (not deletes) of the objects it uses.
    let catalog_ready: std::collections::BTreeSet<&Address> =
        catalog.changes.iter().filter(|c| c.action != Action::Delete).map(|c| &c.address).collect();
    let mut pending = org::Pending::default();
    let mut org_planned = org::plan(specs, remote, options.prune, &mut problems, &mut divergences, &mut pending);
    org::check_totals(specs, remote, options.prune, &mut problems);
    for h in &specs.holdouts {
        org::check_holdout_refs(h, index.get(h.spec.project.as_str()).and_then(Option::as_ref), &mut problems);
        for c in org_planned.changes.iter_mut().filter(|c| c.action == Action::Create) {
            if matches!(&c.address, Address::Holdout { project, key, .. } if *project == h.spec.project && *key == h.spec.key)
            {
                c.depends_on = org::holdout_needs(&h.spec, &catalog_ready);
            }
        }
    }
    let mut shifts: std::collections::BTreeMap<Address, Vec<org::Shift>> = std::collections::BTreeMap::new();

    for spec in &specs.experiments {
        let s = &spec.spec;
        let envs = s.target_environments();
        let several = s.environment.is_none();
        for (i, env) in envs.iter().enumerate() {
            let owner = (s.project.as_str(), *env, s.key.as_str());
            if let Some(first) = owners.get(&owner) {
                let address = Address::Experiment {
                    project: s.project.clone(),
                    environment: (*env).to_owned(),
                    key: s.key.clone(),
                };
                problems.push(
                    ProblemKind::Conflict,
                    &spec.location_of("key"),
                    &address,
                    format!("another spec already manages this experiment, at {}", first.location_of("key")),
                    Some("each experiment key may appear once per project and environment".to_owned()),
                );
                continue;
            }
            owners.insert(owner, spec);
            if let Some(why) = remote.forbidden.get(&s.project) {
                let address = Address::Experiment {
                    project: s.project.clone(),
                    environment: (*env).to_owned(),
                    key: s.key.clone(),
                };
                divergences.push(forbidden(address, &s.project, why, spec.location_of("project")));
                continue;
            }
            let env_field = if several { format!("environments[{i}]") } else { "environment".to_owned() };
            let Some(target) = checks::experiment(spec, env, &env_field, &index, &mut problems) else { continue };
            match (s.state, &target.desired, target.remote.and_then(|e| e.running_iteration())) {
                (ExperimentState::Running, Some(design), _) => {
                    runners.spec(
                        spec,
                        &target.address,
                        true,
                        design.flags.iter().map(|(k, f)| (k, f.rule_id.as_str())),
                    );
                }
                // A draft spec on a running experiment prepares the next iteration; the current one keeps running.
                (ExperimentState::Draft, _, Some(it)) => runners.spec(
                    spec,
                    &target.address,
                    false,
                    it.flags.iter().map(|(k, f)| (k, f.targeting_rule.as_deref().unwrap_or("fallthrough"))),
                ),
                _ => {}
            }
            // Only what this target adds can refuse it: a scan of these, not of every divergence so far.
            let divergences_before = divergences.len();
            let membership = org::membership(
                spec,
                env,
                &target.address,
                target.remote,
                remote,
                &pending,
                &mut problems,
                &mut divergences,
            );
            let planned = experiment::plan(&target, &mut problems, &mut warnings, &mut divergences).map(|mut c| {
                c.depends_on = catalog::needed_by(s, &catalog_ready);
                c
            });
            // A refused experiment gets nothing, its layers and holdouts included.
            if divergences[divergences_before..].iter().any(|d| d.refuses && d.address == target.address) {
                continue;
            }
            let moved = membership.shifts.clone();
            if let Some(change) = org::attach(planned, &target.address, membership) {
                shifts.insert(change.address.clone(), moved);
                changes.push(change);
            }
        }
    }
    for spec in &specs.legacy {
        if let Some(why) = remote.forbidden.get(&spec.spec.project) {
            let address = Address::Legacy { project: spec.spec.project.clone(), flag: spec.spec.flag.clone() };
            divergences.push(forbidden(address, &spec.spec.project, why, spec.location_of("project")));
            continue;
        }
        let owner = (spec.spec.project.as_str(), spec.spec.flag.as_str());
        if let Some(first) = legacy_owners.get(&owner) {
            let address = Address::Legacy { project: spec.spec.project.clone(), flag: spec.spec.flag.clone() };
            problems.push(
                ProblemKind::Conflict,
                &spec.location_of("flag"),
                &address,
                format!(
                    "another spec already manages this flag's legacy experiments, at {}",
                    first.location_of("flag")
                ),
                Some("merge the two specs: one spec owns a flag's whole `experiments`".to_owned()),
            );
            continue;
        }
        legacy_owners.insert(owner, spec);
        if let Some(change) = legacy::plan(spec, &index, &mut problems, &mut warnings) {
            changes.push(change);
        }
    }
    let mut unmanaged = unmanaged::collect(specs, remote, options.prune, &mut changes, &mut warnings);
    unmanaged.extend(catalog.unmanaged);
    unmanaged.extend(std::mem::take(&mut org_planned.unmanaged));
    let archived: Vec<&Address> = changes.iter().filter(|c| c.action == Action::Archive).map(|c| &c.address).collect();
    runners.unmanaged(&unmanaged, &archived, remote);
    runners.check(&mut problems);
    problems.into_result()?;

    changes.sort_by(|a, b| a.address.cmp(&b.address));
    let mut changes = order::order(changes, remote, &mut warnings);
    order::bind(&mut changes);
    // The catalog first, in address order (settings, metrics, groups), and its deletes last, groups before the
    // metrics they held: the order the dependencies allow, shown as the reviewer reads it.
    let (mut deletes, mut created): (Vec<Change>, Vec<Change>) =
        catalog.changes.into_iter().chain(org_planned.changes).partition(|c| c.action == Action::Delete);
    created.sort_by(|a, b| a.address.cmp(&b.address));
    deletes.sort_by(|a, b| b.address.cmp(&a.address));
    let mut changes: Vec<Change> = created.into_iter().chain(changes).chain(deletes).collect();
    org::order(&mut changes, &shifts);
    warnings.sort_by(|a, b| (&a.address, &a.message).cmp(&(&b.address, &b.message)));
    divergences.sort_by(|a, b| (&a.address, &a.location, &a.field).cmp(&(&b.address, &b.location, &b.field)));
    let summary = Summary::of(&changes, unmanaged.len());
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        specs_digest: specs.digest.clone(),
        prune: options.prune,
        changes,
        unmanaged,
        warnings,
        divergences,
        summary,
    };
    plan.summary.refused = plan.refused_addresses().len();
    Ok(plan)
}
