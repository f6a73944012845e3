//! Tolerance of the documented wire quirks.

use super::*;
use serde_json::json;

#[test]
fn allocation_percent_as_string_or_number_and_null_parameters() {
    let t: TreatmentRep = serde_json::from_value(json!({
        "name": "A", "allocationPercent": 50, "baseline": null,
        "parameters": [null, {"flagKey": "f", "variationId": null}]
    }))
    .unwrap();
    assert_eq!(t.allocation_percent, Percent::new(50.0).unwrap());
    assert!(!t.baseline);
    assert_eq!(t.parameters, vec![ParameterRep { flag_key: Some("f".into()), variation_id: None }]);
    let t: TreatmentRep =
        serde_json::from_value(json!({"name": "A", "allocationPercent": "33.5", "parameters": null})).unwrap();
    assert_eq!(t.allocation_percent.value(), Some(33.5));
    assert_eq!(serde_json::to_value(&t).unwrap()["allocationPercent"], json!("33.5"));
}

#[test]
fn timestamps_as_numbers_or_strings_and_totals_in_both_casings() {
    let it: IterationRep = serde_json::from_value(json!({
        "hypothesis": "h", "status": "running", "createdAt": "1700000000000", "startedAt": 1.7e12
    }))
    .unwrap();
    assert_eq!(it.created_at, Millis(1_700_000_000_000));
    assert_eq!(it.started_at, Some(Millis(1_700_000_000_000)));
    let c: ExperimentCollection = serde_json::from_value(json!({"items": [], "totalCount": 3})).unwrap();
    assert_eq!(c.total_count, Some(3));
    let c: MetricCollection = serde_json::from_value(json!({"items": [], "total_count": 4})).unwrap();
    assert_eq!(c.total_count, Some(4));
}

#[test]
fn unknown_fields_and_omitted_expansions_are_tolerated() {
    let e: Experiment = serde_json::from_value(json!({
        "key": "k", "name": "n", "_maintainerId": "m", "_creationDate": 1, "environmentKey": "production",
        "_links": {}, "someFutureField": {"x": 1},
        "currentIteration": {"hypothesis": "h", "status": "not_started", "createdAt": 1, "flags": null}
    }))
    .unwrap();
    assert!(e.previous_iterations.is_empty());
    assert!(e.current_iteration.unwrap().treatments.is_empty());
}

#[test]
fn an_allocation_in_another_spelling_reads_as_its_value_and_writes_back_as_sent() {
    let t: TreatmentRep = serde_json::from_value(json!({"name": "A", "allocationPercent": "50.0"})).unwrap();
    assert_eq!(t.allocation_percent, Percent::new(50.0).unwrap());
    assert_eq!(serde_json::to_value(&t).unwrap()["allocationPercent"], json!("50.0"));
    // The official examples send text; it is read, kept, and equal to no number.
    let t: TreatmentRep = serde_json::from_value(json!({"name": "A", "allocationPercent": "string"})).unwrap();
    assert_eq!(t.allocation_percent.value(), None);
}

#[test]
fn objects_encoded_as_json_strings_are_read() {
    // The spec's own examples (served by `prism mock`) carry these as strings (quirk 10).
    let f: FeatureFlag = serde_json::from_value(json!({
        "key": "f", "_version": 1, "experiments": "{\"baselineIdx\": 1,\"items\": [{\"metricKey\": \"m\"}]}"
    }))
    .unwrap();
    assert_eq!((f.experiments.baseline_idx, f.experiments.items[0].metric_key.as_str()), (1, "m"));
    let f: FeatureFlag = serde_json::from_value(json!({"key": "f", "experiments": null})).unwrap();
    assert_eq!(f.experiments, LegacyExperiments::default());
    let r: TreatmentResult =
        serde_json::from_value(json!({"credibleInterval": "{\"lower\": 0.25, \"upper\": 0.75}"})).unwrap();
    assert_eq!(r.credible_interval, Some(CredibleInterval { lower: 0.25, upper: 0.75 }));
    let r: TreatmentResult = serde_json::from_value(json!({"credibleInterval": {"lower": 0.1, "upper": 0.2}})).unwrap();
    assert_eq!(r.credible_interval, Some(CredibleInterval { lower: 0.1, upper: 0.2 }));
    assert!(serde_json::from_value::<FeatureFlag>(json!({"key": "f", "experiments": "not json"})).is_err());
}
