//! Plan-time refusals of what LaunchDarkly itself would refuse (contract README §9): one running experiment per flag
//! rule (§9.2), the flags of an experiment fixed for its life (§9.4), a restart needing a justification (§9.5), and
//! metrics that must fit the iteration's randomization unit (§9.6). Each remote is an emulator seed, each spec is
//! loaded from YAML text as `ldexp plan` loads it, so the locations are the ones a user sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::executor::block_on;
use ldexp_core::api::{ExperimentPatch, Instruction};
use ldexp_core::fetch::fetch_remote;
use ldexp_core::plan::{Action, Plan};
use ldexp_core::remote::{RemoteState, Requirements};
use ldexp_core::spec::{SourceLocation, SpecSet, load_str};
use ldexp_emulator::{InMemory, Seed, State};
use ldexp_planner::{PlanError, PlanOptions, Problem, ProblemKind, plan_with};

/// Project `demo` (production, staging): flag `banner` with the rules `beta`, `vip`, `stray` and `busy` in both
/// environments, flags `layout` and `meter`; metrics for every unit, for `user` only and for `device` only; groups
/// with and without a `device`-only member; and experiments in every state the rules below look at.
const SEED: &str = r#"
projects:
  - key: demo
    environments: [production, staging]
    randomizationUnits: [user, device]
    metrics:
      - { key: clicks, eventKey: click, randomizationUnits: [user, device] }
      - { key: user-signups, eventKey: signup, randomizationUnits: [user] }
      - { key: device-crashes, eventKey: crash, randomizationUnits: [device] }
    metricGroups:
      - { key: any-funnel, kind: funnel, metrics: [clicks] }
      - { key: mixed-funnel, kind: funnel, metrics: [clicks, device-crashes] }
    flags:
      - key: banner
        variations: [ { name: old, value: old }, { name: new, value: new } ]
        environments:
          production: &banner-rules
            on: true
            rules:
              - { _id: rule-beta, description: beta, variation: 0, clauses: [] }
              - { _id: rule-vip, description: vip, variation: 0, clauses: [] }
              - { _id: rule-stray, description: stray, variation: 0, clauses: [] }
              - { _id: rule-busy, description: busy, variation: 0, clauses: [] }
          staging: *banner-rules
      - key: layout
        variations: [ { name: old, value: old }, { name: new, value: new } ]
        environments:
          production: { on: true }
          staging: { on: true }
      - key: meter
        variations: [ { name: old, value: old }, { name: new, value: new } ]
        environments:
          production: { on: true }
    experiments:
      production:
        # In no spec: running on rule `stray` of `banner`.
        - key: stray
          name: stray
          currentIteration:
            hypothesis: Someone else's test.
            status: running
            metrics: [ { key: clicks } ]
            flags: { banner: { targetingRule: stray } }
            treatments:
              - { name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
              - { name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
        # In no spec, but stopped: it does not hold its rule (`vip`).
        - key: stray-stopped
          name: stray-stopped
          currentIteration:
            hypothesis: Someone else's finished test.
            status: stopped
            metrics: [ { key: clicks } ]
            flags: { banner: { targetingRule: vip } }
            treatments:
              - { name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
              - { name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
        # Managed by a spec in one test: running on rule `busy` of `banner`.
        - key: busy
          name: busy
          currentIteration:
            hypothesis: New wins.
            status: running
            metrics: [ { key: clicks } ]
            flags: { banner: { targetingRule: busy } }
            treatments:
              - { name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
              - { name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
        # Running on `meter`, measuring a metric whose units (now) leave out the iteration's `user`.
        - key: unit-drift
          name: unit-drift
          currentIteration:
            hypothesis: New wins.
            status: running
            metrics: [ { key: device-crashes } ]
            flags: { meter: { targetingRule: fallthrough } }
            treatments:
              - { _id: unit-drift-old, name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: meter, variationId: old } ] }
              - { _id: unit-drift-new, name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: meter, variationId: new } ] }
        # A draft that never started, on `banner`'s fallthrough.
        - key: fresh
          name: fresh
          draftIteration: &draft-iteration
            hypothesis: New wins.
            status: not_started
            metrics: [ { key: clicks } ]
            flags: { banner: { targetingRule: fallthrough } }
            treatments:
              - { name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
              - { name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
        # Ran once and stopped, on `banner`'s fallthrough.
        - key: stopped-once
          name: stopped-once
          currentIteration:
            hypothesis: New wins.
            status: stopped
            metrics: [ { key: clicks } ]
            flags: { banner: { targetingRule: fallthrough } }
            treatments:
              - { _id: stopped-once-old, name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
              - { _id: stopped-once-new, name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
            winningTreatmentId: stopped-once-old
        # Ran before (a previous iteration) and now has a draft waiting, on `banner`'s fallthrough.
        - key: ran-before
          name: ran-before
          previousIterations:
            - hypothesis: An older idea.
              status: stopped
              metrics: [ { key: clicks } ]
              flags: { banner: { targetingRule: fallthrough } }
              treatments:
                - { name: Old, baseline: true, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: old } ] }
                - { name: New, baseline: false, allocationPercent: "50", parameters: [ { flagKey: banner, variationId: new } ] }
          draftIteration: *draft-iteration
"#;

fn emulator() -> InMemory {
    InMemory::new(State::from_seed(&Seed::from_str(SEED).expect("the seed parses")).expect("the seed is consistent"))
}

fn load(text: &str) -> SpecSet {
    load_str("specs.yaml", text).unwrap_or_else(|e| panic!("the specs load: {e:?}"))
}

fn remote_for(emu: &InMemory, specs: &SpecSet) -> RemoteState {
    block_on(fetch_remote(emu, &Requirements::of(specs))).expect("the emulator answers")
}

fn plan_opts(text: &str, prune: bool) -> Result<Plan, PlanError> {
    let specs = load(text);
    let emu = emulator();
    plan_with(&specs, &remote_for(&emu, &specs), &PlanOptions { prune })
}

fn plan(text: &str) -> Result<Plan, PlanError> {
    plan_opts(text, false)
}

/// The plan, which must succeed.
fn planned(text: &str) -> Plan {
    plan(text).unwrap_or_else(|e| panic!("{e}:\n{}", render(e.problems())))
}

/// The problems of a plan that must fail.
fn problems(text: &str) -> Vec<Problem> {
    match plan(text) {
        Ok(p) => panic!("the plan should be refused, but it plans:\n{}", serde_json::to_string_pretty(&p).unwrap()),
        Err(e) => e.problems().to_vec(),
    }
}

/// What a user sees: `file:line:col: address: message (hint: …)`, one problem a line.
fn render(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

fn at(line: usize, column: usize) -> SourceLocation {
    SourceLocation { file: "specs.yaml".into(), line, column }
}

/// An experiment spec on flag `banner` (rule `rule`) in `env`, 22 lines (23 when stopped). Locations point at
/// values, as the loader records them: with `n` lines before the document, `iteration` is at `n + 8:3` (its first
/// field), `iteration.flags` at `n + 13:5` and `iteration.flags.banner` at `n + 14:7` (its `rule`).
fn banner_spec(key: &str, env: &str, state: &str, rule: &str) -> String {
    format!(
        "kind: Experiment
project: demo
environment: {env}
key: {key}
name: {key}
state: {state}
iteration:
  hypothesis: New wins.
  primaryMetric: clicks
  metrics:
    - clicks
  flags:
    banner:
      rule: {rule}
  treatments:
    - name: Old
      baseline: true
      allocationPercent: 50
      variations: {{ banner: old }}
    - name: New
      allocationPercent: 50
      variations: {{ banner: new }}
{stop}",
        stop = if state == "stopped" { "stop: { winner: Old }\n" } else { "" }
    )
}

/// Several spec documents in one file.
fn file(docs: &[String]) -> String {
    docs.join("---\n")
}

// §9.2 One running experiment per flag rule.

#[test]
fn two_specs_running_on_the_same_rule_are_each_refused_naming_the_other() {
    let text = file(&[
        banner_spec("first", "production", "running", "beta"),
        banner_spec("second", "production", "running", "beta"),
    ]);
    let got = problems(&text);
    assert_eq!(got.len(), 2, "{}", render(&got));
    assert!(got.iter().all(|p| p.kind == ProblemKind::Conflict));
    // Each at its own `iteration.flags.banner`: the second document starts on line 24 (after `---` on 23).
    assert_eq!(got[0].location, at(14, 7));
    assert_eq!(got[1].location, at(23 + 14, 7));
    assert_eq!(got[0].address.to_string(), "experiment/demo/production/first");
    assert!(got[0].message.contains("experiment/demo/production/second"), "{}", got[0].message);
    assert!(got[1].message.contains("experiment/demo/production/first"), "{}", got[1].message);
    insta::assert_snapshot!(render(&got));
}

#[test]
fn two_specs_running_on_the_fallthrough_are_refused() {
    let text = file(&[
        banner_spec("first", "staging", "running", "fallthrough"),
        banner_spec("second", "staging", "running", "fallthrough"),
    ]);
    let got = problems(&text);
    assert_eq!(got.len(), 2, "{}", render(&got));
    assert!(got.iter().all(|p| p.kind == ProblemKind::Conflict));
    insta::assert_snapshot!(render(&got));
}

#[test]
fn a_spec_running_where_an_unmanaged_experiment_runs_is_refused_naming_it() {
    let got = problems(&banner_spec("mine", "production", "running", "stray"));
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Conflict);
    assert_eq!(got[0].location, at(14, 7));
    assert!(got[0].message.contains("experiment/demo/production/stray"), "{}", got[0].message);
    insta::assert_snapshot!(render(&got));
}

#[test]
fn a_shared_rule_is_named_as_the_spec_names_it() {
    let text = file(&[
        banner_spec("first", "production", "running", "beta"),
        banner_spec("second", "production", "running", "beta"),
    ]);
    let got = problems(&text);
    assert_eq!(got.len(), 2, "{}", render(&got));
    for p in &got {
        assert!(p.message.contains("rule `beta`"), "{}", p.message);
    }
}

#[test]
fn with_prune_the_unmanaged_experiment_is_archived_and_the_rule_is_free() {
    let p = plan_opts(&banner_spec("mine", "production", "running", "stray"), true)
        .unwrap_or_else(|e| panic!("{}", render(e.problems())));
    let actions: Vec<(String, Action)> = p.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
    assert!(actions.contains(&("experiment/demo/production/stray".to_owned(), Action::Archive)), "{actions:?}");
    assert!(actions.contains(&("experiment/demo/production/mine".to_owned(), Action::Create)), "{actions:?}");
}

#[test]
fn a_stopped_unmanaged_experiment_does_not_hold_its_rule() {
    let p = planned(&banner_spec("mine", "production", "running", "vip"));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Create);
}

#[test]
fn specs_running_on_different_rules_of_one_flag_are_fine() {
    let p = planned(&file(&[
        banner_spec("first", "production", "running", "beta"),
        banner_spec("second", "production", "running", "vip"),
        banner_spec("third", "production", "running", "fallthrough"),
    ]));
    assert_eq!(p.changes.len(), 3);
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
}

#[test]
fn specs_running_on_the_same_rule_in_different_environments_are_fine() {
    let p = planned(&file(&[
        banner_spec("first", "production", "running", "beta"),
        banner_spec("second", "staging", "running", "beta"),
    ]));
    assert_eq!(p.changes.len(), 2);
}

#[test]
fn one_spec_in_several_environments_does_not_conflict_with_itself() {
    let text = banner_spec("both", "production", "running", "beta")
        .replace("environment: production", "environments: [production, staging]");
    let p = planned(&text);
    assert_eq!(p.changes.len(), 2);
}

#[test]
fn a_stopped_or_draft_spec_on_the_same_rule_is_fine() {
    // `stopped-once` is stopped in LaunchDarkly on the fallthrough; `new-draft` is created as a draft there.
    let p = planned(&file(&[
        banner_spec("mine", "production", "running", "fallthrough"),
        banner_spec("stopped-once", "production", "stopped", "fallthrough"),
        banner_spec("new-draft", "production", "draft", "fallthrough"),
    ]));
    let actions: Vec<(String, Action)> = p.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
    assert_eq!(
        actions,
        [
            ("experiment/demo/production/mine".to_owned(), Action::Create),
            ("experiment/demo/production/new-draft".to_owned(), Action::Create),
        ]
    );
}

#[test]
fn a_multi_environment_spec_sharing_a_rule_is_told_which_environment() {
    let text = file(&[
        banner_spec("both", "production", "running", "beta")
            .replace("environment: production", "environments: [production, staging]"),
        banner_spec("other", "staging", "running", "beta"),
    ]);
    let got = problems(&text);
    assert_eq!(got.len(), 2, "{}", render(&got));
    assert!(got.iter().all(|p| p.message.contains("in `staging`")), "{}", render(&got));
    insta::assert_snapshot!(render(&got));
}

#[test]
fn a_running_experiment_whose_draft_spec_keeps_it_running_still_holds_its_rule() {
    // `busy` runs on rule `busy`; its spec prepares a new design as a draft, so the running iteration continues
    // (the plan only posts an iteration), and LaunchDarkly would refuse to start `mine` on that rule with 409.
    let busy = banner_spec("busy", "production", "draft", "busy").replace("New wins.", "New wins, take two.");
    let text = file(&[busy, banner_spec("mine", "production", "running", "busy")]);
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Conflict);
    assert_eq!(got[0].address.to_string(), "experiment/demo/production/mine");
    assert_eq!(got[0].location, at(23 + 14, 7));
    assert!(got[0].message.contains("experiment/demo/production/busy"), "{}", got[0].message);
}

// §9.4 The flags of an experiment are fixed for its life.

/// `banner_spec` on the flags `banner` and `layout`.
fn two_flag_spec(key: &str, state: &str) -> String {
    banner_spec(key, "production", state, "fallthrough")
        .replace("      rule: fallthrough\n", "      rule: fallthrough\n    layout:\n      rule: fallthrough\n")
        .replace("{ banner: old }", "{ banner: old, layout: old }")
        .replace("{ banner: new }", "{ banner: new, layout: new }")
}

/// What a reviewer sees of a divergence: where, what, and why.
fn render_divergences(p: &Plan) -> String {
    p.divergences
        .iter()
        .map(|d| {
            format!(
                "{}: {}: {} (LaunchDarkly {}, spec {}): {} (hint: {}){}\n",
                d.location,
                d.address,
                d.field,
                d.remote.as_ref().map_or("-".to_owned(), ToString::to_string),
                d.spec.as_ref().map_or("-".to_owned(), ToString::to_string),
                d.reason,
                d.hint.as_deref().unwrap_or("-"),
                if d.refuses { " [refused]" } else { "" }
            )
        })
        .collect()
}

#[test]
fn adding_a_flag_to_an_existing_experiment_is_refused() {
    let p = planned(&two_flag_spec("fresh", "draft"));
    assert!(p.changes.iter().all(|c| c.address.to_string() != "experiment/demo/production/fresh"), "{:?}", p.changes);
    assert_eq!(p.divergences.len(), 1, "{}", render_divergences(&p));
    let d = &p.divergences[0];
    assert_eq!(d.field, "flags");
    assert!(d.refuses);
    assert_eq!(d.location, at(13, 5));
    let hint = d.hint.as_deref().unwrap();
    assert!(hint.contains("new key") && hint.contains("state: archived"), "{hint}");
    assert_eq!(
        p.refused_addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["experiment/demo/production/fresh"]
    );
    assert_eq!(p.summary.refused, 1);
    insta::assert_snapshot!(render_divergences(&p));
}

#[test]
fn replacing_the_flag_of_a_stopped_experiment_is_refused_even_with_a_justification() {
    let text = banner_spec("stopped-once", "production", "running", "fallthrough")
        .replace("banner", "layout")
        .replace("  hypothesis: New wins.\n", "  hypothesis: New wins.\n  changeJustification: Layout instead\n");
    let p = planned(&text);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(p.divergences.len(), 1, "{}", render_divergences(&p));
    assert_eq!(p.divergences[0].field, "flags");
    assert!(p.divergences[0].refuses);
    assert_eq!(p.divergences[0].location, at(14, 5));
    insta::assert_snapshot!(render_divergences(&p));
}

#[test]
fn a_new_iteration_on_another_rule_of_the_same_flag_is_fine() {
    let p = planned(&banner_spec("fresh", "production", "draft", "vip"));
    assert!(p.divergences.is_empty(), "{}", render_divergences(&p));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Update);
}

#[test]
fn a_spec_with_other_flags_that_posts_no_iteration_is_not_refused_for_them() {
    // Archiving posts no iteration: the flags do not matter then (the design difference is only reported).
    let p = planned(&two_flag_spec("fresh", "archived"));
    assert!(p.divergences.iter().all(|d| !d.refuses), "{}", render_divergences(&p));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Archive);
}

// §9.5 Restarts need a justification.

/// The `changeJustification` of every startIteration the plan sends for `key`.
fn start_justifications(p: &Plan, key: &str) -> Vec<Option<String>> {
    let change = p.changes.iter().find(|c| c.address.to_string() == format!("experiment/demo/production/{key}"));
    let change = change.unwrap_or_else(|| panic!("no change for {key}: {:?}", p.changes));
    change
        .requests
        .iter()
        .filter_map(|r| serde_json::from_value::<ExperimentPatch>(r.body.clone()?).ok())
        .flat_map(|b| b.instructions)
        .filter_map(|i| match i {
            Instruction::StartIteration { change_justification } => Some(change_justification),
            _ => None,
        })
        .collect()
}

fn justified(spec: String) -> String {
    spec.replace("  hypothesis: New wins.\n", "  hypothesis: New wins.\n  changeJustification: The fix shipped\n")
}

#[test]
fn running_a_stopped_experiment_again_without_a_justification_is_refused() {
    let got = problems(&banner_spec("stopped-once", "production", "running", "fallthrough"));
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Lifecycle);
    assert_eq!(got[0].location, at(8, 3));
    assert!(got[0].hint.as_deref().is_some_and(|h| h.contains("changeJustification")), "{:?}", got[0].hint);
    insta::assert_snapshot!(render(&got));
}

#[test]
fn starting_the_draft_of_an_experiment_that_ran_before_without_a_justification_is_refused() {
    let got = problems(&banner_spec("ran-before", "production", "running", "fallthrough"));
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Lifecycle);
    assert_eq!(got[0].location, at(8, 3));
    insta::assert_snapshot!(render(&got));
}

#[test]
fn running_a_stopped_experiment_again_sends_the_justification() {
    let p = planned(&justified(banner_spec("stopped-once", "production", "running", "fallthrough")));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Start);
    assert_eq!(start_justifications(&p, "stopped-once"), [Some("The fix shipped".to_owned())]);
}

#[test]
fn starting_the_draft_of_an_experiment_that_ran_before_sends_the_justification() {
    let p = planned(&justified(banner_spec("ran-before", "production", "running", "fallthrough")));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Start);
    assert_eq!(start_justifications(&p, "ran-before"), [Some("The fix shipped".to_owned())]);
}

#[test]
fn the_first_start_of_a_draft_needs_no_justification() {
    let p = planned(&banner_spec("fresh", "production", "running", "fallthrough"));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Start);
    // The draft already holds the spec's design: only the start is sent.
    assert_eq!(p.changes[0].requests.len(), 1);
    assert_eq!(start_justifications(&p, "fresh"), [None]);
}

#[test]
fn a_new_experiment_that_starts_at_once_needs_no_justification() {
    let p = planned(&banner_spec("brand-new", "production", "running", "fallthrough"));
    assert_eq!(p.changes[0].action, Action::Create);
    assert_eq!(start_justifications(&p, "brand-new"), [None]);
}

// §9.6 Metrics must fit the unit.

/// An experiment spec randomized by `unit` measuring `metrics` (YAML list items, one per line, from line 12 on).
fn metrics_spec(unit: &str, primary: &str, metrics: &[&str]) -> String {
    let list: String = metrics.iter().map(|m| format!("    - {m}\n")).collect();
    format!(
        "kind: Experiment
project: demo
environment: production
key: measured
name: measured
state: draft
iteration:
  hypothesis: New wins.
  randomizationUnit: {unit}
  primaryMetric: {primary}
  metrics:
{list}  flags:
    banner:
      rule: fallthrough
  treatments:
    - name: Old
      baseline: true
      allocationPercent: 50
      variations: {{ banner: old }}
    - name: New
      allocationPercent: 50
      variations: {{ banner: new }}
"
    )
}

#[test]
fn a_metric_that_does_not_allow_the_unit_is_refused_at_its_entry() {
    let got = problems(&metrics_spec("user", "clicks", &["clicks", "device-crashes"]));
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Reference);
    assert_eq!(got[0].location, at(13, 7));
    assert!(got[0].message.contains("`device-crashes`") && got[0].message.contains("`user`"), "{}", got[0].message);
    insta::assert_snapshot!(render(&got));
}

#[test]
fn a_group_member_that_does_not_allow_the_unit_is_refused_at_the_group() {
    let text = metrics_spec(
        "user",
        "clicks",
        &["clicks", "{ key: any-funnel, group: true }", "{ key: mixed-funnel, group: true }"],
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].kind, ProblemKind::Reference);
    assert_eq!(got[0].location, at(14, 9));
    assert!(got[0].message.starts_with("metric `device-crashes` of group `mixed-funnel`"), "{}", got[0].message);
    insta::assert_snapshot!(render(&got));
}

#[test]
fn every_metric_that_does_not_fit_is_reported_together() {
    let text = metrics_spec(
        "device",
        "clicks",
        &["clicks", "user-signups", "{ key: mixed-funnel, group: true }", "{ key: any-funnel, group: true }"],
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{}", render(&got));
    // Only `user-signups` lacks `device`: `mixed-funnel`'s and `any-funnel`'s members all allow it.
    assert_eq!(got[0].location, at(13, 7));
    let text = metrics_spec("user", "clicks", &["device-crashes", "clicks", "{ key: mixed-funnel, group: true }"]);
    let got = problems(&text);
    assert_eq!(got.len(), 2, "{}", render(&got));
    assert_eq!((got[0].location.clone(), got[1].location.clone()), (at(12, 7), at(14, 9)));
    insta::assert_snapshot!(render(&got));
}

#[test]
fn metrics_that_list_the_unit_are_fine() {
    let p =
        planned(&metrics_spec("device", "clicks", &["clicks", "device-crashes", "{ key: mixed-funnel, group: true }"]));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Create);
    let p = planned(&metrics_spec("user", "clicks", &["clicks", "user-signups", "{ key: any-funnel, group: true }"]));
    assert_eq!(p.changes.len(), 1);
}

#[test]
fn without_a_unit_the_default_unit_is_checked() {
    let text = metrics_spec("user", "clicks", &["clicks", "device-crashes"]).replace("  randomizationUnit: user\n", "");
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{}", render(&got));
    assert_eq!(got[0].location, at(12, 7));
    assert!(got[0].message.contains("not `user`"), "{}", got[0].message);
}

#[test]
fn an_experiment_whose_metric_no_longer_fits_can_still_be_stopped_and_archived() {
    // Nothing is created: the stop and the archive send no metric, so LaunchDarkly has nothing to refuse.
    let text = metrics_spec("user", "device-crashes", &["device-crashes"])
        .replace("key: measured", "key: unit-drift")
        .replace("name: measured", "name: unit-drift")
        .replace("state: draft", "state: archived")
        .replace("banner", "meter");
    let p = plan(&text).unwrap_or_else(|e| panic!("{}", render(e.problems())));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Archive);
}

#[test]
fn an_unchanged_running_experiment_whose_metric_no_longer_fits_plans_nothing() {
    let text = metrics_spec("user", "device-crashes", &["device-crashes"])
        .replace("key: measured", "key: unit-drift")
        .replace("name: measured", "name: unit-drift")
        .replace("state: draft", "state: running")
        .replace("banner", "meter");
    let p = plan(&text).unwrap_or_else(|e| panic!("{}", render(e.problems())));
    assert!(p.changes.is_empty(), "{:?}", p.changes);
}

// Order and bound fields: what the applier runs one after another.

/// The spec of a running experiment that moves to `rule`, with a justification (a new iteration while one runs).
fn moved_spec(key: &str, rule: &str) -> String {
    banner_spec(key, "production", "running", rule)
        .replace("  hypothesis: New wins.\n", "  hypothesis: New wins.\n  changeJustification: moved to another rule\n")
}

#[test]
fn a_stop_that_frees_a_rule_runs_before_the_start_that_takes_it_and_later_versions_are_bound() {
    // `aaa-new` sorts before `busy`, but must wait for `busy` to stop: it takes `busy`'s rule.
    let p = planned(&file(&[
        banner_spec("aaa-new", "production", "running", "busy"),
        banner_spec("busy", "production", "stopped", "busy"),
    ]));
    let order: Vec<String> = p.changes.iter().map(|c| format!("{} {}", c.address, c.action)).collect();
    assert_eq!(order, ["experiment/demo/production/busy stop", "experiment/demo/production/aaa-new create"]);
    assert!(
        p.changes.iter().all(|c| c.flags == ["banner"]),
        "{:?}",
        p.changes.iter().map(|c| &c.flags).collect::<Vec<_>>()
    );
    // The stop moves `banner` in production, so the create's flagConfigVersion is read when it is sent.
    let create = &p.changes[1].requests[0];
    assert_eq!(create.bind.len(), 1, "{create:?}");
    assert_eq!(create.bind[0].pointer, "/iteration/flags/banner/flagConfigVersion");
    assert_eq!(
        serde_json::to_value(&create.bind[0].value).unwrap(),
        serde_json::json!({"kind": "flagVersion", "project": "demo", "flag": "banner", "environment": "production"})
    );
    // Nothing before it moves a flag: the stop sends no version, and an unrelated create binds nothing.
    let alone = planned(&banner_spec("alone", "production", "draft", "beta"));
    assert!(alone.changes.iter().flat_map(|c| &c.requests).all(|r| r.bind.is_empty()));
}

#[test]
fn experiments_that_trade_rules_are_planned_with_a_warning() {
    // `busy` runs on `busy`; a spec moves it to `beta` while `beta-runner` (on `beta`) moves to `busy`: each start
    // waits for the other's, which one apply cannot do.
    let emu = emulator();
    let specs = load(&banner_spec("beta-runner", "production", "running", "beta"));
    let report = futures::executor::block_on(ldexp_core::apply::apply(
        &plan_with(&specs, &remote_for(&emu, &specs), &PlanOptions::default()).unwrap(),
        &emu,
        &ldexp_core::apply::ApplyOptions::default(),
    ));
    assert!(report.succeeded(), "{report:?}");
    let specs = load(&file(&[moved_spec("beta-runner", "busy"), moved_spec("busy", "beta")]));
    let p = plan_with(&specs, &remote_for(&emu, &specs), &PlanOptions::default()).unwrap();
    let warned: Vec<&str> = p.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warned.iter().any(|w| w.contains("take each other's flag rules") && w.contains("stop one of them")),
        "{warned:#?}"
    );
}

// §9.8 A 401 is also "no permission": a project the token may not read refuses its specs, the rest still plans.

#[test]
fn a_project_the_token_may_not_read_refuses_its_specs_and_the_rest_plans() {
    let text = file(&[
        banner_spec("mine", "production", "draft", "beta"),
        banner_spec("theirs", "production", "draft", "beta").replace("project: demo", "project: locked"),
    ]);
    let specs = load(&text);
    let emu = emulator();
    let mut remote = remote_for(&emu, &specs);
    remote.projects.remove("locked");
    remote.forbidden.insert("locked".into(), "the access token has no permission in project `locked`".into());
    let p = plan_with(&specs, &remote, &PlanOptions::default()).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].address.to_string(), "experiment/demo/production/mine");
    let refused: Vec<String> = p.refused_addresses().iter().map(|a| a.to_string()).collect();
    assert_eq!(refused, ["experiment/locked/production/theirs"]);
    let d = &p.divergences[0];
    assert!(d.reason.starts_with("no permission for project locked (or the token is invalid)"), "{}", d.reason);
    assert_eq!(d.location, at(23 + 2, 10), "at the spec's `project`");
}
