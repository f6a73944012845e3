//! `InMemory`: the client traits over the pure handler, with every page read and errors typed as the REST
//! client types them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_core::api::{ExperimentPatch, Instruction, IterationStatus};
use ldexp_core::client::{PlanReads, ResultsReads, Writer};
use ldexp_core::{Error, requests};
use ldexp_emulator::InMemory;
use support::*;

#[tokio::test]
async fn reads_every_page_and_maps_404_to_none() {
    let mut s = demo();
    for i in 0..60 {
        let body = checkout_post(&mut s, &format!("e{i:02}"));
        assert_eq!(create(&mut s, "staging", &body).status, 201);
    }
    let ld = InMemory::new(s);
    let all = ld.list_experiments("demo", "staging").await.unwrap().unwrap();
    assert_eq!(all.len(), 61, "two pages of 50: the seeded signup-flow and the 60 created");
    assert!(
        all.iter()
            .filter(|e| e.key != "signup-flow")
            .all(|e| e.draft_iteration.as_ref().is_some_and(|d| d.treatments.len() == 2)),
        "expanded"
    );
    assert!(ld.list_experiments("demo", "qa").await.unwrap().is_none());
    assert!(ld.list_experiments("nope", "staging").await.unwrap().is_none());

    let running = ld.get_experiment("demo", "production", "search-ranking").await.unwrap().unwrap();
    assert_eq!(running.current_iteration.as_ref().unwrap().status, IterationStatus::Running);
    assert!(ld.get_experiment("demo", "production", "nope").await.unwrap().is_none());

    let flag = ld.get_flag("demo", "pricing-banner").await.unwrap().unwrap();
    assert_eq!(flag.flag.experiments.items[0].metric_key, "page-view");
    assert_eq!(flag.raw()["_version"], 1);
    assert!(ld.get_flag("demo", "nope").await.unwrap().is_none());

    let metrics = ld.list_metrics("demo").await.unwrap().unwrap();
    assert_eq!(metrics.len(), 5);
    let groups = ld.list_metric_groups("demo").await.unwrap().unwrap();
    assert_eq!(groups[0].metrics.len(), 2);
    let settings = ld.get_settings("demo").await.unwrap().unwrap();
    assert_eq!(settings.randomization_units.len(), 2);

    let results =
        ld.experiment_results("demo", "production", "search-ranking", "search-clicks", None).await.unwrap().unwrap();
    assert_eq!(results.overall().len(), 2);
    let legacy = ld.legacy_results("demo", "pricing-banner", "production", "page-view").await.unwrap().unwrap();
    assert_eq!(legacy.totals.len(), 2);
}

#[tokio::test]
async fn writes_return_the_body_or_a_typed_error() {
    let mut s = demo();
    let body = checkout_post(&mut s, "cb");
    let ld = InMemory::new(s);
    let post: ldexp_core::api::ExperimentPost = serde_json::from_value(body).unwrap();
    let created = ld
        .send(&requests::create_experiment("demo", "production", &post), "experiment demo/production/cb")
        .await
        .unwrap();
    assert_eq!(created.unwrap()["key"], "cb");
    let start = ExperimentPatch {
        comment: None,
        instructions: vec![Instruction::StopIteration { winning_treatment_id: None, winning_reason: None }],
    };
    let err = ld
        .send(&requests::patch_experiment("demo", "production", "cb", &start), "experiment demo/production/cb")
        .await
        .unwrap_err();
    let Error::Api(api) = err else { panic!("expected an API error, got {err}") };
    assert_eq!(api.status, 400);
    assert_eq!(api.code.as_deref(), Some("invalid_request"));
    assert_eq!(api.message, "instruction 0 (stopIteration): the experiment has no running iteration to stop");
    assert!(api.request_id.is_some());
    assert_eq!(api.resource, "experiment demo/production/cb");
    // The snapshot is a copy: changing it does not change the emulator.
    let snapshot = ld.state();
    assert!(snapshot.to_json()["projects"]["demo"]["experiments"]["production"]["cb"].is_object());
    let state_json = ld.with_state(|s| s.to_json());
    assert_eq!(state_json, snapshot.to_json());
}
