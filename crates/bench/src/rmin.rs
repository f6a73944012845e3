//! `R_min`: the fewest GETs a correct plan of the fixture can make, computed from the fixture's own counts so
//! that it does not depend on the client it judges.

use crate::fixture::FixtureCounts;

/// Experiment-list page size. LaunchDarkly documents no maximum for experiment lists; ldexp asks for this many.
pub const EXPERIMENT_PAGE: usize = ldexp_core::requests::EXPERIMENT_PAGE as usize;
/// Metric and metric-group lists cap `limit` at 50 (contract quirk 9).
pub const METRIC_PAGE: usize = ldexp_core::requests::METRIC_PAGE as usize;

/// `R_min` and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RMin {
    /// One per experiment-list page per targeted (project, environment); an empty list is still one page.
    pub experiment_pages: usize,
    /// One per referenced flag: a single GET returns every environment.
    pub flags: usize,
    pub metric_pages: usize,
    pub metric_group_pages: usize,
    /// One per project whose specs name a randomization unit.
    pub settings: usize,
}

/// Pages needed to list `n` items `page` at a time: at least one, which is how emptiness is learned.
fn pages(n: usize, page: usize) -> usize {
    n.div_ceil(page).max(1)
}

impl RMin {
    /// `R_min` of a fixture with one project.
    pub fn of(c: &FixtureCounts) -> RMin {
        let experiment_pages = c
            .targeted_environments
            .iter()
            .map(|env| pages(c.remote_experiments.get(env).copied().unwrap_or(0), EXPERIMENT_PAGE))
            .sum();
        RMin {
            experiment_pages,
            flags: c.referenced_flags.len(),
            metric_pages: pages(c.metrics, METRIC_PAGE),
            metric_group_pages: pages(c.metric_groups, METRIC_PAGE),
            settings: usize::from(c.settings_needed),
        }
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
        assert_eq!(r.experiment_pages, 11 + 10 + 10 + 10);
        assert_eq!(r.flags, 500);
        assert_eq!(r.metric_pages, 4);
        assert_eq!(r.metric_group_pages, 1);
        assert_eq!(r.settings, 1);
        assert_eq!(r.total(), 547);
    }
}
