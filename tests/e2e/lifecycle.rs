//! The lifecycle scenarios: an experiment from draft to restored, legacy flag experiments, prune,
//! multi-environment specs, export round-trip, and an exit code for each command.

use serde_json::Value;

use crate::specs::{Exp, Stage, legacy};
use crate::support::{Emulator, Workspace, expect_code};

const EXPAND: &str = "expand=draftIteration,previousIterations,treatments,secondaryMetrics";

fn experiment(em: &Emulator, env: &str, key: &str) -> Option<Value> {
    let (status, body) =
        em.http("GET", &format!("/api/v2/projects/shop/environments/{env}/experiments/{key}?{EXPAND}"), None, None);
    match status {
        200 => Some(serde_json::from_str(&body).expect("experiment JSON")),
        404 => None,
        s => panic!("GET experiment {key}: {s} {body}"),
    }
}

fn flag(em: &Emulator, key: &str) -> Value {
    let (status, body) = em.http("GET", &format!("/api/v2/flags/shop/{key}"), None, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("flag JSON")
}

/// Applies the specs of `ws` and checks the result is converged: a second plan is empty, exit 0.
#[track_caller]
fn apply_and_converge(ws: &Workspace, em: &Emulator) -> String {
    let run = ws.ldexp(em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    let again = ws.ldexp(em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&again, 0);
    assert!(again.stdout.contains("No changes. Remote matches the specs."), "{}", again.stdout);
    run.stdout
}

fn iterations(x: &Value) -> usize {
    x["previousIterations"].as_array().map_or(0, Vec::len)
        + usize::from(x.get("currentIteration").is_some())
        + usize::from(x.get("draftIteration").is_some())
}

#[test]
fn full_lifecycle_draft_start_restart_stop_archive_restore() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("checkout-color", &["production"]);

    // Draft: created with its draft iteration, not started.
    ws.write("specs/checkout.yaml", &e.yaml());
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 2);
    assert!(plan.stdout.contains("Plan: 1 to create, 0 to update, 0 to restart, 0 to archive."), "{}", plan.stdout);
    apply_and_converge(&ws, &em);
    let x = experiment(&em, "production", "checkout-color").expect("created");
    assert_eq!(x["draftIteration"]["status"], "not_started");
    assert!(x.get("currentIteration").is_none());

    // Start.
    e.stage = Stage::Running;
    ws.write("specs/checkout.yaml", &e.yaml());
    apply_and_converge(&ws, &em);
    let x = experiment(&em, "production", "checkout-color").expect("exists");
    assert_eq!(x["currentIteration"]["status"], "running");
    let first_iteration = x["currentIteration"]["_id"].clone();

    // A design change while running restarts, with the justification, into a new iteration.
    e.three_way = true;
    e.justification = Some("add a blue variant".into());
    ws.write("specs/checkout.yaml", &e.yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("1 to restart"), "{}", plan.stdout);
    apply_and_converge(&ws, &em);
    let x = experiment(&em, "production", "checkout-color").expect("exists");
    assert_eq!(x["currentIteration"]["status"], "running");
    assert_ne!(x["currentIteration"]["_id"], first_iteration);
    assert_eq!(x["currentIteration"]["treatments"].as_array().map(Vec::len), Some(3));
    assert_eq!(x["previousIterations"][0]["status"], "stopped");
    assert_eq!(iterations(&x), 2);

    // Stop with a winner.
    e.stage = Stage::Stopped;
    e.winner = Some("Green");
    ws.write("specs/checkout.yaml", &e.yaml());
    apply_and_converge(&ws, &em);
    let x = experiment(&em, "production", "checkout-color").expect("exists");
    assert_eq!(x["currentIteration"]["status"], "stopped");
    let winner = x["currentIteration"]["winningTreatmentId"].clone();
    let green = x["currentIteration"]["treatments"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "Green"))
        .map(|t| t["_id"].clone());
    assert_eq!(Some(winner), green);

    // Archive, then restore to stopped.
    e.stage = Stage::Archived;
    ws.write("specs/checkout.yaml", &e.yaml());
    apply_and_converge(&ws, &em);
    assert!(experiment(&em, "production", "checkout-color").expect("exists").get("archivedDate").is_some());
    e.stage = Stage::Stopped;
    ws.write("specs/checkout.yaml", &e.yaml());
    let out = apply_and_converge(&ws, &em);
    assert!(out.contains("[restore]"), "{out}");
    let x = experiment(&em, "production", "checkout-color").expect("exists");
    assert!(x.get("archivedDate").is_none());
    assert_eq!(iterations(&x), 2, "no iteration was added by stop, archive or restore");
    ws.assert_no_canary();
}

#[test]
fn legacy_add_env_baseline_remove() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    // The seed's state: clicks recording in production, baseline `hidden`.
    ws.write("specs/banner.yaml", &legacy("hidden", &[("clicks", &["production"])]));
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 0);

    type Metrics<'a> = &'a [(&'a str, &'a [&'a str])];
    let steps: [(&str, Metrics); 4] = [
        ("hidden", &[("clicks", &["production"]), ("purchases", &[])]),
        ("hidden", &[("clicks", &["production", "staging"]), ("purchases", &[])]),
        ("shown", &[("clicks", &["production", "staging"]), ("purchases", &[])]),
        ("shown", &[("purchases", &[])]),
    ];
    for (baseline, metrics) in steps {
        ws.write("specs/banner.yaml", &legacy(baseline, metrics));
        let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
        expect_code(&plan, 2);
        assert!(plan.stdout.contains("1 legacy flag to patch"), "{}", plan.stdout);
        apply_and_converge(&ws, &em);
        let f = flag(&em, "banner");
        let items = f["experiments"]["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), metrics.len(), "{f}");
        for (m, envs) in metrics {
            let item = items.iter().find(|i| i["metricKey"] == *m).unwrap_or_else(|| panic!("{m} missing: {f}"));
            let mut got: Vec<&str> =
                item["environments"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            got.sort();
            assert_eq!(got, *envs);
        }
        assert_eq!(f["experiments"]["baselineIdx"], if baseline == "shown" { 1 } else { 0 });
    }
    ws.assert_no_canary();
}

#[test]
fn multi_environment_specs_and_prune() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut both = Exp::new("banner-copy", &["production", "staging"]);
    both.stage = Stage::Running;
    ws.write("specs/both.yaml", &both.yaml());
    ws.write("specs/old.yaml", &Exp::new("old-promo", &["staging"]).yaml());
    apply_and_converge(&ws, &em);
    for env in ["production", "staging"] {
        let x = experiment(&em, env, "banner-copy").unwrap_or_else(|| panic!("missing in {env}"));
        assert_eq!(x["currentIteration"]["status"], "running");
    }

    // old-promo leaves the specs: without --prune it is only reported; with it, archived.
    ws.remove("specs/old.yaml");
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("old-promo"), "unmanaged experiments are listed: {}", plan.stdout);
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "--prune", "specs"]);
    expect_code(&plan, 2);
    assert!(plan.stdout.contains("1 to archive"), "{}", plan.stdout);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "--prune", "specs"]), 0);
    assert!(experiment(&em, "staging", "old-promo").expect("kept").get("archivedDate").is_some());
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "--prune", "specs"]), 0);
    ws.assert_no_canary();
}

#[test]
fn export_round_trips_to_an_empty_plan() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut a = Exp::new("checkout-color", &["production"]);
    a.stage = Stage::Running;
    ws.write("specs/a.yaml", &a.yaml());
    ws.write("specs/b.yaml", &Exp::new("draft-one", &["staging"]).yaml());
    apply_and_converge(&ws, &em);

    // No `--flag banner`: no experiment uses `banner`, and its legacy experiments are found through the flag list.
    // Every kind by default: the two experiments, the legacy experiments, the three metrics and the settings (the
    // seed has no metric group).
    let run = ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]);
    expect_code(&run, 0);
    assert_eq!(run.stderr, "Wrote 7 file(s) to exported.\n");
    assert_eq!(
        walk(&ws.path().join("exported")).into_iter().filter(|p| p.ends_with(".yaml")).collect::<Vec<_>>(),
        [
            "experimentation-settings.yaml",
            "experiments/production/checkout-color.yaml",
            "experiments/staging/draft-one.yaml",
            "legacy/banner.yaml",
            "metrics/clicks.yaml",
            "metrics/purchases.yaml",
            "metrics/revenue.yaml",
        ]
    );
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "exported"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    let listed = em.stats()["byRoute"]["GET /api/v2/flags/{projectKey}"].as_u64();
    assert_eq!(listed, Some(1), "one page of the flag list: {}", em.stats());

    // Again into the same directory: identical files are left alone.
    let again = ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]);
    expect_code(&again, 0);
    assert_eq!(again.stderr, "Wrote 0 file(s) to exported; 7 already up to date.\n");

    // A file edited locally is not overwritten without --force: its diff is shown and nothing at all is written,
    // not even a file that is missing.
    let banner = ws.path().join("exported/legacy/banner.yaml");
    let exported = std::fs::read_to_string(&banner).unwrap();
    let edited = exported.replace("environments:\n  - production", "environments:\n  - production\n  - staging");
    assert_ne!(edited, exported);
    std::fs::write(&banner, &edited).unwrap();
    ws.remove("exported/experiments/staging/draft-one.yaml");
    let refused = ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]);
    expect_code(&refused, 1);
    for line in ["--- legacy/banner.yaml (local)\n", "+++ legacy/banner.yaml (export)\n", "\n-  - staging\n"] {
        assert!(refused.stderr.contains(line), "missing {line:?} in:\n{}", refused.stderr);
    }
    assert!(refused.stderr.contains("1 file(s) in exported differ") && refused.stderr.contains("--force"));
    assert_eq!(std::fs::read_to_string(&banner).unwrap(), edited);
    assert!(!ws.path().join("exported/experiments/staging/draft-one.yaml").exists());
    let forced = ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported", "--force"]);
    expect_code(&forced, 0);
    assert_eq!(forced.stderr, "Wrote 2 file(s) to exported; 5 already up to date.\n");
    assert_eq!(std::fs::read_to_string(&banner).unwrap(), exported);
    assert!(ws.path().join("exported/experiments/staging/draft-one.yaml").is_file());

    // All or nothing: a directory where a file must go fails the export before anything is written.
    std::fs::create_dir_all(ws.path().join("blocked/legacy/banner.yaml")).unwrap();
    let blocked = ws.ldexp(&em, &["export", "--project", "shop", "--out", "blocked"]);
    expect_code(&blocked, 1);
    assert!(blocked.stderr.contains("banner.yaml is a directory"), "{}", blocked.stderr);
    let left: Vec<_> = walk(&ws.path().join("blocked"));
    assert_eq!(left, ["legacy", "legacy/banner.yaml"], "nothing written, no temporary file left");

    let per_env = ws.ldexp(&em, &["export", "--project", "shop", "--environment", "staging", "--out", "staging-only"]);
    expect_code(&per_env, 0);
    assert!(ws.path().join("staging-only/experiments/staging/draft-one.yaml").is_file());
    assert!(!ws.path().join("staging-only/experiments/production").exists());
    ws.assert_no_canary();
}

/// Every path under `dir`, relative, sorted.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn exit_codes_of_every_command() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("checkout-color", &["production"]);
    e.stage = Stage::Running;
    ws.write("specs/a.yaml", &e.yaml());

    // plan: 0 without --detailed-exitcode, 2 with it when there are changes; the JSON plan is saved.
    expect_code(&ws.ldexp(&em, &["plan", "specs"]), 0);
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "--format", "json", "--out", "plan.json", "specs"]);
    expect_code(&plan, 2);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(ws.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&plan.stdout).unwrap(), saved);
    assert_eq!(saved["summary"]["create"], 1);
    let md = ws.ldexp(&em, &["plan", "--format", "markdown", "specs"]);
    expect_code(&md, 0);
    assert!(md.stdout.contains("checkout-color"), "{}", md.stdout);

    // drift: 2 while the remote differs.
    let drift = ws.ldexp(&em, &["drift", "--format", "json", "specs"]);
    expect_code(&drift, 2);
    serde_json::from_str::<Value>(&drift.stdout).expect("the drift report is JSON");

    // apply: refuses without a terminal or --auto-approve (1, nothing sent), applies a saved plan (0).
    let refused = ws.ldexp(&em, &["apply", "specs"]);
    expect_code(&refused, 1);
    assert!(refused.stderr.contains("--auto-approve"), "{}", refused.stderr);
    assert!(experiment(&em, "production", "checkout-color").is_none());
    expect_code(&ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["drift", "specs"]), 0);

    // A saved plan applied twice: every request already took effect, so nothing is sent and it says so.
    let again = ws.ldexp(&em, &["apply", "--plan", "plan.json", "specs"]);
    expect_code(&again, 0);
    assert!(again.stdout.contains("partially applied before"), "{}", again.stdout);

    // drift on a remote change made outside ldexp: 2, naming the field; plan/apply/drift: 1 on a bad reference.
    let (status, body) = em.http(
        "PATCH",
        "/api/v2/projects/shop/environments/production/experiments/checkout-color",
        Some("application/json; domain-model=launchdarkly.semanticpatch"),
        Some(r#"{"instructions":[{"kind":"updateName","value":"Renamed in the UI"}]}"#),
    );
    assert_eq!(status, 200, "{body}");
    let drift = ws.ldexp(&em, &["drift", "--format", "json", "specs"]);
    expect_code(&drift, 2);
    assert!(drift.stdout.contains("Renamed in the UI"), "{}", drift.stdout);
    ws.write("specs/bad.yaml", &Exp::new("bad", &["nowhere"]).yaml());
    for cmd in ["plan", "drift"] {
        let run = ws.ldexp(&em, &[cmd, "specs"]);
        expect_code(&run, 1);
        assert!(run.stderr.contains("nowhere"), "{cmd}: {}", run.stderr);
    }
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 1);
    ws.remove("specs/bad.yaml");

    // results: the emulator serves deterministic synthetic results per metric of the current iteration.
    let results = ws
        .ldexp(&em, &["results", "--project", "shop", "--environment", "production", "--experiment", "checkout-color"]);
    expect_code(&results, 0);
    for line in [
        "Experiment shop/production/checkout-color, iteration ",
        "Metric purchases\n  treatment  mean    credible interval  pBest  units\n  Control ",
        "Metric revenue\n",
        "\n  Green ",
    ] {
        assert!(results.stdout.contains(line), "missing {line:?} in:\n{}", results.stdout);
    }
    let one = ["results", "--project", "shop", "--environment", "production", "--experiment", "checkout-color"];
    let revenue = ws.ldexp(&em, &[&one[..], &["--metric", "revenue"]].concat());
    expect_code(&revenue, 0);
    assert!(revenue.stdout.contains("Metric revenue\n") && !revenue.stdout.contains("Metric purchases"));
    // A metric of the project that this experiment does not measure: named as such, with the ones it does.
    let unused = ws.ldexp(&em, &[&one[..], &["--metric", "clicks"]].concat());
    expect_code(&unused, 1);
    assert!(unused.stdout.is_empty(), "{}", unused.stdout);
    assert!(
        unused
            .stderr
            .starts_with("error: metric `clicks` is not in experiment shop/production/checkout-color (iteration "),
        "{}",
        unused.stderr
    );
    assert!(unused.stderr.contains("it measures purchases and revenue;"), "{}", unused.stderr);
    assert!(!unused.stderr.contains("deprecated"), "{}", unused.stderr);
    let missing =
        ws.ldexp(&em, &["results", "--project", "shop", "--environment", "production", "--experiment", "nope"]);
    expect_code(&missing, 1);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    let reset = ws.ldexp(
        &em,
        &[
            "results",
            "reset-legacy",
            "--project",
            "shop",
            "--environment",
            "production",
            "--flag",
            "banner",
            "--metric",
            "clicks",
        ],
    );
    expect_code(&reset, 1);
    assert!(reset.stderr.contains("--yes"), "{}", reset.stderr);
    let reset = ws.ldexp(
        &em,
        &[
            "results",
            "reset-legacy",
            "--project",
            "shop",
            "--environment",
            "production",
            "--flag",
            "banner",
            "--metric",
            "clicks",
            "--yes",
        ],
    );
    expect_code(&reset, 0);
    assert_eq!(reset.stdout, "Reset the legacy results of flag shop/banner, metric clicks in production.\n");
    assert_eq!(em.state()["projects"]["shop"]["legacyResets"]["banner/production/clicks"], 1);
    let legacy = ws.ldexp(
        &em,
        &["results", "--project", "shop", "--environment", "production", "--flag", "banner", "--metric", "clicks"],
    );
    expect_code(&legacy, 0);
    for line in [
        "Legacy experiment on flag banner, metric clicks, environment production\n",
        "  variation    conversions  conversion rate  improvement  p-value\n  variation 0 ",
        "\n  variation 1 ",
        "\nWinning variation: ",
    ] {
        assert!(legacy.stdout.contains(line), "missing {line:?} in:\n{}", legacy.stdout);
    }

    // Trace logging shows requests, never the token (the runner checks every run's output for the canary).
    let traced = ws.ldexp(&em, &["-vv", "plan", "specs"]);
    expect_code(&traced, 0);
    assert!(traced.stderr.contains("/api/v2/"), "trace logs name the requests: {}", traced.stderr);

    // export of a project that does not exist; the emulator with a missing seed.
    let none = ws.ldexp(&em, &["export", "--project", "nope", "--out", "none"]);
    expect_code(&none, 1);
    assert!(none.stderr.contains("project nope does not exist"), "{}", none.stderr);
    let bad_seed = ws.ldexp(&em, &["emulator", "--seed", "missing.yaml"]);
    expect_code(&bad_seed, 1);
    assert!(bad_seed.stderr.contains("missing.yaml"), "{}", bad_seed.stderr);

    // completions and a missing token.
    let bash = ws.ldexp(&em, &["completions", "bash"]);
    expect_code(&bash, 0);
    assert!(bash.stdout.contains("ldexp"), "{}", bash.stdout);
    let out = ws.command(&em, &["plan", "specs"]).env_remove("LD_ACCESS_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LD_ACCESS_TOKEN"));
    ws.assert_no_canary();
}
