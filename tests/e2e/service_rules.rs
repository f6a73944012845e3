//! LaunchDarkly's rules beyond the spec (contract README §9), end to end: the emulator enforces them, the planner
//! refuses at plan time what the service would reject (exit 1, located, naming the other party), and the applier
//! survives its own writes: starts that move a flag's version, a stop that frees a rule before the start that takes
//! it, and saved plans that are stale when a managed field moved but not when only volatile fields did.

use serde_json::Value;

use crate::specs::{Exp, Stage};
use crate::support::{Emulator, Workspace, expect_code};

const PROD: &[&str] = &["production"];

fn experiment(em: &Emulator, env: &str, key: &str) -> Value {
    em.state()["projects"]["shop"]["experiments"][env][key].clone()
}

/// The rule of `checkout-button` in `env` described `lane`, from the admin state document.
fn rule(em: &Emulator, env: &str, lane: &str) -> Value {
    let state = em.state();
    let rules = state["projects"]["shop"]["flags"]["checkout-button"]["environments"][env]["rules"].clone();
    rules
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["description"] == lane).cloned())
        .unwrap_or_else(|| panic!("no rule {lane} in {env}: {rules}"))
}

/// The `_id` of the rule described `lane` of `checkout-button` in `env`.
fn rule_id(em: &Emulator, env: &str, lane: &str) -> String {
    rule(em, env, lane)["_id"].as_str().expect("rule _id").to_owned()
}

/// Whether rule `r` serves an experiment rollout (and no fixed variation).
fn is_experiment_rollout(r: &Value) -> bool {
    r["rollout"]["experimentAllocation"].is_object() && r.get("variation").is_none_or(Value::is_null)
}

/// The running iteration of `key` in `env`, checked to run on `lane` of `checkout-button`.
#[track_caller]
fn assert_runs_on(em: &Emulator, env: &str, key: &str, lane: &str) {
    let x = experiment(em, env, key);
    assert_eq!(x["currentIteration"]["status"], "running", "{key} runs: {x}");
    let targeting = &x["currentIteration"]["flags"]["checkout-button"]["targetingRule"];
    assert_eq!(targeting, &Value::from(rule_id(em, env, lane)), "{key} runs on {lane}: {x}");
}

/// Replaces the emulator's state with `state`, as a colleague's edit in the UI would.
fn put_state(em: &Emulator, state: &Value) {
    let (status, body) = em.http("PUT", "/_emulator/state", Some("application/json"), Some(&state.to_string()));
    assert_eq!(status, 200, "PUT /_emulator/state: {body}");
}

/// Applies the specs and checks a second plan is empty.
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

fn running(key: &'static str, lane: &'static str) -> Exp<'static> {
    let mut e = Exp::new(key, PROD).on_lane(lane);
    e.stage = Stage::Running;
    e
}

#[test]
fn two_experiments_on_two_rules_of_one_flag_start_in_one_apply() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/first.yaml", &running("lane-one", "lane-1").yaml());
    ws.write("specs/second.yaml", &running("lane-two", "lane-2").yaml());

    // The first start moves the flag's version: the second create's flagConfigVersion is bound at send time.
    let plan = ws.ldexp(&em, &["plan", "--out", "plan.json", "specs"]);
    expect_code(&plan, 0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(ws.path().join("plan.json")).unwrap()).unwrap();
    let changes = saved["changes"].as_array().expect("changes");
    let create = |key: &str| {
        let c = changes
            .iter()
            .find(|c| c["address"] == format!("experiment/shop/production/{key}"))
            .unwrap_or_else(|| panic!("no change for {key}: {saved}"));
        c["requests"].as_array().and_then(|rs| rs.iter().find(|r| r["method"] == "POST")).cloned().expect("a POST")
    };
    let (first, second) = (create("lane-one"), create("lane-two"));
    assert!(first.get("bind").is_none(), "nothing moved the flag before the first create: {first}");
    let bind = second["bind"].as_array().unwrap_or_else(|| panic!("the second create is bound: {second}"));
    assert_eq!(bind.len(), 1, "{second}");
    assert_eq!(bind[0]["pointer"], "/iteration/flags/checkout-button/flagConfigVersion");
    assert_eq!(bind[0]["value"]["kind"], "flagVersion");
    assert_eq!(bind[0]["value"]["flag"], "checkout-button");
    assert_eq!(bind[0]["value"]["environment"], "production");
    // And the human plan says so.
    assert!(plan.stdout.contains("flagConfigVersion: 1 now, bound at apply time"), "{}", plan.stdout);
    assert!(plan.stdout.contains("the version of flag `checkout-button` in `production` when sent"), "{}", plan.stdout);

    let out = apply_and_converge(&ws, &em);
    assert!(out.contains("Apply complete: 2 applied, 0 failed, 0 skipped."), "{out}");
    assert_runs_on(&em, "production", "lane-one", "lane-1");
    assert_runs_on(&em, "production", "lane-two", "lane-2");
    for lane in ["lane-1", "lane-2"] {
        let r = rule(&em, "production", lane);
        assert!(is_experiment_rollout(&r), "{lane} serves the experiment: {r}");
    }
    // A rule no experiment uses is untouched.
    assert_eq!(rule(&em, "production", "lane-3")["variation"], 0);
    ws.assert_no_canary();
}

#[test]
fn a_stop_hands_its_rule_over_to_a_new_experiment_in_one_apply() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    // `old-lane` sorts after `new-lane`: the applier must still stop it before the other starts.
    let mut old = running("old-lane", "lane-3");
    ws.write("specs/old.yaml", &old.yaml());
    apply_and_converge(&ws, &em);
    assert_runs_on(&em, "production", "old-lane", "lane-3");

    old.stage = Stage::Stopped;
    old.winner = Some("Green");
    ws.write("specs/old.yaml", &old.yaml());
    ws.write("specs/new.yaml", &running("new-lane", "lane-3").yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    let (stop, create) = (
        plan.stdout.find("experiment/shop/production/old-lane").expect("the stop is planned"),
        plan.stdout.find("experiment/shop/production/new-lane").expect("the create is planned"),
    );
    assert!(stop < create, "the stop that frees lane-3 comes first:\n{}", plan.stdout);

    let out = apply_and_converge(&ws, &em);
    assert!(out.contains("Apply complete: 2 applied, 0 failed, 0 skipped."), "{out}");
    let applied = |key: &str| {
        out.find(&format!("applied  experiment/shop/production/{key} ["))
            .unwrap_or_else(|| panic!("{key} applied:\n{out}"))
    };
    assert!(applied("old-lane") < applied("new-lane"), "stopped before the other started:\n{out}");
    assert_runs_on(&em, "production", "new-lane", "lane-3");
    let x = experiment(&em, "production", "old-lane");
    assert_eq!(x["currentIteration"]["status"], "stopped", "{x}");
    assert!(is_experiment_rollout(&rule(&em, "production", "lane-3")), "lane-3 serves new-lane");
    ws.assert_no_canary();
}

#[test]
fn two_specs_running_on_one_rule_are_refused_at_plan_time() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    ws.write("specs/left.yaml", &running("left", "lane-4").yaml());
    ws.write("specs/right.yaml", &running("right", "lane-4").yaml());
    let before = em.state_text();

    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 1);
    let err = &plan.stderr;
    // Each spec is located and names the other one, located too.
    for (me, other, other_file) in [("left", "right", "specs/right.yaml:"), ("right", "left", "specs/left.yaml:")] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!(": experiment/shop/production/{me}: would run on rule `lane-4`")))
            .unwrap_or_else(|| panic!("no problem for {me}:\n{err}"));
        assert!(line.starts_with(&format!("specs/{me}.yaml:")), "{line}");
        assert_located(line.split(": ").next().unwrap_or_default());
        assert!(
            line.contains(&format!("at the same time as experiment/shop/production/{other} (the spec at {other_file}"))
        );
        assert!(line.contains("LaunchDarkly runs one experiment per rule"), "{line}");
        assert!(line.contains("hint: run one of them on another rule of `checkout-button`"), "{line}");
    }
    assert!(err.contains("error: cannot plan: 2 problems found"), "{err}");

    // apply refuses the same way and sends nothing.
    let apply = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
    expect_code(&apply, 1);
    assert!(apply.stderr.contains("LaunchDarkly runs one experiment per rule"), "{}", apply.stderr);
    assert_eq!(em.state_text(), before, "nothing is written");
    ws.assert_no_canary();
}

/// `file:line:column` with numbers.
#[track_caller]
fn assert_located(loc: &str) {
    let parts: Vec<&str> = loc.rsplitn(3, ':').collect();
    assert_eq!(parts.len(), 3, "{loc} is file:line:column");
    assert!(parts[0].parse::<u32>().is_ok() && parts[1].parse::<u32>().is_ok(), "{loc} is file:line:column");
}

#[test]
fn a_restart_after_a_stop_needs_a_change_justification() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut c = running("restarted", "lane-5");
    ws.write("specs/c.yaml", &c.yaml());
    apply_and_converge(&ws, &em);
    c.stage = Stage::Stopped;
    c.winner = Some("Control");
    ws.write("specs/c.yaml", &c.yaml());
    apply_and_converge(&ws, &em);
    assert_eq!(experiment(&em, "production", "restarted")["currentIteration"]["status"], "stopped");
    assert_eq!(rule(&em, "production", "lane-5")["variation"], 0, "the stopped rule serves the winner (control)");

    // Running again, without a reason: refused at plan time, located, naming the field.
    c.stage = Stage::Running;
    c.winner = None;
    ws.write("specs/c.yaml", &c.yaml());
    let before = em.state_text();
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 1);
    let line = plan
        .stderr
        .lines()
        .find(|l| l.contains("changeJustification"))
        .unwrap_or_else(|| panic!("no changeJustification problem:\n{}", plan.stderr));
    assert!(line.starts_with("specs/c.yaml:"), "{line}");
    assert_located(line.split(": ").next().unwrap_or_default());
    assert!(line.contains("the experiment ran before and starts again"), "{line}");
    assert!(line.contains("hint: add `changeJustification`"), "{line}");
    expect_code(&ws.ldexp(&em, &["apply", "--auto-approve", "specs"]), 1);
    assert_eq!(em.state_text(), before, "nothing is written");

    // With one it applies, and converges.
    c.justification = Some("the stop was premature".into());
    ws.write("specs/c.yaml", &c.yaml());
    apply_and_converge(&ws, &em);
    assert_runs_on(&em, "production", "restarted", "lane-5");
    let x = experiment(&em, "production", "restarted");
    let previous = x["previousIterations"].as_array().map_or(0, Vec::len);
    assert!(previous >= 1, "the stopped iteration is kept: {x}");
    assert!(is_experiment_rollout(&rule(&em, "production", "lane-5")));
    ws.assert_no_canary();
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

#[test]
fn an_experiment_whose_spec_changes_its_flags_is_refused() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut r = running("switched-running", "lane-6");
    r.justification = Some("move to the banner".into());
    let d = Exp::new("switched-draft", PROD).on_lane("lane-7");
    ws.write("specs/r.yaml", &r.yaml());
    ws.write("specs/d.yaml", &d.yaml());
    apply_and_converge(&ws, &em);

    for (file, spec, key) in [("specs/r.yaml", &r, "switched-running"), ("specs/d.yaml", &d, "switched-draft")] {
        ws.write(file, &on_banner(spec));
        let before = em.state_text();
        let plan = ws.ldexp(&em, &["plan", "specs"]);
        expect_code(&plan, 1);
        let all = format!("{}{}", plan.stdout, plan.stderr);
        assert!(all.contains(&format!("✗ experiment/shop/production/{key} (refused")), "{all}");
        assert!(all.contains("flags: LaunchDarkly [\"checkout-button\"], spec [\"banner\"]"), "{all}");
        assert!(all.contains("the flags of an experiment are fixed when it is created"), "{all}");
        assert!(all.contains(&format!("({file}:")), "the refusal is located: {all}");
        assert!(
            all.contains(&format!("hint: give the experiment with the new flags a new key, and archive `{key}`")),
            "{all}"
        );
        assert!(all.contains("(state: archived)"), "{all}");
        let apply = ws.ldexp(&em, &["apply", "--auto-approve", "specs"]);
        expect_code(&apply, 1);
        assert!(
            apply.stdout.contains(&format!("✗ experiment/shop/production/{key} (refused: nothing is planned for it)")),
            "{}",
            apply.stdout
        );
        assert!(apply.stdout.ends_with("1 object refused.\n"), "{}", apply.stdout);
        assert_eq!(em.state_text(), before, "nothing is written");
        let x = experiment(&em, "production", key);
        let slot = if key == "switched-draft" { "draftIteration" } else { "currentIteration" };
        assert!(x[slot]["flags"]["checkout-button"].is_object(), "still on checkout-button: {x}");
        assert!(x[slot]["flags"]["banner"].is_null(), "{x}");
        ws.write(file, &spec.yaml());
    }
    ws.assert_no_canary();
}

#[test]
fn creates_answered_as_a_not_started_current_iteration_converge() {
    let em = Emulator::start(&["--create-as-current"]);
    let ws = Workspace::new();
    let mut draft = Exp::new("waits", PROD).on_lane("lane-2");
    ws.write("specs/run.yaml", &running("runs-at-once", "lane-1").yaml());
    ws.write("specs/draft.yaml", &draft.yaml());
    apply_and_converge(&ws, &em);
    assert_runs_on(&em, "production", "runs-at-once", "lane-1");
    let x = experiment(&em, "production", "waits");
    assert_eq!(x["currentIteration"]["status"], "not_started", "created as the current iteration: {x}");
    assert!(x["draftIteration"].is_null(), "{x}");

    // The draft starts later, in place.
    draft.stage = Stage::Running;
    ws.write("specs/draft.yaml", &draft.yaml());
    let plan = ws.ldexp(&em, &["plan", "specs"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("1 to start"), "{}", plan.stdout);
    apply_and_converge(&ws, &em);
    assert_runs_on(&em, "production", "waits", "lane-2");
    let x = experiment(&em, "production", "waits");
    assert_eq!(x["previousIterations"].as_array().map_or(0, Vec::len), 0, "started in place: {x}");

    // What export writes plans to nothing.
    expect_code(&ws.ldexp(&em, &["export", "--project", "shop", "--out", "exported"]), 0);
    assert!(ws.path().join("exported/experiments/production/waits.yaml").is_file());
    let plan = ws.ldexp(&em, &["plan", "--detailed-exitcode", "exported"]);
    expect_code(&plan, 0);
    assert!(plan.stdout.contains("No changes. Remote matches the specs."), "{}", plan.stdout);
    ws.assert_no_canary();
}

#[test]
fn a_saved_plan_is_stale_when_a_colleague_moved_a_managed_field_but_not_a_volatile_one() {
    let em = Emulator::start(&[]);
    let ws = Workspace::new();
    let mut e = running("renamed", "lane-8");
    ws.write("specs/e.yaml", &e.yaml());
    apply_and_converge(&ws, &em);

    // Our rename is planned; a colleague renames it otherwise meanwhile.
    e.name = "Our name".into();
    ws.write("specs/e.yaml", &e.yaml());
    expect_code(&ws.ldexp(&em, &["plan", "--out", "p.json", "specs"]), 0);
    let mut state = em.state();
    state["projects"]["shop"]["experiments"]["production"]["renamed"]["name"] = Value::from("Their name");
    put_state(&em, &state);
    let before = em.state_text();
    let run = ws.ldexp(&em, &["apply", "--plan", "p.json", "--auto-approve", "specs"]);
    expect_code(&run, 3);
    assert!(run.stderr.contains("stale plan"), "{}", run.stderr);
    assert!(run.stderr.contains("experiment/shop/production/renamed"), "{}", run.stderr);
    // The requests are equal (the same rename); the managed field they were planned from moved.
    assert!(
        run.stderr.contains("a field the specs own changed in LaunchDarkly since the plan was made"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("though the requests are the same"), "{}", run.stderr);
    assert_eq!(em.state_text(), before, "nothing is written");
    assert_eq!(experiment(&em, "production", "renamed")["name"], "Their name", "the colleague's name stays");

    // A fresh plan; then only volatile fields move: another rule's targeting (and the flag's version), the
    // experiment's links and a date. The saved plan still applies.
    expect_code(&ws.ldexp(&em, &["plan", "--out", "p.json", "specs"]), 0);
    let mut state = em.state();
    let flag = &mut state["projects"]["shop"]["flags"]["checkout-button"];
    let env = &mut flag["environments"]["production"];
    let lane2 = env["rules"]
        .as_array_mut()
        .and_then(|rs| rs.iter_mut().find(|r| r["description"] == "lane-2"))
        .expect("lane-2");
    lane2["variation"] = Value::from(2);
    let version = env["version"].as_u64().expect("version");
    env["version"] = Value::from(version + 1);
    env["lastModified"] = Value::from(env["lastModified"].as_u64().unwrap_or_default() + 1000);
    let fv = flag["_version"].as_u64().unwrap_or_default();
    flag["_version"] = Value::from(fv + 1);
    let x = &mut state["projects"]["shop"]["experiments"]["production"]["renamed"];
    x["_links"] = serde_json::json!({"self": {"href": "/elsewhere", "type": "application/json"}});
    x["_creationDate"] = Value::from(x["_creationDate"].as_u64().unwrap_or_default() + 1000);
    put_state(&em, &state);

    let run = ws.ldexp(&em, &["apply", "--plan", "p.json", "--auto-approve", "specs"]);
    expect_code(&run, 0);
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
    assert_eq!(experiment(&em, "production", "renamed")["name"], "Our name");
    assert_eq!(rule(&em, "production", "lane-2")["variation"], 2, "the colleague's targeting stays");
    assert_runs_on(&em, "production", "renamed", "lane-8");
    expect_code(&ws.ldexp(&em, &["plan", "--detailed-exitcode", "specs"]), 0);
    ws.assert_no_canary();
}
