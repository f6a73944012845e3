//! Rate limits and injected faults of the HTTP server: the per-route and account-wide 10 s windows with their
//! `X-Ratelimit-*` headers, and the seeded draws behind `--fault-5xx`, `--fault-409` and `--fault-drop`.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::SmallRng;

/// The rate-limit window, as LaunchDarkly counts it.
const WINDOW_MS: u64 = 10_000;

/// What `--fault-5xx` answers with.
pub(crate) const FAULTS: [(u16, &str); 3] =
    [(500, "internal_server_error"), (502, "bad_gateway"), (503, "service_unavailable")];

/// The rate-limit settings of a server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Requests per window per `METHOD route`.
    pub route: Option<u32>,
    /// Requests per window across every API route (account-wide).
    pub global: Option<u32>,
    /// 429s carry no rate-limit headers and no `Retry-After`.
    pub bare: bool,
    /// Answers report the account-wide window in `X-Ratelimit-Global-Remaining` (contract §9.12); off only under
    /// `--differ rate-limit-headers`.
    pub global_header: bool,
}

/// One 10 s window, starting with its first request.
struct Window {
    start_ms: u64,
    count: u32,
    rejected: u32,
}

impl Window {
    fn new(now: u64) -> Self {
        Window { start_ms: now, count: 0, rejected: 0 }
    }

    /// The window as it stands at `now`: a new one once 10 s have passed.
    fn current(&mut self, now: u64) -> &mut Self {
        if now >= self.start_ms + WINDOW_MS {
            *self = Window::new(now);
        }
        self
    }

    fn end(&self) -> u64 {
        self.start_ms + WINDOW_MS
    }
}

/// Every open window of a server.
#[derive(Default)]
pub(crate) struct Windows {
    routes: BTreeMap<String, Window>,
    global: Option<Window>,
}

/// What the windows say about one request. Both arms carry the headers the answer gets.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Counted in every window that applies.
    Pass(BTreeMap<String, String>),
    /// Refused by at least one window; counted in none.
    Refused {
        headers: BTreeMap<String, String>,
        message: String,
        /// The account-wide window was one of those that refused.
        global: bool,
    },
}

/// The header that reports the account-wide window.
const GLOBAL_REMAINING: &str = "x-ratelimit-global-remaining";

/// Counts one request of route `key` at `now` (epoch ms) against the route's and the account-wide windows.
pub(crate) fn check(limits: Limits, windows: &mut Windows, key: &str, now: u64) -> Verdict {
    let mut verdict = count(limits, windows, key, now);
    if !limits.global_header {
        // The window still counts and refuses; only its header is missing, which is what a probe must notice.
        match &mut verdict {
            Verdict::Pass(headers) | Verdict::Refused { headers, .. } => headers.remove(GLOBAL_REMAINING),
        };
    }
    verdict
}

fn count(limits: Limits, windows: &mut Windows, key: &str, now: u64) -> Verdict {
    let route = limits.route.map(|n| (n, windows.routes.entry(key.to_owned()).or_insert_with(|| Window::new(now))));
    let route = route.map(|(n, w)| (n, w.current(now)));
    let global = limits.global.map(|n| (n, windows.global.get_or_insert_with(|| Window::new(now)).current(now)));
    let route_full = route.as_ref().is_some_and(|(n, w)| w.count >= *n);
    let global_full = global.as_ref().is_some_and(|(n, w)| w.count >= *n);
    let mut headers = BTreeMap::new();
    if !route_full && !global_full {
        // Once both windows have restarted the client may send at full speed again, hence the later end.
        let mut reset = 0;
        if let Some((n, w)) = route {
            w.count += 1;
            headers.insert("x-ratelimit-route-remaining".to_owned(), (n - w.count).to_string());
            reset = reset.max(w.end());
        }
        if let Some((n, w)) = global {
            w.count += 1;
            headers.insert(GLOBAL_REMAINING.to_owned(), (n - w.count).to_string());
            reset = reset.max(w.end());
        }
        if reset > 0 {
            headers.insert("x-ratelimit-reset".to_owned(), reset.to_string());
        }
        return Verdict::Pass(headers);
    }
    // The reset and Retry-After speak of the windows that refused; the others still report what they have left.
    let (mut reset, mut retry) = (0, false);
    let mut which = Vec::new();
    if let Some((n, w)) = route {
        if route_full {
            w.rejected += 1;
            reset = reset.max(w.end());
            // Only some 429s carry Retry-After (IP-based limits do, route limits may not): every other one of a
            // window, so clients are exercised on both forms.
            retry |= w.rejected % 2 == 1;
            which.push(format!("the window of `{key}` ({n} requests per 10 s)"));
        }
        headers.insert("x-ratelimit-route-remaining".to_owned(), (n - w.count.min(n)).to_string());
    }
    if let Some((n, w)) = global {
        if global_full {
            w.rejected += 1;
            reset = reset.max(w.end());
            retry |= w.rejected % 2 == 1;
            which.push(format!("the account-wide window ({n} requests per 10 s)"));
        }
        headers.insert(GLOBAL_REMAINING.to_owned(), (n - w.count.min(n)).to_string());
    }
    headers.insert("x-ratelimit-reset".to_owned(), reset.to_string());
    if retry {
        headers.insert("retry-after".to_owned(), reset.saturating_sub(now).div_ceil(1_000).max(1).to_string());
    }
    if limits.bare {
        // `--rate-limit-bare`: clients must fall back to waiting a whole window on their own.
        headers.clear();
    }
    let message = format!("You've exceeded the API rate limit: {} is used up. Try again later.", which.join(" and "));
    Verdict::Refused { headers, message, global: global_full }
}

/// The fault settings of a server, all probabilities in [0, 1].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    pub server_error: f64,
    pub conflict: f64,
    pub drop: f64,
}

/// The faults drawn for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Draw {
    /// Index into [`FAULTS`]: answer that 5xx without handling the request.
    pub server_error: Option<usize>,
    /// Answer 409 without handling the request, if it is a POST or PATCH.
    pub conflict: bool,
    /// Handle the request, then close the connection without an answer.
    pub drop: bool,
}

/// Draws the faults of one request that passed the rate limits. The 5xx and drop draws happen on every such
/// request, in the order they always had, and the 409 draw only when `--fault-409` is set: the sequence depends
/// only on the seed, the settings and the request order, and seeds chosen before `--fault-409` existed keep their
/// faults.
pub(crate) fn draw(rng: &mut SmallRng, faults: Faults) -> Draw {
    let fail = rng.random::<f64>() < faults.server_error;
    let drop = rng.random::<f64>() < faults.drop;
    let conflict = faults.conflict > 0.0 && rng.random::<f64>() < faults.conflict;
    // Clients must treat every 5xx alike, so the injected status varies.
    let server_error = fail.then(|| rng.random_range(0..FAULTS.len()));
    Draw { server_error, conflict, drop }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "GET /api/v2/metrics/{projectKey}";

    #[test]
    fn both_windows_count_and_either_refuses() {
        let limits = Limits { route: Some(3), global: Some(2), bare: false, global_header: true };
        let mut w = Windows::default();
        let Verdict::Pass(h) = check(limits, &mut w, ROUTE, 1_000) else { panic!("first passes") };
        assert_eq!(h["x-ratelimit-route-remaining"], "2");
        assert_eq!(h["x-ratelimit-global-remaining"], "1");
        assert_eq!(h["x-ratelimit-reset"], "11000");
        assert!(matches!(check(limits, &mut w, "GET other", 2_000), Verdict::Pass(_)));
        let Verdict::Refused { headers, message, global } = check(limits, &mut w, ROUTE, 3_000) else {
            panic!("the account-wide window is used up")
        };
        assert!(global);
        assert_eq!(headers["x-ratelimit-global-remaining"], "0");
        assert_eq!(headers["x-ratelimit-route-remaining"], "2", "a refused request is counted nowhere");
        assert_eq!(headers["x-ratelimit-reset"], "11000");
        assert_eq!(headers["retry-after"], "8");
        assert!(message.contains("the account-wide window (2 requests per 10 s)"), "{message}");
        // A new window after 10 s.
        assert!(matches!(check(limits, &mut w, ROUTE, 11_000), Verdict::Pass(_)));
    }

    #[test]
    fn bare_429s_carry_no_headers() {
        let limits = Limits { route: Some(1), global: None, bare: true, global_header: true };
        let mut w = Windows::default();
        assert!(matches!(check(limits, &mut w, ROUTE, 0), Verdict::Pass(h) if h.contains_key("x-ratelimit-reset")));
        let Verdict::Refused { headers, message, global } = check(limits, &mut w, ROUTE, 1) else { panic!() };
        assert!(headers.is_empty() && !global);
        assert!(message.contains(&format!("the window of `{ROUTE}`")), "{message}");
    }

    #[test]
    fn without_the_global_header_the_global_window_still_counts_and_refuses() {
        let limits = Limits { route: Some(5), global: Some(1), bare: false, global_header: false };
        let mut w = Windows::default();
        let Verdict::Pass(h) = check(limits, &mut w, ROUTE, 1_000) else { panic!("first passes") };
        assert!(!h.contains_key(GLOBAL_REMAINING));
        assert_eq!((h["x-ratelimit-route-remaining"].as_str(), h["x-ratelimit-reset"].as_str()), ("4", "11000"));
        let Verdict::Refused { headers, global, .. } = check(limits, &mut w, ROUTE, 2_000) else { panic!() };
        assert!(global && !headers.contains_key(GLOBAL_REMAINING));
        assert_eq!(headers["x-ratelimit-reset"], "11000");
    }
}
