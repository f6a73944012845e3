//! What the plan cannot apply is never skipped in silence: a creation-only difference refuses only its object (plan
//! and apply exit 1, drift 2, everything else still applies), a removed description is cleared, an archived
//! experiment is renamed; and the small promises around it: `-q`, `--format json` errors, the saved-plan hint.

use serde_json::Value;

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Workspace, expect_code};

fn experiment(em: &Emulator, env: &str, key: &str) -> Value {
    em.state()["projects"]["shop"]["experiments"][env][key].clone()
}

#[test]
fn a_creation_only_difference_refuses_its_object_and_everything_else_applies() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let a = Exp::new("tagged", &["production"]);
    ws.write("specs/a.yaml", &a.yaml());
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    // The spec now wants tags LaunchDarkly cannot add after creation, and a second experiment appears.
    ws.write("specs/a.yaml", &a.yaml().replace("state: draft", "tags: [q3]\nstate: draft"));
    ws.write("specs/b.yaml", &Exp::new("other", &["production"]).yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 1);
    assert!(plan.stdout.contains("+ experiment/shop/production/other (create)"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("✗ experiment/shop/production/tagged (refused: nothing is planned for it)"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("tags: LaunchDarkly [], spec [\"q3\"]"), "{}", plan.stdout);
    assert!(plan.stdout.contains("specs/a.yaml:"), "the refusal is located: {}", plan.stdout);
    assert!(plan.stdout.ends_with("1 object refused.\n"), "{}", plan.stdout);

    let drift = ws.ldexp(&em, &["drift", "specs"]);
    expect_code(&drift, 2);
    assert!(drift.stdout.contains("tagged"), "{}", drift.stdout);

    let apply = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&apply, 1);
    assert!(apply.stdout.contains("applied  experiment/shop/production/other [create]"), "{}", apply.stdout);
    assert!(apply.stdout.contains("Refused, nothing sent: experiment/shop/production/tagged."), "{}", apply.stdout);
    assert!(experiment(&em, "production", "other").is_object());
    assert!(experiment(&em, "production", "tagged")["tags"].is_null(), "nothing was sent for the refused object");
    // Drift still names it, every night, until the spec is fixed.
    expect_code(&ws.ldexp(&em, &["drift", "specs"]), 2);
    ws.write("specs/a.yaml", &a.yaml());
    expect_code(&ws.ldexp(&em, &["drift", "specs"]), 0);
}

#[test]
fn a_removed_description_is_cleared_and_an_archived_experiment_is_renamed() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("described", &["production"]);
    ws.write("specs/e.yaml", &e.yaml().replace("state: draft", "description: Soon gone.\nstate: draft"));
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    assert_eq!(experiment(&em, "production", "described")["description"], "Soon gone.");
    // Removed from the spec: cleared, and the plan says so.
    ws.write("specs/e.yaml", &e.yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    assert!(plan.stdout.contains("-Soon gone."), "{}", plan.stdout);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    let x = experiment(&em, "production", "described");
    assert!(x["description"].is_null() || x["description"] == "", "{x}");
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
    // Archived, then renamed while it stays archived.
    e.stage = Stage::Archived;
    ws.write("specs/e.yaml", &e.yaml());
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    e.name = "A better name".into();
    ws.write("specs/e.yaml", &e.yaml());
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 2);
    assert!(plan.stdout.contains("name: \"Experiment described\" → \"A better name\""), "{}", plan.stdout);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    let x = experiment(&em, "production", "described");
    assert_eq!(x["name"], "A better name");
    assert!(x["archivedDate"].is_number(), "still archived: {x}");
}

#[test]
fn quiet_apply_prints_results_not_the_plan() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/e.yaml", &Exp::new("quiet", &["production"]).yaml());
    let run = ws.ldexp(&em, &["-q", "apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(!run.stdout.contains("will perform"), "{}", run.stdout);
    assert!(!run.stdout.contains("hypothesis"), "{}", run.stdout);
    assert!(run.stdout.starts_with("Plan: 1 to create"), "{}", run.stdout);
    assert!(run.stdout.contains("applied  experiment/shop/production/quiet [create]"), "{}", run.stdout);
}

#[test]
fn plan_as_json_answers_an_error_with_a_json_object() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/e.yaml", &Exp::new("broken", &["production"]).yaml().replace("checkout-button", "no-such-flag"));
    let run = ws.ldexp(&em, &["plan", "--format", "json", "specs"]);
    expect_code(&run, 1);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("problem"), "{v}");
    let p = &v["error"]["problems"][0];
    assert_eq!(p["file"], "specs/e.yaml");
    assert!(p["line"].as_u64().is_some_and(|l| l > 1), "{v}");
    assert!(p["message"].as_str().unwrap_or_default().contains("no-such-flag"), "{v}");
    // Not a spec problem: still a JSON object, with the hint.
    let run = ws.ldexp(&em, &["plan", "--format", "json", "nowhere"]);
    expect_code(&run, 1);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("nowhere"), "{v}");
}

#[test]
fn the_saved_plan_hint_works_when_copied_as_is() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("my specs/e.yaml", &Exp::new("hinted", &["production"]).yaml());
    let plan = ws.ldexp(&em, &["plan", "--out", "plan.json", "my specs"]);
    expect_code(&plan, 0);
    let hint = plan.stderr.split('`').nth(1).unwrap_or_else(|| panic!("no command in: {}", plan.stderr));
    assert_eq!(hint, "ldexp apply --plan plan.json 'my specs'");
    // Run it through a shell, exactly as printed (with --auto-approve, as a pipeline would).
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} --auto-approve", hint.replacen("ldexp", crate::support::BIN, 1)))
        .current_dir(ws.path())
        .env("LD_BASE_URL", &em.base_url)
        .env("LD_ACCESS_TOKEN", crate::support::canary())
        .output()
        .expect("run the hint");
    assert_eq!(shell.status.code(), Some(0), "{}", String::from_utf8_lossy(&shell.stderr));
    assert!(experiment(&em, "production", "hinted").is_object());
}

/// A service token must name a maintainer (contract §9.7): the plan warns on a create without `maintainerId`, after
/// asking `caller-identity` once, and a spec with one creates cleanly.
#[test]
fn a_create_without_a_maintainer_is_flagged_when_the_token_is_a_service_token() {
    let canary = crate::support::canary();
    let em = Emulator::start(&["--token", "member-token-of-someone-else", "--service-token", canary]);
    let ws = Workspace::new();
    let e = Exp::new("by-service", &["production"]);
    ws.write("specs/e.yaml", &e.yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(
        plan.stdout.contains(
            "experiment/shop/production/by-service: created without `maintainerId`, and the access token is a \
             service token"
        ),
        "{}",
        plan.stdout
    );
    // What the warning foretold.
    let apply = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&apply, 1);
    assert!(apply.stdout.contains("maintainerId is required"), "{}", apply.stdout);

    ws.write("specs/e.yaml", &e.yaml().replace("state: draft", "maintainerId: 569f183514f4432160000007\nstate: draft"));
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    assert!(!plan.stdout.contains("service token"), "{}", plan.stdout);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
}
