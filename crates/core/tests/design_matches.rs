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
fn a_design_built_by_hand_compares_its_allocation_canonically() {
    let it = rep(json!({
        "hypothesis": "h", "status": "running",
        "treatments": [{"name": "t", "allocationPercent": "50.0", "baseline": true, "parameters": []}],
    }));
    let mut d = Design::from_iteration(&it);
    assert_eq!(d.treatments["t"].allocation_percent, "50");
    assert!(d.matches_iteration(&it));
    d.treatments.get_mut("t").unwrap().allocation_percent = "50.0".to_owned();
    assert!(!d.matches_iteration(&it), "a non-canonical design text never equals a canonical one");
}
