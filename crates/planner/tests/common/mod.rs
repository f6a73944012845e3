//! Shared fixtures for the planner's tests: a LaunchDarkly project snapshot, remote experiments in each
//! lifecycle state, and specs parsed from YAML with the locations of their fields.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use ldexp_core::api::{Experiment, ExperimentationSettings, Metric, MetricGroup};
use ldexp_core::remote::{FlagSnapshot, ProjectState, RemoteState};
use ldexp_core::spec::{FieldLocations, Located, SourceLocation, SpecDocument, SpecSet};
use serde_json::{Value, json};

/// Parses `---`-separated YAML documents into a `SpecSet`, recording where each field starts (block-style
/// YAML only: enough for hand-written fixtures).
pub(crate) fn specs(file: &str, text: &str) -> SpecSet {
    let mut set = SpecSet { files: vec![file.into()], digest: "sha256:test".to_owned(), ..SpecSet::default() };
    let mut first_line = 1;
    for doc in text.split("\n---\n") {
        let (location, field_locations) = locations(file, doc, first_line);
        first_line += doc.lines().count() + 1;
        match serde_yaml::from_str::<SpecDocument>(doc).expect("fixture YAML parses") {
            SpecDocument::Experiment(spec) => set.experiments.push(Located { spec, location, field_locations }),
            SpecDocument::LegacyFlagExperiments(spec) => set.legacy.push(Located { spec, location, field_locations }),
            SpecDocument::Workspace(spec) => set.workspaces.push(Located { spec, location, field_locations }),
            SpecDocument::Metric(spec) => set.metrics.push(Located { spec, location, field_locations }),
            SpecDocument::MetricGroup(spec) => set.metric_groups.push(Located { spec, location, field_locations }),
            SpecDocument::ExperimentationSettings(spec) => {
                set.settings.push(Located { spec, location, field_locations });
            }
            SpecDocument::Layer(spec) => set.layers.push(Located { spec, location, field_locations }),
            SpecDocument::Holdout(spec) => set.holdouts.push(Located { spec, location, field_locations }),
        }
    }
    set
}

fn locations(file: &str, doc: &str, first_line: usize) -> (SourceLocation, FieldLocations) {
    let at = |line: usize, column: usize| SourceLocation { file: file.into(), line, column };
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    for (n, raw) in doc.lines().enumerate() {
        let line = first_line + n;
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - content.len();
        let mut rest = content;
        if let Some(item) = content.strip_prefix("- ") {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let parent = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
            let idx = counters.entry(parent.clone()).or_insert(0);
            let path = format!("{parent}[{idx}]");
            *idx += 1;
            out.insert(path.clone(), at(line, indent + 3));
            stack.push((indent, path));
            indent += 2;
            rest = item;
            if !rest.contains(": ") && !rest.ends_with(':') {
                continue;
            }
        }
        let Some((key, value)) = rest.split_once(':') else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let parent = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
        let path = if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") };
        let value_col = value.len() - value.trim_start().len();
        let column = if value.trim().is_empty() { indent + 1 } else { indent + key.len() + 2 + value_col };
        out.insert(path.clone(), at(line, column));
        stack.push((indent, path));
    }
    (at(first_line, 1), out.into_iter().collect())
}

/// The flag every experiment fixture uses: `checkout-button`, on in production and staging, off in `qa`.
pub(crate) fn checkout_flag() -> Value {
    json!({
        "key": "checkout-button",
        "name": "Checkout button",
        "kind": "multivariate",
        "_version": 7,
        "variations": [
            {"_id": "v-blue", "value": "blue", "name": "Control"},
            {"_id": "v-green", "value": "green", "name": "Green"},
            {"_id": "v-red", "value": "red"}
        ],
        "environments": {
            "production": {"on": true, "archived": false, "version": 12, "rules": [
                {"_id": "rule-beta", "description": "beta users", "variation": 1, "clauses": []}
            ], "fallthrough": {"variation": 0}, "offVariation": 0},
            "staging": {"on": true, "archived": false, "version": 4, "rules": [], "fallthrough": {"variation": 0}},
            "qa": {"on": false, "archived": false, "version": 1, "rules": []}
        },
        "experiments": {"baselineIdx": 0, "items": []},
        "tags": [],
        "temporary": false,
        "archived": false
    })
}

/// A flag with legacy experiments, for the legacy scenarios.
pub(crate) fn legacy_flag() -> Value {
    json!({
        "key": "hero-banner",
        "name": "Hero banner",
        "_version": 31,
        "variations": [
            {"_id": "h-off", "value": false, "name": "Off"},
            {"_id": "h-on", "value": true, "name": "On"}
        ],
        "environments": {
            "production": {"on": true, "version": 9, "rules": []},
            "staging": {"on": true, "version": 2, "rules": []}
        },
        "experiments": {"baselineIdx": 0, "items": [
            {"metricKey": "checkout-completed", "environments": ["production"],
             "_environmentSettings": {"production": {"startDate": 1700000000000_i64}}},
            {"metricKey": "revenue", "environments": ["production", "staging"]}
        ]},
        "tags": ["growth"],
        "archived": false
    })
}

/// Project `demo` with environments production, staging and qa, two flags, metrics, a group and settings.
pub(crate) fn remote(experiments: Vec<Experiment>) -> RemoteState {
    let mut envs: BTreeMap<String, Option<BTreeMap<String, Experiment>>> = BTreeMap::new();
    for env in ["production", "staging", "qa"] {
        envs.insert(env.to_owned(), Some(BTreeMap::new()));
    }
    for e in experiments {
        envs.get_mut(&e.environment_key).unwrap().as_mut().unwrap().insert(e.key.clone(), e);
    }
    let metric =
        |key: &str| Metric { id: format!("m-{key}"), key: key.to_owned(), name: key.to_owned(), ..Metric::default() };
    let project = ProjectState {
        environments: envs,
        flags: [
            ("checkout-button".to_owned(), Some(FlagSnapshot::from_json(checkout_flag()).unwrap())),
            ("hero-banner".to_owned(), Some(FlagSnapshot::from_json(legacy_flag()).unwrap())),
        ]
        .into_iter()
        .collect(),
        metrics: ["checkout-completed", "revenue", "page-load-ms"]
            .map(|k| (k.to_owned(), metric(k)))
            .into_iter()
            .collect(),
        metric_groups: [(
            "purchase-funnel".to_owned(),
            MetricGroup {
                id: "g-1".into(),
                key: "purchase-funnel".into(),
                name: "Purchase funnel".into(),
                ..MetricGroup::default()
            },
        )]
        .into_iter()
        .collect(),
        settings: Some(
            serde_json::from_value::<ExperimentationSettings>(json!({
                "randomizationUnits": [{"randomizationUnit": "user", "default": true}, {"randomizationUnit": "device"}]
            }))
            .unwrap(),
        ),
        ..ProjectState::default()
    };
    RemoteState { projects: [("demo".to_owned(), Some(project))].into_iter().collect(), ..RemoteState::default() }
}

/// Which design a remote iteration has: the spec's (`Same`) or an older one (`Old`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum D {
    Same,
    Old,
}

/// An iteration as LaunchDarkly returns it, in a deliberately different order and spelling from the spec
/// (allocation `"50.0"`, metrics reversed) so normalisation is exercised.
pub(crate) fn iteration(id: &str, status: &str, design: D) -> Value {
    let (hypothesis, control, green) = match design {
        D::Same => ("Green converts better", "50.0", "50"),
        D::Old => ("Blue is fine", "70", "30"),
    };
    let mut it = json!({
        "_id": id,
        "hypothesis": hypothesis,
        "status": status,
        "createdAt": 1_700_000_000_000_i64,
        "canReshuffleTraffic": true,
        "randomizationUnit": "user",
        "primarySingleMetric": {"key": "checkout-completed", "name": "Checkout completed", "kind": "custom"},
        "metrics": [
            {"key": "purchase-funnel", "isGroup": true, "name": "Purchase funnel"},
            {"key": "checkout-completed", "isGroup": false}
        ],
        "treatments": [
            {"_id": format!("{id}-green"), "name": "Green", "allocationPercent": green, "baseline": false,
             "parameters": [{"flagKey": "checkout-button", "variationId": "v-green"}]},
            {"_id": format!("{id}-control"), "name": "Control", "allocationPercent": control, "baseline": true,
             "parameters": [{"flagKey": "checkout-button", "variationId": "v-blue"}]}
        ],
        "flags": {"checkout-button": {"targetingRule": "fallthrough", "flagConfigVersion": 11, "_links": {}}}
    });
    if status != "not_started" {
        it["startedAt"] = json!(1_700_000_100_000_i64);
    }
    if status == "stopped" {
        it["endedAt"] = json!(1_700_000_200_000_i64);
        it["winningTreatmentId"] = json!(format!("{id}-green"));
        it["winningReason"] = json!("clear win");
    }
    it
}

/// A remote `checkout` experiment in production.
pub(crate) fn experiment(current: Option<Value>, draft: Option<Value>, archived: bool) -> Experiment {
    let mut e = json!({
        "_id": "exp-1",
        "key": "checkout",
        "name": "Checkout button",
        "description": "Does a green button sell more?",
        "_maintainerId": "maint-1",
        "_creationDate": 1_700_000_000_000_i64,
        "environmentKey": "production",
        "_links": {}
    });
    if let Some(c) = current {
        e["currentIteration"] = c;
    }
    if let Some(d) = draft {
        e["draftIteration"] = d;
    }
    if archived {
        e["archivedDate"] = json!(1_700_000_300_000_i64);
    }
    serde_json::from_value(e).unwrap()
}

/// Remote states by name, as in the lifecycle table.
pub(crate) fn state(name: &str) -> Option<Experiment> {
    Some(match name {
        "absent" => return None,
        "draft-same" => experiment(None, Some(iteration("it-1", "not_started", D::Same)), false),
        "draft-new" => experiment(None, Some(iteration("it-1", "not_started", D::Old)), false),
        "running-same" => experiment(Some(iteration("it-1", "running", D::Same)), None, false),
        "running-new" => experiment(Some(iteration("it-1", "running", D::Old)), None, false),
        "stopped" => experiment(Some(iteration("it-1", "stopped", D::Old)), None, false),
        "archived-draft" => experiment(None, Some(iteration("it-1", "not_started", D::Same)), true),
        "archived-running" => experiment(Some(iteration("it-1", "running", D::Same)), None, true),
        "archived-stopped" => experiment(Some(iteration("it-1", "stopped", D::Same)), None, true),
        other => panic!("no remote state {other}"),
    })
}

/// The experiment spec every lifecycle scenario uses, in `state`.
pub(crate) fn experiment_yaml(state: &str) -> String {
    let stop =
        if state == "stopped" || state == "archived" { "stop:\n  winner: Green\n  reason: clear win\n" } else { "" };
    format!(
        "kind: Experiment
project: demo
environment: production
key: checkout
name: Checkout button
description: Does a green button sell more?
state: {state}
iteration:
  hypothesis: Green converts better
  randomizationUnit: user
  changeJustification: New hypothesis after the Q3 review
  primaryMetric: checkout-completed
  metrics:
    - checkout-completed
    - key: purchase-funnel
      group: true
  flags:
    checkout-button:
      rule: fallthrough
  treatments:
    - name: Control
      baseline: true
      allocationPercent: 50
      variations:
        checkout-button: Control
    - name: Green
      allocationPercent: \"50\"
      variations:
        checkout-button: green
{stop}"
    )
}

/// Runs a future over the in-memory emulator, which answers every request at once: polling with a no-op waker
/// completes it, and a future that stays pending (a real wait, which these tests must never do) fails.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the in-memory emulator did not complete");
}
