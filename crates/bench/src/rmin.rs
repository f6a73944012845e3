//! `R_min`: the fewest GETs a correct plan of the fixture can make with the documented API, computed from the
//! fixture's own counts so that it does not depend on the client it judges. `R_min v2` is the bound since the v2
//! contract's list endpoints; `R_min v1` (one experiment list per environment, one GET per flag) is kept beside it.

use crate::fixture::FixtureCounts;

/// Experiment-list page size. LaunchDarkly documents no maximum for experiment lists; ldexp asks for this many.
pub const EXPERIMENT_PAGE: usize = ldexp_core::requests::EXPERIMENT_PAGE as usize;
/// Metric and metric-group lists cap `limit` at 50 (contract quirk 9).
pub const METRIC_PAGE: usize = ldexp_core::requests::METRIC_PAGE as usize;
/// Page size of the flag list with an environment's configuration.
pub const FLAG_ENV_PAGE: usize = ldexp_core::requests::FLAG_ENV_PAGE as usize;

/// `R_min v2` and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RMin {
    /// Experiment-list pages: one listing of every environment when the specs target two or more
    /// (`getExperimentsAnyEnv`), else the one environment's list; an empty list is still one page.
    pub experiment_pages: usize,
    /// Flag reads: one GET per referenced flag, or the flag list's pages in each needed environment, whichever is
    /// fewer.
    pub flags: usize,
    /// Whether the flags are read from the list (`GET /api/v2/flags/{projectKey}`) rather than one by one.
    pub flags_listed: bool,
    pub metric_pages: usize,
    pub metric_group_pages: usize,
    /// One per project whose specs name a randomization unit.
    pub settings: usize,
    /// `R_min v1`: one list per targeted environment and one GET per referenced flag, plus the same metric,
    /// group and settings reads.
    pub v1: usize,
    /// The fewest requests `ldexp export` of the whole project can make: the any-environment listing's pages,
    /// the flag list's pages (legacy experiments live on any flag), the experiments' flags with their rules
    /// (the lower of one GET each and the list's pages in every environment), the metric pages, the metric
    /// group pages and the settings read (export writes those kinds too), the layer list, and one holdout list per
    /// environment with experiments (holdouts are listed per environment only; the fixture has none to detail).
    pub export: usize,
}

/// Pages needed to list `n` items `page` at a time: at least one, which is how emptiness is learned.
fn pages(n: usize, page: usize) -> usize {
    n.div_ceil(page).max(1)
}

impl RMin {
    /// `R_min v2` (and v1) of a fixture with one project.
    pub fn of(c: &FixtureCounts) -> RMin {
        let per_env: usize = c
            .targeted_environments
            .iter()
            .map(|env| pages(c.remote_experiments.get(env).copied().unwrap_or(0), EXPERIMENT_PAGE))
            .sum();
        let experiment_pages = if c.targeted_environments.len() >= 2 {
            pages(c.remote_experiments.values().sum(), EXPERIMENT_PAGE)
        } else {
            per_env
        };
        let gets = c.referenced_flags.len();
        let list = c.flag_environments.len() * pages(c.listed_flags, FLAG_ENV_PAGE);
        let flags_listed = gets > c.flag_environments.len() && list <= gets;
        let metric_pages = pages(c.metrics, METRIC_PAGE);
        let metric_group_pages = pages(c.metric_groups, METRIC_PAGE);
        let settings = usize::from(c.settings_needed);
        let experiment_flags = c.referenced_flags.len().saturating_sub(c.legacy_changed + c.legacy_unchanged);
        let every_env = c.remote_experiments.len() * pages(c.listed_flags, FLAG_ENV_PAGE);
        let export = pages(c.remote_experiments.values().sum(), EXPERIMENT_PAGE)
            + pages(c.listed_flags, ldexp_core::requests::FLAG_PAGE as usize)
            + if experiment_flags > c.remote_experiments.len() {
                experiment_flags.min(every_env)
            } else {
                experiment_flags
            }
            + metric_pages
            + metric_group_pages
            + 1
            + 1
            + c.remote_experiments.values().filter(|n| **n > 0).count();
        RMin {
            export,
            experiment_pages,
            flags: if flags_listed { list } else { gets },
            flags_listed,
            metric_pages,
            metric_group_pages,
            settings,
            v1: per_env + gets + metric_pages + metric_group_pages + settings,
        }
    }

    /// `R_min` of the export.
    pub fn export_total(&self) -> usize {
        self.export
    }

    /// The total.
    pub fn total(&self) -> usize {
        self.experiment_pages + self.flags + self.metric_pages + self.metric_group_pages + self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FixtureParams, generate};

    #[test]
    fn pages_round_up_and_never_drop_to_zero() {
        assert_eq!(pages(0, 50), 1);
        assert_eq!(pages(1, 50), 1);
        assert_eq!(pages(50, 50), 1);
        assert_eq!(pages(51, 50), 2);
        assert_eq!(pages(200, 50), 4);
    }

    #[test]
    fn default_fixture_bound_is_the_sum_of_its_parts() {
        let f = generate(&FixtureParams { experiments: 2000, environments: 4, flags: 500, metrics: 200 }).unwrap();
        let r = RMin::of(&f.counts);
        // 2000 spec'd experiments, 500 per environment; the 60 to create fall in production, staging and qa
        // (20 each), and the 40 unmanaged ones add 10 everywhere: development holds 510 (11 pages), the rest 490.
        assert_eq!(f.counts.remote_experiments.values().sum::<usize>(), 1980);
        let per_env: Vec<(&str, usize)> = f.counts.remote_experiments.iter().map(|(e, n)| (e.as_str(), *n)).collect();
        assert_eq!(per_env, [("development", 510), ("production", 490), ("qa", 490), ("staging", 490)]);
        // v1: 11 + 10 + 10 + 10 list pages and 500 flag GETs. v2: the 1980 experiments in one listing (40 pages),
        // and the 500 flags listed in 4 environments, 100 a page (20 requests).
        assert_eq!(r.v1, 11 + 10 + 10 + 10 + 500 + 4 + 1 + 1);
        assert_eq!(r.v1, 547);
        assert_eq!(r.experiment_pages, 40);
        assert!(r.flags_listed);
        assert_eq!(r.flags, 20);
        assert_eq!(r.metric_pages, 4);
        assert_eq!(r.metric_group_pages, 1);
        assert_eq!(r.settings, 1);
        assert_eq!(r.total(), 66);
    }
}
