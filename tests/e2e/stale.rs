//! A saved plan whose remote moved is refused with exit 3, and nothing at all is written.

use crate::specs::{Exp, Stage, legacy};
use crate::support::{Emulator, Workspace, expect_code};

#[test]
fn a_stale_plan_exits_3_and_writes_nothing() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("checkout-color", &["production"]);
    ws.write("specs/a.yaml", &e.yaml());
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);

    // The plan: rename and start the experiment, and attach a metric to the banner flag.
    e.stage = Stage::Running;
    e.name = "Checkout colour".into();
    ws.write("specs/a.yaml", &e.yaml());
    ws.write("specs/banner.yaml", &legacy("hidden", &[("clicks", &["production"]), ("purchases", &[])]));
    expect_code(&ws.ldexp(&em, &["plan", "--out", "plan.json", "specs"]), 0);

    // Someone starts the experiment in the UI meanwhile.
    let (status, body) = em.http(
        "PATCH",
        "/api/v2/projects/shop/environments/production/experiments/checkout-color",
        Some("application/json; domain-model=launchdarkly.semanticpatch"),
        Some(r#"{"instructions":[{"kind":"startIteration"}]}"#),
    );
    assert_eq!(status, 200, "{body}");

    let before = em.state_text();
    let run = ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]);
    expect_code(&run, 3);
    assert!(run.stderr.contains("stale plan"), "{}", run.stderr);
    assert!(run.stderr.contains("experiment/shop/production/checkout-color"), "{}", run.stderr);
    assert!(run.stderr.contains("the remote object moved"), "{}", run.stderr);
    // The banner change alone was still valid, but every object is checked before the first write.
    assert_eq!(em.state_text(), before, "a stale apply must not write anything");

    // A fresh plan applies.
    expect_code(&ws.ldexp(&em, &["plan", "--out", "plan.json", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);

    // Changed specs make a saved plan stale too.
    expect_code(&ws.ldexp(&em, &["plan", "--out", "plan.json", "specs"]), 0);
    e.name = "Checkout colour, again".into();
    ws.write("specs/a.yaml", &e.yaml());
    let before = em.state_text();
    let run = ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]);
    expect_code(&run, 3);
    assert!(run.stderr.contains("the specs changed since the plan was made"), "{}", run.stderr);
    assert_eq!(em.state_text(), before);
    ws.assert_no_canary();
}

/// The digest a saved plan records.
fn specs_digest(path: &std::path::Path) -> String {
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plan["specsDigest"].as_str().unwrap().to_owned()
}

#[test]
fn a_saved_plan_is_not_stale_for_another_path_spelling_a_comment_or_a_renamed_file() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("checkout-color", &["production"]);
    e.stage = Stage::Running;
    ws.write("specs/a.yaml", &e.yaml());
    ws.write("specs/banner.yaml", &legacy("hidden", &[("clicks", &["production"])]));
    expect_code(&ws.ldexp(&em, &["plan", "--out", "plan.json", "specs"]), 0);
    let saved = specs_digest(&ws.path().join("plan.json"));

    let out = ws.path().join("again.json");
    let out = out.to_str().unwrap();
    let absolute = ws.path().join("specs");
    let absolute = absolute.to_str().unwrap();
    let inside = ws.path().join("specs");
    for (dir, args) in [
        (ws.path(), vec!["plan", "--out", out, "./specs/"]),
        (ws.path(), vec!["plan", "--out", out, absolute]),
        (inside.as_path(), vec!["plan", "--out", out, "."]),
        (inside.as_path(), vec!["plan", "--out", out]),
        (inside.as_path(), vec!["plan", "--out", out, "banner.yaml", "a.yaml"]),
    ] {
        let run = ws.command(&em, &args).current_dir(dir).output().unwrap();
        assert!(run.status.success(), "{args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&run.stderr));
        assert_eq!(specs_digest(std::path::Path::new(out)), saved, "{args:?} in {}", dir.display());
    }

    // A comment and a renamed file change nothing `apply` would do: the saved plan still applies.
    ws.remove("specs/a.yaml");
    ws.write("specs/checkout.yaml", &format!("# Owned by the checkout team.\n{}", e.yaml()));
    let run = ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]);
    expect_code(&run, 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
    ws.assert_no_canary();
}
