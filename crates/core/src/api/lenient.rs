//! Deserializers that absorb the wire quirks: numbers as strings, strings as numbers, and `null` where a value was due.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Epoch milliseconds, accepted as a JSON number or a numeric string (quirk: timestamps arrive both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds as a number or numeric string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                i64::try_from(v).map(Millis).map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                if v.is_finite() {
                    // Truncation is intended: sub-millisecond precision carries no meaning here.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Millis(v as i64))
                } else {
                    Err(E::custom("timestamp is not finite"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                let t = v.trim();
                if let Ok(i) = t.parse::<i64>() {
                    return Ok(Millis(i));
                }
                t.parse::<f64>()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
                    .and_then(|f| self.visit_f64(f))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list where the array itself or any element may be `null`; nulls are dropped.
pub(super) fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(opt_vec(d)?.unwrap_or_default())
}

/// Like [`vec`], but keeps the difference between absent/`null` and a list.
pub(super) fn opt_vec<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(Option::<NullFree<T>>::deserialize(d)?.map(|l| l.0))
}

/// A JSON array read without its `null` elements, into a vector of exactly its length.
///
/// A plan holds every experiment of its environments, each with a few short lists (treatments, metrics), and
/// JSON gives no length up front: grown by doubling, those lists were a fifth of a large plan's peak memory.
struct NullFree<T>(Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for NullFree<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = NullFree<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array or null")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NullFree<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<Option<T>>()? {
                    items.extend(item);
                }
                items.shrink_to_fit();
                Ok(NullFree(items))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A map that may be `null`, with values that may be `null`; nulls are dropped.
pub(super) fn map<'de, D, T, M>(d: D) -> Result<M, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
    M: FromIterator<(String, T)>,
{
    let items: Option<BTreeMap<String, Option<T>>> = Option::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
}

/// A boolean that may be `null` (read as `false`).
pub(super) fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// An object that may arrive JSON-encoded inside a string, as the spec's own examples do (quirk 10: a flag's
/// `experiments`, a result's `credibleInterval`); `null` or absent is the default.
pub(super) fn embedded<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(opt_embedded(d)?.unwrap_or_default())
}

/// Like [`embedded`], keeping absence as `None`.
pub(super) fn opt_embedded<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => serde_json::from_str(&s).map(Some).map_err(de::Error::custom),
        Some(v) => serde_json::from_value(v).map(Some).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Lists {
        #[serde(default, deserialize_with = "super::vec")]
        items: Vec<u32>,
        #[serde(default, deserialize_with = "super::opt_vec")]
        maybe: Option<Vec<String>>,
    }

    fn read(json: &str) -> Lists {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn nulls_are_dropped_and_absence_is_kept_apart_from_an_empty_list() {
        let l = read(r#"{"items": [1, null, 2, null], "maybe": [null, "a"]}"#);
        assert_eq!((l.items, l.maybe), (vec![1, 2], Some(vec!["a".to_owned()])));
        let l = read(r#"{"items": null, "maybe": null}"#);
        assert_eq!((l.items, l.maybe), (vec![], None));
        let l = read(r#"{"maybe": []}"#);
        assert_eq!((l.items, l.maybe), (vec![], Some(vec![])));
        assert!(serde_json::from_str::<Lists>(r#"{"items": {"a": 1}}"#).is_err());
        assert!(serde_json::from_str::<Lists>(r#"{"items": [1, "x"]}"#).is_err());
    }

    #[test]
    fn lists_hold_no_spare_capacity() {
        // Five elements would leave a vector grown by doubling at capacity 8.
        let l = read(r#"{"items": [1, 2, null, 3, 4, 5]}"#);
        assert_eq!((l.items.len(), l.items.capacity()), (5, 5));
        let v: Lists =
            serde_json::from_value(serde_json::json!({"items": [1, 2, 3, 4, 5]})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((v.items.len(), v.items.capacity()), (5, 5));
    }
}
