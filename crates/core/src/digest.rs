//! Stable SHA-256 fingerprints of JSON values and spec sources.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the canonical JSON of `value`: object keys sorted at every depth, whatever map type
/// serde_json was built with (a dependency may turn on `preserve_order`), so equal values always hash equally.
pub fn fingerprint<T: Serialize + ?Sized>(value: &T) -> String {
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = Vec::new();
    write_canonical(&v, &mut out);
    sha256_hex(&out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            // Without `preserve_order` the map iterates sorted already: no key list and no lookups then.
            if m.keys().is_sorted() {
                write_entries(m.iter(), out);
            } else {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by_key(|(k, _)| *k);
                write_entries(entries.into_iter(), out);
            }
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_entries<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing straight into `out` is the compact form `Value::to_string` would give, without the per-key
        // clone and temporary string (a plan fingerprints thousands of experiments).
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

/// `sha256:<hex>` of raw bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::new_with_prefix(bytes))
}

/// `sha256:<hex>` of everything fed to `hasher`: for inputs too large to gather in one buffer first.
pub fn hex(hasher: Sha256) -> String {
    use std::fmt::Write;
    let digest = hasher.finalize();
    let mut s = String::with_capacity(7 + digest.len() * 2);
    s.push_str("sha256:");
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn incremental_hashing_equals_hashing_the_concatenation() {
        let mut h = Sha256::new();
        h.update(b"spec.yaml");
        h.update(b"kind: Experiment\n");
        assert_eq!(hex(h), sha256_hex(b"spec.yamlkind: Experiment\n"));
    }

    #[test]
    fn key_order_does_not_change_the_fingerprint() {
        assert_eq!(
            fingerprint(&json!({"a": 1, "b": [1, {"y": 2, "x": 1}]})),
            fingerprint(&json!({"b": [1, {"x": 1, "y": 2}], "a": 1}))
        );
        assert_ne!(fingerprint(&json!([1, 2])), fingerprint(&json!([2, 1])));
    }
}
