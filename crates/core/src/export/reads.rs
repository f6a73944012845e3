//! What `ldexp export` reads, for the kinds asked for only: the experiments of the project (of every environment,
//! or of those named), then, at the same time, the flag list (legacy experiments live on flags no experiment may
//! use) and every flag the experiments' iterations use or the user names, each with its environments' rules; and,
//! beside all of that, the metric list, the metric-group list, the experimentation settings and the layer list;
//! then the holdouts of each environment exported (named, or else those with experiments or layer reservations),
//! each list item with its detail.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::Error;
use crate::api::{Experiment, ExperimentationSettings, FeatureFlag, Holdout, Layer, Metric, MetricGroup};
use crate::client::{ExportReads, OrgReads, PlanReads};

/// What an export describes. A kind left out is neither read nor written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    /// `Experiment` specs: the experiment lists, and the flags their iterations use.
    pub experiments: bool,
    /// `LegacyFlagExperiments` specs: the flag list, and the flags named with `--flag`.
    pub legacy: bool,
    /// `Metric` specs: the metric list.
    pub metrics: bool,
    /// `MetricGroup` specs: the metric-group list.
    pub metric_groups: bool,
    /// The `ExperimentationSettings` spec: the settings.
    pub settings: bool,
    /// `Layer` specs: the layer list (read for experiments too, for their `layer:`).
    pub layers: bool,
    /// `Holdout` specs: each environment's holdouts and their details (read for experiments too, for their
    /// `holdout:`).
    pub holdouts: bool,
}

impl Kinds {
    /// Every kind: what `ldexp export` writes unless told otherwise.
    pub const ALL: Kinds = Kinds {
        experiments: true,
        legacy: true,
        metrics: true,
        metric_groups: true,
        settings: true,
        layers: true,
        holdouts: true,
    };
    /// No kind; add the ones wanted.
    pub const NONE: Kinds = Kinds {
        experiments: false,
        legacy: false,
        metrics: false,
        metric_groups: false,
        settings: false,
        layers: false,
        holdouts: false,
    };
}

impl Default for Kinds {
    fn default() -> Self {
        Kinds::ALL
    }
}

/// The remote objects an export describes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// The kinds read: the others are empty here, and not to be written.
    pub kinds: Kinds,
    pub experiments: Vec<Experiment>,
    /// By key: each flag an experiment uses or the user named, read on its own (for its environments' rules), and
    /// each listed flag with legacy experiments (the list carries their `experiments` and variations).
    pub flags: BTreeMap<String, FeatureFlag>,
    /// Flags an experiment uses or the user named that do not exist, in key order.
    pub missing_flags: Vec<String>,
    /// Every metric of the project, in LaunchDarkly's order.
    pub metrics: Vec<Metric>,
    /// Every metric group of the project, in LaunchDarkly's order.
    pub metric_groups: Vec<MetricGroup>,
    /// The project's experimentation settings, when `kinds.settings`.
    pub settings: Option<ExperimentationSettings>,
    /// Every layer of the project, when layers or experiments are exported.
    pub layers: Vec<Layer>,
    /// Environment key → its holdouts (each list item merged with its detail), when holdouts or experiments are
    /// exported.
    pub holdouts: BTreeMap<String, Vec<Holdout>>,
}

/// The experiments, and the flags an export of experiments or legacy experiments needs.
#[derive(Default)]
struct Flagged {
    experiments: Vec<Experiment>,
    flags: BTreeMap<String, FeatureFlag>,
    missing_flags: Vec<String>,
}

/// Reads what exporting `kinds` of `project` needs: the experiments of `environments` (every environment when
/// empty), and the flags they use plus `flags` (say, an archived flag, which the list leaves out; read for legacy
/// experiments only); the catalog's lists and settings. Each kind's reads run beside the others'. A project or
/// environment that does not exist is an [`Error::NotFound`]; a missing flag is listed in
/// [`Fetched::missing_flags`].
pub async fn fetch<R: PlanReads + ExportReads + OrgReads>(
    reader: &R,
    project: &str,
    environments: &[String],
    flags: &[String],
    kinds: Kinds,
) -> Result<Fetched, Error> {
    let no_project = || Error::NotFound { message: format!("project {project} does not exist") };
    let flagged = async {
        if kinds.experiments || kinds.legacy {
            flagged(reader, project, environments, flags, kinds).await
        } else {
            Ok(Flagged::default())
        }
    };
    let metrics = async {
        if kinds.metrics { reader.list_metrics(project).await?.ok_or_else(no_project) } else { Ok(Vec::new()) }
    };
    let metric_groups = async {
        if kinds.metric_groups {
            reader.list_metric_groups(project).await?.ok_or_else(no_project)
        } else {
            Ok(Vec::new())
        }
    };
    let settings = async {
        if kinds.settings { reader.get_settings(project).await?.ok_or_else(no_project).map(Some) } else { Ok(None) }
    };
    let layers = async {
        if kinds.layers || kinds.experiments {
            reader.list_layers(project).await?.ok_or_else(no_project)
        } else {
            Ok(Vec::new())
        }
    };
    let (flagged, metrics, metric_groups, settings, layers) =
        futures::try_join!(flagged, metrics, metric_groups, settings, layers)?;
    let holdouts = if kinds.holdouts || kinds.experiments {
        holdouts(reader, project, environments, &flagged.experiments, &layers).await?
    } else {
        BTreeMap::new()
    };
    Ok(Fetched {
        kinds,
        experiments: flagged.experiments,
        flags: flagged.flags,
        missing_flags: flagged.missing_flags,
        metrics,
        metric_groups,
        settings,
        layers,
        holdouts,
    })
}

/// The holdouts of each environment named, or (none named: there is no environment list to read) of each
/// environment with an experiment or a layer reservation; every holdout with its detail, read at once.
async fn holdouts<R: PlanReads + OrgReads>(
    reader: &R,
    project: &str,
    environments: &[String],
    experiments: &[Experiment],
    layers: &[Layer],
) -> Result<BTreeMap<String, Vec<Holdout>>, Error> {
    let envs: Vec<String> = if environments.is_empty() {
        // Experiments are listed only when exported; holdouts alone still need the environments they live in.
        let listed = if experiments.is_empty() {
            reader.list_experiments_any_env(project).await?.unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut envs: BTreeSet<String> = experiments.iter().chain(&listed).map(|x| x.environment_key.clone()).collect();
        envs.extend(layers.iter().flat_map(|l| l.environments.keys().cloned()));
        envs.into_iter().collect()
    } else {
        environments.to_vec()
    };
    let lists = try_join_all(envs.iter().map(|env| reader.list_holdouts(project, env))).await?;
    let mut out = BTreeMap::new();
    for (env, list) in envs.iter().zip(lists) {
        let list =
            list.ok_or_else(|| Error::NotFound { message: format!("environment {project}/{env} does not exist") })?;
        let details = try_join_all(list.iter().map(|h| reader.get_holdout(project, env, h.key()))).await?;
        let merged = list.into_iter().zip(details).map(|(h, d)| match d {
            Some(d) => h.merged(d),
            None => h,
        });
        out.insert(env.clone(), merged.collect());
    }
    Ok(out)
}

async fn flagged<R: PlanReads + ExportReads>(
    reader: &R,
    project: &str,
    environments: &[String],
    flags: &[String],
    kinds: Kinds,
) -> Result<Flagged, Error> {
    let no_project = || Error::NotFound { message: format!("project {project} does not exist") };
    let experiments = if !kinds.experiments {
        Vec::new()
    } else if environments.is_empty() {
        reader.list_experiments_any_env(project).await?.ok_or_else(no_project)?
    } else {
        let lists = try_join_all(environments.iter().map(|env| reader.list_experiments(project, env))).await?;
        let mut all = Vec::new();
        for (env, list) in environments.iter().zip(lists) {
            all.extend(
                list.ok_or_else(|| Error::NotFound { message: format!("environment {project}/{env} does not exist") })?,
            );
        }
        all
    };
    let mut wanted: BTreeSet<&str> =
        if kinds.legacy { flags.iter().map(String::as_str).collect() } else { BTreeSet::new() };
    for x in &experiments {
        for it in x.current_iteration.iter().chain(x.draft_iteration.iter()) {
            wanted.extend(it.flags.keys().map(String::as_str));
        }
    }
    // The flags' rules are read as `plan` reads them (one GET each, or the flag list in each environment of the
    // experiments, whichever is fewer); the list without environments finds legacy experiments on every flag.
    let envs: BTreeSet<&str> = experiments.iter().map(|x| x.environment_key.as_str()).collect();
    let keys: Vec<&str> = wanted.iter().copied().collect();
    let envs: Vec<&str> = envs.into_iter().collect();
    let listed =
        async { if kinds.legacy { reader.list_flags(project).await?.ok_or_else(no_project) } else { Ok(Vec::new()) } };
    let (listed, read) = futures::try_join!(listed, crate::fetch::read_flags(reader, project, &keys, &envs))?;
    let mut by_key: BTreeMap<String, FeatureFlag> = listed
        .into_iter()
        .filter(|f| !f.experiments.items.is_empty() && !wanted.contains(f.key.as_str()))
        .map(|f| (f.key.clone(), f))
        .collect();
    let mut missing_flags = Vec::new();
    for (key, flag) in read.flags {
        match flag {
            Some(f) => {
                by_key.insert(key, f.flag);
            }
            None => missing_flags.push(key),
        }
    }
    Ok(Flagged { experiments, flags: by_key, missing_flags })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Value, json};

    use super::*;
    use crate::client::{Answer, Transport};
    use crate::plan::PlannedRequest;
    use crate::testing::InFlight;

    /// Project `demo` with environments `production` and `staging`; records the path of each request and how many
    /// were in flight at once.
    #[derive(Default)]
    struct Fake {
        sent: Mutex<Vec<String>>,
        in_flight: InFlight,
    }

    fn experiment(key: &str, env: &str, flag: &str) -> Value {
        json!({"key": key, "name": key, "_maintainerId": "m", "_creationDate": 1, "environmentKey": env,
               "_links": {}, "draftIteration": {"hypothesis": "h", "status": "not_started", "createdAt": 1,
               "flags": {flag: {"targetingRule": "fallthrough", "_links": {}}}}})
    }

    fn legacy(key: &str, with_experiments: bool) -> Value {
        let items =
            if with_experiments { json!([{"metricKey": "m", "environments": ["production"]}]) } else { json!([]) };
        json!({"key": key, "experiments": {"baselineIdx": 0, "items": items}})
    }

    impl Transport for Fake {
        async fn execute(&self, r: &PlannedRequest, _: &str) -> Result<Answer, Error> {
            self.sent.lock().unwrap().push(r.path.clone());
            self.in_flight.visit().await;
            let body = match r.path.as_str() {
                "/api/v2/projects/demo/experiments" => json!({"items": [experiment("a", "production", "f1"),
                    experiment("b", "staging", "f2")], "total_count": 2, "_links": {}}),
                "/api/v2/projects/demo/environments/production/experiments" => {
                    json!({"items": [experiment("a", "production", "f1")], "total_count": 1, "_links": {}})
                }
                "/api/v2/projects/demo/environments/staging/experiments" => {
                    json!({"items": [experiment("b", "staging", "f2")], "total_count": 1, "_links": {}})
                }
                // With `env`, whole flags with that environment's rules, as a plan reads them; `archived` is
                // left out of the list.
                "/api/v2/flags/demo" if r.query.contains_key("env") => {
                    let env = &r.query["env"];
                    let items: Vec<Value> = ["f1", "f2", "old", "plain"]
                        .iter()
                        .map(|k| json!({"key": k, "_version": 3, "environments": {env.as_str(): {"on": true}}}))
                        .collect();
                    json!({"items": items, "totalCount": 4, "_links": {}})
                }
                "/api/v2/flags/demo" => json!({"items": [legacy("f1", true), legacy("old", true),
                    legacy("plain", false)], "totalCount": 3, "_links": {}}),
                "/api/v2/metrics/demo" => json!({"items": [{"key": "clicks", "kind": "custom", "eventKey": "c"}],
                    "totalCount": 1, "_links": {}}),
                "/api/v2/projects/demo/metric-groups" => json!({"items": [{"key": "funnel", "kind": "funnel"}],
                    "totalCount": 1, "_links": {}}),
                "/api/v2/projects/demo/experimentation-settings" => {
                    json!({"randomizationUnits": [{"randomizationUnit": "user", "default": true}], "_links": {}})
                }
                "/api/v2/projects/demo/layers" => json!({"items": [{"key": "checkout", "name": "Checkout",
                    "environments": {"production": {"reservations": [{"experimentKey": "a", "flagKey": "f1",
                    "reservationPercent": 40}]}}}], "totalCount": 1, "_links": {}}),
                "/api/v2/projects/demo/environments/production/holdouts" => json!({"items": [{"_id": "h-1",
                    "key": "hold", "name": "Hold", "status": "running", "experiments": [{"key": "a"}]}],
                    "total_count": 1, "_links": {}}),
                "/api/v2/projects/demo/environments/staging/holdouts" => {
                    json!({"items": [], "total_count": 0, "_links": {}})
                }
                "/api/v2/projects/demo/environments/production/holdouts/hold" => {
                    json!({"_id": "h-1", "status": "running", "holdoutAmount": "10", "description": "Ten",
                           "baseExperiment": {"key": "hold", "name": "Hold"}})
                }
                "/api/v2/flags/demo/f1" | "/api/v2/flags/demo/f2" | "/api/v2/flags/demo/archived" => {
                    let key = r.path.rsplit('/').next().unwrap_or_default();
                    json!({"key": key, "_version": 3, "environments": {"production": {"on": true}}})
                }
                _ => return Ok(Answer { status: 404, body: br#"{"code":"not_found","message":"nope"}"#.to_vec() }),
            };
            Ok(Answer { status: 200, body: body.to_string().into_bytes() })
        }
    }

    fn run_kinds(f: &Fake, environments: &[&str], flags: &[&str], kinds: Kinds) -> Result<Fetched, Error> {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        futures::executor::block_on(fetch(f, "demo", &owned(environments), &owned(flags), kinds))
    }

    fn run(f: &Fake, environments: &[&str], flags: &[&str]) -> Result<Fetched, Error> {
        run_kinds(f, environments, flags, Kinds::ALL)
    }

    fn sorted(f: &Fake) -> Vec<String> {
        let mut sent = f.sent.lock().unwrap().clone();
        sent.sort();
        sent
    }

    #[test]
    fn the_experiments_come_first_then_the_flag_list_and_every_flag_they_use_at_once() {
        let f = Fake::default();
        let fetched = run(&f, &[], &["archived", "gone"]).unwrap();
        let keys: Vec<&str> = fetched.experiments.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        // f1 has legacy experiments too, but is read with its rules; `plain` has none. Four flags in two
        // environments: the list in each environment (one page each) beats four GETs; the two it leaves out are
        // read on their own.
        let flags: Vec<(&str, bool)> =
            fetched.flags.iter().map(|(k, f)| (k.as_str(), f.environments.contains_key("production"))).collect();
        assert_eq!(flags, [("archived", true), ("f1", true), ("f2", true), ("old", false)]);
        assert_eq!(fetched.flags["f2"].environments.keys().collect::<Vec<_>>(), ["production", "staging"]);
        assert_eq!(fetched.missing_flags, ["gone"]);

        assert_eq!(fetched.metrics.len(), 1);
        assert_eq!(fetched.metric_groups.len(), 1);
        assert!(fetched.settings.is_some());

        let sent = f.sent.lock().unwrap().clone();
        let flag_reads = sent.iter().position(|p| p.starts_with("/api/v2/flags/")).unwrap();
        assert!(sent[..flag_reads].contains(&"/api/v2/projects/demo/experiments".to_owned()), "{sent:?}");
        assert_eq!(
            sorted(&f),
            [
                "/api/v2/flags/demo",
                "/api/v2/flags/demo",
                "/api/v2/flags/demo",
                "/api/v2/flags/demo/archived",
                "/api/v2/flags/demo/gone",
                "/api/v2/metrics/demo",
                "/api/v2/projects/demo/environments/production/holdouts",
                "/api/v2/projects/demo/environments/production/holdouts/hold",
                "/api/v2/projects/demo/environments/staging/holdouts",
                "/api/v2/projects/demo/experimentation-settings",
                "/api/v2/projects/demo/experiments",
                "/api/v2/projects/demo/layers",
                "/api/v2/projects/demo/metric-groups",
            ]
        );
        // Each environment's holdouts, with their detail, and the layers.
        let hold = &fetched.holdouts["production"];
        assert_eq!((hold[0].key(), hold[0].description(), hold[0].id.as_str()), ("hold", "Ten", "h-1"));
        assert!(fetched.holdouts["staging"].is_empty());
        assert_eq!(fetched.layers.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(), ["checkout"]);
        assert!(f.in_flight.peak() >= 4, "the catalog is read beside the experiments, the flags beside each other");
    }

    #[test]
    fn only_the_kinds_asked_for_are_read() {
        let only = |set: fn(&mut Kinds)| {
            let mut k = Kinds::NONE;
            set(&mut k);
            k
        };
        // Metrics alone: the metric list, and no experiment, flag, group or settings read.
        let f = Fake::default();
        let fetched = run_kinds(&f, &["production"], &["archived"], only(|k| k.metrics = true)).unwrap();
        assert_eq!(sorted(&f), ["/api/v2/metrics/demo"]);
        assert_eq!(fetched.metrics.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["clicks"]);
        assert!(fetched.experiments.is_empty() && fetched.flags.is_empty() && fetched.metric_groups.is_empty());
        assert_eq!((fetched.settings, fetched.kinds), (None, only(|k| k.metrics = true)));

        // Groups and settings, read at once.
        let f = Fake::default();
        run_kinds(&f, &[], &[], only(|k| (k.metric_groups, k.settings) = (true, true))).unwrap();
        assert_eq!(
            sorted(&f),
            ["/api/v2/projects/demo/experimentation-settings", "/api/v2/projects/demo/metric-groups"]
        );
        assert_eq!(f.in_flight.peak(), 2);

        // Legacy alone: the flag list and the named flags, no experiment list.
        let f = Fake::default();
        let fetched = run_kinds(&f, &[], &["archived"], only(|k| k.legacy = true)).unwrap();
        assert_eq!(sorted(&f), ["/api/v2/flags/demo", "/api/v2/flags/demo/archived"]);
        assert_eq!(fetched.flags.keys().collect::<Vec<_>>(), ["archived", "f1", "old"]);

        // Experiments alone: no flag list, and `--flag` (for legacy experiments) is not read.
        let f = Fake::default();
        let fetched = run_kinds(&f, &["production"], &["archived"], only(|k| k.experiments = true)).unwrap();
        assert_eq!(
            sorted(&f),
            [
                "/api/v2/flags/demo/f1",
                "/api/v2/projects/demo/environments/production/experiments",
                "/api/v2/projects/demo/environments/production/holdouts",
                "/api/v2/projects/demo/environments/production/holdouts/hold",
                "/api/v2/projects/demo/layers",
            ],
            "the layers and holdouts place the experiments"
        );
        assert_eq!(fetched.flags.keys().collect::<Vec<_>>(), ["f1"]);

        // Holdouts alone, with no environment named: the environments with experiments, then their holdouts.
        let f = Fake::default();
        let fetched = run_kinds(&f, &[], &[], only(|k| k.holdouts = true)).unwrap();
        assert_eq!(fetched.holdouts.keys().collect::<Vec<_>>(), ["production", "staging"]);
        assert!(fetched.experiments.is_empty() && fetched.layers.is_empty());

        // Layers alone: the layer list.
        let f = Fake::default();
        run_kinds(&f, &[], &[], only(|k| k.layers = true)).unwrap();
        assert_eq!(sorted(&f), ["/api/v2/projects/demo/layers"]);

        // A project that does not exist, whichever kind tells.
        let e = futures::executor::block_on(fetch(&Fake::default(), "nope", &[], &[], only(|k| k.settings = true)));
        assert_eq!(e.unwrap_err().to_string(), "project nope does not exist");
    }

    #[test]
    fn named_environments_are_listed_each_and_what_does_not_exist_is_named() {
        let f = Fake::default();
        let fetched = run(&f, &["staging", "production"], &[]).unwrap();
        let keys: Vec<&str> = fetched.experiments.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["b", "a"], "in the order the environments were named");

        let e = run(&Fake::default(), &["production", "nowhere"], &[]).unwrap_err();
        assert!(matches!(&e, Error::NotFound { .. }), "{e:?}");
        assert_eq!(e.to_string(), "environment demo/nowhere does not exist");
        let e = futures::executor::block_on(fetch(&Fake::default(), "nope", &[], &[], Kinds::ALL)).unwrap_err();
        assert_eq!(e.to_string(), "project nope does not exist");
    }
}
