//! Metrics, metric groups and experimentation settings: the catalog the experiment checks see (LaunchDarkly's,
//! with the specs' objects laid over it), and their changes: create, a JSON patch guarded by `test` operations,
//! one settings `PUT`, and deletes under `--prune` where a Workspace owns the kind.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::{
    ExperimentationSettings, Metric, MetricGroup, MetricSummary, RandomizationUnit, RandomizationUnitInput,
};
use ldexp_core::catalog::{GROUP_CREATION_ONLY, METRIC_CREATION_ONLY, group_fields, metric_fields, same, units_match};
use ldexp_core::digest::fingerprint;
use ldexp_core::plan::{
    Action, Address, Change, Divergence, Expectation, FieldChange, PlannedRequest, Risk, Unmanaged,
};
use ldexp_core::remote::{ProjectState, RemoteState};
use ldexp_core::requests;
use ldexp_core::spec::{Located, MetricGroupSpec, MetricSpec, Owned, SourceLocation, SpecSet};
use serde_json::{Map, Value, json};

use crate::error::{ProblemKind, Problems};

/// What the specs declare in one project, as LaunchDarkly will show it once applied.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    pub metrics: BTreeMap<String, Metric>,
    pub groups: BTreeMap<String, MetricGroup>,
    pub settings: Option<ExperimentationSettings>,
}

/// Overlays by project.
pub(crate) type Overlays = BTreeMap<String, Overlay>;

fn project_state<'a>(remote: &'a RemoteState, project: &str) -> Option<&'a ProjectState> {
    remote.projects.get(project).and_then(Option::as_ref)
}

/// The catalog objects of `specs`, each as the remote one with the spec's fields laid over it; with `prune`, the
/// settings keep only the spec's units, as the plan's `PUT` will.
pub(crate) fn overlays(specs: &SpecSet, remote: &RemoteState, prune: bool) -> Overlays {
    let mut out = Overlays::new();
    for m in &specs.metrics {
        let s = &m.spec;
        let mut fields = project_state(remote, &s.project)
            .and_then(|p| p.metrics.get(&s.key))
            .map(metric_fields)
            .unwrap_or_default();
        fields.extend(s.managed_fields());
        fields.insert("key".into(), json!(s.key));
        if let Ok(metric) = serde_json::from_value::<Metric>(Value::Object(fields)) {
            out.entry(s.project.clone()).or_default().metrics.insert(s.key.clone(), metric);
        }
    }
    for g in &specs.metric_groups {
        let s = &g.spec;
        let group = MetricGroup {
            key: s.key.clone(),
            name: s.name.clone(),
            kind: s.group_kind.as_str().to_owned(),
            metrics: s
                .metrics
                .iter()
                .map(|m| MetricSummary {
                    key: m.key.clone(),
                    name_in_group: Some(m.name_in_group.clone()),
                    ..MetricSummary::default()
                })
                .collect(),
            ..MetricGroup::default()
        };
        out.entry(s.project.clone()).or_default().groups.insert(s.key.clone(), group);
    }
    for x in &specs.settings {
        let remote_units = project_state(remote, &x.spec.project)
            .and_then(|p| p.settings.as_ref())
            .map(|s| s.randomization_units.clone())
            .unwrap_or_default();
        let units = desired_units(&x.spec.randomization_units, &remote_units, prune)
            .into_iter()
            .map(|u| RandomizationUnit {
                randomization_unit: u.randomization_unit,
                default: u.default,
                ..RandomizationUnit::default()
            })
            .collect();
        let settings = ExperimentationSettings { randomization_units: units, ..ExperimentationSettings::default() };
        out.entry(x.spec.project.clone()).or_default().settings = Some(settings);
    }
    out
}

/// The units a settings spec leaves: its own, then the remote's it does not name (dropped with `prune`), each
/// default only if the spec says so.
fn desired_units(
    spec: &[ldexp_core::spec::UnitSpec],
    remote: &[RandomizationUnit],
    prune: bool,
) -> Vec<RandomizationUnitInput> {
    let mut out: Vec<RandomizationUnitInput> = spec
        .iter()
        .map(|u| RandomizationUnitInput { randomization_unit: u.randomization_unit.clone(), default: u.default })
        .collect();
    if !prune {
        for r in remote {
            if !spec.iter().any(|u| u.randomization_unit == r.randomization_unit) {
                out.push(RandomizationUnitInput { randomization_unit: r.randomization_unit.clone(), default: false });
            }
        }
    }
    out
}

/// A metric's spec field names for the API's where they differ, so renderings and divergences speak the spec's
/// language.
fn metric_name(api: &str) -> &str {
    match api {
        "kind" => "eventKind",
        other => other,
    }
}

/// A metric group's spec field names for the API's.
fn group_name(api: &str) -> &str {
    match api {
        "kind" => "groupKind",
        other => other,
    }
}

/// Everything the catalog kinds plan: changes, refusals, and the unmanaged objects of owning projects.
pub(crate) struct Planned {
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
}

/// Plans every catalog spec and, where a Workspace owns metrics or metric groups, what no spec declares.
pub(crate) fn plan(
    specs: &SpecSet,
    remote: &RemoteState,
    prune: bool,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Planned {
    let mut out = Planned { changes: Vec::new(), unmanaged: Vec::new() };
    // Units each settings change adds: a metric allowing one of them waits for that change.
    let mut added_units: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for x in &specs.settings {
        let s = &x.spec;
        let address = Address::Settings { project: s.project.clone() };
        let Some(state) = known_project(remote, &s.project, &address, &x.location_of("project"), problems, divergences)
        else {
            continue;
        };
        let remote_units = state.settings.as_ref().map(|r| r.randomization_units.clone()).unwrap_or_default();
        let desired = desired_units(&s.randomization_units, &remote_units, prune);
        if units_match(&remote_units, &desired) {
            continue;
        }
        added_units.insert(
            &s.project,
            desired
                .iter()
                .filter(|u| !remote_units.iter().any(|r| r.randomization_unit == u.randomization_unit))
                .map(|u| u.randomization_unit.clone())
                .collect(),
        );
        let body = json!({ "randomizationUnits": desired });
        let put = ldexp_core::api::ExperimentationSettingsPut { randomization_units: desired.clone() };
        let mut request = requests::put_settings(&s.project, &put);
        request.expect = vec![Expectation::RandomizationUnits { units: desired.clone() }];
        let before: Vec<Value> = remote_units
            .iter()
            .map(|u| json!({"randomizationUnit": u.randomization_unit, "default": u.default}))
            .collect();
        out.changes.push(change(
            address,
            Action::Update,
            state.settings.as_ref().map(|r| fingerprint(&r.randomization_units)),
            vec![FieldChange {
                field: "randomizationUnits".into(),
                before: Some(Value::Array(before)),
                after: body.get("randomizationUnits").cloned(),
            }],
            vec![request],
        ));
    }
    let mut changed_metrics: BTreeSet<Address> = BTreeSet::new();
    for m in &specs.metrics {
        if let Some(mut c) = metric(m, remote, problems, divergences) {
            let units = m.spec.randomization_units.iter().flatten();
            if units.into_iter().any(|u| added_units.get(m.spec.project.as_str()).is_some_and(|a| a.contains(u))) {
                c.depends_on.push(Address::Settings { project: m.spec.project.clone() });
            }
            changed_metrics.insert(c.address.clone());
            out.changes.push(c);
        }
    }
    for g in &specs.metric_groups {
        if let Some(mut c) = group(g, remote, problems, divergences) {
            for member in &g.spec.metrics {
                let a = Address::Metric { project: g.spec.project.clone(), key: member.key.clone() };
                if changed_metrics.contains(&a) && !c.depends_on.contains(&a) {
                    c.depends_on.push(a);
                }
            }
            out.changes.push(c);
        }
    }
    unmanaged(specs, remote, prune, problems, &mut out);
    out
}

pub(crate) fn change(
    address: Address,
    action: Action,
    remote_fingerprint: Option<String>,
    fields: Vec<FieldChange>,
    requests: Vec<PlannedRequest>,
) -> Change {
    Change {
        address,
        action,
        risks: if action == Action::Delete { vec![Risk::Deletes] } else { Vec::new() },
        remote_fingerprint,
        before: None,
        after: None,
        fields,
        requests,
        notes: Vec::new(),
        flags: Vec::new(),
        depends_on: Vec::new(),
    }
}

/// The project's state, or `None` after reporting why there is none: no permission, or no such project.
pub(crate) fn known_project<'a>(
    remote: &'a RemoteState,
    project: &str,
    address: &Address,
    at: &SourceLocation,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Option<&'a ProjectState> {
    if let Some(why) = remote.forbidden.get(project) {
        divergences.push(crate::forbidden(address.clone(), project, why, at.clone()));
        return None;
    }
    let state = project_state(remote, project);
    if state.is_none() {
        problems.push(
            ProblemKind::Reference,
            at,
            address,
            format!("project `{project}` does not exist"),
            Some("check the project key".to_owned()),
        );
    }
    state
}

/// The create of a metric or group: `key` and every managed field in the body, each field shown to the reviewer
/// and expected back.
fn create(
    address: Address,
    key: &str,
    desired: Map<String, Value>,
    spec_name: fn(&str) -> &str,
    request: impl Fn(&Value) -> PlannedRequest,
) -> Change {
    let mut body = Map::new();
    body.insert("key".into(), json!(key));
    body.extend(desired.clone());
    let mut request = request(&Value::Object(body));
    let fields = desired
        .iter()
        .map(|(k, v)| FieldChange { field: spec_name(k).to_owned(), before: None, after: Some(v.clone()) })
        .collect();
    request.expect = vec![Expectation::CatalogFields { fields: desired }];
    change(address, Action::Create, None, fields, vec![request])
}

/// The changed fields of a catalog object, with the creation-only ones refused as divergences. `None` when the
/// object is refused.
#[allow(clippy::too_many_arguments)]
fn diff(
    address: &Address,
    desired: &Map<String, Value>,
    remote: &Map<String, Value>,
    creation_only: &[&str],
    what: &str,
    spec_name: fn(&str) -> &str,
    locate: &dyn Fn(&str) -> SourceLocation,
    divergences: &mut Vec<Divergence>,
) -> Option<Vec<(String, Option<Value>, Value)>> {
    let mut changed = Vec::new();
    let mut refused = false;
    for (k, v) in desired {
        if same(k, remote.get(k), v) {
            continue;
        }
        if creation_only.contains(&k.as_str()) {
            refused = true;
            divergences.push(Divergence {
                address: address.clone(),
                field: spec_name(k).to_owned(),
                remote: remote.get(k).cloned(),
                spec: Some(v.clone()),
                reason: format!("LaunchDarkly cannot change a {what}'s `{}` after creation", spec_name(k)),
                hint: Some(format!(
                    "write LaunchDarkly's value in the spec, or declare a new {what} under another key"
                )),
                location: locate(spec_name(k)),
                refuses: true,
            });
            continue;
        }
        changed.push((k.clone(), remote.get(k).cloned(), v.clone()));
    }
    (!refused).then_some(changed)
}

/// The JSON patch of `changed`: a `test` of each old value (so a colleague's edit since the plan fails the patch
/// instead of being overwritten), then the new value.
///
/// A metric group's representation is not its create body in two places, so the guards follow the
/// representation: its members carry more than `{key, nameInGroup}` (each member's key and name are tested, one by
/// one), and its maintainer is `maintainer.member`, with no `/maintainerId` to test (it is set with `add`).
fn guarded_patch(changed: &[(String, Option<Value>, Value)], group: bool) -> Value {
    let mut ops = Vec::new();
    for (k, old, new) in changed {
        let path = format!("/{k}");
        match old {
            Some(Value::Array(members)) if group && k == "metrics" => {
                for (i, m) in members.iter().enumerate() {
                    for field in ["key", "nameInGroup"] {
                        if let Some(v) = m.get(field) {
                            ops.push(json!({"op": "test", "path": format!("/metrics/{i}/{field}"), "value": v}));
                        }
                    }
                }
                ops.push(json!({"op": "replace", "path": path, "value": new}));
            }
            Some(_) if group && k == "maintainerId" => ops.push(json!({"op": "add", "path": path, "value": new})),
            Some(old) if !old.is_null() => {
                ops.push(json!({"op": "test", "path": path, "value": old}));
                ops.push(json!({"op": "replace", "path": path, "value": new}));
            }
            // Nothing to test an absent field against: `add` sets it.
            _ => ops.push(json!({"op": "add", "path": path, "value": new})),
        }
    }
    Value::Array(ops)
}

fn field_changes(changed: &[(String, Option<Value>, Value)], spec_name: fn(&str) -> &str) -> Vec<FieldChange> {
    changed
        .iter()
        .map(|(k, old, new)| FieldChange {
            field: spec_name(k).to_owned(),
            before: old.clone(),
            after: Some(new.clone()),
        })
        .collect()
}

fn metric(
    doc: &Located<MetricSpec>,
    remote: &RemoteState,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Option<Change> {
    let s = &doc.spec;
    let address = Address::Metric { project: s.project.clone(), key: s.key.clone() };
    let state = known_project(remote, &s.project, &address, &doc.location_of("project"), problems, divergences)?;
    let desired = s.managed_fields();
    let Some(current) = state.metrics.get(&s.key) else {
        let request = |body: &Value| requests::post_metric(&s.project, body);
        return Some(create(address, &s.key, desired, metric_name, request));
    };
    let remote_fields = metric_fields(current);
    let locate = |f: &str| doc.location_of(f);
    let changed =
        diff(&address, &desired, &remote_fields, &METRIC_CREATION_ONLY, "metric", metric_name, &locate, divergences)?;
    if changed.is_empty() {
        return None;
    }
    let mut request = requests::patch_metric(&s.project, &s.key, &guarded_patch(&changed, false));
    request.expect =
        vec![Expectation::CatalogFields { fields: changed.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect() }];
    let fields = field_changes(&changed, metric_name);
    Some(change(address, Action::Update, Some(fingerprint(&remote_fields)), fields, vec![request]))
}

fn group(
    doc: &Located<MetricGroupSpec>,
    remote: &RemoteState,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Option<Change> {
    let s = &doc.spec;
    let address = Address::MetricGroup { project: s.project.clone(), key: s.key.clone() };
    let state = known_project(remote, &s.project, &address, &doc.location_of("project"), problems, divergences)?;
    let desired = s.managed_fields();
    let Some(current) = state.metric_groups.get(&s.key) else {
        // `MetricGroupPost` requires a maintainer, whatever the token: without one the create is refused.
        if s.maintainer_id.is_none() {
            problems.push(
                ProblemKind::Reference,
                &doc.location_of("key"),
                &address,
                "LaunchDarkly requires `maintainerId` to create a metric group".to_owned(),
                Some("add `maintainerId: <member id>` to the spec".to_owned()),
            );
            return None;
        }
        // `MetricGroupPost` requires tags; no tags is an empty list, sent and shown like any other field.
        let mut desired = desired;
        desired.entry("tags").or_insert_with(|| json!([]));
        let request = |body: &Value| requests::create_metric_group(&s.project, body);
        return Some(create(address, &s.key, desired, group_name, request));
    };
    let remote_fields = group_fields(current);
    let locate = |f: &str| doc.location_of(f);
    let changed = diff(
        &address,
        &desired,
        &remote_fields,
        &GROUP_CREATION_ONLY,
        "metric group",
        group_name,
        &locate,
        divergences,
    )?;
    if changed.is_empty() {
        return None;
    }
    let mut request = requests::patch_metric_group(&s.project, &s.key, &guarded_patch(&changed, true));
    request.expect =
        vec![Expectation::CatalogFields { fields: changed.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect() }];
    let fields = field_changes(&changed, group_name);
    Some(change(address, Action::Update, Some(fingerprint(&remote_fields)), fields, vec![request]))
}

/// The metrics and groups of projects whose Workspace owns them that no spec declares: listed, and under
/// `prune` deleted, unless something uses them (a plan error naming the users).
fn unmanaged(specs: &SpecSet, remote: &RemoteState, prune: bool, problems: &mut Problems, out: &mut Planned) {
    for w in &specs.workspaces {
        for (i, p) in w.spec.projects.iter().enumerate() {
            let Some(state) = project_state(remote, &p.key) else { continue };
            let at = w.location_of(&format!("projects[{i}].owns"));
            let declared_metrics: BTreeSet<&str> =
                specs.metrics.iter().filter(|m| m.spec.project == p.key).map(|m| m.spec.key.as_str()).collect();
            let declared_groups: BTreeSet<&str> =
                specs.metric_groups.iter().filter(|g| g.spec.project == p.key).map(|g| g.spec.key.as_str()).collect();
            let users = Users::of(specs, state, &p.key);
            let mut deleted_groups: BTreeMap<&str, &MetricGroup> = BTreeMap::new();
            if p.owns.contains(&Owned::MetricGroups) {
                for (key, g) in state.metric_groups.iter().filter(|(k, _)| !declared_groups.contains(k.as_str())) {
                    let address = Address::MetricGroup { project: p.key.clone(), key: key.clone() };
                    out.unmanaged.push(Unmanaged {
                        address: address.clone(),
                        name: g.name.clone(),
                        state: "metric group".into(),
                    });
                    if !prune {
                        continue;
                    }
                    let used = users.of_group(key, g.experiment_count);
                    if !used.is_empty() {
                        problems.push(
                            ProblemKind::Conflict,
                            &at,
                            &address,
                            format!("cannot delete metric group `{key}` (--prune): {}", used.join("; ")),
                            Some(
                                "archive or change the experiments that use it first, or declare the group in a spec"
                                    .to_owned(),
                            ),
                        );
                        continue;
                    }
                    deleted_groups.insert(key, g);
                    let request = expecting(requests::delete_metric_group(&p.key, key), Expectation::Absent);
                    out.changes.push(change(
                        address,
                        Action::Delete,
                        Some(fingerprint(&group_fields(g))),
                        Vec::new(),
                        vec![request],
                    ));
                }
            }
            if p.owns.contains(&Owned::Metrics) {
                for (key, m) in state.metrics.iter().filter(|(k, _)| !declared_metrics.contains(k.as_str())) {
                    let address = Address::Metric { project: p.key.clone(), key: key.clone() };
                    out.unmanaged.push(Unmanaged {
                        address: address.clone(),
                        name: m.name.clone(),
                        state: "metric".into(),
                    });
                    if !prune {
                        continue;
                    }
                    let used = users.of_metric(key, m, state, &deleted_groups);
                    if !used.is_empty() {
                        problems.push(
                            ProblemKind::Conflict,
                            &at,
                            &address,
                            format!("cannot delete metric `{key}` (--prune): {}", used.join("; ")),
                            Some("archive or change what uses it first, or declare the metric in a spec".to_owned()),
                        );
                        continue;
                    }
                    let request = expecting(requests::delete_metric(&p.key, key), Expectation::Absent);
                    let mut c = change(
                        address,
                        Action::Delete,
                        Some(fingerprint(&metric_fields(m))),
                        Vec::new(),
                        vec![request],
                    );
                    // A group that held the metric goes first: LaunchDarkly refuses to delete a metric in a group.
                    c.depends_on = deleted_groups
                        .iter()
                        .filter(|(_, g)| g.metrics.iter().any(|x| &x.key == key))
                        .map(|(gk, _)| Address::MetricGroup { project: p.key.clone(), key: (*gk).to_owned() })
                        .collect();
                    out.changes.push(c);
                }
            }
        }
    }
}

fn expecting(mut r: PlannedRequest, e: Expectation) -> PlannedRequest {
    r.expect = vec![e];
    r
}

/// Who uses which metric or group: fetched experiments (every iteration, archived ones too), legacy experiments
/// on fetched flags, and the experiment and group specs.
struct Users {
    /// Metric or group key → the experiments and groups that name it.
    by_key: BTreeMap<String, BTreeSet<String>>,
}

impl Users {
    fn of(specs: &SpecSet, state: &ProjectState, project: &str) -> Users {
        let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut add = |k: &str, who: String| {
            by_key.entry(k.to_owned()).or_default().insert(who);
        };
        for (env, list) in &state.environments {
            for (key, x) in list.iter().flatten() {
                let its = x
                    .current_iteration
                    .as_deref()
                    .into_iter()
                    .chain(x.draft_iteration.as_deref())
                    .chain(x.previous_iterations.iter());
                for it in its {
                    for m in &it.metrics {
                        add(&m.key, format!("experiment {env}/{key}"));
                    }
                }
            }
        }
        for (flag, snap) in &state.flags {
            for item in snap.iter().flat_map(|s| s.flag.experiments.items.iter()) {
                add(&item.metric_key, format!("the legacy experiments of flag {flag}"));
            }
        }
        for e in specs.experiments.iter().filter(|e| e.spec.project == project) {
            for m in &e.spec.iteration.metrics {
                add(m.key(), format!("experiment spec {}", e.spec.key));
            }
            add(&e.spec.iteration.primary_metric, format!("experiment spec {}", e.spec.key));
        }
        for g in specs.metric_groups.iter().filter(|g| g.spec.project == project) {
            for m in &g.spec.metrics {
                add(&m.key, format!("metric group spec {}", g.spec.key));
            }
        }
        // LaunchDarkly refuses to delete what a holdout measures. A holdout's representation does not show its
        // metrics, so only the declared holdouts are known here.
        for h in specs.holdouts.iter().filter(|h| h.spec.project == project) {
            let keys = h.spec.metrics.iter().flatten().map(|m| m.key()).chain(h.spec.primary_metric.as_deref());
            for k in keys {
                add(k, format!("holdout spec {}", h.spec.key));
            }
        }
        Users { by_key }
    }

    fn named(&self, key: &str) -> Vec<String> {
        self.by_key.get(key).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn of_group(&self, key: &str, count: Option<u64>) -> Vec<String> {
        let mut used = self.named(key);
        if used.is_empty() && count.is_some_and(|n| n > 0) {
            used.push(format!("LaunchDarkly counts {} experiments using it", count.unwrap_or_default()));
        }
        used
    }

    /// A metric in a group that this plan deletes is freed by that delete.
    fn of_metric(
        &self,
        key: &str,
        m: &Metric,
        state: &ProjectState,
        deleted_groups: &BTreeMap<&str, &MetricGroup>,
    ) -> Vec<String> {
        let mut used = self.named(key);
        for (gk, g) in &state.metric_groups {
            if g.metrics.iter().any(|x| x.key == key) && !deleted_groups.contains_key(gk.as_str()) {
                used.push(format!("metric group {gk}"));
            }
        }
        if used.is_empty() && m.experiment_count.is_some_and(|n| n > 0) {
            used.push(format!("LaunchDarkly counts {} experiments using it", m.experiment_count.unwrap_or_default()));
        }
        used.sort();
        used.dedup();
        used
    }
}

/// The catalog changes an experiment spec's change waits for: its metrics and groups, and its project's settings
/// when they change (a unit must exist before an iteration randomizes by it).
pub(crate) fn needed_by(spec: &ldexp_core::spec::ExperimentSpec, ready: &BTreeSet<&Address>) -> Vec<Address> {
    let it = &spec.iteration;
    // The primary metric may be a metric or a group: both are looked for, as for every key.
    let keys = it.metrics.iter().map(|m| m.key()).chain(std::iter::once(it.primary_metric.as_str()));
    needs(&spec.project, keys, it.randomization_unit.is_some(), ready)
}

/// The catalog changes of `ready` that something measuring `keys` (each a metric or a group) waits for, and the
/// project's settings when it names a randomization unit and they change.
pub(crate) fn needs<'k>(
    project: &str,
    keys: impl Iterator<Item = &'k str>,
    names_unit: bool,
    ready: &BTreeSet<&Address>,
) -> Vec<Address> {
    let mut out = Vec::new();
    for key in keys {
        for a in [
            Address::Metric { project: project.to_owned(), key: key.to_owned() },
            Address::MetricGroup { project: project.to_owned(), key: key.to_owned() },
        ] {
            if ready.contains(&a) && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    let settings = Address::Settings { project: project.to_owned() };
    if names_unit && ready.contains(&settings) {
        out.push(settings);
    }
    out.sort();
    out
}
