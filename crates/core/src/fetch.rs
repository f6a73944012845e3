//! Builds the [`RemoteState`] a plan needs from [`Requirements`] with the fewest requests the API allows, running
//! every read concurrently through [`PlanReads`] (the transport bounds concurrency). Pure `futures`: no tokio or
//! reqwest here.
//!
//! How it chooses, per project:
//! - **experiments:** one `getExperimentsAnyEnv` listing when the specs target two or more of its environments,
//!   else the one environment's list. An environment the listing shows no experiment in, and that no flag read
//!   confirms, is then listed on its own: only that answer (404) tells a missing environment from an empty one;
//! - **flags:** one GET per referenced flag, or the flag list with each needed environment's configuration,
//!   whichever takes fewer requests. The list's first page tells its size (`totalCount`); it is read only when
//!   there are more flags than environments to read them in, since otherwise GETs cannot lose. Referenced flags the
//!   list leaves out (archived ones, or flags that do not exist) are then read one by one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt, try_join_all};
use futures::stream::FuturesUnordered;
use serde_json::Value;

use crate::Error;
use crate::api::{Experiment, ExperimentationSettings, Metric, MetricGroup, MetricSummary};
use crate::client::{FlagPage, PlanReads};
use crate::remote::{FlagSnapshot, ProjectState, RemoteState, Requirements};
use crate::requests::FLAG_ENV_PAGE;

/// One read's result, tagged with what it was for.
enum Fetched {
    Experiments(String, String, Option<Vec<Experiment>>),
    AnyEnv(String, Option<Vec<Experiment>>),
    Flags(String, FlagsRead),
    Metrics(String, Option<Vec<Metric>>),
    MetricGroups(String, Option<Vec<MetricGroup>>),
    Settings(String, Option<ExperimentationSettings>),
    /// A read of the project answered 401: the token may not read it (or is invalid, when no project can be read).
    Forbidden(String, Box<crate::ApiError>),
}

/// A 401 on a read of `project` becomes [`Fetched::Forbidden`]; other errors stay errors.
fn forbidden_is_data<'a>(
    project: &'a str,
    job: BoxFuture<'a, Result<Fetched, Error>>,
) -> BoxFuture<'a, Result<Fetched, Error>> {
    async move {
        match job.await {
            Err(Error::Api(api)) if api.status == 401 => Ok(Fetched::Forbidden(project.to_owned(), api)),
            other => other,
        }
    }
    .boxed()
}

/// The referenced flags of a project, and the environments the reads proved exist.
#[derive(Default)]
pub(crate) struct FlagsRead {
    pub(crate) flags: BTreeMap<String, Option<FlagSnapshot>>,
    pub(crate) environments: BTreeSet<String>,
}

fn by_project(pairs: &BTreeSet<(String, String)>) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (p, x) in pairs {
        out.entry(p.as_str()).or_default().push(x.as_str());
    }
    out
}

/// Fetches everything `req` names (see the module's rules). A project whose metrics list is 404 is `None`; the
/// first error aborts the rest.
pub async fn fetch_remote<R: PlanReads>(reader: &R, req: &Requirements) -> Result<RemoteState, Error> {
    let lists = by_project(&req.experiment_lists);
    let flags = by_project(&req.flags);
    let flag_envs = by_project(&req.flag_environments);
    // Each job is tagged with its project, so that a 401 refuses that project only.
    let mut jobs: Vec<(&str, BoxFuture<'_, Result<Fetched, Error>>)> = Vec::new();
    for (p, envs) in &lists {
        if envs.len() >= 2 {
            jobs.push((
                p,
                async move { Ok(Fetched::AnyEnv((*p).to_owned(), reader.list_experiments_any_env(p).await?)) }.boxed(),
            ));
        } else {
            for e in envs {
                jobs.push((
                    p,
                    async move {
                        Ok(Fetched::Experiments((*p).to_owned(), (*e).to_owned(), reader.list_experiments(p, e).await?))
                    }
                    .boxed(),
                ));
            }
        }
    }
    for (p, keys) in &flags {
        let envs = flag_envs.get(p).cloned().unwrap_or_default();
        jobs.push((
            p,
            async move { Ok(Fetched::Flags((*p).to_owned(), read_flags(reader, p, keys, &envs).await?)) }.boxed(),
        ));
    }
    for p in &req.metrics {
        jobs.push((p, async move { Ok(Fetched::Metrics(p.clone(), reader.list_metrics(p).await?)) }.boxed()));
        jobs.push((
            p,
            async move { Ok(Fetched::MetricGroups(p.clone(), reader.list_metric_groups(p).await?)) }.boxed(),
        ));
    }
    for p in &req.settings {
        jobs.push((p, async move { Ok(Fetched::Settings(p.clone(), reader.get_settings(p).await?)) }.boxed()));
    }
    let jobs = jobs.into_iter().map(|(p, job)| forbidden_is_data(p, job));
    let mut pending: FuturesUnordered<_> = jobs.into_iter().collect();

    let mut forbidden: BTreeMap<String, Box<crate::ApiError>> = BTreeMap::new();
    let mut projects: BTreeMap<String, ProjectState> =
        req.projects().into_iter().map(|p| (p, ProjectState::default())).collect();
    let mut missing = Vec::new();
    let mut shared = SharedMetrics::default();
    let mut any_env: Vec<(String, Option<Vec<Experiment>>)> = Vec::new();
    let mut known_envs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Each result is stored as it arrives, so an environment's list is shared down before the next one lands.
    while let Some(r) = pending.try_next().await? {
        match r {
            Fetched::Experiments(p, e, list) => {
                let by_key = list.map(|l| l.into_iter().map(|x| shared.keyed(x)).collect());
                projects.entry(p).or_default().environments.insert(e, by_key);
            }
            // Filed once the flags are in: they may prove an environment the listing shows empty.
            Fetched::AnyEnv(p, list) => any_env.push((p, list)),
            Fetched::Flags(p, read) => {
                known_envs.entry(p.clone()).or_default().extend(read.environments);
                projects.entry(p).or_default().flags.extend(read.flags);
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
            Fetched::Forbidden(p, e) => {
                forbidden.entry(p).or_insert(e);
            }
        }
    }
    // A token no project accepts is simply invalid: that is an error, not a plan of refusals.
    if forbidden.len() == projects.len()
        && let Some((_, api)) = forbidden.pop_first()
    {
        return Err(Error::Api(api));
    }
    any_env.retain(|(p, _)| !forbidden.contains_key(p));
    let mut unconfirmed: Vec<(String, String)> = Vec::new();
    for (p, list) in any_env {
        let envs = lists.get(p.as_str()).cloned().unwrap_or_default();
        let state = projects.entry(p.clone()).or_default();
        let Some(list) = list else {
            for e in envs {
                state.environments.insert(e.to_owned(), None);
            }
            continue;
        };
        let mut per_env: BTreeMap<String, BTreeMap<String, Experiment>> =
            envs.iter().map(|e| ((*e).to_owned(), BTreeMap::new())).collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for x in list {
            seen.insert(x.environment_key.clone());
            // Experiments of environments no spec targets are not the plan's business.
            if let Some(m) = per_env.get_mut(&x.environment_key) {
                let (k, x) = shared.keyed(x);
                m.insert(k, x);
            }
        }
        let known = known_envs.get(&p);
        for (e, m) in per_env {
            if seen.contains(&e) || known.is_some_and(|k| k.contains(&e)) {
                state.environments.insert(e, Some(m));
            } else {
                unconfirmed.push((p.clone(), e));
            }
        }
    }
    let confirmed = try_join_all(unconfirmed.iter().map(|(p, e)| reader.list_experiments(p, e))).await?;
    for ((p, e), list) in unconfirmed.into_iter().zip(confirmed) {
        let by_key = list.map(|l| l.into_iter().map(|x| shared.keyed(x)).collect());
        projects.entry(p).or_default().environments.insert(e, by_key);
    }
    let mut state = RemoteState {
        projects: projects.into_iter().filter(|(k, _)| !forbidden.contains_key(k)).map(|(k, v)| (k, Some(v))).collect(),
        forbidden: forbidden.into_iter().map(|(p, api)| (p, api.message.clone())).collect(),
    };
    for p in missing {
        if !state.forbidden.contains_key(&p) {
            state.projects.insert(p, None);
        }
    }
    Ok(state)
}

/// The referenced flags `keys` of `project`: by GET, or from the flag list in `envs` when that takes fewer
/// requests (see the module's rules).
pub(crate) async fn read_flags<R: PlanReads>(
    reader: &R,
    project: &str,
    keys: &[&str],
    envs: &[&str],
) -> Result<FlagsRead, Error> {
    let mut out = FlagsRead::default();
    let first = match envs.first() {
        // GETs cannot lose: the list takes at least one request per environment.
        Some(e0) if keys.len() > envs.len() => reader.flag_page(project, e0, 0).await?,
        _ => None,
    };
    let listed = match first {
        // Reading the list costs as many requests as it has pages; the page already read is one of them.
        Some(first) if announced_pages(&first) * envs.len() as u64 <= keys.len() as u64 => {
            Some(list_in_envs(reader, project, envs, first).await?)
        }
        // With one environment the page read to size the list is whole for the flags on it.
        Some(first) if envs.len() == 1 => {
            let items = first.items.into_iter().filter_map(|v| Some((v.get("key")?.as_str()?.to_owned(), v)));
            Some((items.collect(), envs.iter().map(|e| (*e).to_owned()).collect()))
        }
        _ => None,
    };
    let mut to_get: Vec<&str> = keys.to_vec();
    if let Some((merged, found_envs)) = listed {
        out.environments = found_envs;
        let wanted: BTreeSet<&str> = keys.iter().copied().collect();
        for (k, raw) in merged {
            if wanted.contains(k.as_str()) {
                let snap = FlagSnapshot::from_json(raw)
                    .map_err(|e| Error::Decode { resource: format!("flag {project}/{k}"), reason: e.to_string() })?;
                out.flags.insert(k, Some(snap));
            }
        }
        to_get.retain(|k| !out.flags.contains_key(*k));
    }
    let got = try_join_all(to_get.iter().map(|k| reader.get_flag(project, k))).await?;
    for (k, snap) in to_get.into_iter().zip(got) {
        if let Some(s) = &snap {
            out.environments.extend(s.flag.environments.keys().cloned());
        }
        out.flags.insert(k.to_owned(), snap);
    }
    Ok(out)
}

/// The pages the first page announces (by its total, else by itself): what one environment's list takes.
fn announced_pages(first: &FlagPage) -> u64 {
    first.total.unwrap_or(first.items.len() as u64).div_ceil(FLAG_ENV_PAGE).max(1)
}

/// Every page of the flag list in each of `envs` (the first page of the first one already read), merged into one
/// JSON per flag; and the environments that answered.
async fn list_in_envs<R: PlanReads>(
    reader: &R,
    project: &str,
    envs: &[&str],
    first: FlagPage,
) -> Result<(BTreeMap<String, Value>, BTreeSet<String>), Error> {
    // The first page sizes the list: every page it announces, in every environment, is read at once.
    let announced = announced_pages(&first);
    let mut first = Some(first);
    let pages = try_join_all(envs.iter().map(|e| {
        let start = first.take();
        async move { Ok::<_, Error>((*e, all_pages(reader, project, e, start, announced).await?)) }
    }))
    .await?;
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    let mut answered = BTreeSet::new();
    for (env, items) in pages {
        let Some(items) = items else { continue };
        answered.insert(env.to_owned());
        for item in items {
            let Some(key) = item.get("key").and_then(Value::as_str).map(str::to_owned) else { continue };
            match merged.get_mut(&key) {
                None => {
                    merged.insert(key, item);
                }
                Some(whole) => {
                    if let (Some(into), Some(Value::Object(from))) =
                        (whole.get_mut("environments").and_then(Value::as_object_mut), item.get("environments"))
                    {
                        into.extend(from.clone());
                    } else if let Some(from) = item.get("environments") {
                        whole["environments"] = from.clone();
                    }
                }
            }
        }
    }
    Ok((merged, answered))
}

/// The pages of one environment's list: the `announced` ones at once, by offset, then on while `_links.next` leads
/// (contract §9.10: the total only sizes the first reads, it never ends the list; and a page shorter than asked
/// is not the end either when the service caps the page size lower, which it may). `None` on a 404.
async fn all_pages<R: PlanReads>(
    reader: &R,
    project: &str,
    env: &str,
    first: Option<FlagPage>,
    announced: u64,
) -> Result<Option<Vec<Value>>, Error> {
    let from = u64::from(first.is_some());
    let rest = try_join_all((from..announced).map(|i| reader.flag_page(project, env, i * FLAG_ENV_PAGE))).await?;
    let mut pages: Vec<FlagPage> = first.into_iter().collect();
    for p in rest {
        match p {
            Some(p) => pages.push(p),
            None => return Ok(None),
        }
    }
    let mut items = Vec::new();
    let mut more = false;
    for mut p in pages {
        // A page shorter than asked means a capped page size: the offsets above skipped items, so the rest is
        // read from where the items end, by `_links.next`.
        let short = (p.items.len() as u64) < FLAG_ENV_PAGE;
        more = p.next && !p.items.is_empty();
        items.append(&mut p.items);
        if short {
            break;
        }
    }
    // A bound on the pages, so a list that never ends cannot keep a plan reading.
    for _ in 0..10_000 {
        if !more {
            break;
        }
        let Some(mut p) = reader.flag_page(project, env, items.len() as u64).await? else { return Ok(None) };
        more = p.next && !p.items.is_empty();
        items.append(&mut p.items);
    }
    Ok(Some(items))
}

/// Makes equal metric summaries one allocation. Every iteration repeats, in full, the project metrics it
/// measures (key, name, event key, version, links), so at thousands of experiments most of the fetched
/// experiments' memory was copies of the same few hundred metrics.
#[derive(Default)]
struct SharedMetrics(HashMap<String, Vec<Arc<MetricSummary>>>);

impl SharedMetrics {
    /// `e` by key, its metric summaries shared.
    fn keyed(&mut self, mut e: Experiment) -> (String, Experiment) {
        self.experiment(&mut e);
        (e.key.clone(), e)
    }

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
        let state =
            futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&keys, &["production", "staging"])))
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
        futures::executor::block_on(fetch_remote(
            &fake,
            &flags_requirement(&["f000", "f001"], &["production", "staging"]),
        ))
        .unwrap();
        assert_eq!(flag_calls(&fake), ["flag demo/f000", "flag demo/f001"]);
        // 3 flags, one environment, 1,000 listed: 10 pages against 3 GETs; the first page, already read, serves
        // the flag it holds.
        let fake = Fake { listed_flags: 1000, ..Fake::default() };
        futures::executor::block_on(fetch_remote(
            &fake,
            &flags_requirement(&["f000", "f500", "f900"], &["production"]),
        ))
        .unwrap();
        assert_eq!(flag_calls(&fake), ["flag demo/f500", "flag demo/f900", "flag page demo/production@0"]);
    }

    #[test]
    fn the_list_is_read_to_its_end_whatever_its_total_or_page_size_say() {
        // The total says 50 and pages come 40 at a time: `_links.next` leads through all 130.
        let fake = Fake { listed_flags: 130, reported_total: Some(50), cap: Some(40), ..Fake::default() };
        let keys: Vec<String> = (0..130).step_by(10).map(|i| format!("f{i:03}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let state =
            futures::executor::block_on(fetch_remote(&fake, &flags_requirement(&keys, &["production"]))).unwrap();
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
}
