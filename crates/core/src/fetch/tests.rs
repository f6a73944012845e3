//! Tests of the plan's fetch: which reads it makes, how many at once, and what it files where.
use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::testing::InFlight;

/// A reader that records calls and tracks how many are in flight at once.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    in_flight: InFlight,
    missing_projects: BTreeSet<String>,
    fail_flag: Option<String>,
    /// Projects whose metric list answers 401, as for a token without permission there.
    forbidden_projects: BTreeSet<String>,
    /// Flags in the project's list (`f000`, `f001`, …), each with every environment asked for.
    listed_flags: usize,
    /// What the list's `totalCount` says, when it lies.
    reported_total: Option<u64>,
    /// The page size the service allows (below what is asked, when it caps it).
    cap: Option<usize>,
}

impl Fake {
    async fn visit(&self, call: String) {
        self.calls.lock().unwrap().push(call);
        self.in_flight.visit().await;
    }
}

fn exp(key: &str) -> Experiment {
    Experiment { key: key.into(), name: key.into(), ..Experiment::default() }
}

impl PlanReads for Fake {
    async fn list_experiments(&self, p: &str, e: &str) -> Result<Option<Vec<Experiment>>, Error> {
        self.visit(format!("experiments {p}/{e}")).await;
        if e == "nowhere" {
            return Ok(None);
        }
        Ok(Some(vec![exp(&format!("{e}-a")), exp(&format!("{e}-b"))]))
    }
    async fn get_flag(&self, p: &str, f: &str) -> Result<Option<FlagSnapshot>, Error> {
        self.visit(format!("flag {p}/{f}")).await;
        if self.fail_flag.as_deref() == Some(f) {
            return Err(Error::Transport { resource: format!("flag {p}/{f}"), url: "u".into(), reason: "r".into() });
        }
        if f == "gone" {
            return Ok(None);
        }
        Ok(Some(FlagSnapshot::from_json(json!({"key": f, "_version": 3})).unwrap()))
    }
    async fn list_metrics(&self, p: &str) -> Result<Option<Vec<Metric>>, Error> {
        self.visit(format!("metrics {p}")).await;
        if self.missing_projects.contains(p) {
            return Ok(None);
        }
        if self.forbidden_projects.contains(p) {
            return Err(Error::from(crate::ApiError {
                resource: format!("metrics of project {p}"),
                method: "GET".into(),
                path: format!("/api/v2/metrics/{p}"),
                status: 401,
                code: Some("unauthorized".into()),
                message: format!("no permission in project `{p}`"),
                request_id: None,
            }));
        }
        Ok(Some(vec![Metric { key: "m1".into(), ..Metric::default() }]))
    }
    async fn list_metric_groups(&self, p: &str) -> Result<Option<Vec<MetricGroup>>, Error> {
        self.visit(format!("groups {p}")).await;
        if self.missing_projects.contains(p) {
            return Ok(None);
        }
        Ok(Some(vec![MetricGroup { key: "g1".into(), ..MetricGroup::default() }]))
    }
    async fn get_settings(&self, p: &str) -> Result<Option<ExperimentationSettings>, Error> {
        self.visit(format!("settings {p}")).await;
        Ok(Some(ExperimentationSettings { project_key: Some(p.into()), ..ExperimentationSettings::default() }))
    }
    async fn list_experiments_any_env(&self, p: &str) -> Result<Option<Vec<Experiment>>, Error> {
        self.visit(format!("experiments {p}")).await;
        if self.missing_projects.contains(p) {
            return Ok(None);
        }
        Ok(Some(
            ["production", "staging"]
                .iter()
                .flat_map(|e| {
                    ["a", "b"].map(|k| Experiment { environment_key: (*e).into(), ..exp(&format!("{e}-{k}")) })
                })
                .collect(),
        ))
    }
    async fn flag_page(&self, p: &str, e: &str, offset: u64) -> Result<Option<FlagPage>, Error> {
        self.visit(format!("flag page {p}/{e}@{offset}")).await;
        if e == "nowhere" {
            return Ok(None);
        }
        let size = self.cap.unwrap_or(FLAG_ENV_PAGE as usize);
        let start = usize::try_from(offset).unwrap().min(self.listed_flags);
        let end = (start + size).min(self.listed_flags);
        let items = (start..end)
            .map(|i| json!({"key": format!("f{i:03}"), "_version": 1, "environments": {e: {"version": i}}}))
            .collect();
        Ok(Some(FlagPage {
            items,
            total: Some(self.reported_total.unwrap_or(self.listed_flags as u64)),
            next: end < self.listed_flags,
        }))
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn requirements() -> Requirements {
    Requirements {
        experiment_lists: [pair("demo", "production"), pair("demo", "nowhere"), pair("other", "staging")].into(),
        flags: [pair("demo", "checkout-button"), pair("demo", "gone")].into(),
        flag_environments: [pair("demo", "production"), pair("demo", "nowhere")].into(),
        metrics: ["demo".to_owned(), "other".to_owned()].into(),
        settings: ["demo".to_owned()].into(),
        ..Requirements::default()
    }
}

#[test]
fn fetches_each_requirement_once_and_concurrently() {
    let fake = Fake { missing_projects: ["other".to_owned()].into(), ..Fake::default() };
    let state = futures::executor::block_on(fetch_remote(&fake, &requirements())).unwrap();

    let mut calls = fake.calls.lock().unwrap().clone();
    calls.sort();
    // Two environments of `demo`: one listing of them all. `nowhere` has no experiment in it and no flag
    // shows it, so only its own list can tell whether it exists (it does not). Two flags in two environments:
    // GETs, as the list would take at least two requests too.
    assert_eq!(
        calls,
        [
            "experiments demo",
            "experiments demo/nowhere",
            "experiments other/staging",
            "flag demo/checkout-button",
            "flag demo/gone",
            "groups demo",
            "groups other",
            "metrics demo",
            "metrics other",
            "settings demo",
        ]
    );
    assert_eq!(fake.in_flight.peak(), 9, "every first-round read must be in flight together");

    assert_eq!(state.projects.len(), 2);
    assert_eq!(state.projects["other"], None, "a project whose metrics 404 is absent");
    let demo = state.projects["demo"].as_ref().unwrap();
    let prod = demo.environments["production"].as_ref().unwrap();
    assert_eq!(prod.keys().collect::<Vec<_>>(), ["production-a", "production-b"]);
    assert_eq!(demo.environments["nowhere"], None);
    assert_eq!(demo.flags["checkout-button"].as_ref().unwrap().flag.version, 3);
    assert_eq!(demo.flags["gone"], None);
    assert_eq!(demo.metrics.keys().collect::<Vec<_>>(), ["m1"]);
    assert_eq!(demo.metric_groups.keys().collect::<Vec<_>>(), ["g1"]);
    assert_eq!(demo.settings.as_ref().unwrap().project_key.as_deref(), Some("demo"));
}

fn flags_requirement(keys: &[&str], envs: &[&str]) -> Requirements {
    Requirements {
        flags: keys.iter().map(|k| pair("demo", k)).collect(),
        flag_environments: envs.iter().map(|e| pair("demo", e)).collect(),
        ..Requirements::default()
    }
}

fn flag_calls(fake: &Fake) -> Vec<String> {
    let mut calls = fake.calls.lock().unwrap().clone();
    calls.sort();
    calls
}

#[test]
fn many_flags_are_read_from_the_list_in_each_environment_and_the_rest_by_get() {
    // 150 flags listed, 100 a page: 2 pages × 2 environments = 4 requests, against 6 GETs.
    let fake = Fake { listed_flags: 150, ..Fake::default() };
    let keys = ["f000", "f099", "f100", "f149", "archived", "gone"];
    let state = futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&keys, &["production", "staging"])))
        .unwrap();
    assert_eq!(
        flag_calls(&fake),
        [
            "flag demo/archived",
            "flag demo/gone",
            "flag page demo/production@0",
            "flag page demo/production@100",
            "flag page demo/staging@0",
            "flag page demo/staging@100",
        ],
        "flags the list leaves out are read one by one"
    );
    let demo = state.projects["demo"].as_ref().unwrap();
    let f = &demo.flags["f100"].as_ref().unwrap().flag;
    assert_eq!(f.environments.keys().collect::<Vec<_>>(), ["production", "staging"], "one flag, both environments");
    assert_eq!(f.environments["staging"].version, 100);
    assert!(demo.flags.contains_key("archived") && demo.flags.contains_key("f149"));
    assert!(!demo.flags.contains_key("f001"), "only referenced flags are kept");
}

#[test]
fn few_flags_or_a_long_list_are_read_by_get() {
    // No more flags than environments: GETs cannot lose, so the list is not even asked.
    let fake = Fake { listed_flags: 150, ..Fake::default() };
    futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&["f000", "f001"], &["production", "staging"])))
        .unwrap();
    assert_eq!(flag_calls(&fake), ["flag demo/f000", "flag demo/f001"]);
    // 3 flags, one environment, 1,000 listed: 10 pages against 3 GETs; the first page, already read, serves
    // the flag it holds.
    let fake = Fake { listed_flags: 1000, ..Fake::default() };
    futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&["f000", "f500", "f900"], &["production"])))
        .unwrap();
    assert_eq!(flag_calls(&fake), ["flag demo/f500", "flag demo/f900", "flag page demo/production@0"]);
}

#[test]
fn the_list_is_read_to_its_end_whatever_its_total_or_page_size_say() {
    // The total says 50 and pages come 40 at a time: `_links.next` leads through all 130.
    let fake = Fake { listed_flags: 130, reported_total: Some(50), cap: Some(40), ..Fake::default() };
    let keys: Vec<String> = (0..130).step_by(10).map(|i| format!("f{i:03}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let state = futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&keys, &["production"]))).unwrap();
    assert_eq!(
        flag_calls(&fake),
        [
            "flag page demo/production@0",
            "flag page demo/production@120",
            "flag page demo/production@40",
            "flag page demo/production@80",
        ]
    );
    let demo = state.projects["demo"].as_ref().unwrap();
    assert!(keys.iter().all(|k| demo.flags[*k].is_some()), "every referenced flag came from the list");
}

#[test]
fn a_project_that_answers_401_is_forbidden_and_the_others_are_read() {
    let fake = Fake { forbidden_projects: ["other".to_owned()].into(), ..Fake::default() };
    let state = futures::executor::block_on(fetch_remote(&fake, &requirements())).unwrap();
    assert!(!state.projects.contains_key("other"), "{:?}", state.projects.keys().collect::<Vec<_>>());
    assert_eq!(state.forbidden["other"], "no permission in project `other`");
    assert!(state.projects["demo"].is_some());
    // No project at all: the token is invalid, and that is an error.
    let fake = Fake { forbidden_projects: ["demo".to_owned(), "other".to_owned()].into(), ..Fake::default() };
    let e = futures::executor::block_on(fetch_remote(&fake, &requirements())).unwrap_err();
    assert!(matches!(&e, Error::Api(api) if api.status == 401), "{e}");
}

#[test]
fn projects_without_metrics_requirement_still_appear() {
    let fake = Fake::default();
    let req = Requirements { flags: [pair("legacy", "f")].into(), ..Requirements::default() };
    let state = futures::executor::block_on(fetch_remote(&fake, &req)).unwrap();
    let p = state.projects["legacy"].as_ref().unwrap();
    assert!(p.flags["f"].is_some());
    assert!(p.metrics.is_empty() && p.settings.is_none());
    assert_eq!(fake.calls.lock().unwrap().as_slice(), ["flag legacy/f"]);
}

#[test]
fn the_first_error_is_returned() {
    let fake = Fake { fail_flag: Some("checkout-button".into()), ..Fake::default() };
    let e = futures::executor::block_on(fetch_remote(&fake, &requirements())).unwrap_err();
    assert_eq!(e.to_string(), "flag demo/checkout-button: cannot reach LaunchDarkly at u: r");
}

fn with_metrics(key: &str, metrics: serde_json::Value) -> Experiment {
    serde_json::from_value(json!({
        "key": key, "name": key,
        "currentIteration": {"hypothesis": "h", "status": "running", "metrics": metrics,
            "primarySingleMetric": {"key": "m1", "name": "M1", "_versionId": "v1"}},
        "previousIterations": [{"hypothesis": "h", "status": "stopped",
            "metrics": [{"key": "m1", "name": "M1", "_versionId": "v1"}]}],
    }))
    .unwrap()
}

#[test]
fn equal_metric_summaries_become_one_allocation_and_unequal_ones_stay_apart() {
    let m1 = json!({"key": "m1", "name": "M1", "_versionId": "v1"});
    let m1_v2 = json!({"key": "m1", "name": "M1", "_versionId": "v2"});
    let m2 = json!({"key": "m2", "name": "M2", "_links": {"self": {"href": "/m2"}}});
    let mut a = with_metrics("a", json!([m1, m2]));
    let mut b = with_metrics("b", json!([m1_v2, m2]));
    let (before_a, before_b) = (a.clone(), b.clone());
    let mut shared = SharedMetrics::default();
    shared.experiment(&mut a);
    shared.experiment(&mut b);
    assert_eq!((&a, &b), (&before_a, &before_b), "sharing changes no value");

    let (ia, ib) = (a.current_iteration.as_deref().unwrap(), b.current_iteration.as_deref().unwrap());
    let primary = ia.primary_single_metric.as_ref().unwrap();
    assert!(Arc::ptr_eq(primary, &ia.metrics[0]), "the primary and the list entry are one summary");
    assert!(Arc::ptr_eq(primary, &a.previous_iterations[0].metrics[0]), "so is an earlier iteration's");
    assert!(Arc::ptr_eq(primary, ib.primary_single_metric.as_ref().unwrap()), "across experiments too");
    assert!(Arc::ptr_eq(&ia.metrics[1], &ib.metrics[1]));
    assert!(!Arc::ptr_eq(&ia.metrics[0], &ib.metrics[0]), "another version of m1 is its own summary");
    assert_eq!(ib.metrics[0].version_id.as_deref(), Some("v2"));
    assert_eq!(shared.0["m1"].len(), 2);
}

impl crate::client::OrgReads for Fake {
    async fn list_layers(&self, p: &str) -> Result<Option<Vec<crate::api::Layer>>, Error> {
        self.visit(format!("layers {p}")).await;
        Ok(Some(Vec::new()))
    }

    async fn list_holdouts(&self, p: &str, e: &str) -> Result<Option<Vec<crate::api::Holdout>>, Error> {
        self.visit(format!("holdouts {p}/{e}")).await;
        Ok(Some(Vec::new()))
    }

    async fn get_holdout(&self, p: &str, e: &str, k: &str) -> Result<Option<crate::api::Holdout>, Error> {
        self.visit(format!("holdout {p}/{e}/{k}")).await;
        Ok(None)
    }
}
