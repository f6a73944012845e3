//! The README's links lead somewhere: every in-page anchor names a heading, and every relative link a file.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept, spaces turned into `-`, the rest
/// (backticks, colons, parentheses, dots…) dropped; a repeated heading gets `-1`, `-2`, ….
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let base = anchor(line.trim_start_matches('#'));
        let mut a = base.clone();
        let mut n = 0;
        while !out.insert(a.clone()) {
            n += 1;
            a = format!("{base}-{n}");
        }
    }
    out
}

/// `(target, line number)` of every markdown link `[text](target)` outside code blocks and code spans.
fn links(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans are not links.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((after[..end].to_owned(), i + 1));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_readme_link_leads_to_a_heading_or_a_file() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let known = anchors(&text);
    let mut broken = Vec::new();
    let all = links(&text);
    for (target, line) in &all {
        if let Some(a) = target.strip_prefix('#') {
            if !known.contains(a) {
                broken.push(format!("README.md:{line}: #{a} is no heading"));
            }
        } else if !target.contains("://") && !target.starts_with("mailto:") {
            let path = target.split('#').next().unwrap_or_default();
            if !path.is_empty() && !root().join(path).exists() {
                broken.push(format!("README.md:{line}: {path} does not exist"));
            }
        }
    }
    assert!(all.iter().filter(|(t, _)| t.starts_with('#')).count() >= 10, "the link scan found too few links");
    assert!(broken.is_empty(), "broken README links:\n{}", broken.join("\n"));
}

#[test]
fn the_anchor_rule_matches_github() {
    assert_eq!(anchor(" Spec reference (format v1)"), "spec-reference-format-v1");
    assert_eq!(anchor(" `kind: Experiment`"), "kind-experiment");
    assert_eq!(anchor(" Why apply is safe to re-run"), "why-apply-is-safe-to-re-run");
    assert_eq!(anchor(" Is my LaunchDarkly like ldexp's emulator?"), "is-my-launchdarkly-like-ldexps-emulator");
    let a = anchors("# A\n## A\n```\n# not a heading\n```\n");
    assert_eq!(a.into_iter().collect::<Vec<_>>(), ["a", "a-1"]);
}
