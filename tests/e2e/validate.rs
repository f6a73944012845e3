//! `ldexp validate`: every rule of spec format v1 fed a bad spec, asserting the exact message and `file:line:col`;
//! the JSON and human formats, the summary and exit codes; what a directory walk reads; the committed JSON Schema
//! and the examples.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// A valid experiment; each test breaks it in one place. Line numbers in the tests refer to this text.
pub(crate) const BASE: &str = "\
kind: Experiment
project: demo
environment: production
key: checkout-button-placement
name: Checkout button placement
state: running
iteration:
  hypothesis: Moving the button above the fold increases checkout conversion.
  primaryMetric: checkout-conversion
  metrics:
    - checkout-conversion
    - key: checkout-funnel
      group: true
  flags:
    checkout-button:
      rule: fallthrough
  treatments:
    - name: Control
      baseline: true
      allocationPercent: 50
      variations:
        checkout-button: control
    - name: Above the fold
      allocationPercent: 50
      variations:
        checkout-button: above-fold
";

pub(crate) const LEGACY: &str = "\
kind: LegacyFlagExperiments
project: demo
flag: pricing-banner
baseline: \"off\"
metrics:
  - key: checkout-conversion
    environments: [production, staging]
  - key: page-view
    environments: []
";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn ldexp(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ldexp"))
        .args(args)
        .current_dir(dir)
        .env_remove("LD_BASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `text` with each `(from, to)` replaced once; `from` must occur, so a test cannot silently test nothing.
pub(crate) fn edit(text: &str, edits: &[(&str, &str)]) -> String {
    let mut t = text.to_owned();
    for (from, to) in edits {
        assert!(t.contains(from), "`{from}` is not in the spec");
        t = t.replacen(from, to, 1);
    }
    t
}

/// Validates the files with `--format json` and returns `(file:line:col, message)` of every problem.
pub(crate) fn problems_in(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let (code, stdout, stderr) = ldexp(dir.path(), &[&["validate", "--format", "json"], &names[..]].concat());
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let list: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    list.iter()
        .map(|d| {
            assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "every problem says how to fix it: {d}");
            (
                format!("{}:{}:{}", d["file"].as_str().unwrap(), d["line"], d["column"]),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(crate) fn problems(text: &str) -> Vec<(String, String)> {
    problems_in(&[("spec.yaml", text)])
}

pub(crate) fn one(at: &str, message: &str) -> Vec<(String, String)> {
    vec![(at.to_owned(), message.to_owned())]
}

#[test]
fn the_base_specs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), format!("{BASE}---\n{LEGACY}")).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "spec.yaml"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "1 file, 1 experiment, 1 legacy flag spec: valid\n", ""));
    let (code, stdout, _) = ldexp(dir.path(), &["validate", "--format", "json"]);
    assert_eq!((code, stdout.as_str()), (0, "[]\n"));
}

#[test]
fn yaml_syntax_error() {
    assert_eq!(
        problems(&edit(BASE, &[("name: Checkout button placement", "name: [Checkout button placement")])),
        one("spec.yaml:6:6", "invalid YAML: illegal placement of ':' indicator")
    );
    assert_eq!(
        problems(&edit(BASE, &[("  hypothesis:", "\thypothesis:")])),
        one("spec.yaml:8:2", "invalid YAML: tabs disallowed within this context (block indentation)")
    );
}

#[test]
fn missing_kind_with_a_guess() {
    assert_eq!(
        problems(&edit(BASE, &[("kind: Experiment\n", "")])),
        one("spec.yaml:1:1", "missing field `kind`, did you mean `kind: Experiment`?")
    );
    assert_eq!(
        problems(&edit(LEGACY, &[("kind: LegacyFlagExperiments\n", "")])),
        one("spec.yaml:1:1", "missing field `kind`, did you mean `kind: LegacyFlagExperiments`?")
    );
    assert_eq!(problems("name: something else\n"), one("spec.yaml:1:1", "missing field `kind`"));
    assert_eq!(
        problems(&edit(BASE, &[("kind: Experiment", "Kind: Experiment")])),
        one("spec.yaml:1:1", "unknown field `Kind` in the document, did you mean `kind`?")
    );
}

#[test]
fn unknown_kind() {
    assert_eq!(
        problems(&edit(BASE, &[("kind: Experiment", "kind: Experimnet")])),
        one("spec.yaml:1:7", "unknown kind `Experimnet`, did you mean `Experiment`?")
    );
    assert_eq!(
        problems(&edit(BASE, &[("kind: Experiment", "kind: Rollout")])),
        one("spec.yaml:1:7", "unknown kind `Rollout`")
    );
}

#[test]
fn unknown_fields() {
    assert_eq!(
        problems(&edit(
            BASE,
            &[("  primaryMetric:", "  primary_metric:"), ("name: Checkout", "owner: me\nname: Checkout")]
        )),
        vec![
            ("spec.yaml:5:1".to_owned(), "unknown field `owner` in the document".to_owned()),
            (
                "spec.yaml:10:3".to_owned(),
                "unknown field `primary_metric` in `iteration`, did you mean `primaryMetric`?".to_owned()
            ),
        ]
    );
    assert_eq!(
        problems(&edit(BASE, &[("      baseline: true", "      basline: true")])),
        one("spec.yaml:19:7", "unknown field `basline` in `iteration.treatments[0]`, did you mean `baseline`?")
    );
    // A required field that is neither given nor misspelt is missing.
    assert_eq!(
        problems(&edit(
            BASE,
            &[("  hypothesis: Moving the button above the fold increases checkout conversion.\n", "")]
        )),
        one("spec.yaml:8:3", "missing field `hypothesis` in `iteration`")
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        problems(&edit(
            BASE,
            &[
                ("project: demo", "project: 123"),
                (
                    "      allocationPercent: 50\n      variations:\n        checkout-button: control",
                    "      allocationPercent: [50]\n      variations:\n        checkout-button: control"
                )
            ]
        )),
        vec![
            ("spec.yaml:2:10".to_owned(), "`project` must be a string, found the number `123`".to_owned()),
            (
                "spec.yaml:20:26".to_owned(),
                "`iteration.treatments[0].allocationPercent` must be a number or a numeric string, found a list"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(
        problems(&edit(BASE, &[("      baseline: true", "      baseline: yes"), ("state: running", "state: runing")])),
        vec![
            ("spec.yaml:6:8".to_owned(), "`state` must be one of `draft`, `running`, `stopped`, `archived`, found `runing`, did you mean `running`?".to_owned()),
            ("spec.yaml:19:17".to_owned(), "`iteration.treatments[0].baseline` must be `true` or `false`, found `yes`".to_owned()),
        ]
    );
    assert_eq!(
        problems(&edit(BASE, &[("allocationPercent: 50", "allocationPercent: \"fifty\"")])),
        one(
            "spec.yaml:20:26",
            "`iteration.treatments[0].allocationPercent` must be a number, found the string `fifty`"
        )
    );
    assert_eq!(
        problems(&edit(BASE, &[("  metrics:\n    - checkout-conversion", "  metrics:\n    - [checkout-conversion]")])),
        one("spec.yaml:11:7", "`iteration.metrics[0]` must be a string or a mapping, found a list")
    );
}

#[test]
fn keys_must_be_launchdarkly_keys() {
    let spec = edit(
        BASE,
        &[
            ("project: demo", "project: demo project"),
            ("environment: production", "environment: -production"),
            ("key: checkout-button-placement", "key: checkout/placement"),
            ("    - checkout-conversion", "    - checkout conversion"),
            ("primaryMetric: checkout-conversion", "primaryMetric: checkout conversion"),
        ],
    );
    assert_eq!(
        problems(&spec),
        vec![
            ("spec.yaml:2:10".to_owned(), "project key `demo project` is not a valid LaunchDarkly key".to_owned()),
            ("spec.yaml:3:14".to_owned(), "environment key `-production` is not a valid LaunchDarkly key".to_owned()),
            (
                "spec.yaml:4:6".to_owned(),
                "experiment key `checkout/placement` is not a valid LaunchDarkly key".to_owned()
            ),
            (
                "spec.yaml:11:7".to_owned(),
                "metric key `checkout conversion` is not a valid LaunchDarkly key".to_owned()
            ),
        ]
    );
    let flag = BASE.replace("checkout-button:", "checkout button:");
    assert_eq!(problems(&flag), one("spec.yaml:15:5", "flag key `checkout button` is not a valid LaunchDarkly key"));
    assert_eq!(
        problems(&edit(
            LEGACY,
            &[("flag: pricing-banner", "flag: pricing_banner!"), ("[production, staging]", "[production, stag ing]")]
        )),
        vec![
            ("spec.yaml:3:7".to_owned(), "flag key `pricing_banner!` is not a valid LaunchDarkly key".to_owned()),
            ("spec.yaml:7:32".to_owned(), "environment key `stag ing` is not a valid LaunchDarkly key".to_owned()),
        ]
    );
}

#[test]
fn duplicate_experiments_name_both_locations() {
    let staging = edit(BASE, &[("environment: production", "environments: [staging, production]")]);
    assert_eq!(
        problems_in(&[("a.yaml", BASE), ("b.yaml", &staging)]),
        one(
            "b.yaml:4:6",
            "experiment `checkout-button-placement` in project `demo`, environment `production` is defined twice: first at a.yaml:4:6"
        )
    );
    assert_eq!(
        problems(&format!("{BASE}---\n{BASE}")),
        one(
            "spec.yaml:31:6",
            "experiment `checkout-button-placement` in project `demo`, environment `production` is defined twice: first at spec.yaml:4:6"
        )
    );
    assert_eq!(
        problems(&edit(BASE, &[("environment: production", "environments: [production, production]")])),
        one("spec.yaml:3:28", "environment `production` is listed twice in `environments`")
    );
}

#[test]
fn duplicate_legacy_specs_name_both_locations() {
    assert_eq!(
        problems_in(&[("a.yaml", LEGACY), ("b.yaml", &format!("# again\n{LEGACY}"))]),
        one(
            "b.yaml:4:7",
            "legacy experiments of flag `pricing-banner` in project `demo` are defined twice: first at a.yaml:3:7"
        )
    );
}

#[test]
fn exactly_one_baseline() {
    assert_eq!(
        problems(&edit(BASE, &[("      baseline: true\n", "")])),
        one("spec.yaml:18:5", "no treatment has `baseline: true`")
    );
    assert_eq!(
        problems(&edit(
            BASE,
            &[("    - name: Above the fold\n", "    - name: Above the fold\n      baseline: true\n")]
        )),
        one(
            "spec.yaml:24:17",
            "treatment `Above the fold` is a second baseline: `Control` already has `baseline: true`"
        )
    );
}

#[test]
fn treatment_names_are_unique() {
    assert_eq!(
        problems(&edit(BASE, &[("name: Above the fold", "name: Control")])),
        one("spec.yaml:23:13", "treatment name `Control` is not unique: also used at spec.yaml:18:13")
    );
}

#[test]
fn allocations() {
    assert_eq!(
        problems(&edit(
            BASE,
            &[
                ("allocationPercent: 50", "allocationPercent: 150"),
                ("allocationPercent: 50", "allocationPercent: \"-5\"")
            ]
        )),
        vec![
            (
                "spec.yaml:20:26".to_owned(),
                "`allocationPercent` of treatment `Control` is 150, outside 0–100".to_owned()
            ),
            (
                "spec.yaml:24:26".to_owned(),
                "`allocationPercent` of treatment `Above the fold` is -5, outside 0–100".to_owned()
            ),
        ]
    );
    assert_eq!(
        problems(&edit(BASE, &[("allocationPercent: 50", "allocationPercent: 60.5")])),
        one("spec.yaml:18:5", "treatment allocations add up to 110.5%, more than 100%")
    );
    assert_eq!(
        problems(&BASE.replace("allocationPercent: 50", "allocationPercent: 0")),
        one("spec.yaml:18:5", "every treatment has `allocationPercent` 0")
    );
    // Numeric strings are numbers, and a split such as 33.3 × 3 is not over 100.
    let thirds = edit(
        BASE,
        &[
            ("allocationPercent: 50", "allocationPercent: \"33.4\""),
            ("allocationPercent: 50", "allocationPercent: 33.3"),
        ],
    );
    let thirds = format!(
        "{thirds}    - name: Third\n      allocationPercent: 33.3\n      variations:\n        checkout-button: control\n"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), thirds).unwrap();
    assert_eq!(ldexp(dir.path(), &["validate", "spec.yaml"]).0, 0);
}

#[test]
fn every_treatment_names_one_variation_of_every_flag() {
    let two_flags = edit(
        BASE,
        &[("      rule: fallthrough\n", "      rule: fallthrough\n    search-ranking:\n      rule: fallthrough\n")],
    );
    assert_eq!(
        problems(&edit(
            &two_flags,
            &[(
                "        checkout-button: above-fold",
                "        checkout-button: above-fold\n        search-ranking: semantic"
            )]
        )),
        one("spec.yaml:24:9", "treatment `Control` does not name a variation of flag `search-ranking`")
    );
}

#[test]
fn treatments_name_only_flags_of_the_iteration() {
    assert_eq!(
        problems(&edit(
            BASE,
            &[(
                "        checkout-button: above-fold",
                "        checkout-button: above-fold\n        checkout-buton: new"
            )]
        )),
        one(
            "spec.yaml:27:9",
            "treatment `Above the fold` names flag `checkout-buton`, which is not in `iteration.flags`"
        )
    );
}

#[test]
fn a_flag_names_at_most_one_rule() {
    assert_eq!(
        problems(&edit(BASE, &[("      rule: fallthrough\n", "      rule: fallthrough\n      ruleId: r1\n")])),
        one("spec.yaml:17:7", "flag `checkout-button` gives both `rule` and `ruleId`")
    );
}

#[test]
fn primary_metric_is_listed() {
    assert_eq!(
        problems(&edit(BASE, &[("primaryMetric: checkout-conversion", "primaryMetric: checkout-conversoin")])),
        one("spec.yaml:9:18", "`primaryMetric` `checkout-conversoin` is not among `iteration.metrics`")
    );
}

#[test]
fn metrics_are_listed_once() {
    assert_eq!(
        problems(&edit(
            BASE,
            &[("    - key: checkout-funnel\n      group: true\n", "    - key: checkout-conversion\n")]
        )),
        one("spec.yaml:12:12", "metric `checkout-conversion` is listed twice in `iteration.metrics`")
    );
}

#[test]
fn stopped_needs_a_winner_among_the_treatments() {
    assert_eq!(
        problems(&edit(BASE, &[("state: running", "state: stopped")])),
        one("spec.yaml:6:8", "`state: stopped` needs `stop.winner`")
    );
    let stopped = edit(BASE, &[("state: running", "state: stopped")]);
    assert_eq!(
        problems(&format!("{stopped}stop:\n  winner: Above the fol\n")),
        one("spec.yaml:28:11", "`stop.winner` `Above the fol` is not a treatment name, did you mean `Above the fold`?")
    );
    assert_eq!(
        problems(&format!("{stopped}stop:\n  reason: done\n")),
        one("spec.yaml:28:3", "missing field `winner` in `stop`")
    );
    assert_eq!(
        problems(&format!("{BASE}stop:\n  winner: Control\n")),
        one("spec.yaml:27:1", "`stop` is given but `state` is `running`")
    );
}

#[test]
fn environment_xor_environments() {
    assert_eq!(
        problems(&edit(BASE, &[("environment: production\n", "environment: production\nenvironments: [staging]\n")])),
        one("spec.yaml:4:1", "`environment` and `environments` are both given")
    );
    assert_eq!(
        problems(&edit(BASE, &[("environment: production\n", "")])),
        one("spec.yaml:1:1", "missing field `environment` (or `environments`)")
    );
}

#[test]
fn legacy_metrics_are_listed_once() {
    assert_eq!(
        problems(&edit(LEGACY, &[("  - key: page-view", "  - key: checkout-conversion")])),
        one("spec.yaml:8:10", "metric `checkout-conversion` is listed twice in `metrics`")
    );
}

#[test]
fn the_default_path_skips_other_tools_yaml_and_lists_it_with_v() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("experiments/spec.yaml", BASE);
    write(
        "k8s/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
    );
    write(
        "chart/templates/service.yaml",
        "kind: Service\nmetadata:\n  name: {{ include \"web.fullname\" . }}\n  labels:\n    {{- include \"web.labels\" . | nindent 4 }}\n",
    );
    write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    write("typo.yaml", &edit(LEGACY, &[("kind: LegacyFlagExperiments", "kind: LegacyFlagExperimnets")]));

    let (code, stdout, stderr) = ldexp(dir.path(), &["-v", "validate", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let list: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0]["file"].as_str(), list[0]["message"].as_str()),
        (Some("./typo.yaml"), Some("unknown kind `LegacyFlagExperimnets`, did you mean `LegacyFlagExperiments`?"))
    );
    // `-v` says what was skipped and why.
    let skipped: Vec<&str> = stderr.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(skipped.len(), 3, "{stderr}");
    assert!(skipped.iter().any(|l| l.ends_with("skipped ./k8s/deployment.yaml: it has `apiVersion`, so it is a Kubernetes-style manifest, not an ldexp spec")), "{stderr}");
    assert!(
        skipped.iter().any(|l| l.contains("skipped ./chart/templates/service.yaml: it does not parse as YAML (")
            && l.ends_with("and does not look like an ldexp spec")),
        "{stderr}"
    );
    assert!(
        skipped.iter().any(|l| l.ends_with(
            "skipped ./chart/Chart.yaml: it has `apiVersion`, so it is a Kubernetes-style manifest, not an ldexp spec"
        )),
        "{stderr}"
    );

    std::fs::remove_file(dir.path().join("typo.yaml")).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "1 file, 1 experiment, 0 legacy flag specs: valid\n", ""));
    // Without `apiVersion`, another tool's kind is still not a spec.
    write("k8s/deployment.yaml", "kind: Deployment\nmetadata:\n  name: web\n");
    let (_, _, stderr) = ldexp(dir.path(), &["-v", "validate"]);
    assert!(stderr.contains("skipped ./k8s/deployment.yaml: kind `Deployment` is not an ldexp kind"), "{stderr}");
}

#[test]
fn every_problem_of_every_file_is_reported() {
    let bad_kind = edit(BASE, &[("kind: Experiment", "kind: Experimnet")]);
    let no_baseline = edit(BASE, &[("      baseline: true\n", ""), ("key: checkout-button-placement", "key: other")]);
    let found = problems_in(&[("a.yaml", &bad_kind), ("b.yaml", &no_baseline), ("c.yaml", "x: [\n")]);
    let at: Vec<&str> = found.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(at, ["a.yaml:1:7", "b.yaml:18:5", "c.yaml:2:1"]);
}

#[test]
fn json_format_lists_file_line_column_message_and_help() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), edit(BASE, &[("state: running", "state: runing")])).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "--format", "json", "spec.yaml"]);
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!([{
            "file": "spec.yaml",
            "line": 6,
            "column": 8,
            "message": "`state` must be one of `draft`, `running`, `stopped`, `archived`, found `runing`, did you mean `running`?",
            "help": "write `running`",
            "severity": "error"
        }])
    );
}

#[test]
fn human_format_shows_the_snippet_caret_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let spec = edit(BASE, &[("  primaryMetric:", "  primary_metric:"), ("state: running", "state: runing")]);
    std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "--color", "never", "spec.yaml"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        "  × `state` must be one of `draft`, `running`, `stopped`, `archived`, found `runing`, did you mean `running`?
   ╭─[spec.yaml:6:8]
 5 │ name: Checkout button placement
 6 │ state: runing
   ·        ──────
 7 │ iteration:
   ╰────
  help: write `running`

  × unknown field `primary_metric` in `iteration`, did you mean `primaryMetric`?
    ╭─[spec.yaml:9:3]
  8 │   hypothesis: Moving the button above the fold increases checkout conversion.
  9 │   primary_metric: checkout-conversion
    ·   ──────────────
 10 │   metrics:
    ╰────
  help: rename `primary_metric` to `primaryMetric`

error: 2 problems in the specs
"
    );
}

#[test]
fn exit_codes_and_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = ldexp(dir.path(), &["validate", "nowhere"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.starts_with("error: nowhere: "), "{stderr}");
    let (code, _, stderr) = ldexp(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "error: no spec files (*.yaml, *.yml with a `kind`) under .\nhint: pass the directory or files holding the specs, e.g. `ldexp validate examples`\n"
    );
    let (code, _, stderr) = ldexp(dir.path(), &["validate", "--format", "xml"]);
    assert_eq!(code, 1, "usage errors exit 1, since 2 means changes: {stderr}");
    assert!(stderr.contains("invalid value 'xml' for '--format <FORMAT>'"), "{stderr}");
    let (code, _, stderr) = ldexp(dir.path(), &["plan", "--concurrency", "0", "nowhere"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid value '0' for '--concurrency <N>': expected a number from 1 to 256"), "{stderr}");
    let (code, _, stderr) = ldexp(dir.path(), &["plan", "--timeout", "0", "nowhere"]);
    assert_eq!(code, 1, "usage errors exit 1: {stderr}");
    assert!(stderr.contains("invalid value '0' for '--timeout <SECONDS>'"), "{stderr}");
    let (code, stdout, _) = ldexp(dir.path(), &["validate", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Spec files or directories"), "{stdout}");
    for global in ["--verbose", "--quiet", "--color <WHEN>"] {
        assert!(stdout.contains(global), "{global} in {stdout}");
    }
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ldexp"))
        .args(["schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
}

#[test]
fn the_examples_are_valid() {
    let (code, stdout, stderr) = ldexp(&root(), &["validate", "examples"]);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "6 files, 4 experiments, 1 legacy flag spec, 1 metric, 1 metric group, 1 layer: valid\n", "")
    );
}

/// The spec files of `examples/`: YAML with a `kind`; the emulator seed and CI workflows beside them are not specs.
fn example_specs() -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let specs: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .filter(|(_, text)| text.lines().any(|l| l.starts_with("kind:")))
        .collect();
    assert!(specs.len() >= 4, "{specs:?}");
    specs
}

#[test]
fn every_example_starts_with_the_schema_modeline() {
    for (path, text) in example_specs() {
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/ldexp.schema.json\n"),
            "{} must start with `# yaml-language-server: $schema=../schema/ldexp.schema.json`",
            path.display()
        );
    }
}

#[test]
fn the_examples_match_the_committed_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schema/ldexp.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (path, text) in example_specs() {
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let errors: Vec<String> =
                validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
    // The schema rejects what the loader rejects, so editors flag mistakes too.
    let bad: Value = serde_yaml::from_str(&edit(BASE, &[("  primaryMetric:", "  primary_metric:")])).unwrap();
    assert!(!validator.is_valid(&bad));
    let bad: Value =
        serde_yaml::from_str(&edit(BASE, &[("allocationPercent: 50", "allocationPercent: \"fifty\"")])).unwrap();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn the_committed_schema_is_up_to_date() {
    let (code, generated, _) = ldexp(&root(), &["schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("schema/ldexp.schema.json")).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/ldexp.schema.json is out of date with the spec types; regenerate it with:\n\n    \
         cargo run -q -p ldexp -- schema > schema/ldexp.schema.json\n"
    );
}
