//! The read views against a fake LaunchDarkly: which listing each choice of environments sends and with which
//! query, rows, dates, and `show` of each kind.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::client::{Answer, Transport};
use crate::plan::{Address, PlannedRequest};
use crate::spec::SpecDocument;

/// Project `demo` with environments `production` and `staging`; records every request.
#[derive(Default)]
struct Fake {
    sent: Mutex<Vec<PlannedRequest>>,
}

fn experiment(key: &str, env: &str) -> Value {
    json!({"key": key, "name": format!("Experiment {key}"), "_maintainerId": "m", "_creationDate": 1,
           "environmentKey": env, "_links": {}})
}

fn iteration(id: &str, status: &str) -> Value {
    json!({"_id": id, "hypothesis": "Green sells", "status": status, "createdAt": 1_714_555_800_000_i64,
           "startedAt": 1_714_556_000_000_i64,
           "flags": {"checkout-button": {"targetingRule": "fallthrough", "_links": {}}},
           "primarySingleMetric": {"key": "orders", "_links": {}},
           "metrics": [{"key": "orders", "_links": {}}],
           "treatments": [
               {"_id": "t-c", "name": "Control", "allocationPercent": "60", "baseline": true,
                "parameters": [{"flagKey": "checkout-button", "variationId": "v-grey"}]},
               {"_id": "t-g", "name": "Green", "allocationPercent": "40", "baseline": false,
                "parameters": [{"flagKey": "checkout-button", "variationId": "v-green"}]}]})
}

fn running() -> Value {
    let mut x = experiment("checkout", "production");
    x["currentIteration"] = iteration("it-2", "running");
    x["previousIterations"] = json!([{"_id": "it-1", "hypothesis": "h", "status": "stopped", "createdAt": 1}]);
    x
}

fn list(items: Vec<Value>) -> Value {
    let n = items.len();
    json!({"items": items, "total_count": n, "_links": {}})
}

impl Transport for Fake {
    async fn execute(&self, r: &PlannedRequest, _: &str) -> Result<Answer, Error> {
        self.sent.lock().unwrap().push(r.clone());
        let body = match r.path.as_str() {
            "/api/v2/projects/demo/experiments" => {
                list(vec![experiment("zeta", "staging"), running(), experiment("alpha", "staging")])
            }
            "/api/v2/projects/demo/environments/production/experiments" => list(vec![running()]),
            "/api/v2/projects/demo/environments/staging/experiments" => list(vec![experiment("b", "staging")]),
            "/api/v2/projects/demo/environments/production/experiments/checkout" => running(),
            "/api/v2/flags/demo/checkout-button" => json!({"key": "checkout-button", "_version": 3,
                "variations": [{"_id": "v-grey", "value": "grey", "name": "control"},
                               {"_id": "v-green", "value": "green", "name": "green"}],
                "environments": {"production": {"on": true, "version": 4}}}),
            "/api/v2/metrics/demo/orders" => json!({"key": "orders", "name": "Orders", "kind": "custom",
                "eventKey": "order", "_links": {}}),
            _ => return Ok(Answer { status: 404, body: br#"{"code":"not_found","message":"nope"}"#.to_vec() }),
        };
        Ok(Answer { status: 200, body: body.to_string().into_bytes() })
    }
}

/// `(path, filter, lifecycleState, expand)` of one request.
type Sent = (String, Option<String>, Option<String>, Option<String>);

impl Fake {
    /// Every request, sorted.
    fn sent(&self) -> Vec<Sent> {
        let mut out: Vec<_> = self
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let q = |k: &str| r.query.get(k).cloned();
                (r.path.clone(), q("filter"), q("lifecycleState"), q("expand"))
            })
            .collect();
        out.sort();
        out
    }
}

fn run(f: &Fake, envs: &[&str], filter: &ExperimentFilter) -> Result<Vec<Experiment>, Error> {
    let envs: Vec<String> = envs.iter().map(|e| (*e).to_owned()).collect();
    futures::executor::block_on(list_experiments(f, "demo", &envs, filter))
}

fn keys(xs: &[Experiment]) -> Vec<(&str, &str)> {
    xs.iter().map(|x| (x.environment_key.as_str(), x.key.as_str())).collect()
}

#[test]
fn the_filter_is_the_contracts_field_value_terms_and_archived_is_a_lifecycle_state() {
    assert_eq!(ExperimentFilter::default().filter_param(), None);
    assert_eq!(ExperimentFilter::default().lifecycle_state(), "active");
    let all = ExperimentFilter {
        status: Some(IterationStatus::NotStarted),
        flag: Some("checkout-button".into()),
        metric: Some("orders".into()),
        archived: true,
    };
    assert_eq!(all.filter_param().as_deref(), Some("status:not_started,flagKey:checkout-button,metricKey:orders"));
    assert_eq!(all.lifecycle_state(), "archived");
    assert_eq!(
        all.describe(),
        "archived, with status not_started, using flag checkout-button, measuring metric orders"
    );
    let metric = ExperimentFilter { metric: Some("orders".into()), ..ExperimentFilter::default() };
    assert_eq!(metric.filter_param().as_deref(), Some("metricKey:orders"));
}

#[test]
fn no_environment_is_one_any_env_listing_with_the_filter_on_the_server() {
    let f = Fake::default();
    let filter = ExperimentFilter { status: Some(IterationStatus::Running), ..ExperimentFilter::default() };
    let got = run(&f, &[], &filter).unwrap();
    assert_eq!(keys(&got), [("production", "checkout"), ("staging", "alpha"), ("staging", "zeta")]);
    assert_eq!(
        f.sent(),
        [(
            "/api/v2/projects/demo/experiments".to_owned(),
            Some("status:running".to_owned()),
            Some("active".to_owned()),
            Some("draftIteration,previousIterations".to_owned())
        )]
    );
}

#[test]
fn named_environments_are_listed_each_with_the_same_filter_and_a_missing_one_is_named() {
    let f = Fake::default();
    let filter = ExperimentFilter { flag: Some("checkout-button".into()), archived: true, ..Default::default() };
    let got = run(&f, &["staging", "production", "staging"], &filter).unwrap();
    assert_eq!(keys(&got), [("production", "checkout"), ("staging", "b")]);
    let sent = f.sent();
    assert_eq!(sent.len(), 2, "one listing per environment, a repeated one once: {sent:?}");
    for (path, filter, lifecycle, _) in &sent {
        assert!(path.starts_with("/api/v2/projects/demo/environments/"), "{path}");
        assert_eq!((filter.as_deref(), lifecycle.as_deref()), (Some("flagKey:checkout-button"), Some("archived")));
    }

    let e = run(&Fake::default(), &["production", "nowhere"], &ExperimentFilter::default()).unwrap_err();
    assert_eq!(e.to_string(), "environment demo/nowhere does not exist (or project demo does not)");
    let e = futures::executor::block_on(list_experiments(&Fake::default(), "nope", &[], &ExperimentFilter::default()))
        .unwrap_err();
    assert_eq!(e.to_string(), "project nope does not exist");
}

#[test]
fn a_key_the_filter_syntax_cannot_carry_is_refused_before_any_request() {
    let f = Fake::default();
    let filter = ExperimentFilter { flag: Some("a,status:running".into()), ..Default::default() };
    let e = run(&f, &[], &filter).unwrap_err();
    assert!(e.to_string().contains("flag key `a,status:running` cannot be sent"), "{e}");
    assert!(f.sent().is_empty());
}

#[test]
fn a_row_shows_status_flags_start_and_iterations() {
    let x: Experiment = serde_json::from_value(running()).unwrap();
    let row = ExperimentRow::of(&x);
    assert_eq!(
        serde_json::to_value(&row).unwrap(),
        json!({"key": "checkout", "environment": "production", "name": "Experiment checkout", "status": "running",
               "archived": false, "flags": ["checkout-button"], "startedAt": "2024-05-01T09:33:20Z",
               "iterations": 2})
    );

    // Never started: the draft's flags, no start, one iteration.
    let mut draft = experiment("d", "staging");
    draft["draftIteration"] = iteration("it-d", "not_started");
    draft["archivedDate"] = json!(5);
    let row = ExperimentRow::of(&serde_json::from_value(draft).unwrap());
    assert_eq!(
        (row.status, row.archived, row.started_at, row.iterations),
        (IterationStatus::NotStarted, true, None, 1)
    );
    assert_eq!(row.flags, ["checkout-button"]);
}

#[test]
fn dates_are_utc_to_the_second() {
    assert_eq!(utc(Millis(0)), "1970-01-01T00:00:00Z");
    assert_eq!(utc(Millis(951_782_400_000)), "2000-02-29T00:00:00Z");
    assert_eq!(utc(Millis(1_700_000_000_999)), "2023-11-14T22:13:20Z");
    assert_eq!(utc(Millis(-1)), "1969-12-31T23:59:59Z");
    assert_eq!(utc(Millis(4_102_444_800_000)), "2100-01-01T00:00:00Z");
}

fn shown(f: &Fake, address: &str) -> Result<Option<Shown>, Error> {
    let address = Address::try_from(address.to_owned()).unwrap();
    futures::executor::block_on(show(f, &address))
}

#[test]
fn show_describes_an_experiment_with_exports_spec_and_its_status() {
    let f = Fake::default();
    let s = shown(&f, "experiment/demo/production/checkout").unwrap().unwrap();
    let SpecDocument::Experiment(spec) = &s.document else { panic!("{:?}", s.document) };
    assert_eq!((spec.key.as_str(), spec.iteration.treatments.len()), ("checkout", 2));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(
        serde_json::to_value(s.status).unwrap(),
        json!({"archivedAt": null, "iterations": 2, "draftPending": false, "iteration": {
            "id": "it-2", "number": 2, "status": "running", "since": "2024-05-01T09:33:20Z",
            "createdAt": "2024-05-01T09:30:00Z", "startedAt": "2024-05-01T09:33:20Z", "endedAt": null,
            "treatments": [
                {"name": "Control", "allocationPercent": "60", "baseline": true, "winner": false},
                {"name": "Green", "allocationPercent": "40", "baseline": false, "winner": false}]}})
    );
    // The layers too, for the experiment's `layer:`; no holdout list, since it names no holdout.
    let paths: Vec<String> = f.sent().into_iter().map(|s| s.0).collect();
    assert_eq!(
        paths,
        [
            "/api/v2/flags/demo/checkout-button",
            "/api/v2/projects/demo/environments/production/experiments/checkout",
            "/api/v2/projects/demo/layers"
        ]
    );
}

#[test]
fn a_stopped_iteration_is_dated_by_its_end_and_names_its_winner() {
    let mut x = running();
    x["currentIteration"]["status"] = json!("stopped");
    x["currentIteration"]["endedAt"] = json!(1_714_600_000_000_i64);
    x["currentIteration"]["winningTreatmentId"] = json!("t-g");
    x["draftIteration"] = iteration("it-3", "not_started");
    let s = show::status(&serde_json::from_value(x).unwrap());
    assert_eq!((s.iterations, s.draft_pending), (3, true));
    let it = s.iteration.unwrap();
    assert_eq!(it.since.as_deref(), Some("2024-05-01T21:46:40Z"));
    let winners: Vec<(&str, bool)> = it.treatments.iter().map(|t| (t.name.as_str(), t.winner)).collect();
    assert_eq!(winners, [("Control", false), ("Green", true)]);
}

#[test]
fn show_reads_a_metric_and_answers_none_for_what_does_not_exist() {
    let f = Fake::default();
    let s = shown(&f, "metric/demo/orders").unwrap().unwrap();
    assert!(matches!(&s.document, SpecDocument::Metric(m) if m.key == "orders"), "{:?}", s.document);
    assert_eq!(s.status, None);
    assert_eq!(shown(&f, "metric/demo/gone").unwrap(), None);
    assert_eq!(shown(&f, "experiment/demo/production/gone").unwrap(), None);
    assert_eq!(shown(&f, "metric-group/demo/gone").unwrap(), None);
    assert_eq!(shown(&f, "experimentation-settings/gone").unwrap(), None);
    assert_eq!(shown(&f, "legacy/demo/gone").unwrap(), None);
    let e = shown(&f, "legacy-results/demo/banner/production/clicks").unwrap_err();
    assert!(e.to_string().contains("cannot be shown"), "{e}");
    assert!(e.hint().unwrap().contains("experiment/<project>/<environment>/<key>"), "{e:?}");
}
