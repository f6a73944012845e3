use serde_json::json;

use super::*;

fn metric(extra: Value) -> Metric {
    let mut m = json!({"_id": "m-1", "_versionId": "v-1", "key": "page-load", "name": "Page load", "kind": "custom",
        "_links": {}, "tags": [], "_creationDate": 1, "dataSource": {"key": "launchdarkly"}});
    if let (Some(m), Value::Object(x)) = (m.as_object_mut(), extra) {
        m.extend(x);
    }
    serde_json::from_value(m).unwrap()
}

fn yaml(doc: SpecDocument) -> String {
    to_yaml(&doc, "s.json")
}

fn err(r: Result<impl std::fmt::Debug, Error>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn a_numeric_custom_metric_is_written_with_every_field_it_has() {
    let m = metric(json!({"description": "Time to interactive", "eventKey": "page-load", "isNumeric": true,
        "unit": "ms", "successCriteria": "LowerThanBaseline", "randomizationUnits": ["user", "organization"],
        "unitAggregationType": "average", "analysisType": "mean", "eventDefault": {"disabled": false, "value": 0},
        "tags": ["web"], "maintainerId": "569f183514f4432160000007", "archived": false, "experimentCount": 3}));
    let mut warnings = Vec::new();
    let spec = export_metric(&m, "demo", &mut warnings).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        yaml(SpecDocument::Metric(spec)),
        "# yaml-language-server: $schema=s.json
kind: Metric
project: demo
key: page-load
name: Page load
description: Time to interactive
eventKind: custom
eventKey: page-load
isNumeric: true
unit: ms
successCriteria: LowerThanBaseline
randomizationUnits:
- user
- organization
unitAggregationType: average
analysisType: mean
eventDefault:
  disabled: false
  value: 0.0
tags:
- web
maintainerId: 569f183514f4432160000007
"
    );
}

#[test]
fn absent_fields_stay_absent_and_fields_the_kind_does_not_take_are_left_out() {
    // LaunchDarkly shows `isNumeric: false` and an empty description on a pageview metric: neither is written.
    let m = metric(json!({"key": "home", "kind": "pageview", "isNumeric": false, "description": "",
        "urls": [{"kind": "exact", "url": "https://x.test/"}, {"kind": "canonical", "url": "https://x.test/a"},
                 {"kind": "substring", "substring": "/shop"}, {"kind": "regex", "pattern": "^/p/[0-9]+$"}]}));
    let spec = export_metric(&m, "demo", &mut Vec::new()).unwrap();
    assert_eq!((spec.is_numeric, spec.description.as_deref(), spec.event_key.as_deref()), (None, None, None));
    assert_eq!(
        spec.urls.unwrap(),
        [
            UrlMatcher::Exact { url: "https://x.test/".into() },
            UrlMatcher::Canonical { url: "https://x.test/a".into() },
            UrlMatcher::Substring { substring: "/shop".into() },
            UrlMatcher::Regex { pattern: "^/p/[0-9]+$".into() },
        ]
    );
    assert_eq!((spec.randomization_units, spec.tags, spec.maintainer_id), (None, None, None));

    let m = metric(json!({"key": "buy", "kind": "click", "selector": "#buy", "isNumeric": false, "unit": "x",
        "urls": [{"kind": "substring", "substring": "/"}]}));
    let spec = export_metric(&m, "demo", &mut Vec::new()).unwrap();
    assert_eq!((spec.event_kind, spec.selector.as_deref(), spec.unit), (EventKind::Click, Some("#buy"), None));

    // A conversion metric's unit and a mean metric's percentile mean nothing: left out.
    let m = metric(json!({"eventKey": "e", "isNumeric": false, "unit": "ms", "percentileValue": 90,
        "analysisType": "mean", "selector": "#x"}));
    let spec = export_metric(&m, "demo", &mut Vec::new()).unwrap();
    assert_eq!((spec.is_numeric, spec.unit, spec.percentile_value, spec.selector), (Some(false), None, None, None));
}

#[test]
fn a_percentile_metric_keeps_its_percentile() {
    let m = metric(json!({"eventKey": "latency", "isNumeric": true, "successCriteria": "LowerThanBaseline",
        "analysisType": "percentile", "percentileValue": 95}));
    let spec = export_metric(&m, "demo", &mut Vec::new()).unwrap();
    assert_eq!((spec.analysis_type, spec.percentile_value), (Some(AnalysisType::Percentile), Some(95)));
}

#[test]
fn what_a_spec_cannot_express_is_an_error_naming_the_metric() {
    let cases = [
        (json!({"kind": "funnel"}), "its kind `funnel` is not pageview, click or custom"),
        (
            json!({"kind": "pageview", "urls": [{"kind": "exact", "url": "a"}, {"kind": "glob", "glob": "*"}]}),
            "its urls entry 2 `{\"glob\":\"*\",\"kind\":\"glob\"}` is not a matcher a spec can write",
        ),
        (json!({"kind": "pageview", "urls": {"kind": "exact"}}), "are not a list"),
        (json!({"eventKey": "e", "successCriteria": "Either"}), "its successCriteria `Either` is not one"),
        (json!({"eventKey": "e", "unitAggregationType": "median"}), "its unitAggregationType `median`"),
        (json!({"eventKey": "e", "analysisType": "percentile"}), "by percentile without a percentileValue"),
        (json!({"eventKey": "e", "analysisType": "percentile", "percentileValue": 101}), "101 is not between"),
        (json!({"eventKey": "e", "eventDefault": {"disabled": false, "value": 5}}), "value 5 is not 0"),
        (json!({"eventKey": "e", "eventDefault": {"value": 0, "kind": "x"}}), "is not {disabled, value}"),
        // What the spec's own checks refuse: a custom metric without its event key.
        (json!({}), "a `custom` metric needs `eventKey`"),
        (json!({"kind": "pageview", "urls": []}), "a `pageview` metric needs `urls`"),
        // A field that would not read back as LaunchDarkly's (a null inside eventDefault) is named.
        (json!({"eventKey": "e", "eventDefault": {"disabled": true, "value": null}}), "its `eventDefault`"),
    ];
    for (extra, wanted) in cases {
        let e = err(export_metric(&metric(extra.clone()), "demo", &mut Vec::new()));
        assert!(e.starts_with("metric demo/page-load: cannot export: "), "{extra}: {e}");
        assert!(e.contains(wanted), "{extra}: {e}");
    }
}

#[test]
fn an_archived_metric_is_exported_with_a_warning() {
    let mut warnings = Vec::new();
    export_metric(&metric(json!({"eventKey": "e", "archived": true})), "demo", &mut warnings).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("metric demo/page-load is archived"), "{warnings:?}");
}

fn group(extra: Value) -> MetricGroup {
    let mut g = json!({"_id": "g-1", "key": "checkout-funnel", "name": "Checkout funnel", "kind": "funnel",
    "_links": {}, "tags": ["checkout"], "_creationDate": 1, "_version": 1,
    "maintainer": {"member": {"_id": "569f183514f4432160000007", "email": "a@example.com", "role": "admin"}},
    "metrics": [
        {"key": "landing", "name": "Landing", "kind": "pageview", "_links": {}, "nameInGroup": "Step 1"},
        {"key": "purchase", "name": "Purchase", "kind": "custom", "_links": {}}
    ]});
    if let (Some(g), Value::Object(x)) = (g.as_object_mut(), extra) {
        g.extend(x);
    }
    serde_json::from_value(g).unwrap()
}

#[test]
fn a_funnel_is_written_in_step_order_with_its_member_maintainer() {
    let spec = export_group(&group(json!({"description": "Landing to purchase"})), "demo", &mut Vec::new()).unwrap();
    assert_eq!(
        yaml(SpecDocument::MetricGroup(spec)),
        "# yaml-language-server: $schema=s.json
kind: MetricGroup
project: demo
key: checkout-funnel
name: Checkout funnel
description: Landing to purchase
groupKind: funnel
metrics:
- key: landing
  nameInGroup: Step 1
- key: purchase
  nameInGroup: Purchase
maintainerId: 569f183514f4432160000007
tags:
- checkout
"
    );
}

#[test]
fn a_team_maintainer_is_left_out_with_a_warning_and_what_cannot_be_expressed_is_an_error() {
    let mut warnings = Vec::new();
    let g = group(json!({"kind": "standard", "maintainer": {"team": {"key": "growth", "name": "Growth"}}}));
    let spec = export_group(&g, "demo", &mut warnings).unwrap();
    assert_eq!((spec.group_kind, spec.maintainer_id), (GroupKind::Standard, None));
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("maintained by team `growth`"), "{warnings:?}");

    let e = err(export_group(&group(json!({"kind": "ordered"})), "demo", &mut Vec::new()));
    assert_eq!(
        e,
        "metric group demo/checkout-funnel: cannot export: its kind `ordered` is not funnel or standard, which a \
         spec cannot express"
    );
    let one = json!({"metrics": [{"key": "landing", "name": "Landing", "kind": "pageview", "_links": {}}]});
    let e = err(export_group(&group(one), "demo", &mut Vec::new()));
    assert!(e.contains("a funnel needs at least two metrics, found 1"), "{e}");
}

#[test]
fn settings_keep_every_unit_in_launchdarklys_order_with_the_default() {
    let s: ExperimentationSettings = serde_json::from_value(json!({"_projectKey": "demo", "_links": {},
    "randomizationUnits": [
        {"randomizationUnit": "organization", "default": true, "_hidden": false, "_displayName": "Org"},
        {"randomizationUnit": "user", "default": false}
    ]}))
    .unwrap();
    assert_eq!(
        yaml(SpecDocument::ExperimentationSettings(export_settings(&s, "demo").unwrap())),
        "# yaml-language-server: $schema=s.json
kind: ExperimentationSettings
project: demo
randomizationUnits:
- randomizationUnit: organization
  default: true
- randomizationUnit: user
"
    );
    let none = ExperimentationSettings::default();
    assert_eq!(
        err(export_settings(&none, "demo")),
        "experimentation settings demo: cannot export: exactly one randomization unit must be the default, found 0 \
         (mark one unit with `default: true`)"
    );
}
