//! Stable fingerprints of remote objects (BLAKE3 of their JSON) and SHA-256 digests of spec sources.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `blake3:<hex>` of the compact JSON of `value`: what a plan records of each remote object it changes, so that a
/// stale saved plan can say what moved.
///
/// Deterministic because every map in the API types is sorted (`BTreeMap`, [`crate::flag_map::FlagMap`]) and
/// serde_json's `Map` is one too (this workspace does not enable `preserve_order`;
/// `key_order_does_not_change_the_fingerprint` fails if a dependency ever turns it on). BLAKE3 rather than the
/// SHA-256 of spec digests: this machine class has no SHA instructions, and software SHA-256 of every changed
/// experiment was a tenth of planning time at 10,000 experiments. Nothing compares a fingerprint with anything
/// but another fingerprint.
pub fn fingerprint<T: Serialize + ?Sized>(value: &T) -> String {
    // One buffer and one hash update: serde_json writes token by token.
    let mut buf = Vec::with_capacity(4096);
    // Serializing these types into a `Vec` cannot fail; a failure would leave a prefix, still deterministic.
    let _ = serde_json::to_writer(&mut buf, value);
    format!("blake3:{}", blake3::hash(&buf).to_hex())
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
