//! The read views, `ldexp list experiments` and `ldexp show`, end to end: every filter reaches the emulator as the
//! list's own `filter` or `lifecycleState` (read back from its request log), `--specs` marks what a spec manages,
//! each format, `show` prints exactly what export writes, and an address with nothing behind it is named. Every run
//! is checked for the canary token (`Workspace::ldexp`); one test adds trace logs and a refused token.

use serde_json::Value;

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Run, Workspace, canary, expect_code};

const PROD: &[&str] = &["production"];
const STAGING: &[&str] = &["staging"];

/// Three experiments, made by applying specs: `checkout-color` running in production, `draft-one` (measuring
/// `clicks`) a draft in staging, and `retired` stopped and archived in production, whose spec is then removed so that
/// no spec in `specs/` manages it.
fn seeded() -> (Emulator, Workspace) {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut running = Exp::new("checkout-color", PROD).on_lane("lane-1");
    running.stage = Stage::Running;
    ws.write("specs/checkout-color.yaml", &running.yaml());
    let draft = Exp::new("draft-one", STAGING).on_lane("lane-2").yaml().replace(
        "primaryMetric: purchases\n  metrics: [purchases, revenue]",
        "primaryMetric: clicks\n  metrics: [clicks]",
    );
    assert!(draft.contains("metrics: [clicks]"), "{draft}");
    ws.write("specs/draft-one.yaml", &draft);
    let mut retired = Exp::new("retired", PROD).on_lane("lane-3");
    retired.stage = Stage::Running;
    ws.write("specs/retired.yaml", &retired.yaml());
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    retired.stage = Stage::Archived;
    ws.write("specs/retired.yaml", &retired.yaml());
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    ws.remove("specs/retired.yaml");
    (em, ws)
}

/// One experiment listing the emulator served: `(path, filter, lifecycleState)`.
type Listing = (String, Option<String>, Option<String>);

/// The experiment lists the emulator served since the log had `since` entries.
fn lists_since(em: &Emulator, since: usize) -> Vec<Listing> {
    let log = logged(em);
    log[since..]
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/experiments")))
        .map(|r| {
            let q = |k: &str| r["query"][k].as_str().map(str::to_owned);
            (r["path"].as_str().unwrap_or_default().to_owned(), q("filter"), q("lifecycleState"))
        })
        .collect()
}

fn logged(em: &Emulator) -> Vec<Value> {
    let (status, body) = em.http("GET", "/_emulator/requests", None, None);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("the request log is JSON");
    v["requests"].as_array().cloned().unwrap_or_default()
}

/// Runs `ldexp list experiments --project shop args…`; returns the run and the listings it sent.
fn list(em: &Emulator, ws: &Workspace, args: &[&str]) -> (Run, Vec<Listing>) {
    let since = logged(em).len();
    let mut argv = vec!["list", "experiments", "--project", "shop"];
    argv.extend_from_slice(args);
    let run = ws.ldexp(em, &argv);
    (run, lists_since(em, since))
}

/// The keys in the first column of a table, header and count line left out.
fn keys(table: &str) -> Vec<&str> {
    table.lines().skip(1).filter(|l| !l.ends_with('.')).filter_map(|l| l.split_whitespace().next()).collect()
}

const ANY_ENV: &str = "/api/v2/projects/shop/experiments";

fn sent(path: &str, filter: Option<&str>, lifecycle: &str) -> Listing {
    (path.to_owned(), filter.map(str::to_owned), Some(lifecycle.to_owned()))
}

#[test]
fn list_sends_each_filter_to_the_server_and_shows_what_it_answers() {
    let (em, ws) = seeded();

    let (run, lists) = list(&em, &ws, &[]);
    expect_code(&run, 0);
    assert_eq!(keys(&run.stdout), ["checkout-color", "draft-one"], "{}", run.stdout);
    assert_eq!(lists, [sent(ANY_ENV, None, "active")], "one any-environment listing");
    let head = run.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        head.split_whitespace().collect::<Vec<_>>(),
        ["key", "environment", "status", "flag", "started", "iterations"]
    );
    assert!(run.stdout.ends_with("\n2 experiments.\n"), "{}", run.stdout);

    for (args, filter, lifecycle, expected) in [
        (&["--status", "running"][..], Some("status:running"), "active", &["checkout-color"][..]),
        (&["--status", "not_started"], Some("status:not_started"), "active", &["draft-one"]),
        (&["--metric", "clicks"], Some("metricKey:clicks"), "active", &["draft-one"]),
        (&["--flag", "checkout-button"], Some("flagKey:checkout-button"), "active", &["checkout-color", "draft-one"]),
        (&["--archived"], None, "archived", &["retired"]),
        (&["--archived", "--status", "stopped"], Some("status:stopped"), "archived", &["retired"]),
    ] {
        let (run, lists) = list(&em, &ws, args);
        expect_code(&run, 0);
        assert_eq!(keys(&run.stdout), expected, "{args:?}:\n{}", run.stdout);
        assert_eq!(lists, [sent(ANY_ENV, filter, lifecycle)], "{args:?}");
    }

    // Several filters at once are one `filter`, as the contract writes it.
    let (run, lists) = list(&em, &ws, &["--status", "running", "--flag", "checkout-button", "--metric", "purchases"]);
    expect_code(&run, 0);
    assert_eq!(keys(&run.stdout), ["checkout-color"]);
    assert_eq!(lists, [sent(ANY_ENV, Some("status:running,flagKey:checkout-button,metricKey:purchases"), "active")]);

    // Nothing matches: said plainly, exit 0.
    let (run, _) = list(&em, &ws, &["--flag", "banner"]);
    expect_code(&run, 0);
    assert_eq!(run.stdout, "No experiments in project shop match: active, using flag banner.\n");

    // Environments: one listing each, with the same filter.
    let (run, lists) = list(&em, &ws, &["--environment", "staging"]);
    expect_code(&run, 0);
    assert_eq!(keys(&run.stdout), ["draft-one"]);
    assert_eq!(lists, [sent("/api/v2/projects/shop/environments/staging/experiments", None, "active")]);
    let (run, mut lists) =
        list(&em, &ws, &["--environment", "staging", "--environment", "production", "--status", "running"]);
    expect_code(&run, 0);
    assert_eq!(keys(&run.stdout), ["checkout-color"]);
    lists.sort();
    assert_eq!(
        lists,
        [
            sent("/api/v2/projects/shop/environments/production/experiments", Some("status:running"), "active"),
            sent("/api/v2/projects/shop/environments/staging/experiments", Some("status:running"), "active"),
        ]
    );
    let (run, _) = list(&em, &ws, &["--environment", "staging", "--archived"]);
    assert_eq!(run.stdout, "No experiments in shop/staging match: archived.\n");

    // What does not exist, or cannot be sent.
    let (run, _) = list(&em, &ws, &["--environment", "nowhere"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("error: environment shop/nowhere does not exist"), "{}", run.stderr);
    let run = ws.ldexp(&em, &["list", "experiments", "--project", "nope"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("error: project nope does not exist"), "{}", run.stderr);
    let (run, lists) = list(&em, &ws, &["--flag", "a,b"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("invalid value 'a,b' for '--flag <FLAG>': expected one key"), "{}", run.stderr);
    assert!(lists.is_empty());
    let (run, _) = list(&em, &ws, &["--status", "paused"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("[possible values: not_started, running, stopped]"), "{}", run.stderr);
}

#[test]
fn list_marks_what_specs_manage_in_each_format() {
    let (em, ws) = seeded();

    let (run, _) = list(&em, &ws, &["--specs", "specs"]);
    expect_code(&run, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().last(), Some("spec"), "{}", run.stdout);
    assert!(lines[1].starts_with("checkout-color  production   running      checkout-button  20"), "{}", run.stdout);
    assert!(lines[1].ends_with("  1           specs/checkout-color.yaml"), "{}", run.stdout);
    assert!(lines[2].starts_with("draft-one       staging      not_started  checkout-button  -  "), "{}", run.stdout);
    assert!(run.stdout.ends_with("2 experiments, 2 managed by a spec.\n"), "{}", run.stdout);

    let (run, _) = list(&em, &ws, &["--archived", "--specs", "specs"]);
    expect_code(&run, 0);
    let row = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("retired  production   stopped (archived)  checkout-button  20"), "{}", run.stdout);
    assert!(row.ends_with("  -"), "no spec manages it: {row}");
    assert!(run.stdout.ends_with("1 experiment, 0 managed by a spec.\n"), "{}", run.stdout);

    // JSON: the documented fields, `spec` only with --specs.
    let (run, _) = list(&em, &ws, &["--format", "json", "--specs", "specs", "--status", "running"]);
    expect_code(&run, 0);
    let mut doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let started = doc["experiments"][0]["startedAt"].take();
    let started = started.as_str().unwrap_or_default();
    assert!(started.len() == 20 && started.starts_with("20") && started.ends_with('Z'), "{started}");
    assert_eq!(
        doc,
        serde_json::json!({"project": "shop", "experiments": [{
            "key": "checkout-color", "environment": "production", "name": "Experiment checkout-color",
            "status": "running", "archived": false, "flags": ["checkout-button"], "startedAt": null,
            "iterations": 1, "spec": "specs/checkout-color.yaml"}]})
    );
    let (run, _) = list(&em, &ws, &["--format", "json", "--status", "not_started"]);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["experiments"][0]["startedAt"], Value::Null);
    assert!(doc["experiments"][0].get("spec").is_none(), "{doc}");
    let (run, _) = list(&em, &ws, &["--format", "json", "--flag", "banner"]);
    expect_code(&run, 0);
    assert_eq!(run.stdout, "{\n  \"project\": \"shop\",\n  \"experiments\": []\n}\n");

    // Markdown: a GitHub table.
    let (run, _) = list(&em, &ws, &["--format", "markdown", "--specs", "specs"]);
    expect_code(&run, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "| key | environment | status | flag | started | iterations | spec |");
    assert_eq!(lines[1], "|---|---|---|---|---|---:|---|");
    assert!(lines[2].starts_with("| `checkout-color` | production | running | `checkout-button` | 20"), "{}", lines[2]);
    assert!(lines[2].ends_with(" | 1 | `specs/checkout-color.yaml` |"), "{}", lines[2]);
    assert_eq!(
        lines[3],
        "| `draft-one` | staging | not_started | `checkout-button` | - | 1 | `specs/draft-one.yaml` |"
    );
    assert_eq!(&lines[4..], ["", "2 experiments, 2 managed by a spec."]);

    // Specs that do not load fail before any request.
    ws.write("bad/x.yaml", "kind: Experiment\nproject: shop\n");
    let (run, lists) = list(&em, &ws, &["--specs", "bad"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("bad/x.yaml"), "{}", run.stderr);
    assert!(lists.is_empty());
    ws.assert_no_canary();
}

/// `text` without the status comments `show` adds after the spec.
fn spec_part(text: &str) -> &str {
    text.split("# Status (read from LaunchDarkly; not part of the spec):\n").next().unwrap_or_default()
}

#[test]
fn show_prints_what_export_writes_then_the_status() {
    let (em, ws) = seeded();
    expect_code(&ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]), 0);
    let exported = |rel: &str| std::fs::read_to_string(ws.path().join("exported").join(rel)).expect(rel);

    let run = ws.ldexp(&em, &["show", "experiment/shop/production/checkout-color"]);
    expect_code(&run, 0);
    assert_eq!(spec_part(&run.stdout), exported("experiments/production/checkout-color.yaml"));
    let status: Vec<&str> = run.stdout[spec_part(&run.stdout).len()..].lines().collect();
    assert_eq!(status.len(), 5, "{}", run.stdout);
    assert!(status[1].starts_with("#   iteration 1 of 1: running since 20"), "{}", run.stdout);
    assert_eq!(&status[2..], ["#   treatments:", "#     Control  50%  baseline", "#     Green    50%"]);
    assert_eq!(run.stderr, "");

    // The output is still the spec: saved, it plans to nothing.
    ws.write("shown/checkout-color.yaml", &run.stdout);
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "shown"]);
    expect_code(&plan, 0);

    let run = ws.ldexp(&em, &["show", "experiment/shop/production/retired"]);
    expect_code(&run, 0);
    assert_eq!(spec_part(&run.stdout), exported("experiments/production/retired.yaml"));
    assert!(run.stdout.contains("\nstate: archived\n"), "{}", run.stdout);
    assert!(run.stdout.contains("\n#   archived since 20"), "{}", run.stdout);
    assert!(run.stdout.contains("\n#   iteration 1 of 1: stopped since 20"), "{}", run.stdout);
    assert!(run.stdout.contains("\n#     Control  50%  baseline, winner\n"), "{}", run.stdout);

    let run = ws.ldexp(&em, &["show", "experiment/shop/staging/draft-one"]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("#   iteration 1 of 1: not started (draft), created 20"), "{}", run.stdout);

    // The kinds without a status: exactly the file export writes.
    for (address, file) in [
        ("metric/shop/revenue", "metrics/revenue.yaml"),
        ("experimentation-settings/shop", "experimentation-settings.yaml"),
        ("legacy/shop/banner", "legacy/banner.yaml"),
    ] {
        let run = ws.ldexp(&em, &["show", address]);
        expect_code(&run, 0);
        assert_eq!(run.stdout, exported(file), "{address}");
    }

    // JSON: the spec and the status as data.
    let run = ws.ldexp(&em, &["show", "experiment/shop/production/checkout-color", "--format", "json"]);
    expect_code(&run, 0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["address"], "experiment/shop/production/checkout-color");
    assert_eq!((&doc["spec"]["kind"], &doc["spec"]["state"]), (&"Experiment".into(), &"running".into()));
    let it = &doc["status"]["iteration"];
    assert_eq!((&it["status"], &it["number"], &it["since"]), (&"running".into(), &1.into(), &it["startedAt"]));
    assert_eq!(
        it["treatments"][1],
        serde_json::json!({"name": "Green", "allocationPercent": "50", "baseline": false,
                                                       "winner": false})
    );
    let run = ws.ldexp(&em, &["show", "metric/shop/clicks", "--format", "json"]);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!((&doc["spec"]["kind"], &doc["status"]), (&"Metric".into(), &Value::Null));
    ws.assert_no_canary();
}

#[test]
fn show_names_an_address_with_nothing_behind_it_and_one_it_cannot_read() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let run = ws.ldexp(&em, &["show", "experiment/shop/production/nope"]);
    expect_code(&run, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: experiment/shop/production/nope does not exist in LaunchDarkly (it answered 404)\nhint: check the \
         project, environment and key; `ldexp list experiments --project shop --environment production` lists the \
         active experiments there, and with --archived the archived ones\n"
    );
    let run = ws.ldexp(&em, &["show", "metric/shop/nope", "--format", "json"]);
    expect_code(&run, 1);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(doc["error"]["message"], "metric/shop/nope does not exist in LaunchDarkly (it answered 404)");
    assert!(run.stderr.contains("hint: check the project and key"), "{}", run.stderr);
    let run = ws.ldexp(&em, &["show", "legacy/shop/checkout-button"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("a flag without legacy experiments has nothing to show"), "{}", run.stderr);

    let before = em.stats()["total"].clone();
    let run = ws.ldexp(&em, &["show", "flag/shop/banner"]);
    expect_code(&run, 1);
    assert_eq!(
        run.stderr,
        "error: `flag/shop/banner` is not an address show can read; it reads \
         experiment/<project>/<environment>/<key>, metric/<project>/<key>, metric-group/<project>/<key>, \
         experimentation-settings/<project>, legacy/<project>/<flag>, layer/<project>/<key>, \
         holdout/<project>/<environment>/<key>\n"
    );
    assert_eq!(em.stats()["total"], before, "a mistyped address sends nothing");
}

#[test]
fn the_token_never_appears_in_list_or_show_even_in_trace_logs_or_a_refusal() {
    let (em, ws) = seeded();
    for args in [
        &["list", "experiments", "--project", "shop", "-vv", "--specs", "specs", "--format", "json"][..],
        &["show", "-vv", "experiment/shop/production/checkout-color"],
        &["show", "-vv", "metric/shop/nope"],
    ] {
        let run = ws.ldexp(&em, args);
        assert!(run.code == 0 || args.contains(&"metric/shop/nope"), "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "trace logs were written: {args:?}");
    }
    // A token the emulator refuses: the 401 is reported, the token is not.
    let refused = format!("{}-refused", canary());
    for args in [&["list", "experiments", "--project", "shop"][..], &["show", "metric/shop/clicks"]] {
        let out = ws.command(&em, args).env("LD_ACCESS_TOKEN", &refused).output().expect("run ldexp");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("HTTP 401"), "{stderr}");
        assert!(!stdout.contains(canary()) && !stderr.contains(canary()), "the token leaked:\n{stdout}\n{stderr}");
    }
}
