//! `ldexp drift --baseline REF` (issue #17) on a scratch git repository and the emulator: drift, pending and
//! conflict in one run, pending alone exiting 0, a missing revision, and `--baseline-dir`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::specs::Exp;
use crate::support::{Emulator, Workspace, expect_code};

/// Runs git in `dir` with a fixed identity, so the test needs no global git configuration.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=CI", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Renames experiment `key` in production, as a colleague would in the UI.
fn rename_remotely(em: &Emulator, key: &str, name: &str) {
    let (status, body) = em.http(
        "PATCH",
        &format!("/api/v2/projects/shop/environments/production/experiments/{key}"),
        Some("application/json; domain-model=launchdarkly.semanticpatch"),
        Some(&format!(r#"{{"instructions":[{{"kind":"updateName","value":"{name}"}}]}}"#)),
    );
    assert_eq!(status, 200, "{body}");
}

/// The `(address, field, class)` of every field of a JSON drift report.
fn classes(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for d in report["drifted"].as_array().unwrap() {
        for f in d["fields"].as_array().unwrap() {
            out.push((
                d["address"].as_str().unwrap().to_owned(),
                f["field"].as_str().unwrap().to_owned(),
                f["class"].as_str().unwrap_or("-").to_owned(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn drift_pending_and_conflict_in_one_run() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut specs: Vec<Exp> = ["remote-moved", "spec-moved", "both-moved"]
        .iter()
        .zip(["lane-1", "lane-2", "lane-3"])
        .map(|(key, lane)| Exp::new(key, &["production"]).on_lane(lane))
        .collect();
    for e in &specs {
        ws.write(&format!("specs/{}.yaml", e.key), &e.yaml());
    }
    git(ws.path(), &["init", "--quiet"]);
    git(ws.path(), &["add", "specs"]);
    git(ws.path(), &["commit", "--quiet", "-m", "specs as deployed"]);
    git(ws.path(), &["tag", "deployed"]);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    let synced = ws.ldexp(&em, &["drift", "--baseline", "deployed", "specs"]);
    expect_code(&synced, 0);
    assert!(
        synced.stdout.contains("No drift against baseline deployed. Remote matches the specs."),
        "{}",
        synced.stdout
    );

    // Pending alone: merged (committed after the tag), not applied. Exit 0, with the count.
    specs[1].name = "Renamed in the spec".into();
    ws.write("specs/spec-moved.yaml", &specs[1].yaml());
    git(ws.path(), &["commit", "--quiet", "-am", "rename spec-moved"]);
    let pending = ws.ldexp(&em, &["drift", "--baseline", "deployed", "specs"]);
    expect_code(&pending, 0);
    assert!(pending.stdout.contains("1 pending change (merged, not yet applied)"), "{}", pending.stdout);
    assert!(pending.stdout.contains("Pending ("), "{}", pending.stdout);
    assert!(pending.stdout.contains("`ldexp apply` applies them."), "{}", pending.stdout);
    // Without a baseline, drift works as before: any difference exits 2.
    expect_code(&ws.ldexp(&em, &["drift", "specs"]), 2);

    // Drift: the remote moved. Conflict: both moved, to different names.
    rename_remotely(&em, "remote-moved", "Renamed in the UI");
    rename_remotely(&em, "both-moved", "Renamed in the UI too");
    specs[2].name = "Renamed in the spec too".into();
    ws.write("specs/both-moved.yaml", &specs[2].yaml());

    let human = ws.ldexp(&em, &["drift", "--baseline", "deployed", "specs"]);
    expect_code(&human, 2);
    assert!(
        human.stdout.contains("Drift against baseline deployed: 1 drifted, 1 pending, 1 conflict."),
        "{}",
        human.stdout
    );
    let (drift, conflicts, pending) = (
        human.stdout.find("Drift (").unwrap(),
        human.stdout.find("Conflicts (").unwrap(),
        human.stdout.find("Pending (").unwrap(),
    );
    assert!(drift < conflicts && conflicts < pending, "{}", human.stdout);
    assert!(human.stdout[drift..conflicts].contains("remote-moved"), "{}", human.stdout);
    assert!(human.stdout[conflicts..pending].contains("both-moved"), "{}", human.stdout);
    assert!(human.stdout[conflicts..pending].contains("baseline \"Experiment both-moved\""), "{}", human.stdout);
    assert!(human.stdout[pending..].contains("spec-moved"), "{}", human.stdout);

    let json = ws.ldexp(&em, &["drift", "--baseline", "deployed", "--format", "json", "specs"]);
    expect_code(&json, 2);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["baseline"]["reference"], "deployed");
    assert_eq!(report["baseline"]["drift"], 1, "{report}");
    assert_eq!(report["baseline"]["pending"], 1, "{report}");
    assert_eq!(report["baseline"]["conflict"], 1, "{report}");
    let exp = |k: &str| format!("experiment/shop/production/{k}");
    assert_eq!(
        classes(&report),
        vec![
            (exp("both-moved"), "name".into(), "conflict".into()),
            (exp("remote-moved"), "name".into(), "drift".into()),
            (exp("spec-moved"), "name".into(), "pending".into()),
        ]
    );

    let md = ws.ldexp(&em, &["drift", "--baseline", "deployed", "--format", "markdown", "specs"]);
    expect_code(&md, 2);
    for heading in ["### Drift", "### Conflicts", "### Pending"] {
        assert!(md.stdout.contains(heading), "{heading}: {}", md.stdout);
    }
    assert!(md.stdout.contains("| Remote | Baseline | Spec |"), "{}", md.stdout);
    assert!(md.stdout.contains("`\"Experiment both-moved\"`"), "{}", md.stdout);

    // The baseline as a folder: the deployed specs, checked out elsewhere.
    let dir = tempfile::tempdir().unwrap();
    for (e, key) in specs.iter().zip(["remote-moved", "spec-moved", "both-moved"]) {
        let mut deployed = e.clone();
        deployed.name = format!("Experiment {key}");
        std::fs::write(dir.path().join(format!("{key}.yaml")), deployed.yaml()).unwrap();
    }
    let from_dir =
        ws.ldexp(&em, &["drift", "--baseline-dir", dir.path().to_str().unwrap(), "--format", "json", "specs"]);
    expect_code(&from_dir, 2);
    assert_eq!(classes(&serde_json::from_str(&from_dir.stdout).unwrap()), classes(&report));
}

#[test]
fn a_revision_that_does_not_exist_is_a_clear_error_and_a_spec_new_since_the_baseline_is_pending() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    git(ws.path(), &["init", "--quiet"]);
    git(ws.path(), &["commit", "--quiet", "--allow-empty", "-m", "nothing deployed yet"]);
    git(ws.path(), &["tag", "empty"]);
    ws.write("specs/a.yaml", &Exp::new("a", &["production"]).yaml());
    git(ws.path(), &["add", "specs"]);
    git(ws.path(), &["commit", "--quiet", "-m", "specs"]);

    let run = ws.ldexp(&em, &["drift", "--baseline", "no-such-tag", "specs"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("the baseline `no-such-tag` is not a commit"), "{}", run.stderr);
    assert!(run.stderr.contains("git tag --list"), "{}", run.stderr);

    // No spec at the baseline: the experiment is new, merged and not yet applied.
    let pending = ws.ldexp(&em, &["drift", "--baseline", "empty", "--format", "json", "specs"]);
    expect_code(&pending, 0);
    let report: Value = serde_json::from_str(&pending.stdout).unwrap();
    assert_eq!(report["baseline"]["pending"], 1, "{report}");
    assert_eq!(report["drifted"][0]["class"], "pending", "{report}");

    // Specs outside any git repository: --baseline says so and points at --baseline-dir.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("a.yaml"), Exp::new("a", &["production"]).yaml()).unwrap();
    let not_git = ws.ldexp(&em, &["drift", "--baseline", "empty", outside.path().to_str().unwrap()]);
    expect_code(&not_git, 1);
    assert!(not_git.stderr.contains("--baseline-dir"), "{}", not_git.stderr);
}
