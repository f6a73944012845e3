//! The human rendering of a plan: Terraform-like, for a terminal, with ANSI colour only when the caller asks.
//!
//! Layout: one block per change (marker, address, action; the risk on its own `!` line; one `field: old → new`
//! line per changed field, a unified diff for `hypothesis` and `description`; the requests one per line; notes),
//! then unmanaged experiments, warnings, and the summary sentence of [`super::summary_line`]. A change that sends
//! nothing is shown with a `#` marker and its notes.

use std::fmt::Write as _;

use ldexp_core::plan::{Action, Address, Change, Divergence, Plan};

use super::{
    DiffLine, is_text_field, is_unchanged, marker, request_lines, risk_sentence, show_after, show_value, summary_line,
    text_diff,
};

/// ANSI styling that is a no-op when colour is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint(pub bool);

impl Paint {
    pub(crate) fn code(self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }
    pub(crate) fn green(self, s: &str) -> String {
        self.code("32", s)
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.code("31", s)
    }
    pub(crate) fn yellow(self, s: &str) -> String {
        self.code("33", s)
    }
    pub(crate) fn cyan(self, s: &str) -> String {
        self.code("36", s)
    }
    pub(crate) fn bold(self, s: &str) -> String {
        self.code("1", s)
    }
    pub(crate) fn alert(self, s: &str) -> String {
        self.code("1;31", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.code("2", s)
    }

    pub(crate) fn action_marker(self, action: Action) -> String {
        let m = marker(action);
        match action {
            Action::Create => self.green(m),
            Action::Update | Action::Start | Action::PatchLegacy => self.yellow(m),
            Action::Stop | Action::Archive | Action::ResetResults | Action::Delete => self.red(m),
            Action::Restart | Action::Restore => self.code("35", m),
        }
    }

    pub(crate) fn diff_line(self, l: &DiffLine) -> String {
        match l {
            DiffLine::Hunk(h) => self.cyan(h),
            DiffLine::Context(s) => format!(" {s}"),
            DiffLine::Removed(s) => self.red(&format!("-{s}")),
            DiffLine::Added(s) => self.green(&format!("+{s}")),
        }
    }
}

/// The plan for a terminal. `color` turns ANSI escapes on; the caller decides from the TTY, `NO_COLOR` and
/// `--color`.
pub(crate) fn human(plan: &Plan, color: bool) -> String {
    let plan = &*super::display_safe(plan);
    let p = Paint(color);
    let mut out = String::new();
    if !plan.changes.is_empty() {
        if !plan.is_empty() {
            let _ = writeln!(out, "ldexp will perform the following actions:\n");
        }
        for c in &plan.changes {
            change_block(&mut out, c, p);
            out.push('\n');
        }
    }
    let (catalog, experiments): (Vec<_>, Vec<_>) =
        plan.unmanaged.iter().partition(|u| matches!(u.address, Address::Metric { .. } | Address::MetricGroup { .. }));
    if !experiments.is_empty() {
        let what = if plan.prune { "archived by --prune" } else { "left alone; --prune archives them" };
        let _ = writeln!(out, "{}", p.bold(&format!("Unmanaged experiments (in no spec, {what}):")));
        for u in &experiments {
            let _ = writeln!(out, "  ? {} {} ({})", u.address, serde_json::Value::String(u.name.clone()), u.state);
        }
        out.push('\n');
    }
    if !catalog.is_empty() {
        let what = if plan.prune { "deleted by --prune" } else { "left alone; --prune deletes them" };
        let metrics = catalog.iter().filter(|u| matches!(u.address, Address::Metric { .. })).count();
        let groups = catalog.len() - metrics;
        let _ = writeln!(
            out,
            "{}",
            p.bold(&format!(
                "Unmanaged metrics and metric groups of owned projects ({metrics} metric{}, {groups} group{}; in no \
                 spec, {what}):",
                if metrics == 1 { "" } else { "s" },
                if groups == 1 { "" } else { "s" }
            ))
        );
        for u in &catalog {
            let _ = writeln!(out, "  ? {} {}", u.address, serde_json::Value::String(u.name.clone()));
        }
        out.push('\n');
    }
    if !plan.divergences.is_empty() {
        divergences(&mut out, &plan.divergences, p);
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Warnings:"));
        for w in &plan.warnings {
            let text = match &w.address {
                Some(a) => format!("{a}: {}", w.message),
                None => w.message.clone(),
            };
            let _ = writeln!(out, "  {} {text}", p.yellow("warning:"));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.bold(&summary_line(plan)));
    out
}

/// The differences no request can remove, by object: refused objects first (nothing is planned for them), then
/// those that only cannot be applied.
pub(crate) fn divergences(out: &mut String, all: &[Divergence], p: Paint) {
    let _ = writeln!(
        out,
        "{}",
        p.bold("Cannot be applied (LaunchDarkly cannot change these; `ldexp drift` reports them):")
    );
    let mut seen: Option<&ldexp_core::plan::Address> = None;
    for refused in [true, false] {
        for d in all.iter().filter(|d| d.refuses == refused) {
            if seen != Some(&d.address) {
                let what =
                    if d.refuses { p.alert("refused: nothing is planned for it") } else { p.yellow("kept as is") };
                let _ = writeln!(out, "  {} {} ({what})", p.red("✗"), p.bold(&d.address.to_string()));
                seen = Some(&d.address);
            }
            let _ = writeln!(
                out,
                "      {}: LaunchDarkly {}, spec {}",
                d.field,
                p.red(&show_value(d.remote.as_ref())),
                p.green(&show_value(d.spec.as_ref()))
            );
            let _ = writeln!(out, "          {} ({})", d.reason, d.location);
            if let Some(h) = &d.hint {
                let _ = writeln!(out, "          hint: {h}");
            }
        }
        seen = None;
    }
    out.push('\n');
}

fn change_block(out: &mut String, c: &Change, p: Paint) {
    const IND: &str = "      ";
    if c.requests.is_empty() {
        let _ = writeln!(out, "  {} {} ({}: nothing to send)", p.dim("#"), p.bold(&c.address.to_string()), c.action);
    } else {
        let _ = writeln!(out, "  {} {} ({})", p.action_marker(c.action), p.bold(&c.address.to_string()), c.action);
    }
    for risk in &c.risks {
        let _ = writeln!(out, "{IND}{}", p.alert(&format!("! {}", risk_sentence(c.action, risk))));
    }
    if !c.depends_on.is_empty() {
        let _ = writeln!(out, "{IND}after: {}", super::after_list(c));
    }
    for f in &c.fields {
        if is_unchanged(f) {
            let _ = writeln!(out, "{IND}{}", p.dim(&format!("{}: {}", f.field, show_value(f.after.as_ref()))));
        } else if is_text_field(f) {
            let _ = writeln!(out, "{IND}{}:", f.field);
            for l in text_diff(f) {
                let _ = writeln!(out, "{IND}    {}", p.diff_line(&l));
            }
        } else if c.action == Action::Create && f.before.is_none() {
            let _ = writeln!(out, "{IND}{}: {}", f.field, p.green(&show_after(c, f)));
        } else {
            let _ = writeln!(
                out,
                "{IND}{}: {} → {}",
                f.field,
                p.red(&show_value(f.before.as_ref())),
                p.green(&show_after(c, f))
            );
        }
    }
    if !c.requests.is_empty() {
        let _ = writeln!(out, "{IND}requests:");
        for line in c.requests.iter().flat_map(request_lines) {
            let _ = writeln!(out, "{IND}  {}", p.dim(&line));
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "{IND}note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden::{empty, gallery};
    use super::*;

    #[test]
    fn every_action_risk_refusal_divergence_unmanaged_and_warning() {
        insta::assert_snapshot!(human(&gallery(true), false));
    }

    #[test]
    fn colour_on() {
        insta::assert_snapshot!(human(&gallery(true), true));
    }

    #[test]
    fn colour_off_has_no_escape_and_colour_on_has_the_same_text() {
        let plain = human(&gallery(true), false);
        assert!(!plain.contains('\x1b'));
        let coloured = human(&gallery(true), true);
        assert!(coloured.contains("\x1b[1;31m! restart ends data collection of the running iteration\x1b[0m"));
        assert_eq!(strip_ansi(&coloured), plain);
    }

    #[test]
    fn risks_are_called_out_on_their_own_line() {
        let out = human(&gallery(true), false);
        assert!(out.contains("\n      ! restart ends data collection of the running iteration\n"), "{out}");
        let draft =
            out.lines().find(|l| l.starts_with("      ! restart replaces the pending draft iteration ")).unwrap();
        assert!(
            draft.ends_with(" (hypothesis \"A colleague's idea, never reviewed.\"), whose design is not the spec's"),
            "{draft}"
        );
        assert!(out.contains("\n      ! archive ends the experiment\n"));
        assert!(out.contains("\n      ! this change ends the experiment\n"), "the legacy patch stops recording: {out}");
    }

    #[test]
    fn an_archive_of_a_running_experiment_shows_the_winner_and_the_reason_it_sends() {
        let out = human(&gallery(true), false);
        let block = &out[out.find("experiment/demo/production/old-banner").unwrap()..];
        let block = &block[..block.find("\n\n").unwrap()];
        assert!(block.contains("stop.winner: (none) → \"Hidden ("), "{block}");
        assert!(block.contains(&format!("stop.reason: (none) → \"{}\"", ldexp_planner::ARCHIVE_REASON)), "{block}");
    }

    #[test]
    fn empty_plan() {
        assert_eq!(human(&empty(), false), "No changes. Remote matches the specs.\n");
        assert_eq!(human(&empty(), true), "\x1b[1mNo changes. Remote matches the specs.\x1b[0m\n");
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
