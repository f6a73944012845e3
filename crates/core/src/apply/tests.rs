//! Applier tests against a fake LaunchDarkly that commits writes and then loses the responses on demand.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::Error;
use crate::api::{LegacyExperiment, LegacyExperiments};
use crate::client::{Answer, Transport};
use crate::design::Design;
use crate::plan::Expectation;

mod auth;

/// What the fake does with the next write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Commit and answer.
    None,
    /// Commit, then lose the response (the emulator's `--fault-drop`).
    Drop,
    /// Lose the request before it reaches the server.
    Lost,
    /// Answer 500 without committing.
    Fail500,
    /// Answer 409 without committing.
    Conflict,
}

#[derive(Default)]
struct State {
    experiments: BTreeMap<String, Value>,
    flag: Option<Value>,
    faults: VecDeque<Fault>,
    /// Reads that fail with a transport error before one succeeds.
    failing_reads: usize,
    sent: Vec<String>,
    /// The body of every write, as sent.
    bodies: Vec<Value>,
    creates: usize,
    iterations: usize,
    flag_patches: usize,
    next_id: usize,
}

#[derive(Default)]
struct Fake {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

/// An error answer as LaunchDarkly words it.
fn refusal(status: u16, code: &str) -> Answer {
    let body = json!({"code": code, "message": format!("fake {status}")});
    Answer { status, body: body.to_string().into_bytes() }
}

fn ok(body: Option<&Value>) -> Answer {
    Answer { status: 200, body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default() }
}

fn env_key(path: &str) -> (String, Option<String>) {
    // /api/v2/projects/p/environments/e/experiments[/key[/iterations]]
    let parts: Vec<&str> = path.split('/').collect();
    (parts.get(6).copied().unwrap_or_default().to_owned(), parts.get(8).map(|s| (*s).to_owned()))
}

fn iteration_from_input(input: &Value, id: String) -> Value {
    let mut it = input.clone();
    let obj = it.as_object_mut().expect("iteration is an object");
    obj.insert("_id".into(), json!(id));
    obj.insert("status".into(), json!("not_started"));
    obj.insert("createdAt".into(), json!(1));
    let flags: serde_json::Map<String, Value> = input["flags"]
        .as_object()
        .map(|m| m.iter().map(|(k, f)| (k.clone(), json!({"targetingRule": f["ruleId"], "_links": {}}))).collect())
        .unwrap_or_default();
    obj.insert("flags".into(), Value::Object(flags));
    it
}

impl State {
    /// Applies a write to the state, or refuses it as LaunchDarkly would.
    fn commit(&mut self, r: &PlannedRequest) -> Result<(), Answer> {
        let body = r.body.clone().unwrap_or(Value::Null);
        self.next_id += 1;
        let id = format!("id-{}", self.next_id);
        if r.path.starts_with("/api/v2/flags/") {
            let flag = self.flag.as_mut().ok_or_else(|| refusal(404, "not_found"))?;
            let patch: json_patch::Patch =
                serde_json::from_value(body["patch"].clone()).map_err(|_| refusal(400, "invalid_request"))?;
            let mut next = flag.clone();
            json_patch::patch(&mut next, &patch).map_err(|_| refusal(400, "invalid_request"))?;
            next["environments"]["production"]["version"] =
                json!(next["environments"]["production"]["version"].as_i64().unwrap_or(0) + 1);
            *flag = next;
            self.flag_patches += 1;
            return Ok(());
        }
        let (env, key) = env_key(&r.path);
        match (r.method, key, r.path.ends_with("/iterations")) {
            (Method::Post, None, _) => {
                let key = body["key"].as_str().unwrap_or_default().to_owned();
                if self.experiments.contains_key(&key) {
                    return Err(refusal(409, "conflict"));
                }
                let x = json!({
                    "key": key, "name": body["name"], "_maintainerId": "m", "_creationDate": 1,
                    "environmentKey": env, "_links": {}, "_id": id.clone(),
                    "draftIteration": iteration_from_input(&body["iteration"], format!("it-{id}")),
                });
                self.experiments.insert(key, x);
                self.creates += 1;
            }
            (Method::Post, Some(key), true) => {
                let x = self.experiments.get_mut(&key).ok_or_else(|| refusal(404, "not_found"))?;
                x["draftIteration"] = iteration_from_input(&body, format!("it-{id}"));
                self.iterations += 1;
            }
            (Method::Patch, Some(key), false) => {
                let x = self.experiments.get_mut(&key).ok_or_else(|| refusal(404, "not_found"))?;
                for ins in body["instructions"].as_array().cloned().unwrap_or_default() {
                    match ins["kind"].as_str().unwrap_or_default() {
                        "updateName" => x["name"] = ins["value"].clone(),
                        "archiveExperiment" => x["archivedDate"] = json!(2),
                        "restoreExperiment" => {
                            x.as_object_mut().map(|o| o.remove("archivedDate"));
                        }
                        "startIteration" => {
                            let Some(mut draft) = x.as_object_mut().and_then(|o| o.remove("draftIteration")) else {
                                return Err(refusal(400, "invalid_request"));
                            };
                            draft["status"] = json!("running");
                            x["currentIteration"] = draft;
                        }
                        other => panic!("fake does not know {other}"),
                    }
                }
            }
            other => panic!("fake does not know {other:?}"),
        }
        Ok(())
    }
}

impl Fake {
    /// A GET of the experiment or the flag, the reads the applier makes.
    fn read(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        let mut s = self.state.lock().unwrap();
        if r.path.starts_with("/api/v2/flags/") {
            return Ok(s.flag.as_ref().map_or_else(|| refusal(404, "not_found"), |f| ok(Some(f))));
        }
        let key = env_key(&r.path).1.unwrap_or_default();
        s.sent.push(format!("GET {key}"));
        if s.failing_reads > 0 {
            s.failing_reads -= 1;
            return Err(Error::Transport { resource: resource.into(), url: "fake".into(), reason: "reset".into() });
        }
        Ok(s.experiments.get(&key).map_or_else(|| refusal(404, "not_found"), |x| ok(Some(x))))
    }
}

impl Transport for Fake {
    async fn execute(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        if r.method == Method::Get {
            return self.read(r, resource);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut s = self.state.lock().unwrap();
        s.sent.push(describe(r));
        s.bodies.push(r.body.clone().unwrap_or(Value::Null));
        let fault = s.faults.pop_front().unwrap_or(Fault::None);
        let unknown = || Error::OutcomeUnknown {
            resource: resource.to_owned(),
            method: r.method.to_string(),
            path: r.path.clone(),
            reason: "connection reset".into(),
        };
        match fault {
            Fault::None => Ok(s.commit(r).map_or_else(|refused| refused, |()| ok(None))),
            Fault::Drop => match s.commit(r) {
                Ok(()) => Err(unknown()),
                Err(refused) => Ok(refused),
            },
            Fault::Lost => Err(unknown()),
            Fault::Fail500 => Ok(refusal(500, "internal")),
            Fault::Conflict => {
                // Somebody else's write won the race; if it was to the flag, its version moved.
                if let Some(v) = s.flag.as_mut().and_then(|f| f.pointer_mut("/environments/production/version")) {
                    *v = json!(v.as_i64().unwrap_or(0) + 1);
                }
                Ok(refusal(409, "optimistic_locking_error"))
            }
        }
    }
}

fn fake(faults: &[Fault]) -> Fake {
    let f = Fake::default();
    f.state.lock().unwrap().faults = faults.iter().copied().collect();
    f
}

fn opts() -> ApplyOptions {
    ApplyOptions { concurrency: 4, max_attempts: 4, retry_delay: Duration::ZERO, ..ApplyOptions::default() }
}

fn addr(key: &str) -> Address {
    Address::Experiment { project: "p".into(), environment: "production".into(), key: key.into() }
}

fn legacy_addr() -> Address {
    Address::Legacy { project: "p".into(), flag: "checkout".into() }
}

fn pe(key: Option<&str>) -> String {
    match key {
        None => "/api/v2/projects/p/environments/production/experiments".into(),
        Some(k) => format!("/api/v2/projects/p/environments/production/experiments/{k}"),
    }
}

fn iteration_body() -> Value {
    json!({
        "hypothesis": "green converts better",
        "metrics": [{"key": "purchases"}],
        "treatments": [
            {"name": "control", "baseline": true, "allocationPercent": "50",
             "parameters": [{"flagKey": "checkout", "variationId": "v0"}]},
            {"name": "green", "baseline": false, "allocationPercent": "50",
             "parameters": [{"flagKey": "checkout", "variationId": "v1"}]}
        ],
        "flags": {"checkout": {"ruleId": "fallthrough", "flagConfigVersion": 3}},
        "randomizationUnit": "user"
    })
}

fn planned_design() -> Design {
    let it = iteration_from_input(&iteration_body(), "x".into());
    Design::from_iteration(&serde_json::from_value(it).unwrap())
}

fn request(method: Method, path: String, body: Value, expect: Vec<Expectation>) -> PlannedRequest {
    PlannedRequest {
        method,
        path,
        query: BTreeMap::new(),
        content_type: None,
        body: Some(body),
        expect,
        bind: Vec::new(),
        object: None,
    }
}

fn create_and_start(key: &str) -> Change {
    change(
        addr(key),
        Action::Create,
        vec![
            request(
                Method::Post,
                pe(None),
                json!({"key": key, "name": key, "iteration": iteration_body()}),
                vec![
                    Expectation::ExperimentExists,
                    Expectation::PendingDesign { design: std::sync::Arc::new(planned_design()) },
                ],
            ),
            request(
                Method::Patch,
                pe(Some(key)),
                json!({"instructions": [{"kind": "startIteration"}]}),
                vec![Expectation::RunningDesign { design: std::sync::Arc::new(planned_design()) }],
            ),
        ],
    )
}

fn rename(key: &str, to: &str) -> Change {
    change(
        addr(key),
        Action::Update,
        vec![request(
            Method::Patch,
            pe(Some(key)),
            json!({"instructions": [{"kind": "updateName", "value": to}]}),
            vec![Expectation::Name { value: to.into() }],
        )],
    )
}

fn change(address: Address, action: Action, requests: Vec<PlannedRequest>) -> Change {
    Change {
        address,
        action,
        risks: Vec::new(),
        remote_fingerprint: None,
        before: None,
        after: None,
        fields: Vec::new(),
        requests,
        notes: Vec::new(),
        flags: Vec::new(),
        depends_on: Vec::new(),
    }
}

fn plan(changes: Vec<Change>) -> Plan {
    Plan::of("sha256:specs".into(), changes)
}

fn flag_json(items: Value) -> Value {
    json!({
        "key": "checkout", "name": "Checkout", "_version": 7, "variations": [],
        "environments": {"production": {"on": true, "archived": false, "version": 3}},
        "experiments": {"baselineIdx": 0, "items": items},
        "archived": false
    })
}

fn legacy_add_metric() -> Change {
    let expected = LegacyExperiments {
        baseline_idx: 0,
        items: vec![LegacyExperiment { metric_key: "clicks".into(), environments: vec!["production".into()] }],
    };
    change(
        legacy_addr(),
        Action::PatchLegacy,
        vec![request(
            Method::Patch,
            "/api/v2/flags/p/checkout".into(),
            json!({"comment": "ldexp", "patch": [
                {"op": "test", "path": "/experiments/items", "value": []},
                {"op": "add", "path": "/experiments/items/0", "value": {"metricKey": "clicks", "environments": ["production"]}}
            ]}),
            vec![Expectation::FlagExperiments { experiments: expected }],
        )],
    )
}

fn run<C: ObjectReads + Writer>(p: &Plan, c: &C, o: &ApplyOptions) -> ApplyReport {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(apply(p, c, o))
}

fn failed_error(o: &ChangeOutcome) -> &Error {
    match &o.status {
        OutcomeStatus::Failed { error, .. } => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_create_whose_response_is_lost_is_verified_not_resent() {
    let f = fake(&[Fault::Drop]);
    let report = run(&plan(vec![create_and_start("exp")]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    assert_eq!(s.creates, 1);
    assert_eq!(s.sent, vec![format!("POST {}", pe(None)), "GET exp".to_owned(), format!("PATCH {}", pe(Some("exp"))),]);
    assert_eq!(s.experiments["exp"]["currentIteration"]["status"], "running");
    assert_eq!(report.outcomes[0].recovered, 1);
    assert_eq!(report.outcomes[0].resent, 0);
    assert_eq!(report.outcomes[0].requests_done, 2);
}

#[test]
fn a_create_lost_before_the_server_is_sent_again_once() {
    let f = fake(&[Fault::Lost]);
    let report = run(&plan(vec![create_and_start("exp")]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    assert_eq!(s.creates, 1);
    assert_eq!(s.sent.iter().filter(|r| r.starts_with("POST")).count(), 2);
    assert_eq!(report.outcomes[0].resent, 1);
    assert_eq!(report.outcomes[0].recovered, 0);
}

#[test]
fn a_start_whose_response_is_lost_is_not_sent_twice() {
    let f = fake(&[Fault::None, Fault::Drop]);
    let report = run(&plan(vec![create_and_start("exp")]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    assert_eq!(s.sent.iter().filter(|r| r.starts_with("PATCH")).count(), 1);
    assert_eq!(report.outcomes[0].recovered, 1);
}

#[test]
fn a_legacy_patch_whose_response_is_lost_is_applied_once() {
    let f = fake(&[Fault::Drop]);
    f.state.lock().unwrap().flag = Some(flag_json(json!([])));
    let report = run(&plan(vec![legacy_add_metric()]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    assert_eq!(s.flag_patches, 1);
    assert_eq!(s.sent.len(), 1, "verified by a read, not resent: {:?}", s.sent);
    assert_eq!(
        s.flag.as_ref().unwrap()["experiments"]["items"],
        json!([{"metricKey": "clicks", "environments": ["production"]}])
    );
}

#[test]
fn a_500_that_did_not_commit_is_sent_again_after_a_check() {
    let f = fake(&[Fault::Fail500]);
    f.state.lock().unwrap().flag = Some(flag_json(json!([])));
    let report = run(&plan(vec![legacy_add_metric()]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    assert_eq!(s.flag_patches, 1);
    assert_eq!(s.sent, vec!["PATCH /api/v2/flags/p/checkout", "PATCH /api/v2/flags/p/checkout"]);
    assert_eq!(report.outcomes[0].resent, 1);
}

#[test]
fn a_second_conflict_is_not_sent_again() {
    // LaunchDarkly also answers 409 for conflicts no retry fixes (contract §9.11): one resend, then the failure.
    let f = fake(&[Fault::Conflict, Fault::Conflict]);
    f.state.lock().unwrap().experiments.insert("a".into(), json!({"key": "a", "name": "A", "_links": {}}));
    let report = run(&plan(vec![rename("a", "Alpha")]), &f, &opts());
    let e = failed_error(&report.outcomes[0]);
    assert!(matches!(e, Error::Api(api) if api.status == 409), "{e}");
    // The failure is the server's own answer to the second send, its code and message shown as LaunchDarkly
    // worded them.
    let Error::Api(api) = e else { unreachable!() };
    assert_eq!((api.code.as_deref(), api.message.as_str()), (Some("optimistic_locking_error"), "fake 409"));
    assert!(e.to_string().ends_with("failed with HTTP 409 optimistic_locking_error: fake 409"), "{e}");
    assert_eq!(f.state.lock().unwrap().sent.len(), 2);
    assert_eq!(report.outcomes[0].resent, 1);
}

fn on_flag(mut c: Change) -> Change {
    c.flags = vec!["checkout".into()];
    c
}

#[test]
fn changes_that_share_a_flag_run_one_after_another_in_plan_order() {
    let mut f = fake(&[]);
    f.delay = Duration::from_millis(20);
    for k in ["a", "b", "c", "d"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    // a, b and c share the flag (c through it, in the middle of the plan); d does not.
    let p = plan(vec![
        on_flag(rename("a", "A2")),
        on_flag(rename("b", "B2")),
        rename("d", "D2"),
        on_flag(rename("c", "C2")),
    ]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 4, ..opts() });
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    let shared: Vec<&String> = s.sent.iter().filter(|r| !r.ends_with("/d")).collect();
    assert_eq!(
        shared,
        [&format!("PATCH {}", pe(Some("a"))), &format!("PATCH {}", pe(Some("b"))), &format!("PATCH {}", pe(Some("c")))]
    );
    // d ran beside them.
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 2);
}

#[test]
fn a_failure_blocks_its_own_object_only_not_others_on_the_flag() {
    let f = fake(&[Fault::Fail500; 4]);
    for k in ["a", "b"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    let mut a = on_flag(rename("a", "A2"));
    a.requests[0].expect.clear();
    let p = plan(vec![a.clone(), on_flag(rename("a", "A3")), on_flag(rename("b", "B2"))]);
    let report = run(&p, &f, &opts());
    assert!(matches!(report.outcomes[0].status, OutcomeStatus::Failed { .. }), "{report:?}");
    assert!(matches!(report.outcomes[1].status, OutcomeStatus::Skipped { .. }), "{report:?}");
    assert!(matches!(report.outcomes[2].status, OutcomeStatus::Applied), "{report:?}");
}

#[test]
fn a_bound_field_is_read_from_the_flag_just_before_each_send() {
    use crate::plan::{Binding, BoundValue};
    let f = fake(&[Fault::Conflict]);
    f.state.lock().unwrap().flag = Some(flag_json(json!([])));
    let mut c = on_flag(create_and_start("exp"));
    c.requests[0].bind = vec![Binding {
        pointer: "/iteration/flags/checkout/flagConfigVersion".into(),
        value: BoundValue::FlagVersion {
            project: "p".into(),
            flag: "checkout".into(),
            environment: "production".into(),
        },
    }];
    c.requests[0].body.as_mut().unwrap()["iteration"]["flags"]["checkout"]["flagConfigVersion"] = json!(1);
    // The fake's 409 moves the flag, as a colleague's start would: the resend carries the new version.
    let report = run(&plan(vec![c.clone()]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    let s = f.state.lock().unwrap();
    let versions: Vec<&Value> =
        s.bodies.iter().take(2).map(|b| &b["iteration"]["flags"]["checkout"]["flagConfigVersion"]).collect();
    assert_eq!(versions, [&json!(3), &json!(4)], "read from the flag at each send, never the plan's 1");
    drop(s);

    // A flag gone from LaunchDarkly: nothing is sent, and the error says which field could not be filled in.
    let g = fake(&[]);
    let report = run(&plan(vec![c]), &g, &opts());
    let e = failed_error(&report.outcomes[0]);
    assert!(e.to_string().contains("cannot fill in /iteration/flags/checkout/flagConfigVersion"), "{e}");
    assert!(g.state.lock().unwrap().bodies.is_empty());
}

#[test]
fn a_conflict_is_sent_again_and_a_definite_refusal_is_not() {
    let f = fake(&[Fault::Conflict]);
    f.state.lock().unwrap().experiments.insert("a".into(), json!({"key": "a", "name": "A", "_links": {}}));
    let report = run(&plan(vec![rename("a", "Alpha")]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(f.state.lock().unwrap().experiments["a"]["name"], "Alpha");

    // Starting without a draft is a 400: one send, a failure with the API's hint.
    let f = fake(&[]);
    f.state.lock().unwrap().experiments.insert("a".into(), json!({"key": "a", "name": "A", "_links": {}}));
    let mut start = create_and_start("a");
    start.requests.remove(0);
    let report = run(&plan(vec![start]), &f, &opts());
    let e = failed_error(&report.outcomes[0]);
    assert_eq!(f.state.lock().unwrap().sent.len(), 1);
    assert!(e.hint().unwrap().contains("LaunchDarkly rejected the request body"), "{:?}", e.hint());
}

#[test]
fn an_unknown_outcome_without_postconditions_is_never_resent() {
    let f = fake(&[Fault::Lost]);
    f.state.lock().unwrap().experiments.insert("a".into(), json!({"key": "a", "name": "A", "_links": {}}));
    let mut c = rename("a", "Alpha");
    c.requests[0].expect.clear();
    let report = run(&plan(vec![c]), &f, &opts());
    let e = failed_error(&report.outcomes[0]);
    assert!(matches!(e, Error::OutcomeUnknown { .. }));
    assert_eq!(f.state.lock().unwrap().sent.len(), 1);
}

#[test]
fn attempts_are_bounded_and_each_is_checked_first() {
    let f = fake(&[Fault::Lost; 10]);
    let o = ApplyOptions { max_attempts: 3, ..opts() };
    let report = run(&plan(vec![create_and_start("exp")]), &f, &o);
    let e = failed_error(&report.outcomes[0]);
    assert!(e.to_string().contains("outcome of POST"), "{e}");
    assert_eq!(e.hint().as_deref(), Some("run `ldexp plan` to see what took effect; `ldexp apply` converges safely"));
    let s = f.state.lock().unwrap();
    assert_eq!(
        s.sent,
        vec![
            format!("POST {}", pe(None)),
            "GET exp".into(),
            format!("POST {}", pe(None)),
            "GET exp".into(),
            format!("POST {}", pe(None)),
            "GET exp".into(),
        ]
    );
    assert_eq!(s.creates, 0);
}

#[test]
fn a_failing_reread_gives_up_without_resending() {
    let f = fake(&[Fault::Lost]);
    f.state.lock().unwrap().failing_reads = 100;
    let report = run(&plan(vec![create_and_start("exp")]), &f, &opts());
    assert!(matches!(failed_error(&report.outcomes[0]), Error::OutcomeUnknown { .. }));
    let s = f.state.lock().unwrap();
    assert_eq!(s.sent.iter().filter(|r| r.starts_with("POST")).count(), 1);
    assert_eq!(s.sent.iter().filter(|r| r.starts_with("GET")).count(), 4);
}

#[test]
fn a_read_that_fails_once_is_retried() {
    let f = fake(&[Fault::Drop]);
    f.state.lock().unwrap().failing_reads = 1;
    let report = run(&plan(vec![create_and_start("exp")]), &f, &opts());
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(f.state.lock().unwrap().creates, 1);
}

#[test]
fn a_failed_object_does_not_stop_independent_ones_but_blocks_its_own_later_changes() {
    let f = fake(&[]);
    f.state.lock().unwrap().experiments.insert("b".into(), json!({"key": "b", "name": "B", "_links": {}}));
    // `a` does not exist: its rename fails with 404, the second change of `a` is skipped, `b` goes ahead.
    let p = plan(vec![rename("a", "A1"), rename("b", "B1"), rename("a", "A2")]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 1, ..opts() });
    let addrs: Vec<String> = report.outcomes.iter().map(|o| o.address.to_string()).collect();
    assert_eq!(addrs, ["experiment/p/production/a", "experiment/p/production/b", "experiment/p/production/a"]);
    assert!(matches!(failed_error(&report.outcomes[0]), Error::Api(e) if e.status == 404));
    assert!(matches!(report.outcomes[1].status, OutcomeStatus::Applied));
    match &report.outcomes[2].status {
        OutcomeStatus::Skipped { reason } => {
            assert_eq!(reason, "not attempted: an earlier change of experiment/p/production/a failed")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.counts(), Counts { applied: 1, failed: 1, skipped: 1, interrupted: 0 });
    assert!(!report.succeeded());
}

#[test]
fn a_rejected_token_skips_the_objects_not_yet_started() {
    struct Unauthorized(Fake);
    impl Transport for Unauthorized {
        async fn execute(&self, r: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
            if r.method == Method::Get {
                return self.0.execute(r, resource).await;
            }
            self.0.state.lock().unwrap().sent.push(describe(r));
            Ok(refusal(401, "unauthorized"))
        }
    }
    let f = Unauthorized(fake(&[]));
    let p = plan(vec![rename("a", "A1"), rename("b", "B1"), rename("c", "C1")]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 1, ..opts() });
    assert_eq!(f.0.state.lock().unwrap().sent.len(), 1);
    assert_eq!(report.counts(), Counts { applied: 0, failed: 1, skipped: 2, interrupted: 0 });
    assert!(failed_error(&report.outcomes[0]).hint().unwrap().contains("LD_ACCESS_TOKEN"));
}

#[test]
fn independent_objects_run_concurrently_within_the_bound() {
    let mut f = fake(&[]);
    f.delay = Duration::from_millis(20);
    for k in ["a", "b", "c", "d", "e", "f"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    let p = plan(["a", "b", "c", "d", "e", "f"].iter().map(|k| rename(k, "renamed")).collect());
    let report = run(&p, &f, &ApplyOptions { concurrency: 3, ..opts() });
    assert!(report.succeeded());
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 3);
}

#[test]
fn changes_without_requests_are_not_reported_and_events_are_emitted() {
    let f = fake(&[Fault::Drop]);
    f.state.lock().unwrap().experiments.insert("a".into(), json!({"key": "a", "name": "A", "_links": {}}));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let o = ApplyOptions {
        on_event: Some(Arc::new(move |e: &ApplyEvent<'_>| {
            let line = match e {
                ApplyEvent::Started { address } => format!("started {address}"),
                ApplyEvent::Verifying { address, step } => format!("verifying {address} {step}"),
                ApplyEvent::Finished { outcome } => format!("finished {} {:?}", outcome.address, outcome.status),
            };
            sink.lock().unwrap().push(line);
        })),
        ..opts()
    };
    let report = run(&plan(vec![change(addr("z"), Action::Update, vec![]), rename("a", "Alpha")]), &f, &o);
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            "started experiment/p/production/a",
            "verifying experiment/p/production/a 0",
            "finished experiment/p/production/a Applied",
        ]
    );
}

#[test]
fn a_stop_sends_nothing_new_and_reports_the_rest_as_interrupted() {
    let f = fake(&[]);
    for k in ["a", "b", "c"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    // One object at a time; the stop is raised as soon as the first finishes (the first Ctrl-C).
    let o = ApplyOptions { concurrency: 1, ..opts() };
    let stop = o.stop.clone();
    let o = ApplyOptions {
        on_event: Some(Arc::new(move |e: &ApplyEvent<'_>| {
            if matches!(e, ApplyEvent::Finished { .. }) {
                stop.store(true, Ordering::SeqCst);
            }
        })),
        ..o
    };
    let mut changes: Vec<Change> = ["a", "b", "c"].iter().map(|k| rename(k, "renamed")).collect();
    // A second request of the first object's group is not sent either.
    changes.push(rename("a", "renamed again"));
    let report = run(&plan(changes), &f, &o);
    let sent = f.state.lock().unwrap().sent.len();
    assert_eq!(sent, 1, "only the request in flight when the stop came finished");
    assert!(report.interrupted());
    assert_eq!(report.counts(), Counts { applied: 1, failed: 0, skipped: 0, interrupted: 3 });
}

fn any_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        2 => Just(Fault::Drop),
        1 => Just(Fault::Lost),
        1 => Just(Fault::Fail500),
        1 => Just(Fault::Conflict),
    ]
}

proptest! {
    /// Whatever the faults, nothing is created or patched twice, and a reported success is real.
    #[test]
    fn no_fault_schedule_duplicates_a_write(faults in proptest::collection::vec(any_fault(), 0..12)) {
        let f = fake(&faults);
        f.state.lock().unwrap().flag = Some(flag_json(json!([])));
        let report = run(&plan(vec![create_and_start("exp"), legacy_add_metric()]), &f, &opts());
        let s = f.state.lock().unwrap();
        prop_assert!(s.creates <= 1);
        prop_assert!(s.flag_patches <= 1);
        prop_assert_eq!(s.iterations, 0);
        for o in &report.outcomes {
            if matches!(o.status, OutcomeStatus::Applied) {
                match &o.address {
                    Address::Experiment { .. } => {
                        prop_assert_eq!(&s.experiments["exp"]["currentIteration"]["status"], "running");
                    }
                    Address::Legacy { .. } => prop_assert_eq!(s.flag_patches, 1),
                    _ => prop_assert!(false, "the plan holds experiments and legacy flags only"),
                }
            }
        }
        // With at most three faults in all, no request meets four, so four attempts always get through, unless
        // one request meets two 409s (resent once only).
        if faults.len() < 4 && faults.iter().filter(|f| **f == Fault::Conflict).count() < 2 {
            prop_assert!(report.succeeded(), "{:?}", report);
        }
    }
}

#[test]
fn a_change_waits_for_its_dependencies_and_is_skipped_when_one_fails() {
    let f = fake(&[]);
    for k in ["b", "c"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    // `c` depends on `a` (absent: its rename fails) and is never sent; `b` depends on `c`, which did not apply
    // either, so it is skipped too; `d`, independent, still runs.
    f.state.lock().unwrap().experiments.insert("d".into(), json!({"key": "d", "name": "d", "_links": {}}));
    let mut c = rename("c", "C1");
    c.depends_on = vec![addr("a")];
    let mut b = rename("b", "B1");
    b.depends_on = vec![addr("c")];
    let p = plan(vec![rename("a", "A1"), c, b, rename("d", "D1")]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 1, ..opts() });
    let sent = f.state.lock().unwrap().sent.clone();
    assert!(sent.iter().all(|s| !s.contains("/c") && !s.contains("/b")), "dependents are never sent: {sent:?}");
    let status: Vec<String> = report
        .outcomes
        .iter()
        .map(|o| match &o.status {
            OutcomeStatus::Skipped { reason } => reason.clone(),
            other => format!("{other:?}").split_whitespace().next().unwrap_or_default().to_owned(),
        })
        .collect();
    assert_eq!(
        status,
        [
            "Failed",
            "not attempted: it depends on experiment/p/production/a, which did not apply; apply again once it does",
            "not attempted: it depends on experiment/p/production/c, which did not apply; apply again once it does",
            "Applied",
        ]
    );
}

#[test]
fn dependencies_order_the_waves_and_keep_each_group_in_plan_order() {
    let f = fake(&[]);
    for k in ["a", "b", "c"] {
        f.state.lock().unwrap().experiments.insert(k.into(), json!({"key": k, "name": k, "_links": {}}));
    }
    // `a` waits for `c`, which comes after it in the plan; `a` then runs in a later wave all the same.
    let mut a = rename("a", "A1");
    a.depends_on = vec![addr("c")];
    let p = plan(vec![a, rename("b", "B1"), rename("c", "C1")]);
    let report = run(&p, &f, &ApplyOptions { concurrency: 4, ..opts() });
    assert!(report.succeeded());
    let sent = f.state.lock().unwrap().sent.clone();
    let pos = |k: &str| sent.iter().position(|s| s.ends_with(&format!("/{k}"))).unwrap();
    assert!(pos("c") < pos("a"), "{sent:?}");
}
