//! `JsonText`: a JSON value that is kept much more often than it is read, held as its compact text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value stored as compact text.
///
/// A plan keeps each change's design before and after for reviewers and tools, and a fetched flag keeps its whole
/// JSON for the few legacy patches checked against it. As `Value` trees those cost several times their text (a
/// B-tree node per object, about 10 KB per change); as text they are a few hundred bytes and are freed in one
/// pass. It serializes as the value itself, so a plan file is unchanged, pretty-printed or not (keys sorted, as
/// `serde_json::Value` writes them).
///
/// The text itself is not canonical: [`JsonText::of`] a struct keeps its field order, which is cheaper than
/// building a `Value` first. Equality is therefore equality of the values.
/// Shared (`Arc`): a change whose design does not move holds the same text as `before` and `after`.
#[derive(Clone, Default)]
pub struct JsonText(std::sync::Arc<str>);

impl schemars::JsonSchema for JsonText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"description": "Any JSON value, written as it is."})
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.value() == other.value()
    }
}

impl Eq for JsonText {}

impl JsonText {
    /// The text of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|s| JsonText(s.into()))
    }

    /// The value, parsed again.
    pub fn value(&self) -> Value {
        // Written by serde_json from a value, or read from one, so the text always parses.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Value> for JsonText {
    fn from(v: &Value) -> Self {
        JsonText(v.to_string().into())
    }
}

impl From<Value> for JsonText {
    fn from(v: Value) -> Self {
        JsonText::from(&v)
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Through a `Value`, not as raw text, so that a pretty-printed plan prints this part pretty too.
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(JsonText::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_through_plan_json_as_the_value_itself() {
        let v = json!({"b": [1, 2.5, "x", null], "a": {"z": true, "y": {}}});
        let t = JsonText::from(&v);
        assert_eq!(t.as_str(), r#"{"a":{"y":{},"z":true},"b":[1,2.5,"x",null]}"#);
        assert_eq!(t.value(), v);
        assert_eq!(serde_json::to_string_pretty(&t).unwrap(), serde_json::to_string_pretty(&v).unwrap());
        let back: JsonText =
            serde_json::from_str("{ \"b\": [1, 2.5, \"x\", null],\n \"a\": {\"z\": true, \"y\": {}} }").unwrap();
        assert_eq!(back, t, "equal values read from differently written text are equal");
        assert_eq!(JsonText::of(&v).unwrap(), t);

        #[derive(Serialize)]
        struct Fields {
            z: u8,
            a: u8,
        }
        let s = JsonText::of(&Fields { z: 1, a: 2 }).unwrap();
        assert_eq!(s.as_str(), r#"{"z":1,"a":2}"#, "field order, not sorted");
        assert_eq!(s, JsonText::from(json!({"a": 2, "z": 1})), "yet equal to the same value written sorted");
        assert_ne!(s, JsonText::from(json!({"a": 2, "z": 2})));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"a":2,"z":1}"#, "and written out sorted");
        assert_eq!(format!("{t:?}"), t.as_str());
    }
}
