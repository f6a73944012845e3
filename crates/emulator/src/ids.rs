//! Deterministic identifiers and pseudo-random numbers: SHA-256 over named parts, never a random source.

use sha2::{Digest, Sha256};

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        // The separator keeps ["ab", "c"] and ["a", "bc"] apart.
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// A UUID-shaped id derived from `parts`, e.g. `["iteration", "demo", "production", "exp", "7"]`.
pub(crate) fn uuid(parts: &[&str]) -> String {
    let d = digest(parts);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A 24-hex-digit id (LaunchDarkly's Mongo-style `_id`s for projects, environments, metrics).
pub(crate) fn object_id(parts: &[&str]) -> String {
    digest(parts)[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// A number in `[0, 1)` derived from `parts`.
pub(crate) fn unit(parts: &[&str]) -> f64 {
    let d = digest(parts);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    // 53 bits fill an f64 mantissa exactly, so the value is uniform and below 1.
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped() {
        let a = uuid(&["experiment", "demo", "production", "x"]);
        assert_eq!(a, uuid(&["experiment", "demo", "production", "x"]));
        assert_ne!(a, uuid(&["experiment", "demo", "productio", "nx"]));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(object_id(&["p"]).len(), 24);
        let u = unit(&["x"]);
        assert!((0.0..1.0).contains(&u));
    }
}
