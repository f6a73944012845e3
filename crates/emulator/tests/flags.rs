//! Flag GET and PATCH: JSON patch forms, `test` guards, `dryRun`, read-only fields, version bumps, legacy
//! `experiments` validation, approvals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ldexp_emulator::{Seed, State};
use serde_json::{Value, json};
use support::*;

fn flag(s: &mut State, key: &str) -> Value {
    ok(get(s, &format!("/api/v2/flags/demo/{key}")))
}

#[test]
fn get_returns_every_environment_or_only_env() {
    let mut s = demo();
    let all = flag(&mut s, "checkout-button");
    let envs: Vec<&String> = all["environments"].as_object().unwrap().keys().collect();
    assert_eq!(envs, ["production", "staging"]);
    assert_eq!(all["environments"]["production"]["rules"][0]["description"], "Beta users");
    assert_eq!(all["environments"]["production"]["rules"][0]["variation"], 1);
    assert_eq!(all["variations"][0]["name"], "control");
    assert_eq!(all["variations"][0]["value"], "old");
    assert_eq!(all["experiments"], json!({ "baselineIdx": 0, "items": [] }));
    let one = ok(get(&mut s, "/api/v2/flags/demo/checkout-button?env=staging"));
    let envs: Vec<&String> = one["environments"].as_object().unwrap().keys().collect();
    assert_eq!(envs, ["staging"]);
    let banner = flag(&mut s, "pricing-banner");
    assert_eq!(banner["kind"], "boolean");
    assert_eq!(banner["experiments"]["items"][0], json!({ "metricKey": "page-view", "environments": ["production"] }));
    let r = get(&mut s, "/api/v2/flags/demo/nope");
    assert_eq!((r.status, r.message()), (404, Some("Unknown feature flag key nope in project demo")));
}

#[test]
fn both_patch_forms_apply_and_bump_versions_of_what_changed() {
    let mut s = demo();
    let before = flag(&mut s, "checkout-button");
    assert_eq!(before["_version"], 1);
    let after = ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!([{ "op": "replace", "path": "/environments/staging/on", "value": false }]),
    ));
    assert_eq!(after["_version"], 2);
    assert_eq!(after["environments"]["staging"]["version"], 2);
    assert_eq!(after["environments"]["production"]["version"], 1, "untouched environments keep their version");
    assert!(
        after["environments"]["staging"]["lastModified"].as_i64()
            > before["environments"]["staging"]["lastModified"].as_i64()
    );
    let after = ok(patch_flag(
        &mut s,
        "checkout-button",
        &json!({ "comment": "ldexp", "patch": [{ "op": "replace", "path": "/description", "value": "Where the button sits" }] }),
    ));
    assert_eq!(after["_version"], 3);
    assert_eq!(after["description"], "Where the button sits");
    assert_eq!(after["environments"]["staging"]["version"], 2, "a flag-wide change bumps only `_version`");
    assert_eq!(flag(&mut s, "checkout-button"), after, "the answer is what is stored");
}

#[test]
fn a_failed_test_answers_400_and_changes_nothing() {
    let mut s = demo();
    let before = s.to_json();
    let r = patch_flag(
        &mut s,
        "pricing-banner",
        &json!({ "patch": [
            { "op": "replace", "path": "/description", "value": "changed first" },
            { "op": "test", "path": "/environments/production/version", "value": 7 },
            { "op": "replace", "path": "/experiments/baselineIdx", "value": 1 }
        ] }),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), Some("invalid_request"));
    assert_eq!(
        r.message(),
        Some("Test operation 1 failed: the value at `/environments/production/version` does not match")
    );
    assert_eq!(s.to_json(), before);
    // The same guard with the right value passes, and guards an index-addressed legacy edit.
    let after = ok(patch_flag(
        &mut s,
        "pricing-banner",
        &json!({ "comment": "c", "patch": [
            { "op": "test", "path": "/environments/production/version", "value": 1 },
            { "op": "test", "path": "/experiments/items/0/metricKey", "value": "page-view" },
            { "op": "add", "path": "/experiments/items/0/environments/0", "value": "staging" }
        ] }),
    ));
    assert_eq!(after["experiments"]["items"][0]["environments"], json!(["staging", "production"]));
    assert_eq!(after["_version"], 2);
}

#[test]
fn dry_run_previews_without_storing() {
    let mut s = demo();
    let before = s.to_json();
    let preview = ok(s.handle(
        &req("PATCH", "/api/v2/flags/demo/search-ranking")
            .query("dryRun", "true")
            .json(&json!([{ "op": "replace", "path": "/environments/production/on", "value": false }])),
    ));
    assert_eq!(preview["environments"]["production"]["on"], false);
    assert_eq!(preview["_version"], 2);
    assert_eq!(s.to_json(), before);
    assert_eq!(flag(&mut s, "search-ranking")["environments"]["production"]["on"], true);
}

#[test]
fn a_patch_that_changes_nothing_bumps_nothing() {
    let mut s = demo();
    let before = s.to_json();
    let r = ok(patch_flag(
        &mut s,
        "signup-flow",
        &json!([{ "op": "replace", "path": "/environments/staging/on", "value": true }]),
    ));
    assert_eq!(r["_version"], 1);
    assert_eq!(s.to_json(), before);
}

#[test]
fn read_only_fields_and_invalid_results_are_refused() {
    let cases = [
        (json!([{ "op": "replace", "path": "/_version", "value": 9 }]), "`/_version` is read-only"),
        (json!([{ "op": "replace", "path": "/key", "value": "other" }]), "`/key` is read-only"),
        (
            json!([{ "op": "replace", "path": "/environments/production/version", "value": 9 }]),
            "`/environments/production/version` is read-only",
        ),
        (
            json!([{ "op": "remove", "path": "/environments/staging" }]),
            "environments cannot be added or removed through a flag patch",
        ),
        (
            json!([{ "op": "add", "path": "/experiments/items/-", "value": { "metricKey": "nope", "environments": [] } }]),
            "legacy experiment metric `nope` does not exist",
        ),
        (
            json!([{ "op": "add", "path": "/experiments/items/0/environments/-", "value": "qa" }]),
            "legacy experiment `page-view` names unknown environment `qa`",
        ),
        (
            json!([{ "op": "replace", "path": "/experiments/baselineIdx", "value": 5 }]),
            "`experiments.baselineIdx` 5 is not a variation index",
        ),
        (
            json!([{ "op": "remove", "path": "/nope" }]),
            "cannot apply the JSON patch: operation '/0' failed at path '/nope': path is invalid",
        ),
        (json!({ "comment": "no patch" }), "expected a JSON patch array, {comment, patch} or {comment, merge}"),
    ];
    for (body, message) in cases {
        let mut s = demo();
        let before = s.to_json();
        let r = patch_flag(&mut s, "pricing-banner", &body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.message(), Some(message), "{body}");
        assert_eq!(s.to_json(), before);
    }
}

#[test]
fn merge_patches_and_new_rules_get_server_fields() {
    let mut s = demo();
    let after = ok(patch_flag(&mut s, "signup-flow", &json!({ "comment": "m", "merge": { "description": "merged" } })));
    assert_eq!(after["description"], "merged");
    let after = ok(patch_flag(
        &mut s,
        "signup-flow",
        &json!([{ "op": "add", "path": "/environments/production/rules/-", "value": { "variation": 1, "description": "Staff" } }]),
    ));
    let rule = &after["environments"]["production"]["rules"][0];
    assert!(rule["_id"].as_str().is_some_and(|id| id.len() == 36));
    assert_eq!(rule["clauses"], json!([]));
    assert_eq!(rule["trackEvents"], false);
    assert_eq!(after["environments"]["production"]["version"], 2);
}

#[test]
fn environments_with_approvals_answer_405() {
    let seed = Seed::from_str(
        r"
projects:
  - key: demo
    environments: [staging, { key: production, approvalsRequired: true }]
    flags:
      - key: f
        variations: [ { value: true }, { value: false } ]
",
    )
    .unwrap();
    let mut s = State::from_seed(&seed).unwrap();
    let r =
        patch_flag(&mut s, "f", &json!([{ "op": "replace", "path": "/environments/production/on", "value": true }]));
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), Some("method_not_allowed"));
    ok(patch_flag(&mut s, "f", &json!([{ "op": "replace", "path": "/environments/staging/on", "value": true }])));
}

#[test]
fn flag_semantic_patches_are_not_emulated() {
    let mut s = demo();
    let r = s.handle(
        &req("PATCH", "/api/v2/flags/demo/f")
            .header("content-type", SEMANTIC)
            .json(&json!({ "environmentKey": "production", "instructions": [{ "kind": "turnFlagOn" }] })),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        Some("flag semantic patch instructions are not supported by the emulator; send a JSON patch")
    );
}

fn keys(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect()
}

#[test]
fn the_flag_list_pages_with_a_total_and_links() {
    let mut s = demo();
    let first = ok(get(&mut s, "/api/v2/flags/demo?limit=3"));
    assert_eq!(keys(&first), ["checkout-button", "pricing-banner", "search-ranking"]);
    assert_eq!(first["totalCount"], 4);
    let links = &first["_links"];
    assert_eq!(links["next"]["href"], "/api/v2/flags/demo?limit=3&offset=3");
    assert_eq!(links["self"]["href"], "/api/v2/flags/demo?limit=3&offset=0");
    assert_eq!(links["last"]["href"], "/api/v2/flags/demo?limit=3&offset=3");
    assert!(links.get("prev").is_none());
    // Without `env`, no environments; the flag-wide legacy `experiments` are there.
    assert!(first["items"].as_array().unwrap().iter().all(|f| f.get("environments").is_none()));
    assert_eq!(first["items"][1]["experiments"]["items"][0]["metricKey"], "page-view");

    let second = ok(get(&mut s, "/api/v2/flags/demo?limit=3&offset=3"));
    assert_eq!(keys(&second), ["signup-flow"]);
    assert_eq!(second["_links"]["prev"]["href"], "/api/v2/flags/demo?limit=3&offset=0");
    assert!(second["_links"].get("next").is_none());
    let past = ok(get(&mut s, "/api/v2/flags/demo?offset=10"));
    assert_eq!((keys(&past).len(), past["totalCount"].as_u64()), (0, Some(4)));
    assert_eq!(keys(&ok(get(&mut s, "/api/v2/flags/demo"))).len(), 4, "the default page of 20 holds them all");

    for bad in ["limit=0", "limit=101", "limit=x", "offset=-1", "sort=key", "expand=evaluation", "summary=maybe"] {
        let r = get(&mut s, &format!("/api/v2/flags/demo?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
    }
    assert_eq!(get(&mut s, "/api/v2/flags/nope").status, 404);
    assert_eq!(get(&mut s, "/api/v2/flags/demo?env=nowhere").status, 404);
}

#[test]
fn env_adds_one_environment_summarised_unless_summary_is_off() {
    let mut s = demo();
    let summarised = ok(get(&mut s, "/api/v2/flags/demo?env=production&limit=1"));
    let envs = summarised["items"][0]["environments"].as_object().unwrap();
    assert_eq!(envs.keys().collect::<Vec<_>>(), ["production"]);
    let cfg = &envs["production"];
    assert!(cfg.get("rules").is_none() && cfg.get("targets").is_none() && cfg.get("prerequisites").is_none());
    // checkout-button: the Beta users rule serves variation 1, the fallthrough variation 0.
    assert_eq!(cfg["_summary"]["variations"]["1"]["rules"], 1);
    assert_eq!(cfg["_summary"]["variations"]["0"]["isFallthrough"], true);
    assert_eq!(cfg["_summary"]["prerequisites"], 0);
    for off in ["0", "false"] {
        let full = ok(get(&mut s, &format!("/api/v2/flags/demo?env=production&summary={off}&limit=1")));
        let cfg = &full["items"][0]["environments"]["production"];
        assert_eq!(cfg["rules"][0]["description"], "Beta users", "summary={off}");
        assert!(cfg.get("_summary").is_none());
    }
}

#[test]
fn the_flag_list_filters_and_leaves_archived_flags_out_by_default() {
    let mut s = demo();
    let page = |s: &mut State, q: &str| ok(get(s, &format!("/api/v2/flags/demo?{q}")));
    let used = page(&mut s, "filter=hasExperiment:true");
    // pricing-banner has a legacy experiment; the other two are in seeded experiments.
    assert_eq!(keys(&used), ["pricing-banner", "search-ranking", "signup-flow"]);
    assert_eq!(used["totalCount"], 3);
    assert_eq!(used["_links"]["self"]["href"], "/api/v2/flags/demo?filter=hasExperiment%3Atrue&limit=20&offset=0");
    assert_eq!(keys(&page(&mut s, "filter=hasExperiment:false")), ["checkout-button"]);
    assert_eq!(keys(&page(&mut s, "filter=query:SEARCH")), ["search-ranking"]);
    assert_eq!(
        keys(&page(&mut s, "filter=query:n,hasExperiment:true")),
        ["pricing-banner", "search-ranking", "signup-flow"]
    );
    assert_eq!(keys(&page(&mut s, "filter=type:temporary")).len(), 0);
    for bad in ["filter=evaluated:{\"after\":1}", "filter=state:gone", "filter=query", "filter=filterEnv:nowhere"] {
        assert_eq!(
            get(&mut s, &format!("/api/v2/flags/demo?{bad}")).status,
            if bad.contains("nowhere") { 404 } else { 400 },
            "{bad}"
        );
    }

    ok(patch_flag(&mut s, "checkout-button", &json!([{ "op": "replace", "path": "/archived", "value": true }])));
    let live = page(&mut s, "");
    assert_eq!((keys(&live).len(), live["totalCount"].as_u64()), (3, Some(3)));
    assert_eq!(keys(&page(&mut s, "filter=state:archived")), ["checkout-button"]);
    assert_eq!(keys(&page(&mut s, "archived=true")), ["checkout-button"]);
    assert_eq!(keys(&page(&mut s, "filter=state:live")).len(), 3);
}
