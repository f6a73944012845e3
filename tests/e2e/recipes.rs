//! The GitHub Actions recipes in `examples/ci/` (their use of the ldexp action against its `action.yml`) and the
//! configurable `LD-API-Version` headers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

use crate::support::{BIN, Emulator, Workspace, expect_code};

fn recipes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/ci")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(recipes_dir().join(name)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("examples/ci/{name} is not YAML: {e}"))
}

/// Every `ldexp …` invocation in the `run:` scripts of a workflow, as (subcommand, flags).
fn invocations(workflow: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            let Some(script) = step.get("run").and_then(Value::as_str) else { continue };
            for line in script.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some(at) = words.iter().position(|w| *w == "ldexp") else { continue };
                // `cargo install … ldexp` names the package, not a command.
                if words.first() == Some(&"cargo") {
                    continue;
                }
                let rest: Vec<&str> = words[at + 1..]
                    .iter()
                    .copied()
                    .take_while(|w| !matches!(*w, ">" | "|" | "||" | "&&" | ";"))
                    .collect();
                let flags = rest.iter().filter(|w| w.starts_with("--")).map(|w| (*w).to_owned()).collect();
                out.push((rest[0].to_owned(), flags));
            }
        }
    }
    out
}

fn help_of(subcommand: &str) -> String {
    let out = Command::new(BIN).args([subcommand, "--help"]).output().unwrap();
    assert!(out.status.success(), "`ldexp {subcommand} --help` failed: the recipe names an unknown command");
    String::from_utf8(out.stdout).unwrap()
}

/// The ldexp action's metadata (`action.yml` at the repository root).
fn action() -> Value {
    let text = std::fs::read_to_string(recipes_dir().join("../../action.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn keys(map: &Value) -> BTreeSet<String> {
    map.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect()
}

/// The steps of a workflow that use the ldexp action, as (step id, `with:`).
fn action_steps(workflow: &Value) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            let Some(uses) = step.get("uses").and_then(Value::as_str) else { continue };
            if let Some(version) = uses.strip_prefix("ldexp/ldexp@") {
                // The recipes install the release they document.
                assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")), "{uses}");
                out.push((step.get("id").and_then(Value::as_str).map(str::to_owned), step["with"].clone()));
            }
        }
    }
    out
}

/// Every `steps.<id>.outputs.<name>` the workflow's text reads.
fn outputs_read(text: &str) -> Vec<(String, String)> {
    text.match_indices("steps.")
        .filter_map(|(at, _)| {
            let rest = &text[at + "steps.".len()..];
            let (id, rest) = rest.split_once(".outputs.")?;
            let name: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            (id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')).then(|| (id.to_owned(), name))
        })
        .collect()
}

#[test]
fn every_recipe_is_a_workflow_whose_ldexp_commands_exist() {
    let action = action();
    let inputs = keys(&action["inputs"]);
    let outputs = keys(&action["outputs"]);
    let mut seen = BTreeSet::new();
    for name in ["plan.yml", "apply.yml", "drift.yml"] {
        let wf = load(name);
        assert!(wf.get("on").is_some(), "{name}: no trigger");
        let jobs = wf["jobs"].as_mapping().unwrap();
        assert!(!jobs.is_empty(), "{name}: no jobs");
        for (job_name, job) in jobs {
            assert!(job.get("runs-on").is_some(), "{name}: job {job_name:?} has no runs-on");
            assert_eq!(
                job["env"]["LD_ACCESS_TOKEN"].as_str(),
                Some("${{ secrets.LD_ACCESS_TOKEN }}"),
                "{name}: the token must come from a secret"
            );
            for step in job["steps"].as_sequence().unwrap() {
                assert!(step.get("uses").is_some() || step.get("run").is_some(), "{name}: a step does nothing");
            }
        }
        for (sub, flags) in invocations(&wf) {
            let help = help_of(&sub);
            for flag in flags {
                assert!(help.contains(&flag), "{name}: `ldexp {sub}` has no option {flag}");
            }
            seen.insert(sub);
        }
        let steps = action_steps(&wf);
        assert!(!steps.is_empty(), "{name}: the recipes start from the ldexp action");
        let mut ids = BTreeSet::new();
        for (id, with) in steps {
            ids.extend(id);
            for input in keys(&with) {
                assert!(inputs.contains(&input), "{name}: the action has no input {input:?}");
            }
            let sub = with["command"].as_str().unwrap().to_owned();
            let help = help_of(&sub);
            for flag in with.get("args").and_then(Value::as_str).unwrap_or("").split_whitespace() {
                assert!(!flag.starts_with("--") || help.contains(flag), "{name}: `ldexp {sub}` has no option {flag}");
            }
            seen.insert(sub);
        }
        let text = std::fs::read_to_string(recipes_dir().join(name)).unwrap();
        for (id, output) in outputs_read(&text) {
            if ids.contains(&id) {
                assert!(outputs.contains(&output), "{name}: the action has no output {output:?}");
            }
        }
    }
    let expected: BTreeSet<String> = ["plan", "apply", "drift", "pull"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(seen, expected);
}

#[test]
fn recipes_react_to_the_documented_exit_codes() {
    let plan = load("plan.yml");
    assert_eq!(plan["permissions"]["pull-requests"].as_str(), Some("write"), "the sticky comment needs it");
    assert!(plan["on"].get("pull_request").is_some());
    let apply = load("apply.yml");
    let apply_text = serde_yaml::to_string(&apply).unwrap();
    assert!(
        apply_text.contains("steps.plan.outputs.plan-file") && apply_text.contains("--plan plan.json"),
        "the plan job saves the plan file, and apply applies exactly it"
    );
    assert_eq!(apply["jobs"]["apply"]["needs"].as_str(), Some("plan"));
    assert_eq!(apply["jobs"]["apply"]["environment"].as_str(), Some("launchdarkly"));
    let drift = load("drift.yml");
    assert!(drift["on"]["schedule"].as_sequence().is_some_and(|s| !s.is_empty()), "drift runs on a schedule");
    let drift_text = serde_yaml::to_string(&drift).unwrap();
    assert!(
        drift_text.contains("steps.drift.outputs.exitcode == '2'")
            && drift_text.contains("ldexp pull experiments")
            && drift_text.contains("gh pr create"),
        "drift pulls LaunchDarkly's values and opens a pull request on exit 2"
    );
    // The action fails the job on an error and on a stale plan, not on changes or drift.
    let action_text = std::fs::read_to_string(recipes_dir().join("../../action.yml")).unwrap();
    assert!(action_text.contains("if: steps.ldexp.outputs.exitcode != '0' && steps.ldexp.outputs.exitcode != '2'"));
}

#[test]
fn the_beta_version_header_is_configurable_and_a_refusal_names_the_fix() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write(
        "specs/beta.yaml",
        "kind: Experiment\nproject: shop\nenvironment: staging\nkey: beta-header\nname: Beta header\nstate: draft\n\
         iteration:\n  hypothesis: The header matters.\n  primaryMetric: purchases\n  metrics: [purchases]\n\
         \x20 flags:\n    checkout-button: {rule: fallthrough}\n  treatments:\n\
         \x20   - {name: Control, baseline: true, allocationPercent: 50, variations: {checkout-button: control}}\n\
         \x20   - {name: Green, allocationPercent: 50, variations: {checkout-button: green}}\n",
    );
    // The emulator, like LaunchDarkly, answers 403 on beta routes without `LD-API-Version: beta`.
    let run = ws.ldexp(&em, &["plan", "--api-version-beta", "20240415", "specs"]);
    expect_code(&run, 1);
    assert!(run.stderr.contains("HTTP 403"), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("--api-version-beta"), "the hint names the option:\n{}", run.stderr);
    let run = ws.ldexp(&em, &["plan", "--api-version-beta", "beta", "--detailed-exitcode", "specs"]);
    expect_code(&run, 2);
    assert!(run.stdout.contains("experiment/shop/staging/beta-header (create)"), "stdout:\n{}", run.stdout);
    ws.assert_no_canary();
}
