//! Client settings: the base URL (with the commercial, federal and EU presets), API versions, concurrency and the
//! retry policy.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use super::token::AccessToken;
use crate::Error;

/// The environment variable naming the base URL or a preset.
pub const BASE_URL_ENV: &str = "LD_BASE_URL";
/// LaunchDarkly's commercial instance.
pub const COMMERCIAL: &str = "https://app.launchdarkly.com";
/// LaunchDarkly's federal instance.
pub const FEDERAL: &str = "https://app.launchdarkly.us";
/// LaunchDarkly's EU instance.
pub const EU: &str = "https://app.eu.launchdarkly.com";
/// The dated API version sent on flag and metric routes.
pub const DEFAULT_API_VERSION: &str = "20240415";
/// The value sent on beta routes (experiments, experimentation settings, results, metric groups).
pub const DEFAULT_API_VERSION_BETA: &str = "beta";
/// Default bound on requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default time one attempt may take, from sending the request to the end of the answer's body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time to open a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default wait after a 429 without any rate-limit header: one of LaunchDarkly's 10 s windows (Flagsmith's
/// importer falls back to the same, contract §1).
pub const DEFAULT_BARE_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// A validated base URL: `https://`, or `http://` to a loopback host (the emulator, Prism), without credentials,
/// query or fragment. Stored without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Parses a preset name (`commercial`, `federal`, `eu`) or a URL.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let raw = match s.to_ascii_lowercase().as_str() {
            "commercial" | "us" => COMMERCIAL,
            "federal" | "fed" => FEDERAL,
            "eu" => EU,
            _ => s,
        };
        let url = Url::parse(raw).map_err(|e| {
            Error::config(
                format!("base URL `{raw}` is not a URL: {e}"),
                Some(
                    "use a preset (commercial, federal, eu) or a full URL such as https://app.launchdarkly.com".into(),
                ),
            )
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Error::config(
                    format!("base URL `{raw}` uses plain http:// to a non-loopback host"),
                    Some(
                        "the access token would travel unencrypted; use https://, or http:// only for 127.0.0.1, \
                         ::1 or localhost"
                            .into(),
                    ),
                ));
            }
            other => {
                return Err(Error::config(format!("base URL `{raw}` has unsupported scheme `{other}`"), None));
            }
        }
        if url.host().is_none() {
            return Err(Error::config(format!("base URL `{raw}` has no host"), None));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Do not echo the URL: its userinfo may be a credential.
            return Err(Error::config(
                "the base URL must not contain credentials",
                Some("pass the token in LD_ACCESS_TOKEN".into()),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!("base URL `{raw}` must not have a query or fragment"), None));
        }
        Ok(BaseUrl(url))
    }

    /// `flag` if given, else [`BASE_URL_ENV`], else the commercial instance.
    pub fn resolve(flag: Option<&str>) -> Result<Self, Error> {
        match flag {
            Some(f) => Self::parse(f),
            None => match std::env::var(BASE_URL_ENV) {
                Ok(v) if !v.trim().is_empty() => Self::parse(&v),
                _ => Self::parse(COMMERCIAL),
            },
        }
    }

    /// The base as a string, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The full URL of `path` (which starts with `/`), keeping any path prefix of the base.
    pub(crate) fn join(&self, path: &str) -> Result<Url, Error> {
        let s = format!("{}{}", self.as_str(), path);
        Url::parse(&s).map_err(|e| Error::config(format!("cannot build a URL from `{s}`: {e}"), None))
    }

    /// Whether `url` points at the same scheme, host and port, so the token may be sent there.
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        self.0.origin() == url.origin()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.as_str())
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds and delays for retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, for 429s and for retryable failures of safe requests.
    pub max_retries: u32,
    /// First exponential backoff step; doubled per attempt.
    pub base_delay: Duration,
    /// Cap of one exponential backoff step.
    pub max_delay: Duration,
    /// Wait after a 429 whose `X-Ratelimit-Reset` is already past (or negative).
    pub past_reset_delay: Duration,
    /// Wait after a 429 that names no wait at all (neither `Retry-After` nor `X-Ratelimit-Reset` usable), plus up
    /// to a fifth of random extra. LaunchDarkly's windows are 10 s long, so this outlasts any of them; a short
    /// backoff would only spend the retries inside the same spent window.
    pub bare_rate_limit_wait: Duration,
    /// A 429 asking for a longer wait than this is reported at once instead of sleeping.
    pub max_rate_limit_wait: Duration,
    /// Retries after attempts that timed out (connect or answer), within `max_retries`. A server that accepts
    /// connections and never answers would otherwise hold a read for `max_retries + 1` full timeouts.
    pub max_timeout_retries: u32,
}

impl RetryPolicy {
    /// The longest one request waits on a server that never answers (or never accepts) when each attempt gives
    /// up after `per_attempt`: every attempt the policy allows times out, with the longest backoff between them.
    /// Rate-limit waits and slow answers that do arrive are not timeouts and are bounded separately.
    pub fn timeout_bound(&self, per_attempt: Duration) -> Duration {
        let attempts = self.max_timeout_retries.min(self.max_retries) + 1;
        let waits = (0..attempts - 1).map(|a| self.backoff_cap(a)).fold(Duration::ZERO, Duration::saturating_add);
        per_attempt.saturating_mul(attempts).saturating_add(waits)
    }

    /// The longest backoff before retry `attempt + 1` (the jitter only shortens it).
    pub(crate) fn backoff_cap(&self, attempt: u32) -> Duration {
        self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            past_reset_delay: Duration::from_millis(250),
            bare_rate_limit_wait: DEFAULT_BARE_RATE_LIMIT_WAIT,
            max_rate_limit_wait: Duration::from_secs(120),
            max_timeout_retries: 1,
        }
    }
}

/// Everything [`super::HttpClient`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: BaseUrl,
    pub token: AccessToken,
    /// `LD-API-Version` on flag and metric routes.
    pub api_version: String,
    /// `LD-API-Version` on beta routes.
    pub api_version_beta: String,
    /// Upper bound of requests in flight; the adaptive limit moves between 1 and this.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Time one attempt may take, from sending to the end of the answer's body; a write that times out has an
    /// unknown outcome.
    pub timeout: Duration,
    /// Time to open a connection; nothing was sent when it runs out, so any method may be retried.
    pub connect_timeout: Duration,
    /// `User-Agent`, `ldexp/<version>` by default.
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults for everything but the base URL and token.
    pub fn new(base_url: BaseUrl, token: AccessToken) -> Self {
        ClientConfig {
            base_url,
            token,
            api_version: DEFAULT_API_VERSION.to_owned(),
            api_version_beta: DEFAULT_API_VERSION_BETA.to_owned(),
            concurrency: DEFAULT_CONCURRENCY,
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: format!("ldexp/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        assert_eq!(BaseUrl::parse("commercial").unwrap().as_str(), "https://app.launchdarkly.com");
        assert_eq!(BaseUrl::parse("federal").unwrap().as_str(), "https://app.launchdarkly.us");
        assert_eq!(BaseUrl::parse("EU").unwrap().as_str(), "https://app.eu.launchdarkly.com");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in ["http://127.0.0.1:4010", "http://localhost:8080/", "http://[::1]:9", "http://127.8.0.1"] {
            assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
        }
        let e = BaseUrl::parse("http://app.launchdarkly.com").unwrap_err();
        assert_eq!(e.to_string(), "base URL `http://app.launchdarkly.com` uses plain http:// to a non-loopback host");
        assert!(e.hint().unwrap().contains("unencrypted"));
        assert!(BaseUrl::parse("http://10.0.0.1").is_err());
        assert!(BaseUrl::parse("http://localhost.evil.com").is_err());
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("not a url").is_err());
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echo() {
        let e = BaseUrl::parse("https://user:canary-pw@app.launchdarkly.com").unwrap_err();
        assert!(!e.to_string().contains("canary"));
        assert!(BaseUrl::parse("https://app.launchdarkly.com/?x=1").is_err());
    }

    #[test]
    fn a_silent_server_costs_at_most_two_timeouts_and_one_backoff() {
        let p = RetryPolicy::default();
        assert_eq!(p.timeout_bound(Duration::from_secs(1)), Duration::from_millis(2_500));
        assert_eq!(p.timeout_bound(DEFAULT_TIMEOUT), Duration::from_millis(120_500));
        let never = RetryPolicy { max_timeout_retries: 0, ..RetryPolicy::default() };
        assert_eq!(never.timeout_bound(Duration::from_secs(3)), Duration::from_secs(3));
        let three = RetryPolicy { max_timeout_retries: 3, ..RetryPolicy::default() };
        assert_eq!(three.timeout_bound(Duration::from_secs(1)), Duration::from_millis(4 * 1_000 + 500 + 1_000 + 2_000));
    }

    #[test]
    fn join_keeps_a_path_prefix() {
        let b = BaseUrl::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(b.join("/api/v2/flags/p/f").unwrap().as_str(), "http://127.0.0.1:9/prefix/api/v2/flags/p/f");
        assert!(b.same_origin(&Url::parse("http://127.0.0.1:9/other").unwrap()));
        assert!(!b.same_origin(&Url::parse("http://127.0.0.1:10/other").unwrap()));
    }
}
