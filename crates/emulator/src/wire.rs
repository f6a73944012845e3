//! The transport-neutral request and response the handler works on, and the helpers that build answers.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

/// One HTTP request, decoded: the path is as sent (percent-encoded segments), the query is decoded.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &str, path: &str) -> Self {
        Request { method: method.to_owned(), path: path.to_owned(), ..Request::default() }
    }

    /// Adds a header (the name is lower-cased).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// A header's value; names compare case-insensitively even if a caller filled `headers` by hand.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .or_else(|| self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            .map(String::as_str)
    }
}

// Hand-written so the access token in `authorization` never reaches a log line.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), if k.eq_ignore_ascii_case("authorization") { "[redacted]" } else { v.as_str() }))
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// One HTTP answer. `body` is `None` for 204.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
}

impl Response {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Response { status, headers: BTreeMap::new(), body: Some(body) }
    }

    /// An answer without a body.
    pub fn empty(status: u16) -> Self {
        Response { status, headers: BTreeMap::new(), body: None }
    }

    /// A LaunchDarkly error body `{code, message, id}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>, id: &str) -> Self {
        Response::json(status, json!({ "code": code, "message": message.into(), "id": id }))
    }

    /// The error `code`, when this is an error answer.
    pub fn code(&self) -> Option<&str> {
        self.body.as_ref()?.get("code")?.as_str()
    }

    /// The error `message`, when this is an error answer.
    pub fn message(&self) -> Option<&str> {
        self.body.as_ref()?.get("message")?.as_str()
    }
}

/// A failed request inside the handler: becomes an error [`Response`] once the request id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

pub(crate) type Outcome<T> = Result<T, Fail>;

impl Fail {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Fail { status: 400, code: "invalid_request", message: message.into() }
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Fail { status: 404, code: "not_found", message: message.into() }
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Fail { status: 403, code: "forbidden", message: message.into() }
    }
    /// 409 `optimistic_locking_error`: LaunchDarkly's answer to a write that conflicts with the current state, which
    /// a plain retry does not fix (contract §9.11).
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Fail { status: 409, code: "optimistic_locking_error", message: message.into() }
    }
    /// 409 `conflict`: the key of a new object is taken. The status is declared (`StatusConflictErrorRep`); the code
    /// is an assumption ([inferred]): the schema only gives `optimistic_locking_error` as an example, and a retry
    /// cannot fix a taken key, so the answer must not read as a race.
    pub(crate) fn exists(message: impl Into<String>) -> Self {
        Fail { status: 409, code: "conflict", message: message.into() }
    }
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Fail { status: 405, code: "method_not_allowed", message: message.into() }
    }
}

/// A `Link` object (`{href, type}`).
pub(crate) fn link(href: impl Into<String>) -> Value {
    json!({ "href": href.into(), "type": "application/json" })
}

/// `_links` with just `self`.
pub(crate) fn self_links(href: impl Into<String>) -> Value {
    json!({ "self": link(href) })
}
