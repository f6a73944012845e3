//! An experiment's place in layers and holdouts: its reservation (between its create and its start), leaving a
//! layer or a holdout, joining a holdout at creation, the order reservations move in, and each layer's total.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::{Experiment, Holdout, IterationStatus};
use ldexp_core::plan::{
    Action, Address, Binding, BoundValue, Change, Divergence, Expectation, FieldChange, PlannedRequest,
};
use ldexp_core::remote::RemoteState;
use ldexp_core::spec::{ExperimentSpec, ExperimentState, HoldoutState, Located, Owned, SpecSet};
use serde_json::{Value, json};

use super::{Pending, declared_experiments, field, holdout, holdout_patch, layer_patch, layers, owner, state};
use crate::error::{ProblemKind, Problems};

/// A layer's reservations in one environment add up to at most this.
const MAX_TOTAL: i64 = 100;

type Wanted<'a> = BTreeMap<(&'a str, &'a str, &'a str), Vec<(&'a str, i64, &'a Located<ExperimentSpec>)>>;

/// An experiment change's part in a layer's traffic, for ordering.
#[derive(Debug, Clone)]
pub(crate) struct Shift {
    pub layer: Address,
    pub env: String,
    pub raises: bool,
}

/// What an experiment's place in layers and holdouts adds to its change.
#[derive(Default)]
pub(crate) struct Membership {
    /// Sent first: leaving layers and holdouts.
    pub leave: Vec<PlannedRequest>,
    /// Sent after the create or new iteration and before any start.
    pub reserve: Option<PlannedRequest>,
    /// The `holdoutId` a create carries: a literal, or a binding to a holdout created in the same apply.
    pub join: Option<Join>,
    pub fields: Vec<FieldChange>,
    pub depends_on: Vec<Address>,
    pub shifts: Vec<Shift>,
}

pub(crate) enum Join {
    Id(String),
    Bound(BoundValue),
}

/// The layer and holdout requests of the experiment `spec` in `env`, and the checks on them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn membership(
    spec: &Located<ExperimentSpec>,
    env: &str,
    address: &Address,
    remote_exp: Option<&Experiment>,
    remote: &RemoteState,
    pending: &Pending,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Membership {
    let s = &spec.spec;
    let mut m = Membership::default();
    let archived = s.state == ExperimentState::Archived;
    if let Some(all) = layers(remote, &s.project) {
        let target = s.layer.as_ref().filter(|_| !archived);
        for (key, layer) in all {
            let Some(r) = layer.reservation(env, &s.key) else { continue };
            if target.is_some_and(|t| t.key == *key) {
                continue;
            }
            let layer_address = Address::Layer { project: s.project.clone(), key: key.clone() };
            let mut req = layer_patch(
                &s.project,
                key,
                Some(env),
                vec![json!({"kind": "removeExperiment", "experimentKey": s.key})],
                vec![Expectation::NoReservation { environment: env.to_owned(), experiment: s.key.clone() }],
            );
            req.object = Some(layer_address.clone());
            m.leave.push(req);
            m.fields.push(field(&format!("layer.{key}"), Some(json!(r.reservation_percent)), None));
            m.shifts.push(Shift { layer: layer_address, env: env.to_owned(), raises: false });
        }
        if let Some(t) = target {
            let layer_address = Address::Layer { project: s.project.clone(), key: t.key.clone() };
            let exists = all.contains_key(&t.key);
            let created = pending.created_layers.contains(&(s.project.clone(), t.key.clone()));
            let had = all.get(&t.key).and_then(|l| l.reservation(env, &s.key)).map(|r| r.reservation_percent);
            let want = i64::from(t.reservation_percent);
            let started = remote_exp
                .and_then(|x| x.current_iteration.as_deref())
                .is_some_and(|c| c.status != IterationStatus::NotStarted);
            if !exists && !created {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location_of("layer.key"),
                    address,
                    format!("layer `{}` does not exist in project `{}`", t.key, s.project),
                    Some("declare it with a `kind: Layer` spec, or check the key".to_owned()),
                );
            } else if want == 0 && started {
                problems.push(
                    ProblemKind::Lifecycle,
                    &spec.location_of("layer.reservationPercent"),
                    address,
                    "a reservation of 0 is allowed only until the iteration starts, and this experiment's has started"
                        .to_owned(),
                    Some("reserve some of the layer's traffic for it".to_owned()),
                );
            } else if had != Some(want) {
                let mut req = layer_patch(
                    &s.project,
                    &t.key,
                    Some(env),
                    vec![
                        json!({"kind": "updateExperimentReservation", "experimentKey": s.key, "reservationPercent": want}),
                    ],
                    vec![Expectation::Reservation {
                        environment: env.to_owned(),
                        experiment: s.key.clone(),
                        percent: want,
                    }],
                );
                req.object = Some(layer_address.clone());
                m.reserve = Some(req);
                m.fields.push(field(&format!("layer.{}", t.key), had.map(|p| json!(p)), Some(json!(want))));
                m.shifts.push(Shift {
                    layer: layer_address.clone(),
                    env: env.to_owned(),
                    raises: had.is_none_or(|h| want > h),
                });
                if created {
                    m.depends_on.push(layer_address);
                }
            }
        }
    }
    holdout_membership(spec, env, address, remote_exp, remote, pending, problems, divergences, &mut m);
    m
}

#[allow(clippy::too_many_arguments)]
fn holdout_membership(
    spec: &Located<ExperimentSpec>,
    env: &str,
    address: &Address,
    remote_exp: Option<&Experiment>,
    remote: &RemoteState,
    pending: &Pending,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
    m: &mut Membership,
) {
    let s = &spec.spec;
    let project = state(remote, &s.project);
    let held_by = remote_exp.and_then(|x| x.holdout_id.as_deref());
    let creation_only = |remote_key: Option<&str>| Divergence {
        address: address.clone(),
        field: "holdout".into(),
        remote: remote_key.map(|k| json!(k)),
        spec: s.holdout.as_ref().map(|k| json!(k)),
        reason: "an experiment joins a holdout only when it is created; LaunchDarkly cannot move it into one".into(),
        hint: Some(format!(
            "create the experiment under a new key in the holdout and archive `{}`, or write the experiment's \
             holdout in the spec",
            s.key
        )),
        location: spec.location_of("holdout"),
        refuses: true,
    };
    match (remote_exp, &s.holdout, held_by) {
        // `holdoutId` (a holdout no spec declares) is compared as a creation-only field in `creation`.
        (_, None, _) if s.holdout_id.is_some() => {}
        (Some(_), None, Some(id)) => {
            let Some(h) = project.and_then(|p| p.holdout_by_id(env, id)) else {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location,
                    address,
                    format!("the experiment is in holdout `{id}`, which the holdouts of `{env}` do not list"),
                    Some("write `holdoutId` in the spec to keep it there".to_owned()),
                );
                return;
            };
            let key = h.key().to_owned();
            if h.is_ended() {
                divergences.push(Divergence {
                    address: address.clone(),
                    field: "holdout".into(),
                    remote: Some(json!(key)),
                    spec: None,
                    reason: format!("holdout `{key}` has ended, and LaunchDarkly changes nothing on an ended holdout"),
                    hint: Some(format!("write `holdout: {key}` in the spec")),
                    location: spec.location.clone(),
                    refuses: false,
                });
                return;
            }
            let holdout_address =
                Address::Holdout { project: s.project.clone(), environment: env.to_owned(), key: key.clone() };
            let mut req = holdout_patch(
                &holdout_address,
                vec![json!({"kind": "removeExperiment", "value": s.key})],
                vec![Expectation::NotInHoldout { experiment: s.key.clone() }],
            );
            req.object = Some(holdout_address);
            m.leave.push(req);
            m.fields.push(field("holdout", Some(json!(key)), None));
        }
        (Some(_), Some(want), Some(id)) => {
            let have = project.and_then(|p| p.holdout_by_id(env, id));
            if have.is_none_or(|h| h.key() != want) {
                divergences.push(creation_only(have.map(Holdout::key)));
            }
        }
        (Some(_), Some(_), None) => divergences.push(creation_only(None)),
        (None, Some(want), _) => {
            let key = (s.project.clone(), env.to_owned(), want.clone());
            let remote_h = holdout(remote, &s.project, env, want);
            let ends = pending.declared_holdouts.get(&key) == Some(&HoldoutState::Ended);
            if remote_h.is_some_and(Holdout::is_ended) || ends {
                problems.push(
                    ProblemKind::Lifecycle,
                    &spec.location_of("holdout"),
                    address,
                    format!("holdout `{want}` has ended (or this plan ends it) in `{env}`; no experiment can join it"),
                    Some("create the experiment outside the holdout, or in another one".to_owned()),
                );
            } else if let Some(h) = remote_h {
                m.join = Some(Join::Id(h.id.clone()));
            } else if pending.created_holdouts.contains(&key) {
                m.join = Some(Join::Bound(BoundValue::HoldoutId {
                    project: s.project.clone(),
                    environment: env.to_owned(),
                    key: want.clone(),
                }));
                m.depends_on.push(Address::Holdout { project: key.0, environment: key.1, key: key.2 });
            } else {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location_of("holdout"),
                    address,
                    format!("holdout `{want}` does not exist in `{env}`"),
                    Some("declare it with a `kind: Holdout` spec for this environment, or check the key".to_owned()),
                );
            }
        }
        _ => {}
    }
}

/// Adds `m` to the experiment's change (or makes one), with its requests where they must run.
pub(crate) fn attach(change: Option<Change>, address: &Address, m: Membership) -> Option<Change> {
    if m.leave.is_empty() && m.reserve.is_none() && m.join.is_none() {
        return change;
    }
    let mut c = change.unwrap_or_else(|| super::change(address.clone(), Action::Update, Vec::new(), Vec::new()));
    if let Some(join) = m.join
        && let Some(post) = c
            .requests
            .iter_mut()
            .find(|r| r.method == ldexp_core::plan::Method::Post && r.path.ends_with("/experiments"))
        && let Some(body) = post.body.as_mut()
    {
        match join {
            Join::Id(id) => {
                body["holdoutId"] = json!(id);
                c.fields.push(field("holdoutId", None, Some(json!(id))));
            }
            Join::Bound(value) => {
                body["holdoutId"] = json!("");
                c.fields.push(field("holdoutId", None, Some(json!(value.to_string()))));
                post.bind.push(Binding { pointer: "/holdoutId".into(), value });
            }
        }
    }
    let start = c.requests.iter().position(starts).unwrap_or(c.requests.len());
    if let Some(r) = m.reserve {
        c.requests.insert(start, r);
    }
    let rest = std::mem::take(&mut c.requests);
    c.requests = m.leave.into_iter().chain(rest).collect();
    c.fields.extend(m.fields);
    for d in m.depends_on {
        if !c.depends_on.contains(&d) {
            c.depends_on.push(d);
        }
    }
    c.depends_on.sort();
    Some(c)
}

/// Whether a request starts an iteration.
fn starts(r: &PlannedRequest) -> bool {
    r.body
        .as_ref()
        .and_then(|b| b.get("instructions"))
        .and_then(Value::as_array)
        .is_some_and(|ins| ins.iter().any(|i| i.get("kind").and_then(Value::as_str) == Some("startIteration")))
}

/// Orders traffic within each layer and environment: a change that raises a reservation waits for every change
/// that lowers or removes one there; a holdout that ends waits for the experiments leaving it.
pub(crate) fn order(changes: &mut [Change], shifts: &BTreeMap<Address, Vec<Shift>>) {
    let lowers: Vec<(Address, Address, String)> = shifts
        .iter()
        .flat_map(|(a, s)| s.iter().filter(|x| !x.raises).map(move |x| (a.clone(), x.layer.clone(), x.env.clone())))
        .collect();
    let leaving: Vec<(Address, Address)> = changes
        .iter()
        .flat_map(|c| {
            c.requests.iter().filter_map(|r| match &r.object {
                Some(h @ Address::Holdout { .. }) => Some((c.address.clone(), h.clone())),
                _ => None,
            })
        })
        .collect();
    let present: BTreeSet<Address> = changes.iter().map(|c| c.address.clone()).collect();
    for c in changes.iter_mut() {
        let mut extra = Vec::new();
        for s in shifts.get(&c.address).into_iter().flatten().filter(|s| s.raises) {
            for (who, layer, env) in &lowers {
                if *layer == s.layer && *env == s.env && *who != c.address {
                    extra.push(who.clone());
                }
            }
            // A layer change that removes strays (--prune) frees traffic too.
            extra.push(s.layer.clone());
        }
        if matches!(c.address, Address::Holdout { .. }) && c.action == Action::Stop {
            extra.extend(leaving.iter().filter(|(_, h)| *h == c.address).map(|(who, _)| who.clone()));
        }
        for d in extra {
            if present.contains(&d) && !c.depends_on.contains(&d) {
                c.depends_on.push(d);
            }
        }
        c.depends_on.sort();
    }
}

/// The plan-time check of each layer's total in each environment: the reservations the specs ask for, plus the
/// ones of experiments no spec declares (which stay, unless `--prune` removes them), at most 100%.
pub(crate) fn check_totals(specs: &SpecSet, remote: &RemoteState, prune: bool, problems: &mut Problems) {
    let declared = declared_experiments(specs);
    // (project, layer, env) → (spec reservations with where each is written, first location)
    let mut wanted: Wanted<'_> = BTreeMap::new();
    for e in &specs.experiments {
        let s = &e.spec;
        let Some(l) = s.layer.as_ref().filter(|_| s.state != ExperimentState::Archived) else { continue };
        for env in s.target_environments() {
            wanted.entry((&s.project, &l.key, env)).or_default().push((&s.key, i64::from(l.reservation_percent), e));
        }
    }
    for ((project, key, env), list) in wanted {
        let pruned = prune
            && owner(specs, project, Owned::Layers)
                .is_some_and(|(w, i)| w.spec.projects[i].environments.iter().any(|e| e == env));
        let strays: Vec<(&str, i64)> = if pruned {
            Vec::new()
        } else {
            layers(remote, project)
                .and_then(|m| m.get(key))
                .map(|l| {
                    l.reservations(env)
                        .iter()
                        .filter(|r| !declared.contains(&(project, env, r.experiment_key.as_str())))
                        .map(|r| (r.experiment_key.as_str(), r.reservation_percent))
                        .collect()
                })
                .unwrap_or_default()
        };
        let total: i64 = list.iter().map(|(_, p, _)| p).sum::<i64>() + strays.iter().map(|(_, p)| p).sum::<i64>();
        if total <= MAX_TOTAL {
            continue;
        }
        let parts: Vec<String> = list
            .iter()
            .map(|(k, p, _)| format!("`{k}` {p}%"))
            .chain(strays.iter().map(|(k, p)| format!("`{k}` {p}% (no spec)")))
            .collect();
        let (_, _, first) = list[0];
        let address = Address::Layer { project: project.to_owned(), key: key.to_owned() };
        problems.push(
            ProblemKind::Conflict,
            &first.location_of("layer.reservationPercent"),
            &address,
            format!("the reservations in layer `{key}` in `{env}` add up to {total}%: {}", parts.join(", ")),
            Some("lower some reservations so they add up to at most 100%".to_owned()),
        );
    }
}
