//! `Design::matches_iteration` gives the same answer as building the remote design and comparing, on iterations
//! full of the duplicates, omissions and number spellings LaunchDarkly's answers may hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ldexp_core::api::IterationRep;
use ldexp_core::design::Design;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A few values per field, so that two independently generated iterations often agree on a part and differ on
/// another, and lists often repeat an item.
fn word() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(Value::from)
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop::option::weighted(0.6, s).boxed()
}

fn metric() -> impl Strategy<Value = Value> {
    (word(), maybe(any::<bool>())).prop_map(|(key, group)| match group {
        Some(g) => json!({"key": key, "isGroup": g}),
        None => json!({"key": key}),
    })
}

fn allocation() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(50),
        json!("50"),
        json!("50.0"),
        json!(" 50 "),
        json!(25.5),
        json!("x"),
        json!(0),
        json!("-0"),
        json!(1e300),
    ])
}

fn treatment() -> impl Strategy<Value = Value> {
    let param = (maybe(word()), maybe(word())).prop_map(|(f, v)| json!({"flagKey": f, "variationId": v}));
    (word(), allocation(), any::<bool>(), prop::collection::vec(param, 0..3))
        .prop_map(|(name, a, baseline, parameters)| {
            json!({"name": name, "allocationPercent": a, "baseline": baseline, "parameters": parameters})
        })
}

fn iteration() -> impl Strategy<Value = Value> {
    let flag = (maybe(word()), maybe(word()))
        .prop_map(|(rule, nie)| json!({"targetingRule": rule, "notInExperimentVariationId": nie}));
    (
        (word(), maybe(any::<bool>()), maybe(prop::sample::select(vec!["user", "org"]))),
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(metric(), 0..3),
        prop::collection::vec(metric(), 0..2),
        (maybe(metric()), maybe(metric()), maybe(metric())),
        prop::collection::vec(treatment(), 0..3),
        prop::collection::btree_map(prop::sample::select(vec!["f", "g"]), flag, 0..2),
    )
        .prop_map(
            |(
                (hypothesis, reshuffle, unit),
                attributes,
                metrics,
                secondary,
                (single, funnel, primary),
                treatments,
                flags,
            )| {
                json!({
                    "hypothesis": hypothesis,
                    "status": "running",
                    "canReshuffleTraffic": reshuffle,
                    "randomizationUnit": unit,
                    "attributes": attributes,
                    "metrics": metrics,
                    "secondaryMetrics": secondary,
                    "primarySingleMetric": single,
                    "primaryFunnel": funnel,
                    "primaryMetric": primary,
                    "treatments": treatments,
                    "flags": flags,
                })
            },
        )
}

fn rep(v: Value) -> IterationRep {
    serde_json::from_value(v).expect("the generator writes valid iterations")
}

/// `b` takes most fields from `a`, so that the designs are often equal or differ in one part only.
fn pair() -> impl Strategy<Value = (IterationRep, IterationRep)> {
    (iteration(), iteration(), prop::collection::vec(prop::bool::weighted(0.2), 11)).prop_map(|(a, b, from_b)| {
        let mut mixed = a.clone();
        for ((k, v), take) in b.as_object().unwrap().iter().zip(from_b) {
            if take {
                mixed[k] = v.clone();
            }
        }
        (rep(a), rep(mixed))
    })
}

#[test]
fn matches_iteration_agrees_with_from_iteration() {
    let equal = std::cell::Cell::new(0_u32);
    let cases = 4000;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(&pair(), |(a, b)| {
            let design = Design::from_iteration(&b);
            let same = Design::from_iteration(&a) == design;
            equal.set(equal.get() + u32::from(same));
            prop_assert_eq!(design.matches_iteration(&a), same);
            prop_assert!(Design::from_iteration(&a).matches_iteration(&a));
            Ok(())
        })
        .unwrap();
    // Both answers must be exercised: about a third of the generated pairs are equal designs.
    let equal = equal.get();
    assert!(equal > cases / 10 && equal < cases * 9 / 10, "{equal} of {cases} pairs were equal designs");
}

#[test]
fn an_allocation_is_compared_by_value_and_written_one_way() {
    let it = rep(json!({
        "hypothesis": "h", "status": "running",
        "treatments": [{"name": "t", "allocationPercent": "50.0", "baseline": true, "parameters": []}],
    }));
    let mut d = Design::from_iteration(&it);
    assert_eq!(d.treatments[0].allocation_percent.to_string(), "50");
    assert!(d.matches_iteration(&it));
    d.treatments[0].allocation_percent = ldexp_core::api::Percent::new(50.000_001).unwrap();
    assert!(!d.matches_iteration(&it));
}

#[test]
fn the_design_makes_its_own_body_in_the_order_it_holds_and_compares_as_sets() {
    let it = rep(json!({
        "hypothesis": "h", "status": "running", "attributes": ["b", "a"],
        "metrics": [{"key": "m2"}, {"key": "g", "isGroup": true}], "primaryFunnel": {"key": "g"},
        "treatments": [
            {"name": "z", "allocationPercent": "40", "baseline": true, "parameters": [{"flagKey": "f", "variationId": "v1"}]},
            {"name": "a", "allocationPercent": 60, "baseline": false, "parameters": [{"flagKey": "f", "variationId": "v2"}]}
        ],
        "flags": {"f": {"targetingRule": "r1"}}
    }));
    let d = Design::from_iteration(&it);
    let body = serde_json::to_value(d.input(|flag| if flag == "f" { 7 } else { 0 })).unwrap();
    assert_eq!(
        body,
        json!({
            "hypothesis": "h", "canReshuffleTraffic": true, "randomizationUnit": "user", "attributes": ["b", "a"],
            "metrics": [{"key": "m2", "isGroup": false}, {"key": "g", "isGroup": true}], "primaryFunnelKey": "g",
            "treatments": [
                {"name": "z", "baseline": true, "allocationPercent": "40", "parameters": [{"flagKey": "f", "variationId": "v1"}]},
                {"name": "a", "baseline": false, "allocationPercent": "60", "parameters": [{"flagKey": "f", "variationId": "v2"}]}
            ],
            "flags": {"f": {"ruleId": "r1", "flagConfigVersion": 7}}
        })
    );
    // Another order of the same lists is the same design, and it is written in one canonical form.
    let mut reordered = d.clone();
    reordered.attributes.reverse();
    reordered.metrics.reverse();
    reordered.treatments.reverse();
    assert_eq!(reordered, d);
    assert_eq!(serde_json::to_string(&reordered).unwrap(), serde_json::to_string(&d).unwrap());
    let back: Design = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    assert!(back.matches_iteration(&it));
}
