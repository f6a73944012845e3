//! Builds the [`RemoteState`] a plan needs from [`Requirements`], running every read concurrently through
//! [`PlanReads`] (the transport bounds concurrency). Pure `futures`: no tokio or reqwest here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::FuturesUnordered;

use crate::Error;
use crate::api::{Experiment, ExperimentationSettings, Metric, MetricGroup, MetricSummary};
use crate::client::PlanReads;
use crate::remote::{FlagSnapshot, ProjectState, RemoteState, Requirements};

/// One read's result, tagged with what it was for.
enum Fetched {
    Experiments(String, String, Option<Vec<Experiment>>),
    Flag(String, String, Option<FlagSnapshot>),
    Metrics(String, Option<Vec<Metric>>),
    MetricGroups(String, Option<Vec<MetricGroup>>),
    Settings(String, Option<ExperimentationSettings>),
}

/// Fetches everything `req` names: one experiment list per (project, environment), one GET per flag (it carries
/// every environment), metrics and metric groups per project, and settings where required. A project whose
/// metrics list is 404 is `None`; the first error aborts the rest.
pub async fn fetch_remote<R: PlanReads>(reader: &R, req: &Requirements) -> Result<RemoteState, Error> {
    let mut jobs: Vec<BoxFuture<'_, Result<Fetched, Error>>> = Vec::new();
    for (p, e) in &req.experiment_lists {
        jobs.push(
            async move { Ok(Fetched::Experiments(p.clone(), e.clone(), reader.list_experiments(p, e).await?)) }.boxed(),
        );
    }
    for (p, f) in &req.flags {
        jobs.push(async move { Ok(Fetched::Flag(p.clone(), f.clone(), reader.get_flag(p, f).await?)) }.boxed());
    }
    for p in &req.metrics {
        jobs.push(async move { Ok(Fetched::Metrics(p.clone(), reader.list_metrics(p).await?)) }.boxed());
        jobs.push(async move { Ok(Fetched::MetricGroups(p.clone(), reader.list_metric_groups(p).await?)) }.boxed());
    }
    for p in &req.settings {
        jobs.push(async move { Ok(Fetched::Settings(p.clone(), reader.get_settings(p).await?)) }.boxed());
    }
    let mut pending: FuturesUnordered<_> = jobs.into_iter().collect();

    let mut projects: BTreeMap<String, ProjectState> =
        req.projects().into_iter().map(|p| (p, ProjectState::default())).collect();
    let mut missing = Vec::new();
    let mut shared = SharedMetrics::default();
    // Each result is stored as it arrives, so an environment's list is shared down before the next one lands.
    while let Some(r) = pending.try_next().await? {
        match r {
            Fetched::Experiments(p, e, list) => {
                let by_key = list.map(|l| {
                    l.into_iter()
                        .map(|mut x| {
                            shared.experiment(&mut x);
                            (x.key.clone(), x)
                        })
                        .collect()
                });
                projects.entry(p).or_default().environments.insert(e, by_key);
            }
            Fetched::Flag(p, f, flag) => {
                projects.entry(p).or_default().flags.insert(f, flag);
            }
            Fetched::Metrics(p, None) => missing.push(p),
            Fetched::Metrics(p, Some(list)) => {
                projects.entry(p).or_default().metrics = list.into_iter().map(|m| (m.key.clone(), m)).collect();
            }
            Fetched::MetricGroups(p, groups) => {
                projects.entry(p).or_default().metric_groups =
                    groups.unwrap_or_default().into_iter().map(|g| (g.key.clone(), g)).collect();
            }
            Fetched::Settings(p, settings) => projects.entry(p).or_default().settings = settings,
        }
    }
    let mut state = RemoteState { projects: projects.into_iter().map(|(k, v)| (k, Some(v))).collect() };
    for p in missing {
        state.projects.insert(p, None);
    }
    Ok(state)
}

/// Makes equal metric summaries one allocation. Every iteration repeats, in full, the project metrics it
/// measures (key, name, event key, version, links), so at thousands of experiments most of the fetched
/// experiments' memory was copies of the same few hundred metrics.
#[derive(Default)]
struct SharedMetrics(HashMap<String, Vec<Arc<MetricSummary>>>);

impl SharedMetrics {
    fn experiment(&mut self, e: &mut Experiment) {
        let slots = e.current_iteration.iter_mut().chain(e.draft_iteration.iter_mut());
        for it in slots.map(|b| &mut **b).chain(e.previous_iterations.iter_mut()) {
            let primary = it.primary_metric.iter_mut().chain(it.primary_single_metric.iter_mut());
            for m in primary.chain(it.primary_funnel.iter_mut()).chain(&mut it.metrics).chain(&mut it.secondary_metrics)
            {
                self.share(m);
            }
        }
    }

    fn share(&mut self, m: &mut Arc<MetricSummary>) {
        // A key can carry several versions, or differ in how an iteration embeds it (as a group member, say):
        // only an equal summary is shared.
        match self.0.get_mut(m.key.as_str()) {
            Some(known) => match known.iter().find(|k| ***k == **m) {
                Some(k) => *m = Arc::clone(k),
                None => known.push(Arc::clone(m)),
            },
            None => {
                self.0.insert(m.key.clone(), vec![Arc::clone(m)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
                return Err(Error::Transport {
                    resource: format!("flag {p}/{f}"),
                    url: "u".into(),
                    reason: "r".into(),
                });
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
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    fn requirements() -> Requirements {
        Requirements {
            experiment_lists: [pair("demo", "production"), pair("demo", "nowhere"), pair("other", "staging")].into(),
            flags: [pair("demo", "checkout-button"), pair("demo", "gone")].into(),
            metrics: ["demo".to_owned(), "other".to_owned()].into(),
            settings: ["demo".to_owned()].into(),
        }
    }

    #[test]
    fn fetches_each_requirement_once_and_concurrently() {
        let fake = Fake { missing_projects: ["other".to_owned()].into(), ..Fake::default() };
        let state = futures::executor::block_on(fetch_remote(&fake, &requirements())).unwrap();

        let mut calls = fake.calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(
            calls,
            [
                "experiments demo/nowhere",
                "experiments demo/production",
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
        assert_eq!(fake.in_flight.peak(), 10, "all reads must be in flight together");

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
}
