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
