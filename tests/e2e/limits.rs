//! The limits of the service, end to end: how many requests a plan makes per route (R_min v2), pagination that
//! does not trust a misreported `total_count`, the account-wide rate-limit window, a 429 that names no wait, a 409
//! that a retry cannot fix, and a 401 that means "no permission in this project".

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Workspace, canary, expect_code};

const PROD: &[&str] = &["production"];
const STAGING: &[&str] = &["staging"];

const ANY_ENV_LIST: &str = "GET /api/v2/projects/{projectKey}/experiments";
const ENV_LIST: &str = "GET /api/v2/projects/{projectKey}/environments/{environmentKey}/experiments";
const FLAG_GET: &str = "GET /api/v2/flags/{projectKey}/{featureFlagKey}";
const FLAG_LIST: &str = "GET /api/v2/flags/{projectKey}";

/// `stats.byRoute[route]`, 0 when the route was never asked.
fn count(stats: &Value, route: &str) -> u64 {
    stats["byRoute"][route].as_u64().unwrap_or(0)
}

fn experiment(em: &Emulator, project: &str, env: &str, key: &str) -> Value {
    em.state()["projects"][project]["experiments"][env][key].clone()
}

/// Replaces the emulator's state with `state`.
fn put_state(em: &Emulator, state: &Value) {
    let (status, body) = em.http("PUT", "/_emulator/state", Some("application/json"), Some(&state.to_string()));
    assert_eq!(status, 200, "PUT /_emulator/state: {body}");
}

/// `e`'s spec moved from `checkout-button` to `banner` (variations `hidden`, `shown`, on its fallthrough).
fn on_banner(e: &Exp<'_>) -> String {
    let yaml = e
        .yaml()
        .replace(&format!("checkout-button:\n      rule: {}", e.rule), "banner:\n      rule: fallthrough")
        .replace("{checkout-button: control}", "{banner: hidden}")
        .replace("{checkout-button: green}", "{banner: shown}");
    assert!(!yaml.contains("checkout-button"), "{yaml}");
    yaml
}

/// Applies the specs (exit 0, nothing failed) and checks a second plan is empty.
#[track_caller]
fn apply_and_converge(ws: &Workspace, em: &Emulator) -> String {
    let run = ws.ldexp(em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete:") && run.stdout.contains(" 0 failed"), "{}", run.stdout);
    let again = ws.ldexp(em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&again, 0);
    assert!(again.stdout.contains("No changes. Remote matches the specs."), "{}", again.stdout);
    run.stdout
}

#[test]
fn a_plan_over_two_environments_lists_experiments_once_and_reads_each_flag_once() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let keys = ["two-a", "two-b", "two-c"];
    for k in keys {
        ws.write(&format!("specs/prod-{k}.yaml"), &Exp::new(k, PROD).yaml());
        ws.write(&format!("specs/staging-{k}.yaml"), &Exp::new(k, STAGING).yaml());
    }
    // A second referenced flag: still fewer flags than GETs would lose to a list.
    ws.write("specs/prod-banner.yaml", &on_banner(&Exp::new("on-banner", PROD)));

    let before = em.stats();
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("Plan: 7 to create, 0 to update, 0 to restart, 0 to archive."), "{}", plan.stdout);
    let stats = em.stats();
    let routes: Vec<&String> = stats["byRoute"].as_object().expect("byRoute").keys().collect();
    println!("routes of a plan over two environments: {routes:?}");
    assert_eq!(count(&before, ANY_ENV_LIST), 0, "{before}");
    assert_eq!(count(&stats, ANY_ENV_LIST), 1, "one any-environment listing: {stats}");
    assert_eq!(count(&stats, ENV_LIST), 0, "no per-environment list: {stats}");
    assert_eq!(count(&stats, FLAG_GET), 2, "one GET per referenced flag: {stats}");
    assert_eq!(count(&stats, FLAG_LIST), 0, "no flag list: {stats}");

    // The plan is right: apply it and the next plan is empty.
    apply_and_converge(&ws, &em);
    for k in keys {
        assert!(experiment(&em, "shop", "production", k).is_object(), "{k} in production");
        assert!(experiment(&em, "shop", "staging", k).is_object(), "{k} in staging");
    }
    ws.assert_no_canary();
}

#[test]
fn a_plan_over_one_environment_lists_only_that_environment() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    for k in ["one-a", "one-b", "one-c"] {
        ws.write(&format!("specs/{k}.yaml"), &Exp::new(k, PROD).yaml());
    }
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("Plan: 3 to create"), "{}", plan.stdout);
    let stats = em.stats();
    println!("routes of a plan over one environment: {:?}", stats["byRoute"]);
    assert_eq!(count(&stats, ENV_LIST), 1, "one per-environment list: {stats}");
    assert_eq!(count(&stats, ANY_ENV_LIST), 0, "no any-environment listing: {stats}");
    assert_eq!(count(&stats, FLAG_GET), 1, "one GET for the one referenced flag: {stats}");
    assert_eq!(count(&stats, FLAG_LIST), 0, "no flag list: {stats}");
    ws.assert_no_canary();
}

#[test]
fn a_misreported_total_count_never_hides_experiments_past_the_first_page() {
    let em = Emulator::start(&["--misreport-total-count"]);
    let ws = Workspace::new();
    // 60 experiments in production (the page size is 50), 12 of them archived: the total the service reports
    // under `lifecycleState=active,archived` is then 48, less than one page, while the list spans two.
    let keys: Vec<String> = (0..60).map(|i| format!("paged-{i:02}")).collect();
    let archived = |i: usize| i.is_multiple_of(5);
    for k in &keys {
        ws.write(&format!("specs/{k}.yaml"), &Exp::new(k, PROD).yaml());
    }
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete: 60 applied, 0 failed"), "{}", run.stdout);
    for (i, k) in keys.iter().enumerate() {
        if archived(i) {
            let mut e = Exp::new(k, PROD);
            e.stage = Stage::Archived;
            ws.write(&format!("specs/{k}.yaml"), &e.yaml());
        }
    }
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete: 12 applied, 0 failed"), "{}", run.stdout);
    let state = em.state();
    let xs = state["projects"]["shop"]["experiments"]["production"].as_object().expect("experiments");
    assert_eq!(xs.len(), 60, "{}", xs.len());
    let n_archived = xs.values().filter(|x| x["archivedDate"].is_number()).count();
    assert_eq!(n_archived, 12, "12 archived");

    // The emulator does misreport: the total is smaller than the experiments listed.
    let (status, body) = em.http(
        "GET",
        "/api/v2/projects/shop/environments/production/experiments?lifecycleState=active,archived&limit=50",
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(50), "a full first page: {}", page["_links"]);
    assert_eq!(page["total_count"], 48, "the total counts only the active ones");
    assert!(page["_links"]["next"].is_object(), "a next page is announced: {}", page["_links"]);

    // The plan over every one of them, the archived ones as archived, is empty: nothing is re-created.
    let before = em.stats();
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("No changes. Remote matches the specs."), "{}", plan.stdout);
    let after = em.stats();
    let pages = count(&after, ENV_LIST) - count(&before, ENV_LIST);
    assert!(pages >= 2, "the list was followed past the first page: {pages} pages read");
    // And an apply sends nothing.
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    let state = em.state();
    assert_eq!(state["projects"]["shop"]["experiments"]["production"].as_object().map(|m| m.len()), Some(60));
    ws.assert_no_canary();
}

#[test]
fn an_apply_through_the_account_wide_window_waits_and_converges() {
    let em = Emulator::start(&["--rate-limit-global", "10"]);
    let ws = Workspace::new();
    let keys = ["global-1", "global-2", "global-3", "global-4", "global-5", "global-6"];
    for k in keys {
        ws.write(&format!("specs/{k}.yaml"), &Exp::new(k, PROD).yaml());
    }
    // Another client of the account has spent most of the window: the plan's concurrent reads meet the
    // account-wide 429s (alone, ldexp sees `X-Ratelimit-Global-Remaining: 0` and holds before any 429).
    let started = Instant::now();
    for _ in 0..8 {
        let (status, body) = em.http("GET", "/api/v2/flags/shop/checkout-button", None, None);
        assert_eq!(status, 200, "{body}");
    }
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    let apply_wall = started.elapsed();
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete: 6 applied, 0 failed, 0 skipped."), "{}", run.stdout);
    let stats = em.stats();
    println!("global window: apply took {apply_wall:?}; stats {stats}");
    assert!(stats["rateLimitedGlobal"].as_u64().unwrap_or(0) > 0, "the account-wide window was hit: {stats}");
    assert!(apply_wall >= Duration::from_secs(9), "the apply waited for the window's end: {apply_wall:?}");
    for k in keys {
        assert!(experiment(&em, "shop", "production", k)["draftIteration"].is_object(), "{k} created");
    }
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("No changes. Remote matches the specs."), "{}", plan.stdout);
    println!("global window: apply and plan took {:?}; stats {}", started.elapsed(), em.stats());
    ws.assert_no_canary();
}

#[test]
fn an_apply_alone_holds_before_the_account_wide_window_is_spent() {
    let em = Emulator::start(&["--rate-limit-global", "10"]);
    let ws = Workspace::new();
    let keys = ["held-1", "held-2", "held-3", "held-4", "held-5", "held-6"];
    for k in keys {
        ws.write(&format!("specs/{k}.yaml"), &Exp::new(k, PROD).yaml());
    }
    let started = Instant::now();
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    let wall = started.elapsed();
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete: 6 applied, 0 failed, 0 skipped."), "{}", run.stdout);
    let stats = em.stats();
    println!("global window, alone: apply took {wall:?}; stats {stats}");
    // More requests than the window allows were sent, yet none was refused: the client held on the answer that
    // showed the account's count at 0.
    assert!(stats["total"].as_u64().unwrap_or(0) > 10, "more than one window's worth: {stats}");
    assert_eq!(stats["rateLimited"], 0, "no 429 at all: {stats}");
    assert!(wall >= Duration::from_secs(9), "it waited for the window's end: {wall:?}");
    ws.assert_no_canary();
}

#[test]
fn a_429_naming_no_wait_is_waited_out_not_retried_in_a_tight_loop() {
    let em = Emulator::start(&["--rate-limit", "3", "--rate-limit-bare"]);
    let ws = Workspace::new();
    let keys = ["bare-1", "bare-2", "bare-3", "bare-4", "bare-5"];
    for k in keys {
        ws.write(&format!("specs/{k}.yaml"), &Exp::new(k, PROD).yaml());
    }
    let started = Instant::now();
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    let wall = started.elapsed();
    expect_code(&run, 0);
    assert!(run.stdout.contains("Apply complete: 5 applied, 0 failed, 0 skipped."), "{}", run.stdout);
    let stats = em.stats();
    println!("bare 429: apply took {wall:?}; stats {stats}");
    let limited = stats["rateLimited"].as_u64().unwrap_or(0);
    assert!(limited > 0, "the route's window was hit: {stats}");
    let total = stats["total"].as_u64().unwrap_or(u64::MAX);
    assert!(total < 40, "no tight loop: {total} requests: {stats}");
    assert!(wall >= Duration::from_secs(10), "a 429 with no wait named waits a window: {wall:?}");
    for k in keys {
        assert!(experiment(&em, "shop", "production", k)["draftIteration"].is_object(), "{k} created");
    }
    ws.assert_no_canary();
}

#[test]
fn a_409_on_every_write_is_resent_once_then_fails_its_object_with_the_servers_message() {
    let em = Emulator::start(&["--fault-409", "1"]);
    let ws = Workspace::new();
    ws.write("specs/locked.yaml", &Exp::new("locked", PROD).yaml());
    let run = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&run, 1);
    let all = format!("{}{}", run.stdout, run.stderr);
    println!("409 apply:\n{all}");
    // The object is named as failed, and the server's answer is shown under it.
    let lines: Vec<&str> = all.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.trim_start().starts_with("failed   experiment/shop/production/locked [create]"))
        .unwrap_or_else(|| panic!("the object is named as failed:\n{all}"));
    assert!(lines[failed].contains("1 request(s) resent"), "resent once: {}", lines[failed]);
    let detail = lines[failed + 1..].iter().take(3).copied().collect::<Vec<_>>().join("\n");
    assert!(detail.contains("experiment/shop/production/locked: POST "), "{detail}");
    assert!(detail.contains("HTTP 409 optimistic_locking_error"), "the server's code: {detail}");
    assert!(detail.contains("Conflict"), "the server's message: {detail}");
    assert!(all.contains("Apply incomplete: 0 applied, 1 failed, 0 skipped."), "{all}");
    let stats = em.stats();
    assert_eq!(stats["conflicts"], 2, "sent, resent once, then given up: {stats}");
    assert!(experiment(&em, "shop", "production", "locked").is_null(), "nothing was created");

    // Without the fault, the same specs converge.
    let clean = Emulator::start(&["--fault-409", "0"]);
    let out = apply_and_converge(&ws, &clean);
    assert!(out.contains("Apply complete: 1 applied, 0 failed"), "{out}");
    assert!(experiment(&clean, "shop", "production", "locked")["draftIteration"].is_object());
    ws.assert_no_canary();
}

/// Adds project `other`, a copy of `shop` without experiments, to the emulator's state.
fn add_project_other(em: &Emulator) {
    let mut state = em.state();
    let mut other = state["projects"]["shop"].clone();
    other["key"] = Value::from("other");
    other["name"] = Value::from("Other");
    other["id"] = Value::from("0123456789abcdef01234567");
    state["projects"]["other"] = other;
    put_state(em, &state);
    assert!(em.state()["projects"]["other"]["flags"]["checkout-button"].is_object(), "project other exists");
}

#[test]
fn a_project_the_token_may_not_read_is_refused_and_the_others_still_plan_and_apply() {
    let scoped = format!("{}=shop", canary());
    let em = Emulator::start(&["--scoped-token", &scoped, "--token", "someone-else"]);
    add_project_other(&em);
    let ws = Workspace::new();
    ws.write("specs/mine.yaml", &Exp::new("mine", PROD).yaml());
    ws.write("specs/theirs.yaml", &Exp::new("theirs", PROD).yaml().replace("project: shop", "project: other"));

    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 1);
    let all = format!("{}{}", plan.stdout, plan.stderr);
    println!("401 plan:\n{all}");
    assert!(all.contains("✗ experiment/other/production/theirs (refused"), "other is refused: {all}");
    assert!(
        all.contains(
            "no permission for project other (or the token is invalid): LaunchDarkly answered 401: the access token \
             has no permission in project `other` (specs/theirs.yaml:"
        ),
        "the refusal names the project, the server's answer and the spec: {all}"
    );
    assert!(all.contains("+ experiment/shop/production/mine (create)"), "shop is still planned: {all}");
    assert!(!all.contains("+ experiment/other/"), "{all}");
    assert!(all.contains("Plan: 1 to create, 0 to update, 0 to restart, 0 to archive. 1 object refused."), "{all}");

    let apply = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&apply, 1);
    let all = format!("{}{}", apply.stdout, apply.stderr);
    println!("401 apply:\n{}", apply.stdout);
    assert!(all.contains("applied  experiment/shop/production/mine [create]"), "{all}");
    assert!(all.contains("✗ experiment/other/production/theirs (refused"), "other is refused: {all}");
    assert!(all.contains("no permission for project other"), "{all}");
    assert!(all.contains("Refused, nothing sent: experiment/other/production/theirs."), "{all}");
    assert!(experiment(&em, "shop", "production", "mine")["draftIteration"].is_object(), "mine exists");
    let state = em.state();
    let theirs = state["projects"]["other"]["experiments"]["production"].as_object().map_or(0, |m| m.len());
    assert_eq!(theirs, 0, "nothing in other: {}", state["projects"]["other"]["experiments"]);
    ws.assert_no_canary();
}

#[test]
fn a_token_that_sees_no_project_is_an_error_not_a_refusal_list() {
    let scoped = format!("{}=nothing", canary());
    let em = Emulator::start(&["--scoped-token", &scoped, "--token", "someone-else"]);
    let ws = Workspace::new();
    ws.write("specs/mine.yaml", &Exp::new("mine", PROD).yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 1);
    let all = format!("{}{}", plan.stdout, plan.stderr);
    println!("401 before anything worked:\n{all}");
    assert!(plan.stderr.starts_with("error: "), "an error: {all}");
    assert!(plan.stderr.contains("HTTP 401 unauthorized"), "the 401 is named: {all}");
    assert!(plan.stderr.contains("no permission"), "{all}");
    assert!(!all.contains("refused") && !all.contains('✗'), "not a refusal list: {all}");
    assert!(!all.contains("Plan:"), "no plan: {all}");
    ws.assert_no_canary();
}
