//! Renderings of a [`Plan`] (human, markdown, json) and of the drift report built from one; pure string functions.
//!
//! Entry points: [`human::human`], [`markdown::markdown`], [`json`]; for `drift`, [`drift::DriftReport`] and
//! [`drift::human`], [`drift::json`], [`drift::markdown`]. The caller decides colour (TTY, `NO_COLOR`, `--color`);
//! nothing here looks at the environment.
//!
//! # Summary line
//!
//! Every rendering of a plan ends with the same sentence, built by [`summary_line`]:
//!
//! - `No changes. Remote matches the specs.` when the plan sends no request ([`Plan::is_empty`]) and has no
//!   divergence;
//! - otherwise `Plan: C to create, U to update, R to restart, A to archive.`, where those four counts are always
//!   present, and `S to start` (after update), `T to stop` (after restart), `O to restore` (after archive) and
//!   `L legacy flag(s) to patch` (last) appear only when non-zero. The counts are those of changes that carry at
//!   least one request, so the sentence always agrees with [`Plan::is_empty`] and with the exit code the cli
//!   derives from it (`No changes to apply.` when nothing is sent but divergences remain);
//! - then ` N object(s) refused.` and ` M difference(s) cannot be applied.` when the plan has such divergences.
//!
//! # Markers
//!
//! `+` create, `~` update / start / patch-legacy, `-` stop / archive, `±` restart / restore.

pub(crate) mod drift;
pub(crate) mod drift_baseline;
#[cfg(test)]
pub(crate) mod golden;
pub(crate) mod human;
pub(crate) mod markdown;

use ldexp_core::plan::{Action, Change, FieldChange, Plan, PlannedRequest, Risk, Summary};
use serde_json::Value;

/// The plan as pretty JSON with a trailing newline: the `--out` file and `--format json`.
///
/// Deterministic: every map in a plan is ordered, so the same plan always gives the same bytes.
pub(crate) fn json(plan: &Plan) -> String {
    to_pretty_json(plan)
}

/// Pretty JSON with a trailing newline. Serialising the plan types cannot fail (every map key is a string), but
/// should it ever, the output stays valid JSON that says so instead of panicking.
pub(crate) fn to_pretty_json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": {}}}\n", Value::String(format!("cannot serialise: {e}"))),
    }
}

/// `value` with every string in it made safe to show ([`ldexp_core::display::escape`]): names, descriptions,
/// hypotheses, keys and messages come from specs and from LaunchDarkly, and a bidirectional or terminal control
/// character in one must not change what a reviewer reads. Borrowed when there is nothing to escape, which is the
/// usual case; the JSON renderings never go through this, they carry the values exactly.
pub(crate) fn display_safe<T>(value: &T) -> std::borrow::Cow<'_, T>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    fn walk(v: &mut Value) -> bool {
        match v {
            Value::String(s) => match ldexp_core::display::escape(s) {
                std::borrow::Cow::Owned(e) => {
                    *s = e;
                    true
                }
                std::borrow::Cow::Borrowed(_) => false,
            },
            Value::Array(a) => a.iter_mut().fold(false, |changed, v| walk(v) | changed),
            Value::Object(m) => {
                let mut changed = false;
                let entries = std::mem::take(m);
                for (k, mut v) in entries {
                    changed |= walk(&mut v);
                    let key = ldexp_core::display::escape(&k).into_owned();
                    changed |= key != k;
                    m.insert(key, v);
                }
                changed
            }
            _ => false,
        }
    }
    let Ok(mut v) = serde_json::to_value(value) else { return std::borrow::Cow::Borrowed(value) };
    if !walk(&mut v) {
        return std::borrow::Cow::Borrowed(value);
    }
    match serde_json::from_value(v) {
        Ok(safe) => std::borrow::Cow::Owned(safe),
        Err(_) => std::borrow::Cow::Borrowed(value),
    }
}

/// Counts of the changes that send at least one request.
pub(crate) fn effective_summary(plan: &Plan) -> Summary {
    let acting: Vec<Change> = plan.changes.iter().filter(|c| !c.requests.is_empty()).cloned().collect();
    Summary::of(&acting, plan.unmanaged.len())
}

/// The closing sentence of every plan rendering (format in the module doc).
pub(crate) fn summary_line(plan: &Plan) -> String {
    let refused = plan.refused_addresses().len();
    let unappliable = plan.divergences.iter().filter(|d| !d.refuses).count();
    let mut tail = String::new();
    if refused > 0 {
        tail.push_str(&format!(" {refused} {} refused.", if refused == 1 { "object" } else { "objects" }));
    }
    if unappliable > 0 {
        tail.push_str(&format!(
            " {unappliable} {} cannot be applied.",
            if unappliable == 1 { "difference" } else { "differences" }
        ));
    }
    if plan.is_empty() {
        return if tail.is_empty() {
            "No changes. Remote matches the specs.".to_owned()
        } else {
            format!("No changes to apply.{tail}")
        };
    }
    let s = effective_summary(plan);
    let mut parts = vec![format!("{} to create", s.create), format!("{} to update", s.update)];
    if s.start > 0 {
        parts.push(format!("{} to start", s.start));
    }
    parts.push(format!("{} to restart", s.restart));
    if s.stop > 0 {
        parts.push(format!("{} to stop", s.stop));
    }
    parts.push(format!("{} to archive", s.archive));
    if s.restore > 0 {
        parts.push(format!("{} to restore", s.restore));
    }
    if s.patch_legacy > 0 {
        let flags = if s.patch_legacy == 1 { "flag" } else { "flags" };
        parts.push(format!("{} legacy {flags} to patch", s.patch_legacy));
    }
    if s.delete > 0 {
        parts.push(format!("{} to delete", s.delete));
    }
    format!("Plan: {}.{tail}", parts.join(", "))
}

/// The changes a change waits for, as the plan orders them: `metric/shop/a, metric-group/shop/f`.
pub(crate) fn after_list(c: &Change) -> String {
    c.depends_on.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The one-character marker of an action.
pub(crate) fn marker(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update | Action::Start | Action::PatchLegacy => "~",
        Action::Stop | Action::Archive | Action::ResetResults | Action::Delete => "-",
        Action::Restart | Action::Restore => "±",
    }
}

/// The risk sentence of a change: `restart ends data collection of the running iteration`, `stop ends the
/// experiment`; actions whose name is not a verb of the risk (a legacy patch that stops recording) read
/// `this change ends the experiment`.
pub(crate) fn risk_sentence(action: Action, risk: &Risk) -> String {
    match action {
        Action::Restart | Action::Stop | Action::Archive | Action::Delete => format!("{action} {risk}"),
        _ => format!("this change {risk}"),
    }
}

/// Whether a field is free text that reads better as a line diff than as `old → new`.
pub(crate) fn is_text_field(f: &FieldChange) -> bool {
    let last = f.field.rsplit('.').next().unwrap_or(&f.field);
    let texty = |v: &Option<Value>| matches!(v, None | Some(Value::String(_) | Value::Null));
    matches!(last, "hypothesis" | "description") && texty(&f.before) && texty(&f.after)
}

/// A value for an `old → new` line: compact JSON, or `(none)` when absent. A list of metric references reads as
/// their keys, a group marked `(group)`: `checkout-conversion, checkout-funnel (group)`.
pub(crate) fn show_value(v: Option<&Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(v) => metric_list(v).unwrap_or_else(|| v.to_string()),
    }
}

/// `a, b (group)` for an array of `{key, group}` objects (the design's `metrics`), else `None`.
fn metric_list(v: &Value) -> Option<String> {
    let items = v.as_array().filter(|a| !a.is_empty())?;
    let names: Option<Vec<String>> = items
        .iter()
        .map(|m| {
            let o = m.as_object().filter(|o| o.keys().all(|k| k == "key" || k == "group"))?;
            let key = o.get("key")?.as_str()?;
            Some(if o.get("group").and_then(Value::as_bool) == Some(true) {
                format!("{key} (group)")
            } else {
                key.to_owned()
            })
        })
        .collect();
    names.map(|n| n.join(", "))
}

/// Whether a field line repeats a value the request sends unchanged (shown so the body is complete, not as a
/// change).
pub(crate) fn is_unchanged(f: &FieldChange) -> bool {
    f.before.is_some() && f.before == f.after
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn text_of(v: Option<&Value>) -> &str {
    match v {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

/// One line of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiffLine {
    Hunk(String),
    Context(String),
    Removed(String),
    Added(String),
}

/// A unified line diff (hunk headers, three lines of context) of a text field, remote side first.
pub(crate) fn text_diff(f: &FieldChange) -> Vec<DiffLine> {
    // A trailing newline on both sides keeps `similar` from reporting a missing one as a change.
    let old = format!("{}\n", text_of(f.before.as_ref()));
    let new = format!("{}\n", text_of(f.after.as_ref()));
    let old = if f.before.is_none() || matches!(f.before, Some(Value::Null)) { String::new() } else { old };
    let new = if f.after.is_none() || matches!(f.after, Some(Value::Null)) { String::new() } else { new };
    let diff = similar::TextDiff::from_lines(&old, &new);
    let mut out = Vec::new();
    for hunk in diff.unified_diff().context_radius(3).missing_newline_hint(false).iter_hunks() {
        out.push(DiffLine::Hunk(hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let line = change.value().trim_end_matches('\n').to_owned();
            out.push(match change.tag() {
                similar::ChangeTag::Equal => DiffLine::Context(line),
                similar::ChangeTag::Delete => DiffLine::Removed(line),
                similar::ChangeTag::Insert => DiffLine::Added(line),
            });
        }
    }
    out
}

/// A request on one line: `PATCH /api/v2/… (stopIteration, archiveExperiment)`; the body is summarised, never
/// printed whole (the JSON plan has it).
pub(crate) fn request_line(r: &PlannedRequest) -> String {
    let mut line = format!("{} {}", r.method, r.path);
    if !r.query.is_empty() {
        let q: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push('?');
        line.push_str(&q.join("&"));
    }
    if let Some(detail) = body_summary(r.body.as_ref()) {
        line.push_str(" (");
        line.push_str(&detail);
        line.push(')');
    }
    // The audit-log comment is written into LaunchDarkly too.
    if let Some(comment) = r.body.as_ref().and_then(|b| b.get("comment")).and_then(Value::as_str) {
        line.push_str(" comment ");
        line.push_str(&Value::String(comment.to_owned()).to_string());
    }
    line
}

/// Whether `field` (as [`Change::fields`] names it) is filled in at apply time by one of `c`'s requests, so the
/// value shown is only what it was at plan time.
pub(crate) fn is_bound(c: &Change, field: &str) -> bool {
    c.requests.iter().flat_map(|r| &r.bind).any(|b| {
        let bound = b.field();
        bound == field || bound.strip_prefix("iteration.") == Some(field)
    })
}

/// A field's new value as shown, marked when the applier fills it in at send time.
pub(crate) fn show_after(c: &Change, f: &FieldChange) -> String {
    let v = show_value(f.after.as_ref());
    if is_bound(c, &f.field) { format!("{v} now, bound at apply time") } else { v }
}

/// [`request_line`], then one line per body field the applier fills in when it sends the request: the only values
/// a reviewer does not see exactly, so each says where it comes from.
pub(crate) fn request_lines(r: &PlannedRequest) -> Vec<String> {
    let mut out = vec![request_line(r)];
    for b in &r.bind {
        out.push(format!("  bound at apply time: {} = {}", b.field(), b.value));
    }
    out
}

fn body_summary(body: Option<&Value>) -> Option<String> {
    let body = body?;
    if let Some(Value::Array(instr)) = body.get("instructions") {
        let kinds: Vec<&str> = instr.iter().filter_map(|i| i.get("kind").and_then(Value::as_str)).collect();
        return Some(kinds.join(", "));
    }
    // A flag's patch is `{comment, patch: [...]}`; a metric's or a metric group's is the bare RFC 6902 array.
    if let Some(ops) = body.get("patch").and_then(Value::as_array).or_else(|| body.as_array()) {
        let ops: Vec<String> = ops
            .iter()
            .map(|o| {
                let op = o.get("op").and_then(Value::as_str).unwrap_or("?");
                let path = o.get("path").and_then(Value::as_str).unwrap_or("?");
                format!("{op} {path}")
            })
            .collect();
        return Some(format!("json patch: {}", ops.join(", ")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use golden::{gallery, planner_goldens};
    use serde_json::json;

    #[test]
    fn summary_line_names_the_core_counts_the_others_when_non_zero_and_what_cannot_be_applied() {
        assert_eq!(
            summary_line(&gallery(true)),
            "Plan: 2 to create, 2 to update, 1 to restart, 2 to archive, 1 to restore, 1 legacy flag to patch. 1 \
             object refused. 2 differences cannot be applied."
        );
        assert_eq!(summary_line(&golden::empty()), "No changes. Remote matches the specs.");
        let mut only_divergences = gallery(false);
        only_divergences.changes.clear();
        assert_eq!(
            summary_line(&only_divergences),
            "No changes to apply. 1 object refused. 2 differences cannot be applied."
        );
    }

    #[test]
    fn a_change_without_requests_is_not_counted() {
        let mut plan = gallery(false);
        plan.divergences.clear();
        for c in &mut plan.changes {
            if c.action != Action::Create {
                c.requests.clear();
            }
        }
        assert_eq!(summary_line(&plan), "Plan: 2 to create, 0 to update, 0 to restart, 0 to archive.");
    }

    #[test]
    fn metric_lists_read_as_keys_with_groups_marked() {
        let v = json!([{"group": false, "key": "checkout-conversion"}, {"group": true, "key": "checkout-funnel"}]);
        assert_eq!(show_value(Some(&v)), "checkout-conversion, checkout-funnel (group)");
        assert_eq!(show_value(Some(&json!(["country"]))), "[\"country\"]");
        assert_eq!(show_value(None), "(none)");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn text_diff_shows_only_changed_lines_with_context() {
        let f = FieldChange {
            field: "iteration.hypothesis".into(),
            before: Some(json!("one\ntwo\nthree")),
            after: Some(json!("one\n2\nthree")),
        };
        assert!(is_text_field(&f));
        assert_eq!(
            text_diff(&f),
            vec![
                DiffLine::Hunk("@@ -1,3 +1,3 @@".into()),
                DiffLine::Context("one".into()),
                DiffLine::Removed("two".into()),
                DiffLine::Added("2".into()),
                DiffLine::Context("three".into()),
            ]
        );
        let created = FieldChange { field: "description".into(), before: None, after: Some(json!("new")) };
        assert_eq!(text_diff(&created), vec![DiffLine::Hunk("@@ -0,0 +1 @@".into()), DiffLine::Added("new".into())]);
    }

    #[test]
    fn request_lines_summarise_semantic_and_json_patches_with_their_comment() {
        let plan = gallery(true);
        let lines: Vec<String> = plan.changes.iter().flat_map(|c| c.requests.iter().map(request_line)).collect();
        assert!(
            lines.contains(
                &"PATCH /api/v2/projects/demo/environments/production/experiments/orphan (stopIteration) comment \
                  \"ldexp: stop experiment/demo/production/orphan\""
                    .to_owned()
            ),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with(
                "PATCH /api/v2/flags/demo/pricing-banner (json patch: test /experiments/items/0/metricKey"
            )),
            "{lines:#?}"
        );
    }

    #[test]
    fn json_is_pretty_deterministic_and_round_trips() {
        let plan = gallery(true);
        let a = json(&plan);
        assert!(a.ends_with("}\n"));
        assert!(a.starts_with(&format!("{{\n  \"formatVersion\": {},\n", ldexp_core::plan::FORMAT_VERSION)));
        assert_eq!(a, json(&gallery(true)));
        let back: Plan = serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, plan);
        assert_eq!(json(&back), a);
    }

    /// Names, values and messages from specs or LaunchDarkly cannot carry bidirectional or terminal controls into a
    /// terminal or a PR comment: they are shown escaped there, and kept exact in JSON.
    #[test]
    fn control_characters_from_specs_or_launchdarkly_are_shown_escaped() {
        let mut plan = gallery(true);
        let evil = "Checkout \u{202E}txt.exe\u{202C} \x1b[2J\u{200B}done";
        plan.unmanaged[0].name = evil.to_owned();
        plan.changes[0].fields.push(FieldChange { field: "name".into(), before: None, after: Some(json!(evil)) });
        plan.warnings.push(ldexp_core::plan::Warning { address: None, message: evil.to_owned() });
        let report = drift::DriftReport::from_plan(&plan);
        for (what, text) in [
            ("human", human::human(&plan, false)),
            ("markdown", markdown::markdown(&plan)),
            ("drift", drift::human(&report, false)),
            ("drift markdown", drift::markdown(&report)),
        ] {
            for c in ['\u{202E}', '\u{202C}', '\x1b', '\u{200B}'] {
                assert!(!text.contains(c), "{what} shows {c:?} raw");
            }
            assert!(text.contains("Checkout \\u{202E}txt.exe\\u{202C} \\u{1B}[2J\\u{200B}done"), "{what}:\n{text}");
        }
        // The JSON plan is data, not display: it keeps the value exactly.
        let back: Plan = serde_json::from_str(&json(&plan)).unwrap();
        assert_eq!(back.unmanaged[0].name, evil);
        // Colour still works around escaped text.
        assert!(human::human(&plan, true).contains("\x1b[1m"));
    }

    /// The block of one change in a rendering: from its header line to the blank line (human) or `</details>`
    /// (markdown) that ends it.
    fn block<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
        let at = text.find(start).unwrap_or_else(|| panic!("no `{start}` in:\n{text}"));
        let rest = &text[at..];
        &rest[..rest.find(end).unwrap_or(rest.len())]
    }

    /// Every leaf of a JSON value, with the key it sits under.
    fn leaves<'a>(key: &'a str, v: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| leaves(k, c, out)),
            Value::Array(a) => a.iter().for_each(|c| leaves(key, c, out)),
            _ => out.push((key, v)),
        }
    }

    /// Whether `text` shows the leaf: a string verbatim (or as JSON, or HTML-escaped), a number's digits, a true
    /// boolean's name (`baseline`, `canReshuffleTraffic`; `isGroup` as `(group)`). A false flag is the absence of
    /// its marker, except for settings shown by name.
    fn shows(text: &str, key: &str, leaf: &Value) -> bool {
        match leaf {
            Value::String(s) => {
                text.contains(s.as_str())
                    || text.contains(&Value::String(s.clone()).to_string())
                    || text.contains(&markdown::html(s))
                    || text.contains(&markdown::html(&Value::String(s.clone()).to_string()))
            }
            Value::Number(n) => text.contains(&n.to_string()),
            Value::Bool(b) => match key {
                "isGroup" => !*b || text.contains("(group)"),
                "baseline" => !*b || text.contains("baseline"),
                _ => text.contains(key),
            },
            Value::Null => true,
            _ => false,
        }
    }

    /// For every request of every golden plan, every leaf of the body appears in the human and the markdown
    /// rendering of its change: apply never writes a value the reviewer was not shown.
    #[test]
    fn every_value_a_request_writes_is_shown_to_the_reviewer() {
        let mut plans = planner_goldens();
        plans.push(("the gallery".to_owned(), gallery(true)));
        let mut checked = 0;
        for (name, plan) in &plans {
            let human = human::human(plan, false);
            let md = markdown::markdown(plan);
            for c in plan.changes.iter().filter(|c| !c.requests.is_empty()) {
                let h = block(&human, &format!(" {} ({})", c.address, c.action), "\n\n");
                let m = block(&md, &format!("<code>{}</code> {}", c.address, c.action), "</details>");
                for r in &c.requests {
                    let mut all = Vec::new();
                    if let Some(body) = &r.body {
                        leaves("", body, &mut all);
                    }
                    for (key, leaf) in all {
                        for (format, text) in [("human", h), ("markdown", m)] {
                            assert!(
                                shows(text, key, leaf),
                                "{name}: {} {} writes `{key}: {leaf}`, which the {format} rendering of {} does not \
                                 show:\n{text}",
                                r.method,
                                r.path,
                                c.address
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 500, "only {checked} values checked");
    }
}
