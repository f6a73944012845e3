//! Chaos: many applies against an emulator that fails 10% of requests with a 5xx, drops 5% of responses after
//! committing, and rate-limits; some applies are SIGKILLed at a random moment and re-run. Every run must end
//! converged, with no duplicate experiment or iteration, and nothing changed outside what the specs own; and where a
//! colleague left a draft of another design beside a stopped iteration of the spec's design, the design that ends up
//! running is the spec's.
//!
//! `LDEXP_CHAOS_RUNS` sets the number of runs (25 by default); the figures are printed for the closing note.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::specs::{Exp, Stage, legacy};
use crate::support::{Emulator, Run, Workspace, assert_no_canary};

/// A small deterministic generator (xorshift), seeded from the clock and printed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const ENVS: &[&str] = &["production", "staging"];
/// The rules chaos-a and chaos-b run on.
const LANES: &[&str] = &["lane-1", "lane-2"];

/// Writes the specs of generation `i`.
fn write_generation(ws: &Workspace, i: usize) {
    let mut a = Exp::new("chaos-a", ENVS).on_lane("lane-1");
    a.name = format!("Chaos A, generation {i}");
    a.stage = if i == 0 { Stage::Draft } else { Stage::Running };
    a.hypothesis = format!("Hypothesis {}", restarts_until(i));
    if restarts_until(i) > 0 {
        a.justification = Some("the design moved".into());
    }
    ws.write("specs/chaos-a.yaml", &a.yaml());
    let envs: &[&str] = if i.is_multiple_of(2) { &["production"] } else { &["production", "staging"] };
    let baseline = if i.is_multiple_of(2) { "hidden" } else { "shown" };
    ws.write("specs/banner.yaml", &legacy(baseline, &[("clicks", envs), ("purchases", &[])]));
    if i.is_multiple_of(5) {
        let key = format!("chaos-new-{i}");
        ws.write(&format!("specs/{key}.yaml"), &Exp::new(&key, &["staging"]).yaml());
    }
    // chaos-b cycles running → stopped → (a colleague's draft appears) → running the same design again.
    let mut b = Exp::new("chaos-b", &["production"]).on_lane("lane-2");
    b.stage = match i % 4 {
        0 | 3 => Stage::Running,
        _ => Stage::Stopped,
    };
    if b.stage == Stage::Stopped {
        b.winner = Some("Control");
    } else if i > 0 {
        // Running again after a stop: LaunchDarkly wants to know why.
        b.justification = Some("the stop was a test".into());
    }
    ws.write("specs/chaos-b.yaml", &b.yaml());
}

/// Leaves a draft of another design (90/10, another hypothesis) beside chaos-b's stopped iteration, as a colleague
/// editing in the UI would; through the admin route, which faults never touch.
fn colleague_draft(em: &Emulator) {
    let mut state = em.state();
    let x = &mut state["projects"]["shop"]["experiments"]["production"]["chaos-b"];
    let mut draft = x["currentIteration"].clone();
    assert_eq!(draft["status"], "stopped", "chaos-b is stopped before the colleague's edit: {x}");
    for field in ["startedAt", "endedAt", "winningTreatmentId", "winningReason"] {
        draft.as_object_mut().map(|o| o.remove(field));
    }
    draft["_id"] = Value::from(format!("colleague-{}", draft["_id"].as_str().unwrap_or_default()));
    draft["status"] = Value::from("not_started");
    draft["hypothesis"] = Value::from("A colleague's design.");
    draft["treatments"][0]["allocationPercent"] = Value::from("90");
    draft["treatments"][1]["allocationPercent"] = Value::from("10");
    x["draftIteration"] = draft;
    let (status, body) = em.http("PUT", "/_emulator/state", Some("application/json"), Some(&state.to_string()));
    assert_eq!(status, 200, "PUT /_emulator/state: {body}");
}

/// chaos-b's running design, as `(hypothesis, [(treatment, allocation)])`.
fn running_design(em: &Emulator) -> (Value, Vec<(String, String)>) {
    let x = em.state()["projects"]["shop"]["experiments"]["production"]["chaos-b"].clone();
    let cur = &x["currentIteration"];
    assert_eq!(cur["status"], "running", "{x}");
    let mut t: Vec<(String, String)> = cur["treatments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["name"].as_str().unwrap_or_default().to_owned(), t["allocationPercent"].to_string()))
        .collect();
    t.sort();
    (cur["hypothesis"].clone(), t)
}

/// chaos-b's iterations after generation `last`: one, plus one per return to running after a stop, plus the
/// colleague's draft while it waits.
fn chaos_b_iterations(last: usize) -> usize {
    1 + (0..=last).filter(|g| g % 4 == 3).count() + usize::from(last % 4 == 2)
}

/// Design changes of `chaos-a` up to generation `i`: one every third generation from the second on, always while
/// it runs (it starts at generation 1).
fn restarts_until(i: usize) -> usize {
    (2..=i).filter(|g| g % 3 == 2).count()
}

/// What the apply runs of one generation did.
#[derive(Debug, Default)]
struct Applied {
    runs: usize,
    /// Lost responses whose effect a re-read confirmed (nothing resent).
    recovered: usize,
    /// Requests resent after a re-read showed they had not taken effect.
    resent: usize,
}

/// Runs `ldexp apply` until it succeeds (faults can exhaust a run's retries).
fn apply_until_done(ws: &Workspace, em: &Emulator) -> Applied {
    let mut a = Applied::default();
    let mut last = None;
    for _ in 0..10 {
        let run = ws.ldexp(em, &["apply", "--auto-approve", "specs"]);
        a.runs += 1;
        // Report lines read `(N lost response(s) confirmed by re-reading, M request(s) resent)`.
        for line in run.stdout.lines() {
            if let Some((_, rest)) = line.split_once(" (")
                && let Some((n, rest)) = rest.split_once(" lost response(s) confirmed by re-reading, ")
                && let Some((m, _)) = rest.split_once(" request(s) resent)")
            {
                a.recovered += n.parse::<usize>().unwrap_or(0);
                a.resent += m.parse::<usize>().unwrap_or(0);
            }
        }
        if run.code == 0 {
            return a;
        }
        assert_eq!(run.code, 1, "apply exits 0 or 1 only: {run:?}");
        last = Some(run);
    }
    panic!("apply did not succeed in 10 runs; the last one: {last:#?}");
}

/// A plan that gets through the faults; returns its exit code under `--detailed-exitcode`.
fn plan_code(ws: &Workspace, em: &Emulator) -> Run {
    for _ in 0..10 {
        let run = ws.ldexp(em, &["plan", "--detailed-exitcode", "specs"]);
        if run.code != 1 {
            return run;
        }
    }
    panic!("plan failed 10 times in a row");
}

/// The state minus everything the specs own: experiments, the flags' legacy `experiments` and the version
/// counters a flag patch moves, and the logical clock. Must not change at all.
fn outside_owned(state: &Value) -> Value {
    let mut s = state.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("clock");
        o.remove("serial");
    }
    if let Some(projects) = s["projects"].as_object_mut() {
        for p in projects.values_mut() {
            if let Some(o) = p.as_object_mut() {
                o.remove("experiments");
            }
            if let Some(flags) = p["flags"].as_object_mut() {
                for f in flags.values_mut() {
                    if let Some(o) = f.as_object_mut() {
                        o.remove("experiments");
                        o.remove("_version");
                    }
                    if let Some(envs) = f["environments"].as_object_mut() {
                        for e in envs.values_mut() {
                            if let Some(o) = e.as_object_mut() {
                                o.remove("version");
                                o.remove("lastModified");
                                o.remove("_lastModified");
                            }
                            // What the experiments' rules serve is theirs: starts and stops rewrite it (contract
                            // §9.1). Their clauses, and every other rule, stay the colleague's.
                            for r in e["rules"].as_array_mut().into_iter().flatten() {
                                let lane = r["description"].as_str().is_some_and(|d| LANES.contains(&d));
                                if let (true, Some(o)) = (lane, r.as_object_mut()) {
                                    o.remove("variation");
                                    o.remove("rollout");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    s
}

fn iterations(x: &Value) -> usize {
    x["previousIterations"].as_array().map_or(0, Vec::len)
        + usize::from(x.get("currentIteration").is_some_and(|v| !v.is_null()))
        + usize::from(x.get("draftIteration").is_some_and(|v| !v.is_null()))
}

#[test]
fn chaos_applies_converge_without_duplicates() {
    let runs: usize = std::env::var("LDEXP_CHAOS_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7) | 1;
    let mut rng = Rng(seed);
    let fault_seed = (seed % 1_000_000).to_string();
    let em = Emulator::start(&[
        "--fault-5xx",
        "0.1",
        "--fault-drop",
        "0.05",
        "--rate-limit",
        "20",
        "--fault-seed",
        &fault_seed,
    ]);
    let ws = Workspace::new();
    let initial = em.state();
    let started = Instant::now();
    let (mut kills, mut converged, mut applies, mut recovered, mut resent) = (0, 0, 0, 0, 0);

    for i in 0..runs {
        write_generation(&ws, i);
        if i % 4 == 2 {
            colleague_draft(&em);
        }
        if i % 3 == 2 {
            // Kill an apply at a random moment, then re-run it.
            let mut child = ws
                .command(&em, &["apply", "--auto-approve", "specs"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn apply");
            std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
            if child.try_wait().expect("poll").is_none() {
                child.kill().expect("SIGKILL");
                kills += 1;
            }
            let _ = child.wait();
            applies += 1;
        }
        let a = apply_until_done(&ws, &em);
        applies += a.runs;
        recovered += a.recovered;
        resent += a.resent;
        let plan = plan_code(&ws, &em);
        assert_no_canary(&plan);
        assert_eq!(plan.code, 0, "run {i} did not converge:\n{}", plan.stdout);
        assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
        if i % 4 == 3 {
            let want = (
                Value::from("A green checkout button converts better."),
                vec![("Control".to_owned(), "\"50\"".to_owned()), ("Green".to_owned(), "\"50\"".to_owned())],
            );
            assert_eq!(
                running_design(&em),
                want,
                "run {i}: the colleague's draft was started instead of the spec's design"
            );
        }
        converged += 1;
    }

    // No duplicates: exactly the experiments the specs name, each with exactly the iterations its history needs.
    let state = em.state();
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    let last = runs - 1;
    for env in ENVS {
        expected.insert(((*env).to_owned(), "chaos-a".to_owned()), 1 + restarts_until(last));
    }
    for i in (0..runs).filter(|i| i.is_multiple_of(5)) {
        expected.insert(("staging".into(), format!("chaos-new-{i}")), 1);
    }
    expected.insert(("production".into(), "chaos-b".into()), chaos_b_iterations(last));
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (env, xs) in state["projects"]["shop"]["experiments"].as_object().cloned().unwrap_or_default() {
        for (key, x) in xs.as_object().cloned().unwrap_or_default() {
            found.insert((env.clone(), key), iterations(&x));
        }
    }
    let duplicates: usize =
        found.iter().map(|(k, n)| n.saturating_sub(expected.get(k).copied().unwrap_or(0))).sum::<usize>()
            + found.keys().filter(|k| !expected.contains_key(*k)).count();
    // Nothing outside what the specs own moved: the expected document is the initial state minus the owned parts.
    let outside_diff = outside_owned(&initial) != outside_owned(&state);

    let stats = em.stats();
    println!(
        "chaos figures: runs={runs} applies={applies} kills={kills} converged={converged} duplicates={duplicates} \
         lost-responses-confirmed={recovered} resent={resent} faults: 5xx={} dropped={} rate-limited={} of {} requests; seed={seed} elapsed={:.1}s",
        stats["serverErrors"],
        stats["dropped"],
        stats["rateLimited"],
        stats["total"],
        started.elapsed().as_secs_f64()
    );
    println!("chaos emulator stats: {stats}");
    assert_eq!(found, expected, "experiments and iteration counts");
    assert_eq!(duplicates, 0);
    assert!(
        !outside_diff,
        "a field outside the specs changed:\nbefore {}\nafter {}",
        outside_owned(&initial),
        outside_owned(&state)
    );
    assert_eq!(converged, runs);
    assert!(kills > 0 || runs < 8, "no apply was killed mid-way; the kill window missed every run");
    ws.assert_no_canary();
}
