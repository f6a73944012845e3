//! Builds the emulator state of a large fixture in time linear in its size.
//!
//! `State::from_seed` hydrates each seeded experiment against a clone of its whole project (flags, metrics and
//! every experiment seeded so far), which is quadratic: minutes at 2,000 experiments, far longer at 10,000.
//! Hydration only reads the flags an experiment names and the project's metrics, and every id and timestamp
//! is given by the fixture, so seeding each group of experiments that share flags into a project holding only
//! those flags gives the same experiments. They are merged into one state document, which the server takes
//! through `PUT /_emulator/state`. A test pins that the result equals `State::from_seed` of the whole seed.

use std::collections::{BTreeMap, BTreeSet};

use ldexp_emulator::{Seed, State};
use serde_json::{Map, Value, json};

use crate::BenchError;

fn parse(seed: Value) -> Result<Seed, BenchError> {
    serde_json::from_value(seed).map_err(|e| BenchError::Emulator(format!("the seed does not parse: {e}")))
}

fn build(seed: Value) -> Result<Value, BenchError> {
    let state = State::from_seed(&parse(seed)?).map_err(|e| BenchError::Emulator(e.to_string()))?;
    Ok(state.to_json())
}

/// The flags an API-shaped experiment names in any of its iterations.
fn flags_of(exp: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut iterations: Vec<&Value> = Vec::new();
    iterations.extend(exp.get("currentIteration"));
    iterations.extend(exp.get("draftIteration"));
    if let Some(prev) = exp.get("previousIterations").and_then(Value::as_array) {
        iterations.extend(prev);
    }
    for it in iterations {
        if let Some(flags) = it.get("flags").and_then(Value::as_object) {
            out.extend(flags.keys().cloned());
        }
    }
    out
}

/// The seed without any experiment: what the server starts from before the state document replaces it.
pub fn seed_without_experiments(seed: &Value) -> Result<Seed, BenchError> {
    let mut bare = seed.clone();
    if let Some(projects) = bare.get_mut("projects").and_then(Value::as_array_mut) {
        for p in projects {
            p["experiments"] = json!({});
        }
    }
    parse(bare)
}

/// The state document (`GET /_emulator/state` shape) that `seed` describes.
pub fn state_document(seed: &Value) -> Result<Value, BenchError> {
    let bad = |m: &str| BenchError::Emulator(format!("seed: {m}"));
    let mut doc = build(serde_json::to_value(seed_without_experiments(seed)?).map_err(|e| bad(&e.to_string()))?)?;
    let projects = seed.get("projects").and_then(Value::as_array).ok_or_else(|| bad("no `projects` list"))?;
    for project in projects {
        let key = project.get("key").and_then(Value::as_str).ok_or_else(|| bad("a project has no key"))?;
        let flags: BTreeMap<&str, &Value> = project
            .get("flags")
            .and_then(Value::as_array)
            .map(|fs| fs.iter().filter_map(|f| Some((f.get("key")?.as_str()?, f))).collect())
            .unwrap_or_default();
        // Flag set → environment → experiments naming exactly those flags.
        let mut groups: BTreeMap<BTreeSet<String>, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        if let Some(by_env) = project.get("experiments").and_then(Value::as_object) {
            for (env, items) in by_env {
                for exp in items.as_array().into_iter().flatten() {
                    groups.entry(flags_of(exp)).or_default().entry(env.clone()).or_default().push(exp.clone());
                }
            }
        }
        let target = doc
            .pointer_mut(&format!("/projects/{key}/experiments"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| bad(&format!("project `{key}` has no experiments map in the state document")))?;
        // Cloned per group, so it must not carry the experiments (that would be quadratic again).
        let mut template = project.clone();
        template["experiments"] = json!({});
        template["flags"] = json!([]);
        for (names, by_env) in groups {
            let mut part = template.clone();
            part["flags"] =
                Value::Array(names.iter().filter_map(|n| flags.get(n.as_str()).map(|f| (*f).clone())).collect());
            part["experiments"] = serde_json::to_value(&by_env).map_err(|e| bad(&e.to_string()))?;
            let built = build(json!({ "projects": [part] }))?;
            let Some(Value::Object(envs)) = built.pointer(&format!("/projects/{key}/experiments")).cloned() else {
                continue;
            };
            for (env, exps) in envs {
                let slot = target.entry(env).or_insert_with(|| Value::Object(Map::new()));
                if let (Some(slot), Value::Object(exps)) = (slot.as_object_mut(), exps) {
                    slot.extend(exps);
                }
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FixtureParams, generate};

    #[test]
    fn the_merged_document_equals_seeding_everything_at_once() {
        let f = generate(&FixtureParams { experiments: 120, environments: 3, flags: 12, metrics: 30 }).unwrap();
        let whole = build(f.seed.clone()).unwrap();
        let merged = state_document(&f.seed).unwrap();
        let count = |d: &Value| {
            d.pointer("/projects/bench/experiments")
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .map(|m| m.as_object().unwrap().len())
                .sum::<usize>()
        };
        assert_eq!(count(&merged), 120 - 3 + 2, "117 seeded from specs, 2 unmanaged");
        assert_eq!(merged, whole);
    }

    #[test]
    fn flags_are_collected_from_every_iteration() {
        let exp = json!({
            "currentIteration": { "flags": { "a": {} } },
            "draftIteration": { "flags": { "b": {} } },
            "previousIterations": [ { "flags": { "c": {}, "a": {} } } ],
        });
        assert_eq!(flags_of(&exp), ["a", "b", "c"].map(str::to_owned).into());
    }
}
