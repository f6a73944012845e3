//! `ldexp validate` on the parts of the spec format beyond single documents: YAML merge keys, `kind: Workspace`
//! and the scope it declares, and warnings about invisible and control characters in spec text.

use serde_json::{Value, json};

use crate::validate::{BASE, LEGACY, edit, ldexp, one, problems, problems_in};

#[test]
fn merge_keys_are_applied_and_their_mistakes_are_one_problem() {
    let merged = edit(
        BASE,
        &[
            ("    - name: Control\n", "    - &control\n      name: Control\n"),
            (
                "    - name: Above the fold\n      allocationPercent: 50\n",
                "    - <<: *control\n      name: Above the fold\n      baseline: false\n",
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), &merged).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "spec.yaml"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "1 file, 1 experiment, 0 legacy flag specs: valid\n", ""));
    let listed = edit(&merged, &[("    - <<: *control\n", "    - <<: [1, 2]\n")]);
    assert_eq!(
        problems(&listed),
        one("spec.yaml:24:11", "a merge key (`<<`) takes a mapping or a list of mappings, found a list")
    );
}

const WORKSPACE: &str = "\
kind: Workspace
projects:
  - key: demo
    environments: [staging, production]
    owns: [experiments]
";

#[test]
fn workspaces_declare_the_managed_scope() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workspace.yaml"), WORKSPACE).unwrap();
    std::fs::write(dir.path().join("spec.yaml"), format!("{BASE}---\n{LEGACY}")).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate"]);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "2 files, 1 experiment, 1 legacy flag spec, 1 workspace: valid\n", "")
    );
    let qa = edit(BASE, &[("environment: production", "environments: [production, qa]")]);
    assert_eq!(
        problems_in(&[("workspace.yaml", WORKSPACE), ("spec.yaml", &qa)]),
        one(
            "spec.yaml:3:28",
            "experiment `checkout-button-placement` targets environment `qa`, which the Workspace does not declare for project `demo`"
        )
    );
    let other = "kind: Workspace\nprojects:\n  - {key: blog, environments: [production]}\n  - {key: demo, environments: [qa]}\n";
    assert_eq!(
        problems_in(&[("a.yaml", WORKSPACE), ("b.yaml", other)]),
        one("b.yaml:4:11", "project `demo` is declared twice in a Workspace: first at a.yaml:3:10")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.yaml"), edit(WORKSPACE, &[("owns: [experiments]", "owns: [layers, holdouts]")]))
        .unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "w.yaml"]);
    assert_eq!(code, 0, "a Workspace may own layers and holdouts: {stdout}{stderr}");
}

#[test]
fn invisible_characters_are_warnings_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    // One written as an escape, one raw (U+200B between "Above" and "the").
    let spec = edit(
        BASE,
        &[
            ("name: Checkout button placement", "name: \"Checkout \\u202Eplacement\""),
            ("- name: Above the fold", "- name: Above\u{200B} the fold"),
        ],
    );
    std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "--format", "json", "spec.yaml"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "warnings alone leave the specs valid");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!([
            {
                "file": "spec.yaml", "line": 5, "column": 7,
                "message": "`name` contains U+202E RIGHT-TO-LEFT OVERRIDE, which terminals and GitHub can show invisibly or use to reorder or hide text",
                "help": "remove it unless it is meant to be there; ldexp shows it escaped, as `\\u{202E}`",
                "severity": "warning"
            },
            {
                "file": "spec.yaml", "line": 23, "column": 13,
                "message": "`iteration.treatments[1].name` contains U+200B ZERO WIDTH SPACE, which terminals and GitHub can show invisibly or use to reorder or hide text",
                "help": "remove it unless it is meant to be there; ldexp shows it escaped, as `\\u{200B}`",
                "severity": "warning"
            }
        ])
    );
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "--color", "never", "spec.yaml"]);
    assert_eq!((code, stdout.as_str()), (0, "1 file, 1 experiment, 0 legacy flag specs: valid, with 2 warnings\n"));
    assert!(stderr.contains("  ⚠ `name` contains U+202E RIGHT-TO-LEFT OVERRIDE"), "{stderr}");
    // The snippet shows the raw character escaped, with the caret under the whole value.
    assert!(
        stderr.contains(" 23 │     - name: Above\\u{200B} the fold\n    ·             ──────────────────────\n"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{200B}') && !stderr.contains('\u{202E}'), "{stderr}");
}
