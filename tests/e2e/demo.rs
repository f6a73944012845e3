//! `ldexp demo` works from a fresh clone: no credentials, no network, and it ends converged.

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

#[test]
fn the_demo_converges_without_credentials() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(BIN)
        .args(["demo", "--examples"])
        .arg(root.join("examples"))
        .env_remove("LD_ACCESS_TOKEN")
        .env_remove("LD_BASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let steps = [
        "1. `ldexp plan`",
        "Plan: ",
        "2. `ldexp apply --auto-approve`",
        "Apply complete:",
        "3. `ldexp plan` again",
        "No changes. Remote matches the specs.",
        "4. `ldexp drift`",
        "No drift. Remote matches the specs.",
        "drift exit code: 0",
        "the emulator is stopped",
    ];
    let mut at = 0;
    for step in steps {
        let found = stdout[at..].find(step).unwrap_or_else(|| panic!("`{step}` missing or out of order:\n{stdout}"));
        at += found + step.len();
    }
}
