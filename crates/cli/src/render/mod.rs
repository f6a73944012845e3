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
//! - `No changes. Remote matches the specs.` when the plan sends no request ([`Plan::is_empty`]);
//! - otherwise `Plan: C to create, U to update, R to restart, A to archive.`, where those four counts are always
//!   present, and `S to start` (after update), `T to stop` (after restart), `O to restore` (after archive) and
//!   `L legacy flag(s) to patch` (last) appear only when non-zero. The counts are those of changes that carry at
//!   least one request, so the sentence always agrees with [`Plan::is_empty`] and with the exit code the cli
//!   derives from it.
//!
//! # Markers
//!
//! `+` create, `~` update / start / patch-legacy, `-` stop / archive, `±` restart / restore.

pub mod drift;
#[cfg(test)]
mod fixtures;
pub mod human;
pub mod markdown;

use std::collections::BTreeMap;

use ldexp_core::api::LegacyExperiments;
use ldexp_core::json_text::JsonText;
use ldexp_core::plan::{Action, Address, Change, FieldChange, Plan, PlannedRequest, Risk, Summary};
use serde_json::Value;

/// The plan as pretty JSON with a trailing newline: the `--out` file and `--format json`.
///
/// Deterministic: every map in a plan is ordered, so the same plan always gives the same bytes.
pub fn json(plan: &Plan) -> String {
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

/// Counts of the changes that send at least one request.
pub fn effective_summary(plan: &Plan) -> Summary {
    let acting: Vec<Change> = plan.changes.iter().filter(|c| !c.requests.is_empty()).cloned().collect();
    Summary::of(&acting, plan.unmanaged.len())
}

/// The closing sentence of every plan rendering (format in the module doc).
pub fn summary_line(plan: &Plan) -> String {
    if plan.is_empty() {
        return "No changes. Remote matches the specs.".to_owned();
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
    format!("Plan: {}.", parts.join(", "))
}

/// The one-character marker of an action.
pub fn marker(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update | Action::Start | Action::PatchLegacy => "~",
        Action::Stop | Action::Archive => "-",
        Action::Restart | Action::Restore => "±",
    }
}

/// The risk sentence of a change: `restart ends data collection of the running iteration`, `stop ends the
/// experiment`; actions whose name is not a verb of the risk (a legacy patch that stops recording) read
/// `this change ends the experiment`.
pub fn risk_sentence(action: Action, risk: Risk) -> String {
    match action {
        Action::Restart | Action::Stop | Action::Archive => format!("{action} {risk}"),
        _ => format!("this change {risk}"),
    }
}

/// The changed fields of a change: the planner's list, or, when it gave none, the leaves that differ between
/// `before` and `after`, so a rendering never hides a difference the plan carries.
pub fn changed_fields(change: &Change) -> Vec<FieldChange> {
    if !change.fields.is_empty() {
        return change.fields.clone();
    }
    let (old, new) = (change.before.as_ref().map(JsonText::value), change.after.as_ref().map(JsonText::value));
    if matches!(change.address, Address::Legacy { .. })
        && let Some(fields) = legacy_fields(old.as_ref(), new.as_ref())
    {
        return fields;
    }
    let mut before = BTreeMap::new();
    let mut after = BTreeMap::new();
    if let Some(v) = &old {
        flatten("", v, &mut before);
    }
    if let Some(v) = &new {
        flatten("", v, &mut after);
    }
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| FieldChange { field: k.clone(), before: before.get(k).cloned(), after: after.get(k).cloned() })
        .collect()
}

/// A legacy `experiments` change by metric key rather than by index: `baselineIdx`, then
/// `metrics.<key>.environments` for each metric added, removed or re-targeted, then the metric order if only it moved.
fn legacy_fields(before: Option<&Value>, after: Option<&Value>) -> Option<Vec<FieldChange>> {
    let parse = |v: Option<&Value>| -> Option<LegacyExperiments> {
        v.map_or_else(|| Some(LegacyExperiments::default()), |v| serde_json::from_value(v.clone()).ok())
    };
    let (b, a) = (parse(before)?, parse(after)?);
    let mut out = Vec::new();
    if b.baseline_idx != a.baseline_idx {
        out.push(FieldChange {
            field: "baselineIdx".into(),
            before: before.map(|_| b.baseline_idx.into()),
            after: after.map(|_| a.baseline_idx.into()),
        });
    }
    let envs = |l: &LegacyExperiments, key: &str| {
        l.items.iter().find(|i| i.metric_key == key).map(|i| Value::from(i.environments.clone()))
    };
    let mut keys: Vec<&str> = b.items.iter().map(|i| i.metric_key.as_str()).collect();
    for i in &a.items {
        if !keys.contains(&i.metric_key.as_str()) {
            keys.push(&i.metric_key);
        }
    }
    for key in keys {
        let (was, will) = (envs(&b, key), envs(&a, key));
        if was != will {
            out.push(FieldChange { field: format!("metrics.{key}.environments"), before: was, after: will });
        }
    }
    let order = |l: &LegacyExperiments| -> Vec<Value> { l.items.iter().map(|i| i.metric_key.clone().into()).collect() };
    if out.iter().all(|f| f.field == "baselineIdx") && order(&b) != order(&a) {
        out.push(FieldChange {
            field: "metrics (order)".into(),
            before: Some(order(&b).into()),
            after: Some(order(&a).into()),
        });
    }
    Some(out)
}

/// Leaves of a JSON value by dotted path (`treatments.control.allocationPercent`, `items[0].metricKey`).
/// Empty objects and arrays are leaves, so adding the first element still shows as a change.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&p, child, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        _ => {
            out.insert(if prefix.is_empty() { "(value)".to_owned() } else { prefix.to_owned() }, v.clone());
        }
    }
}

/// Whether a field is free text that reads better as a line diff than as `old → new`.
pub fn is_text_field(f: &FieldChange) -> bool {
    let last = f.field.rsplit('.').next().unwrap_or(&f.field);
    let texty = |v: &Option<Value>| matches!(v, None | Some(Value::String(_) | Value::Null));
    matches!(last, "hypothesis" | "description") && texty(&f.before) && texty(&f.after)
}

/// A value for an `old → new` line: compact JSON, or `(none)` when absent.
pub fn show_value(v: Option<&Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
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
pub enum DiffLine {
    Hunk(String),
    Context(String),
    Removed(String),
    Added(String),
}

/// A unified line diff (hunk headers, three lines of context) of a text field, remote side first.
pub fn text_diff(f: &FieldChange) -> Vec<DiffLine> {
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
pub fn request_line(r: &PlannedRequest) -> String {
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
    line
}

fn body_summary(body: Option<&Value>) -> Option<String> {
    let body = body?;
    if let Some(Value::Array(instr)) = body.get("instructions") {
        let kinds: Vec<&str> = instr.iter().filter_map(|i| i.get("kind").and_then(Value::as_str)).collect();
        return Some(kinds.join(", "));
    }
    if let Some(Value::Array(ops)) = body.get("patch") {
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
    use serde_json::json;

    #[test]
    fn summary_line_always_names_the_four_core_counts_and_adds_the_others_only_when_non_zero() {
        let plan = fixtures::plan_of(vec![
            fixtures::change(Action::Create, 1),
            fixtures::change(Action::Update, 1),
            fixtures::change(Action::Update, 1),
            fixtures::change(Action::Restart, 2),
        ]);
        assert_eq!(summary_line(&plan), "Plan: 1 to create, 2 to update, 1 to restart, 0 to archive.");
        let plan = fixtures::plan_of(vec![
            fixtures::change(Action::Start, 1),
            fixtures::change(Action::Stop, 1),
            fixtures::change(Action::Restore, 1),
            fixtures::change(Action::PatchLegacy, 1),
            fixtures::change(Action::PatchLegacy, 1),
        ]);
        assert_eq!(
            summary_line(&plan),
            "Plan: 0 to create, 0 to update, 1 to start, 0 to restart, 1 to stop, 0 to archive, 1 to restore, \
             2 legacy flags to patch."
        );
    }

    #[test]
    fn a_change_without_requests_is_not_counted_and_an_all_note_plan_has_no_changes() {
        let plan = fixtures::plan_of(vec![fixtures::change(Action::Archive, 0)]);
        assert_eq!(summary_line(&plan), "No changes. Remote matches the specs.");
        let plan = fixtures::plan_of(vec![fixtures::change(Action::Archive, 0), fixtures::change(Action::Create, 1)]);
        assert_eq!(summary_line(&plan), "Plan: 1 to create, 0 to update, 0 to restart, 0 to archive.");
    }

    #[test]
    fn fields_are_derived_from_before_and_after_when_the_planner_lists_none() {
        let mut c = fixtures::change(Action::Update, 1);
        c.before =
            Some(json!({"hypothesis": "a", "treatments": {"x": {"allocationPercent": "50"}}, "attributes": []}).into());
        c.after = Some(
            json!({"hypothesis": "a", "treatments": {"x": {"allocationPercent": "40"}}, "attributes": ["country"]})
                .into(),
        );
        let fields = changed_fields(&c);
        let got: Vec<(String, String, String)> = fields
            .iter()
            .map(|f| (f.field.clone(), show_value(f.before.as_ref()), show_value(f.after.as_ref())))
            .collect();
        assert_eq!(
            got,
            vec![
                ("attributes".to_owned(), "[]".to_owned(), "(none)".to_owned()),
                ("attributes[0]".to_owned(), "(none)".to_owned(), "\"country\"".to_owned()),
                ("treatments.x.allocationPercent".to_owned(), "\"50\"".to_owned(), "\"40\"".to_owned()),
            ]
        );
    }

    #[test]
    fn legacy_changes_are_shown_by_metric_key() {
        let got: Vec<(String, String, String)> = changed_fields(&fixtures::legacy_change())
            .iter()
            .map(|f| (f.field.clone(), show_value(f.before.as_ref()), show_value(f.after.as_ref())))
            .collect();
        let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            got,
            vec![
                row("baselineIdx", "0", "1"),
                row("metrics.clicks.environments", "[\"production\"]", "[\"production\",\"staging\"]"),
                row("metrics.signups.environments", "[]", "(none)"),
            ]
        );
        let mut reordered = fixtures::legacy_change();
        reordered.before = Some(json!({"baselineIdx": 0, "items": [{"metricKey": "a"}, {"metricKey": "b"}]}).into());
        reordered.after = Some(json!({"baselineIdx": 0, "items": [{"metricKey": "b"}, {"metricKey": "a"}]}).into());
        let f = changed_fields(&reordered);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].field.as_str(), show_value(f[0].after.as_ref())), ("metrics (order)", "[\"b\",\"a\"]".into()));
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
    fn request_lines_summarise_semantic_and_json_patches() {
        let plan = fixtures::full_plan();
        let lines: Vec<String> = plan.changes.iter().flat_map(|c| c.requests.iter().map(request_line)).collect();
        assert!(
            lines.contains(
                &"PATCH /api/v2/projects/demo/environments/production/experiments/old-banner (stopIteration, \
              archiveExperiment)"
                    .to_owned()
            )
        );
        assert!(lines.iter().any(|l| l.starts_with(
            "PATCH /api/v2/flags/demo/legacy-flag (json patch: test /experiments/items/1/metricKey, remove \
             /experiments/items/1"
        )));
    }

    #[test]
    fn json_is_pretty_deterministic_and_round_trips() {
        let plan = fixtures::full_plan();
        let a = json(&plan);
        assert!(a.ends_with("}\n"));
        assert!(a.starts_with("{\n  \"formatVersion\": 1,\n"));
        assert_eq!(a, json(&plan.clone()));
        let back: Plan = serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, plan);
        assert_eq!(json(&back), a);
    }
}
