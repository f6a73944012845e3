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
           "environments": {"e": {"on": true, "version": 3, "lastModified": 9, "rules": []}}})
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
}

impl Transport for FlagStore {
    async fn execute(&self, request: &PlannedRequest, _resource: &str) -> Result<Answer, Error> {
        let mut flag = self.flag.lock().unwrap();
        if request.method.as_str() == "PATCH" && !self.read_only {
            let body = request.body.clone().unwrap();
            let patch: json_patch::Patch = serde_json::from_value(body["patch"].clone()).unwrap();
            json_patch::patch(&mut flag, &patch).unwrap();
        }
        Ok(Answer { status: 200, body: serde_json::to_vec(&*flag).unwrap() })
    }
}

#[test]
fn cleanup_puts_the_flags_targeting_back_and_verifies_it() {
    let store = FlagStore { flag: Mutex::new(flag()), read_only: false };
    let mut ledger = Ledger::default();
    futures::executor::block_on(ledger.borrow_flag(&store, &target())).unwrap();
    // Only the version moved: as it was, nothing to restore.
    store.flag.lock().unwrap()["environments"]["e"]["version"] = json!(4);
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(cleanup.flag_verified && cleanup.restored.is_empty(), "{cleanup:?}");
    // A probe turned the flag off, added a field and a rule: all put back.
    {
        let mut f = store.flag.lock().unwrap();
        f["environments"]["e"]["on"] = json!(false);
        f["environments"]["e"]["rules"] = json!([{"_id": "r", "variation": 1}]);
        f["environments"]["e"]["offVariation"] = json!(1);
    }
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(cleanup.flag_verified, "{cleanup:?}");
    assert_eq!(cleanup.restored, vec!["offVariation", "on", "rules"]);
    assert_eq!(store.flag.lock().unwrap()["environments"]["e"]["on"], json!(true));
    assert!(store.flag.lock().unwrap()["environments"]["e"].get("offVariation").is_none());
}

#[test]
fn a_flag_that_cannot_be_put_back_is_a_cleanup_problem() {
    let store = FlagStore { flag: Mutex::new(flag()), read_only: true };
    let mut ledger = Ledger::default();
    futures::executor::block_on(ledger.borrow_flag(&store, &target())).unwrap();
    store.flag.lock().unwrap()["environments"]["e"]["on"] = json!(false);
    let cleanup = futures::executor::block_on(ledger.clean(&store, &target()));
    assert!(!cleanup.flag_verified);
    assert!(cleanup.problems[0].contains("targeting differs from before the run: on"), "{:?}", cleanup.problems);
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
