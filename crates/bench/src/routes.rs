//! Route templates: LaunchDarkly rate-limits per route, that is per URL pattern and verb, so the apply bound is
//! computed per `METHOD template` rather than per concrete path.

use std::collections::BTreeMap;

use ldexp_core::plan::{Method, Plan};

/// `METHOD template`, the unit of LaunchDarkly's per-route limit: the client's own route key, so the bound and the
/// client's rate-limit gates agree on what a route is.
pub fn route(method: Method, path: &str) -> String {
    ldexp_core::client::route_key(method, path)
}

/// Requests of `plan` per route, writes only (a plan holds nothing else).
pub fn plan_writes_by_route(plan: &Plan) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in plan.changes.iter().flat_map(|c| &c.requests) {
        *out.entry(route(r.method, &r.path)).or_default() += 1;
    }
    out
}

/// The lower bound of applying `writes_by_route` under a limit of `limit` requests per `window_s` seconds per
/// route: the busiest route needs `ceil(writes / limit)` windows and the routes drain in parallel.
pub fn rate_limit_bound(
    writes_by_route: &BTreeMap<String, usize>,
    limit: usize,
    window_s: u64,
) -> (String, usize, u64) {
    let (route, busiest) =
        writes_by_route.iter().max_by_key(|(_, n)| **n).map_or((String::new(), 0), |(r, n)| (r.clone(), *n));
    let windows = if limit == 0 { 0 } else { busiest.div_ceil(limit) as u64 };
    (route, busiest, windows * window_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concrete_paths_map_to_their_templates() {
        assert_eq!(
            route(Method::Patch, "/api/v2/projects/bench/environments/production/experiments/exp-00001"),
            "PATCH /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
        );
        assert_eq!(
            route(Method::Post, "/api/v2/projects/bench/environments/qa/experiments/exp-1/iterations"),
            "POST /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/iterations"
        );
        assert_eq!(
            route(Method::Get, "/api/v2/projects/bench/environments/qa/experiments?limit=50&offset=100"),
            "GET /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments"
        );
        assert_eq!(
            route(Method::Get, "/api/v2/flags/bench/flag-0001"),
            "GET /api/v2/flags/{projectKey}/{featureFlagKey}"
        );
        assert_eq!(route(Method::Get, "/api/v2/metrics/bench"), "GET /api/v2/metrics/{projectKey}");
        assert_eq!(
            route(Method::Get, "/api/v2/projects/bench/experimentation-settings"),
            "GET /api/v2/projects/{projectKey}/experimentation-settings"
        );
        assert_eq!(route(Method::Get, "/elsewhere/x"), "GET /elsewhere/x");
    }

    #[test]
    fn the_bound_follows_the_busiest_route() {
        let by_route: BTreeMap<String, usize> =
            [("PATCH a".to_owned(), 250), ("POST b".to_owned(), 60), ("PATCH c".to_owned(), 25)].into();
        assert_eq!(rate_limit_bound(&by_route, 20, 10), ("PATCH a".to_owned(), 250, 130));
        assert_eq!(rate_limit_bound(&BTreeMap::new(), 20, 10), (String::new(), 0, 0));
        let exact: BTreeMap<String, usize> = [("PATCH a".to_owned(), 40)].into();
        assert_eq!(rate_limit_bound(&exact, 20, 10).2, 20);
    }
}
