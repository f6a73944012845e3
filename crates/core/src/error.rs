//! `ldexp_core::Error`: every failure of spec loading, the REST client and the applier, naming the resource.

use std::fmt;
use std::path::PathBuf;

use crate::spec::Diagnostic;

/// The one error type of `ldexp-core`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The specs have problems; every one is listed.
    #[error("{} problem{} in the specs", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Spec { diagnostics: Vec<Diagnostic> },

    /// A file could not be read or written. The OS reason is the `source`, not part of this message: reporters
    /// print the chain, which would otherwise say it twice.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// LaunchDarkly answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// A write may or may not have taken effect: the connection failed or a 5xx arrived after the request was
    /// sent. Never retried blindly; the applier re-reads `resource` to decide.
    #[error("{resource}: outcome of {method} {path} is unknown ({reason}); re-read the object before sending again")]
    OutcomeUnknown { resource: String, method: String, path: String, reason: String },

    /// The request never got an HTTP answer and is safe to report as not sent (or was a read).
    #[error("{resource}: cannot reach LaunchDarkly at {url}: {reason}")]
    Transport { resource: String, url: String, reason: String },

    /// No answer in time: the server accepted the connection and stayed silent past the per-request timeout, or
    /// no connection opened within the connect timeout, on every attempt the retry policy allows (a timed-out
    /// attempt is retried at most `RetryPolicy::max_timeout_retries` times). Reads and unsent writes only; a write
    /// that was sent and timed out is [`Error::OutcomeUnknown`].
    #[error("{resource}: {method} {url} timed out: {waited} ({attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Timeout { resource: String, method: String, url: String, waited: String, attempts: u32 },

    /// A 2xx answer whose body does not parse.
    #[error("{resource}: unexpected response body: {reason}")]
    Decode { resource: String, reason: String },

    /// Bad settings: base URL, token, API version, plan file.
    #[error("{message}")]
    Config { message: String, hint: Option<String> },

    /// What a command asked for is not in LaunchDarkly: a project, environment or experiment that does not exist,
    /// or a metric that the experiment does not measure.
    #[error("{message}")]
    NotFound { message: String },

    /// A 401 on one object while the same token already succeeded elsewhere in the run: most likely the token's
    /// role does not reach `project` (LaunchDarkly answers 401 for that too, contract §9.8), though the token may
    /// also have been revoked meanwhile. The answer itself is kept for its request id and message.
    #[error("no permission for project {project} (or the token is invalid): {api}")]
    NoPermission { project: String, api: Box<ApiError> },

    /// A remote object that `ldexp export` cannot describe as a spec.
    #[error("{resource}: cannot export: {message}")]
    Export { resource: String, message: String },
}

impl Error {
    /// A configuration error with a hint.
    pub fn config(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Config { message: message.into(), hint: hint.into() }
    }

    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api(e) | Error::NoPermission { api: e, .. } => Some(e.hint()),
            Error::Config { hint, .. } => hint.clone(),
            Error::OutcomeUnknown { .. } => {
                Some("run `ldexp plan` to see what took effect; `ldexp apply` converges safely".to_owned())
            }
            Error::Transport { .. } => Some("check --base-url / LD_BASE_URL and the network".to_owned()),
            Error::Timeout { .. } => Some(
                "if LaunchDarkly is only slow, raise --timeout (or --connect-timeout); otherwise check that \
                 --base-url / LD_BASE_URL points at LaunchDarkly and that the network or proxy passes answers through"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

/// An HTTP error answer from LaunchDarkly, with the body's `{code, message, id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What was being read or written, e.g. `experiment demo/production/checkout` or `flag demo/checkout-button`.
    pub resource: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
    /// LaunchDarkly's request id, for support tickets.
    pub request_id: Option<String>,
}

impl ApiError {
    /// Advice for this status, per the contract.
    pub fn hint(&self) -> String {
        match self.status {
            // LaunchDarkly answers 401 both for a bad token and for a token whose role does not reach this
            // project (contract §9.8), so the hint cannot tell them apart and names both.
            401 => "no permission for this project, or the token is invalid: check LD_ACCESS_TOKEN and the token's \
                    role"
                .into(),
            403 => {
                "the token lacks a permission, or the beta LD-API-Version header was refused; check the token's role \
                    and --api-version-beta"
                    .into()
            }
            404 => {
                format!("{} does not exist: check the project, environment, flag and experiment keys", self.resource)
            }
            405 if self.method == "PATCH" && self.path.starts_with("/api/v2/flags/") => {
                "this environment requires approvals for flag changes; ldexp cannot bypass them".into()
            }
            409 => "the object changed concurrently (optimistic locking); run `ldexp plan` again and re-apply".into(),
            429 => "LaunchDarkly kept rate-limiting after every retry; lower --concurrency or try again later".into(),
            400 => self.bad_request_hint(),
            s if s >= 500 => "LaunchDarkly had an internal error; try again".into(),
            _ => "see the message; `ldexp plan -v` shows the request".into(),
        }
    }

    /// A 400 means LaunchDarkly refused what was sent; which advice fits depends on the request.
    fn bad_request_hint(&self) -> String {
        let message = self.message.to_ascii_lowercase();
        let flags = self.path.strip_prefix("/api/v2/flags/").unwrap_or_default();
        // `/api/v2/flags/{project}/{flag}`: the flag itself, not its legacy results below it.
        let flag_patch = self.method == "PATCH" && !flags.is_empty() && flags.split('/').count() == 2;
        let experiments = self.path.contains("/experiments");
        if flag_patch {
            if message.contains("scheduled") || message.contains("approval") || message.contains("conflict") {
                return "the flag patch conflicts with a scheduled change or an approval request on the flag; resolve \
                        it in LaunchDarkly, then run `ldexp plan` again"
                    .into();
            }
            // ldexp guards every flag patch with `test` ops on the versions it planned against.
            if message.contains("test") {
                return "a `test` guard of the flag patch failed: the flag changed since planning; run `ldexp plan` \
                        again and apply the new plan"
                    .into();
            }
            return "LaunchDarkly rejected the request body of the flag patch (the message names the field); if the \
                    flag was edited since planning, run `ldexp plan` again and apply the new plan"
                .into();
        }
        match self.method.as_str() {
            "GET" | "DELETE" => "LaunchDarkly rejected the request's parameters; this is likely a bug in ldexp: \
                                 report it with the output of `-v`"
                .into(),
            "POST" if experiments && message.contains("already exists") => {
                format!("{} already exists; run `ldexp plan` again: it plans no second create", self.resource)
            }
            "POST" if self.path.ends_with("/iterations") => {
                "LaunchDarkly rejected the request body: the new iteration names a metric, flag, rule, treatment \
                 or randomization unit it does not accept (see the message); run `ldexp plan` again if the flag or \
                 metrics changed"
                    .into()
            }
            "POST" if experiments => "LaunchDarkly rejected the request body: the new experiment names a metric, \
                                      flag, rule, treatment or randomization unit it does not accept (see the \
                                      message); run `ldexp plan` again if the flag or metrics changed"
                .into(),
            "PATCH" if experiments => "LaunchDarkly rejected the request body: an instruction does not fit the \
                                       experiment's current state (for example starting an iteration that is not \
                                       ready, or stopping one that is not running); run `ldexp plan` again to see \
                                       that state"
                .into(),
            "PUT" if self.path.ends_with("/experimentation-settings") => {
                "LaunchDarkly rejected the request body: every randomization unit of the experimentation settings \
                 must be a context kind of the project, with at most one default"
                    .into()
            }
            _ => "LaunchDarkly rejected the request body; the message says which field".into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {} failed with HTTP {}", self.resource, self.method, self.path, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn api(method: &str, path: &str, status: u16, message: &str) -> ApiError {
        ApiError {
            resource: "experiment demo/production/checkout".into(),
            method: method.into(),
            path: path.into(),
            status,
            code: Some("invalid_request".into()),
            message: message.into(),
            request_id: None,
        }
    }

    const FLAG: &str = "/api/v2/flags/demo/checkout-button";
    const EXPERIMENTS: &str = "/api/v2/projects/demo/environments/production/experiments";

    #[test]
    fn only_a_failed_test_op_on_a_flag_patch_gets_the_test_guard_hint() {
        let failed_test = api("PATCH", FLAG, 400, "Test operation {op: test} failed: the value at `/x` differs");
        assert!(failed_test.hint().starts_with("a `test` guard of the flag patch failed"), "{}", failed_test.hint());
        let read_only = api("PATCH", FLAG, 400, "`/_version` is read-only");
        assert!(
            read_only.hint().starts_with("LaunchDarkly rejected the request body of the flag patch"),
            "{}",
            read_only.hint()
        );
        let scheduled = api("PATCH", FLAG, 400, "this change conflicts with a scheduled change");
        assert!(scheduled.hint().contains("scheduled change or an approval request"), "{}", scheduled.hint());

        let exists = api("POST", EXPERIMENTS, 400, "an experiment with key `checkout` already exists");
        assert_eq!(
            exists.hint(),
            "experiment demo/production/checkout already exists; run `ldexp plan` again: it plans no second create"
        );
        let others = [
            api("POST", EXPERIMENTS, 400, "metric `m` does not exist"),
            api("POST", &format!("{EXPERIMENTS}/checkout/iterations"), 400, "invalid iteration: test"),
            api("PATCH", &format!("{EXPERIMENTS}/checkout"), 400, "no draft iteration to start"),
            api("PUT", "/api/v2/projects/demo/experimentation-settings", 400, "unknown context kind"),
            api("GET", &format!("{EXPERIMENTS}?limit=0"), 400, "`limit` must be at least 1"),
            api("GET", "/api/v2/flags/demo/checkout-button/experiments/production/clicks", 400, "bad test"),
            api("POST", "/api/v2/somewhere", 400, "bad"),
        ];
        let hints: Vec<String> = others.iter().map(ApiError::hint).collect();
        for h in &hints {
            assert!(!h.contains("`test` guard"), "{h}");
            assert!(!h.contains("already exists"), "{h}");
        }
        assert!(hints[0].contains(": the new experiment names"), "{}", hints[0]);
        assert!(hints[1].contains(": the new iteration names"), "{}", hints[1]);
        assert!(hints[2].contains(": an instruction does not fit"), "{}", hints[2]);
        for h in &hints[..4] {
            assert!(h.starts_with("LaunchDarkly rejected the request body"), "{h}");
        }
        assert!(hints[3].contains("context kind"), "{}", hints[3]);
        assert!(hints[4].contains("bug in ldexp"), "{}", hints[4]);
        assert!(hints[5].contains("bug in ldexp"), "{}", hints[5]);
        assert_eq!(hints[6], "LaunchDarkly rejected the request body; the message says which field");
        // Without a `code`, a 400 is still a 400.
        let mut uncoded = api("PATCH", FLAG, 400, "Test operation failed");
        uncoded.code = None;
        assert!(uncoded.hint().starts_with("a `test` guard"), "{}", uncoded.hint());
    }

    #[test]
    fn a_401_names_both_readings_and_a_no_permission_failure_names_its_project() {
        let mut e = api("PATCH", &format!("{EXPERIMENTS}/checkout"), 401, "Unauthorized");
        e.code = Some("unauthorized".into());
        assert_eq!(
            e.hint(),
            "no permission for this project, or the token is invalid: check LD_ACCESS_TOKEN and the token's role"
        );
        let denied = Error::NoPermission { project: "demo".into(), api: Box::new(e.clone()) };
        assert_eq!(
            denied.to_string(),
            format!("no permission for project demo (or the token is invalid): {e}"),
            "the answer stays visible after the plain-language reading"
        );
        assert_eq!(denied.hint(), Some(e.hint()));
    }

    #[test]
    fn an_io_error_names_its_os_reason_once_in_the_chain() {
        let e = Error::Io {
            path: "specs/a.yaml".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let mut chain = vec![e.to_string()];
        let mut source = e.source();
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        assert_eq!(chain, ["specs/a.yaml", "permission denied"]);
    }

    #[test]
    fn a_timeout_says_what_timed_out_and_how_often() {
        let e = Error::Timeout {
            resource: "flag demo/f".into(),
            method: "GET".into(),
            url: "http://127.0.0.1:9/api/v2/flags/demo/f".into(),
            waited: "no answer within 1 s".into(),
            attempts: 2,
        };
        assert_eq!(
            e.to_string(),
            "flag demo/f: GET http://127.0.0.1:9/api/v2/flags/demo/f timed out: no answer within 1 s (2 attempts)"
        );
        assert!(e.hint().is_some_and(|h| h.contains("--timeout") && h.contains("LD_BASE_URL")));
    }
}
