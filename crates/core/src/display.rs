//! Display safety: text that came from specs or from LaunchDarkly, made safe to show in a terminal or in GitHub
//! markdown by writing invisible and control characters as visible escapes (`\u{202E}`).
//!
//! A name, description or hypothesis is written by anyone who can open a pull request or edit an experiment in
//! LaunchDarkly. Bidirectional controls can make a reviewed plan read differently from what it does ("Trojan
//! Source"), zero-width characters make two different keys look the same, and terminal control sequences (ESC,
//! CSI) can rewrite what a terminal shows. Everything else, including accented letters, CJK and emoji, is shown
//! as it is.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is shown escaped: C0 controls other than line feed and tab, DEL, C1 controls, bidirectional
/// controls, zero-width and other invisible format characters, line and paragraph separators, and tag characters.
///
/// A carriage return directly before a line feed is a line end and is not escaped by [`escape`]; alone it
/// returns the cursor to the start of the line and is.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{B}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{AD}'
            | '\u{61C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// `s` with every [unsafe](is_unsafe) character written as `\u{HEX}` (uppercase, no leading zeros), except a
/// carriage return before a line feed. Borrowed, without copying, when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    let mut chars = s.char_indices().peekable();
    let first = loop {
        match chars.next() {
            None => return Cow::Borrowed(s),
            Some((i, c)) if escaped(c, chars.peek().map(|&(_, n)| n)) => break i,
            Some(_) => {}
        }
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    let mut rest = s[first..].chars().peekable();
    while let Some(c) = rest.next() {
        if escaped(c, rest.peek().copied()) {
            let _ = write!(out, "\\u{{{:X}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c`, followed by `next`, is escaped.
fn escaped(c: char, next: Option<char>) -> bool {
    is_unsafe(c) && !(c == '\r' && next == Some('\n'))
}

/// The characters of `s` that [`escape`] escapes, each once, in order of first appearance.
pub fn unsafe_chars(s: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if escaped(c, chars.peek().copied()) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// `U+202E RIGHT-TO-LEFT OVERRIDE`: the code point and its Unicode name, or a description of its class.
pub fn describe(c: char) -> String {
    let name = match c {
        '\u{0}' => "NULL",
        '\u{7}' => "BELL",
        '\u{8}' => "BACKSPACE",
        '\u{B}' => "LINE TABULATION",
        '\u{C}' => "FORM FEED",
        '\u{D}' => "CARRIAGE RETURN",
        '\u{1B}' => "ESCAPE",
        '\u{7F}' => "DELETE",
        '\u{85}' => "NEXT LINE",
        '\u{9B}' => "CONTROL SEQUENCE INTRODUCER",
        '\u{AD}' => "SOFT HYPHEN",
        '\u{61C}' => "ARABIC LETTER MARK",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}' => "FUNCTION APPLICATION",
        '\u{2062}' => "INVISIBLE TIMES",
        '\u{2063}' => "INVISIBLE SEPARATOR",
        '\u{2064}' => "INVISIBLE PLUS",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
        '\u{FFF9}' => "INTERLINEAR ANNOTATION ANCHOR",
        '\u{FFFA}' => "INTERLINEAR ANNOTATION SEPARATOR",
        '\u{FFFB}' => "INTERLINEAR ANNOTATION TERMINATOR",
        '\u{0}'..='\u{1F}' => "control character",
        '\u{80}'..='\u{9F}' => "C1 control character",
        '\u{206A}'..='\u{206F}' => "deprecated format character",
        '\u{E0000}'..='\u{E007F}' => "tag character",
        _ => "character",
    };
    format!("U+{:04X} {name}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_listed_class_is_escaped() {
        let cases = [
            ('\u{202A}', "\\u{202A}"),
            ('\u{202E}', "\\u{202E}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{200E}', "\\u{200E}"),
            ('\u{200F}', "\\u{200F}"),
            ('\u{061C}', "\\u{61C}"),
            ('\u{0}', "\\u{0}"),
            ('\u{1B}', "\\u{1B}"),
            ('\r', "\\u{D}"),
            ('\u{1F}', "\\u{1F}"),
            ('\u{7F}', "\\u{7F}"),
            ('\u{80}', "\\u{80}"),
            ('\u{9B}', "\\u{9B}"),
            ('\u{9F}', "\\u{9F}"),
            ('\u{200B}', "\\u{200B}"),
            ('\u{200C}', "\\u{200C}"),
            ('\u{200D}', "\\u{200D}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{FEFF}', "\\u{FEFF}"),
            ('\u{2060}', "\\u{2060}"),
            ('\u{AD}', "\\u{AD}"),
            ('\u{E0041}', "\\u{E0041}"),
        ];
        for (c, shown) in cases {
            assert!(is_unsafe(c), "{}", describe(c));
            assert_eq!(escape(&format!("a{c}b")), format!("a{shown}b"), "{}", describe(c));
            assert_eq!(unsafe_chars(&format!("{c}x{c}")), [c]);
        }
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in ["", "Café ✓ 日本", "line one\nline two\twith a tab", "crlf\r\nends", "emoji 👍🏽 and ❤️", "עברית"]
        {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text), "{text:?}");
            assert_eq!(unsafe_chars(text), Vec::<char>::new());
        }
    }

    #[test]
    fn a_trojan_source_name_is_shown_as_written_in_order() {
        let name = "Checkout \u{202E}txet desrever\u{202C} test";
        assert_eq!(escape(name), "Checkout \\u{202E}txet desrever\\u{202C} test");
        assert_eq!(unsafe_chars(name), ['\u{202E}', '\u{202C}']);
        assert_eq!(describe('\u{202E}'), "U+202E RIGHT-TO-LEFT OVERRIDE");
        assert_eq!(describe('\u{1B}'), "U+001B ESCAPE");
        assert_eq!(describe('\u{86}'), "U+0086 C1 control character");
        assert_eq!(describe('\u{E0041}'), "U+E0041 tag character");
        // A terminal escape sequence loses its ESC and so its effect.
        assert_eq!(escape("\u{1b}[2J\u{1b}]8;;http://x\u{7}"), "\\u{1B}[2J\\u{1B}]8;;http://x\\u{7}");
        assert_eq!(escape("a\rb\r\r\n"), "a\\u{D}b\\u{D}\r\n");
    }

    /// `s` without its `\u{...}` sequences.
    fn without_escapes(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("\\u{") {
            out.push_str(&rest[..i]);
            rest = rest[i..].find('}').map_or("", |j| &rest[i + j + 1..]);
        }
        out.push_str(rest);
        out
    }

    proptest! {
        #[test]
        fn the_output_never_holds_an_escaped_character_and_keeps_the_rest(
            s in any::<String>(),
            picks in prop::collection::vec(0usize..64, 0..8),
        ) {
            let dangerous = ['\u{202E}', '\u{2066}', '\u{200B}', '\u{1B}', '\r', '\n', '\u{9B}', '\u{FEFF}', '\u{E0001}'];
            // No backslashes of its own, so that the escapes in the output are all `escape`'s.
            let mut s = s.replace('\\', "");
            for p in picks {
                s.insert(s.char_indices().nth(p).map_or(s.len(), |(i, _)| i), dangerous[p % dangerous.len()]);
            }
            let out = escape(&s);
            prop_assert_eq!(unsafe_chars(&out), Vec::<char>::new());
            let mut kept = String::new();
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                if !escaped(c, chars.peek().copied()) {
                    kept.push(c);
                }
            }
            prop_assert_eq!(without_escapes(&out), kept);
            prop_assert_eq!(matches!(out, Cow::Borrowed(_)), unsafe_chars(&s).is_empty());
        }
    }
}
