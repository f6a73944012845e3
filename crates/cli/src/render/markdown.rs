//! The markdown rendering of a plan for a pull-request comment, and the cutting that keeps any comment under
//! GitHub's 65,536-character limit.
//!
//! Layout: a title, the summary sentence, a table of changes (marker, object, action, risk, request count), the
//! unmanaged experiments, the warnings, then one `<details>` block per change. When the whole would not fit, the
//! details are dropped from the end first, then warnings, unmanaged rows and table rows, and a closing note says
//! what was cut and how to see everything. Sizes are counted in bytes, which bounds characters and UTF-16 units.

use std::fmt::Write as _;

use ldexp_core::plan::{Change, Divergence, Plan, Unmanaged, Warning};

use super::{
    DiffLine, is_text_field, is_unchanged, marker, request_lines, risk_sentence, show_after, show_value, summary_line,
    text_diff,
};

/// Output length is always strictly below this (GitHub's comment and issue body limit).
pub(crate) const LIMIT: usize = 65_536;

/// What a plan or drift report leaves free under [`LIMIT`] for the text the GitHub Action wraps it in: the hidden
/// marker naming the spec folder, its heading and its footer (action/comment.sh), so the comment still fits.
pub(crate) const COMMENT_RESERVE: usize = 1_024;

/// The plan as a markdown PR comment, always shorter than [`LIMIT`] less [`COMMENT_RESERVE`].
pub(crate) fn markdown(plan: &Plan) -> String {
    markdown_within(plan, LIMIT - COMMENT_RESERVE)
}

pub(crate) fn markdown_within(plan: &Plan, limit: usize) -> String {
    let plan = &*super::display_safe(plan);
    let mut head = String::from("## ldexp plan\n\n");
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    if plan.changes.iter().any(|c| !c.risks.is_empty() && !c.requests.is_empty()) {
        head.push_str(
            "> [!WARNING]\n> This plan ends data collection or experiments, or replaces drafts; see ⚠️ below.\n\n",
        );
    }
    if !plan.refused_addresses().is_empty() {
        head.push_str(
            "> [!CAUTION]\n> Some objects are refused: their specs differ from LaunchDarkly in fields no request can \
             change. See *Cannot be applied*.\n\n",
        );
    }
    let mut parts = Vec::new();
    if !plan.changes.is_empty() {
        parts.push(Part::new(
            "change rows",
            "| | Object | Action | Risk | Requests |\n|:-:|---|---|---|--:|\n",
            plan.changes.iter().map(table_row).collect(),
            "\n",
            |n| format!("| | … | {n} more not shown | | |\n"),
        ));
    }
    if !plan.unmanaged.is_empty() {
        let what = if plan.prune { "archived by `--prune`" } else { "left alone; `--prune` archives them" };
        parts.push(unmanaged_part(&format!("In no spec, {what}."), &plan.unmanaged));
    }
    if !plan.divergences.is_empty() {
        parts.push(divergences_part(&plan.divergences));
    }
    if !plan.warnings.is_empty() {
        parts.push(warnings_part(&plan.warnings));
    }
    if !plan.changes.is_empty() {
        parts.push(Part::new("change details", "", plan.changes.iter().map(details).collect(), "", |_| String::new()));
    }
    fit(&head, parts, limit, "`ldexp plan --format human`, or the JSON plan (`ldexp plan --out plan.json`),")
}

/// The "Unmanaged experiments" table, shared with the drift report; `intro` says what happens to them.
pub(crate) fn unmanaged_part(intro: &str, unmanaged: &[Unmanaged]) -> Part {
    Part::new(
        "unmanaged rows",
        &format!("### {}\n\n{intro}\n\n| Object | Name | State |\n|---|---|---|\n", unmanaged_title(unmanaged)),
        unmanaged
            .iter()
            .map(|u| format!("| {} | {} | {} |\n", code(&u.address.to_string(), true), cell(&u.name), u.state))
            .collect(),
        "\n",
        |n| format!("| … | {n} more not shown | |\n"),
    )
}

/// "Unmanaged experiments", or "Unmanaged objects, N metrics and M metric groups among them" when a Workspace's
/// ownership of metrics lists those too: projects have hundreds, so their count is said up front.
pub(crate) fn unmanaged_title(unmanaged: &[Unmanaged]) -> String {
    use ldexp_core::plan::Address;
    let metrics = unmanaged.iter().filter(|u| matches!(u.address, Address::Metric { .. })).count();
    let groups = unmanaged.iter().filter(|u| matches!(u.address, Address::MetricGroup { .. })).count();
    if metrics + groups == 0 {
        return "Unmanaged experiments".to_owned();
    }
    format!(
        "Unmanaged objects ({metrics} metric{}, {groups} metric group{} among them)",
        if metrics == 1 { "" } else { "s" },
        if groups == 1 { "" } else { "s" }
    )
}

/// The "Cannot be applied" table, shared with the drift report: refused objects first.
pub(crate) fn divergences_part(divergences: &[Divergence]) -> Part {
    let mut sorted: Vec<&Divergence> = divergences.iter().collect();
    sorted.sort_by_key(|d| !d.refuses);
    Part::new(
        "differences that cannot be applied",
        "### Cannot be applied\n\nLaunchDarkly cannot change these fields. A refused object gets no request at all.\n\n\
         | Object | Field | LaunchDarkly | Spec | Why |\n|---|---|---|---|---|\n",
        sorted
            .iter()
            .map(|d| {
                let refused = if d.refuses { " **refused**" } else { "" };
                format!(
                    "| {}{refused} | {} | {} | {} | {} ({}){} |\n",
                    code(&d.address.to_string(), true),
                    code(&d.field, true),
                    code(&show_value(d.remote.as_ref()), true),
                    code(&show_value(d.spec.as_ref()), true),
                    cell(&d.reason),
                    code(&d.location.to_string(), true),
                    d.hint.as_deref().map(|h| format!("; {}", cell(h))).unwrap_or_default()
                )
            })
            .collect(),
        "\n",
        |n| format!("| … | {n} more not shown | | | |\n"),
    )
}

/// The "Warnings" list, shared with the drift report.
pub(crate) fn warnings_part(warnings: &[Warning]) -> Part {
    Part::new(
        "warnings",
        "### Warnings\n\n",
        warnings
            .iter()
            .map(|w| match &w.address {
                Some(a) => format!("- {}: {}\n", code(&a.to_string(), false), text(&w.message)),
                None => format!("- {}\n", text(&w.message)),
            })
            .collect(),
        "\n",
        |n| format!("- … {n} more not shown\n"),
    )
}

fn table_row(c: &Change) -> String {
    let risk = c.risks.iter().map(|r| format!("⚠️ {}", risk_sentence(c.action, r))).collect::<Vec<_>>().join("<br>");
    let risk = cell(&risk).replace("&lt;br&gt;", "<br>");
    let m = if c.requests.is_empty() { "#" } else { marker(c.action) };
    format!(
        "| {} | {} | {} | {risk} | {} |\n",
        code(m, true),
        code(&c.address.to_string(), true),
        c.action,
        c.requests.len()
    )
}

fn details(c: &Change) -> String {
    let mut out = String::new();
    let flag = if c.risks.is_empty() { "" } else { " ⚠️" };
    let _ = write!(
        out,
        "<details><summary><code>{}</code> <code>{}</code> {}{flag}</summary>\n\n",
        html(if c.requests.is_empty() { "#" } else { marker(c.action) }),
        html(&c.address.to_string()),
        c.action
    );
    for r in &c.risks {
        let _ = write!(out, "⚠️ **{}**\n\n", text(&risk_sentence(c.action, r)));
    }
    if !c.depends_on.is_empty() {
        let _ = write!(out, "After: {}\n\n", code(&super::after_list(c), true));
    }
    let (texts, plain): (Vec<_>, Vec<_>) = c.fields.iter().partition(|f| is_text_field(f) && !is_unchanged(f));
    if !plain.is_empty() {
        out.push_str("| Field | Remote | Spec |\n|---|---|---|\n");
        for f in &plain {
            // A value sent unchanged is shown once, so the changes stand out.
            let remote = if is_unchanged(f) { "=".to_owned() } else { code(&show_value(f.before.as_ref()), true) };
            let _ = writeln!(out, "| {} | {remote} | {} |", code(&f.field, true), code(&show_after(c, f), true));
        }
        out.push('\n');
    }
    for f in &texts {
        let lines: Vec<String> = text_diff(f)
            .into_iter()
            .map(|l| match l {
                DiffLine::Hunk(h) => h,
                DiffLine::Context(s) => format!(" {s}"),
                DiffLine::Removed(s) => format!("-{s}"),
                DiffLine::Added(s) => format!("+{s}"),
            })
            .collect();
        let _ = write!(out, "{}\n\n", code(&f.field, false));
        out.push_str(&fenced("diff", &lines));
    }
    if !c.requests.is_empty() {
        out.push_str("Requests:\n\n");
        let lines: Vec<String> = c.requests.iter().flat_map(request_lines).collect();
        out.push_str(&fenced("", &lines));
    }
    for n in &c.notes {
        let _ = writeln!(out, "- note: {}", text(n));
    }
    if !c.notes.is_empty() {
        out.push('\n');
    }
    out.push_str("</details>\n\n");
    out
}

/// A fenced code block whose fence is longer than any backtick run inside.
fn fenced(lang: &str, lines: &[String]) -> String {
    let body = lines.join("\n");
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    format!("{fence}{lang}\n{body}\n{fence}\n\n")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// An inline code span that survives any content; in a table cell, pipes are escaped (GFM allows `\|` in spans).
pub(crate) fn code(s: &str, in_table: bool) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let s = if in_table { s.replace('|', "\\|") } else { s };
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// Free text in markdown: no raw HTML, no line breaks that would end a list item or table row.
pub(crate) fn text(s: &str) -> String {
    html(s).replace('\n', " ")
}

/// Free text in a table cell.
pub(crate) fn cell(s: &str) -> String {
    text(s).replace('|', "\\|")
}

pub(crate) fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A cuttable section: a header, items of which a prefix is kept, and a footer.
#[derive(Debug)]
pub(crate) struct Part {
    what: &'static str,
    header: String,
    items: Vec<String>,
    footer: String,
    more: fn(usize) -> String,
    kept: usize,
}

impl Part {
    pub(crate) fn new(
        what: &'static str,
        header: &str,
        items: Vec<String>,
        footer: &str,
        more: fn(usize) -> String,
    ) -> Self {
        let kept = items.len();
        Part { what, header: header.to_owned(), items, footer: footer.to_owned(), more, kept }
    }

    fn cut(&self) -> usize {
        self.items.len() - self.kept
    }
}

/// Joins `head` and `parts`, cutting items from the last part backwards until the output is shorter than
/// `limit`, and then appends a note naming what was cut and where to see it (`see_all` completes "Run … to see
/// everything").
pub(crate) fn fit(head: &str, mut parts: Vec<Part>, limit: usize, see_all: &str) -> String {
    let fixed: usize = head.len() + parts.iter().map(|p| p.header.len() + p.footer.len()).sum::<usize>();
    let mut items_len: usize = parts.iter().map(|p| p.items.iter().map(String::len).sum::<usize>()).sum();
    let more_len =
        |parts: &[Part]| -> usize { parts.iter().filter(|p| p.cut() > 0).map(|p| (p.more)(p.cut()).len()).sum() };
    let total = |items_len: usize, parts: &[Part]| -> usize {
        let note = note(parts, see_all);
        fixed + items_len + more_len(parts) + note.len()
    };
    // Removing items only ever shrinks the output by more than the note and "more" lines grow (bounded text), so
    // cutting one item at a time from the end reaches the limit whenever the uncuttable frame fits.
    let mut i = parts.len();
    while total(items_len, &parts) >= limit && i > 0 {
        let p = &mut parts[i - 1];
        if p.kept == 0 {
            i -= 1;
            continue;
        }
        p.kept -= 1;
        items_len -= p.items[p.kept].len();
    }
    let mut out = String::with_capacity(limit);
    out.push_str(head);
    for p in &parts {
        out.push_str(&p.header);
        for item in &p.items[..p.kept] {
            out.push_str(item);
        }
        if p.cut() > 0 {
            out.push_str(&(p.more)(p.cut()));
        }
        out.push_str(&p.footer);
    }
    out.push_str(&note(&parts, see_all));
    out
}

fn note(parts: &[Part], see_all: &str) -> String {
    let cut: Vec<String> =
        parts.iter().filter(|p| p.cut() > 0).map(|p| format!("{} of {} {}", p.cut(), p.items.len(), p.what)).collect();
    if cut.is_empty() {
        return String::new();
    }
    let last: Vec<String> = cut.iter().map(|c| format!("the last {c}")).collect();
    format!(
        "> [!NOTE]\n> Cut to stay under GitHub's 65,536-character limit, not shown: {}. Run {see_all} to see \
         everything.\n",
        last.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::golden::{empty, gallery};
    use super::*;
    use ldexp_core::plan::{FieldChange, Summary, Unmanaged, Warning};
    use serde_json::json;

    #[test]
    fn every_action_risk_refusal_divergence_unmanaged_and_warning() {
        insta::assert_snapshot!(markdown(&gallery(true)));
    }

    #[test]
    fn empty_plan() {
        insta::assert_snapshot!(markdown(&empty()), @r"
        ## ldexp plan

        **No changes. Remote matches the specs.**
        ");
    }

    /// The gallery's changes repeated `n` times under distinct addresses, each with a long hypothesis diff.
    fn huge_plan(n: usize) -> Plan {
        let base = gallery(true);
        let mut changes = Vec::new();
        for i in 0..n {
            let mut c = base.changes[i % base.changes.len()].clone();
            c.address = ldexp_core::plan::Address::Experiment {
                project: "demo".into(),
                environment: "production".into(),
                key: format!("exp-{i:05}"),
            };
            let long: String = (0..40).map(|l| format!("line {l} of a long hypothesis for {i}\n")).collect();
            c.fields.push(FieldChange {
                field: "iteration.hypothesis".into(),
                before: Some(json!(long)),
                after: Some(json!(long.replace("line 7 ", "row 7 "))),
            });
            changes.push(c);
        }
        let unmanaged = (0..n / 4)
            .map(|i| Unmanaged {
                address: ldexp_core::plan::Address::Experiment {
                    project: "demo".into(),
                    environment: "production".into(),
                    key: format!("u-{i}"),
                },
                name: format!("U{i}"),
                state: "draft".into(),
            })
            .collect::<Vec<_>>();
        Plan {
            summary: Summary::of(&changes, unmanaged.len()),
            changes,
            unmanaged,
            warnings: (0..n / 4).map(|i| Warning { address: None, message: format!("warning {i}") }).collect(),
            divergences: Vec::new(),
            ..base
        }
    }

    #[test]
    fn a_huge_plan_drops_details_from_the_end_and_says_so() {
        let plan = huge_plan(300);
        let out = markdown(&plan);
        assert!(out.len() < LIMIT - COMMENT_RESERVE, "{} bytes", out.len());
        assert!(out.len() > LIMIT - COMMENT_RESERVE - 3_000, "the cut should use the space: {} bytes", out.len());
        assert!(out.starts_with("## ldexp plan\n\n**Plan: "), "{}", &out[..200]);
        // Every table row, unmanaged row and warning survives; only details go, and from the end.
        assert_eq!(out.matches("| `experiment/demo/production/exp-").count(), 300);
        assert!(out.contains("<code>experiment/demo/production/exp-00000</code>"));
        assert!(!out.contains("<code>experiment/demo/production/exp-00299</code>"));
        let kept = out.matches("<details>").count();
        assert!(kept > 0 && kept < 300);
        assert_eq!(out.matches("</details>").count(), kept);
        assert!(out.ends_with(&format!(
            "> [!NOTE]\n> Cut to stay under GitHub's 65,536-character limit, not shown: the last {} of 300 change \
             details. Run `ldexp plan --format human`, or the JSON plan (`ldexp plan --out plan.json`), to see \
             everything.\n",
            300 - kept
        )));
    }

    #[test]
    fn a_gigantic_plan_also_cuts_table_rows_and_stays_under_the_limit() {
        let plan = huge_plan(5_000);
        let out = markdown(&plan);
        assert!(out.len() < LIMIT - COMMENT_RESERVE, "{} bytes", out.len());
        assert!(!out.contains("<details>"));
        assert!(out.contains("more not shown | | |\n"));
        assert!(out.contains("the last 5000 of 5000 change details"));
        assert!(out.contains("the last 1250 of 1250 warnings"));
        assert!(out.contains("of 5000 change rows"));
    }

    #[test]
    fn cutting_is_exact_at_any_limit() {
        let plan = huge_plan(40);
        let full = markdown(&plan);
        for limit in [full.len() + 1, full.len(), full.len() - 1, 20_000, 5_000, 2_000] {
            let out = markdown_within(&plan, limit);
            assert!(out.len() < limit, "limit {limit}: {} bytes", out.len());
        }
        assert_eq!(markdown_within(&plan, full.len() + 1), full);
    }

    #[test]
    fn user_text_cannot_break_out_of_cells_or_code() {
        let mut plan = gallery(false);
        plan.changes.truncate(1);
        plan.changes[0].fields.push(FieldChange {
            field: "name".into(),
            before: Some(json!("a|b `x`")),
            after: Some(json!("<script>")),
        });
        plan.changes[0].notes.push("<b>bold</b>\nsecond line".into());
        let out = markdown(&plan);
        assert!(out.contains("| `name` | ``\"a\\|b `x`\"`` | `\"<script>\"` |"), "{out}");
        assert!(out.contains("- note: &lt;b&gt;bold&lt;/b&gt; second line\n"));
        assert_eq!(code("`x`", false), "`` `x` ``");
        assert_eq!(fenced("", &["```".to_owned()]), "````\n```\n````\n\n");
    }
}
