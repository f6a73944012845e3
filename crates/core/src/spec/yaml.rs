//! Reads YAML text into trees of positioned nodes, one per document, using yaml-rust2's event parser.
//!
//! serde_yaml would lose the position of every value once deserialised, and the planner needs `file:line:col`
//! of any field, so the tree is built here from marked events. Scalars are resolved with the YAML 1.2 core
//! schema, plus YAML 1.1 merge keys (`<<`). What aliases expand to is capped and nesting is capped, so hostile
//! input cannot exhaust memory or the stack; text written out in full is not capped, however large.

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Aliases may copy this many values in a file, or [`EXPANSION_PER_WRITTEN`] times as many as the file has written
/// out before the alias if that is more. Only expansion is capped: an alias bomb ("billion laughs") grows
/// exponentially through nested aliases while its text stays tiny, whereas a file written out in full costs memory
/// in proportion to its size like any other input, so a large generated spec file loads whatever its size.
pub(crate) const MAX_EXPANSION: usize = 100_000;
/// How many copied values each written value allows: a large file that merges a shared block into every
/// experiment copies several values per value it writes, and is still bounded by its own size.
pub(crate) const EXPANSION_PER_WRITTEN: usize = 10;
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
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
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
    pub(crate) fn to_json(&self) -> serde_json::Value {
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
    /// A merge key in it had a value that is not mappings: some mapping lacks what it meant to merge, so checking
    /// the document further would only report those fields as missing.
    pub merge_failed: bool,
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
    Map(MapFrame),
}

/// A mapping being built.
struct MapFrame {
    /// Where its first key starts, once known: a block mapping's start event is marked at its first key anyway,
    /// but a flow mapping's at the `{`.
    pos: Option<Pos>,
    start: Pos,
    anchor: usize,
    entries: Vec<Entry>,
    key: Option<Key>,
    /// Where the first `<<` is, and the mappings it merges in, in order of precedence.
    merge_at: Option<Pos>,
    merges: Vec<Node>,
    /// Key → index into `entries`, built once the mapping has `INDEX_FROM` entries.
    index: Option<std::collections::HashMap<String, usize>>,
}

impl MapFrame {
    fn new(start: Pos, anchor: usize) -> Self {
        MapFrame {
            pos: None,
            start,
            anchor,
            entries: Vec::new(),
            key: None,
            merge_at: None,
            merges: Vec::new(),
            index: None,
        }
    }

    fn find(&self, key: &str) -> Option<&Entry> {
        match &self.index {
            Some(index) => index.get(key).and_then(|&i| self.entries.get(i)),
            None => self.entries.iter().find(|e| e.key == key),
        }
    }

    fn push(&mut self, entry: Entry) {
        if let Some(index) = &mut self.index {
            index.insert(entry.key.clone(), self.entries.len());
        } else if self.entries.len() + 1 >= INDEX_FROM {
            let index = self.entries.iter().chain([&entry]).enumerate().map(|(i, e)| (e.key.clone(), i)).collect();
            self.index = Some(index);
        }
        self.entries.push(entry);
    }

    /// The mapping with its merged entries: YAML 1.1 merge semantics, where a key written in the mapping itself
    /// overrides a merged one, and of the merged mappings an earlier one overrides a later one.
    fn finish(mut self) -> (Node, usize) {
        for source in std::mem::take(&mut self.merges) {
            if let Value::Map(entries) = source.value {
                for e in entries {
                    if self.find(&e.key).is_none() {
                        self.push(e);
                    }
                }
            }
        }
        (Node { value: Value::Map(self.entries), pos: self.pos.unwrap_or(self.start) }, self.anchor)
    }
}

/// A pending mapping key; `None` text means a key that is not a scalar and whose entry is dropped.
struct Key {
    text: Option<String>,
    pos: Pos,
    /// A plain, untagged `<<`: a merge key rather than a field called `<<`.
    merge: bool,
}

/// Past this many entries a mapping indexes its keys, so that duplicate detection stays linear in a huge mapping;
/// below it a scan is cheaper than building the index.
const INDEX_FROM: usize = 32;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node, usize)>,
    /// Nodes built from the text itself (scalars, keys, collections).
    written: usize,
    /// Nodes copied by expanding aliases.
    expanded: usize,
    /// Whether a merge key of the current document failed.
    merge_failed: bool,
    docs: Vec<Document>,
    problems: Vec<Problem>,
}

/// Parses every document of `text`. Documents before a syntax error are returned along with the error; empty
/// documents (only comments, or a bare `---`) are skipped.
pub(crate) fn parse(text: &str) -> (Vec<Document>, Vec<Problem>) {
    let b = build(text);
    (b.docs, b.problems)
}

fn build(text: &str) -> Builder {
    let mut b = Builder::default();
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
    b
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
pub(crate) fn resolve_plain(s: &str) -> Value {
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
                self.written += 1;
                // A mapping waiting for a key takes the scalar as written, whatever it would resolve to.
                if let Some(Frame::Map(m)) = self.stack.last_mut()
                    && m.key.is_none()
                {
                    m.pos.get_or_insert(pos);
                    let merge = text == "<<" && style == TScalarStyle::Plain && tag.is_none();
                    m.key = Some(Key { text: Some(text), pos, merge });
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
            Event::MappingStart(anchor, _) => self.open(Frame::Map(MapFrame::new(pos, anchor)), pos),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (Node { value: Value::Seq(items), pos }, anchor),
                    Some(Frame::Map(m)) => m.finish(),
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
                // Checked before copying, so a bomb is refused having copied at most the allowance.
                let expanded = self.expanded.saturating_add(*count);
                let allowed = MAX_EXPANSION.max(self.written.saturating_mul(EXPANSION_PER_WRITTEN));
                if expanded > allowed {
                    return Err(Problem {
                        pos,
                        message: format!("invalid spec: aliases expand to more than {allowed} values"),
                        help: "avoid aliases that repeat large parts of the document, or write the values out"
                            .to_owned(),
                    });
                }
                self.expanded = expanded;
                let mut node = node.clone();
                node.pos = pos;
                self.complete(node, 0, false)
            }
            Event::DocumentStart => {
                self.merge_failed = false;
                Ok(())
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
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
        self.written += 1;
        if let Some(Frame::Map(m)) = self.stack.last_mut()
            && m.key.is_none()
        {
            m.pos.get_or_insert(pos);
        }
        self.stack.push(frame);
        Ok(())
    }

    fn complete(&mut self, mut node: Node, anchor: usize, empty_scalar: bool) -> Result<(), Problem> {
        if anchor != 0 {
            let count = node.count();
            self.anchors.push((anchor, node.clone(), count));
        }
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.docs.push(Document { root: node, merge_failed: self.merge_failed });
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map(m)) => match m.key.take() {
                None => {
                    // A collection used as a key: keep its entry out of the tree.
                    m.key = Some(Key { text: None, pos: node.pos, merge: false });
                    self.problems.push(Problem {
                        pos: node.pos,
                        message: "invalid spec: a mapping key must be a plain string".to_owned(),
                        help: "write keys as `name: value`".to_owned(),
                    });
                }
                Some(Key { text: None, .. }) => {}
                Some(Key { pos: key_pos, merge: true, .. }) => {
                    if empty_scalar {
                        node.pos = key_pos;
                    }
                    if let Some(p) = merge(m, node, key_pos) {
                        self.merge_failed = true;
                        self.problems.push(p);
                    }
                }
                Some(Key { text: Some(text), pos: key_pos, merge: false }) => {
                    // An empty value is reported at its key: yaml-rust2 marks it at the next token.
                    if empty_scalar {
                        node.pos = key_pos;
                    }
                    if let Some(first) = m.find(&text) {
                        self.problems.push(Problem {
                            pos: key_pos,
                            message: format!(
                                "`{text}` is given twice in the same mapping (first at line {}, column {})",
                                first.key_pos.line, first.key_pos.column
                            ),
                            help: format!("keep one `{text}`"),
                        });
                    } else {
                        m.push(Entry { key: text, key_pos, value: node });
                    }
                }
            },
        }
        Ok(())
    }
}

/// Takes in the value of a merge key (`<<: *defaults`, `<<: [*a, *b]`, or a mapping written in place).
///
/// Merge keys are supported rather than refused: sharing a block (an iteration's flags and treatments, a set of
/// creation-only fields) between several experiments is what anchors are used for in spec repositories, and
/// serde_yaml, PyYAML and editors' YAML servers all apply them. The semantics are small, and locations stay
/// exact: merged values keep the position where the anchored mapping wrote them.
fn merge(m: &mut MapFrame, value: Node, key_pos: Pos) -> Option<Problem> {
    if let Some(first) = m.merge_at {
        return Some(Problem {
            pos: key_pos,
            message: format!(
                "`<<` is given twice in the same mapping (first at line {}, column {})",
                first.line, first.column
            ),
            help: "merge several mappings with one `<<: [*first, *second]`".to_owned(),
        });
    }
    m.merge_at = Some(key_pos);
    let not_mappings = Problem {
        pos: value.pos,
        message: format!(
            "a merge key (`<<`) takes a mapping or a list of mappings, found {}",
            super::shape::found(&value)
        ),
        help: "write `<<: *anchor` with an anchor on a mapping, or `<<: [*a, *b]`".to_owned(),
    };
    match value.value {
        Value::Map(_) => m.merges.push(value),
        Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => m.merges.extend(items),
        _ => return Some(not_mappings),
    }
    None
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
        assert_eq!(problems[0].message, "invalid spec: aliases expand to more than 100000 values", "{problems:?}");
        let (_, problems) = parse(&"[".repeat(200));
        assert_eq!(problems[0].message, "invalid spec: nested more than 128 levels deep");
        // yaml-rust2 has its own, higher limit, which also holds for deeper input.
        let (_, problems) = parse(&"[".repeat(100_000));
        assert_eq!(problems[0].message, "invalid YAML: recursion limit exceeded");
    }

    /// Nine levels of ten aliases each: 10^10 values if expanded.
    fn billion_laughs() -> String {
        let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 0..9 {
            let prev = if i == 0 { "*a".to_owned() } else { format!("*b{}", i - 1) };
            bomb.push_str(&format!("b{i}: &b{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        bomb
    }

    #[test]
    fn an_alias_bomb_is_refused_having_copied_at_most_the_allowance() {
        let b = build(&billion_laughs());
        assert_eq!(b.problems.len(), 1, "{:?}", b.problems);
        assert_eq!(b.problems[0].pos, Pos { line: 5, column: 45 });
        // The bound on work done: no more than the allowance was ever copied, so refusal is fast.
        assert!(b.expanded <= MAX_EXPANSION, "{}", b.expanded);
        assert!(b.written < 200, "{}", b.written);
    }

    #[test]
    fn large_files_without_aliases_load_whatever_their_size() {
        // 150,000 values: past the expansion allowance, all written out.
        let mut text = String::from("items:\n");
        for i in 0..30_000 {
            text.push_str(&format!("  - {{key: k{i}, name: n, on: true}}\n"));
        }
        let b = build(&text);
        assert_eq!(b.problems, []);
        assert!(b.written > 150_000, "{}", b.written);
        assert_eq!(b.expanded, 0);
        let Value::Seq(items) = &b.docs[0].root.get("items").unwrap().value.value else { unreachable!() };
        assert_eq!(items.len(), 30_000);
    }

    #[test]
    fn a_large_file_may_alias_in_proportion_to_what_it_writes() {
        // Each of 12,000 items writes 9 values and copies an 11-value block: 132,000 copied in all.
        let mut text = String::from("shared: &s {a: 1, b: 2, c: 3, d: 4, e: 5}\nitems:\n");
        for i in 0..12_000 {
            text.push_str(&format!("  - {{key: k{i}, name: n, on: true, shared: *s}}\n"));
        }
        let b = build(&text);
        assert_eq!(b.problems, []);
        assert!(b.expanded > MAX_EXPANSION, "{}", b.expanded);
    }

    #[test]
    fn duplicate_keys_are_found_in_huge_mappings_too() {
        let mut text: String = (0..5_000).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k40: again\n");
        let (docs, problems) = parse(&text);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "`k40` is given twice in the same mapping (first at line 41, column 1)");
        assert_eq!(problems[0].pos, Pos { line: 5_001, column: 1 });
        assert_eq!(docs[0].root.get("k4999").unwrap().value.value, Value::Int(4999));
    }

    fn map_of(node: &Node) -> Vec<(String, serde_json::Value, Pos)> {
        let Value::Map(entries) = &node.value else { panic!("not a mapping: {node:?}") };
        let mut out: Vec<_> = entries.iter().map(|e| (e.key.clone(), e.value.to_json(), e.value.pos)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn merge_keys_follow_yaml_1_1() {
        let r = root(
            "base: &base {a: 1, b: 2}\nmore: &more {b: 20, c: 30}\n\
             one:\n  a: 0\n  <<: *base\n\
             two:\n  <<: [*more, *base]\n  c: 3\n\
             inline: {<<: {x: 1}, y: 2}\n",
        );
        let one = map_of(&r.get("one").unwrap().value);
        // Written keys win over merged ones, wherever the `<<` is; merged values point into the anchor.
        assert_eq!(
            one,
            [
                ("a".to_owned(), serde_json::json!(0), Pos { line: 4, column: 6 }),
                ("b".to_owned(), serde_json::json!(2), Pos { line: 1, column: 23 }),
            ]
        );
        // Of a list, earlier mappings win.
        let two: Vec<_> = map_of(&r.get("two").unwrap().value).into_iter().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(
            two,
            [
                ("a".to_owned(), serde_json::json!(1)),
                ("b".to_owned(), serde_json::json!(20)),
                ("c".to_owned(), serde_json::json!(3)),
            ]
        );
        assert_eq!(r.get("inline").unwrap().value.to_json(), serde_json::json!({"x": 1, "y": 2}));
    }

    #[test]
    fn merge_key_mistakes_are_one_problem_each() {
        let (docs, problems) = parse("a: &a [1]\nb:\n  <<: *a\n  c: 1\n---\nd: {<<: {e: 1}}\n");
        // The loader checks no further a document whose merge failed: its fields would only be reported missing.
        assert_eq!(docs.iter().map(|d| d.merge_failed).collect::<Vec<_>>(), [true, false]);
        assert_eq!(
            problems.iter().map(|p| (p.pos, p.message.as_str())).collect::<Vec<_>>(),
            [(Pos { line: 3, column: 7 }, "a merge key (`<<`) takes a mapping or a list of mappings, found a list")]
        );
        let (_, problems) = parse("b:\n  <<:\n  c: 1\n");
        assert_eq!(problems[0].pos, Pos { line: 2, column: 3 });
        assert_eq!(
            problems[0].message,
            "a merge key (`<<`) takes a mapping or a list of mappings, found an empty value"
        );
        let (_, problems) = parse("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n");
        assert_eq!(problems[0].message, "`<<` is given twice in the same mapping (first at line 3, column 3)");
        // A quoted `<<` is an ordinary key.
        let r = root("\"<<\": {x: 1}\n");
        assert_eq!(r.to_json(), serde_json::json!({"<<": {"x": 1}}));
    }
}
