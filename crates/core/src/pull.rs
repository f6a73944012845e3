//! Pull: rewrites the values an experiment spec file writes to the remote's, in place, keeping every other byte.
//!
//! The remote's values come as the spec export would write ([`crate::export::export_experiment`]), so comparing
//! typed specs as JSON ignores formatting (`"50"` and `50` are the same allocation). Only a value the spec writes
//! is replaced, and only in place: a scalar by a scalar in the same quoting style, a list by a list in the same
//! flow or block style. What cannot change that way (a treatment added in the UI, a block scalar, a value written
//! over several lines) skips its object, with the reason. Every rewritten file is read back and must then describe
//! the remote's values, or nothing in it is rewritten.

mod render;
#[cfg(test)]
mod tests;

use serde_json::Value as J;

use crate::Error;
use crate::spec::yaml::{self, Node, Pos, Value as Y};
use crate::spec::{ExperimentSpec, SpecSet, load_str};

/// What pulling one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledFile {
    /// The file's new text; the same as before when nothing changed.
    pub text: String,
    pub changes: Vec<Change>,
    pub skipped: Vec<Skip>,
}

/// One value replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `experiment/<project>/<environment>/<key>`.
    pub object: String,
    /// Dotted field path, as in [`crate::spec::Located`].
    pub field: String,
    pub line: usize,
    pub column: usize,
    /// The source text replaced, and what replaced it.
    pub from: String,
    pub to: String,
}

/// An object whose changes were not pulled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub object: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// What [`pull_text`] asks of the remote for each experiment spec: the remote's spec in each environment the spec
/// targets where the experiment exists (none: nothing to pull), or `Err(reason)` when one cannot be had.
pub type RemoteSpec<'a> = dyn Fn(&ExperimentSpec) -> Result<Vec<ExperimentSpec>, String> + 'a;

/// The label of an experiment spec in reports.
pub fn object_of(spec: &ExperimentSpec) -> String {
    let env = spec.environment.clone().unwrap_or_else(|| "*".to_owned());
    format!("experiment/{}/{env}/{}", spec.project, spec.key)
}

/// One replacement of source bytes.
#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
    field: String,
    pos: Pos,
}

/// Rewrites the experiment documents of the spec file `name` (its text `text`) to the remote's values. `Err` only
/// when the file does not load as specs; objects that cannot be pulled are in [`PulledFile::skipped`].
pub fn pull_text(name: &str, text: &str, remote: &RemoteSpec<'_>) -> Result<PulledFile, Error> {
    // The loader reads past a byte-order mark, and positions count from after it.
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let set = load_str(name, body)?;
    let (docs, _) = yaml::parse(body);
    let src = Source::new(body);
    let mut edits: Vec<(usize, Vec<Edit>)> = Vec::new();
    let mut skipped = Vec::new();
    let mut remotes = Vec::new();
    for (i, located) in set.experiments.iter().enumerate() {
        let object = object_of(&located.spec);
        let (line, column) = (located.location.line, located.location.column);
        let skip = |reason: String| Skip { object: object.clone(), line, column, reason };
        let Some(doc) = docs.iter().find(|d| d.root.pos == Pos { line, column }) else {
            skipped.push(skip("its document could not be found again in the file".to_owned()));
            continue;
        };
        let wanted = match remote(&located.spec) {
            Ok(w) => w,
            Err(reason) => {
                skipped.push(skip(reason));
                continue;
            }
        };
        let local = to_json(&located.spec);
        // One remote spec per environment the spec targets; a spec for several is pulled only when they agree.
        let mut per_env: Vec<(J, Vec<Edit>)> = Vec::new();
        let mut failed = None;
        for w in &wanted {
            let want = to_json(w);
            let mut found = Vec::new();
            match walk(&src, &doc.root, &local, &want, "", &mut found) {
                Ok(()) => per_env.push((want, found)),
                Err(reason) => failed = failed.or(Some(reason)),
            }
        }
        let key = |es: &[Edit]| es.iter().map(|e| (e.start, e.end, e.text.clone())).collect::<Vec<_>>();
        if let Some(reason) = failed {
            skipped.push(skip(reason));
        } else if per_env.windows(2).any(|w| key(&w[0].1) != key(&w[1].1)) {
            skipped.push(skip(
                "its environments differ from each other in LaunchDarkly, and one spec writes them all; edit it by \
                 hand (`ldexp export` writes each environment's spec)"
                    .to_owned(),
            ));
        } else if let Some((want, found)) = per_env.into_iter().next().filter(|(_, f)| !f.is_empty()) {
            edits.push((i, found));
            remotes.push((i, want));
        }
    }
    let unchanged = || PulledFile { text: text.to_owned(), changes: Vec::new(), skipped: Vec::new() };
    if edits.is_empty() {
        return Ok(PulledFile { skipped, ..unchanged() });
    }
    let mut all: Vec<&Edit> = edits.iter().flat_map(|(_, e)| e).collect();
    all.sort_by_key(|e| (e.start, e.end));
    let overlap = all.windows(2).any(|w| w[0].end > w[1].start);
    let new_body = apply(body, &all);
    let check = if overlap {
        Err("two of its values are written at the same place (an anchor or merge key shares them)".to_owned())
    } else {
        verify(name, &new_body, &set, &remotes)
    };
    if let Err(reason) = check {
        for (i, _) in &edits {
            let l = &set.experiments[*i];
            skipped.push(Skip {
                object: object_of(&l.spec),
                line: l.location.line,
                column: l.location.column,
                reason: format!("{reason}; nothing in {name} was rewritten"),
            });
        }
        return Ok(PulledFile { skipped, ..unchanged() });
    }
    let changes = edits
        .iter()
        .flat_map(|(i, es)| {
            let object = object_of(&set.experiments[*i].spec);
            es.iter().map(move |e| Change {
                object: object.clone(),
                field: e.field.clone(),
                line: e.pos.line,
                column: e.pos.column,
                from: body[e.start..e.end].to_owned(),
                to: e.text.clone(),
            })
        })
        .collect();
    Ok(PulledFile { text: format!("{bom}{new_body}"), changes, skipped })
}

fn to_json(spec: &ExperimentSpec) -> J {
    serde_json::to_value(spec).unwrap_or(J::Null)
}

/// `body` with every edit made; edits are sorted and do not overlap.
fn apply(body: &str, edits: &[&Edit]) -> String {
    let mut out = String::with_capacity(body.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue;
        }
        out.push_str(&body[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&body[at..]);
    out
}

/// The rewritten text must load, its pulled experiments must now equal the remote's where they write a value,
/// and everything else it describes must be unchanged.
fn verify(name: &str, body: &str, before: &SpecSet, remotes: &[(usize, J)]) -> Result<(), String> {
    let after = load_str(name, body).map_err(|e| format!("the rewritten file does not load ({e})"))?;
    let same_others = after.legacy.iter().map(|l| &l.spec).eq(before.legacy.iter().map(|l| &l.spec))
        && after.workspaces.iter().map(|l| &l.spec).eq(before.workspaces.iter().map(|l| &l.spec))
        && after.metrics.iter().map(|l| &l.spec).eq(before.metrics.iter().map(|l| &l.spec))
        && after.metric_groups.iter().map(|l| &l.spec).eq(before.metric_groups.iter().map(|l| &l.spec))
        && after.settings.iter().map(|l| &l.spec).eq(before.settings.iter().map(|l| &l.spec))
        && after.layers.iter().map(|l| &l.spec).eq(before.layers.iter().map(|l| &l.spec))
        && after.holdouts.iter().map(|l| &l.spec).eq(before.holdouts.iter().map(|l| &l.spec))
        && after.experiments.len() == before.experiments.len();
    if !same_others {
        return Err("the rewrite would change other documents of the file".to_owned());
    }
    let (docs, _) = yaml::parse(body);
    let src = Source::new(body);
    for (i, (b, a)) in before.experiments.iter().zip(&after.experiments).enumerate() {
        match remotes.iter().find(|(j, _)| *j == i) {
            None if a.spec != b.spec => return Err("the rewrite would change another experiment".to_owned()),
            None => {}
            Some((_, want)) => {
                let pos = Pos { line: a.location.line, column: a.location.column };
                let doc = docs.iter().find(|d| d.root.pos == pos).ok_or("a document moved")?;
                let mut left = Vec::new();
                walk(&src, &doc.root, &to_json(&a.spec), want, "", &mut left)?;
                if let Some(e) = left.first() {
                    return Err(format!("`{}` does not read back as LaunchDarkly's value", e.field));
                }
            }
        }
    }
    Ok(())
}

/// Collects the edits that make the values `node` writes equal `want`. `local` is the typed spec's JSON at the
/// same path, so formatting differences are not changes. A field the remote leaves unset is not pulled: export
/// leaves out defaults and what it cannot read, and `plan` shows what still differs.
fn walk(src: &Source, node: &Node, local: &J, want: &J, path: &str, out: &mut Vec<Edit>) -> Result<(), String> {
    if local == want || want.is_null() || same_set(path, local, want) {
        return Ok(());
    }
    let here = if path.is_empty() { "the document".to_owned() } else { format!("`{path}`") };
    match (&node.value, want) {
        (Y::Map(entries), J::Object(w)) => {
            for e in entries {
                let (Some(l), Some(r)) = (local.get(&e.key), w.get(&e.key)) else { continue };
                let p = if path.is_empty() { e.key.clone() } else { format!("{path}.{}", e.key) };
                walk(src, &e.value, l, r, &p, out)?;
            }
            Ok(())
        }
        (Y::Seq(items), J::Array(w)) => {
            let l = local.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.len() == w.len() && l.len() == w.len() {
                for (i, ((n, l), r)) in items.iter().zip(l).zip(w).enumerate() {
                    walk(src, n, l, r, &format!("{path}[{i}]"), out)?;
                }
                return Ok(());
            }
            let edit = src.list(node, w).map_err(|why| {
                format!(
                    "{here} has {} item(s) in LaunchDarkly and {} in the spec, and {why}; edit it by hand (`ldexp \
                     export` writes the remote's spec)",
                    w.len(),
                    items.len()
                )
            })?;
            out.push(Edit { field: path.to_owned(), ..edit });
            Ok(())
        }
        (Y::Seq(_) | Y::Map(_), _) | (_, J::Array(_) | J::Object(_)) => Err(format!(
            "{here} changed shape in LaunchDarkly; edit it by hand (`ldexp export` writes the remote's spec)"
        )),
        (_, w) => {
            let edit = src.scalar(node, w).map_err(|why| {
                format!("{here} cannot be rewritten in place: {why}; write LaunchDarkly's value by hand")
            })?;
            out.push(Edit { field: path.to_owned(), ..edit });
            Ok(())
        }
    }
}

/// Whether `local` and `want` are the same unordered list: the planner compares an iteration's metrics as a set
/// (export lists the primary first, the rest in key order) and a metric written `{key: k}` as `k`.
fn same_set(path: &str, local: &J, want: &J) -> bool {
    if path != "iteration.metrics" {
        return false;
    }
    let keys = |v: &J| -> Option<Vec<J>> {
        let mut out: Vec<J> = v
            .as_array()?
            .iter()
            .map(|m| match m.get("key") {
                Some(k) if m.get("group").is_none_or(|g| g == false) => k.clone(),
                _ => m.clone(),
            })
            .collect();
        out.sort_by_key(J::to_string);
        Some(out)
    };
    keys(local).is_some_and(|l| Some(l) == keys(want))
}

/// The text being rewritten, with where each line starts.
struct Source<'a> {
    text: &'a str,
    lines: Vec<usize>,
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let lines = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Source { text, lines }
    }

    /// The byte offset of a 1-based line and character column.
    fn offset(&self, pos: Pos) -> Option<usize> {
        let start = *self.lines.get(pos.line.checked_sub(1)?)?;
        let line = &self.text[start..];
        let chars = pos.column.checked_sub(1)?;
        let within = line.char_indices().nth(chars).map_or(line.len(), |(i, _)| i);
        Some(start + within)
    }

    /// Where the scalar `node` is written, and how.
    fn scalar_extent(&self, node: &Node) -> Result<(usize, usize, Style), String> {
        let start = self.offset(node.pos).ok_or("its position is outside the file")?;
        let rest = &self.text[start..];
        match rest.chars().next() {
            Some('"') => {
                let mut escaped = false;
                for (i, c) in rest.char_indices().skip(1) {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => return Ok((start, start + i + 1, Style::Double)),
                        _ => {}
                    }
                }
                Err("its closing quote was not found".to_owned())
            }
            Some('\'') => {
                let mut chars = rest.char_indices().skip(1).peekable();
                while let Some((i, c)) = chars.next() {
                    if c == '\'' {
                        if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                            chars.next();
                        } else {
                            return Ok((start, start + i + 1, Style::Single));
                        }
                    }
                }
                Err("its closing quote was not found".to_owned())
            }
            Some('|' | '>') => Err("it is a block scalar (`|` or `>`)".to_owned()),
            Some('*' | '&' | '!') => Err("it is an alias, anchored or tagged".to_owned()),
            _ => {
                // A plain scalar on one line is written exactly as its text; a number is a run of number characters.
                let len = match &node.value {
                    Y::Str(s) => rest.starts_with(s.as_str()).then_some(s.len()),
                    Y::Bool(_) | Y::Int(_) | Y::Float(_) => {
                        let n = rest
                            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')))
                            .unwrap_or(rest.len());
                        (yaml::resolve_plain(&rest[..n]) == node.value).then_some(n)
                    }
                    _ => None,
                };
                let len = len.ok_or("it is written over several lines or is empty")?;
                Ok((start, start + len, Style::Plain))
            }
        }
    }

    /// The edit that writes `want` in place of the scalar `node`, in its quoting style.
    fn scalar(&self, node: &Node, want: &J) -> Result<Edit, String> {
        let (start, end, style) = self.scalar_extent(node)?;
        let text = render::scalar(want, style).ok_or("LaunchDarkly's value is not a single value")?;
        Ok(Edit { start, end, text, field: String::new(), pos: node.pos })
    }

    /// The edit that writes the list `want` in place of the list `node`: a flow list stays a flow list; a block list
    /// of values is written again as one item a line at the same indentation.
    fn list(&self, node: &Node, want: &[J]) -> Result<Edit, String> {
        let Y::Seq(items) = &node.value else { return Err("it is not a list".to_owned()) };
        let start = self.offset(node.pos).ok_or("its position is outside the file")?;
        let extents: Vec<(usize, usize, Style)> = items.iter().filter_map(|n| self.scalar_extent(n).ok()).collect();
        if extents.len() != items.len() {
            return Err("its items are not all single values".to_owned());
        }
        let first = extents.first().map_or(Style::Plain, |e| e.2);
        // An item the remote kept at its place keeps its text; a new one takes the style of the item it replaces.
        let rendered: Option<Vec<String>> = want
            .iter()
            .enumerate()
            .map(|(i, w)| match (items.get(i), extents.get(i)) {
                (Some(n), Some(&(s, e, _))) if n.to_json() == *w => Some(self.text[s..e].to_owned()),
                (_, e) => render::scalar(w, e.map_or(first, |e| e.2)),
            })
            .collect();
        let rendered = rendered.ok_or("LaunchDarkly's items are not all single values")?;
        let pos = node.pos;
        if self.text[start..].starts_with('[') {
            let end = render::flow_end(self.text, start).ok_or("its closing `]` was not found")?;
            let text = format!("[{}]", rendered.join(", "));
            return Ok(Edit { start, end, text, field: String::new(), pos });
        }
        let last = items.last().ok_or("it is empty")?;
        let (_, end, _) = self.scalar_extent(last)?;
        if want.is_empty() {
            return Err("LaunchDarkly's list is empty".to_owned());
        }
        let indent = " ".repeat(pos.column.saturating_sub(1));
        // A file with CRLF line ends keeps them.
        let eol = if self.text[start..end].contains("\r\n") || self.text.contains("\r\n") { "\r\n" } else { "\n" };
        let text = rendered.iter().map(|r| format!("- {r}")).collect::<Vec<_>>().join(&format!("{eol}{indent}"));
        Ok(Edit { start, end, text, field: String::new(), pos })
    }
}
