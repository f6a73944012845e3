//! Pull's rewriting against golden files: a spec with comments and odd formatting, before and after.

use super::*;
use crate::percent::Percent;

const BEFORE: &str = include_str!("golden/before.yaml");
const AFTER: &str = include_str!("golden/after.yaml");

/// The remote's view: the spec as loaded, changed as someone would in the UI.
fn remote_of(
    text: &str,
    change: impl Fn(&mut ExperimentSpec),
) -> impl Fn(&ExperimentSpec) -> Result<Vec<ExperimentSpec>, String> {
    let set = load_str("before.yaml", text).expect("the golden file loads");
    move |spec: &ExperimentSpec| {
        let mut remote = set.experiments.iter().find(|l| l.spec.key == spec.key).map(|l| l.spec.clone());
        if let Some(r) = remote.as_mut().filter(|r| r.key == "checkout-color") {
            change(r);
        }
        Ok(remote.into_iter().collect())
    }
}

fn ui_edits(r: &mut ExperimentSpec) {
    r.name = "Checkout's colour".to_owned();
    r.description = Some("Green or blue: which sells more?".to_owned());
    r.tags = Some(vec!["checkout".to_owned(), "colour".to_owned(), "ui".to_owned()]);
    r.iteration.hypothesis = "Green sells more # maybe".to_owned();
    r.iteration.treatments[0].allocation_percent = Percent::new(30.0).unwrap();
    r.iteration.treatments[1].allocation_percent = Percent::new(70.0).unwrap();
}

#[test]
fn rewrites_only_the_changed_values_in_their_own_style() {
    let pulled = pull_text("before.yaml", BEFORE, &remote_of(BEFORE, ui_edits)).unwrap();
    if std::env::var_os("LDEXP_BLESS").is_some() {
        std::fs::write("src/pull/golden/after.yaml", &pulled.text).unwrap();
    }
    assert_eq!(pulled.skipped, []);
    assert_eq!(pulled.text, AFTER);
    let fields: Vec<&str> = pulled.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "description",
            "tags",
            "iteration.hypothesis",
            "iteration.treatments[0].allocationPercent",
            "iteration.treatments[1].allocationPercent"
        ]
    );
    // Pulling again changes nothing: the rewritten file is the remote's.
    let again = pull_text("after.yaml", AFTER, &remote_of(BEFORE, ui_edits)).unwrap();
    assert_eq!((again.text.as_str(), again.changes.len(), again.skipped.len()), (AFTER, 0, 0));
}

#[test]
fn every_line_but_the_changed_ones_is_kept_byte_for_byte() {
    let changed = [6, 7, 8, 12, 22, 25];
    for (i, (b, a)) in BEFORE.lines().zip(AFTER.lines()).enumerate() {
        if !changed.contains(&(i + 1)) {
            assert_eq!(b, a, "line {}", i + 1);
        }
    }
    assert_eq!(BEFORE.lines().count(), AFTER.lines().count());
}

#[test]
fn a_treatment_added_in_the_ui_skips_the_object_and_writes_nothing() {
    let remote = remote_of(BEFORE, |r| {
        ui_edits(r);
        let mut t = r.iteration.treatments[1].clone();
        t.name = "Blue".to_owned();
        r.iteration.treatments.push(t);
    });
    let pulled = pull_text("before.yaml", BEFORE, &remote).unwrap();
    assert_eq!(pulled.text, BEFORE);
    assert_eq!(pulled.changes, []);
    assert_eq!(pulled.skipped.len(), 1);
    let s = &pulled.skipped[0];
    assert_eq!((s.object.as_str(), s.line, s.column), ("experiment/shop/production/checkout-color", 2, 1));
    assert!(
        s.reason.contains("`iteration.treatments` has 3 item(s) in LaunchDarkly and 2 in the spec"),
        "{}",
        s.reason
    );
    assert!(s.reason.contains("ldexp export"), "{}", s.reason);
}

#[test]
fn block_lists_stay_block_lists_and_quoted_strings_stay_quoted() {
    let text = "kind: Experiment\nproject: p\nenvironment: e\nkey: k\nname: \"N\"\ntags:\n  - a   # first\n  - 'b'\n\
                state: draft\niteration:\n  hypothesis: h\n  primaryMetric: m\n  metrics: [m]\n  flags:\n    f: \
                {rule: fallthrough}\n  treatments:\n    - {name: A, baseline: true, allocationPercent: 100, \
                variations: {f: 'on'}}\n# end\n";
    let remote = remote_of(text, |_| {});
    let remote = |s: &ExperimentSpec| {
        remote(s).map(|r| {
            r.into_iter()
                .map(|mut r| {
                    r.name = "123".to_owned();
                    r.tags = Some(vec!["x".to_owned(), "yes".to_owned(), "z".to_owned()]);
                    r
                })
                .collect()
        })
    };
    let pulled = pull_text("k.yaml", text, &remote).unwrap();
    assert_eq!(pulled.skipped, []);
    assert_eq!(
        pulled.text,
        text.replace("name: \"N\"", "name: \"123\"").replace("  - a   # first\n  - 'b'", "  - x\n  - 'yes'\n  - z")
    );
}

#[test]
fn no_remote_object_and_no_difference_change_nothing() {
    let none = |_: &ExperimentSpec| Ok(Vec::new());
    let pulled = pull_text("before.yaml", BEFORE, &none).unwrap();
    assert_eq!((pulled.text.as_str(), pulled.changes.len()), (BEFORE, 0));
    let same = pull_text("before.yaml", BEFORE, &remote_of(BEFORE, |_| {})).unwrap();
    assert_eq!((same.text.as_str(), same.changes.len(), same.skipped.len()), (BEFORE, 0, 0));
    let err = |_: &ExperimentSpec| Err("targets several environments".to_owned());
    assert_eq!(pull_text("before.yaml", BEFORE, &err).unwrap().skipped.len(), 2);
}

#[test]
fn a_byte_order_mark_is_kept_and_positions_count_after_it() {
    let text = format!("\u{feff}{BEFORE}");
    let pulled = pull_text("before.yaml", &text, &remote_of(BEFORE, ui_edits)).unwrap();
    assert_eq!(pulled.text, format!("\u{feff}{AFTER}"));
}

#[test]
fn a_value_shared_through_a_merge_key_is_not_rewritten_for_one_experiment() {
    // Both experiments take their name from the anchor: rewriting it for one would rename the other too.
    let text = "kind: Experiment\nproject: p\nenvironment: e\nkey: a\n<<: &s {name: Shared}\nstate: draft\niteration: &it\n  \
                hypothesis: h\n  primaryMetric: m\n  metrics: [m]\n  flags: {f: {rule: fallthrough}}\n  treatments:\n    \
                - {name: A, baseline: true, allocationPercent: 100, variations: {f: x}}\n---\nkind: Experiment\n\
                project: p\nenvironment: e\nkey: b\n<<: *s\nstate: draft\niteration: *it\n";
    let remote = remote_of(text, |_| {});
    let remote = |s: &ExperimentSpec| {
        remote(s).map(|r| {
            r.into_iter()
                .map(|mut r| {
                    if r.key == "a" {
                        r.name = "Renamed".to_owned();
                    }
                    r
                })
                .collect()
        })
    };
    let pulled = pull_text("shared.yaml", text, &remote).unwrap();
    assert_eq!(pulled.text, text);
    assert_eq!(pulled.changes, []);
    assert_eq!(pulled.skipped.len(), 1, "{:?}", pulled.skipped);
    assert!(pulled.skipped[0].reason.contains("the rewrite would change another experiment"), "{:?}", pulled.skipped);
}

#[test]
fn crlf_line_ends_are_kept() {
    let text = BEFORE.replace('\n', "\r\n");
    let pulled = pull_text("before.yaml", &text, &remote_of(BEFORE, ui_edits)).unwrap();
    assert_eq!(pulled.skipped, []);
    assert_eq!(pulled.text, AFTER.replace('\n', "\r\n"));
}

#[test]
fn a_spec_for_several_environments_is_pulled_only_when_they_agree() {
    let text = BEFORE.replacen("environment: production", "environments: [production, staging]", 1);
    let remote = remote_of(&text, ui_edits);
    let both = |s: &ExperimentSpec| remote(s).map(|r| r.iter().chain(&r).cloned().collect());
    let pulled = pull_text("multi.yaml", &text, &both).unwrap();
    assert_eq!(pulled.skipped, []);
    assert_eq!(pulled.text, AFTER.replacen("environment: production", "environments: [production, staging]", 1));
    let differ = |s: &ExperimentSpec| {
        let first = remote(s)?;
        let mut second = first.clone();
        second.iter_mut().for_each(|r| r.name = "Elsewhere".to_owned());
        Ok(first.into_iter().chain(second).collect())
    };
    let pulled = pull_text("multi.yaml", &text, &differ).unwrap();
    assert_eq!((pulled.text.as_str(), pulled.changes.len()), (text.as_str(), 0));
    assert!(pulled.skipped[0].reason.contains("its environments differ from each other"), "{:?}", pulled.skipped);
}
