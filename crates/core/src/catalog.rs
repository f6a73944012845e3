//! Metrics, metric groups and randomization units as ldexp compares them: the managed fields of LaunchDarkly's
//! representation, named as the create body names them, and the one comparison the planner (to diff) and the
//! applier (to verify a lost response) share.

use serde_json::{Map, Value, json};

use crate::api::{Metric, MetricGroup, RandomizationUnit, RandomizationUnitInput};

/// Fields LaunchDarkly holds as sets: it may return them in another order than sent.
const SET_FIELDS: [&str; 2] = ["tags", "randomizationUnits"];

/// Fields a metric cannot change once created: `kind` by the API's own account, `eventKey` and `isNumeric` by
/// assumption (what the metric measures; the emulator refuses them too, and `ldexp conformance` is where this is
/// to be confirmed).
pub const METRIC_CREATION_ONLY: [&str; 3] = ["kind", "eventKey", "isNumeric"];

/// Fields a metric group cannot change once created (assumption, as for metrics).
pub const GROUP_CREATION_ONLY: [&str; 1] = ["kind"];

/// The metric's fields under the names of `MetricPost`; absent ones are left out.
pub fn metric_fields(m: &Metric) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.to_owned(), v);
        }
    };
    put("name", Some(json!(m.name)));
    put("description", m.description.as_ref().map(|d| json!(d)));
    put("kind", Some(json!(m.kind)));
    put("eventKey", m.event_key.as_ref().map(|k| json!(k)));
    put("isNumeric", m.is_numeric.map(|n| json!(n)));
    put("unit", m.unit.as_ref().map(|u| json!(u)));
    put("successCriteria", m.success_criteria.as_ref().map(|s| json!(s)));
    put("randomizationUnits", Some(json!(m.randomization_units)));
    put("unitAggregationType", m.unit_aggregation_type.as_ref().map(|u| json!(u)));
    put("analysisType", m.analysis_type.as_ref().map(|a| json!(a)));
    put("percentileValue", m.percentile_value.map(|p| json!(p)));
    put("eventDefault", m.event_default.clone());
    put("urls", m.urls.clone());
    put("selector", m.selector.as_ref().map(|s| json!(s)));
    put("tags", Some(json!(m.tags)));
    put("maintainerId", m.maintainer_id.as_ref().map(|id| json!(id)));
    out
}

/// The group's fields under the names of `MetricGroupPost`.
pub fn group_fields(g: &MetricGroup) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("name".into(), json!(g.name));
    if let Some(d) = &g.description {
        out.insert("description".into(), json!(d));
    }
    out.insert("kind".into(), json!(g.kind));
    let members: Vec<Value> = g
        .metrics
        .iter()
        .map(|m| json!({"key": m.key, "nameInGroup": m.name_in_group.clone().unwrap_or_else(|| m.name.clone())}))
        .collect();
    out.insert("metrics".into(), Value::Array(members));
    out.insert("tags".into(), json!(g.tags));
    if let Some(id) = g.maintainer.as_ref().and_then(|m| m.pointer("/member/_id")).and_then(Value::as_str) {
        out.insert("maintainerId".into(), json!(id));
    }
    out
}

/// Whether LaunchDarkly's `remote` value of `field` is the `desired` one. An absent value reads as the empty one,
/// sets compare without order, and numbers compare by value (`0` is `0.0`).
pub fn same(field: &str, remote: Option<&Value>, desired: &Value) -> bool {
    let empty = match desired {
        Value::String(_) => json!(""),
        Value::Array(_) => json!([]),
        _ => Value::Null,
    };
    normal(field, remote.unwrap_or(&empty)) == normal(field, desired)
}

fn normal(field: &str, v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|i| normal("", i)).collect();
            if SET_FIELDS.contains(&field) {
                items.sort_by_key(ToString::to_string);
                items.dedup();
            }
            Value::Array(items)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normal("", v))).collect()),
        other => other.clone(),
    }
}

/// Whether the project's units are `desired`, as a set keyed by unit (LaunchDarkly returns the default first).
pub fn units_match(remote: &[RandomizationUnit], desired: &[RandomizationUnitInput]) -> bool {
    let key = |u: &str, d: bool| (u.to_owned(), d);
    let mut a: Vec<(String, bool)> = remote.iter().map(|u| key(&u.randomization_unit, u.default)).collect();
    let mut b: Vec<(String, bool)> = desired.iter().map(|u| key(&u.randomization_unit, u.default)).collect();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_reads_as_empty_sets_ignore_order_and_numbers_compare_by_value() {
        assert!(same("description", None, &json!("")));
        assert!(!same("description", None, &json!("x")));
        assert!(same("tags", Some(&json!(["b", "a"])), &json!(["a", "b"])));
        assert!(!same(
            "urls",
            Some(&json!([{"kind": "exact", "url": "b"}, {"kind": "exact", "url": "a"}])),
            &json!([
                {"kind": "exact", "url": "a"},
                {"kind": "exact", "url": "b"}
            ])
        ));
        assert!(same(
            "eventDefault",
            Some(&json!({"disabled": false, "value": 0})),
            &json!({"disabled": false, "value": 0.0})
        ));
        assert!(same("tags", None, &json!([])));
    }

    #[test]
    fn units_compare_as_a_set() {
        let remote = [
            RandomizationUnit { randomization_unit: "org".into(), default: true, ..RandomizationUnit::default() },
            RandomizationUnit { randomization_unit: "user".into(), default: false, ..RandomizationUnit::default() },
        ];
        let desired = |d: &str| {
            vec![
                RandomizationUnitInput { randomization_unit: "user".into(), default: d == "user" },
                RandomizationUnitInput { randomization_unit: "org".into(), default: d == "org" },
            ]
        };
        assert!(units_match(&remote, &desired("org")));
        assert!(!units_match(&remote, &desired("user")));
    }
}
