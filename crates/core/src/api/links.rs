//! The compact `_links` of items held by the thousands (experiments, their flags and metrics).
//!
//! A `BTreeMap<String, Value>` of two links costs about 2 KB (one B-tree node per object); held on every
//! experiment, flag role and metric summary of a 10,000-experiment plan that was most of `ldexp plan`'s memory.
//! ldexp never interprets item links, so they are kept as their compact JSON text, written out verbatim when
//! serialized (a plan fingerprints every changed experiment, and parsing the text back per link was most of
//! that cost) and parsed only when inspected.

use std::fmt;

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::Links;

/// `_links` as compact JSON text; `None` when empty. The text is always serde_json's rendering of a
/// [`Links`] map (sorted keys, canonical numbers), so equal maps have equal text and `==` compares content.
///
/// Serialized as raw JSON: exact through serde_json (`to_writer`, `to_value`), which is how ldexp writes API
/// types. Other serializers would see serde_json's private raw-value wrapper, so none is used for them.
#[derive(Clone, Default)]
pub struct ItemLinks(Option<Box<RawValue>>);

impl PartialEq for ItemLinks {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_deref().map(RawValue::get) == other.0.as_deref().map(RawValue::get)
    }
}

impl Eq for ItemLinks {}

impl ItemLinks {
    /// No links.
    pub fn new() -> Self {
        ItemLinks(None)
    }

    /// The links as a map.
    pub fn to_map(&self) -> Links {
        // The text was rendered from a `Links` map, so it always parses back.
        self.0.as_deref().and_then(|s| serde_json::from_str(s.get()).ok()).unwrap_or_default()
    }

    /// Adds or replaces the link `key`.
    pub fn insert(&mut self, key: String, value: Value) {
        let mut map = self.to_map();
        map.insert(key, value);
        *self = ItemLinks::from(map);
    }

    /// The link `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.to_map().remove(key)
    }

    /// Whether the link `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.to_map().contains_key(key)
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl From<Links> for ItemLinks {
    fn from(map: Links) -> Self {
        if map.is_empty() {
            return ItemLinks(None);
        }
        // Rendering a map with string keys cannot fail.
        ItemLinks(serde_json::to_string(&map).ok().and_then(|s| RawValue::from_string(s).ok()))
    }
}

impl From<ItemLinks> for Links {
    fn from(links: ItemLinks) -> Self {
        links.to_map()
    }
}

/// Formats like the map it stands for, so `Debug` output is unchanged by the compact form.
impl fmt::Debug for ItemLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_map().fmt(f)
    }
}

impl Serialize for ItemLinks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_deref() {
            None => serializer.serialize_map(Some(0))?.end(),
            Some(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ItemLinks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Links::deserialize(deserializer).map(ItemLinks::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Value {
        json!({
            "self": {"href": "/api/v2/flags/p/f", "type": "application/json"},
            "parent": {"href": "/api/v2/p", "n": 1.5, "big": 12345678901234_i64, "list": [null, true, "x"]}
        })
    }

    #[test]
    fn round_trips_to_the_same_json_and_debug_as_the_map() {
        let map: Links = serde_json::from_value(sample()).unwrap();
        let links: ItemLinks = serde_json::from_value(sample()).unwrap();
        assert_eq!(serde_json::to_value(&links).unwrap(), sample());
        assert_eq!(serde_json::to_string(&links).unwrap(), serde_json::to_string(&map).unwrap());
        assert_eq!(format!("{links:?}"), format!("{map:?}"));
        assert_eq!(format!("{links:#?}"), format!("{map:#?}"));
        assert_eq!(links.to_map(), map);
        let back: ItemLinks = serde_json::from_str(&serde_json::to_string(&links).unwrap()).unwrap();
        assert_eq!(back, links);
    }

    #[test]
    fn empty_links_serialize_as_an_empty_object() {
        let links: ItemLinks = serde_json::from_value(json!({})).unwrap();
        assert!(links.is_empty());
        assert_eq!(links, ItemLinks::new());
        assert_eq!(serde_json::to_string(&links).unwrap(), "{}");
        assert_eq!(format!("{links:?}"), "{}");
        assert!(serde_json::from_value::<ItemLinks>(json!(null)).is_err(), "as strict as the map");
    }

    #[test]
    fn insertion_order_does_not_matter_and_lookups_see_the_links() {
        let mut a = ItemLinks::new();
        a.insert("self".into(), json!({"href": "/s"}));
        a.insert("parent".into(), json!({"href": "/p"}));
        let mut b = ItemLinks::new();
        b.insert("parent".into(), json!({"href": "/p"}));
        b.insert("self".into(), json!({"href": "/s"}));
        assert_eq!(a, b);
        assert!(a.contains_key("parent") && !a.contains_key("next"));
        assert_eq!(a.get("self"), Some(json!({"href": "/s"})));
        a.insert("self".into(), json!({"href": "/t"}));
        assert_eq!(a.get("self"), Some(json!({"href": "/t"})));
        assert_eq!(Links::from(a).len(), 2);
    }
}
