//! The plan file format: `schema/plan.schema.json` is generated from the plan types, is up to date, and every plan
//! the binary writes validates against it; a plan of another format version is refused with what to do.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Emulator, Workspace, expect_code};
use crate::validate::ldexp;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn committed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("schema/plan.schema.json")).unwrap()).unwrap()
}

#[test]
fn the_committed_plan_schema_is_up_to_date() {
    let (code, generated, _) = ldexp(&root(), &["schema", "--plan"]);
    assert_eq!(code, 0);
    let on_disk = std::fs::read_to_string(root().join("schema/plan.schema.json")).unwrap_or_default();
    assert!(
        generated == on_disk,
        "schema/plan.schema.json is out of date with the plan types; regenerate it with:\n\n    \
         cargo run -q -p ldexp -- schema --plan > schema/plan.schema.json\n"
    );
}

#[test]
fn every_plan_the_binary_writes_matches_the_schema_and_other_versions_are_refused() {
    let validator = jsonschema::validator_for(&committed()).unwrap();
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    crate::lost_responses::write_specs_for_every_action(&ws, &em);
    let run = ws.ldexp(&em, &["plan", "--prune", "--out", "plan.json", "specs"]);
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(ws.path().join("plan.json")).unwrap()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&plan).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "the plan does not match schema/plan.schema.json:\n{}", errors.join("\n"));
    assert!(plan["changes"].as_array().is_some_and(|c| c.len() >= 3), "{plan}");
    // The schema is not vacuous: a plan with an unknown action or a request without a method does not match.
    let mut bad = plan.clone();
    bad["changes"][0]["action"] = Value::from("explode");
    assert!(!validator.is_valid(&bad));
    let mut bad = plan.clone();
    bad["changes"][0]["requests"][0].as_object_mut().unwrap().remove("method");
    assert!(!validator.is_valid(&bad));

    // Format 3 had no dependencies between changes: a build that reads it would send a metric's group before the
    // metric.
    let mut old = plan.clone();
    old["formatVersion"] = Value::from(3);
    ws.write("old.json", &old.to_string());
    let run = ws.ldexp(&em, &["apply", "--plan", "old.json", "--auto-approve", "specs"]);
    expect_code(&run, 1);
    assert!(
        run.stderr.contains("has plan format 3, this ldexp reads format 5; plan again with this version"),
        "{}",
        run.stderr
    );
}
