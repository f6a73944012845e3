//! Resolving the human references of a spec (variations, rules, the legacy baseline) against a fetched flag.

use std::borrow::Cow;
use std::cell::OnceCell;

use ldexp_core::api::{FeatureFlag, FlagEnvironment, Variation};
use ldexp_core::spec::{FlagSpec, VariationRef};
use serde_json::Value;

/// Why a reference did not resolve: a message and a hint listing what would have matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub message: String,
    pub hint: Option<String>,
}

/// A resolution tier: its name for messages and what it matches.
type Tier<'a> = (&'static str, &'a dyn Fn(&Variation) -> bool);

/// The index of the variation of `flag` that `r` names: by `name`, else by `value`, else by `_id`.
/// A tier with several matches is ambiguous rather than falling through, since guessing would pick silently.
pub(crate) fn variation_index(flag: &FeatureFlag, r: &VariationRef) -> Result<usize, Unresolved> {
    let text: Cow<'_, str> = match r {
        VariationRef::Text(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    };
    // Built once per reference and only when the name tier found nothing: most references are names.
    let wanted = OnceCell::new();
    let by_name = |v: &Variation| v.name.as_deref() == Some(&*text);
    let by_value = |v: &Variation| value_matches(&v.value, wanted.get_or_init(|| wanted_value(r)));
    let by_id = |v: &Variation| v.id.as_deref() == Some(&*text);
    let tiers: [Tier<'_>; 3] = [("name", &by_name), ("value", &by_value), ("_id", &by_id)];
    for (tier, matches) in tiers {
        let mut found = flag.variations.iter().enumerate().filter(|(_, v)| matches(v)).map(|(i, _)| i);
        let Some(one) = found.next() else { continue };
        if found.next().is_none() {
            return Ok(one);
        }
        let many: Vec<usize> = flag.variations.iter().enumerate().filter(|(_, v)| matches(v)).map(|(i, _)| i).collect();
        return Err(Unresolved {
            message: format!(
                "`{text}` is ambiguous: it matches {} variations of flag `{}` by {tier}",
                many.len(),
                flag.key
            ),
            hint: Some(format!(
                "name the variation by its _id instead; candidates: {}",
                candidates(many.iter().filter_map(|i| flag.variations.get(*i)))
            )),
        });
    }
    Err(Unresolved {
        message: format!("flag `{}` has no variation with name, value or _id `{text}`", flag.key),
        hint: Some(format!("candidates: {}", candidates(flag.variations.iter()))),
    })
}

/// The `_id` of the variation `r` names.
pub(crate) fn variation_id(flag: &FeatureFlag, r: &VariationRef) -> Result<String, Unresolved> {
    let i = variation_index(flag, r)?;
    flag.variations.get(i).and_then(|v| v.id.clone()).ok_or_else(|| Unresolved {
        message: format!("variation {i} of flag `{}` has no _id in LaunchDarkly's answer", flag.key),
        hint: None,
    })
}

/// The legacy baseline: a variation by name or value, else by index.
pub(crate) fn legacy_baseline(flag: &FeatureFlag, r: &VariationRef) -> Result<usize, Unresolved> {
    match variation_index(flag, r) {
        Ok(i) => Ok(i),
        Err(e) => match r {
            VariationRef::Number(n) => {
                n.as_u64().and_then(|i| usize::try_from(i).ok()).filter(|i| *i < flag.variations.len()).ok_or(e)
            }
            _ => Err(e),
        },
    }
}

/// What a reference compares against, for a string variation value and for any other one: a text reference
/// also names a non-string scalar written the same way (`"42"` names the value `42`).
struct Wanted {
    json: Value,
    parsed: Option<Value>,
}

fn wanted_value(r: &VariationRef) -> Wanted {
    let json = r.to_json();
    let parsed = match &json {
        Value::String(s) => Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))),
        _ => None,
    };
    Wanted { json, parsed }
}

/// Whether a variation value equals the reference: JSON equality, numbers compared numerically.
fn value_matches(value: &Value, w: &Wanted) -> bool {
    let wanted = match &w.parsed {
        Some(p) if !value.is_string() => p,
        _ => &w.json,
    };
    match (value, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
        _ => value == wanted,
    }
}

fn candidates<'a>(vs: impl Iterator<Item = &'a Variation>) -> String {
    let all: Vec<String> = vs
        .map(|v| {
            let mut parts = Vec::new();
            if let Some(n) = &v.name {
                parts.push(format!("name `{n}`"));
            }
            parts.push(format!("value {}", v.value));
            if let Some(id) = &v.id {
                parts.push(format!("_id `{id}`"));
            }
            parts.join(", ")
        })
        .collect();
    if all.is_empty() { "none (the flag has no variations)".to_owned() } else { all.join("; ") }
}

/// The `ruleId` a flag spec names in one environment: `fallthrough`, a rule `_id`, or the rule whose
/// description is `rule`.
pub(crate) fn rule_id(
    flag_key: &str,
    env_key: &str,
    env: &FlagEnvironment,
    spec: &FlagSpec,
) -> Result<String, Unresolved> {
    let listed = || {
        let rules: Vec<String> = env
            .rules
            .iter()
            .map(|r| {
                format!("`{}` (ruleId `{}`)", r.description.as_deref().unwrap_or(""), r.id.as_deref().unwrap_or("?"))
            })
            .collect();
        let mut s = "`fallthrough`".to_owned();
        for r in rules {
            s.push_str(", ");
            s.push_str(&r);
        }
        format!("candidates: {s}")
    };
    if let Some(id) = &spec.rule_id {
        if id == "fallthrough" || env.rules.iter().any(|r| r.id.as_deref() == Some(id.as_str())) {
            return Ok(id.clone());
        }
        return Err(Unresolved {
            message: format!("flag `{flag_key}` has no rule with ruleId `{id}` in environment `{env_key}`"),
            hint: Some(listed()),
        });
    }
    let Some(desc) = &spec.rule else { return Ok("fallthrough".to_owned()) };
    if desc == "fallthrough" {
        return Ok("fallthrough".to_owned());
    }
    let found: Vec<&str> = env
        .rules
        .iter()
        .filter(|r| r.description.as_deref() == Some(desc.as_str()))
        .filter_map(|r| r.id.as_deref())
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Unresolved {
            message: format!("flag `{flag_key}` has no rule described `{desc}` in environment `{env_key}`"),
            hint: Some(listed()),
        }),
        many => Err(Unresolved {
            message: format!(
                "`{desc}` is ambiguous: {} rules of flag `{flag_key}` in environment `{env_key}` have that description",
                many.len()
            ),
            hint: Some(format!("use `ruleId` instead; {}", listed())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldexp_core::api::Rule;
    use serde_json::json;

    fn flag() -> FeatureFlag {
        serde_json::from_value(json!({
            "key": "btn",
            "variations": [
                {"_id": "v0", "value": "blue", "name": "Control"},
                {"_id": "v1", "value": "green", "name": "Treatment"},
                {"_id": "v2", "value": 3},
                {"_id": "v3", "value": true, "name": "blue"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn variations_resolve_by_name_then_value_then_id() {
        let f = flag();
        assert_eq!(variation_id(&f, &VariationRef::Text("Treatment".into())).unwrap(), "v1");
        // "blue" is the name of v3 and the value of v0: the name wins.
        assert_eq!(variation_id(&f, &VariationRef::Text("blue".into())).unwrap(), "v3");
        assert_eq!(variation_id(&f, &VariationRef::Text("green".into())).unwrap(), "v1");
        assert_eq!(variation_id(&f, &VariationRef::Number(3.into())).unwrap(), "v2");
        assert_eq!(variation_id(&f, &VariationRef::Text("3".into())).unwrap(), "v2");
        assert_eq!(variation_id(&f, &VariationRef::Bool(true)).unwrap(), "v3");
        assert_eq!(variation_id(&f, &VariationRef::Text("v0".into())).unwrap(), "v0");
    }

    #[test]
    fn missing_and_ambiguous_variations_list_candidates() {
        let f = flag();
        let e = variation_id(&f, &VariationRef::Text("purple".into())).unwrap_err();
        assert_eq!(e.message, "flag `btn` has no variation with name, value or _id `purple`");
        assert_eq!(
            e.hint.unwrap(),
            "candidates: name `Control`, value \"blue\", _id `v0`; name `Treatment`, value \"green\", _id `v1`; \
             value 3, _id `v2`; name `blue`, value true, _id `v3`"
        );
        let mut f2 = flag();
        f2.variations[1].name = Some("Control".into());
        let e = variation_id(&f2, &VariationRef::Text("Control".into())).unwrap_err();
        assert_eq!(e.message, "`Control` is ambiguous: it matches 2 variations of flag `btn` by name");
    }

    #[test]
    fn legacy_baseline_falls_back_to_an_index() {
        let f = flag();
        assert_eq!(legacy_baseline(&f, &VariationRef::Text("Treatment".into())).unwrap(), 1);
        assert_eq!(legacy_baseline(&f, &VariationRef::Number(1.into())).unwrap(), 1);
        assert!(legacy_baseline(&f, &VariationRef::Number(9.into())).is_err());
    }

    #[test]
    fn rules_resolve_by_fallthrough_description_or_id() {
        let env = FlagEnvironment {
            rules: vec![
                Rule { id: Some("r1".into()), description: Some("beta users".into()), ..Rule::default() },
                Rule { id: Some("r2".into()), description: Some("dupe".into()), ..Rule::default() },
                Rule { id: Some("r3".into()), description: Some("dupe".into()), ..Rule::default() },
            ],
            ..FlagEnvironment::default()
        };
        let spec = |rule: Option<&str>, id: Option<&str>| FlagSpec {
            rule: rule.map(str::to_owned),
            rule_id: id.map(str::to_owned),
            not_in_experiment_variation: None,
        };
        assert_eq!(rule_id("f", "p", &env, &spec(None, None)).unwrap(), "fallthrough");
        assert_eq!(rule_id("f", "p", &env, &spec(Some("fallthrough"), None)).unwrap(), "fallthrough");
        assert_eq!(rule_id("f", "p", &env, &spec(Some("beta users"), None)).unwrap(), "r1");
        assert_eq!(rule_id("f", "p", &env, &spec(None, Some("r2"))).unwrap(), "r2");
        let e = rule_id("f", "p", &env, &spec(Some("dupe"), None)).unwrap_err();
        assert_eq!(e.message, "`dupe` is ambiguous: 2 rules of flag `f` in environment `p` have that description");
        let e = rule_id("f", "p", &env, &spec(Some("nope"), None)).unwrap_err();
        assert_eq!(
            e.hint.unwrap(),
            "candidates: `fallthrough`, `beta users` (ruleId `r1`), `dupe` (ruleId `r2`), `dupe` (ruleId `r3`)"
        );
    }
}
