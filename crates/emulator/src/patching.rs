//! RFC 6902 JSON patches shared by the flag, metric and metric-group patches: reading a bare patch array, the paths
//! a metric or group patch may not touch, and applying operations to a copy with `test` failures reported as 400.

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use crate::wire::{Fail, Outcome};

/// A bare JSON patch array, the only body `patchMetric` and `patchMetricGroup` declare (`JSONPatch`); the
/// `{comment, patch}` wrapper the flag patch takes is not declared for them, so it is refused.
pub(crate) fn parse_array(body: &Value) -> Outcome<Vec<PatchOperation>> {
    if !body.is_array() {
        return Err(Fail::bad("expected a JSON patch: an array of {op, path, value} operations"));
    }
    serde_json::from_value::<json_patch::Patch>(body.clone())
        .map(|p| p.0)
        .map_err(|e| Fail::bad(format!("invalid JSON patch: {e}")))
}

/// Applies `ops` to `doc` in order. The caller owns a copy, so a failure leaves the stored object untouched.
pub(crate) fn apply(doc: &mut Value, ops: &[PatchOperation]) -> Outcome<()> {
    // Applied to a copy, so the variant that does not roll back on failure is all we need.
    json_patch::patch_unsafe(doc, ops).map_err(|e| match e.kind {
        PatchErrorKind::TestFailed => {
            Fail::bad(format!("Test operation {} failed: the value at `{}` does not match", e.operation, e.path))
        }
        _ => Fail::bad(format!("cannot apply the JSON patch: {e}")),
    })
}

/// The decoded segments of `pointer`'s string form (`~1` is `/`, `~0` is `~`).
fn segments(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect()
}

/// The pointers an operation writes (its `path`, and the `from` a move empties) and the one it only reads (the
/// `from` of a copy, and the `path` of a test).
fn written_and_read(op: &PatchOperation) -> (Vec<String>, Vec<String>) {
    let s = |p: &str| p.to_owned();
    match op {
        PatchOperation::Add(o) => (vec![s(o.path.as_str())], vec![]),
        PatchOperation::Remove(o) => (vec![s(o.path.as_str())], vec![]),
        PatchOperation::Replace(o) => (vec![s(o.path.as_str())], vec![]),
        PatchOperation::Move(o) => (vec![s(o.path.as_str()), s(o.from.as_str())], vec![]),
        PatchOperation::Copy(o) => (vec![s(o.path.as_str())], vec![s(o.from.as_str())]),
        PatchOperation::Test(o) => (vec![], vec![s(o.path.as_str())]),
    }
}

/// Refuses, before anything is applied, an operation that names a `_`-prefixed field anywhere in its pointers
/// (contract §1: such fields are not editable; whether a `test` of `/_version` works is unverified, so it is refused
/// too), that writes the whole document, or that writes a creation-only field. `fixed` pairs a top-level field with
/// the reason it cannot change; `what` names the object (`metric`, `metric group`).
pub(crate) fn check_paths(ops: &[PatchOperation], what: &str, fixed: &[(&str, &str)]) -> Outcome<()> {
    for op in ops {
        let (written, read) = written_and_read(op);
        for pointer in written.iter().chain(&read) {
            if segments(pointer).iter().any(|s| s.starts_with('_')) {
                return Err(Fail::bad(format!(
                    "`{pointer}`: fields starting with `_` are not editable (the {what} patch may not name them)"
                )));
            }
        }
        for pointer in &written {
            let segs = segments(pointer);
            let Some(first) = segs.first() else {
                return Err(Fail::bad(format!("a patch cannot replace the whole {what}; name the fields to change")));
            };
            if let Some((field, why)) = fixed.iter().find(|(f, _)| f == first) {
                return Err(Fail::bad(format!("`/{field}` cannot be changed: {why}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOperation> {
        parse_array(&v).unwrap()
    }

    #[test]
    fn underscore_fields_and_fixed_fields_are_refused_before_anything_applies() {
        let fixed = [("key", "it is the metric's identity")];
        let m = |v: Value| check_paths(&ops(v), "metric", &fixed).unwrap_err().message;
        assert!(m(json!([{"op": "test", "path": "/_version", "value": 1}])).contains("`/_version`"));
        assert!(m(json!([{"op": "copy", "from": "/_id", "path": "/name"}])).contains("`/_id`"));
        assert!(m(json!([{"op": "replace", "path": "/dataSource/_name", "value": "x"}])).contains("not editable"));
        assert_eq!(
            m(json!([{"op": "replace", "path": "/key", "value": "k"}])),
            "`/key` cannot be changed: it is the metric's identity"
        );
        assert!(m(json!([{"op": "move", "from": "/key", "path": "/name"}])).contains("`/key`"));
        assert!(m(json!([{"op": "replace", "path": "", "value": {}}])).contains("whole metric"));
        // Reading a fixed field is fine: a test guards on it without changing it.
        check_paths(&ops(json!([{"op": "test", "path": "/key", "value": "k"}])), "metric", &fixed).unwrap();
        assert!(parse_array(&json!({"patch": []})).is_err(), "only a bare array");
    }

    #[test]
    fn a_failed_test_is_a_400_naming_the_operation() {
        let mut doc = json!({"name": "a"});
        let e = apply(&mut doc, &ops(json!([{"op": "test", "path": "/name", "value": "b"}]))).unwrap_err();
        assert_eq!(e.message, "Test operation 0 failed: the value at `/name` does not match");
        assert_eq!(e.status, 400);
    }
}
