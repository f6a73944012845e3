//! `ldexp demo` works from a fresh clone and from any other directory: no credentials, no network, and it ends
//! converged.

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

fn demo(dir: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(BIN)
        .arg("demo")
        .args(args)
        .current_dir(dir)
        .env_remove("LD_ACCESS_TOKEN")
        .env_remove("LD_BASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo")
}

#[test]
fn the_demo_converges_without_credentials() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let examples = root.join("examples");
    assert_converged(&demo(&root, &["--examples".as_ref(), examples.as_os_str()]));
}

#[test]
fn the_demo_runs_from_any_directory_with_the_bundled_examples() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = demo(elsewhere.path(), &[]);
    assert_converged(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ldexp's bundled examples"), "{stdout}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "the demo writes nothing where it runs");

    // A directory without the seed is refused with what it needs, not a bare "No such file".
    let out = demo(elsewhere.path(), &["--examples".as_ref(), "specs".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("specs has no remote.yaml") && stderr.contains("without --examples"), "{stderr}");
}

fn assert_converged(out: &std::process::Output) {
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
