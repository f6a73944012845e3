//! Command-line surface through the binary: connection options only on the commands that call LaunchDarkly,
//! bounded waits on a server that never answers, and OS errors printed once.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ldexp_core::client::RetryPolicy;

use crate::specs::Exp;
use crate::support::{BIN, canary};

const CONNECTION: [&str; 6] =
    ["--base-url", "--concurrency", "--timeout", "--connect-timeout", "--api-version", "--api-version-beta"];

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir).env("NO_COLOR", "1").env_remove("RUST_LOG").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ldexp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn connection_options_are_offered_only_by_commands_that_call_launchdarkly() {
    let dir = tempfile::tempdir().unwrap();
    // Set, so that a help that printed environment values would show them.
    let env = [
        ("LD_BASE_URL", "http://127.0.0.1:9/shown-value"),
        ("LD_API_VERSION", "shown-version"),
        ("LD_API_VERSION_BETA", "shown-beta"),
        ("LDEXP_EMULATOR_TOKEN", "shown-token"),
    ];
    let help = |args: &[&str]| {
        let out = run(dir.path(), args, &env);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        let help = text(&out.stdout);
        assert!(!help.contains("shown-"), "{args:?} shows an environment value:\n{help}");
        for global in ["--verbose", "--quiet", "--color <WHEN>"] {
            assert!(help.contains(global), "{args:?} lacks the global {global}:\n{help}");
        }
        help
    };
    for args in [
        &["plan", "--help"][..],
        &["apply", "--help"],
        &["drift", "--help"],
        &["export", "--help"],
        &["pull", "--help"],
        &["results", "--help"],
        &["results", "reset-legacy", "--help"],
        &["list", "experiments", "--help"],
        &["show", "--help"],
        &["conformance", "--help"],
    ] {
        let h = help(args);
        for option in CONNECTION {
            assert!(h.contains(&format!("{option} <")), "{args:?} lacks {option}:\n{h}");
        }
        for env in ["[env: LD_BASE_URL]", "[env: LD_API_VERSION]", "[env: LD_API_VERSION_BETA]"] {
            assert!(h.contains(env), "{args:?} lacks {env}:\n{h}");
        }
        assert!(!h.contains("LD_BASE_URL="), "{args:?}:\n{h}");
    }
    for args in [
        &["validate", "--help"][..],
        &["completions", "--help"],
        &["emulator", "--help"],
        &["schema", "--help"],
        &["demo", "--help"],
    ] {
        let h = help(args);
        for option in CONNECTION {
            assert!(!h.contains(option), "{args:?} offers {option}, which it does not use:\n{h}");
        }
        assert!(!h.contains("LD_BASE_URL"), "{args:?}:\n{h}");
    }
    assert!(help(&["emulator", "--help"]).contains("[env: LDEXP_EMULATOR_TOKEN]"));

    // Before the subcommand they are now a usage error, which exits 1 (2 means "there are changes").
    let out = run(dir.path(), &["--base-url", "http://127.0.0.1:9", "plan"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--base-url"), "{}", text(&out.stderr));
}

/// Accepts connections and never writes a byte, until the test ends.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    port
}

#[test]
fn plan_against_a_server_that_never_answers_fails_within_the_timeout_bound() {
    let port = silent_server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.yaml"), Exp::new("silent", &["production"]).yaml()).unwrap();
    let timeout = Duration::from_secs(1);
    // Every read of the plan starts at once; each gives up after its attempts under the policy, and the first
    // failure ends the run.
    let bound = RetryPolicy::default().timeout_bound(timeout);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = run(
        dir.path(),
        &["plan", "--timeout", "1", "exp.yaml"],
        &[("LD_BASE_URL", &base), ("LD_ACCESS_TOKEN", canary())],
    );
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took >= timeout * 2, "a timed-out read is retried once: {took:?}\n{stderr}");
    // Generous slack for process start-up on a loaded machine; the point is seconds, not the minutes that
    // six retries of a 60-second timeout would take.
    assert!(took < bound + Duration::from_secs(5), "{took:?} against a bound of {bound:?}\n{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{stderr}");
    for part in [&format!("GET {base}/api/v2/") as &str, "timed out: no answer within 1 s (--timeout) (2 attempts)"] {
        assert!(first.contains(part), "missing {part:?} in {first:?}");
    }
    let hint = stderr.lines().find(|l| l.starts_with("hint: ")).unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    assert!(hint.contains("raise --timeout") && hint.contains("LD_BASE_URL"), "{hint}");
    assert!(!stderr.contains(canary()), "{stderr}");
}

fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    // A dangling symlink: unreadable for every user, root included (chmod 000 is not, for root).
    std::os::unix::fs::symlink(dir.path().join("gone.yaml"), dir.path().join("spec.yaml")).unwrap();
    let out = run(dir.path(), &["validate", "spec.yaml"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "error: spec.yaml: No such file or directory (os error 2)\n");

    let out = run(dir.path(), &["emulator", "--seed", "spec.yaml"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(occurrences(&stderr, "(os error 2)"), 1, "{stderr}");
    assert!(stderr.contains("seed file spec.yaml: No such file"), "{stderr}");

    // An anyhow context over an OS error: a directory where the saved plan should be.
    std::fs::create_dir(dir.path().join("plan.json")).unwrap();
    let out = run(
        dir.path(),
        &["apply", "--plan", "plan.json", "--base-url", "http://127.0.0.1:9"],
        &[("LD_ACCESS_TOKEN", canary())],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(occurrences(&stderr, "(os error 21)"), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot read the plan plan.json: Is a directory"), "{stderr}");
}

/// `ldexp --version` names the commit the binary was built from, as git names HEAD of this checkout (build.rs), or
/// `unknown` when the sources are not a git checkout; subcommands answer the same.
#[test]
fn version_names_the_git_commit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success() && root.join(".git").exists())
        .map_or_else(|| "unknown".to_owned(), |o| text(&o.stdout).trim().to_owned());
    let version = format!("{} (commit {head})\n", env!("CARGO_PKG_VERSION"));
    for (args, name) in [(&["--version"][..], "ldexp"), (&["-V"], "ldexp"), (&["plan", "--version"], "ldexp-plan")] {
        let out = run(&root, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{name} {version}"), "{args:?}");
    }
}
