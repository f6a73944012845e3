//! `--differ`: for each live-service rule the emulator can break on purpose, the faithful answer and the deviant
//! one side by side; the flag's parsing (hidden from `--help`); and that the set survives state documents and
//! resets, since it is not part of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use ldexp_emulator::{Deviation, Response, State};
use serde_json::{Value, json};
use support::*;

/// Runs `scenario` on the demo as it is and on the demo breaking only `rule`: (faithful, deviant).
fn both<T>(rule: Deviation, scenario: impl Fn(&mut State) -> T) -> (T, T) {
    let mut faithful = demo();
    let mut deviant = demo().with_differ([rule]);
    assert!(deviant.differs(rule) && !faithful.differs(rule));
    (scenario(&mut faithful), scenario(&mut deviant))
}

/// Creates experiment `key` on checkout-button's fallthrough in production.
fn create_cb(s: &mut State, key: &str) -> Value {
    let body = checkout_post(s, key);
    ok(create(s, "production", &body))
}

fn post_iteration(s: &mut State, key: &str, input: &Value) -> Response {
    s.handle(&req("POST", &format!("{PE}/experiments/{key}/iterations")).json(input))
}

/// An iteration input for `cb` with checkout-button at its current version.
fn next_iteration(s: &mut State) -> Value {
    let mut input = checkout_post(s, "cb")["iteration"].clone();
    input["flags"]["checkout-button"]["flagConfigVersion"] = json!(flag_version(s, "checkout-button", "production"));
    input
}

fn start(s: &mut State, key: &str) -> Response {
    patch_experiment(s, key, json!([{ "kind": "startIteration" }]))
}

fn refused(r: &Response, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert!(r.message().is_some_and(|m| m.contains(needle)), "{:?} lacks {needle}", r.message());
}

#[test]
fn caller_identity_loses_token_kind_and_service_token() {
    let (faithful, deviant) = both(Deviation::CallerIdentity, |s| ok(get(s, "/api/v2/caller-identity")));
    assert_eq!((&faithful["tokenKind"], &faithful["serviceToken"]), (&json!("personal"), &json!(false)));
    assert!(deviant.get("tokenKind").is_none() && deviant.get("serviceToken").is_none(), "{deviant}");
    let mut rest = faithful.clone();
    rest.as_object_mut().unwrap().retain(|k, _| k != "tokenKind" && k != "serviceToken");
    assert_eq!(deviant, rest, "everything else is as usual");
}

#[tokio::test]
async fn rate_limit_headers_lose_only_the_global_remaining() {
    let mut seen = Vec::new();
    for differ in [BTreeSet::new(), BTreeSet::from([Deviation::RateLimitHeaders])] {
        let server = serve_seeded("t", |c| {
            c.rate_limit = Some(5);
            c.rate_limit_global = Some(2);
            c.differ = differ;
        })
        .await;
        let client = http_client();
        let mut answers = Vec::new();
        for _ in 0..3 {
            let r = client
                .get(format!("{}/api/v2/caller-identity", server.url()))
                .header("Authorization", "t")
                .send()
                .await
                .unwrap();
            let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            answers.push((
                r.status().as_u16(),
                h("x-ratelimit-global-remaining"),
                h("x-ratelimit-route-remaining").is_some(),
                h("x-ratelimit-reset").is_some(),
            ));
        }
        server.shutdown().await;
        seen.push(answers);
    }
    let some = |n: &str| Some(n.to_owned());
    assert_eq!(seen[0], [(200, some("1"), true, true), (200, some("0"), true, true), (429, some("0"), true, true)]);
    // The global window still counts and refuses; only its header is gone.
    assert_eq!(seen[1], [(200, None, true, true), (200, None, true, true), (429, None, true, true)]);
}

#[test]
fn dated_version_is_accepted_on_beta_routes() {
    let version = |v: &'static str| {
        move |s: &mut State| s.handle(&req("GET", &format!("{PE}/experiments")).header("ld-api-version", v)).status
    };
    assert_eq!(both(Deviation::DatedVersionOnExperiments, version("20240415")), (403, 200));
    assert_eq!(both(Deviation::DatedVersionOnExperiments, version("beta")), (200, 200));
    // Only the dated version ldexp pins is let through, not any value.
    assert_eq!(both(Deviation::DatedVersionOnExperiments, version("20220603")), (403, 403));
}

#[test]
fn settings_list_the_default_unit_last() {
    let units = |s: &mut State| {
        let v = ok(get(s, "/api/v2/projects/demo/experimentation-settings"));
        let units = v["randomizationUnits"].as_array().unwrap().clone();
        let units = units.iter().map(|u| (u["randomizationUnit"].as_str().unwrap().to_owned(), u["default"] == true));
        units.collect::<Vec<_>>()
    };
    let (faithful, deviant) = both(Deviation::SettingsUnitsOrder, units);
    assert_eq!(faithful, [("user".to_owned(), true), ("organization".to_owned(), false)]);
    assert_eq!(deviant, [("organization".to_owned(), false), ("user".to_owned(), true)]);
}

#[test]
fn create_answers_without_the_iteration_but_stores_it() {
    let (faithful, deviant) = both(Deviation::CreateIteration, |s| {
        let answer = create_cb(s, "cb");
        let stored = ok(get(s, &format!("{PE}/experiments/cb?expand=draftIteration")));
        (answer, stored)
    });
    assert_eq!(faithful.0["draftIteration"]["status"], "not_started");
    assert!(deviant.0.get("draftIteration").is_none() && deviant.0.get("currentIteration").is_none());
    assert_eq!(deviant.0["key"], "cb");
    assert_eq!(faithful.1, deviant.1, "the stored experiment is unchanged");
    assert_eq!(deviant.1["draftIteration"]["status"], "not_started");
}

#[test]
fn total_count_is_the_misreport_switch() {
    let count = |s: &mut State| {
        for k in ["a", "b"] {
            create_cb(s, k);
        }
        ok(patch_experiment(s, "b", json!([{ "kind": "archiveExperiment" }])));
        let page = ok(get(s, &format!("{PE}/experiments?lifecycleState=active,archived")));
        (page["items"].as_array().unwrap().len(), page["total_count"].as_u64().unwrap())
    };
    // Seeded `search-ranking`, `a`, and the archived `b`.
    assert_eq!(both(Deviation::TotalCount, count), ((3, 3), (3, 2)));
    assert_eq!(count(&mut demo().with_misreport_total_count(true)), (3, 2), "the same as --misreport-total-count");
}

#[test]
fn starting_and_stopping_leave_the_flag_untouched() {
    let (faithful, deviant) = both(Deviation::FlagRewrite, |s| {
        create_cb(s, "cb");
        let before = flag(s, "checkout-button")["environments"]["production"].clone();
        let started = ok(start(s, "cb"));
        let on_start = flag(s, "checkout-button")["environments"]["production"].clone();
        let winner = started["currentIteration"]["treatments"][1]["_id"].as_str().unwrap().to_owned();
        let stopped = ok(patch_experiment(s, "cb", json!([{ "kind": "stopIteration", "winningTreatmentId": winner }])));
        assert_eq!(stopped["currentIteration"]["status"], "stopped");
        let on_stop = flag(s, "checkout-button")["environments"]["production"].clone();
        (before, on_start, on_stop)
    });
    let (before, on_start, on_stop) = faithful;
    assert_eq!((before["version"].as_i64(), before["fallthrough"].clone()), (Some(1), json!({ "variation": 0 })));
    assert_eq!(on_start["version"], 2);
    assert!(on_start["fallthrough"]["rollout"]["experimentAllocation"].is_object(), "{on_start}");
    assert_eq!((on_stop["version"].as_i64(), on_stop["fallthrough"].clone()), (Some(3), json!({ "variation": 1 })));
    let (before, on_start, on_stop) = deviant;
    assert_eq!((&on_start, &on_stop), (&before, &before));
}

#[test]
fn a_held_rule_can_be_started_on_again() {
    let (faithful, deviant) = both(Deviation::HeldRule, |s| {
        create_cb(s, "cb");
        create_cb(s, "cb2");
        ok(start(s, "cb"));
        start(s, "cb2")
    });
    refused(&faithful, 409, "is already used by running experiment `cb`");
    assert_eq!(deviant.status, 200, "{:?}", deviant.body);
    // The other §9.2 refusal, a targeting edit of the held rule, is not this switch's.
    let mut s = demo().with_differ([Deviation::HeldRule]);
    create_cb(&mut s, "cb");
    ok(start(&mut s, "cb"));
    let edit =
        json!([{ "op": "replace", "path": "/environments/production/fallthrough", "value": { "variation": 1 } }]);
    assert_eq!(patch_flag(&mut s, "checkout-button", &edit).status, 409);
}

#[test]
fn a_stale_flag_config_version_is_accepted() {
    let (faithful, deviant) = both(Deviation::StaleFlagVersion, |s| {
        let mut body = checkout_post(s, "cb");
        body["iteration"]["flags"]["checkout-button"]["flagConfigVersion"] = json!(7);
        let created = create(s, "production", &body).status;
        let mut fresh = checkout_post(s, "cb2");
        fresh["iteration"]["flags"]["checkout-button"]["flagConfigVersion"] = json!(1);
        ok(create(s, "production", &fresh));
        let mut stale = next_iteration(s);
        stale["flags"]["checkout-button"]["flagConfigVersion"] = json!(0);
        (created, post_iteration(s, "cb2", &stale).status)
    });
    assert_eq!(faithful, (409, 409));
    assert_eq!(deviant, (201, 200));
}

#[test]
fn a_new_iteration_may_change_the_flags() {
    let (faithful, deviant) = both(Deviation::FixedFlags, |s| {
        create_cb(s, "cb");
        let (classic, one_page) = (variation(s, "signup-flow", "classic"), variation(s, "signup-flow", "one-page"));
        let mut input = next_iteration(s);
        input["flags"] = json!({ "signup-flow": { "ruleId": "fallthrough", "flagConfigVersion": 1 } });
        for (i, v) in [classic, one_page].iter().enumerate() {
            input["treatments"][i]["parameters"] = json!([{ "flagKey": "signup-flow", "variationId": v }]);
        }
        post_iteration(s, "cb", &input)
    });
    refused(&faithful, 400, "the flags of experiment `cb` cannot change");
    assert_eq!(deviant.status, 200, "{:?}", deviant.body);
    assert!(deviant.body.unwrap()["flags"]["signup-flow"].is_object());
}

#[test]
fn a_restart_after_a_stop_needs_no_justification() {
    let restart = |s: &mut State| {
        create_cb(s, "cb");
        let started = ok(start(s, "cb"));
        let winner = started["currentIteration"]["treatments"][0]["_id"].as_str().unwrap().to_owned();
        ok(patch_experiment(s, "cb", json!([{ "kind": "stopIteration", "winningTreatmentId": winner }])));
        let input = next_iteration(s);
        ok(post_iteration(s, "cb", &input));
        start(s, "cb")
    };
    let (faithful, deviant) = both(Deviation::RestartJustification, restart);
    refused(&faithful, 400, "changeJustification is required to start an iteration of an experiment that has");
    assert_eq!(deviant.status, 200, "{:?}", deviant.body);
    assert_eq!(deviant.body.unwrap()["currentIteration"]["status"], "running");
    // Starting while another iteration of the same experiment runs stays refused: that one is in the spec.
    let while_running = |s: &mut State| {
        create_cb(s, "cb");
        ok(start(s, "cb"));
        let input = next_iteration(s);
        ok(post_iteration(s, "cb", &input));
        start(s, "cb")
    };
    let (faithful, deviant) = both(Deviation::RestartJustification, while_running);
    for r in [faithful, deviant] {
        refused(&r, 400, "changeJustification is required to start an iteration while another one is running");
    }
}

#[test]
fn metrics_need_not_fit_the_unit() {
    // page-load-ms is an iteration metric; page-view is a member of its checkout-funnel group.
    for (metric, needle) in [
        ("page-load-ms", "metric `page-load-ms` cannot be used with randomization unit `user`"),
        ("page-view", "metric `page-view` (in metric group `checkout-funnel`) cannot be used"),
    ] {
        let (faithful, deviant) = both(Deviation::MetricUnit, |s| {
            let units = json!([{ "op": "replace", "path": "/randomizationUnits", "value": ["organization"] }]);
            ok(s.handle(
                &req("PATCH", &format!("/api/v2/metrics/demo/{metric}"))
                    .header("content-type", "application/json")
                    .json(&units),
            ));
            let body = checkout_post(s, "cb");
            create(s, "production", &body)
        });
        refused(&faithful, 400, needle);
        assert_eq!(deviant.status, 201, "{metric}: {:?}", deviant.body);
    }
}

#[test]
fn the_set_is_not_part_of_the_state_document() {
    let deviant = demo().with_differ(Deviation::ALL);
    assert_eq!(deviant.to_json(), demo().to_json());
    assert!(Deviation::ALL.iter().all(|d| deviant.differs(*d)));
    let reread = State::from_json(&deviant.to_json()).unwrap();
    assert!(Deviation::ALL.iter().all(|d| !reread.differs(*d)), "a document alone is a faithful state");
}

#[tokio::test]
async fn a_state_document_and_a_reset_keep_the_servers_set() {
    let server = serve_seeded("t", |c| c.differ = BTreeSet::from([Deviation::CallerIdentity])).await;
    let client = http_client();
    let identity = async || {
        let r = client.get(format!("{}/api/v2/caller-identity", server.url())).header("Authorization", "t");
        r.send().await.unwrap().json::<Value>().await.unwrap()
    };
    assert!(identity().await.get("tokenKind").is_none());
    let doc = client.get(format!("{}/_emulator/state", server.url())).send().await.unwrap().text().await.unwrap();
    let put = client.put(format!("{}/_emulator/state", server.url())).body(doc).send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert!(identity().await.get("tokenKind").is_none(), "after PUT /_emulator/state");
    let reset = client.post(format!("{}/_emulator/reset", server.url())).send().await.unwrap();
    assert_eq!(reset.status(), 200);
    assert!(identity().await.get("tokenKind").is_none(), "after POST /_emulator/reset");
    assert_eq!(server.state().to_json(), demo().to_json());
    server.shutdown().await;
}

#[test]
fn differ_parses_every_id_repeatedly_and_stays_out_of_help() {
    use clap::{CommandFactory, Parser};
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ldexp_emulator::cli::EmulatorArgs,
    }
    let mut argv = vec!["ldexp".to_owned()];
    for d in Deviation::ALL.iter().rev() {
        argv.extend(["--differ".to_owned(), d.id().to_owned()]);
    }
    let cli = Cli::try_parse_from(&argv).unwrap();
    assert_eq!(cli.args.differ.len(), 12);
    let config = cli.args.config().unwrap();
    assert_eq!(config.differ, BTreeSet::from(Deviation::ALL));
    assert!(format!("{config:?}").contains("HeldRule"), "the Debug form shows the set");
    let two = Cli::try_parse_from(["ldexp", "--differ", "held-rule", "--differ", "metric-unit"]).unwrap();
    assert_eq!(two.args.differ, [Deviation::HeldRule, Deviation::MetricUnit]);
    assert!(Cli::try_parse_from(["ldexp", "--differ", "everything"]).is_err());
    assert!(Cli::try_parse_from(["ldexp"]).unwrap().args.config().unwrap().differ.is_empty());
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("--fault-seed") && !help.contains("differ"), "{help}");
}
