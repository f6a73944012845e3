//! `ldexp export --kinds`: each kind alone reads only its routes and writes only its files; the catalog kinds plan
//! empty; a metric the spec format cannot express fails the export, naming it. (The whole export, every kind at
//! once, is `lifecycle::export_round_trips_to_an_empty_plan`.)

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Emulator, Workspace, expect_code};

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The API requests the emulator served, by route.
fn routes(em: &Emulator) -> Vec<(String, u64)> {
    let stats = em.stats();
    let by_route = stats["byRoute"].as_object().cloned().unwrap_or_default();
    by_route.into_iter().map(|(k, v)| (k, v.as_u64().unwrap_or(0))).collect()
}

#[test]
fn export_kinds_metrics_writes_only_metrics_and_reads_only_the_metric_list() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let run = ws.ldexp(&em, &["export", "--project", "shop", "--kinds", "metrics", "--out", "exported"]);
    expect_code(&run, 0);
    assert_eq!(run.stderr, "Wrote 3 file(s) to exported.\n");
    assert_eq!(
        files(&ws.path().join("exported")),
        ["metrics/clicks.yaml", "metrics/purchases.yaml", "metrics/revenue.yaml"]
    );
    assert_eq!(
        routes(&em),
        [("GET /api/v2/metrics/{projectKey}".to_owned(), 1)],
        "no experiment, flag, group or settings read"
    );
    let revenue = std::fs::read_to_string(ws.path().join("exported/metrics/revenue.yaml")).unwrap();
    for line in [
        "kind: Metric\n",
        "eventKind: custom\n",
        "eventKey: revenue\n",
        "isNumeric: true\n",
        "successCriteria: HigherThanBaseline\n",
        "unitAggregationType: sum\n",
    ] {
        assert!(revenue.contains(line), "{line:?} missing in:\n{revenue}");
    }

    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "exported"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("No changes. Remote matches the specs."), "{}", plan.stdout);
    ws.assert_no_canary();
}

#[test]
fn export_kinds_comma_separated_and_repeated_write_the_settings_and_legacy_experiments() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let args = ["export", "--project", "shop", "--kinds", "settings,metricGroups", "--kinds", "legacy", "--out", "x"];
    let run = ws.ldexp(&em, &args);
    expect_code(&run, 0);
    // The seed has no metric group: its list is read, and nothing is written for it.
    assert_eq!(files(&ws.path().join("x")), ["experimentation-settings.yaml", "legacy/banner.yaml"]);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("x/experimentation-settings.yaml")).unwrap(),
        "# yaml-language-server: $schema=https://raw.githubusercontent.com/ldexp/ldexp/main/schema/ldexp.schema.json\n\
         kind: ExperimentationSettings\nproject: shop\nrandomizationUnits:\n- randomizationUnit: user\n  default: true\n"
    );
    let read: Vec<String> = routes(&em).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        read,
        [
            "GET /api/v2/flags/{projectKey}",
            "GET /api/v2/projects/{projectKey}/experimentation-settings",
            "GET /api/v2/projects/{projectKey}/metric-groups",
        ]
    );
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "x"]);
    expect_code(&plan, 0);

    let bad = ws.ldexp(&em, &["export", "--project", "shop", "--kinds", "segments"]);
    expect_code(&bad, 1);
    assert!(bad.stderr.contains("invalid value 'segments' for '--kinds <KIND>'"), "{}", bad.stderr);
    ws.assert_no_canary();
}

#[test]
fn export_refuses_a_metric_the_spec_format_cannot_express_and_writes_nothing() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    // Someone gave `clicks` a browser shape no spec can write: a pageview metric matched by a glob.
    let mut state = em.state();
    let metrics = state.pointer_mut("/projects/shop/metrics").and_then(Value::as_array_mut).expect("metrics");
    let clicks = metrics.iter_mut().find(|m| m["key"] == "clicks").expect("clicks");
    clicks["kind"] = json!("pageview");
    clicks["urls"] = json!([{"kind": "glob", "glob": "/shop/*"}]);
    if let Some(m) = clicks.as_object_mut() {
        m.remove("eventKey");
    }
    let (status, body) = em.http("PUT", "/_emulator/state", Some("application/json"), Some(&state.to_string()));
    assert_eq!(status, 200, "{body}");

    let run = ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]);
    expect_code(&run, 1);
    assert!(
        run.stderr.contains(
            "error: metric shop/clicks: cannot export: its urls entry 1 `{\"glob\":\"/shop/*\",\"kind\":\"glob\"}` is \
             not a matcher a spec can write"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 object(s) cannot be exported; nothing was written to exported"), "{}", run.stderr);
    assert!(!ws.path().join("exported").exists());

    // The other kinds still export.
    let rest = ["export", "--project", "shop", "--kinds", "experiments,legacy,metricGroups,settings", "--out", "rest"];
    expect_code(&ws.ldexp(&em, &rest), 0);
    assert_eq!(files(&ws.path().join("rest")), ["experimentation-settings.yaml", "legacy/banner.yaml"]);
    ws.assert_no_canary();
}
