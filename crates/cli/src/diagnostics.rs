//! Renders spec diagnostics for people: a source snippet with a caret under the problem (miette), and the help.
//! Invisible and control characters in the snippet and the text are shown escaped (`ldexp_core::display`).

use std::collections::BTreeMap;
use std::fmt;

use ldexp_core::display;
use ldexp_core::spec::Diagnostic;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity, SourceSpan};

/// Wide enough for the longest help lines without wrapping mid-sentence on most terminals, and fixed so that the
/// output is the same everywhere.
const WIDTH: usize = 140;

/// Every diagnostic rendered as an error with its snippet, in order, followed by nothing else.
pub(crate) fn render(diagnostics: &[Diagnostic], color: bool) -> String {
    render_as(diagnostics, Severity::Error, color)
}

/// Every diagnostic rendered as a warning with its snippet, in order, followed by nothing else.
pub(crate) fn render_warnings(diagnostics: &[Diagnostic], color: bool) -> String {
    render_as(diagnostics, Severity::Warning, color)
}

fn render_as(diagnostics: &[Diagnostic], severity: Severity, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(WIDTH).with_links(false);
    let mut sources: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut out = String::new();
    for d in diagnostics {
        let text = sources.entry(&d.file).or_insert_with(|| std::fs::read_to_string(&d.file).ok()).as_deref();
        let report = Report::new(d, text, severity);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{d}\n"));
        }
        out.push('\n');
    }
    out
}

/// One diagnostic as a miette report; the snippet is present when the file can be read.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    severity: Severity,
    source: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl<'a> Report<'a> {
    fn new(d: &'a Diagnostic, text: Option<&str>, severity: Severity) -> Self {
        let located = text.and_then(|t| {
            // Columns do not count a byte-order mark, which escaping would turn into eight characters.
            let t = t.strip_prefix('\u{feff}').unwrap_or(t);
            let s = span(t, d.line, d.column)?;
            // The span is found in the text as written and moved to where escaping puts it.
            let shown = |end: usize| t.get(..end).map_or(end, |before| display::escape(before).len());
            let (start, end) = (shown(s.offset()), shown(s.offset() + s.len()));
            Some((display::escape(t).into_owned(), SourceSpan::new(start.into(), end.saturating_sub(start))))
        });
        match located {
            Some((t, s)) => Report {
                diagnostic: d,
                severity,
                source: Some(NamedSource::new(&d.file, t).with_language("yaml")),
                span: Some(s),
            },
            None => Report { diagnostic: d, severity, source: None, span: None },
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report").field("diagnostic", self.diagnostic).finish()
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        let message = display::escape(&d.message);
        if self.source.is_some() {
            f.write_str(&message)
        } else {
            write!(f, "{}:{}:{}: {message}", d.file, d.line, d.column)
        }
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic.help.as_deref().map(|h| Box::new(display::escape(h)) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.span.map(|s| Box::new(std::iter::once(LabeledSpan::new_with_span(None, s))) as Box<dyn Iterator<Item = _>>)
    }
}

/// The byte span of the token at a 1-based line and character column: a quoted string, a key up to its `:`, or
/// a plain value up to the end of the line or flow punctuation. At least one character.
fn span(text: &str, line: usize, column: usize) -> Option<SourceSpan> {
    let line_start = if line <= 1 {
        text.strip_prefix('\u{feff}').map_or(0, |_| '\u{feff}'.len_utf8())
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let rest = &text[line_start..];
    let line_text = rest.split('\n').next().unwrap_or_default().trim_end_matches('\r');
    let start = line_text.char_indices().nth(column.saturating_sub(1)).map_or(line_text.len(), |(i, _)| i);
    let token = &line_text[start..];
    let len = match token.chars().next() {
        None => 0,
        // A block list: mark its first dash, not the first item's key.
        Some('-') if token[1..].starts_with(' ') => 1,
        Some(q @ ('"' | '\'')) => token[1..].find(q).map_or(token.len(), |i| i + 2),
        Some(_) => {
            let mut end = token.len();
            for (i, c) in token.char_indices() {
                let next_is_space = token[i + c.len_utf8()..].chars().next().is_none_or(char::is_whitespace);
                if matches!(c, ',' | ']' | '}' | '#') || (c == ':' && next_is_space) {
                    end = i;
                    break;
                }
            }
            token[..end].trim_end().len()
        }
    };
    Some(SourceSpan::new((line_start + start).into(), len.max(usize::from(start < line_text.len()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str, line: usize, column: usize) -> &str {
        let s = span(text, line, column).unwrap();
        &text[s.offset()..s.offset() + s.len()]
    }

    #[test]
    fn spans_cover_the_token() {
        let t = "kind: Experiment\nname: \"a: b\" # c\nmetrics: [a, bé]\nprimary_metric: x\n";
        assert_eq!(cut(t, 1, 7), "Experiment");
        assert_eq!(cut(t, 2, 7), "\"a: b\"");
        assert_eq!(cut(t, 3, 14), "bé");
        assert_eq!(cut(t, 4, 1), "primary_metric");
        assert_eq!(cut("list:\n  - name: a\n", 2, 3), "-");
        assert_eq!(cut("x: -5\n", 1, 4), "-5");
        assert_eq!(span(t, 9, 1), None);
        assert_eq!(cut("\u{feff}kind: x\n", 1, 1), "kind");
    }

    #[test]
    fn renders_snippet_caret_and_help() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.yaml");
        std::fs::write(&file, "kind: Experiment\nstate: runing\n").unwrap();
        let d = Diagnostic {
            file: file.display().to_string(),
            line: 2,
            column: 8,
            message: "bad state".into(),
            help: Some("write `running`".into()),
        };
        let out = render(&[d], false);
        assert!(out.contains("bad state"), "{out}");
        assert!(out.contains("2 │ state: runing"), "{out}");
        assert!(out.contains("·        ──────"), "{out}");
        assert!(out.contains("help: write `running`"), "{out}");
    }

    #[test]
    fn invisible_characters_are_escaped_in_the_snippet_the_message_and_the_help() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.yaml");
        std::fs::write(&file, "\u{feff}kind: Experiment\nname: a\u{202E}b, c\n").unwrap();
        let d = Diagnostic {
            file: file.display().to_string(),
            line: 2,
            column: 7,
            message: "bad name `a\u{202E}b`".into(),
            help: Some("rename `a\u{202E}b`".into()),
        };
        let out = render_warnings(&[d], false);
        assert!(!out.contains('\u{202E}'), "{out}");
        assert!(out.contains("⚠ bad name `a\\u{202E}b`"), "{out}");
        assert!(out.contains("2 │ name: a\\u{202E}b, c\n   ·       ──────────\n"), "{out}");
        assert!(out.contains("help: rename `a\\u{202E}b`"), "{out}");
    }
}
