//! Warnings: what a valid spec holds that deserves a second look. Today that is text with characters that
//! terminals and GitHub show invisibly or use to reorder or rewrite text (see [`crate::display`]).

use super::yaml::{Node, Pos, Value};
use super::{Diagnostic, SourceLocation};
use crate::display;

/// A warning for every string value under `node` (at `path`) holding a character ldexp shows escaped.
pub(crate) fn unsafe_text(node: &Node, path: &str, loc: &dyn Fn(Pos) -> SourceLocation, out: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Str(s) => {
            let found = display::unsafe_chars(s);
            if found.is_empty() {
                return;
            }
            let names: Vec<String> = found.iter().map(|&c| display::describe(c)).collect();
            let shown: Vec<String> = found.iter().map(|c| format!("`{}`", display::escape(&c.to_string()))).collect();
            let (them, they_are, each) =
                if found.len() == 1 { ("it", "it is", "it") } else { ("them", "they are", "each") };
            out.push(Diagnostic::at(
                &loc(node.pos),
                format!(
                    "`{path}` contains {}, which terminals and GitHub can show invisibly or use to reorder or hide text",
                    and_list(&names)
                ),
                Some(format!(
                    "remove {them} unless {they_are} meant to be there; ldexp shows {each} escaped, as {}",
                    and_list(&shown)
                )),
            ));
        }
        Value::Map(entries) => {
            for e in entries {
                let p = if path.is_empty() { e.key.clone() } else { format!("{path}.{}", e.key) };
                unsafe_text(&e.value, &p, loc, out);
            }
        }
        Value::Seq(items) => {
            for (i, n) in items.iter().enumerate() {
                unsafe_text(n, &format!("{path}[{i}]"), loc, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::load_str;

    const SPEC: &str = "\
kind: Experiment
project: demo
environment: production
key: checkout
name: \"Checkout \\u202Etset\\u202C\"
description: \"zero\\u200Bwidth and \\e[31mred\"
state: stopped
iteration:
  hypothesis: Plain text, café ✓ 日本.
  primaryMetric: m
  metrics: [m]
  flags: {f: {}}
  treatments:
    - {name: \"Control\\u2066\", baseline: true, allocationPercent: 50, variations: {f: a}}
    - {name: B, allocationPercent: 50, variations: {f: b}}
stop:
  winner: B
  reason: \"done\\r\\nreally\"
";

    #[test]
    fn text_with_invisible_or_control_characters_is_a_warning_at_the_value() {
        let set = load_str("w.yaml", SPEC).unwrap();
        let found: Vec<String> = set
            .warnings
            .iter()
            .map(|d| format!("{}:{}: {} | {}", d.line, d.column, d.message, d.help.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            found,
            [
                "5:7: `name` contains U+202E RIGHT-TO-LEFT OVERRIDE and U+202C POP DIRECTIONAL FORMATTING, which \
                 terminals and GitHub can show invisibly or use to reorder or hide text | remove them unless they are \
                 meant to be there; ldexp shows each escaped, as `\\u{202E}` and `\\u{202C}`",
                "6:14: `description` contains U+200B ZERO WIDTH SPACE and U+001B ESCAPE, which terminals and GitHub \
                 can show invisibly or use to reorder or hide text | remove them unless they are meant to be there; \
                 ldexp shows each escaped, as `\\u{200B}` and `\\u{1B}`",
                "14:14: `iteration.treatments[0].name` contains U+2066 LEFT-TO-RIGHT ISOLATE, which terminals and \
                 GitHub can show invisibly or use to reorder or hide text | remove it unless it is meant to be there; \
                 ldexp shows it escaped, as `\\u{2066}`",
            ]
        );
        // The spec itself is as written: display is where escaping happens.
        assert_eq!(set.experiments[0].spec.name, "Checkout \u{202E}tset\u{202C}");
    }

    #[test]
    fn plain_specs_have_no_warnings() {
        let plain = include_str!("../../../../examples/checkout-button-placement.yaml");
        assert_eq!(load_str("p.yaml", plain).unwrap().warnings, []);
    }
}
