//! Harness of the end-to-end tests: the emulator as a child process (`ldexp emulator --port 0`), the real `ldexp`
//! binary run against it with a canary token, and raw HTTP to the emulator's API and admin routes.
//!
//! Every run of `ldexp` asserts that the canary token is absent from its stdout and stderr; every scenario ends by
//! scanning the files it wrote ([`Workspace::assert_no_canary`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ldexp");

/// A token unique to this test process: `canary-<random>`. It must never appear in any output or file.
pub(crate) fn canary() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        format!("canary-{:x}{:x}", nanos, std::process::id())
    })
}

/// The seed every scenario starts from.
pub(crate) fn seed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures/seed.yaml")
}

/// A running emulator child process; killed on drop.
pub(crate) struct Emulator {
    child: Child,
    pub base_url: String,
    host_port: String,
}

impl Emulator {
    /// Starts `ldexp emulator --port 0 --seed <seed>` plus `extra` flags, accepting the canary token.
    pub(crate) fn start(extra: &[&str]) -> Emulator {
        Emulator::start_seeded(&seed_path(), extra)
    }

    /// Like [`Emulator::start`], from another seed file.
    pub(crate) fn start_seeded(seed: &Path, extra: &[&str]) -> Emulator {
        let mut child = Command::new(BIN)
            .arg("emulator")
            .args(["--port", "0", "--seed"])
            .arg(seed)
            .args(extra)
            .env("LDEXP_EMULATOR_TOKEN", canary())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the emulator's first line");
        let start = line.find("http://").unwrap_or_else(|| panic!("no address in the emulator's first line: {line:?}"));
        let base_url: String = line[start..].split_whitespace().next().unwrap_or_default().trim_end_matches('/').into();
        let host_port = base_url.trim_start_matches("http://").to_owned();
        Emulator { child, base_url, host_port }
    }

    /// A raw HTTP/1.1 exchange; returns the status and body.
    pub(crate) fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(&self.host_port).expect("connect to the emulator");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nLD-API-Version: beta\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            self.host_port,
            canary(),
            body.len()
        );
        if let Some(ct) = content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read the answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        (status, if chunked { dechunk(rest) } else { rest.to_owned() })
    }

    /// `GET /_emulator/state` as text, exactly as served.
    pub(crate) fn state_text(&self) -> String {
        let (status, body) = self.http("GET", "/_emulator/state", None, None);
        assert_eq!(status, 200, "GET /_emulator/state: {body}");
        body
    }

    /// `GET /_emulator/state` as JSON.
    pub(crate) fn state(&self) -> Value {
        serde_json::from_str(&self.state_text()).expect("the state is JSON")
    }

    /// `GET /_emulator/stats` as JSON.
    pub(crate) fn stats(&self) -> Value {
        let (status, body) = self.http("GET", "/_emulator/stats", None, None);
        assert_eq!(status, 200, "GET /_emulator/stats: {body}");
        serde_json::from_str(&body).expect("the stats are JSON")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One finished `ldexp` run.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A temporary directory with specs, plans and exports; scanned for the canary at the end.
pub(crate) struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (creating directories).
    pub(crate) fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// Removes `rel`.
    pub(crate) fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).expect("remove");
    }

    /// Runs `ldexp args…` in this directory against `em`, and checks the canary is not in its output.
    pub(crate) fn ldexp(&self, em: &Emulator, args: &[&str]) -> Run {
        let out = self.command(em, args).output().expect("run ldexp");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_no_canary(&run);
        run
    }

    /// The command `ldexp args…` with the emulator's base URL and the canary token, without colour.
    pub(crate) fn command(&self, em: &Emulator, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env("LD_BASE_URL", &em.base_url)
            .env("LD_ACCESS_TOKEN", canary())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Fails if any file under the workspace contains the canary token.
    pub(crate) fn assert_no_canary(&self) {
        let mut stack = vec![self.path().to_path_buf()];
        let mut scanned = 0;
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    scanned += 1;
                    let bytes = std::fs::read(&p).expect("read");
                    assert!(
                        !String::from_utf8_lossy(&bytes).contains(canary()),
                        "the access token leaked into {}",
                        p.display()
                    );
                }
            }
        }
        assert!(scanned > 0, "nothing was written to scan");
    }
}

/// Fails if the canary token is in a run's output.
pub(crate) fn assert_no_canary(run: &Run) {
    assert!(!run.stdout.contains(canary()), "the access token leaked to stdout:\n{}", run.stdout);
    assert!(!run.stderr.contains(canary()), "the access token leaked to stderr:\n{}", run.stderr);
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub(crate) fn expect_code(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
        run.code, run.stdout, run.stderr
    );
}
