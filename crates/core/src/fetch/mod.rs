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
//!   list leaves out (archived ones, or flags that do not exist) are then read one by one;
//! - **layers and holdouts** (module `org`): the layer list of each project whose specs mention layers, the
//!   holdout list of each environment whose specs mention holdouts and the detail of each declared holdout, all in
//!   the first round; then the holdouts of any other environment where a fetched experiment is in one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt, try_join_all};
use futures::stream::FuturesUnordered;
use serde_json::Value;

use crate::Error;
use crate::api::{Experiment, ExperimentationSettings, Holdout, Layer, Metric, MetricGroup, MetricSummary};
use crate::client::{FlagPage, OrgReads, PlanReads};
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
    Layers(String, Option<Vec<Layer>>),
    Holdouts(String, String, Option<Vec<Holdout>>),
    HoldoutDetail(String, String, Option<Holdout>),
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
pub async fn fetch_remote<R: PlanReads + OrgReads>(reader: &R, req: &Requirements) -> Result<RemoteState, Error> {
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
    org::jobs(reader, req, &mut jobs);
    let jobs = jobs.into_iter().map(|(p, job)| forbidden_is_data(p, job));
    let mut pending: FuturesUnordered<_> = jobs.into_iter().collect();

    let mut forbidden: BTreeMap<String, Box<crate::ApiError>> = BTreeMap::new();
    let mut projects: BTreeMap<String, ProjectState> =
        req.projects().into_iter().map(|p| (p, ProjectState::default())).collect();
    let mut missing = Vec::new();
    let mut shared = SharedMetrics::default();
    let mut any_env: Vec<(String, Option<Vec<Experiment>>)> = Vec::new();
    let mut known_envs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut details: Vec<(String, String, Holdout)> = Vec::new();
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
            Fetched::Layers(p, layers) => org::file_layers(projects.entry(p).or_default(), layers),
            Fetched::Holdouts(p, e, list) => org::file_holdouts(projects.entry(p).or_default(), e, list),
            Fetched::HoldoutDetail(p, e, h) => details.extend(h.map(|h| (p, e, h))),
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
    for (p, e, h) in details {
        org::file_detail(projects.entry(p).or_default(), e, h);
    }
    org::holdouts_of_members(reader, &mut projects, &forbidden).await?;
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

mod org;
#[cfg(test)]
mod tests;
