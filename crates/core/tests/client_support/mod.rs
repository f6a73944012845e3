//! A raw-TCP HTTP/1.1 mock for the client tests: records every request byte-exactly (headers with repeats, raw
//! query, body) and answers from a script, including answers no real framework would give (drop the connection,
//! cut a body short).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldexp_core::client::{AccessToken, BaseUrl, ClientConfig, HttpClient, RetryPolicy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The token every test sends.
pub(crate) const TOKEN: &str = "api-test-token";

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub method: String,
    pub path: String,
    pub raw_query: Option<String>,
    /// Header names lower-cased, in arrival order, repeats kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    /// Every value of header `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The single value of `name`; panics unless exactly one.
    pub(crate) fn one(&self, name: &str) -> &str {
        let v = self.all(name);
        assert_eq!(v.len(), 1, "expected exactly one {name} header, got {v:?}");
        v[0]
    }

    /// Decoded query pairs, sorted.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> =
            url::form_urlencoded::parse(self.raw_query.as_deref().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        q.sort();
        q
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// `METHOD path?query` for compact assertions.
    pub(crate) fn line(&self) -> String {
        match &self.raw_query {
            Some(q) => format!("{} {}?{}", self.method, self.path, q),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// What the mock does with one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A complete answer.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Close the connection without answering.
    Drop,
    /// Send the status line, headers and half of `body`, announcing its full length, then close.
    Truncate { status: u16, body: String },
}

impl Reply {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Respond { status, headers: vec![], body: body.to_string() }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply::Respond { status, headers: vec![], body: String::new() }
    }

    pub(crate) fn with_header(self, k: &str, v: &str) -> Reply {
        match self {
            Reply::Respond { status, mut headers, body } => {
                headers.push((k.to_owned(), v.to_owned()));
                Reply::Respond { status, headers, body }
            }
            other => other,
        }
    }
}

type Responder = dyn Fn(&Captured, usize) -> Reply + Send + Sync;

/// A running mock server.
pub(crate) struct Mock {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Captured>>>,
}

impl Mock {
    /// Starts a server answering request number `n` (0-based, across connections) with `respond(&req, n)`.
    pub(crate) async fn start(respond: impl Fn(&Captured, usize) -> Reply + Send + Sync + 'static) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let respond: Arc<Responder> = Arc::new(respond);
        let log2 = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let log = Arc::clone(&log2);
                let respond = Arc::clone(&respond);
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    loop {
                        let Some(req) = read_request(&mut r).await else { return };
                        let n = {
                            let mut l = log.lock().unwrap();
                            l.push(req.clone());
                            l.len() - 1
                        };
                        match respond(&req, n) {
                            Reply::Respond { status, headers, body } => {
                                let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                                if !body.is_empty() {
                                    out.push_str("content-type: application/json\r\n");
                                }
                                for (k, v) in headers {
                                    out.push_str(&format!("{k}: {v}\r\n"));
                                }
                                out.push_str("\r\n");
                                out.push_str(&body);
                                if w.write_all(out.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                            Reply::Drop => return,
                            Reply::Truncate { status, body } => {
                                let half = &body[..body.len() / 2];
                                let out =
                                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{half}", body.len());
                                let _ = w.write_all(out.as_bytes()).await;
                                let _ = w.flush().await;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Mock { addr, log }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Captured> {
        self.log.lock().unwrap().clone()
    }

    /// A client with fast retries, for tests.
    pub(crate) fn client(&self) -> HttpClient {
        HttpClient::new(self.config()).unwrap()
    }

    pub(crate) fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(BaseUrl::parse(&self.base()).unwrap(), AccessToken::new(TOKEN).unwrap());
        c.retry = fast_retries();
        c
    }
}

pub(crate) fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        past_reset_delay: Duration::from_millis(30),
        bare_rate_limit_wait: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(5),
        max_timeout_retries: 1,
    }
}

async fn read_request<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Captured> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target, None),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    Some(Captured { method, path, raw_query, headers, body })
}
