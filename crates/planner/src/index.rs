//! Hashed lookups into the fetched remote state, built once per plan.
//!
//! Every experiment spec looks up its remote twin, its flags (several times: rules, variations, labels) and its
//! metrics. In the remote state's B-trees each of those is a chain of comparisons of similar keys (`exp-01234`,
//! `flag-0133`), which at 10,000 experiments was a sixth of planning time; a hash lookup is one comparison.
//! The hasher is foldhash's: std's SipHash of these short keys was a twentieth of planning time again.

use foldhash::{HashMap, HashSet};

use ldexp_core::api::Experiment;
use ldexp_core::remote::{FlagSnapshot, ProjectState, RemoteState};

/// One project's state with hashed lookups.
#[derive(Debug)]
pub(crate) struct ProjectView<'a> {
    pub state: &'a ProjectState,
    flags: HashMap<&'a str, Option<&'a FlagSnapshot>>,
    metrics: HashSet<&'a str>,
    groups: HashSet<&'a str>,
    experiments: HashMap<&'a str, Option<HashMap<&'a str, &'a Experiment>>>,
}

impl<'a> ProjectView<'a> {
    fn new(state: &'a ProjectState) -> Self {
        ProjectView {
            state,
            flags: state.flags.iter().map(|(k, f)| (k.as_str(), f.as_ref())).collect(),
            metrics: state.metrics.keys().map(String::as_str).collect(),
            groups: state.metric_groups.keys().map(String::as_str).collect(),
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
        self.metrics.contains(key)
    }

    /// Whether `key` is a metric group of the project.
    pub(crate) fn is_group(&self, key: &str) -> bool {
        self.groups.contains(key)
    }

    /// The experiments of environment `env` by key, when the environment exists.
    pub(crate) fn experiments(&self, env: &str) -> Option<&HashMap<&'a str, &'a Experiment>> {
        self.experiments.get(env).and_then(Option::as_ref)
    }
}

/// Every fetched project by key; `None` where LaunchDarkly has no such project.
pub(crate) type Index<'a> = HashMap<&'a str, Option<ProjectView<'a>>>;

pub(crate) fn build(remote: &RemoteState) -> Index<'_> {
    remote.projects.iter().map(|(k, p)| (k.as_str(), p.as_ref().map(ProjectView::new))).collect()
}
