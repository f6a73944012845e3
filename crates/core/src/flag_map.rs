//! `FlagMap`: the small maps keyed by flag key (or treatment name) that exist once per experiment (a spec's
//! `iteration.flags` and treatment `variations`, an iteration's `flags` in LaunchDarkly's answers, a design's
//! treatments and flags), held as one sorted vector instead of a B-tree.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

use litemap::LiteMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Values by flag key, iterated in key order like a `BTreeMap`, with the `BTreeMap` methods the model's users call.
///
/// These maps hold one or two flags, and every loaded spec has several: a `BTreeMap` allocates an 11-slot node for
/// even one entry, which at thousands of specs was a quarter of the memory they kept. A sorted vector holds exactly
/// its entries, and lookups over so few are as fast.
#[derive(Clone, PartialEq, Eq)]
pub struct FlagMap<V>(LiteMap<String, V>);

impl<V> FlagMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        FlagMap(LiteMap::new())
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        FlagMap(LiteMap::with_capacity(n))
    }

    /// How many keys the map holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        String: Borrow<Q>,
    {
        self.0.get(key)
    }

    /// The value of `key`, to change it.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        String: Borrow<Q>,
    {
        self.0.get_mut(key)
    }

    /// Whether the map holds `key`.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.0.contains_key(key)
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.0.insert(key, value)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + Clone + '_ {
        self.0.as_slice().iter().map(|(k, _)| k)
    }

    /// The entries, in key order.
    pub fn iter(&self) -> FlagMapIter<'_, V> {
        FlagMapIter(self.0.as_slice().iter())
    }

    /// The entries with their values to change, in key order.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&String, &mut V)> + ExactSizeIterator + '_ {
        self.0.iter_mut()
    }
}

impl<V: schemars::JsonSchema> schemars::JsonSchema for FlagMap<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("FlagMap_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object", "additionalProperties": generator.subschema_for::<V>()})
    }
}

impl<V> Default for FlagMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for FlagMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A key given twice keeps its last value, as with `BTreeMap`.
impl<V> FromIterator<(String, V)> for FlagMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut entries = iter.into_iter().collect::<LiteMap<_, _>>().into_tuple_vec();
        // Collecting reserves room for at least four entries; most of these maps hold one.
        entries.shrink_to_fit();
        FlagMap(LiteMap::from_sorted_store_unchecked(entries))
    }
}

impl<V> From<BTreeMap<String, V>> for FlagMap<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        // Sized exactly, and each insert appends: the keys arrive sorted and distinct.
        let mut entries = LiteMap::with_capacity(map.len());
        for (k, v) in map {
            entries.insert(k, v);
        }
        FlagMap(entries)
    }
}

impl<V, Q: Ord + ?Sized> Index<&Q> for FlagMap<V>
where
    String: Borrow<Q>,
{
    type Output = V;

    /// Panics when `key` is absent, as `BTreeMap` indexing does.
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no entry found for key"),
        }
    }
}

/// Iterator over a [`FlagMap`]'s entries, in key order.
#[derive(Debug, Clone)]
pub struct FlagMapIter<'a, V>(std::slice::Iter<'a, (String, V)>);

impl<'a, V> Iterator for FlagMapIter<'a, V> {
    type Item = (&'a String, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> DoubleEndedIterator for FlagMapIter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<V> ExactSizeIterator for FlagMapIter<'_, V> {}

impl<V> std::iter::FusedIterator for FlagMapIter<'_, V> {}

impl<'a, V> IntoIterator for &'a FlagMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = FlagMapIter<'a, V>;

    fn into_iter(self) -> FlagMapIter<'a, V> {
        self.iter()
    }
}

/// As a map in key order, exactly as a `BTreeMap` serialises.
impl<V: Serialize> Serialize for FlagMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Through `BTreeMap`, so that what is accepted, duplicate keys (the last wins) and error messages are exactly
/// those of the map this replaced; LiteMap's own impl would also accept a list of pairs.
impl<'de, V: Deserialize<'de>> Deserialize<'de> for FlagMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, V>::deserialize(deserializer).map(FlagMap::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut m: FlagMap<u32> = [("b".to_owned(), 1), ("a".to_owned(), 2), ("b".to_owned(), 3)].into_iter().collect();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m["b"], 3);
        assert_eq!(m.insert("0".to_owned(), 4), None);
        assert_eq!(m.insert("a".to_owned(), 5), Some(2));
        assert_eq!(m.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("0", 4), ("a", 5), ("b", 3)]);
        assert!(m.contains_key("a") && !m.contains_key("c"));
        assert_eq!(format!("{m:?}"), r#"{"0": 4, "a": 5, "b": 3}"#);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"0":4,"a":5,"b":3}"#);
    }

    #[test]
    fn deserialises_as_a_btree_map_does() {
        let m: FlagMap<u32> = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(m, FlagMap::from(BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 3)])));
        assert_eq!(m.0.into_tuple_vec().capacity(), 2, "sized to its entries");
        for bad in [r#"[["a", 1]]"#, r#"{"a": "x"}"#, "1"] {
            let ours = serde_json::from_str::<FlagMap<u32>>(bad).unwrap_err().to_string();
            let btree = serde_json::from_str::<BTreeMap<String, u32>>(bad).unwrap_err().to_string();
            assert_eq!(ours, btree);
        }
    }
}
