//! `ldexp conformance` end to end against the emulator: every probe holds against a faithful one; an emulator told
//! to break one rule (`--differ <rule>`, for each rule) is reported as differing in that rule and no other, with
//! exit 2; the borrowed flag (and every other flag) is byte-identical before and after, versions aside; the probe
//! experiments are left archived and stopped, the throwaway metric deleted; Ctrl-C in the middle still cleans up;
//! and every run is checked for the canary token (`Workspace::ldexp`).

use ldexp_core::conformance::Rule;
use serde_json::Value;

use crate::support::{Emulator, Run, Workspace, expect_code, seed_path};

const FLAG_PATH: &str = "/api/v2/flags/shop/checkout-button";
const LIST: &str =
    "/api/v2/projects/shop/environments/production/experiments?lifecycleState=active,archived&expand=currentIteration";

/// Rate limits, so that the emulator sends `X-Ratelimit-*` headers as the live service does (the
/// `rate-limit-headers` probe looks for them); high enough never to refuse.
const LIMITS: [&str; 4] = ["--rate-limit", "1000", "--rate-limit-global", "10000"];

/// Every rule id, in report order.
fn rules() -> Vec<&'static str> {
    Rule::ALL.iter().map(|r| r.id()).collect()
}

fn conformance(ws: &Workspace, em: &Emulator, extra: &[&str]) -> Run {
    conformance_on(ws, em, "checkout-button", extra)
}

/// `ldexp conformance --yes` in shop/production, borrowing `flag`.
fn conformance_on(ws: &Workspace, em: &Emulator, flag: &str, extra: &[&str]) -> Run {
    let mut args = vec!["conformance", "--project", "shop", "--environment", "production", "--flag", flag, "--yes"];
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

/// A flag's JSON as served, with every version and modification time blanked: what must be byte-identical
/// before and after a run.
fn flag_text(em: &Emulator, key: &str) -> String {
    let (status, body) = em.http("GET", &format!("/api/v2/flags/shop/{key}"), None, None);
    assert_eq!(status, 200, "{body}");
    let mut out = body;
    for field in ["\"version\":", "\"_version\":", "\"lastModified\":"] {
        let mut from = 0;
        while let Some(at) = out[from..].find(field) {
            let start = from + at + field.len();
            let end = start + out[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(out.len() - start);
            out.replace_range(start..end, "N");
            from = start;
        }
    }
    out
}

/// The probe experiments in production as listed: `(key, archived, current iteration status)`.
fn probe_experiments(em: &Emulator) -> Vec<(String, bool, String)> {
    let (status, body) = em.http("GET", LIST, None, None);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| {
            let key = x["key"].as_str().filter(|k| k.starts_with("ldexp-conformance-"))?;
            let status = x["currentIteration"]["status"].as_str().unwrap_or("(none)");
            Some((key.to_owned(), !x["archivedDate"].is_null(), status.to_owned()))
        })
        .collect()
}

/// No probe metric is left in the project.
fn assert_no_probe_metric(em: &Emulator) {
    let (status, body) = em.http("GET", "/api/v2/metrics/shop?limit=50", None, None);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("ldexp-conformance-"), "a probe metric is left: {body}");
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

/// An emulator as the probes need it: two units (so that their order and a metric on the other can be seen), rate
/// limits (so that their headers are sent), plus `extra` flags.
fn emulator(ws: &Workspace, extra: &[&str]) -> Emulator {
    let mut args: Vec<&str> = LIMITS.to_vec();
    args.extend_from_slice(extra);
    let em = Emulator::start_seeded(&seed_with_organization(ws), &args);
    two_units(&em);
    em
}

#[test]
fn every_probe_holds_against_the_emulator_and_the_flags_are_left_as_they_were() {
    let ws = Workspace::new();
    let em = emulator(&ws, &[]);
    let (before, other_before) = (flag_text(&em, "checkout-button"), flag_text(&em, "banner"));
    let run = conformance(&ws, &em, &["--format", "json"]);
    expect_code(&run, 0);
    let v = verdicts(&run);
    assert_eq!(v.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(), rules(), "{}", run.stdout);
    for (rule, verdict) in v {
        assert_eq!(verdict, "holds", "{rule}: {}", run.stdout);
    }
    // The run rewrote the flag (start, stop) and put it back: byte for byte, versions aside.
    assert_eq!(flag_text(&em, "checkout-button"), before);
    assert_eq!(flag_text(&em, "banner"), other_before);
    assert_ne!(targeting_version(&em), 1, "the probes never changed the flag");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["cleanup"]["flagVerified"], Value::Bool(true), "{}", run.stdout);
    assert_eq!(doc["cleanup"]["restored"], serde_json::json!(["rules"]), "{}", run.stdout);
    let left: Vec<&str> = doc["cleanup"]["leftBehind"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(left.len(), 2, "{}", run.stdout);
    assert!(left[0].ends_with("-lifecycle (archived)") && left[1].ends_with("-held (archived)"), "{left:?}");
    // What the service refused was never created; what it created is archived and stopped.
    let probes = probe_experiments(&em);
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert!(probes.iter().all(|(_, archived, status)| *archived && status != "running"), "{probes:?}");
    assert_no_probe_metric(&em);
    // What it would do went to stderr, so stdout stays one JSON document.
    assert!(run.stderr.contains("What it writes, in order:"), "{}", run.stderr);

    let human = conformance(&ws, &em, &[]);
    expect_code(&human, 0);
    let line = human.stdout.lines().find(|l| l.starts_with("create-iteration ")).unwrap_or_default();
    assert!(line.ends_with(" 9.9    holds"), "{}", human.stdout);
    assert!(human.stdout.contains("\n12 hold, 0 differ, 0 could not run.\n"), "{}", human.stdout);
    let markdown = conformance(&ws, &em, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    let md = &markdown.stdout;
    assert!(md.starts_with("### ldexp conformance\n\nldexp 0.1.0 (commit "), "{md}");
    assert!(md.contains(&format!("against `{}`", em.base_url)), "{md}");
    assert!(md.contains("| 9.9 | `create-iteration` | createExperiment answers its iteration not started"), "{md}");
    assert!(md.contains("| holds | answered as draftIteration |"), "{md}");
    assert!(md.contains("\n- the flag's targeting is as it was before the run"), "{md}");
    assert_eq!(flag_text(&em, "checkout-button"), before);
    ws.assert_no_canary();
}

fn targeting_version(em: &Emulator) -> i64 {
    let (_, body) = em.http("GET", FLAG_PATH, None, None);
    let flag: Value = serde_json::from_str(&body).unwrap();
    flag["environments"]["production"]["version"].as_i64().unwrap_or_default()
}

/// For each rule, an emulator that breaks it on purpose: that rule differs, saying what was seen, and no other
/// rule does; the run exits 2 and still leaves the flag as it found it.
#[test]
fn an_emulator_that_breaks_one_rule_is_reported_in_that_rule_alone() {
    for rule in rules() {
        let ws = Workspace::new();
        let em = emulator(&ws, &["--differ", rule]);
        let before = flag_text(&em, "checkout-button");
        let run = conformance(&ws, &em, &["--format", "json"]);
        expect_code(&run, 2);
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        for r in doc["rules"].as_array().unwrap() {
            let (id, verdict) = (r["rule"].as_str().unwrap(), r["verdict"].as_str().unwrap());
            if id == rule {
                assert_eq!(verdict, "differs", "--differ {rule}: {}", run.stdout);
                assert!(r["seen"].as_str().is_some_and(|s| !s.is_empty()), "--differ {rule}: {r}");
            } else {
                assert_ne!(verdict, "differs", "--differ {rule} made {id} differ too: {}", run.stdout);
            }
        }
        assert_eq!(doc["cleanup"]["problems"], serde_json::json!([]), "--differ {rule}: {}", run.stdout);
        assert_eq!(flag_text(&em, "checkout-button"), before, "--differ {rule}");
        let probes = probe_experiments(&em);
        assert!(probes.iter().all(|(_, archived, status)| *archived && status != "running"), "{rule}: {probes:?}");
        if rule == "metric-unit" {
            // The experiment the service accepted uses the metric, so it stays, and says why.
            let left = doc["cleanup"]["leftBehind"].to_string();
            assert!(left.contains("-metric (used by experiment "), "{left}");
        } else {
            assert_no_probe_metric(&em);
        }
        ws.assert_no_canary();
    }
}

#[test]
fn a_create_answered_as_current_iteration_still_holds() {
    let ws = Workspace::new();
    let em = emulator(&ws, &["--create-as-current"]);
    // Trace logs too: every request and answer is logged, and the token must not be among them (`ws.ldexp`
    // checks stdout and stderr for the canary).
    let run = conformance(&ws, &em, &["--format", "json", "-vv"]);
    expect_code(&run, 0);
    assert!(run.stderr.contains("TRACE") || run.stderr.contains("DEBUG"), "no logs: {}", run.stderr);
    assert!(run.stdout.contains("\"note\": \"answered as currentIteration, status not_started\""), "{}", run.stdout);
}

#[test]
fn what_a_project_cannot_show_could_not_run_and_does_not_fail_the_run() {
    // One unit, no rate limits: the order and the metric on another unit cannot be seen, and the headers are
    // missing, which is a difference (the live service always sends them).
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let run = conformance(&ws, &em, &["--format", "json"]);
    expect_code(&run, 2);
    let v = verdicts(&run);
    for (rule, expected) in [
        ("settings-units-order", "could-not-run"),
        ("metric-unit", "could-not-run"),
        ("rate-limit-headers", "differs"),
        ("held-rule", "holds"),
    ] {
        assert!(v.contains(&(rule.to_owned(), expected.to_owned())), "{rule}: {}", run.stdout);
    }
    assert!(run.stdout.contains("has one randomization unit"), "{}", run.stdout);
}

#[test]
fn a_service_token_cannot_write_without_a_maintainer_id_and_can_with_one() {
    let ws = Workspace::new();
    let service = format!("{}-service", crate::support::canary());
    let em = emulator(&ws, &["--service-token", &service]);
    let before = em.state_text();
    let as_service = |extra: &[&str]| {
        let mut args = vec![
            "conformance",
            "--project",
            "shop",
            "--environment",
            "production",
            "--flag",
            "checkout-button",
            "--yes",
        ];
        args.extend_from_slice(extra);
        ws.command(&em, &args).env("LD_ACCESS_TOKEN", &service).output().expect("run")
    };
    let out = as_service(&["--format", "markdown"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(&service) && !String::from_utf8_lossy(&out.stderr).contains(&service));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout.lines().find(|l| l.contains("`flag-rewrite`")).unwrap_or_default();
    assert!(line.contains("| could not run | the token is a service token"), "{stdout}");
    assert!(line.contains("--maintainer-id"), "{stdout}");
    assert!(stdout.contains("| holds | token kind: service, serviceToken: true |"), "{stdout}");
    assert_eq!(em.state_text(), before, "a run that could not write wrote");

    // Naming the emulator's member as maintainer lets every probe run.
    let out = as_service(&["--maintainer-id", "569f183514f4432160000007"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\n12 hold, 0 differ, 0 could not run.\n"), "{stdout}");
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

/// Interrupted while the lifecycle experiment runs, with the flag's rule turned into its rollout: only cleanup can
/// stop it, archive it and put the rule back.
#[test]
fn ctrl_c_while_an_experiment_runs_still_stops_it_archives_it_and_restores_the_flag() {
    let ws = Workspace::new();
    // Slow enough that the run is caught with its experiment running.
    let em = emulator(&ws, &["--latency-ms", "150"]);
    let before = flag_text(&em, "checkout-button");
    let child = ws
        .command(
            &em,
            &["conformance", "--project", "shop", "--environment", "production", "--flag", "checkout-button", "--yes"],
        )
        .spawn()
        .expect("spawn conformance");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !probe_experiments(&em).iter().any(|(_, _, status)| status == "running") {
        assert!(std::time::Instant::now() < deadline, "no probe experiment ever ran");
    }
    assert_ne!(flag_text(&em, "checkout-button"), before, "the start did not rewrite the flag");
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
    assert!(run.stdout.contains("-lifecycle (archived)"), "{}", run.stdout);
    let probes = probe_experiments(&em);
    assert!(!probes.is_empty() && probes.iter().all(|(_, a, s)| *a && s != "running"), "{probes:?}");
    assert_eq!(flag_text(&em, "checkout-button"), before);
    assert_no_probe_metric(&em);
    ws.assert_no_canary();
}

#[test]
fn a_flag_the_probes_cannot_borrow_is_refused_before_the_question_and_nothing_is_written() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let before = em.state_text();
    // `banner` has no targeting rule; without --yes the flag is still judged first, since reading it is harmless.
    let run = ws.ldexp(&em, &["conformance", "--project", "shop", "--environment", "production", "--flag", "banner"]);
    expect_code(&run, 1);
    assert!(
        run.stderr
            .contains("error: flag shop/banner cannot be lent to the probes: it has no targeting rule in production"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: lend a flag that is on in production"), "{}", run.stderr);
    assert!(!run.stderr.contains("will run"), "asked before judging the flag: {}", run.stderr);
    let missing = conformance_on(&ws, &em, "no-such-flag", &[]);
    expect_code(&missing, 1);
    assert!(missing.stderr.contains("error: flag shop/no-such-flag does not exist"), "{}", missing.stderr);
    // With --format json, stdout is still one JSON document: the error and its hint.
    let json = conformance_on(&ws, &em, "nope", &["--format", "json"]);
    expect_code(&json, 1);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.stdout));
    assert_eq!(doc["error"]["message"], "flag shop/nope does not exist", "{doc}");
    assert!(doc["error"]["hint"].as_str().is_some_and(|h| h.starts_with("check --project and --flag")), "{doc}");
    assert_eq!(em.state_text(), before);
}
