//! Field-level differences between two JSON values, as dotted names for renderings.

use ldexp_core::plan::FieldChange;
use serde_json::Value;

/// Appends one [`FieldChange`] per differing leaf of `before` and `after` under `prefix`. Objects are walked
/// key by key (so a treatment shows as `treatments.Control.allocationPercent`); arrays and scalars are leaves.
pub(crate) fn diff(prefix: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    walk(prefix, before, after, false, out);
}

/// Like [`diff`], but every leaf of `after` is listed, an unchanged one with equal `before` and `after`: for a body
/// that is sent whole, so a reviewer sees every value it writes, not only those that move.
pub(crate) fn all(prefix: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    walk(prefix, before, after, true, out);
}

fn walk(prefix: &str, before: Option<&Value>, after: Option<&Value>, unchanged: bool, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(&join(prefix, k), b.get(k), a.get(k), unchanged, out);
            }
        }
        (None, Some(Value::Object(a))) if !a.is_empty() => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.sort();
            for k in keys {
                walk(&join(prefix, k), None, a.get(k), unchanged, out);
            }
        }
        (Some(Value::Object(b)), None) if !b.is_empty() => {
            let mut keys: Vec<&String> = b.keys().collect();
            keys.sort();
            for k in keys {
                walk(&join(prefix, k), b.get(k), None, unchanged, out);
            }
        }
        (b, a) => {
            // An empty set and an absent one read the same to a reviewer.
            let present = |v: &&Value| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty());
            let b = b.filter(present);
            let a = a.filter(present);
            if b != a || (unchanged && a.is_some()) {
                out.push(FieldChange { field: prefix.to_owned(), before: b.cloned(), after: a.cloned() });
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_become_dotted_leaves() {
        let b = json!({"hypothesis": "a", "treatments": {"Control": {"allocationPercent": "50", "baseline": true}}});
        let a = json!({"hypothesis": "b", "treatments": {"Control": {"allocationPercent": "40", "baseline": true},
            "New": {"allocationPercent": "10"}}, "metrics": [{"key": "m"}]});
        let mut out = Vec::new();
        diff("", Some(&b), Some(&a), &mut out);
        let names: Vec<&str> = out.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            ["hypothesis", "metrics", "treatments.Control.allocationPercent", "treatments.New.allocationPercent"]
        );
        assert_eq!(out[2].before, Some(json!("50")));
        assert_eq!(out[2].after, Some(json!("40")));
        assert_eq!(out[3].before, None);
    }
}
