//! Unmanaged experiments: remote experiments in a targeted environment that no spec names. Listed and left
//! alone, or, with `prune`, archived (stopped first, with the baseline as winner, when running).

use std::collections::{BTreeMap, HashSet};

use ldexp_core::api::Experiment;
use ldexp_core::design::Design;
use ldexp_core::digest::fingerprint;
use ldexp_core::json_text::JsonText;
use ldexp_core::plan::{Action, Address, Change, Expectation, FieldChange, Risk, Unmanaged, Warning};
use ldexp_core::remote::RemoteState;
use ldexp_core::spec::SpecSet;

use ldexp_core::api::Instruction;

use crate::experiment::{IterState, StopStep, iteration_state, semantic_patch, state_name};

/// The reason given when pruning stops a running experiment.
pub const PRUNE_REASON: &str = "pruned by ldexp";

/// Lists the unmanaged experiments and, with `prune`, plans their archival.
pub(crate) fn collect(
    specs: &SpecSet,
    remote: &RemoteState,
    prune: bool,
    changes: &mut Vec<Change>,
    warnings: &mut Vec<Warning>,
) -> Vec<Unmanaged> {
    // (project, environment) in order → the keys specs manage there; hashed, since every remote experiment of a
    // targeted environment is looked up once.
    let mut targeted: BTreeMap<(&str, &str), HashSet<&str>> = BTreeMap::new();
    for e in &specs.experiments {
        for env in e.spec.target_environments() {
            targeted.entry((e.spec.project.as_str(), env)).or_default().insert(e.spec.key.as_str());
        }
    }
    let mut out = Vec::new();
    for ((project, env), managed) in targeted {
        let Some(Some(p)) = remote.projects.get(project) else { continue };
        let Some(Some(experiments)) = p.environments.get(env) else { continue };
        for (key, e) in experiments {
            if managed.contains(key.as_str()) {
                continue;
            }
            let address =
                Address::Experiment { project: project.to_owned(), environment: env.to_owned(), key: key.clone() };
            out.push(Unmanaged { address: address.clone(), name: e.name.clone(), state: state_name(e).to_owned() });
            if prune && !e.is_archived() {
                match archive(&address, e) {
                    Ok(c) => changes.push(c),
                    Err(message) => warnings.push(Warning { address: Some(address), message }),
                }
            }
        }
    }
    out
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
        remote_fingerprint: Some(fingerprint(e)),
        before: design.clone(),
        after: design,
        fields,
        requests,
        notes: vec!["not in any spec; archived because of --prune".to_owned()],
    })
}
