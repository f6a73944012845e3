//! Hand-built plans shared by the rendering and drift tests: every action, both risks, warnings, unmanaged objects.

use ldexp_core::api::{ExperimentPatch, Instruction};
use ldexp_core::plan::{
    Action, Address, CONTENT_TYPE_JSON, Change, FieldChange, Method, Plan, PlannedRequest, Risk, Summary, Unmanaged,
    Warning,
};
use ldexp_core::requests;
use serde_json::{Value, json};

pub fn exp(key: &str) -> Address {
    Address::Experiment { project: "demo".into(), environment: "production".into(), key: key.into() }
}

fn pe(key: &str) -> String {
    format!("/api/v2/projects/demo/environments/production/experiments/{key}")
}

fn post(path: String, body: Value) -> PlannedRequest {
    PlannedRequest {
        method: Method::Post,
        path,
        query: Default::default(),
        content_type: Some(CONTENT_TYPE_JSON.into()),
        body: Some(body),
        expect: Vec::new(),
    }
}

fn semantic(key: &str, instructions: Vec<Instruction>) -> PlannedRequest {
    requests::patch_experiment(
        "demo",
        "production",
        key,
        &ExperimentPatch { comment: Some("ldexp apply".into()), instructions },
    )
}

fn field(name: &str, before: Option<Value>, after: Option<Value>) -> FieldChange {
    FieldChange { field: name.into(), before, after }
}

/// A plan of `changes` with the summary the planner would compute.
pub fn plan_of(changes: Vec<Change>) -> Plan {
    let summary = Summary::of(&changes, 0);
    Plan {
        format_version: 1,
        specs_digest: "sha256:0f1e2d3c".into(),
        prune: false,
        changes,
        unmanaged: Vec::new(),
        warnings: Vec::new(),
        summary,
    }
}

/// A bare change with `n` placeholder requests.
pub fn change(action: Action, n: usize) -> Change {
    Change {
        address: exp(&format!("{action}-exp")),
        action,
        risk: None,
        remote_fingerprint: None,
        before: None,
        after: None,
        fields: Vec::new(),
        requests: (0..n).map(|_| semantic("x", vec![Instruction::ArchiveExperiment])).collect(),
        notes: Vec::new(),
    }
}

const OLD_HYPOTHESIS: &str = "A green checkout button draws the eye.\n\
Shoppers who notice the button sooner finish checkout more often.\n\
We expect a lift of at least 2% in completed orders.\n\
Mobile and desktop should move together.\n\
No effect on average order value.";

const NEW_HYPOTHESIS: &str = "A green checkout button draws the eye.\n\
Shoppers who notice the button sooner finish checkout more often.\n\
We expect a lift of at least 3% in completed orders.\n\
Mobile and desktop should move together.\n\
No effect on average order value.\n\
Returning customers may react less than new ones.";

/// One change of every action, both risks, a long multi-line hypothesis diff, a legacy patch, unmanaged
/// experiments and warnings.
pub fn full_plan() -> Plan {
    let changes = vec![
        Change {
            address: exp("checkout-copy"),
            action: Action::Create,
            risk: None,
            remote_fingerprint: None,
            before: None,
            after: Some(json!({"hypothesis": "Shorter copy converts better"}).into()),
            fields: vec![
                field("name", None, Some(json!("Checkout copy"))),
                field("description", None, Some(json!("Tests the copy on the checkout page.\nOwned by growth."))),
                field("iteration.hypothesis", None, Some(json!("Shorter copy converts better"))),
                field("iteration.primaryMetric", None, Some(json!("orders"))),
                field("iteration.treatments.control.allocationPercent", None, Some(json!("50"))),
                field("iteration.treatments.short.allocationPercent", None, Some(json!("50"))),
            ],
            requests: vec![
                post(
                    "/api/v2/projects/demo/environments/production/experiments".into(),
                    json!({"key": "checkout-copy", "name": "Checkout copy"}),
                ),
                semantic("checkout-copy", vec![Instruction::StartIteration { change_justification: None }]),
            ],
            notes: Vec::new(),
        },
        Change {
            address: exp("checkout-button"),
            action: Action::Update,
            risk: None,
            remote_fingerprint: Some("sha256:aaaa".into()),
            before: None,
            after: None,
            fields: vec![
                field("name", Some(json!("Checkout button")), Some(json!("Checkout button colour"))),
                field("description", Some(json!("Old text")), Some(json!("New text"))),
                field("iteration.hypothesis", Some(json!(OLD_HYPOTHESIS)), Some(json!(NEW_HYPOTHESIS))),
                field("iteration.attributes", Some(json!([])), Some(json!(["country", "device"]))),
            ],
            requests: vec![
                post(format!("{}/iterations", pe("checkout-button")), json!({"hypothesis": NEW_HYPOTHESIS})),
                semantic(
                    "checkout-button",
                    vec![
                        Instruction::UpdateName { value: "Checkout button colour".into() },
                        Instruction::UpdateDescription { value: "New text".into() },
                    ],
                ),
            ],
            notes: vec!["the running iteration continues; the new design waits as a draft".into()],
        },
        Change {
            address: exp("search-ranking"),
            action: Action::Start,
            risk: None,
            remote_fingerprint: Some("sha256:bbbb".into()),
            before: None,
            after: None,
            fields: vec![field("state", Some(json!("draft")), Some(json!("running")))],
            requests: vec![semantic(
                "search-ranking",
                vec![Instruction::StartIteration { change_justification: None }],
            )],
            notes: Vec::new(),
        },
        Change {
            address: exp("pricing-page"),
            action: Action::Restart,
            risk: Some(Risk::EndsDataCollection),
            remote_fingerprint: Some("sha256:cccc".into()),
            before: None,
            after: None,
            fields: vec![
                field("iteration.treatments.annual.allocationPercent", Some(json!("50")), Some(json!("30"))),
                field("iteration.treatments.monthly.allocationPercent", Some(json!("50")), Some(json!("70"))),
                field("iteration.randomizationUnit", Some(json!("user")), Some(json!("organization"))),
            ],
            requests: vec![
                post(format!("{}/iterations", pe("pricing-page")), json!({"hypothesis": "Annual first"})),
                semantic(
                    "pricing-page",
                    vec![Instruction::StartIteration {
                        change_justification: Some("Rebalance towards monthly".into()),
                    }],
                ),
            ],
            notes: Vec::new(),
        },
        Change {
            address: exp("onboarding-tour"),
            action: Action::Stop,
            risk: Some(Risk::EndsExperiment),
            remote_fingerprint: Some("sha256:dddd".into()),
            before: None,
            after: None,
            fields: vec![
                field("state", Some(json!("running")), Some(json!("stopped"))),
                field("stop.winner", None, Some(json!("short-tour"))),
            ],
            requests: vec![semantic(
                "onboarding-tour",
                vec![Instruction::StopIteration {
                    winning_treatment_id: Some("t-2".into()),
                    winning_reason: Some("clear lift".into()),
                }],
            )],
            notes: Vec::new(),
        },
        Change {
            address: exp("old-banner"),
            action: Action::Archive,
            risk: Some(Risk::EndsExperiment),
            remote_fingerprint: Some("sha256:eeee".into()),
            before: None,
            after: None,
            fields: vec![field("state", Some(json!("running")), Some(json!("archived")))],
            requests: vec![semantic(
                "old-banner",
                vec![
                    Instruction::StopIteration { winning_treatment_id: Some("t-1".into()), winning_reason: None },
                    Instruction::ArchiveExperiment,
                ],
            )],
            notes: Vec::new(),
        },
        Change {
            address: exp("footer-links"),
            action: Action::Restore,
            risk: None,
            remote_fingerprint: Some("sha256:ffff".into()),
            before: None,
            after: None,
            fields: vec![field("state", Some(json!("archived")), Some(json!("draft")))],
            requests: vec![semantic("footer-links", vec![Instruction::RestoreExperiment])],
            notes: Vec::new(),
        },
        legacy_change(),
    ];
    let mut plan = plan_of(changes);
    plan.unmanaged = vec![
        Unmanaged { address: exp("hand-made"), name: "Made by hand".into(), state: "running".into() },
        Unmanaged {
            address: Address::Experiment { project: "demo".into(), environment: "staging".into(), key: "tmp".into() },
            name: "Temporary".into(),
            state: "draft".into(),
        },
    ];
    plan.warnings = vec![
        Warning {
            address: Some(exp("onboarding-tour")),
            message: "the design change is ignored: a stopped iteration keeps its design".into(),
        },
        Warning { address: None, message: "2 experiments exist in no spec; --prune would archive them".into() },
    ];
    plan.summary = Summary::of(&plan.changes, plan.unmanaged.len());
    plan
}

/// A legacy flag patch: remove the second metric, start recording the first in staging, move the baseline.
pub fn legacy_change() -> Change {
    let before = json!({"baselineIdx": 0, "items": [
        {"metricKey": "clicks", "environments": ["production"]},
        {"metricKey": "signups", "environments": []},
    ]});
    let after = json!({"baselineIdx": 1, "items": [
        {"metricKey": "clicks", "environments": ["production", "staging"]},
    ]});
    let body = json!({"comment": "ldexp apply", "patch": [
        {"op": "test", "path": "/experiments/items/1/metricKey", "value": "signups"},
        {"op": "remove", "path": "/experiments/items/1"},
        {"op": "test", "path": "/experiments/items/0/metricKey", "value": "clicks"},
        {"op": "add", "path": "/experiments/items/0/environments/-", "value": "staging"},
        {"op": "replace", "path": "/experiments/baselineIdx", "value": 1},
    ]});
    let patch = serde_json::from_value(body).unwrap_or_else(|e| panic!("fixture patch: {e}"));
    Change {
        address: Address::Legacy { project: "demo".into(), flag: "legacy-flag".into() },
        action: Action::PatchLegacy,
        risk: None,
        remote_fingerprint: Some("sha256:1234".into()),
        before: Some(before.into()),
        after: Some(after.into()),
        fields: Vec::new(),
        requests: vec![requests::patch_flag("demo", "legacy-flag", &patch)],
        notes: Vec::new(),
    }
}

/// No change, no unmanaged object.
pub fn empty_plan() -> Plan {
    plan_of(Vec::new())
}
