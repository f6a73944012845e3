//! Tests of the catalog kinds: they load, and every offline rule reports at the field it is about.

use super::*;

const CATALOG: &str = "\
kind: Metric
project: shop
key: checkout-conversion
name: Checkout conversion
eventKind: custom
eventKey: checkout-completed
isNumeric: false
successCriteria: HigherThanBaseline
randomizationUnits: [user]
unitAggregationType: average
analysisType: mean
eventDefault: {disabled: false, value: 0}
tags: [checkout]
---
kind: Metric
project: shop
key: landing
name: Landing
eventKind: pageview
urls: [{kind: substring, substring: /checkout}]
---
kind: MetricGroup
project: shop
key: checkout-funnel
name: Checkout funnel
groupKind: funnel
metrics:
  - {key: landing, nameInGroup: Landing}
  - {key: checkout-conversion, nameInGroup: Purchase}
maintainerId: m-1
---
kind: ExperimentationSettings
project: shop
randomizationUnits:
  - {randomizationUnit: user, default: true}
  - {randomizationUnit: organization}
";

fn problems(text: &str) -> Vec<String> {
    match load_str("c.yaml", text) {
        Ok(_) => Vec::new(),
        Err(crate::Error::Spec { diagnostics }) => diagnostics.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn the_three_kinds_load_with_their_bodies() {
    let set = load_str("c.yaml", CATALOG).unwrap();
    assert_eq!((set.metrics.len(), set.metric_groups.len(), set.settings.len()), (2, 1, 1));
    let m = set.metrics[0].spec.managed_fields();
    assert_eq!(m["kind"], "custom");
    assert_eq!(m["eventDefault"], serde_json::json!({"disabled": false, "value": 0.0}));
    assert!(!m.contains_key("unit"), "a field the spec leaves out is not managed");
    let urls = &set.metrics[1].spec.managed_fields()["urls"];
    assert_eq!(urls, &serde_json::json!([{"kind": "substring", "substring": "/checkout"}]));
    let g = set.metric_groups[0].spec.managed_fields();
    assert_eq!(g["metrics"][1], serde_json::json!({"key": "checkout-conversion", "nameInGroup": "Purchase"}));
    assert!(set.settings[0].spec.randomization_units[0].default);
    // The digest covers the new kinds.
    let other = load_str("c.yaml", &CATALOG.replace("name: Landing", "name: Landing page")).unwrap();
    assert_ne!(set.digest, other.digest);
}

#[test]
fn each_event_kind_needs_its_fields() {
    assert_eq!(
        problems(&CATALOG.replace("eventKey: checkout-completed\n", "")),
        ["c.yaml:1:1: a `custom` metric needs `eventKey` (hint: add the event key your code sends with `track`)"]
    );
    assert_eq!(
        problems(
            &CATALOG
                .replace("isNumeric: false", "isNumeric: true")
                .replace("successCriteria: HigherThanBaseline\n", "")
        ),
        ["c.yaml:1:1: a `custom` metric needs `successCriteria` (hint: say whether higher or lower is better)"]
    );
    assert_eq!(
        problems(&CATALOG.replace("eventKind: pageview", "eventKind: click")),
        ["c.yaml:15:1: a `click` metric needs `selector` (hint: add the CSS selector of the element clicked)"]
    );
    assert_eq!(
        problems(&CATALOG.replace("urls: [{kind: substring, substring: /checkout}]\n", "selector: '#buy'\n")),
        [
            "c.yaml:15:1: a `pageview` metric needs `urls` (hint: add the pages the metric counts)",
            "c.yaml:20:11: `selector` applies to `click` metrics only (hint: remove it)",
        ]
    );
    assert_eq!(
        problems(&CATALOG.replace("analysisType: mean", "analysisType: mean\nunit: ms\npercentileValue: 95")),
        [
            "c.yaml:12:7: `unit` applies to numeric metrics only (hint: set `isNumeric: true`, or remove `unit`)",
            "c.yaml:13:18: `percentileValue` applies only with `analysisType: percentile` (hint: set \
             `analysisType: percentile`, or remove `percentileValue`)",
        ]
    );
    assert_eq!(
        problems(&CATALOG.replace("analysisType: mean", "analysisType: percentile")),
        ["c.yaml:11:15: `analysisType: percentile` needs `percentileValue` (hint: add `percentileValue`, such as 95)"]
    );
}

#[test]
fn groups_settings_and_duplicates_are_checked() {
    let one_step = CATALOG.replace("  - {key: landing, nameInGroup: Landing}\n", "");
    assert_eq!(
        problems(&one_step),
        ["c.yaml:28:3: a funnel needs at least two metrics, found 1 (hint: list the funnel's steps in order, or use \
          `groupKind: standard`)"]
    );
    assert_eq!(
        problems(&CATALOG.replace("key: landing, nameInGroup", "key: checkout-conversion, nameInGroup")),
        ["c.yaml:29:6: metric `checkout-conversion` is listed twice (first as item 1) (hint: list it once)"]
    );
    assert_eq!(
        problems(
            &CATALOG.replace("  - {randomizationUnit: organization}", "  - {randomizationUnit: org, default: true}")
        ),
        ["c.yaml:35:3: exactly one randomization unit must be the default, found 2 (hint: mark one unit with \
          `default: true`)"]
    );
    let twice = format!("{CATALOG}---\n{}", &CATALOG[..CATALOG.find("---").unwrap()]);
    assert_eq!(
        problems(&twice),
        ["c.yaml:40:6: metric `checkout-conversion` in project `shop` is defined twice: first at c.yaml:3:6 (hint: \
          remove one of the two definitions)"]
    );
    assert_eq!(
        problems(&CATALOG.replace("eventKind: custom", "eventKind: custon")),
        ["c.yaml:5:12: `eventKind` must be one of `pageview`, `click`, `custom`, found `custon`, did you mean \
          `custom`? (hint: write `custom`)"]
    );
}
