//! Layers and holdouts end to end: a layer whose experiments come and go, and a holdout that is created, joined
//! by a new experiment and ended, each step applied by the real binary and followed by an empty plan.

use serde_json::Value;

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Workspace, expect_code};

const LAYER: &str = "kind: Layer\nproject: shop\nkey: checkout-surface\nname: Checkout surface\n\
                     description: Experiments on the checkout page share this layer.\n";

const HOLDOUT: &str = "kind: Holdout\nproject: shop\nenvironment: production\nkey: q4-holdout\nname: Q4 holdout\n\
                       randomizationUnit: user\nholdoutAmount: 5\nprimaryMetric: purchases\nmetrics: [purchases]\n";

/// Applies the specs and checks that the next plan is empty.
#[track_caller]
fn apply_and_converge(ws: &Workspace, em: &Emulator) -> String {
    let run = ws.ldexp(em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    let again = ws.ldexp(em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&again, 0);
    assert!(again.stdout.contains("No changes. Remote matches the specs."), "{}", again.stdout);
    run.stdout
}

fn running<'a>(key: &'a str, lane: &'a str) -> Exp<'a> {
    let mut e = Exp::new(key, &["production"]).on_lane(lane);
    e.stage = Stage::Running;
    e
}

fn in_layer(e: &Exp<'_>, percent: u8) -> String {
    format!("{}layer: {{key: checkout-surface, reservationPercent: {percent}}}\n", e.yaml())
}

/// The layer's reservations in production, as `(experiment, percent)` in key order.
fn reservations(em: &Emulator) -> Vec<(String, i64)> {
    let (status, body) = em.http("GET", "/api/v2/projects/shop/layers", None, None);
    assert_eq!(status, 200, "{body}");
    let layers: Value = serde_json::from_str(&body).unwrap();
    let layer = layers["items"].as_array().unwrap().iter().find(|l| l["key"] == "checkout-surface").unwrap();
    let mut out: Vec<(String, i64)> = layer["environments"]["production"]["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["experimentKey"].as_str().unwrap().to_owned(), r["reservationPercent"].as_i64().unwrap()))
        .collect();
    out.sort();
    out
}

fn holdout(em: &Emulator) -> Value {
    let (status, body) =
        em.http("GET", "/api/v2/projects/shop/environments/production/holdouts/q4-holdout", None, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_layer_whose_experiments_leave_and_join() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let (a, b, c) = (running("exp-a", "lane-1"), running("exp-b", "lane-2"), running("exp-c", "lane-3"));

    // The layer and two experiments at 40 and 30, created and started inside it in one apply.
    ws.write("specs/layer.yaml", LAYER);
    ws.write("specs/a.yaml", &in_layer(&a, 40));
    ws.write("specs/b.yaml", &in_layer(&b, 30));
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("layer/shop/checkout-surface"), "{}", plan.stdout);
    apply_and_converge(&ws, &em);
    assert_eq!(reservations(&em), [("exp-a".to_owned(), 40), ("exp-b".to_owned(), 30)]);

    // exp-a leaves the layer and exp-c joins it at 30: the plan shows both, the next plan is empty.
    ws.write("specs/a.yaml", &a.yaml());
    ws.write("specs/c.yaml", &in_layer(&c, 30));
    apply_and_converge(&ws, &em);
    assert_eq!(reservations(&em), [("exp-b".to_owned(), 30), ("exp-c".to_owned(), 30)]);

    // A colleague moves exp-c's reservation in the UI: drift reports it, and apply moves it back.
    let body = r#"{"environmentKey":"production","instructions":[{"kind":"updateExperimentReservation","experimentKey":"exp-c","reservationPercent":20}]}"#;
    let semantic = "application/json; domain-model=launchdarkly.semanticpatch";
    let (status, answer) =
        em.http("PATCH", "/api/v2/projects/shop/layers/checkout-surface", Some(semantic), Some(body));
    assert_eq!(status, 200, "{answer}");
    let drift = ws.ldexp(&em, &["drift", "specs"]);
    expect_code(&drift, 2);
    assert!(drift.stdout.contains("exp-c") && drift.stdout.contains("layer.checkout-surface"), "{}", drift.stdout);
    apply_and_converge(&ws, &em);
    assert_eq!(reservations(&em), [("exp-b".to_owned(), 30), ("exp-c".to_owned(), 30)]);

    // Raising exp-c past what the layer has left is refused at plan time, with nothing sent.
    ws.write("specs/c.yaml", &in_layer(&c, 80));
    let refused = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&refused, 1);
    assert!(refused.stderr.contains("add up to 110%"), "{}", refused.stderr);
    assert!(refused.stderr.contains("specs/b.yaml:"), "the refusal names a spec of the layer: {}", refused.stderr);

    // Archiving exp-b drops its reservation before the archive.
    ws.write("specs/c.yaml", &in_layer(&c, 30));
    let mut archived = b.clone();
    archived.stage = Stage::Archived;
    archived.winner = Some("Green");
    ws.write("specs/b.yaml", &in_layer(&archived, 30));
    apply_and_converge(&ws, &em);
    assert_eq!(reservations(&em), [("exp-c".to_owned(), 30)]);
    exported_plans_empty(&ws, &em, "checkout-surface.yaml");
    let shown = shown_plans_empty(&ws, &em, &["layer/shop/checkout-surface", "experiment/shop/production/exp-c"]);
    assert!(shown[0].contains("kind: Layer") && shown[0].contains("name: Checkout surface"), "{}", shown[0]);
    assert!(shown[1].contains("key: checkout-surface") && shown[1].contains("reservationPercent: 30"), "{}", shown[1]);
    ws.assert_no_canary();
}

/// Exports the project and plans the export: empty, with the layer or holdout written as `file`.
#[track_caller]
fn exported_plans_empty(ws: &Workspace, em: &Emulator, file: &str) {
    let export = ws.ldexp(em, &["export", "--project", "shop", "--out", "exported"]);
    expect_code(&export, 0);
    let written: Vec<String> = walk(&ws.path().join("exported"));
    assert!(written.iter().any(|f| f.ends_with(file)), "{written:?}");
    let plan = ws.ldexp(em, &["plan", "--detailed-exitcode", "exported"]);
    expect_code(&plan, 0);
}

/// `ldexp show` of each address, each saved as a spec and planned alone: empty. Returns what was shown.
#[track_caller]
fn shown_plans_empty(ws: &Workspace, em: &Emulator, addresses: &[&str]) -> Vec<String> {
    let mut shown = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let run = ws.ldexp(em, &["show", address]);
        expect_code(&run, 0);
        let dir = format!("shown-{i}");
        ws.write(&format!("{dir}/spec.yaml"), &run.stdout);
        let plan = ws.ldexp(em, &["plan", "--detailed-exitcode", &dir]);
        expect_code(&plan, 0);
        shown.push(run.stdout);
    }
    shown
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn a_holdout_created_joined_and_ended() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();

    // The holdout and an experiment created in it, in one apply: the experiment's holdoutId is the new holdout's.
    ws.write("specs/holdout.yaml", HOLDOUT);
    let d = running("exp-d", "lane-4");
    ws.write("specs/d.yaml", &format!("{}holdout: q4-holdout\n", d.yaml()));
    apply_and_converge(&ws, &em);
    let h = holdout(&em);
    let members: Vec<&str> =
        h["relatedExperiments"].as_array().unwrap().iter().filter_map(|e| e["key"].as_str()).collect();
    assert_eq!(members, ["exp-d"]);
    assert_eq!(h["status"], "running");

    // A rename, then the end: ended is final.
    ws.write("specs/holdout.yaml", &format!("{}state: ended\n", HOLDOUT.replace("Q4 holdout", "Q4 holdout (final)")));
    apply_and_converge(&ws, &em);
    let h = holdout(&em);
    assert_eq!(h["status"], "ended");
    assert_eq!(h["baseExperiment"]["name"], "Q4 holdout (final)");
    ws.write("specs/holdout.yaml", HOLDOUT);
    let back = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&back, 1);
    assert!(back.stderr.contains("ending a holdout is final"), "{}", back.stderr);
    exported_plans_empty(&ws, &em, "q4-holdout.yaml");
    let shown =
        shown_plans_empty(&ws, &em, &["holdout/shop/production/q4-holdout", "experiment/shop/production/exp-d"]);
    assert!(shown[0].contains("kind: Holdout") && shown[0].contains("state: ended"), "{}", shown[0]);
    assert!(shown[0].contains("Q4 holdout (final)"), "{}", shown[0]);
    assert!(shown[1].contains("holdout: q4-holdout"), "{}", shown[1]);
    let missing = ws.ldexp(&em, &["show", "holdout/shop/production/no-such-holdout"]);
    expect_code(&missing, 1);
    ws.assert_no_canary();
}
