//! `Percent`: every percentage ldexp handles (treatment allocations, analysis thresholds), from the spec to the
//! wire, with the one rule that writes it as text.
//!
//! A spec may write `50`, `"50"` or `50.0`; LaunchDarkly sends and takes the value as a string (contract quirk 3),
//! sometimes as a number. All of them are one `Percent`, compared by value, and written in one canonical form: the
//! shortest decimal that reads back as the same number, without a trailing `.0` (`"50"`, `"33.3"`). Specs write it
//! as a number ([`as_number`]); requests and plans as a string. The one exception is a value read from
//! LaunchDarkly in another spelling (`"50.0"`): it is written back as it was read, so a representation of what
//! LaunchDarkly sent (the fingerprint of a remote object) does not depend on how ldexp spells numbers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A finite percentage. Equal values are equal whatever their spelling; `-0` is `0`.
///
/// LaunchDarkly's own OpenAPI examples (served by `prism mock`) put text such as `"string"` where a number belongs;
/// such a value read from the wire is kept as text, shown as it is, and equal to no number, so it is never taken
/// for a design's allocation. Specs never hold one ([`as_number`] refuses it).
#[derive(Clone)]
pub struct Percent(Repr);

#[derive(Clone)]
enum Repr {
    Number {
        value: f64,
        /// The text LaunchDarkly sent, when it was not the canonical one.
        sent: Option<Box<str>>,
    },
    /// Text LaunchDarkly sent that is not a number.
    Text(Box<str>),
}

impl Percent {
    /// `None` when `v` is not finite.
    pub fn new(v: f64) -> Option<Self> {
        // Adding 0.0 turns -0.0 into 0.0, so equal values have equal bits and one spelling.
        v.is_finite().then_some(Percent(Repr::Number { value: v + 0.0, sent: None }))
    }

    /// The number; `None` for text LaunchDarkly sent that is not one.
    pub fn value(&self) -> Option<f64> {
        match &self.0 {
            Repr::Number { value, .. } => Some(*value),
            Repr::Text(_) => None,
        }
    }

    /// The same value, written the canonical way from now on (a design never keeps LaunchDarkly's spelling).
    pub fn canonical(&self) -> Self {
        match &self.0 {
            Repr::Number { value, .. } => Percent(Repr::Number { value: *value, sent: None }),
            Repr::Text(t) => Percent(Repr::Text(t.trim().into())),
        }
    }

    /// A numeric text as specs allow it: optional sign, digits, optional fraction (`-?[0-9]+(\.[0-9]+)?`),
    /// surrounding spaces ignored; no exponent, no `+`, no `.5`.
    pub fn parse_spec(text: &str) -> Option<Self> {
        let t = text.trim();
        let unsigned = t.strip_prefix('-').unwrap_or(t);
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
        let ok = match unsigned.split_once('.') {
            Some((int, frac)) => digits(int) && digits(frac),
            None => digits(unsigned),
        };
        ok.then(|| t.parse::<f64>().ok()).flatten().and_then(Self::new)
    }

    /// A numeric text as LaunchDarkly may send it: anything Rust reads as a finite number.
    pub fn parse_wire(text: &str) -> Option<Self> {
        text.trim().parse::<f64>().ok().and_then(Self::new)
    }
}

impl PartialEq for Percent {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Number { value: a, .. }, Repr::Number { value: b, .. }) => a == b,
            (Repr::Text(a), Repr::Text(b)) => a.trim() == b.trim(),
            _ => false,
        }
    }
}

// Never NaN: `new` refuses what is not finite.
impl Eq for Percent {}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Number { sent: Some(text), .. } => write!(f, "Percent({self}, sent {text:?})"),
            Repr::Number { sent: None, .. } => write!(f, "Percent({self})"),
            Repr::Text(t) => write!(f, "Percent(not a number: {t:?})"),
        }
    }
}

/// The canonical text: Rust's `Display` of the float, the shortest text that reads back as the same value, with
/// no exponent and no trailing `.0` (`50`, `33.3`); text that is not a number as it is.
impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Number { value, .. } => write!(f, "{value}"),
            Repr::Text(t) => f.write_str(t.trim()),
        }
    }
}

/// As the API writes it: a string (as it was read, when it came from LaunchDarkly in another spelling).
impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Number { sent: Some(text), .. } | Repr::Text(text) => s.serialize_str(text),
            Repr::Number { sent: None, .. } => s.collect_str(self),
        }
    }
}

/// A number or a numeric string, as LaunchDarkly may send either; other text is kept as text.
impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PercentVisitor { text: Percent::parse_wire, keep_text: true })
    }
}

struct PercentVisitor {
    text: fn(&str) -> Option<Percent>,
    /// Whether text that is not a number is kept (from the wire) or refused (in a spec).
    keep_text: bool,
}

impl Visitor<'_> for PercentVisitor {
    type Value = Percent;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a numeric string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
        // Percentages are small; an i64 beyond f64's exact range still reads as the nearest value.
        #[allow(clippy::cast_precision_loss)]
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
        #[allow(clippy::cast_precision_loss)]
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
        Percent::new(v).ok_or_else(|| E::custom("the number is not finite"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
        match (self.text)(v) {
            Some(Percent(Repr::Number { value, .. })) => {
                let canonical = format!("{value}");
                Ok(Percent(Repr::Number { value, sent: (canonical != v).then(|| v.into()) }))
            }
            _ if self.keep_text => Ok(Percent(Repr::Text(v.into()))),
            _ => Err(E::custom(format!("`{v}` is not a number"))),
        }
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A percentage as the API writes it: a decimal string such as \"50\" or \"33.3\".",
            "type": "string",
            "pattern": r"^-?[0-9]+(\.[0-9]+)?$"
        })
    }
}

/// The spec form: written as a YAML number, read from a number or a numeric string (`50`, `"50"`, `"12.5"`), with
/// the stricter text rule of [`Percent::parse_spec`]. For `#[serde(with = "…")]` on spec fields.
pub mod as_number {
    use super::{Percent, PercentVisitor};
    use serde::{Deserializer, Serializer};

    /// Writes the number.
    pub fn serialize<S: Serializer>(p: &Percent, s: S) -> Result<S::Ok, S::Error> {
        match p.value() {
            Some(v) => s.serialize_f64(v),
            None => s.collect_str(p),
        }
    }

    /// Reads a number or a numeric string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Percent, D::Error> {
        d.deserialize_any(PercentVisitor { text: Percent::parse_spec, keep_text: false }).map(|p| p.canonical())
    }

    /// The same for an optional field (with `#[serde(default)]`).
    pub mod option {
        use super::super::Percent;
        use serde::{Deserializer, Serializer};

        /// Writes the number, or nothing.
        #[allow(clippy::ref_option)] // serde's `with` passes the field by reference.
        pub fn serialize<S: Serializer>(p: &Option<Percent>, s: S) -> Result<S::Ok, S::Error> {
            match p {
                Some(p) => super::serialize(p, s),
                None => s.serialize_none(),
            }
        }

        /// Reads a number, a numeric string or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Percent>, D::Error> {
            struct Opt;
            impl<'de> serde::de::Visitor<'de> for Opt {
                type Value = Option<Percent>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a number, a numeric string or null")
                }
                fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                    Ok(None)
                }
                fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                    Ok(None)
                }
                fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                    super::deserialize(d).map(Some)
                }
            }
            d.deserialize_option(Opt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_value_is_one_percent_with_one_text() {
        for (input, text) in [("50", "50"), ("50.0", "50"), (" 50 ", "50"), ("33.30", "33.3"), ("0", "0"), ("-0", "0")]
        {
            let p = Percent::parse_spec(input).unwrap();
            assert_eq!(p.to_string(), text, "{input}");
            assert_eq!(p, Percent::parse_wire(input).unwrap());
        }
        assert_eq!(Percent::new(12.5).unwrap().to_string(), "12.5");
        assert_eq!(Percent::new(1e20).unwrap().to_string(), "100000000000000000000");
        assert_eq!(Percent::new(0.1 + 0.2).unwrap().to_string(), "0.30000000000000004");
        assert!(Percent::new(f64::NAN).is_none());
        assert!(Percent::new(f64::INFINITY).is_none());
    }

    #[test]
    fn specs_are_stricter_than_the_wire() {
        for bad in ["", "fifty", "5e1", "+5", ".5", "5.", "1,5"] {
            assert!(Percent::parse_spec(bad).is_none(), "{bad}");
        }
        assert_eq!(Percent::parse_wire("5e1"), Percent::new(50.0));
        assert!(Percent::parse_wire("fifty").is_none());
    }

    #[test]
    fn a_value_read_in_another_spelling_is_written_back_as_read_until_made_canonical() {
        let p: Percent = serde_json::from_value(serde_json::json!(" 50.0 ")).unwrap();
        assert_eq!(p, Percent::new(50.0).unwrap());
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!(" 50.0 "));
        assert_eq!(serde_json::to_value(p.canonical()).unwrap(), serde_json::json!("50"));
    }

    #[test]
    fn text_from_the_wire_that_is_no_number_is_kept_and_equals_no_number() {
        let p: Percent = serde_json::from_value(serde_json::json!("string")).unwrap();
        assert_eq!(p.value(), None);
        assert_eq!(p.to_string(), "string");
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!("string"));
        assert_ne!(p, Percent::new(0.0).unwrap());
        // A spec refuses it.
        let e = as_number::deserialize(serde_json::json!("fifty")).unwrap_err();
        assert_eq!(e.to_string(), "`fifty` is not a number");
    }

    #[test]
    fn the_wire_form_is_a_string_and_reads_numbers_too() {
        let p: Percent = serde_json::from_value(serde_json::json!(50)).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!("50"));
        let p: Percent = serde_json::from_value(serde_json::json!("33.3")).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!("33.3"));
    }

    proptest::proptest! {
        /// The canonical text reads back as the same value: one spelling per value, and no value lost.
        #[test]
        fn the_text_round_trips(v in -1.0e6f64..1.0e6) {
            let p = Percent::new(v).unwrap();
            proptest::prop_assert_eq!(Percent::parse_wire(&p.to_string()), Some(p.clone()));
        }
    }
}
