//! Unmanaged experiments: listed and left alone, or archived with `prune` (stopped first when running).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ldexp_core::api::Experiment;
use ldexp_core::plan::Method;
use ldexp_planner::{PlanOptions, plan, plan_with};

fn other(
    key: &str,
    env: &str,
    current: Option<serde_json::Value>,
    draft: Option<serde_json::Value>,
    archived: bool,
) -> Experiment {
    let mut e = experiment(current, draft, archived);
    e.key = key.to_owned();
    e.name = format!("Old {key}");
    e.environment_key = env.to_owned();
    // On a rule of its own: LaunchDarkly runs one experiment per rule, and the specs run on the fallthrough.
    for it in e.current_iteration.iter_mut().chain(e.draft_iteration.iter_mut()) {
        for (_, f) in it.flags.iter_mut() {
            f.targeting_rule = Some(format!("rule-{key}"));
        }
    }
    e
}

fn remote_with_strays() -> ldexp_core::remote::RemoteState {
    remote(vec![
        state("running-same").unwrap(),
        other("old-running", "production", Some(iteration("it-9", "running", D::Old)), None, false),
        other("old-draft", "production", None, Some(iteration("it-8", "not_started", D::Old)), false),
        other("old-archived", "production", Some(iteration("it-7", "stopped", D::Old)), None, true),
        // Staging is not targeted by any spec: never listed, never touched.
        other("elsewhere", "staging", Some(iteration("it-6", "running", D::Old)), None, false),
    ])
}

#[test]
fn unmanaged_experiments_are_listed_and_left_alone() {
    let specs = specs("specs/checkout.yaml", &experiment_yaml("running"));
    let p = plan(&specs, &remote_with_strays()).unwrap();
    assert!(p.changes.is_empty());
    assert_eq!(p.summary.unmanaged, 3);
    insta::assert_json_snapshot!(p.unmanaged);
}

#[test]
fn prune_archives_them_stopping_running_ones_with_the_baseline() {
    let specs = specs("specs/checkout.yaml", &experiment_yaml("running"));
    let p = plan_with(&specs, &remote_with_strays(), &PlanOptions { prune: true }).unwrap();
    assert!(p.prune);
    assert_eq!(p.summary.archive, 2);
    assert!(p.changes.iter().all(|c| c.requests.iter().all(|r| r.method == Method::Patch)));
    insta::assert_json_snapshot!(p);
}

#[test]
fn without_a_workspace_the_plan_names_the_environments_nothing_covers() {
    let specs = specs("specs/checkout.yaml", &experiment_yaml("running"));
    let p = plan(&specs, &remote_with_strays()).unwrap();
    let messages: Vec<&str> = p.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "no spec covers environments `qa`, `staging` of project `demo`: the unmanaged report and --prune do not look \
          there; declare the managed environments in a `kind: Workspace` document to cover them"
        ]
    );
}

fn workspace(owns: &str) -> String {
    format!(
        "{}---\nkind: Workspace\nprojects:\n  - key: demo\n    environments: [production, staging, qa]\n    owns: {owns}\n",
        experiment_yaml("running")
    )
}

#[test]
fn a_workspace_declares_the_scope_the_unmanaged_report_and_prune_cover() {
    let specs = specs("specs/checkout.yaml", &workspace("[experiments]"));
    let p = plan(&specs, &remote_with_strays()).unwrap();
    // `elsewhere` lives in staging, which no spec targets but the Workspace declares.
    let listed: Vec<String> = p.unmanaged.iter().map(|u| u.address.to_string()).collect();
    assert_eq!(
        listed,
        [
            "experiment/demo/production/old-archived",
            "experiment/demo/production/old-draft",
            "experiment/demo/production/old-running",
            "experiment/demo/staging/elsewhere"
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let p = plan_with(&specs, &remote_with_strays(), &PlanOptions { prune: true }).unwrap();
    let archived: Vec<String> = p.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(
        archived,
        [
            "experiment/demo/production/old-draft",
            "experiment/demo/production/old-running",
            "experiment/demo/staging/elsewhere"
        ]
    );
}

#[test]
fn a_workspace_that_owns_no_experiments_lists_them_but_prune_leaves_them() {
    let specs = specs("specs/checkout.yaml", &workspace("[]"));
    let p = plan_with(&specs, &remote_with_strays(), &PlanOptions { prune: true }).unwrap();
    assert!(p.changes.is_empty());
    assert_eq!(p.unmanaged.len(), 4);
    assert_eq!(
        p.warnings.iter().map(|w| w.message.as_str()).collect::<Vec<_>>(),
        ["--prune archives nothing in project `demo`: its Workspace does not own experiments (add `experiments` to \
          its `owns`)"]
    );
}
