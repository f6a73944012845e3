//! The results report and the reset plan, against a fake LaunchDarkly behind a [`Transport`].

use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::api::CredibleInterval;
use crate::client::{Answer, Transport};
use crate::plan::{Method, PlannedRequest, Summary};
use crate::testing::InFlight;

/// Answers the experiment, the results of `purchases` and of the `funnel` group, and 404 for other results;
/// records each request and how many were in flight at once.
struct Fake {
    experiment: Option<Value>,
    /// What a DELETE gets: a status, or `None` for a response lost after sending.
    delete: Option<u16>,
    sent: Mutex<Vec<String>>,
    in_flight: InFlight,
}

fn fake(experiment: Option<Value>) -> Fake {
    Fake { experiment, delete: Some(204), sent: Mutex::default(), in_flight: InFlight::default() }
}

fn answer(status: u16, body: &Value) -> Answer {
    Answer { status, body: if body.is_null() { Vec::new() } else { body.to_string().into_bytes() } }
}

fn treatments(mean: f64) -> Value {
    json!([{"treatmentId": "t1", "mean": mean, "credibleInterval": {"lower": 0.1, "upper": 0.2}, "pBest": 0.5},
           {"treatmentName": "green", "mean": mean + 0.01}])
}

impl Transport for Fake {
    async fn execute(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.sent.lock().unwrap().push(format!("{} {}?{}", r.method, r.path, query.join("&")));
        self.in_flight.visit().await;
        let p = r.path.as_str();
        if r.method == Method::Delete {
            return match self.delete {
                Some(status) if status >= 300 => Ok(answer(status, &json!({"code": "c", "message": "refused"}))),
                Some(status) => Ok(answer(status, &Value::Null)),
                None => Err(Error::OutcomeUnknown {
                    resource: resource.into(),
                    method: "DELETE".into(),
                    path: p.into(),
                    reason: "connection reset".into(),
                }),
            };
        }
        Ok(if p.ends_with("/metrics/purchases/results") {
            answer(200, &json!({"results": [{"treatmentResults": treatments(0.12)}]}))
        } else if p.ends_with("/metric-groups/funnel/results") {
            answer(
                200,
                &json!({"metrics": [
                    {"metric": {"key": "step-1"}, "results": {"treatmentResults": treatments(0.3)}},
                    {"metric": {"key": "step-2"}, "results": {"treatmentResults": treatments(0.2)}}
                ]}),
            )
        } else if p.ends_with("/results") {
            answer(404, &json!({"code": "not_found", "message": "gone"}))
        } else {
            match &self.experiment {
                Some(x) => answer(200, x),
                None => answer(404, &json!({"code": "not_found", "message": "Unknown experiment"})),
            }
        })
    }
}

fn checkout() -> Value {
    json!({
        "key": "checkout", "name": "Checkout", "_maintainerId": "m", "_creationDate": 1,
        "environmentKey": "production", "_links": {},
        "currentIteration": {
            "_id": "it-1", "hypothesis": "h", "status": "running", "createdAt": 1,
            "primarySingleMetric": {"key": "purchases"},
            "metrics": [{"key": "purchases"}, {"key": "funnel", "isGroup": true}, {"key": "revenue"}],
            "treatments": [{"_id": "t1", "name": "control", "allocationPercent": "50"}]
        }
    })
}

const RESULTS: &str = "GET /api/v2/projects/demo/environments/production/experiments/checkout";

#[test]
fn a_report_reads_every_metric_of_the_iteration_at_once_and_keeps_their_order() {
    let f = fake(Some(checkout()));
    let report = futures::executor::block_on(fetch_report(&f, "demo", "production", "checkout", None)).unwrap();
    assert_eq!(report.iteration_id.as_deref(), Some("it-1"));
    let metrics: Vec<(&str, Option<Vec<&str>>)> = report
        .metrics
        .iter()
        .map(|m| (m.metric.as_str(), m.treatments.as_ref().map(|t| t.iter().map(|r| r.treatment.as_str()).collect())))
        .collect();
    assert_eq!(
        metrics,
        [
            ("purchases", Some(vec!["control", "green"])),
            ("funnel / step-1", Some(vec!["control", "green"])),
            ("funnel / step-2", Some(vec!["control", "green"])),
            ("revenue", None),
        ]
    );
    assert_eq!(report.metrics[0].treatments.as_ref().unwrap()[0].credible_interval, Some([0.1, 0.2]));
    let mut sent = f.sent.lock().unwrap().clone();
    assert_eq!(sent.remove(0), format!("{RESULTS}?expand={}", requests::EXPERIMENT_EXPAND));
    sent.sort();
    assert_eq!(
        sent,
        [
            format!("{RESULTS}/metric-groups/funnel/results?iterationId=it-1"),
            format!("{RESULTS}/metrics/purchases/results?iterationId=it-1"),
            format!("{RESULTS}/metrics/revenue/results?iterationId=it-1"),
        ]
    );
    assert_eq!(f.in_flight.peak(), 3, "the results reads run together");
}

#[test]
fn one_metric_is_read_alone_and_what_the_experiment_lacks_is_said_before_any_results_read() {
    let f = fake(Some(checkout()));
    let report =
        futures::executor::block_on(fetch_report(&f, "demo", "production", "checkout", Some("revenue"))).unwrap();
    assert_eq!(report.metrics, [MetricResults { metric: "revenue".into(), treatments: None }]);
    assert_eq!(f.sent.lock().unwrap().len(), 2);

    let f = fake(Some(checkout()));
    let e = futures::executor::block_on(fetch_report(&f, "demo", "production", "checkout", Some("clicks")));
    assert_eq!(
        e.unwrap_err().to_string(),
        "metric `clicks` is not in experiment demo/production/checkout (iteration it-1): it measures purchases, \
         funnel (metric group) and revenue; pass one of them to --metric, or leave --metric out for all"
    );
    assert_eq!(f.sent.lock().unwrap().len(), 1, "only the experiment was read");

    let mut draft = checkout();
    draft.as_object_mut().unwrap().remove("currentIteration");
    let e = futures::executor::block_on(fetch_report(&fake(Some(draft)), "demo", "production", "checkout", Some("x")));
    assert_eq!(
        e.unwrap_err().to_string(),
        "experiment demo/production/checkout has no iteration, so it has no results for metric `x`"
    );
    let e = futures::executor::block_on(fetch_report(&fake(None), "demo", "production", "nope", None)).unwrap_err();
    assert!(matches!(&e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), "experiment demo/production/nope does not exist");
    assert_eq!(e.hint(), None);
}

#[test]
fn the_metrics_an_iteration_measures_are_listed_once_with_groups_marked() {
    let it: IterationRep = serde_json::from_value(serde_json::json!({
        "hypothesis": "h", "status": "running", "createdAt": 1,
        "primarySingleMetric": {"key": "purchases"},
        "primaryFunnel": {"key": "funnel"},
        "metrics": [{"key": "purchases"}, {"key": "revenue"}, {"key": "funnel", "isGroup": true}],
        "secondaryMetrics": [{"key": "clicks"}]
    }))
    .unwrap();
    let m = measured(&it);
    assert_eq!(
        m,
        [("purchases".into(), false), ("funnel".into(), true), ("revenue".into(), false), ("clicks".into(), false)]
    );
    assert_eq!(listing(&m), "purchases, funnel (metric group), revenue and clicks");
    assert_eq!(listing(&m[..1]), "purchases");
    assert_eq!(listing(&[]), "no metrics");
}

#[test]
fn rows_are_named_from_the_iteration_when_only_an_id_is_given() {
    let it: IterationRep = serde_json::from_value(serde_json::json!({
        "hypothesis": "h", "status": "running", "createdAt": 1,
        "treatments": [{"_id": "t1", "name": "green", "allocationPercent": "50"}]
    }))
    .unwrap();
    let r = ExperimentResults {
        treatment_results: vec![TreatmentResult {
            treatment_id: Some("t1".into()),
            credible_interval: Some(CredibleInterval { lower: 1.0, upper: 2.0 }),
            ..TreatmentResult::default()
        }],
        ..ExperimentResults::default()
    };
    let rows = rows(&r, Some(&it));
    assert_eq!(rows[0].treatment, "green");
    assert_eq!(rows[0].credible_interval, Some([1.0, 2.0]));
}

#[test]
fn the_reset_plan_is_one_delete_without_postconditions_at_its_own_address() {
    let plan = reset_legacy_plan("demo", "banner", "production", "clicks");
    assert_eq!(plan.changes.len(), 1);
    let c = &plan.changes[0];
    assert_eq!(c.address.to_string(), "legacy-results/demo/banner/production/clicks");
    assert_eq!(c.action.as_str(), "reset-results");
    assert_eq!(c.requests, [requests::reset_legacy_results("demo", "banner", "production", "clicks")]);
    assert_eq!(c.requests[0].method, Method::Delete);
    assert!(c.requests[0].expect.is_empty(), "nothing to re-read, so never resent");
    assert_eq!((plan.summary.reset_results, plan.summary.total()), (1, 1));

    // The plan file form parses back to the same plan; the count is left out of plans that reset nothing.
    let text = serde_json::to_value(&plan).unwrap();
    assert_eq!(text["changes"][0]["address"], "legacy-results/demo/banner/production/clicks");
    assert_eq!(text["summary"]["resetResults"], 1);
    assert_eq!(serde_json::from_value::<Plan>(text).unwrap(), plan);
    assert!(serde_json::to_value(Summary::default()).unwrap().get("resetResults").is_none());
}

#[cfg(feature = "http")]
mod reset {
    use super::*;
    use crate::apply::OutcomeStatus;

    fn reset(f: &Fake) -> crate::apply::ApplyReport {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(reset_legacy(f, "demo", "banner", "production", "clicks"))
    }

    const DELETE: &str = "DELETE /api/v2/flags/demo/banner/experiments/production/clicks/results?";

    #[test]
    fn a_reset_is_applied_by_the_applier_and_sent_once_whatever_the_answer() {
        let f = fake(None);
        let report = reset(&f);
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.outcomes[0].address.to_string(), "legacy-results/demo/banner/production/clicks");
        assert_eq!(*f.sent.lock().unwrap(), [DELETE]);

        for (delete, status) in [(Some(409), Some(409)), (Some(404), Some(404)), (None, None)] {
            let f = Fake { delete, ..fake(None) };
            let report = reset(&f);
            let OutcomeStatus::Failed { error, .. } = &report.outcomes[0].status else {
                panic!("{report:?}");
            };
            match (error, status) {
                (Error::Api(e), Some(s)) => assert_eq!(e.status, s),
                (Error::OutcomeUnknown { .. }, None) => {}
                other => panic!("{other:?}"),
            }
            assert_eq!(*f.sent.lock().unwrap(), [DELETE], "no resend and no re-read");
        }
    }
}
