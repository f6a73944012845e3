//! Ctrl-C during apply: the first SIGINT stops sending, lets the requests in flight finish, says what was applied
//! and what is left, and exits 130; a second SIGINT exits at once. Result lines stream as objects finish.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Workspace, expect_code};

const KEYS: [&str; 8] = ["int-a", "int-b", "int-c", "int-d", "int-e", "int-f", "int-g", "int-h"];
/// One rule each: LaunchDarkly runs one experiment per rule.
const LANES: [&str; 8] = ["lane-1", "lane-2", "lane-3", "lane-4", "lane-5", "lane-6", "lane-7", "lane-8"];

/// Eight experiments to create and start in staging: sixteen writes, each slowed down by the emulator.
fn slow_workspace() -> (Emulator, Workspace) {
    let em = Emulator::start(&["--latency-ms", "300"]);
    let ws = Workspace::new();
    for (key, lane) in KEYS.into_iter().zip(LANES) {
        let mut e = Exp::new(key, &["staging"]).on_lane(lane);
        e.stage = Stage::Running;
        ws.write(&format!("specs/{key}.yaml"), &e.yaml());
    }
    (em, ws)
}

fn sigint(child: &Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

/// Starts `apply` one object at a time, and returns it with its stdout lines arriving on a channel.
fn start_apply(em: &Emulator, ws: &Workspace) -> (Child, mpsc::Receiver<String>) {
    let mut child =
        ws.command(em, &["apply", "--auto-approve", "--concurrency", "1", "specs"]).spawn().expect("spawn apply");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for the first `applied` line: it arrives while apply still runs, so lines stream.
fn first_applied(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("a line from apply");
        let applied = line.trim_start().starts_with("applied");
        seen.push(line);
        if applied {
            return;
        }
    }
    panic!("no object was applied: {seen:#?}");
}

fn finish(mut child: Child, rx: mpsc::Receiver<String>, mut seen: Vec<String>) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let status = child.wait().expect("wait");
    let waited = t.elapsed();
    seen.extend(rx.iter());
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    (status.code().unwrap_or(-1), seen.join("\n"), stderr, waited)
}

#[test]
fn the_first_ctrl_c_finishes_what_is_in_flight_and_says_what_is_left() {
    let (em, ws) = slow_workspace();
    let (child, rx) = start_apply(&em, &ws);
    let mut seen = Vec::new();
    first_applied(&rx, &mut seen);
    // The child must still be running: a line arrived before the end.
    assert!(seen.iter().all(|l| !l.contains("Apply complete")), "{seen:#?}");
    sigint(&child);
    let (code, stdout, stderr, waited) = finish(child, rx, seen);
    assert_eq!(code, 130, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(waited < Duration::from_secs(10), "took {waited:?} to stop");
    assert!(stderr.contains("Interrupted: sending nothing new"), "{stderr}");
    assert!(stdout.contains("Apply interrupted: "), "{stdout}");
    assert!(stdout.contains("Run `ldexp apply` again to finish"), "{stdout}");
    let applied = stdout.lines().filter(|l| l.trim_start().starts_with("applied")).count();
    assert!((1..KEYS.len()).contains(&applied), "{applied} applied:\n{stdout}");
    // Every object is accounted for: applied, or stopped with how far it got.
    let stopped = stdout.lines().filter(|l| l.trim_start().starts_with("stopped")).count();
    assert_eq!(applied + stopped, KEYS.len(), "{stdout}");
    // The next plan is exactly what is left, and a second apply finishes it.
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 2);
    let left = plan
        .stdout
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            matches!(words.next(), Some("+" | "~" | "±")) && words.next().is_some_and(|w| w.contains("/staging/int-"))
        })
        .count();
    assert_eq!(left, KEYS.len() - applied, "{}", plan.stdout);
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 0);
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let (em, ws) = slow_workspace();
    let (child, rx) = start_apply(&em, &ws);
    let mut seen = Vec::new();
    first_applied(&rx, &mut seen);
    sigint(&child);
    std::thread::sleep(Duration::from_millis(50));
    sigint(&child);
    let (code, stdout, stderr, waited) = finish(child, rx, seen);
    assert_eq!(code, 130, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(waited < Duration::from_secs(3), "took {waited:?} to exit");
    assert!(stderr.contains("Interrupted again: exiting now"), "{stderr}");
}
