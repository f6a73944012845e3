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

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
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

    /// A 2xx answer whose body does not parse.
    #[error("{resource}: unexpected response body: {reason}")]
    Decode { resource: String, reason: String },

    /// Bad settings: base URL, token, API version, plan file.
    #[error("{message}")]
    Config { message: String, hint: Option<String> },

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
            Error::Api(e) => Some(e.hint()),
            Error::Config { hint, .. } => hint.clone(),
            Error::OutcomeUnknown { .. } => {
                Some("run `ldexp plan` to see what took effect; `ldexp apply` converges safely".to_owned())
            }
            Error::Transport { .. } => Some("check --base-url / LD_BASE_URL and the network".to_owned()),
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
            401 => "the access token was rejected: check LD_ACCESS_TOKEN (an API access token, not an SDK key)".into(),
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
            400 if self.code.as_deref() == Some("invalid_request") => {
                "LaunchDarkly rejected the request body; for a flag patch a failed `test` guard means the flag moved \
                 since planning: run `ldexp plan` again"
                    .into()
            }
            s if s >= 500 => "LaunchDarkly had an internal error; try again".into(),
            _ => "see the message; `ldexp plan -v` shows the request".into(),
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
