//! `ldexp conformance` end to end against the emulator: every probe holds (the settings order once the project has
//! two units), an emulator switched to differ on purpose is reported as differing with exit 2, the borrowed flag is
//! the same before and after (versions aside), the probe experiment is left archived, and every run is checked for
//! the canary token (`Workspace::ldexp`).

use serde_json::Value;

use crate::support::{Emulator, Run, Workspace, expect_code, seed_path};

const FLAG_PATH: &str = "/api/v2/flags/shop/checkout-button";

fn conformance(ws: &Workspace, em: &Emulator, extra: &[&str]) -> Run {
    let mut args =
        vec!["conformance", "--project", "shop", "--environment", "production", "--flag", "checkout-button", "--yes"];
    args.extend_from_slice(extra);
    ws.ldexp(em, &args)
}

/// The JSON report's verdict per rule id.
fn verdicts(run: &Run) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    doc["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| (r["rule"].as_str().unwrap().to_owned(), r["verdict"].as_str().unwrap().to_owned()))
        .collect()
}

/// The borrowed flag's production environment without its versions.
fn targeting(em: &Emulator) -> Value {
    let (status, body) = em.http("GET", FLAG_PATH, None, None);
    assert_eq!(status, 200, "{body}");
    let mut flag: Value = serde_json::from_str(&body).unwrap();
    let mut env = flag["environments"]["production"].take();
    let o = env.as_object_mut().unwrap();
    o.remove("version");
    o.remove("lastModified");
    env
}

/// The usual seed, with `organization` as a context kind of `shop`, so that settings may name it.
fn seed_with_organization(ws: &Workspace) -> std::path::PathBuf {
    let seed = std::fs::read_to_string(seed_path()).unwrap();
    let seed = seed.replacen(
        "randomizationUnits: [user]",
        "randomizationUnits: [user]\n    contextKinds: [user, organization]",
        1,
    );
    assert!(seed.contains("contextKinds"), "the seed changed: update this test");
    ws.write("seed.yaml", &seed);
    ws.path().join("seed.yaml")
}

/// A second randomization unit, sent default-last so that the emulator's answer shows the order it serves.
fn two_units(em: &Emulator) {
    let body =
        r#"{"randomizationUnits":[{"randomizationUnit":"organization"},{"randomizationUnit":"user","default":true}]}"#;
    let (status, text) =
        em.http("PUT", "/api/v2/projects/shop/experimentation-settings", Some("application/json"), Some(body));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn every_probe_holds_against_the_emulator_and_the_flag_is_left_as_it_was() {
    let ws = Workspace::new();
    let em = Emulator::start_seeded(&seed_with_organization(&ws), &[]);
    two_units(&em);
    let before = targeting(&em);
    let run = conformance(&ws, &em, &["--format", "json"]);
    expect_code(&run, 0);
    for (rule, verdict) in verdicts(&run) {
        assert_eq!(verdict, "holds", "{rule}: {}", run.stdout);
    }
    assert_eq!(targeting(&em), before, "the borrowed flag's targeting changed");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["cleanup"]["flagVerified"], Value::Bool(true), "{}", run.stdout);
    let left = doc["cleanup"]["leftBehind"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{}", run.stdout);
    let left = left[0].as_str().unwrap();
    assert!(left.contains("ldexp-conformance-") && left.ends_with("(archived)"), "{left}");
    // What it would do went to stderr, so stdout stays one JSON document.
    assert!(run.stderr.contains("will create experiment ldexp-conformance-"), "{}", run.stderr);

    let human = conformance(&ws, &em, &[]);
    expect_code(&human, 0);
    let line = human.stdout.lines().find(|l| l.contains("create-iteration")).unwrap_or_default();
    assert!(line.contains(" holds (answered as draftIteration)"), "{}", human.stdout);
    let markdown = conformance(&ws, &em, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    assert!(markdown.stdout.starts_with("| § | Rule | Statement | Verdict |"), "{}", markdown.stdout);
    ws.assert_no_canary();
}

#[test]
fn a_create_answered_as_current_iteration_still_holds() {
    let em = Emulator::start(&["--create-as-current"]);
    let ws = Workspace::new();
    let run = conformance(&ws, &em, &[]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("holds (answered as currentIteration, status not_started)"), "{}", run.stdout);
    // One unit only: the order cannot be seen, which is said and does not fail the run.
    let line = run.stdout.lines().find(|l| l.contains("settings-units-order")).unwrap_or_default();
    assert!(line.contains(" could not run: "), "{}", run.stdout);
}

#[test]
fn an_emulator_that_misreports_total_count_differs() {
    let em = Emulator::start(&["--misreport-total-count"]);
    let ws = Workspace::new();
    // Trace logs too: every request and answer is logged, and the token must not be among them.
    let run = conformance(&ws, &em, &["--format", "json", "-vv"]);
    expect_code(&run, 2);
    assert!(run.stderr.contains("TRACE") || run.stderr.contains("DEBUG"), "no logs: {}", run.stderr);
    let v = verdicts(&run);
    assert!(v.contains(&("total-count".to_owned(), "differs".to_owned())), "{}", run.stdout);
    assert!(v.iter().filter(|(_, verdict)| verdict == "differs").count() == 1, "{}", run.stdout);
}

#[test]
fn without_yes_and_without_a_terminal_nothing_is_sent() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let before = em.state_text();
    let run = ws
        .ldexp(&em, &["conformance", "--project", "shop", "--environment", "production", "--flag", "checkout-button"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert_eq!(em.state_text(), before);
}

#[test]
fn ctrl_c_still_archives_the_probe_experiment_and_checks_the_flag() {
    const LIST: &str = "/api/v2/projects/shop/environments/production/experiments?lifecycleState=active,archived";
    // Slow enough that the probe experiment exists well before the run ends.
    let em = Emulator::start(&["--latency-ms", "300"]);
    let ws = Workspace::new();
    let before = targeting(&em);
    let child = ws
        .command(
            &em,
            &["conformance", "--project", "shop", "--environment", "production", "--flag", "checkout-button", "--yes"],
        )
        .spawn()
        .expect("spawn conformance");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, body) = em.http("GET", LIST, None, None);
        if body.contains("ldexp-conformance-") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the probe experiment never appeared: {body}");
    }
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    crate::support::assert_no_canary(&run);
    expect_code(&run, 130);
    assert!(run.stderr.contains("Interrupted: cleaning up"), "{}", run.stderr);
    assert!(run.stdout.contains("(archived)"), "{}", run.stdout);
    let (_, body) = em.http("GET", LIST, None, None);
    let list: Value = serde_json::from_str(&body).unwrap();
    let probe = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"].as_str().is_some_and(|k| k.starts_with("ldexp-conformance-")))
        .expect("the probe experiment");
    assert!(!probe["archivedDate"].is_null(), "not archived: {probe}");
    assert_eq!(targeting(&em), before);
}
