//! Legacy flag experiments: one guarded RFC 6902 patch per flag that turns its `experiments` into the spec's,
//! checked by applying it locally before it is ever planned.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_core::api::{FeatureFlag, LegacyExperiment, LegacyExperiments, PatchWithComment};
use ldexp_core::design::legacy_equivalent;
use ldexp_core::json_text::JsonText;
use ldexp_core::managed::legacy_fingerprint;
use ldexp_core::plan::{Action, Address, Change, Expectation, FieldChange, Risk, Warning};
use ldexp_core::requests;
use ldexp_core::spec::{LegacyFlagExperimentsSpec, Located, VariationRef};
use serde_json::{Value, json};

use crate::error::{ProblemKind, Problems};
use crate::index::Index;
use crate::{checks, resolve};

/// The change one legacy spec needs, if any.
pub(crate) fn plan(
    spec: &Located<LegacyFlagExperimentsSpec>,
    index: &Index<'_>,
    problems: &mut Problems,
    warnings: &mut Vec<Warning>,
) -> Option<Change> {
    let s = &spec.spec;
    let address = Address::Legacy { project: s.project.clone(), flag: s.flag.clone() };
    let project = checks::project(index, spec, &s.project, &address, problems)?;
    let Some(snap) = project.flag(&s.flag) else {
        problems.push(
            ProblemKind::Reference,
            &spec.location_of("flag"),
            &address,
            format!("flag `{}` does not exist in project `{}`", s.flag, s.project),
            Some("check the flag key".to_owned()),
        );
        return None;
    };
    let before = problems.len();
    let baseline = match resolve::legacy_baseline(&snap.flag, &s.baseline) {
        Ok(i) => {
            if let Some(message) = ambiguous_baseline(&snap.flag, &s.baseline, i) {
                warnings.push(Warning { address: Some(address.clone()), message });
            }
            i
        }
        Err(e) => {
            problems.push(ProblemKind::Reference, &spec.location_of("baseline"), &address, e.message, e.hint);
            0
        }
    };
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    for (i, m) in s.metrics.iter().enumerate() {
        if !seen.insert(m.key.as_str()) {
            problems.push(
                ProblemKind::Conflict,
                &spec.location_of(&format!("metrics[{i}].key")),
                &address,
                format!("metric `{}` is listed twice", m.key),
                Some("list each metric once, with all its environments".to_owned()),
            );
        }
        if !project.is_metric(&m.key) {
            problems.push(
                ProblemKind::Reference,
                &spec.location_of(&format!("metrics[{i}].key")),
                &address,
                format!("metric `{}` does not exist in project `{}`", m.key, s.project),
                Some("check the key, or create the metric in LaunchDarkly first".to_owned()),
            );
        }
        for env in &m.environments {
            if !snap.flag.environments.contains_key(env) {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location_of(&format!("metrics[{i}].environments")),
                    &address,
                    format!("environment `{env}` does not exist on flag `{}`", s.flag),
                    Some(format!(
                        "environments of the flag: {}",
                        snap.flag.environments.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
        let mut envs: Vec<String> = Vec::new();
        for env in &m.environments {
            if !envs.contains(env) {
                envs.push(env.clone());
            }
        }
        items.push(LegacyExperiment { metric_key: m.key.clone(), environments: envs });
    }
    if problems.len() != before {
        return None;
    }
    let desired = LegacyExperiments { baseline_idx: i64::try_from(baseline).unwrap_or(0), items };
    let current = &snap.flag.experiments;
    if legacy_equivalent(current, &desired) {
        return None;
    }
    let raw = snap.raw();
    let (ops, removes) = patch_ops(&raw, &desired);
    if let Err(why) = verify(&raw, &ops, &desired) {
        problems.push(
            ProblemKind::Internal,
            &spec.location,
            &address,
            format!("internal error: the planned JSON patch does not produce the spec's experiments ({why})"),
            Some("this is a bug in ldexp; please report it with the flag's JSON. Nothing was sent".to_owned()),
        );
        return None;
    }
    let patch = match serde_json::from_value(Value::Array(ops)) {
        Ok(p) => p,
        Err(e) => {
            problems.push(ProblemKind::Internal, &spec.location, &address, format!("internal error: {e}"), None);
            return None;
        }
    };
    let body = PatchWithComment { comment: Some(format!("ldexp: patch-legacy {address}")), patch };
    let mut request = requests::patch_flag(&s.project, &s.flag, &body);
    request.expect = vec![Expectation::FlagExperiments { experiments: desired.clone() }];
    let changed = changed_fields(current, &desired);
    Some(Change {
        address,
        action: Action::PatchLegacy,
        // Removing a metric or an environment stops recording there.
        risks: if removes { vec![Risk::EndsExperiment] } else { Vec::new() },
        remote_fingerprint: Some(legacy_fingerprint(current)),
        before: JsonText::of(current).ok(),
        after: JsonText::of(&desired).ok(),
        fields: changed,
        requests: vec![request],
        // The patch touches only `/experiments`, which no start or stop moves.
        flags: Vec::new(),
        notes: Vec::new(),
        depends_on: Vec::new(),
    })
}

/// A numeric `baseline` on a flag whose variation values are numbers can mean a value or an index; say how it was
/// read, so a reviewer is never left guessing.
fn ambiguous_baseline(flag: &FeatureFlag, r: &VariationRef, chosen: usize) -> Option<String> {
    let VariationRef::Number(n) = r else { return None };
    if !flag.variations.iter().any(|v| v.value.is_number()) {
        return None;
    }
    let shown = |i: usize| {
        let v = &flag.variations[i];
        let name = v.name.as_deref().map(|n| format!("`{n}`, ")).unwrap_or_default();
        format!("{name}value {}, index {i}", v.value)
    };
    let by_value = flag.variations.get(chosen).is_some_and(|v| v.value.as_f64() == n.as_f64());
    let read = if by_value { "the variation whose value it is" } else { "an index" };
    Some(format!(
        "`baseline: {n}` is ambiguous on a flag with numeric values (a value or an index); it was read as {read}: \
         {}. Write the variation's name to say which",
        shown(chosen)
    ))
}

/// One field per metric whose environments differ (`items.<metricKey>.environments`, absent before for an
/// added metric and after for a removed one), then `baselineIdx`. Order-free, like the comparison.
fn changed_fields(before: &LegacyExperiments, after: &LegacyExperiments) -> Vec<FieldChange> {
    let envs = |e: &LegacyExperiments| -> BTreeMap<String, BTreeSet<String>> {
        e.items.iter().map(|i| (i.metric_key.clone(), i.environments.iter().cloned().collect())).collect()
    };
    let (b, a) = (envs(before), envs(after));
    let mut out = Vec::new();
    for key in b.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
        let (old, new) = (b.get(key), a.get(key));
        if old != new {
            out.push(FieldChange {
                field: format!("items.{key}.environments"),
                before: old.map(|v| json!(v)),
                after: new.map(|v| json!(v)),
            });
        }
    }
    if before.baseline_idx != after.baseline_idx {
        out.push(FieldChange {
            field: "baselineIdx".to_owned(),
            before: Some(before.baseline_idx.into()),
            after: Some(after.baseline_idx.into()),
        });
    }
    out
}

/// The minimal guarded patch from the raw flag's `experiments` to `desired`, and whether it removes anything.
/// Removals go in descending index order so earlier indices stay valid; every index-addressed op is preceded
/// by a `test` of what is expected there, so a concurrent edit fails the request instead of corrupting data.
fn patch_ops(raw: &Value, desired: &LegacyExperiments) -> (Vec<Value>, bool) {
    let mut ops = Vec::new();
    let Some(exp) = raw.get("experiments").filter(|v| v.is_object()) else {
        ops.push(json!({"op": "add", "path": "/experiments", "value": desired}));
        return (ops, false);
    };
    let empty = Vec::new();
    let items = match exp.get("items").and_then(Value::as_array) {
        Some(a) => a,
        None => {
            ops.push(json!({"op": "add", "path": "/experiments/items", "value": []}));
            &empty
        }
    };
    let key_of = |item: &Value| item.get("metricKey").and_then(Value::as_str).map(str::to_owned);
    let wanted = |k: &str| desired.items.iter().find(|d| d.metric_key == k);
    let mut kept: Vec<(usize, &LegacyExperiment)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(d) = key_of(item).as_deref().and_then(wanted)
            && seen.insert(d.metric_key.as_str())
        {
            kept.push((i, d));
        }
    }
    let mut removes = false;
    for i in (0..items.len()).rev() {
        if kept.iter().any(|(k, _)| *k == i) {
            continue;
        }
        removes = true;
        let path = format!("/experiments/items/{i}");
        ops.push(match items[i].get("metricKey") {
            Some(k) => json!({"op": "test", "path": format!("{path}/metricKey"), "value": k}),
            None => json!({"op": "test", "path": path, "value": items[i]}),
        });
        ops.push(json!({"op": "remove", "path": path}));
    }
    for (j, (i, d)) in kept.iter().enumerate() {
        let item = &items[*i];
        let path = format!("/experiments/items/{j}");
        let guard = json!({"op": "test", "path": format!("{path}/metricKey"), "value": d.metric_key});
        let Some(current) = item.get("environments").and_then(Value::as_array) else {
            ops.push(guard);
            ops.push(json!({"op": "add", "path": format!("{path}/environments"), "value": d.environments}));
            continue;
        };
        let mut keep_env = BTreeSet::new();
        let drop: Vec<usize> = (0..current.len())
            .filter(|k| match current[*k].as_str() {
                Some(e) => !(d.environments.iter().any(|w| w == e) && keep_env.insert(e)),
                None => true,
            })
            .collect();
        let add: Vec<&String> = d.environments.iter().filter(|w| !keep_env.contains(w.as_str())).collect();
        if drop.is_empty() && add.is_empty() {
            continue;
        }
        ops.push(guard);
        for k in drop.into_iter().rev() {
            removes = true;
            let p = format!("{path}/environments/{k}");
            ops.push(json!({"op": "test", "path": p, "value": current[k]}));
            ops.push(json!({"op": "remove", "path": p}));
        }
        for env in add {
            ops.push(json!({"op": "add", "path": format!("{path}/environments/-"), "value": env}));
        }
    }
    for d in &desired.items {
        if !seen.contains(d.metric_key.as_str()) {
            ops.push(json!({"op": "add", "path": "/experiments/items/-", "value": d}));
        }
    }
    match exp.get("baselineIdx") {
        Some(old) if old.as_i64() == Some(desired.baseline_idx) => {}
        Some(old) => {
            ops.push(json!({"op": "test", "path": "/experiments/baselineIdx", "value": old}));
            ops.push(json!({"op": "replace", "path": "/experiments/baselineIdx", "value": desired.baseline_idx}));
        }
        None => ops.push(json!({"op": "add", "path": "/experiments/baselineIdx", "value": desired.baseline_idx})),
    }
    (ops, removes)
}

/// Applies `ops` to a copy of the flag and checks that `experiments` became `desired` and nothing else moved.
fn verify(raw: &Value, ops: &[Value], desired: &LegacyExperiments) -> Result<(), String> {
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops.to_vec())).map_err(|e| format!("not a JSON patch: {e}"))?;
    let mut doc = raw.clone();
    json_patch::patch(&mut doc, &patch).map_err(|e| format!("it does not apply: {e}"))?;
    let got: LegacyExperiments = doc
        .get("experiments")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("the result's experiments do not parse: {e}"))?
        .unwrap_or_default();
    if !legacy_equivalent(&got, desired) {
        return Err(format!("the result's experiments are {}", serde_json::to_string(&got).unwrap_or_default()));
    }
    let (mut a, mut b) = (doc, raw.clone());
    for v in [&mut a, &mut b] {
        if let Some(o) = v.as_object_mut() {
            o.remove("experiments");
        }
    }
    if a != b {
        return Err("it changes the flag outside `experiments`".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(baseline: i64, items: &[(&str, &[&str])]) -> LegacyExperiments {
        LegacyExperiments {
            baseline_idx: baseline,
            items: items
                .iter()
                .map(|(k, e)| LegacyExperiment {
                    metric_key: (*k).to_owned(),
                    environments: e.iter().map(|x| (*x).to_owned()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn patch_guards_removes_in_descending_order_and_verifies() {
        let raw = json!({"key": "f", "_version": 3, "experiments": {"baselineIdx": 0, "items": [
            {"metricKey": "a", "environments": ["production"], "_metric": {"key": "a"}},
            {"metricKey": "b", "environments": ["production", "staging", "production"]},
            {"metricKey": "c", "environments": []}
        ]}});
        let desired = le(1, &[("b", &["staging", "test"]), ("d", &["production"])]);
        let (ops, removes) = patch_ops(&raw, &desired);
        assert!(removes);
        assert_eq!(
            Value::Array(ops.clone()),
            json!([
                {"op": "test", "path": "/experiments/items/2/metricKey", "value": "c"},
                {"op": "remove", "path": "/experiments/items/2"},
                {"op": "test", "path": "/experiments/items/0/metricKey", "value": "a"},
                {"op": "remove", "path": "/experiments/items/0"},
                {"op": "test", "path": "/experiments/items/0/metricKey", "value": "b"},
                {"op": "test", "path": "/experiments/items/0/environments/2", "value": "production"},
                {"op": "remove", "path": "/experiments/items/0/environments/2"},
                {"op": "test", "path": "/experiments/items/0/environments/0", "value": "production"},
                {"op": "remove", "path": "/experiments/items/0/environments/0"},
                {"op": "add", "path": "/experiments/items/0/environments/-", "value": "test"},
                {"op": "add", "path": "/experiments/items/-", "value": {"metricKey": "d", "environments": ["production"]}},
                {"op": "test", "path": "/experiments/baselineIdx", "value": 0},
                {"op": "replace", "path": "/experiments/baselineIdx", "value": 1}
            ])
        );
        verify(&raw, &ops, &desired).unwrap();
    }

    #[test]
    fn verify_rejects_a_patch_that_misses_or_overreaches() {
        let raw = json!({"key": "f", "experiments": {"baselineIdx": 0, "items": []}});
        let desired = le(0, &[("a", &[])]);
        let e = verify(&raw, &[], &desired).unwrap_err();
        assert_eq!(e, "the result's experiments are {\"baselineIdx\":0,\"items\":[]}");
        let ops = [
            json!({"op": "add", "path": "/experiments/items/-", "value": {"metricKey": "a", "environments": []}}),
            json!({"op": "replace", "path": "/key", "value": "g"}),
        ];
        assert_eq!(verify(&raw, &ops, &desired).unwrap_err(), "it changes the flag outside `experiments`");
    }

    #[test]
    fn a_flag_without_experiments_gets_the_whole_value() {
        let raw = json!({"key": "f"});
        let desired = le(0, &[("a", &["p"])]);
        let (ops, removes) = patch_ops(&raw, &desired);
        assert!(!removes);
        verify(&raw, &ops, &desired).unwrap();
    }

    fn raw_items() -> impl proptest::strategy::Strategy<Value = Vec<(u8, Vec<u8>)>> {
        proptest::collection::vec((0u8..4, proptest::collection::vec(0u8..3, 0..4)), 0..5)
    }

    proptest::proptest! {
        /// Whatever the flag holds (duplicate metrics, duplicate environments), the patch applies and verifies.
        #[test]
        fn every_patch_verifies(current in raw_items(), wanted in raw_items(), base in 0i64..3, new_base in 0i64..3) {
            let env = |e: &u8| ["production", "staging", "qa"][usize::from(*e)].to_owned();
            let items: Vec<Value> = current
                .iter()
                .map(|(k, envs)| json!({"metricKey": format!("m{k}"), "environments": envs.iter().map(env).collect::<Vec<_>>()}))
                .collect();
            let raw = json!({"key": "f", "_version": 1, "experiments": {"baselineIdx": base, "items": items}});
            let mut seen = BTreeSet::new();
            let desired = LegacyExperiments {
                baseline_idx: new_base,
                items: wanted
                    .iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, envs)| {
                        let mut es: Vec<String> = Vec::new();
                        for e in envs.iter().map(env) {
                            if !es.contains(&e) {
                                es.push(e);
                            }
                        }
                        LegacyExperiment { metric_key: format!("m{k}"), environments: es }
                    })
                    .collect(),
            };
            let (ops, _) = patch_ops(&raw, &desired);
            proptest::prop_assert_eq!(verify(&raw, &ops, &desired), Ok(()));
        }
    }
}
