//! Per-route rate-limit gates: once a route answers 429, every request to that route waits until the window
//! resets and is then let through oldest first, so a request that was refused is never overtaken by newcomers.
//! When the account-wide window is spent (contract §9.12), every gate closes at once, including those of routes
//! not used yet.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::retry::{AdaptiveLimit, Slot};
use crate::plan::Method;

/// The contract's paths with parameters in braces. LaunchDarkly limits per route, that is per URL pattern and
/// verb, so requests are keyed by the pattern their path matches.
const TEMPLATES: &[&str] = &[
    "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments",
    "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}",
    "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/iterations",
    "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/metrics/{metricKey}/results",
    "/api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}/metric-groups/{metricGroupKey}/results",
    "/api/v2/projects/{projectKey}/experiments",
    "/api/v2/projects/{projectKey}/experimentation-settings",
    "/api/v2/projects/{projectKey}/metric-groups",
    "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}",
    "/api/v2/flags/{projectKey}",
    "/api/v2/flags/{projectKey}/{featureFlagKey}",
    "/api/v2/flags/{projectKey}/{featureFlagKey}/experiments/{environmentKey}/{metricKey}",
    "/api/v2/flags/{projectKey}/{featureFlagKey}/experiments/{environmentKey}/{metricKey}/results",
    "/api/v2/metrics/{projectKey}",
    "/api/v2/metrics/{projectKey}/{metricKey}",
];

/// `METHOD pattern`, the unit of LaunchDarkly's per-route limit, e.g.
/// `PATCH /api/v2/flags/{projectKey}/{featureFlagKey}`. A path outside the known patterns is its own route.
pub fn route_key(method: Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let matches = |t: &&&str| {
        let mut ps = path.split('/');
        let mut ts = t.split('/');
        loop {
            match (ts.next(), ps.next()) {
                (None, None) => return true,
                (Some(t), Some(p)) if (t.starts_with('{') && !p.is_empty()) || t == p => {}
                _ => return false,
            }
        }
    };
    let pattern = TEMPLATES.iter().find(matches).copied().unwrap_or(path);
    format!("{} {pattern}", method.as_str())
}

/// The gates of every route one client has talked to.
#[derive(Debug, Default)]
pub(crate) struct RouteGates {
    gates: Mutex<Gates>,
    tickets: AtomicU64,
}

#[derive(Debug, Default)]
struct Gates {
    by_route: HashMap<String, Arc<Gate>>,
    /// Every route is closed until then: the account-wide window is spent. Kept so that a gate created later
    /// (a route first used during the wait) starts closed too.
    global_until: Option<Instant>,
}

/// One route's gate.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Notify,
}

/// What a request may do after looking at the gate.
enum Turn {
    /// Open and nobody waiting: straight through.
    Go,
    /// Open and first in line.
    Head,
    /// Closed: wait until it opens (or something changes).
    ClosedUntil(Instant),
    /// Open, but older requests go first.
    Behind,
}

#[derive(Debug, Default)]
struct GateState {
    /// The route is closed until then.
    until: Option<Instant>,
    /// The requests waiting, in the order they go: refused ones first, then by ticket.
    queue: BTreeSet<(bool, u64)>,
}

impl RouteGates {
    /// The gate of `route`, created open.
    pub(crate) fn gate(&self, route: &str) -> Arc<Gate> {
        let mut gates = self.lock();
        if let Some(g) = gates.by_route.get(route) {
            return Arc::clone(g);
        }
        let g = Arc::new(Gate::default());
        if let Some(until) = gates.global_until.filter(|u| *u > Instant::now()) {
            g.close_until(until);
        }
        gates.by_route.insert(route.to_owned(), Arc::clone(&g));
        g
    }

    /// Closes every route for `wait` from now, those not used yet included: the account-wide window is spent.
    /// Each gate keeps its own line, so refused requests still go first on their route when it reopens.
    pub(crate) fn close_all_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut gates = self.lock();
        gates.global_until = Some(gates.global_until.map_or(until, |u| u.max(until)));
        for g in gates.by_route.values() {
            g.close_until(until);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gates> {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place in line, taken when a request first enters the client: the order every gate releases in.
    pub(crate) fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }
}

impl Gate {
    /// Closes the gate for `wait` from now (or keeps it closed longer if it already is).
    pub(crate) fn close_for(&self, wait: Duration) {
        self.close_until(Instant::now() + wait);
    }

    fn close_until(&self, until: Instant) {
        let mut st = self.lock();
        st.until = Some(st.until.map_or(until, |u| u.max(until)));
    }

    /// Waits for this request's turn on the route, then for a concurrency slot.
    ///
    /// An open gate with nobody waiting costs a lock before and after taking the slot. Otherwise the request
    /// joins the line and only the first in line, once the gate is open, takes a slot; it leaves the line with
    /// the slot in hand, so the route's next window goes to refused requests first, then in ticket order, and
    /// newcomers queue behind. Cancelling the future leaves the line.
    pub(crate) async fn admit<'l>(&self, ticket: u64, refused: bool, limit: &'l AdaptiveLimit) -> Slot<'l> {
        // `false` sorts first: a request the route already refused goes before any that has not been sent yet,
        // even an older one still waiting for a concurrency slot when the window ran out.
        let mut place = Place { gate: self, key: (!refused, ticket), queued: false };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a release between the look and the wait is not missed.
            changed.as_mut().enable();
            match self.look(&mut place) {
                Turn::Go | Turn::Head => {
                    let slot = limit.acquire().await;
                    // The gate may have closed, or others may have lined up, while this waited for a slot:
                    // passing now would send into a spent window or overtake them.
                    if matches!(self.look(&mut place), Turn::Go | Turn::Head) {
                        drop(place);
                        return slot;
                    }
                }
                Turn::ClosedUntil(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = &mut changed => {}
                    }
                }
                Turn::Behind => changed.await,
            }
        }
    }

    fn look(&self, place: &mut Place<'_>) -> Turn {
        let mut st = self.lock();
        let closed_until = st.until.filter(|u| *u > Instant::now());
        if closed_until.is_none() {
            st.until = None;
        }
        if !place.queued {
            if closed_until.is_none() && st.queue.is_empty() {
                return Turn::Go;
            }
            st.queue.insert(place.key);
            place.queued = true;
        }
        match closed_until {
            Some(until) => Turn::ClosedUntil(until),
            None if st.queue.first() == Some(&place.key) => Turn::Head,
            None => Turn::Behind,
        }
    }

    /// Whether requests are being held (for tests and logs).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request's place in a gate's line; leaving it (admitted or cancelled) lets the next one look.
struct Place<'a> {
    gate: &'a Gate,
    key: (bool, u64),
    queued: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.queued {
            self.gate.lock().queue.remove(&self.key);
            self.gate.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[test]
    fn routes_are_keyed_by_verb_and_pattern() {
        assert_eq!(
            route_key(Method::Patch, "/api/v2/projects/p/environments/production/experiments/exp-1"),
            "PATCH /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments/{experimentKey}"
        );
        assert_eq!(
            route_key(Method::Get, "/api/v2/projects/p/environments/qa/experiments/?limit=50"),
            "GET /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments"
        );
        assert_eq!(route_key(Method::Patch, "/api/v2/flags/p/f"), "PATCH /api/v2/flags/{projectKey}/{featureFlagKey}");
        assert_eq!(route_key(Method::Get, "/api/v2/flags/p/f"), "GET /api/v2/flags/{projectKey}/{featureFlagKey}");
        assert_eq!(route_key(Method::Get, "/api/v2/metrics/p"), "GET /api/v2/metrics/{projectKey}");
        assert_eq!(route_key(Method::Get, "/api/v2/unknown/x"), "GET /api/v2/unknown/x");
        assert_eq!(route_key(Method::Get, "/api/v2/flags//f"), "GET /api/v2/flags//f");
    }

    #[tokio::test]
    async fn an_open_gate_with_nobody_waiting_admits_at_once() {
        let limit = AdaptiveLimit::new(2);
        let gate = Gate::default();
        let t = Instant::now();
        let _a = gate.admit(0, false, &limit).await;
        let _b = gate.admit(1, false, &limit).await;
        assert!(t.elapsed() < Duration::from_millis(50));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_gate_releases_oldest_first_and_newcomers_queue_behind() {
        let limit = Arc::new(AdaptiveLimit::new(1));
        let gate = Arc::new(Gate::default());
        let start = Instant::now();
        gate.close_for(Duration::from_millis(400));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let spawn = |ticket: u64| {
            let (g, o, l) = (Arc::clone(&gate), Arc::clone(&order), Arc::clone(&limit));
            tokio::spawn(async move {
                let _slot = g.admit(ticket, ticket == 9, &l).await;
                o.lock().unwrap().push((ticket, Instant::now()));
                // Holding the only slot a moment: the next in line must wait for it, not overtake.
                tokio::time::sleep(Duration::from_millis(5)).await;
            })
        };
        let mut tasks = Vec::new();
        // Tickets arrive out of order; the gate must release the refused one (9) first, then the others in ticket
        // order, whatever the arrival.
        for ticket in [9u64, 3, 7, 1, 5] {
            tasks.push(spawn(ticket));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(gate.waiting(), 5);
        assert!(order.lock().unwrap().is_empty(), "nobody passes a closed gate");
        // Arriving while others wait, even with a smaller ticket than some, means joining the line in order.
        tasks.push(spawn(4));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [9, 1, 3, 4, 5, 7]);
        assert!(order[0].1.duration_since(start) >= Duration::from_millis(400));
        assert!(order[0].1.duration_since(start) < Duration::from_millis(600));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_gate_closed_again_holds_longer_never_shorter() {
        let limit = AdaptiveLimit::new(1);
        let gate = Gate::default();
        let t = Instant::now();
        gate.close_for(Duration::from_millis(300));
        gate.close_for(Duration::from_millis(100));
        let _slot = gate.admit(0, false, &limit).await;
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_global_close_holds_every_route_including_routes_first_used_during_the_wait() {
        let limit = Arc::new(AdaptiveLimit::new(4));
        let gates = Arc::new(RouteGates::default());
        let known = gates.gate("GET /a");
        let t = Instant::now();
        gates.close_all_for(Duration::from_millis(300));
        let admit = |route: &'static str| {
            let (gates, limit) = (Arc::clone(&gates), Arc::clone(&limit));
            tokio::spawn(async move {
                let gate = gates.gate(route);
                let _slot = gate.admit(gates.ticket(), false, &limit).await;
                Instant::now()
            })
        };
        let (a, b) = (admit("GET /a"), admit("PATCH /b"));
        // Arriving later, on a route nobody has used yet: still held to the same reset, not let through.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = admit("POST /c");
        for passed in [a.await.unwrap(), b.await.unwrap(), c.await.unwrap()] {
            let waited = passed.duration_since(t);
            assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(500), "{waited:?}");
        }
        assert_eq!(known.waiting(), 0);
        // Once the window is over, a new route opens at once.
        let t = Instant::now();
        let _slot = gates.gate("GET /d").admit(gates.ticket(), false, &limit).await;
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_route_close_holds_only_that_route() {
        let limit = AdaptiveLimit::new(4);
        let gates = RouteGates::default();
        gates.gate("GET /a").close_for(Duration::from_millis(300));
        let t = Instant::now();
        let _slot = gates.gate("GET /b").admit(gates.ticket(), false, &limit).await;
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        let _slot = gates.gate("GET /a").admit(gates.ticket(), false, &limit).await;
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_line() {
        let limit = AdaptiveLimit::new(1);
        let gate = Gate::default();
        let t = Instant::now();
        gate.close_for(Duration::from_millis(300));
        let cancelled = tokio::time::timeout(Duration::from_millis(50), gate.admit(0, false, &limit)).await;
        assert!(cancelled.is_err());
        assert_eq!(gate.waiting(), 0);
        let _slot = gate.admit(1, false, &limit).await;
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    }
}
