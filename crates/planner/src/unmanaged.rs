//! Unmanaged experiments: remote experiments in the managed scope (a Workspace's environments, else those the specs
//! target) that no spec names. Listed and left alone, or, with `prune` where the scope owns experiments, archived
//! (stopped first, with the baseline as winner, when running).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use ldexp_core::api::Experiment;
use ldexp_core::design::Design;
use ldexp_core::json_text::JsonText;
use ldexp_core::managed::experiment_fingerprint;
use ldexp_core::plan::{Action, Address, Change, Expectation, FieldChange, Risk, Unmanaged, Warning};
use ldexp_core::remote::RemoteState;
use ldexp_core::spec::{Owned, SpecSet, WorkspaceProject};

use ldexp_core::api::Instruction;

use crate::experiment::{IterState, StopStep, iteration_state, semantic_patch, state_name};

/// The reason given when pruning stops a running experiment.
pub const PRUNE_REASON: &str = "pruned by ldexp";

/// Lists the unmanaged experiments of the managed scope and, with `prune` where the scope owns experiments, plans
/// their archival.
///
/// The scope of a project is its `kind: Workspace` entry when it has one (its environments, and `owns`), else the
/// environments its specs target, where `--prune` may archive; for such a project the plan says which of its
/// environments nothing covers.
pub(crate) fn collect(
    specs: &SpecSet,
    remote: &RemoteState,
    prune: bool,
    changes: &mut Vec<Change>,
    warnings: &mut Vec<Warning>,
) -> Vec<Unmanaged> {
    let declared: BTreeMap<&str, &WorkspaceProject> =
        specs.workspaces.iter().flat_map(|w| w.spec.projects.iter()).map(|p| (p.key.as_str(), p)).collect();
    // (project, environment) in order → the keys specs manage there; hashed, since every remote experiment of a
    // scoped environment is looked up once.
    let mut scope: BTreeMap<(&str, &str), HashSet<&str>> = BTreeMap::new();
    for p in declared.values() {
        for env in &p.environments {
            scope.entry((p.key.as_str(), env.as_str())).or_default();
        }
    }
    for e in &specs.experiments {
        for env in e.spec.target_environments() {
            scope.entry((e.spec.project.as_str(), env)).or_default().insert(e.spec.key.as_str());
        }
    }
    let owns = |project: &str| declared.get(project).is_none_or(|p| p.owns.contains(&Owned::Experiments));
    let mut out = Vec::new();
    for ((project, env), managed) in &scope {
        let Some(Some(p)) = remote.projects.get(*project) else { continue };
        let Some(Some(experiments)) = p.environments.get(*env) else { continue };
        for (key, e) in experiments {
            if managed.contains(key.as_str()) {
                continue;
            }
            let address = Address::Experiment {
                project: (*project).to_owned(),
                environment: (*env).to_owned(),
                key: key.clone(),
            };
            out.push(Unmanaged { address: address.clone(), name: e.name.clone(), state: state_name(e).to_owned() });
            if prune && owns(project) && !e.is_archived() {
                match archive(&address, e) {
                    Ok(c) => changes.push(c),
                    Err(message) => warnings.push(Warning { address: Some(address), message }),
                }
            }
        }
    }
    let projects: BTreeSet<&str> = scope.keys().map(|(p, _)| *p).collect();
    for project in projects {
        if prune && !owns(project) {
            warnings.push(Warning {
                address: None,
                message: format!(
                    "--prune archives nothing in project `{project}`: its Workspace does not own experiments (add \
                     `experiments` to its `owns`)"
                ),
            });
        }
        if declared.contains_key(project) {
            continue;
        }
        if let Some(message) = uncovered(project, &scope, remote) {
            warnings.push(Warning { address: None, message });
        }
    }
    out
}

/// The environments of `project` that no spec targets, when a fetched flag shows them (a flag carries every
/// environment of its project): without a Workspace, `--prune` and the unmanaged report do not look there.
fn uncovered(project: &str, scope: &BTreeMap<(&str, &str), HashSet<&str>>, remote: &RemoteState) -> Option<String> {
    let state = remote.projects.get(project)?.as_ref()?;
    let known: BTreeSet<&str> =
        state.flags.values().flatten().flat_map(|f| f.flag.environments.keys().map(String::as_str)).collect();
    let missing: Vec<String> =
        known.into_iter().filter(|env| !scope.contains_key(&(project, *env))).map(|e| format!("`{e}`")).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "no spec covers environment{} {} of project `{project}`: the unmanaged report and --prune do not look \
             there; declare the managed environments in a `kind: Workspace` document to cover them",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )
    })
}

/// Archives `e`; a running one is first stopped with its baseline as the winner (LaunchDarkly needs one), which the
/// plan shows with the reason.
fn archive(address: &Address, e: &Experiment) -> Result<Change, String> {
    let mut requests = Vec::new();
    let mut fields = Vec::new();
    let cur = e.current_iteration.as_ref();
    if iteration_state(e) == IterState::Running
        && let Some(cur) = cur
    {
        let (winner, winner_name) =
            cur.treatments.iter().find(|t| t.baseline).and_then(|t| Some((t.id.clone()?, t.name.clone()))).ok_or_else(
                || "not pruned: the running iteration has no baseline treatment to declare the winner".to_owned(),
            )?;
        let iteration =
            cur.id.clone().ok_or_else(|| "not pruned: the running iteration has no _id to stop".to_owned())?;
        let stop = StopStep { iteration, winner, winner_name, reason: Some(PRUNE_REASON.to_owned()) };
        let (instruction, expect, stop_fields) = stop.parts();
        requests.push(semantic_patch(address, "stop", vec![instruction], vec![expect]));
        fields.extend(stop_fields);
    }
    requests.push(semantic_patch(
        address,
        "archive",
        vec![Instruction::ArchiveExperiment],
        vec![Expectation::Archived],
    ));
    fields.push(FieldChange {
        field: "state".into(),
        before: Some(state_name(e).into()),
        after: Some("archived".into()),
    });
    let design =
        cur.or(e.draft_iteration.as_ref()).map(|it| JsonText::of(&Design::from_iteration(it)).unwrap_or_default());
    Ok(Change {
        address: address.clone(),
        action: Action::Archive,
        risks: vec![Risk::EndsExperiment],
        remote_fingerprint: Some(experiment_fingerprint(e)),
        before: design.clone(),
        after: design,
        fields,
        requests,
        notes: vec!["not in any spec; archived because of --prune".to_owned()],
        flags: cur.or(e.draft_iteration.as_ref()).map(|it| it.flags.keys().cloned().collect()).unwrap_or_default(),
        depends_on: Vec::new(),
    })
}
