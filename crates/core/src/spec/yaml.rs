//! Reads YAML text into trees of positioned nodes, one per document, using yaml-rust2's event parser.
//!
//! serde_yaml would lose the position of every value once deserialised, and the planner needs `file:line:col`
//! of any field, so the tree is built here from marked events. Scalars are resolved with the YAML 1.2 core
//! schema. Aliases are expanded with a node budget and nesting is capped, so hostile input cannot exhaust memory
//! or the stack.

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Past this many nodes (aliases included) a file is rejected: alias bombs expand exponentially.
const MAX_NODES: usize = 100_000;
/// Past this depth a file is rejected: every later stage walks the tree recursively.
const MAX_DEPTH: usize = 128;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(m: Marker) -> Self {
        Pos { line: m.line().max(1), column: m.col() + 1 }
    }
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A resolved YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping; keys are kept as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    /// The value of `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|e| 1 + e.value.count()).sum(),
            _ => 0,
        }
    }

    /// The node as JSON, for deserialising into the spec types once its shape has been checked.
    /// Non-finite floats have no JSON form and become `null`; the shape check rejects them before this.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }
}

/// One YAML document: its root node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    pub root: Node,
}

/// A problem found while reading YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
    pub help: String,
}

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node> },
    Map { pos: Option<Pos>, start: Pos, anchor: usize, entries: Vec<Entry>, key: Option<Key> },
}

/// A pending mapping key; `None` text means a key that is not a scalar and whose entry is dropped.
struct Key {
    text: Option<String>,
    pos: Pos,
}

struct Builder {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node, usize)>,
    nodes: usize,
    docs: Vec<Document>,
    problems: Vec<Problem>,
}

/// Parses every document of `text`. Documents before a syntax error are returned along with the error; empty
/// documents (only comments, or a bare `---`) are skipped.
pub(crate) fn parse(text: &str) -> (Vec<Document>, Vec<Problem>) {
    let mut b = Builder { stack: Vec::new(), anchors: Vec::new(), nodes: 0, docs: Vec::new(), problems: Vec::new() };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, mark)) => {
                if let Err(p) = b.event(event, mark) {
                    b.problems.push(p);
                    break;
                }
            }
            Err(e) => {
                b.problems.push(syntax_problem(Pos::of(*e.marker()), e.info()));
                break;
            }
        }
    }
    (b.docs, b.problems)
}

fn syntax_problem(pos: Pos, info: &str) -> Problem {
    let help = if info.contains("recursion limit") {
        "a spec is a few levels deep; check for runaway `[` or `{`"
    } else if info.contains("cannot start any token") {
        "YAML indentation uses spaces, never tabs; also check for a stray `@`, `` ` `` or `%` at the start of a value \
         (quote such values)"
    } else if info.contains("tabs disallowed") {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else if info.contains("illegal placement of ':'") {
        "an earlier `[` or `{` may be unclosed; a value that contains `: ` must be quoted"
    } else if info.contains("mapping values are not allowed") {
        "a value that contains `: ` must be quoted, or the line is indented wrongly"
    } else if info.contains("did not find expected") || info.contains("while parsing") {
        "check the indentation, and that every `[`, `{` and quote is closed"
    } else {
        "fix the YAML syntax at this position"
    };
    Problem { pos, message: format!("invalid YAML: {info}"), help: help.to_owned() }
}

fn is_str_tag(tag: &Option<Tag>) -> bool {
    tag.as_ref().is_some_and(|t| t.suffix == "str" && (t.handle == "!!" || t.handle == "tag:yaml.org,2002:"))
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x")
        && !hex.is_empty()
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return i64::from_str_radix(hex, 16).map_or_else(|_| Value::Str(s.to_owned()), Value::Int);
    }
    if let Some(oct) = s.strip_prefix("0o")
        && !oct.is_empty()
        && oct.bytes().all(|c| (b'0'..=b'7').contains(&c))
    {
        return i64::from_str_radix(oct, 8).map_or_else(|_| Value::Str(s.to_owned()), Value::Int);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        return match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => s.parse::<f64>().map_or_else(|_| Value::Str(s.to_owned()), Value::Float),
        };
    }
    if is_core_float(digits)
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the unsigned float of the core schema.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            int.bytes().all(|c| c.is_ascii_digit())
                && frac.bytes().all(|c| c.is_ascii_digit())
                && (!int.is_empty() || !frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

impl Builder {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), Problem> {
        let pos = Pos::of(mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                // A mapping waiting for a key takes the scalar as written, whatever it would resolve to.
                if let Some(Frame::Map { key: key @ None, pos: map_pos, .. }) = self.stack.last_mut() {
                    map_pos.get_or_insert(pos);
                    *key = Some(Key { text: Some(text), pos });
                    return Ok(());
                }
                let value = if style == TScalarStyle::Plain && !is_str_tag(&tag) {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                let empty = matches!(value, Value::Null) && style == TScalarStyle::Plain;
                self.complete(Node { value, pos }, anchor, empty)
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq { pos, anchor, items: Vec::new() }, pos),
            Event::MappingStart(anchor, _) => {
                self.open(Frame::Map { pos: None, start: pos, anchor, entries: Vec::new(), key: None }, pos)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (Node { value: Value::Seq(items), pos }, anchor),
                    Some(Frame::Map { pos, start, anchor, entries, .. }) => {
                        (Node { value: Value::Map(entries), pos: pos.unwrap_or(start) }, anchor)
                    }
                    None => return Ok(()),
                };
                self.complete(node, anchor, false)
            }
            Event::Alias(id) => {
                let Some((_, node, count)) = self.anchors.iter().rev().find(|(a, _, _)| *a == id) else {
                    return Err(Problem {
                        pos,
                        message: "invalid YAML: alias to an unknown anchor".to_owned(),
                        help: "define the anchor (`&name`) before using it (`*name`)".to_owned(),
                    });
                };
                let (mut node, count) = (node.clone(), *count);
                self.budget(count, pos)?;
                node.pos = pos;
                self.complete(node, 0, false)
            }
            Event::DocumentStart | Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {
                Ok(())
            }
        }
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), Problem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Problem {
                pos,
                message: format!("invalid spec: nested more than {MAX_DEPTH} levels deep"),
                help: "a spec is a few levels deep; check for runaway `[` or `{`".to_owned(),
            });
        }
        if let Some(Frame::Map { key: None, pos: map_pos, .. }) = self.stack.last_mut() {
            map_pos.get_or_insert(pos);
        }
        self.stack.push(frame);
        Ok(())
    }

    fn budget(&mut self, n: usize, pos: Pos) -> Result<(), Problem> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Problem {
                pos,
                message: format!("invalid spec: more than {MAX_NODES} values once aliases are expanded"),
                help: "avoid aliases that repeat large parts of the document".to_owned(),
            });
        }
        Ok(())
    }

    fn complete(&mut self, mut node: Node, anchor: usize, empty_scalar: bool) -> Result<(), Problem> {
        if anchor != 0 || !matches!(node.value, Value::Seq(_) | Value::Map(_)) {
            self.budget(1, node.pos)?;
        }
        if anchor != 0 {
            let count = node.count();
            self.anchors.push((anchor, node.clone(), count));
        }
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.docs.push(Document { root: node });
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { key, entries, .. }) => match key.take() {
                None => {
                    // A collection used as a key: keep its entry out of the tree.
                    *key = Some(Key { text: None, pos: node.pos });
                    self.problems.push(Problem {
                        pos: node.pos,
                        message: "invalid spec: a mapping key must be a plain string".to_owned(),
                        help: "write keys as `name: value`".to_owned(),
                    });
                }
                Some(Key { text: None, .. }) => {}
                Some(Key { text: Some(text), pos: key_pos }) => {
                    // An empty value is reported at its key: yaml-rust2 marks it at the next token.
                    if empty_scalar {
                        node.pos = key_pos;
                    }
                    if let Some(first) = entries.iter().find(|e| e.key == text) {
                        self.problems.push(Problem {
                            pos: key_pos,
                            message: format!(
                                "`{text}` is given twice in the same mapping (first at line {}, column {})",
                                first.key_pos.line, first.key_pos.column
                            ),
                            help: format!("keep one `{text}`"),
                        });
                    } else {
                        entries.push(Entry { key: text, key_pos, value: node });
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let (mut docs, problems) = parse(text);
        assert_eq!(problems, []);
        docs.remove(0).root
    }

    #[test]
    fn scalars_resolve_with_the_core_schema() {
        let r = root("a: 1\nb: -2.5\nc: true\nd: ~\ne: '1'\nf: 1e3\ng: x1\nh: .inf\ni: 0x1f\nj: !!str 7\nk: 1.2.3\n");
        let v: Vec<_> = match r.value {
            Value::Map(es) => es.into_iter().map(|e| e.value.value).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            v[..7],
            [
                Value::Int(1),
                Value::Float(-2.5),
                Value::Bool(true),
                Value::Null,
                Value::Str("1".into()),
                Value::Float(1000.0),
                Value::Str("x1".into())
            ]
        );
        assert_eq!(v[7], Value::Float(f64::INFINITY));
        assert_eq!(v[8], Value::Int(31));
        assert_eq!(v[9], Value::Str("7".into()));
        assert_eq!(v[10], Value::Str("1.2.3".into()));
    }

    #[test]
    fn positions_are_one_based_and_empty_values_sit_at_their_key() {
        let r = root("top:\n  list:\n    - x\n  empty:\n  n: 3\n");
        let top = r.get("top").unwrap();
        assert_eq!(top.key_pos, Pos { line: 1, column: 1 });
        assert_eq!(top.value.pos, Pos { line: 2, column: 3 });
        let list = top.value.get("list").unwrap();
        assert_eq!(list.value.pos, Pos { line: 3, column: 5 });
        let Value::Seq(items) = &list.value.value else { unreachable!() };
        assert_eq!(items[0].pos, Pos { line: 3, column: 7 });
        assert_eq!(top.value.get("empty").unwrap().value.pos, Pos { line: 4, column: 3 });
        assert_eq!(top.value.get("n").unwrap().value.pos, Pos { line: 5, column: 6 });
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_problems() {
        let (docs, problems) = parse("a: 1\na: 2\n---\nb: [1\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(problems[0].message, "`a` is given twice in the same mapping (first at line 1, column 1)");
        assert_eq!(problems[0].pos, Pos { line: 2, column: 1 });
        assert!(problems[1].message.starts_with("invalid YAML: "), "{:?}", problems[1]);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [{}]\n",
                vec![if i == 0 { "*a".to_owned() } else { format!("*b{}", i - 1) }; 10].join(", ")
            ));
        }
        let (_, problems) = parse(&bomb);
        assert!(problems[0].message.contains("aliases are expanded"), "{problems:?}");
        let (_, problems) = parse(&"[".repeat(200));
        assert_eq!(problems[0].message, "invalid spec: nested more than 128 levels deep");
        // yaml-rust2 has its own, higher limit, which also holds for deeper input.
        let (_, problems) = parse(&"[".repeat(100_000));
        assert_eq!(problems[0].message, "invalid YAML: recursion limit exceeded");
    }
}
