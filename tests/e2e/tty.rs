//! `apply` on a terminal: the `Apply these changes? [y/N]` prompt and the progress bar, through util-linux
//! `script` (a pseudo-terminal). Skipped where `script` is not installed.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::specs::{Exp, Stage};
use crate::support::{BIN, Emulator, Workspace, canary};

fn script_available() -> bool {
    Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs `ldexp apply specs` on a pseudo-terminal, answering `answer`; returns the exit code and the terminal text.
fn apply_on_tty(ws: &Workspace, em: &Emulator, answer: &str) -> (i32, String) {
    let mut child = Command::new("script")
        .args(["-qec", &format!("{BIN} apply specs"), "/dev/null"])
        .current_dir(ws.path())
        .env("LD_BASE_URL", &em.base_url)
        .env("LD_ACCESS_TOKEN", canary())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    child.stdin.take().expect("stdin").write_all(answer.as_bytes()).expect("answer");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(canary()), "the access token leaked to the terminal");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn apply_asks_on_a_terminal_and_shows_progress() {
    if !script_available() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = Exp::new("checkout-color", &["production", "staging"]);
    e.stage = Stage::Running;
    ws.write("specs/a.yaml", &e.yaml());

    let (code, text) = apply_on_tty(&ws, &em, "n\n");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Apply these changes? [y/N]"), "{text}");
    assert!(text.contains("Apply cancelled; nothing was sent."), "{text}");
    let (status, _) =
        em.http("GET", "/api/v2/projects/shop/environments/production/experiments/checkout-color", None, None);
    assert_eq!(status, 404, "a refused apply sends nothing");

    let (code, text) = apply_on_tty(&ws, &em, "y\n");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2/2"), "the progress bar counts objects: {text}");
    assert!(text.contains("Apply complete: 2 applied, 0 failed, 0 skipped."), "{text}");
    ws.assert_no_canary();
}
