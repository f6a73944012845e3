//! Layers and holdouts: their own changes (create, rename, end, `--prune`), an experiment's place in them (its
//! reservation in a layer, leaving a holdout, joining one at creation), and the checks LaunchDarkly would otherwise
//! fail at apply (reservations above 100%, a zero reservation on a started iteration, an unknown or ended holdout).
//!
//! An experiment's reservation is written by requests in the experiment's own change, each naming the layer as its
//! `object`: a reservation needs the experiment to exist and must be in place before its iteration starts, so it
//! sits between the create and the start. Within one layer and environment, a change that raises a reservation
//! waits for every change that lowers or removes one, so the total never passes 100% on the way.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::{Holdout, Layer};
use ldexp_core::digest::fingerprint;
use ldexp_core::plan::{
    Action, Address, Change, Divergence, Expectation, FieldChange, PlannedRequest, Risk, Unmanaged,
};
use ldexp_core::remote::{ProjectState, RemoteState};
use ldexp_core::requests;
use ldexp_core::spec::{HoldoutSpec, HoldoutState, Located, Owned, SpecSet};
use serde_json::{Value, json};

use crate::catalog::known_project;

mod member;

use crate::error::{ProblemKind, Problems};
use crate::index::ProjectView;
pub(crate) use member::{Shift, attach, check_totals, membership, order};

/// What the layers and holdouts themselves need.
pub(crate) struct Planned {
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
}

/// The layers a plan creates, and the holdouts it creates or ends: what experiment changes wait for.
#[derive(Default)]
pub(crate) struct Pending {
    created_layers: BTreeSet<(String, String)>,
    /// `(project, environment, key)` → whether the spec ends it.
    declared_holdouts: BTreeMap<(String, String, String), HoldoutState>,
    created_holdouts: BTreeSet<(String, String, String)>,
}

fn state<'a>(remote: &'a RemoteState, project: &str) -> Option<&'a ProjectState> {
    remote.projects.get(project)?.as_ref()
}

fn layers<'a>(remote: &'a RemoteState, project: &str) -> Option<&'a BTreeMap<String, Layer>> {
    state(remote, project)?.layers.as_ref()
}

fn holdout<'a>(remote: &'a RemoteState, project: &str, env: &str, key: &str) -> Option<&'a Holdout> {
    state(remote, project)?.holdouts.get(env)?.get(key)
}

/// A change with no fingerprint yet: the catalog's constructor, which the callers complete.
fn change(address: Address, action: Action, fields: Vec<FieldChange>, requests: Vec<PlannedRequest>) -> Change {
    crate::catalog::change(address, action, None, fields, requests)
}

fn field(name: &str, before: Option<Value>, after: Option<Value>) -> FieldChange {
    FieldChange { field: name.to_owned(), before, after }
}

/// `updateLayer` for one environment's reservations, or for the layer's own fields when `env` is `None`.
fn layer_patch(
    project: &str,
    key: &str,
    env: Option<&str>,
    instructions: Vec<Value>,
    expect: Vec<Expectation>,
) -> PlannedRequest {
    let address = Address::Layer { project: project.to_owned(), key: key.to_owned() };
    let mut body = json!({ "comment": format!("ldexp: update {address}"), "instructions": instructions });
    if let Some(e) = env {
        body["environmentKey"] = json!(e);
    }
    let mut r = requests::update_layer(project, key, &body);
    r.expect = expect;
    r
}

fn holdout_patch(address: &Address, instructions: Vec<Value>, expect: Vec<Expectation>) -> PlannedRequest {
    let Address::Holdout { project, environment, key } = address else { unreachable!("a holdout address") };
    let body = json!({ "comment": format!("ldexp: update {address}"), "instructions": instructions });
    let mut r = requests::patch_holdout(project, environment, key, &body);
    r.expect = expect;
    r
}

/// The experiments some spec declares, by `(project, environment, key)`.
fn declared_experiments(specs: &SpecSet) -> BTreeSet<(&str, &str, &str)> {
    let mut out = BTreeSet::new();
    for e in &specs.experiments {
        for env in e.spec.target_environments() {
            out.insert((e.spec.project.as_str(), env, e.spec.key.as_str()));
        }
    }
    out
}

/// The Workspace entry of `project` that owns `kind`, with its environments.
fn owner<'a>(
    specs: &'a SpecSet,
    project: &str,
    kind: Owned,
) -> Option<(&'a Located<ldexp_core::spec::WorkspaceSpec>, usize)> {
    specs
        .workspaces
        .iter()
        .find_map(|w| w.spec.projects.iter().position(|p| p.key == project && p.owns.contains(&kind)).map(|i| (w, i)))
}

/// Plans the layers and holdouts the specs declare, and under a Workspace that owns them, the unmanaged ones.
pub(crate) fn plan(
    specs: &SpecSet,
    remote: &RemoteState,
    prune: bool,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
    pending: &mut Pending,
) -> Planned {
    let mut out = Planned { changes: Vec::new(), unmanaged: Vec::new() };
    let declared = declared_experiments(specs);
    for l in &specs.layers {
        let s = &l.spec;
        let address = Address::Layer { project: s.project.clone(), key: s.key.clone() };
        if known_project(remote, &s.project, &address, &l.location_of("project"), problems, divergences).is_none() {
            continue;
        }
        let description = s.description.clone().unwrap_or_default();
        let expect =
            vec![Expectation::Name { value: s.name.clone() }, Expectation::Description { value: description.clone() }];
        match layers(remote, &s.project).and_then(|m| m.get(&s.key)) {
            None => {
                pending.created_layers.insert((s.project.clone(), s.key.clone()));
                let mut r = requests::create_layer(&s.project, &s.create_body());
                r.expect = expect;
                let fields = vec![
                    field("name", None, Some(json!(s.name))),
                    field("description", None, Some(json!(description))),
                ];
                out.changes.push(change(address, Action::Create, fields, vec![r]));
            }
            Some(have) => {
                let mut ins = Vec::new();
                let mut expect = Vec::new();
                let mut fields = Vec::new();
                if have.name != s.name {
                    ins.push(json!({"kind": "updateName", "name": s.name}));
                    expect.push(Expectation::Name { value: s.name.clone() });
                    fields.push(field("name", Some(json!(have.name)), Some(json!(s.name))));
                }
                let had = have.description.clone().unwrap_or_default();
                if had != description {
                    ins.push(json!({"kind": "updateDescription", "description": description}));
                    expect.push(Expectation::Description { value: description.clone() });
                    fields.push(field("description", Some(json!(had)), Some(json!(description))));
                }
                if !ins.is_empty() {
                    let mut c = change(
                        address,
                        Action::Update,
                        fields,
                        vec![layer_patch(&s.project, &s.key, None, ins, expect)],
                    );
                    c.remote_fingerprint = Some(fingerprint(have));
                    out.changes.push(c);
                }
            }
        }
    }
    // Reservations of experiments no spec declares: reported where a Workspace owns layers, removed under --prune.
    let projects: BTreeSet<&str> =
        specs.workspaces.iter().flat_map(|w| w.spec.projects.iter().map(|p| p.key.as_str())).collect();
    for project in projects {
        let Some((w, i)) = owner(specs, project, Owned::Layers) else { continue };
        let Some(all) = layers(remote, project) else { continue };
        let envs: Vec<&str> = w.spec.projects[i].environments.iter().map(String::as_str).collect();
        for (key, layer) in all {
            let address = Address::Layer { project: project.to_owned(), key: key.clone() };
            if !specs.layers.iter().any(|l| l.spec.project == project && l.spec.key == *key) {
                out.unmanaged.push(Unmanaged {
                    address: address.clone(),
                    name: layer.name.clone(),
                    state: "layer".into(),
                });
            }
            if !prune {
                continue;
            }
            let mut requests = Vec::new();
            let mut fields = Vec::new();
            for env in &envs {
                let stray: Vec<&str> = layer
                    .reservations(env)
                    .iter()
                    .map(|r| r.experiment_key.as_str())
                    .filter(|k| !declared.contains(&(project, *env, *k)))
                    .collect();
                if stray.is_empty() {
                    continue;
                }
                for k in &stray {
                    let pct = layer.reservation(env, k).map(|r| r.reservation_percent);
                    fields.push(field(&format!("reservations.{env}.{k}"), pct.map(|p| json!(p)), None));
                }
                let ins = stray.iter().map(|k| json!({"kind": "removeExperiment", "experimentKey": k})).collect();
                let expect = stray
                    .iter()
                    .map(|k| Expectation::NoReservation { environment: (*env).to_owned(), experiment: (*k).to_owned() })
                    .collect();
                requests.push(layer_patch(project, key, Some(env), ins, expect));
            }
            if requests.is_empty() {
                continue;
            }
            match out.changes.iter_mut().find(|c| c.address == address) {
                Some(c) => {
                    c.fields.extend(fields);
                    c.requests.extend(requests);
                }
                None => {
                    let mut c = change(address, Action::Update, fields, requests);
                    c.remote_fingerprint = Some(fingerprint(layer));
                    c.notes.push(crate::unmanaged::PRUNE_REASON.to_owned());
                    out.changes.push(c);
                }
            }
        }
    }
    for h in &specs.holdouts {
        for env in h.spec.target_environments() {
            let key = (h.spec.project.clone(), env.to_owned(), h.spec.key.clone());
            pending.declared_holdouts.insert(key, h.spec.state);
        }
    }
    for h in &specs.holdouts {
        for env in h.spec.target_environments() {
            if let Some(c) = holdout_change(h, env, remote, problems, divergences, pending) {
                out.changes.push(c);
            }
        }
    }
    for w in &specs.workspaces {
        for p in &w.spec.projects {
            if !p.owns.contains(&Owned::Holdouts) {
                continue;
            }
            let Some(st) = state(remote, &p.key) else { continue };
            for env in &p.environments {
                for (key, h) in st.holdouts.get(env).into_iter().flatten() {
                    if pending.declared_holdouts.contains_key(&(p.key.clone(), env.clone(), key.clone())) {
                        continue;
                    }
                    let address =
                        Address::Holdout { project: p.key.clone(), environment: env.clone(), key: key.clone() };
                    out.unmanaged.push(Unmanaged {
                        address: address.clone(),
                        name: h.name().to_owned(),
                        state: h.status.clone(),
                    });
                    if prune && !h.is_ended() {
                        let end = holdout_patch(
                            &address,
                            vec![json!({"kind": "endHoldout"})],
                            vec![Expectation::HoldoutEnded],
                        );
                        let mut c = change(
                            address,
                            Action::Stop,
                            vec![field("state", Some(json!(h.status)), Some(json!("ended")))],
                            vec![end],
                        );
                        c.risks.push(Risk::EndsExperiment);
                        c.remote_fingerprint = Some(fingerprint(h));
                        c.notes.push(crate::unmanaged::PRUNE_REASON.to_owned());
                        out.changes.push(c);
                    }
                }
            }
        }
    }
    out
}

/// One declared holdout in one environment.
fn holdout_change(
    h: &Located<HoldoutSpec>,
    env: &str,
    remote: &RemoteState,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
    pending: &mut Pending,
) -> Option<Change> {
    let s = &h.spec;
    let address = Address::Holdout { project: s.project.clone(), environment: env.to_owned(), key: s.key.clone() };
    known_project(remote, &s.project, &address, &h.location_of("project"), problems, divergences)?;
    let description = s.description.clone().unwrap_or_default();
    let Some(have) = holdout(remote, &s.project, env, &s.key) else {
        if s.state == HoldoutState::Ended {
            problems.push(
                ProblemKind::Lifecycle,
                &h.location_of("state"),
                &address,
                format!("holdout `{}` does not exist in `{env}`, and the spec says it has ended", s.key),
                Some("write `state: active` to create it, or remove the spec".to_owned()),
            );
            return None;
        }
        let mut missing = Vec::new();
        if s.randomization_unit.is_none() {
            missing.push("randomizationUnit");
        }
        if s.primary_metric.is_none() {
            missing.push("primaryMetric");
        }
        if !missing.is_empty() {
            problems.push(
                ProblemKind::Reference,
                &h.location,
                &address,
                format!("creating holdout `{}` in `{env}` needs {}", s.key, missing.join(" and ")),
                Some("LaunchDarkly requires both to create a holdout".to_owned()),
            );
            return None;
        }
        pending.created_holdouts.insert((s.project.clone(), env.to_owned(), s.key.clone()));
        let body = s.create_body();
        let mut r = requests::post_holdout(&s.project, env, &body);
        r.expect =
            vec![Expectation::Name { value: s.name.clone() }, Expectation::Description { value: description.clone() }];
        let mut spec_value = serde_json::to_value(s).unwrap_or_default();
        // Shown as sent: a percentage is a string on the wire.
        spec_value["holdoutAmount"] = json!(s.holdout_amount.to_string());
        let fields = [
            "name",
            "description",
            "randomizationUnit",
            "attributes",
            "holdoutAmount",
            "primaryMetric",
            "metrics",
            "prerequisiteFlag",
            "maintainerId",
        ]
        .iter()
        .filter_map(|f| spec_value.get(*f).map(|v| field(f, None, Some(v.clone()))))
        .collect();
        return Some(change(address, Action::Create, fields, vec![r]));
    };
    if have.is_ended() && s.state == HoldoutState::Active {
        problems.push(
            ProblemKind::Lifecycle,
            &h.location_of("state"),
            &address,
            format!("holdout `{}` has ended in `{env}`, and ending a holdout is final", s.key),
            Some("write `state: ended`, or declare a new holdout under another key".to_owned()),
        );
        return None;
    }
    if let Some(amount) = &have.holdout_amount
        && amount.value() != s.holdout_amount.value()
    {
        divergences.push(Divergence {
            address: address.clone(),
            field: "holdoutAmount".into(),
            remote: Some(json!(amount.to_string())),
            spec: Some(json!(s.holdout_amount.to_string())),
            reason: "`holdoutAmount` is fixed when a holdout is created, and LaunchDarkly cannot change it".into(),
            hint: Some(format!(
                "declare a new holdout under another key and end `{}` (state: ended), or write LaunchDarkly's value \
                 in the spec",
                s.key
            )),
            location: h.location_of("holdoutAmount"),
            refuses: true,
        });
        return None;
    }
    let mut ins = Vec::new();
    let mut expect = Vec::new();
    let mut fields = Vec::new();
    let renamed = have.name() != s.name;
    let redescribed = have.description() != description;
    if have.is_ended() {
        for (f, differs, spec_value, remote_value) in [
            ("name", renamed, s.name.clone(), have.name().to_owned()),
            ("description", redescribed, description.clone(), have.description().to_owned()),
        ] {
            if differs {
                divergences.push(Divergence {
                    address: address.clone(),
                    field: f.into(),
                    remote: Some(json!(remote_value)),
                    spec: Some(json!(spec_value)),
                    reason: "the holdout has ended, and LaunchDarkly changes nothing on an ended holdout".into(),
                    hint: Some("write LaunchDarkly's value in the spec".to_owned()),
                    location: h.location_of(f),
                    refuses: false,
                });
            }
        }
        return None;
    }
    if renamed {
        ins.push(json!({"kind": "updateName", "value": s.name}));
        expect.push(Expectation::Name { value: s.name.clone() });
        fields.push(field("name", Some(json!(have.name())), Some(json!(s.name))));
    }
    if redescribed {
        ins.push(json!({"kind": "updateDescription", "value": description}));
        expect.push(Expectation::Description { value: description.clone() });
        fields.push(field("description", Some(json!(have.description())), Some(json!(description))));
    }
    let mut action = Action::Update;
    if s.state == HoldoutState::Ended {
        ins.push(json!({"kind": "endHoldout"}));
        expect.push(Expectation::HoldoutEnded);
        fields.push(field("state", Some(json!(have.status)), Some(json!("ended"))));
        action = Action::Stop;
    }
    if ins.is_empty() {
        return None;
    }
    let mut c = change(address.clone(), action, fields, vec![holdout_patch(&address, ins, expect)]);
    if action == Action::Stop {
        c.risks.push(Risk::EndsExperiment);
    }
    c.remote_fingerprint = Some(fingerprint(have));
    Some(c)
}

/// Which experiment specs use a metric as a holdout's metric too: holdouts measure metrics, so a metric change
/// they need goes first.
pub(crate) fn holdout_needs(spec: &HoldoutSpec, ready: &BTreeSet<&Address>) -> Vec<Address> {
    let keys = spec.metrics.iter().flatten().map(|m| m.key()).chain(spec.primary_metric.as_deref());
    crate::catalog::needs(&spec.project, keys, spec.randomization_unit.is_some(), ready)
}

/// The references of a holdout to check against what the plan leaves: its metrics and unit.
pub(crate) fn check_holdout_refs(h: &Located<HoldoutSpec>, view: Option<&ProjectView<'_>>, problems: &mut Problems) {
    let Some(view) = view else { return };
    let s = &h.spec;
    // The references are the same in each environment: the first one reports them.
    if let Some(env) = s.target_environments().first() {
        let address =
            Address::Holdout { project: s.project.clone(), environment: (*env).to_owned(), key: s.key.clone() };
        let refs =
            s.metrics.iter().flatten().enumerate().map(|(i, m)| (format!("metrics[{i}]"), m.key(), m.is_group()));
        let primary = s.primary_metric.iter().map(|p| ("primaryMetric".to_owned(), p.as_str(), false));
        for (at, key, group) in refs.chain(primary) {
            let known = if group { view.is_group(key) } else { view.is_metric(key) || view.is_group(key) };
            if !known {
                problems.push(
                    ProblemKind::Reference,
                    &h.location_of(&at),
                    &address,
                    format!(
                        "{} `{key}` does not exist in project `{}`",
                        if group { "metric group" } else { "metric" },
                        s.project
                    ),
                    Some("declare it with a `kind: Metric` spec, or check the key".to_owned()),
                );
            }
        }
        if let Some(u) = &s.randomization_unit
            && let Some(settings) = view.settings()
            && !settings.randomization_units.iter().any(|x| x.randomization_unit == *u)
        {
            problems.push(
                ProblemKind::Reference,
                &h.location_of("randomizationUnit"),
                &address,
                format!("randomization unit `{u}` is not one of project `{}`'s experimentation settings", s.project),
                Some("add it to the `kind: ExperimentationSettings` spec, or check the unit".to_owned()),
            );
        }
    }
}
