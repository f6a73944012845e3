//! How pull writes one value in the style of the value it replaces, and where a flow list it replaces ends.

use serde_json::Value as J;

use super::Style;
use crate::spec::yaml::{self, Value as Y};

/// `want` written as a YAML scalar in `style`, falling back to double quotes when the style cannot hold it (a plain
/// string that would read as a number, a single-quoted one with a line break). `None` for a list or mapping.
pub(super) fn scalar(want: &J, style: Style) -> Option<String> {
    let text = match want {
        J::String(s) => return Some(string(s, style)),
        // Percentages come as floats; `30.0` would be noise where the spec wrote `50`.
        J::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 && !n.is_i64() && !n.is_u64() => format!("{f:.0}"),
            _ => n.to_string(),
        },
        J::Bool(b) => b.to_string(),
        J::Null | J::Array(_) | J::Object(_) => return None,
    };
    // A quoted number stays quoted: the spec chose to write it as a string (`allocationPercent: "50"`).
    Some(match style {
        Style::Plain => text,
        Style::Single => format!("'{text}'"),
        Style::Double => format!("\"{text}\""),
    })
}

fn string(s: &str, style: Style) -> String {
    let double = || serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""));
    match style {
        Style::Plain if plain_safe(s) => s.to_owned(),
        Style::Single if !s.chars().any(char::is_control) => format!("'{}'", s.replace('\'', "''")),
        _ => double(),
    }
}

/// Whether `s` written plain reads back as the same string, in block and in flow context alike, and reads as a
/// string to YAML 1.1 tools too (which take `yes` and `off` for booleans).
fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    let yaml11_bool =
        matches!(s.to_ascii_lowercase().as_str(), "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false");
    yaml::resolve_plain(s) == Y::Str(s.to_owned())
        && !yaml11_bool
        && !"-?:,[]{}#&*!|>'\"%@` \t".contains(first)
        && !s.ends_with([' ', '\t', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control() || ",[]{}".contains(c))
}

/// The offset just past the `]` closing the flow list that opens at `start`, skipping quoted text and nested
/// brackets.
pub(super) fn flow_end(text: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            // A doubled `''` closes and reopens, which comes to the same thing here.
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(start + i + 1);
                    }
                }
                '#' => return None,
                _ => {}
            },
        }
    }
    None
}
