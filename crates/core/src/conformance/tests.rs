//! Unit tests of the conformance framework over a canned transport: verdicts per answer, the ledger's cleanup, and
//! that cleanup runs (and reports) when a probe fails.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::probes::{judge_created, units};
use super::*;
use crate::client::Answer;
use crate::plan::PlannedRequest;

/// Answers by `METHOD path`; anything else is a 404. Records every request.
#[derive(Default)]
struct Canned {
    routes: Vec<(String, u16, Value)>,
    seen: Mutex<Vec<String>>,
}

impl Canned {
    fn on(mut self, route: &str, status: u16, body: Value) -> Self {
        self.routes.push((route.to_owned(), status, body));
        self
    }
}

impl Transport for Canned {
    async fn execute(&self, request: &PlannedRequest, _resource: &str) -> Result<Answer, Error> {
        let route = format!("{} {}", request.method.as_str(), request.path);
        self.seen.lock().unwrap().push(route.clone());
        let hit = self.routes.iter().find(|(r, _, _)| *r == route);
        Ok(match hit {
            Some((_, status, body)) => Answer { status: *status, body: serde_json::to_vec(body).unwrap() },
            None => Answer { status: 404, body: br#"{"code":"not_found","message":"no"}"#.to_vec() },
        })
    }
}

fn target() -> Target {
    Target::new("p", "e", "f", 1)
}

fn flag() -> Value {
    json!({"key": "f", "variations": [{"_id": "v0"}, {"_id": "v1"}],
           "environments": {"e": {"on": true, "version": 3, "lastModified": 9, "rules": [{"_id": "r", "variation": 0}]}}})
}

#[test]
fn a_flag_the_probes_cannot_use_is_refused_before_anything_runs() {
    let refused = |flag: Value| {
        let t = Canned::default().on("GET /api/v2/flags/p/f", 200, flag);
        let err = futures::executor::block_on(Ledger::default().borrow_flag(&t, &target())).unwrap_err();
        assert!(err.hint().is_some_and(|h| h.contains("at least one targeting rule")), "{err:?}");
        err.to_string()
    };
    let mut off = flag();
    off["environments"]["e"]["on"] = json!(false);
    assert!(refused(off).contains("flag p/f cannot be lent to the probes: it is off in e"));
    let mut one = flag();
    one["variations"] = json!([{"_id": "v0"}]);
    assert!(refused(one).contains("has 1 variation(s)"));
    let mut bare = flag();
    bare["environments"]["e"]["rules"] = json!([]);
    assert!(refused(bare).contains("has no targeting rule in e"));
    let mut elsewhere = flag();
    elsewhere["environments"] = json!({"other": {}});
    assert!(refused(elsewhere).contains("has no environment e"));
    let t = Canned::default();
    let err = futures::executor::block_on(Ledger::default().borrow_flag(&t, &target())).unwrap_err();
    assert!(err.to_string().contains("flag p/f does not exist"), "{err}");
}

#[test]
fn every_rule_has_an_id_a_section_and_a_statement() {
    for rule in Rule::ALL {
        assert!(!rule.id().is_empty() && !rule.section().is_empty() && !rule.statement().is_empty());
    }
    assert!(target().prefix.starts_with(KEY_PREFIX));
    assert!(plan_text(&target()).contains("ldexp-conformance-1-lifecycle"));
}

#[test]
fn a_create_holds_with_either_a_draft_or_a_not_started_current_iteration() {
    let draft = judge_created(&json!({"draftIteration": {"status": "not_started"}}));
    assert_eq!(draft.0, Verdict::Holds);
    let current = judge_created(&json!({"currentIteration": {"status": "not_started"}}));
    assert_eq!(current.0, Verdict::Holds);
    assert!(current.1.unwrap().contains("currentIteration"));
    let running = judge_created(&json!({"currentIteration": {"status": "running"}}));
    assert!(matches!(running.0, Verdict::Differs { seen } if seen.contains("running")));
    assert!(matches!(judge_created(&json!({})).0, Verdict::Differs { .. }));
}

#[test]
fn units_keep_the_order_served() {
    let s =
        json!({"randomizationUnits": [{"randomizationUnit": "org"}, {"randomizationUnit": "user", "default": true}]});
    assert_eq!(units(&s), vec![("org".to_owned(), false), ("user".to_owned(), true)]);
}

#[test]
fn a_run_reports_each_rule_and_cleanup_checks_the_flag() {
    let t = Canned::default()
        .on("GET /api/v2/flags/p/f", 200, flag())
        .on("GET /api/v2/caller-identity", 200, json!({"tokenKind": "personal", "serviceToken": false}))
        .on(
            "GET /api/v2/projects/p/experimentation-settings",
            200,
            json!({"randomizationUnits": [{"randomizationUnit": "org"}, {"randomizationUnit": "user", "default": true}]}),
        );
    let report = futures::executor::block_on(run(&t, None, &target())).unwrap();
    let verdict = |r: Rule| report.outcomes.iter().find(|o| o.rule == r).map(|o| o.verdict.clone()).unwrap();
    assert_eq!(verdict(Rule::CallerIdentity), Verdict::Holds);
    assert!(matches!(verdict(Rule::DatedVersionOnExperiments), Verdict::CouldNotRun { .. }));
    assert!(
        matches!(verdict(Rule::SettingsUnitsOrder), Verdict::Differs { seen } if seen.contains("org, user (default)"))
    );
    // No metrics list: the create cannot run, and nothing was sent to create.
    assert!(matches!(verdict(Rule::CreateIteration), Verdict::CouldNotRun { .. }));
    assert!(report.differs());
    assert!(report.cleanup.flag_verified, "{:?}", report.cleanup);
    assert!(report.cleanup.left_behind.is_empty());
    assert!(!t.seen.lock().unwrap().iter().any(|r| r.starts_with("POST")));
}

/// A flag held in memory: GET answers it, a JSON patch applies to it (unless `read_only`).
struct FlagStore {
    flag: Mutex<Value>,
    read_only: bool,
    /// The JSON patches received.
    patches: Mutex<Vec<Value>>,
}

impl Transport for FlagStore {
    async fn execute(&self, request: &PlannedRequest, _resource: &str) -> Result<Answer, Error> {
        let mut flag = self.flag.lock().unwrap();
        if request.method.as_str() == "PATCH" && !self.read_only {
            let body = request.body.clone().unwrap();
            self.patches.lock().unwrap().push(body["patch"].clone());
            let patch: json_patch::Patch = serde_json::from_value(body["patch"].clone()).unwrap();
            json_patch::patch(&mut flag, &patch).unwrap();
        }
        Ok(Answer { status: 200, body: serde_json::to_vec(&*flag).unwrap() })
    }
}

fn rule_flag() -> Value {
    json!({"key": "f", "variations": [{"_id": "v0"}, {"_id": "v1"}],
           "environments": {"e": {"on": true, "version": 3, "lastModified": 9, "offVariation": 0,
                                  "rules": [{"_id": "r", "variation": 0, "clauses": []}]}}})
}

#[test]
fn cleanup_puts_back_the_rule_a_probe_started_on_with_the_smallest_guarded_patch() {
    let store = FlagStore { flag: Mutex::new(rule_flag()), read_only: false, patches: Mutex::default() };
    let mut ledger = Ledger::default();
    futures::executor::block_on(ledger.borrow_flag(&store, &target())).unwrap();
    // Only the version moved: as it was, nothing sent.
    store.flag.lock().unwrap()["environments"]["e"]["version"] = json!(4);
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(cleanup.flag_verified && cleanup.restored.is_empty(), "{cleanup:?}");
    assert!(store.patches.lock().unwrap().is_empty());
    // A start and a stop rewrote rule r: it gets its variation back and loses the rollout; its _id is never sent.
    ledger.touches_rule("r");
    {
        let mut f = store.flag.lock().unwrap();
        f["environments"]["e"]["version"] = json!(6);
        f["environments"]["e"]["rules"][0] =
            json!({"_id": "r", "rollout": {"experimentAllocation": {}}, "clauses": []});
    }
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(cleanup.flag_verified && cleanup.problems.is_empty(), "{cleanup:?}");
    assert_eq!(cleanup.restored, vec!["rules"]);
    let sent = store.patches.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent[0], json!({"op": "test", "path": "/environments/e/version", "value": 6}), "{sent}");
    let paths: Vec<&str> = sent.as_array().unwrap()[1..].iter().map(|op| op["path"].as_str().unwrap()).collect();
    assert!(paths.iter().all(|p| p.starts_with("/environments/e/rules/0/") && !p.contains("_id")), "{sent}");
    assert_eq!(
        store.flag.lock().unwrap()["environments"]["e"]["rules"][0],
        rule_flag()["environments"]["e"]["rules"][0]
    );
}

#[test]
fn a_colleagues_edit_during_the_run_is_left_alone_and_reported() {
    let store = FlagStore { flag: Mutex::new(rule_flag()), read_only: false, patches: Mutex::default() };
    let mut ledger = Ledger::default();
    futures::executor::block_on(ledger.borrow_flag(&store, &target())).unwrap();
    ledger.touches_rule("r");
    {
        let mut f = store.flag.lock().unwrap();
        f["environments"]["e"]["rules"][0]["variation"] = json!(1);
        f["environments"]["e"]["offVariation"] = json!(1);
    }
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(!cleanup.flag_verified, "{cleanup:?}");
    assert!(cleanup.problems[0].contains("differs from before the run: offVariation; the probes touched rule r"));
    let f = store.flag.lock().unwrap();
    assert_eq!(f["environments"]["e"]["rules"][0]["variation"], json!(0), "the probe's rule is put back");
    assert_eq!(f["environments"]["e"]["offVariation"], json!(1), "the colleague's edit stays");
}

#[test]
fn a_flag_that_cannot_be_put_back_is_a_cleanup_problem() {
    let store = FlagStore { flag: Mutex::new(rule_flag()), read_only: true, patches: Mutex::default() };
    let mut ledger = Ledger::default();
    futures::executor::block_on(ledger.borrow_flag(&store, &target())).unwrap();
    ledger.touches_rule("r");
    store.flag.lock().unwrap()["environments"]["e"]["rules"][0]["variation"] = json!(1);
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(!cleanup.flag_verified);
    assert!(cleanup.problems[0].contains("targeting differs from before the run: rules"), "{:?}", cleanup.problems);
}

#[test]
fn a_created_experiment_is_archived_by_cleanup() {
    let mut ledger = Ledger::default();
    ledger.created("ldexp-conformance-1-create");
    let path = "/api/v2/projects/p/environments/e/experiments/ldexp-conformance-1-create";
    let t = Canned::default().on(&format!("GET {path}"), 200, json!({"key": "k"})).on(
        &format!("PATCH {path}"),
        200,
        json!({}),
    );
    let cleanup = futures::executor::block_on(ledger.clean(&t, &target()));
    assert_eq!(cleanup.left_behind, vec![format!("experiment p/e/ldexp-conformance-1-create (archived)")]);
    assert!(t.seen.lock().unwrap().contains(&format!("PATCH {path}")));
}

#[test]
fn the_rewrite_holds_only_with_a_rollout_on_start_the_winner_on_stop_and_two_bumps() {
    let env = |version: i64, rule: Value| json!({"version": version, "rules": [rule]});
    let before = env(1, json!({"_id": "r", "variation": 0}));
    let rollout = json!({"_id": "r", "rollout": {"experimentAllocation": {"defaultVariation": 0}}});
    let winner = json!({"_id": "r", "variation": 1});
    let found = super::writes::judge_rewrite(&before, &env(2, rollout.clone()), &env(3, winner.clone()), "r", 1);
    assert_eq!(found.0, Verdict::Holds, "{found:?}");
    // No version bump on start.
    let found = super::writes::judge_rewrite(&before, &env(1, rollout.clone()), &env(2, winner.clone()), "r", 1);
    assert!(matches!(&found.0, Verdict::Differs { seen } if seen.contains("version 1 → 1")), "{found:?}");
    // The rule left untouched on start.
    let found = super::writes::judge_rewrite(&before, &env(2, before["rules"][0].clone()), &env(3, winner), "r", 1);
    assert!(matches!(&found.0, Verdict::Differs { seen } if seen.contains("serves variation 0;")), "{found:?}");
    // The stop serves another variation than the winner's.
    let found =
        super::writes::judge_rewrite(&before, &env(2, rollout), &env(3, json!({"_id": "r", "variation": 0})), "r", 1);
    assert!(matches!(&found.0, Verdict::Differs { .. }), "{found:?}");
}

#[test]
fn rate_limit_headers_need_both_remaining_counts() {
    struct Seen(Option<crate::client::RateLimitSeen>);
    impl Transport for Seen {
        async fn execute(&self, _: &PlannedRequest, _: &str) -> Result<Answer, Error> {
            Ok(Answer { status: 404, body: Vec::new() })
        }
        fn rate_limit_seen(&self) -> Option<crate::client::RateLimitSeen> {
            self.0
        }
    }
    let seen = |answers, route, global| {
        let s = Seen(Some(crate::client::RateLimitSeen { answers, route, global, reset: route }));
        super::probes::rate_limit_headers(&s).0
    };
    assert_eq!(seen(10, 10, 10), Verdict::Holds);
    assert!(matches!(seen(10, 10, 0), Verdict::Differs { seen } if seen.contains("0 X-Ratelimit-Global-Remaining")));
    assert!(matches!(seen(0, 0, 0), Verdict::CouldNotRun { .. }));
    assert!(matches!(super::probes::rate_limit_headers(&Seen(None)).0, Verdict::CouldNotRun { .. }));
}
