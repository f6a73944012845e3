//! Hashed lookups into the fetched remote state, built once per plan.
//!
//! Every experiment spec looks up its remote twin, its flags (several times: rules, variations, labels) and its
//! metrics. In the remote state's B-trees each of those is a chain of comparisons of similar keys (`exp-01234`,
//! `flag-0133`), which at 10,000 experiments was a sixth of planning time; a hash lookup is one comparison.
//! The hasher is foldhash's: std's SipHash of these short keys was a twentieth of planning time again.

use foldhash::HashMap;

use ldexp_core::api::{Experiment, ExperimentationSettings, Metric, MetricGroup};
use ldexp_core::remote::{FlagSnapshot, ProjectState, RemoteState};

use crate::catalog::{Overlay, Overlays};

/// One project's state with hashed lookups. Its metrics, groups and settings are the ones the plan leaves behind:
/// LaunchDarkly's, with the objects the specs declare laid over them, so an experiment may use a metric the same
/// plan creates.
#[derive(Debug)]
pub(crate) struct ProjectView<'a> {
    flags: HashMap<&'a str, Option<&'a FlagSnapshot>>,
    metrics: HashMap<&'a str, &'a Metric>,
    groups: HashMap<&'a str, &'a MetricGroup>,
    settings: Option<&'a ExperimentationSettings>,
    experiments: HashMap<&'a str, Option<HashMap<&'a str, &'a Experiment>>>,
}

impl<'a> ProjectView<'a> {
    fn new(state: &'a ProjectState, overlay: Option<&'a Overlay>) -> Self {
        let mut metrics: HashMap<&str, &Metric> = state.metrics.iter().map(|(k, m)| (k.as_str(), m)).collect();
        let mut groups: HashMap<&str, &MetricGroup> =
            state.metric_groups.iter().map(|(k, g)| (k.as_str(), g)).collect();
        let mut settings = state.settings.as_ref();
        if let Some(o) = overlay {
            metrics.extend(o.metrics.iter().map(|(k, m)| (k.as_str(), m)));
            groups.extend(o.groups.iter().map(|(k, g)| (k.as_str(), g)));
            settings = o.settings.as_ref().or(settings);
        }
        ProjectView {
            flags: state.flags.iter().map(|(k, f)| (k.as_str(), f.as_ref())).collect(),
            metrics,
            groups,
            settings,
            experiments: state
                .environments
                .iter()
                .map(|(env, list)| {
                    (env.as_str(), list.as_ref().map(|l| l.iter().map(|(k, e)| (k.as_str(), e)).collect()))
                })
                .collect(),
        }
    }

    /// The flag `key`, when LaunchDarkly has it.
    pub(crate) fn flag(&self, key: &str) -> Option<&'a FlagSnapshot> {
        self.flags.get(key).copied().flatten()
    }

    /// Whether `key` is a metric of the project.
    pub(crate) fn is_metric(&self, key: &str) -> bool {
        self.metrics.contains_key(key)
    }

    /// Whether `key` is a metric group of the project.
    pub(crate) fn is_group(&self, key: &str) -> bool {
        self.groups.contains_key(key)
    }

    /// The metric `key`, as the plan leaves it.
    pub(crate) fn metric(&self, key: &str) -> Option<&'a Metric> {
        self.metrics.get(key).copied()
    }

    /// The metric group `key`, as the plan leaves it.
    pub(crate) fn group(&self, key: &str) -> Option<&'a MetricGroup> {
        self.groups.get(key).copied()
    }

    /// The experimentation settings, as the plan leaves them.
    pub(crate) fn settings(&self) -> Option<&'a ExperimentationSettings> {
        self.settings
    }

    /// The experiments of environment `env` by key, when the environment exists.
    pub(crate) fn experiments(&self, env: &str) -> Option<&HashMap<&'a str, &'a Experiment>> {
        self.experiments.get(env).and_then(Option::as_ref)
    }
}

/// Every fetched project by key; `None` where LaunchDarkly has no such project.
pub(crate) type Index<'a> = HashMap<&'a str, Option<ProjectView<'a>>>;

pub(crate) fn build<'a>(remote: &'a RemoteState, overlays: &'a Overlays) -> Index<'a> {
    remote
        .projects
        .iter()
        .map(|(k, p)| (k.as_str(), p.as_ref().map(|p| ProjectView::new(p, overlays.get(k)))))
        .collect()
}
