//! Checks a document's shape (kind, fields, types) against the JSON Schema generated from the spec types.
//!
//! Walking the generated schema instead of restating every field keeps one source of truth: a field added to
//! the Rust types is known here and in `schema/` at once. Unlike serde, the walk reports every problem of a
//! document, each at its own position, with a "did you mean" for misspelt names.

use serde_json::{Map, Value as Json};

use super::model::is_numeric_text;
use super::yaml::{Entry, Node, Pos, Value};

/// A shape problem: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub pos: Pos,
    pub message: String,
    pub help: String,
}

pub(crate) struct Shape {
    schema: Json,
}

/// The kinds a document may have, with the fields that identify each when `kind` is missing.
const KINDS: [(&str, &[&str]); 8] = [
    ("Experiment", &["iteration", "environment", "environments", "state"]),
    ("LegacyFlagExperiments", &["flag", "baseline"]),
    ("Workspace", &["projects"]),
    ("Metric", &["eventKind", "eventKey", "isNumeric"]),
    ("MetricGroup", &["groupKind"]),
    ("ExperimentationSettings", &["randomizationUnits"]),
    ("Layer", &[]),
    ("Holdout", &["holdoutAmount"]),
];

/// The names of the kinds a document may have.
pub(crate) fn kinds() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|(k, _)| *k)
}

/// "`kind: Experiment`, `kind: LegacyFlagExperiments` or `kind: Workspace`", each kind after `prefix`.
fn kind_list(prefix: &str) -> String {
    one_of(kinds().map(|k| format!("`{prefix}{k}`")).collect())
}

impl Shape {
    pub(super) fn new() -> Self {
        Shape { schema: super::json_schema() }
    }

    fn defs(&self) -> Option<&Map<String, Json>> {
        self.schema.get("$defs").and_then(Json::as_object)
    }

    fn resolve<'s>(&'s self, mut s: &'s Json) -> &'s Json {
        for _ in 0..16 {
            let Some(name) = s.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix("#/$defs/")) else {
                break;
            };
            match self.defs().and_then(|d| d.get(name)) {
                Some(target) => s = target,
                None => break,
            }
        }
        s
    }

    /// Checks a document. Returns its kind when it names a known one, with every problem found.
    pub(super) fn check_document(&self, root: &Node) -> (Option<&'static str>, Vec<Finding>) {
        let mut out = Vec::new();
        let Value::Map(entries) = &root.value else {
            out.push(Finding {
                pos: root.pos,
                message: format!("a spec document must be a mapping, found {}", found(root)),
                help: format!("start the document with {}", kind_list("kind: ")),
            });
            return (None, out);
        };
        let Some(kind_entry) = entries.iter().find(|e| e.key == "kind") else {
            let misspelt: Vec<&Entry> = entries.iter().filter(|e| similar("kind", &e.key)).collect();
            if !misspelt.is_empty() {
                out.extend(misspelt.into_iter().map(|e| unknown_field(e, "the document", Some("kind"), &[])));
                return (None, out);
            }
            let guess = KINDS.iter().find(|(_, marks)| entries.iter().any(|e| marks.contains(&e.key.as_str())));
            out.push(match guess {
                Some((kind, _)) => Finding {
                    pos: root.pos,
                    message: format!("missing field `kind`, did you mean `kind: {kind}`?"),
                    help: format!("add `kind: {kind}` at the top of the document"),
                },
                None => Finding {
                    pos: root.pos,
                    message: "missing field `kind`".to_owned(),
                    help: format!("add {} at the top of the document", kind_list("kind: ")),
                },
            });
            return (None, out);
        };
        let Value::Str(kind) = &kind_entry.value.value else {
            out.push(Finding {
                pos: kind_entry.value.pos,
                message: format!("`kind` must be a string, found {}", found(&kind_entry.value)),
                help: format!("write {}", kind_list("kind: ")),
            });
            return (None, out);
        };
        let Some(known) = KINDS.iter().map(|(k, _)| *k).find(|k| k == kind) else {
            let names: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            out.push(Finding {
                pos: kind_entry.value.pos,
                message: match suggest(kind, &names) {
                    Some(s) => format!("unknown kind `{kind}`, did you mean `{s}`?"),
                    None => format!("unknown kind `{kind}`"),
                },
                help: format!("`kind` is {}", kind_list("")),
            });
            return (None, out);
        };
        let variant = self.schema.get("oneOf").and_then(Json::as_array).and_then(|alts| {
            alts.iter().find(|a| a.pointer("/properties/kind/const").and_then(Json::as_str) == Some(known))
        });
        if let Some(variant) = variant {
            self.check(variant, root, "", &mut out);
        }
        (Some(known), out)
    }

    fn check(&self, field: &Json, node: &Node, path: &str, out: &mut Vec<Finding>) {
        let schema = self.resolve(field);
        if let Some(alts) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Json::as_array) {
            self.check_alternatives(field, alts, node, path, out);
            return;
        }
        if let Some(c) = schema.get("const") {
            if !same_scalar(node, c) {
                out.push(Finding {
                    pos: node.pos,
                    message: format!("{} must be `{}`, found {}", name(path), display_json(c), found(node)),
                    help: format!("write `{}`", display_json(c)),
                });
            }
            return;
        }
        if !type_matches(schema, node) {
            out.push(self.wrong_type(field, node, path));
            return;
        }
        match &node.value {
            Value::Map(entries) => self.check_object(schema, node, entries, path, out),
            Value::Seq(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, n) in items.iter().enumerate() {
                        self.check(item, n, &format!("{path}[{i}]"), out);
                    }
                }
            }
            Value::Str(s) if schema.get("pattern").is_some() && !is_numeric_text(s) => {
                out.push(Finding {
                    pos: node.pos,
                    message: format!("{} must be a number, found the string `{s}`", name(path)),
                    help: "write a number such as `50` or `12.5`".to_owned(),
                });
            }
            _ => {}
        }
    }

    fn check_alternatives(&self, field: &Json, alts: &[Json], node: &Node, path: &str, out: &mut Vec<Finding>) {
        let mut flat = Vec::new();
        self.flatten(alts, &mut flat, 0);
        let alts = flat;
        let mut fitting = Vec::new();
        for alt in &alts {
            let mut trial = Vec::new();
            self.check(alt, node, path, &mut trial);
            if trial.is_empty() {
                return;
            }
            if shallow_fits(alt, node) {
                fitting.push(trial);
            }
        }
        let consts: Vec<&str> = alts.iter().filter_map(|a| a.get("const").and_then(Json::as_str)).collect();
        if !consts.is_empty() {
            let list = consts.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
            let text = match &node.value {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            };
            if let Some(t) = text.filter(|t| self.planned(field).contains(t)) {
                out.push(Finding {
                    pos: node.pos,
                    message: format!("{} `{t}` is not supported yet", name(path)),
                    help: format!("ldexp supports only {list} here so far: remove `{t}`"),
                });
                return;
            }
            let guess = text.and_then(|t| suggest(t, &consts));
            out.push(Finding {
                pos: node.pos,
                message: match guess {
                    Some(g) => {
                        format!("{} must be one of {list}, found {}, did you mean `{g}`?", name(path), found(node))
                    }
                    None => format!("{} must be one of {list}, found {}", name(path), found(node)),
                },
                help: match guess {
                    Some(g) => format!("write `{g}`"),
                    None => format!("use one of {list}"),
                },
            });
            return;
        }
        // Exactly one alternative has the right outer type: its own findings are the precise ones.
        if fitting.len() == 1 {
            out.extend(fitting.remove(0));
            return;
        }
        out.push(self.wrong_type(field, node, path));
    }

    /// Values an enum will take in a later version (`x-ldexp-planned` in the schema), for "not supported yet".
    fn planned<'s>(&'s self, field: &'s Json) -> Vec<&'s str> {
        let schema = self.resolve(field);
        let mut alts: Vec<&'s Json> = vec![schema];
        if let Some(inner) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Json::as_array) {
            alts.extend(inner.iter().map(|a| self.resolve(a)));
        }
        alts.iter()
            .filter_map(|a| a.get("x-ldexp-planned").and_then(Json::as_array))
            .flatten()
            .filter_map(Json::as_str)
            .collect()
    }

    /// The alternatives of nested `oneOf`/`anyOf` (an optional enum is `anyOf: [{$ref: Enum}, null]`) as one list.
    fn flatten<'s>(&'s self, alts: &'s [Json], out: &mut Vec<&'s Json>, depth: usize) {
        for a in alts {
            let a = self.resolve(a);
            match a.get("oneOf").or_else(|| a.get("anyOf")).and_then(Json::as_array) {
                Some(inner) if depth < 8 => self.flatten(inner, out, depth + 1),
                _ => out.push(a),
            }
        }
    }

    fn check_object(&self, schema: &Json, node: &Node, entries: &[Entry], path: &str, out: &mut Vec<Finding>) {
        let props = schema.get("properties").and_then(Json::as_object);
        let extra = schema.get("additionalProperties");
        let context = if path.is_empty() { "the document".to_owned() } else { format!("`{path}`") };
        // A misspelt required field is one mistake: "rename it" says all, so its "missing field" is not repeated.
        let mut renamed: Vec<&str> = Vec::new();
        for e in entries {
            let child = join(path, &e.key);
            match props.and_then(|p| p.get(&e.key)) {
                Some(s) => self.check(s, &e.value, &child, out),
                None => match extra {
                    Some(Json::Bool(false)) => {
                        let names: Vec<&str> =
                            props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        let names: Vec<&str> = names.into_iter().filter(|n| *n != "kind").collect();
                        let guess = suggest(&e.key, &names);
                        renamed.extend(guess);
                        out.push(unknown_field(e, &context, guess, &names));
                    }
                    Some(s @ Json::Object(_)) => self.check(s, &e.value, &child, out),
                    _ => {}
                },
            }
        }
        let required = schema.get("required").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default();
        for field in required.iter().filter_map(Json::as_str) {
            if entries.iter().any(|e| e.key == field) || renamed.contains(&field) {
                continue;
            }
            let about = props
                .and_then(|p| p.get(field))
                .map(|s| self.describe(s))
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            out.push(Finding {
                pos: node.pos,
                message: format!("missing field `{field}` in {context}"),
                help: format!("add `{field}:`{about}"),
            });
        }
    }

    /// The description of a field, else of the type it refers to.
    fn describe(&self, field: &Json) -> String {
        let d = describe(field);
        if d.is_empty() { describe(self.resolve(field)) } else { d }
    }

    fn wrong_type(&self, field: &Json, node: &Node, path: &str) -> Finding {
        let expected = self.expected(field);
        let help = match (&node.value, expected.starts_with("a string")) {
            (Value::Int(_) | Value::Float(_) | Value::Bool(_), true) => {
                format!("quote the value to make it a string: `\"{}\"`", scalar_text(node))
            }
            _ => {
                let d = self.describe(field);
                if d.is_empty() { format!("write {expected}") } else { format!("write {expected}: {d}") }
            }
        };
        Finding { pos: node.pos, message: format!("{} must be {expected}, found {}", name(path), found(node)), help }
    }

    /// "a string", "a number or a numeric string", … for a schema.
    fn expected(&self, schema: &Json) -> String {
        let schema = self.resolve(schema);
        let mut parts: Vec<String> = Vec::new();
        if let Some(alts) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Json::as_array) {
            for a in alts {
                let e = self.expected(a);
                if !e.is_empty() && !parts.contains(&e) {
                    parts.push(e);
                }
            }
            return one_of(parts);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        for t in types {
            let word = match t {
                "string" if schema.get("pattern").is_some() => "a numeric string",
                "string" => "a string",
                "number" => "a number",
                "integer" => "an integer",
                "boolean" => "`true` or `false`",
                "object" => "a mapping",
                "array" => "a list",
                _ => continue,
            };
            parts.push(word.to_owned());
        }
        one_of(parts)
    }
}

/// "a string", "a string or a mapping", "a string, a boolean or a number".
fn one_of(mut parts: Vec<String>) -> String {
    if parts.len() > 1 {
        for p in &mut parts {
            if p == "`true` or `false`" {
                *p = "a boolean".to_owned();
            }
        }
    }
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => parts.concat(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn name(path: &str) -> String {
    format!("`{path}`")
}

fn unknown_field(e: &Entry, context: &str, guess: Option<&str>, names: &[&str]) -> Finding {
    match guess {
        Some(g) => Finding {
            pos: e.key_pos,
            message: format!("unknown field `{}` in {context}, did you mean `{g}`?", e.key),
            help: format!("rename `{}` to `{g}`", e.key),
        },
        None => Finding {
            pos: e.key_pos,
            message: format!("unknown field `{}` in {context}", e.key),
            help: if names.is_empty() {
                "remove it".to_owned()
            } else {
                format!("remove it; the fields here are {}", names.join(", "))
            },
        },
    }
}

/// The schema's description as a clause: first letter lowercased, no final period.
fn describe(schema: &Json) -> String {
    let d = schema.get("description").and_then(Json::as_str).unwrap_or_default().replace('\n', " ");
    let d = d.trim().trim_end_matches('.');
    let mut chars = d.chars();
    match chars.next() {
        Some(c) if !d.starts_with('`') => c.to_lowercase().chain(chars).collect(),
        _ => d.to_owned(),
    }
}

fn type_matches(schema: &Json, node: &Node) -> bool {
    let types: Vec<&str> = match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => return true,
    };
    types.iter().any(|t| match (*t, &node.value) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("string", Value::Str(_)) => true,
        ("object", Value::Map(_)) | ("array", Value::Seq(_)) | ("integer", Value::Int(_)) => true,
        ("number", Value::Int(_)) => true,
        ("number", Value::Float(f)) => f.is_finite(),
        _ => false,
    })
}

/// Whether `node` has the outer type of `schema`, ignoring what is inside.
fn shallow_fits(schema: &Json, node: &Node) -> bool {
    schema.get("type").is_some() && type_matches(schema, node)
}

fn same_scalar(node: &Node, c: &Json) -> bool {
    match (&node.value, c) {
        (Value::Str(s), Json::String(t)) => s == t,
        (Value::Bool(b), Json::Bool(t)) => b == t,
        _ => false,
    }
}

fn display_json(c: &Json) -> String {
    match c {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn scalar_text(node: &Node) -> String {
    match &node.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

/// How a node reads in a message: "the number `5`", "a list", …
pub(crate) fn found(node: &Node) -> String {
    match &node.value {
        Value::Null => "an empty value".to_owned(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Int(i) => format!("the number `{i}`"),
        Value::Float(f) if f.is_finite() => format!("the number `{f}`"),
        Value::Float(f) => format!("the non-finite number `{f}`"),
        Value::Str(s) => format!("`{s}`"),
        Value::Seq(_) => "a list".to_owned(),
        Value::Map(_) => "a mapping".to_owned(),
    }
}

/// Whether `b` is plausibly a misspelling of `a`: the same letters up to case and separators, or a few edits
/// away (none for very short words, where any edit changes the word).
fn similar(a: &str, b: &str) -> bool {
    let flat = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
    let (fa, fb) = (flat(a), flat(b));
    let allowed = match fa.chars().count().min(fb.chars().count()) {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    };
    let prefix = |long: &str, short: &str| short.chars().count() >= 4 && long.starts_with(short);
    fa == fb
        || prefix(&fa, &fb)
        || prefix(&fb, &fa)
        || strsim::damerau_levenshtein(&a.to_lowercase(), &b.to_lowercase()) <= allowed
}

/// The closest of `candidates` to `word`, when one is close enough to be a likely misspelling.
pub(crate) fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .filter(|c| similar(c, word))
        .min_by_key(|c| strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_case_separators_and_typos_only() {
        let names = ["primaryMetric", "metrics", "flags", "treatments", "hypothesis"];
        assert_eq!(suggest("primary_metric", &names), Some("primaryMetric"));
        assert_eq!(suggest("metric", &names), Some("metrics"));
        assert_eq!(suggest("treatmens", &names), Some("treatments"));
        assert_eq!(suggest("owner", &names), None);
        assert_eq!(suggest("B", &["A", "C"]), None);
        assert_eq!(suggest("kidn", &["kind"]), Some("kind"));
        assert_eq!(suggest("bayes", &["bayesian", "frequentist", "export_only"]), Some("bayesian"));
        assert_eq!(suggest("Experimnet", &["Experiment", "LegacyFlagExperiments"]), Some("Experiment"));
    }
}
