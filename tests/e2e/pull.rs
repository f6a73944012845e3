//! `ldexp pull` against the emulator: the UI's changes come back into a hand-formatted spec, byte for byte
//! elsewhere, and the plan is empty afterwards.

use crate::support::{Emulator, Workspace, expect_code};

const SPEC: &str = "# Checkout colour: hand-written, with comments.\n\
kind: Experiment\n\
project: shop\n\
environment: production\n\
key: checkout-color\n\
name: \"Checkout colour\"   # quoted on purpose\n\
description: 'Before the UI'\n\
state: draft\n\
iteration:\n\
\x20 hypothesis: A green checkout button converts better.\n\
\x20 primaryMetric: purchases\n\
\x20 metrics: [purchases, revenue]\n\
\x20 flags:\n\
\x20   checkout-button:\n\
\x20     rule: fallthrough\n\
\x20 treatments:\n\
\x20   - name: Control\n\
\x20     baseline: true\n\
\x20     allocationPercent: 50   # even split, for now\n\
\x20     variations: {checkout-button: control}\n\
\x20   - name: Green\n\
\x20     allocationPercent: 50\n\
\x20     variations: {checkout-button: green}\n";

#[test]
fn pull_brings_the_uis_changes_back_and_plans_empty() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/checkout.yaml", SPEC);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);

    // A colleague moves the allocation (applied from their own copy), then renames and redescribes it in the UI.
    ws.write(
        "theirs/checkout.yaml",
        &SPEC.replace("50   #", "30   #").replace("allocationPercent: 50\n", "allocationPercent: 70\n"),
    );
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "theirs"]), 0);
    let (status, body) = em.http(
        "PATCH",
        "/api/v2/projects/shop/environments/production/experiments/checkout-color",
        Some("application/json; domain-model=launchdarkly.semanticpatch"),
        Some(
            r#"{"instructions":[{"kind":"updateName","value":"Checkout's colour"},
                {"kind":"updateDescription","value":"Set in the UI: green or blue?"}]}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 2);

    // --dry-run: the diff, and nothing written.
    let dry = ws.ldexp(&em, &["pull", "--dry-run", "specs"]);
    expect_code(&dry, 0);
    for line in [
        "-name: \"Checkout colour\"   # quoted on purpose",
        "+name: \"Checkout's colour\"   # quoted on purpose",
        "+description: 'Set in the UI: green or blue?'",
        "+      allocationPercent: 30   # even split, for now",
        "+      allocationPercent: 70",
    ] {
        assert!(dry.stdout.contains(line), "missing {line:?} in:\n{}", dry.stdout);
    }
    assert_eq!(std::fs::read_to_string(ws.path().join("specs/checkout.yaml")).unwrap(), SPEC);

    // pull: only those values change; every other byte stays.
    let run = ws.ldexp(&em, &["pull", "specs"]);
    expect_code(&run, 0);
    assert!(run.stderr.contains("Rewrote 4 value(s) in 1 file(s)."), "{}", run.stderr);
    let after = std::fs::read_to_string(ws.path().join("specs/checkout.yaml")).unwrap();
    let expected = SPEC
        .replace("\"Checkout colour\"", "\"Checkout's colour\"")
        .replace("'Before the UI'", "'Set in the UI: green or blue?'")
        .replace("50   #", "30   #")
        .replace("allocationPercent: 50\n", "allocationPercent: 70\n");
    assert_eq!(after, expected);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);

    // Nothing left to pull: exit 0, nothing written.
    let again = ws.ldexp(&em, &["pull", "specs"]);
    expect_code(&again, 0);
    assert!(again.stderr.contains("Rewrote 0 value(s) in 0 file(s)."), "{}", again.stderr);
    ws.assert_no_canary();
}

#[test]
fn a_treatment_added_elsewhere_is_not_pulled_and_nothing_is_written() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/checkout.yaml", SPEC);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    let three = SPEC.replace("allocationPercent: 50   #", "allocationPercent: 34   #").replace(
        "      allocationPercent: 50\n      variations: {checkout-button: green}\n",
        "      allocationPercent: 33\n      variations: {checkout-button: green}\n    - name: Blue\n      \
         allocationPercent: 33\n      variations: {checkout-button: blue}\n",
    );
    ws.write("theirs/checkout.yaml", &three);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "theirs"]), 0);
    let run = ws.ldexp(&em, &["pull", "specs"]);
    expect_code(&run, 1);
    assert!(
        run.stderr.contains("specs/checkout.yaml:2:1: experiment/shop/production/checkout-color: not pulled"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`iteration.treatments` has 3 item(s) in LaunchDarkly and 2 in the spec"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(ws.path().join("specs/checkout.yaml")).unwrap(), SPEC);
    ws.assert_no_canary();
}
