//! `ldexp drift --baseline`: classes each difference of a [`DriftReport`] as drift, pending or conflict by
//! comparing it with the plan of the baseline specs against the same remote, and renders the report grouped by class.
//!
//! With the spec value S, the baseline value B and the remote value R of a field: the current plan lists the field
//! when S≠R, the baseline plan when B≠R. Listed only now: B=R, the spec moved (pending). Listed in both with S=B:
//! the remote moved (drift). Listed in both with S≠B: both moved (conflict). Listed only in the baseline: S=R, it is
//! no difference now and is not reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ldexp_core::plan::{Action, Address, Plan};
use serde_json::Value;

use super::drift::{BaselineSummary, Class, DriftReport, DriftedObject};
use super::human::Paint;
use super::markdown::{Part, code};
use super::{clip, is_unchanged, marker, show_value};

/// Longest value shown in a markdown cell, as in the plain drift report.
const CELL: usize = 120;

/// The name under which a change without a field list is compared: the object as a whole, by its action.
fn whole(action: Action) -> String {
    format!("(object: {action})")
}

/// What the baseline plan would change: `(address, field)` → the baseline's value.
fn baseline_values(plan: &Plan) -> BTreeMap<(Address, String), Option<Value>> {
    let mut out = BTreeMap::new();
    for c in plan.changes.iter().filter(|c| !c.requests.is_empty()) {
        let fields: Vec<_> = c.fields.iter().filter(|f| !is_unchanged(f)).collect();
        if fields.is_empty() || c.action == Action::Create {
            out.insert(
                (c.address.clone(), whole(c.action)),
                c.after.as_ref().map(ldexp_core::json_text::JsonText::value),
            );
        }
        for f in fields {
            out.insert((c.address.clone(), f.field.clone()), f.after.clone());
        }
    }
    for d in &plan.divergences {
        out.insert((d.address.clone(), d.field.clone()), d.spec.clone());
    }
    out
}

/// The class of a difference whose spec value is `spec`, given the baseline's differences.
fn class_of(known: &BTreeMap<(Address, String), Option<Value>>, key: (Address, String), spec: &Option<Value>) -> Class {
    match known.get(&key) {
        None => Class::Pending,
        Some(b) if b == spec => Class::Drift,
        Some(_) => Class::Conflict,
    }
}

/// Classes every difference of `report` (made from the current plan) against `baseline`, the plan of the baseline
/// specs against the same remote; `reference` names the baseline.
pub(crate) fn classify(report: &mut DriftReport, current: &Plan, baseline: &Plan, reference: &str) {
    let known = baseline_values(baseline);
    let mut summary = BaselineSummary { reference: reference.to_owned(), drift: 0, pending: 0, conflict: 0 };
    let mut count = |c: Class| match c {
        Class::Drift => summary.drift += 1,
        Class::Pending => summary.pending += 1,
        Class::Conflict => summary.conflict += 1,
    };
    for d in &mut report.drifted {
        if !d.remote_exists || d.fields.is_empty() {
            // Compared whole: the baseline creates it too (the remote lost it) or not (new since the baseline).
            let after = current
                .changes
                .iter()
                .find(|c| c.address == d.address && c.action == d.fix)
                .and_then(|c| c.after.as_ref().map(ldexp_core::json_text::JsonText::value));
            let class = class_of(&known, (d.address.clone(), whole(d.fix)), &after);
            d.class = Some(class);
            count(class);
            continue;
        }
        for f in &mut d.fields {
            let key = (d.address.clone(), f.field.clone());
            let class = class_of(&known, key.clone(), &f.spec);
            if class == Class::Conflict {
                f.baseline = known.get(&key).cloned().flatten();
            }
            f.class = Some(class);
            count(class);
        }
    }
    report.divergence_classes = report
        .divergences
        .iter()
        .map(|d| {
            let class = class_of(&known, (d.address.clone(), d.field.clone()), &d.spec);
            count(class);
            class
        })
        .collect();
    report.baseline = Some(summary);
}

/// The summary line of a classified report.
pub(crate) fn summary_line(b: &BaselineSummary) -> String {
    let conflicts = if b.conflict == 1 { "1 conflict".to_owned() } else { format!("{} conflicts", b.conflict) };
    let pending = match b.pending {
        1 => "1 pending change (merged, not yet applied)".to_owned(),
        n => format!("{n} pending changes (merged, not yet applied)"),
    };
    if b.drift + b.conflict > 0 {
        format!("Drift against baseline {}: {} drifted, {} pending, {conflicts}.", b.reference, b.drift, b.pending)
    } else if b.pending > 0 {
        format!("No drift against baseline {}. {pending}.", b.reference)
    } else {
        format!("No drift against baseline {}. Remote matches the specs.", b.reference)
    }
}

/// Heading and one-line meaning of each class, in the order reports list them.
const CLASSES: [(Class, &str, &str); 3] = [
    (Class::Drift, "Drift", "the remote moved away from the baseline; the spec did not change"),
    (Class::Conflict, "Conflicts", "both the remote and the spec moved since the baseline"),
    (Class::Pending, "Pending", "the spec changed since the baseline; the remote still has the baseline's value"),
];

/// `d` restricted to what falls in `class`; `None` when nothing does.
fn in_class(d: &DriftedObject, class: Class) -> Option<DriftedObject> {
    if d.class.is_some() {
        return (d.class == Some(class)).then(|| d.clone());
    }
    let fields: Vec<_> = d.fields.iter().filter(|f| f.class == Some(class)).cloned().collect();
    (!fields.is_empty()).then(|| DriftedObject { fields, ..d.clone() })
}

/// The drifted objects of a classified report, one group per class, for a terminal.
pub(crate) fn human_groups(out: &mut String, report: &DriftReport, p: Paint) {
    const IND: &str = "      ";
    for (class, title, meaning) in CLASSES {
        let objects: Vec<DriftedObject> = report.drifted.iter().filter_map(|d| in_class(d, class)).collect();
        let divergences =
            report.divergences.iter().zip(&report.divergence_classes).filter(|(_, c)| **c == class).count();
        if objects.is_empty() && divergences == 0 {
            continue;
        }
        let _ = writeln!(out, "{}", p.bold(&format!("{title} ({meaning}):")));
        for d in &objects {
            let _ = writeln!(out, "  {} {} (fix: {})", p.action_marker(d.fix), p.bold(&d.address.to_string()), d.fix);
            if d.class.is_some() {
                if d.remote_exists {
                    let _ = writeln!(out, "{IND}the object as a whole ({})", d.fix);
                } else {
                    let _ = writeln!(out, "{IND}missing remotely ({} fields in the spec)", d.fields.len());
                }
                continue;
            }
            for f in &d.fields {
                let _ = writeln!(out, "{IND}{}:", f.field);
                let _ = writeln!(out, "{IND}  remote   {}", p.red(&show_value(f.remote.as_ref())));
                if class == Class::Conflict {
                    let _ = writeln!(out, "{IND}  baseline {}", show_value(f.baseline.as_ref()));
                }
                let _ = writeln!(out, "{IND}  spec     {}", p.green(&show_value(f.spec.as_ref())));
            }
        }
        if divergences > 0 {
            let _ = writeln!(out, "  {divergences} of the differences that cannot be applied (listed below)");
        }
        out.push('\n');
    }
}

/// One markdown table per class of a classified report.
pub(crate) fn markdown_parts(report: &DriftReport) -> Vec<Part> {
    let mut parts = Vec::new();
    for (class, title, meaning) in CLASSES {
        let rows: Vec<String> = report
            .drifted
            .iter()
            .filter_map(|d| in_class(d, class))
            .map(|d| {
                let obj = format!("{} {}", code(marker(d.fix), true), code(&d.address.to_string(), true));
                let mut rows = String::new();
                if d.class.is_some() {
                    let remote = if d.remote_exists { "*(exists)*" } else { "*(missing)*" };
                    let _ =
                        writeln!(rows, "| {obj} | {} | *(object)* | {remote} | *({} fields)* |", d.fix, d.fields.len());
                    return rows;
                }
                for f in &d.fields {
                    // A conflict also shows the baseline's value: it is neither side's.
                    let baseline = if class == Class::Conflict {
                        format!(" {} |", code(&clip(&show_value(f.baseline.as_ref()), CELL), true))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        rows,
                        "| {obj} | {} | {} | {} |{baseline} {} |",
                        d.fix,
                        code(&f.field, true),
                        code(&clip(&show_value(f.remote.as_ref()), CELL), true),
                        code(&clip(&show_value(f.spec.as_ref()), CELL), true)
                    );
                }
                rows
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let columns = if class == Class::Conflict {
            "| Object | Fix | Field | Remote | Baseline | Spec |\n|---|---|---|---|---|---|\n"
        } else {
            "| Object | Fix | Field | Remote | Spec |\n|---|---|---|---|---|\n"
        };
        let mut meaning = meaning.to_owned();
        if let Some(first) = meaning.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let header = format!("### {title}\n\n{meaning}.\n\n{columns}");
        let what = match class {
            Class::Drift => "drifted objects",
            Class::Conflict => "conflicting objects",
            Class::Pending => "pending objects",
        };
        parts.push(Part::new(what, &header, rows, "\n", |n| format!("| … | {n} more objects not shown | | | |\n")));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::super::golden::gallery;
    use super::*;

    #[test]
    fn the_same_plan_as_baseline_is_all_drift_and_an_empty_baseline_all_pending() {
        let plan = gallery(false);
        let mut report = DriftReport::from_plan(&plan);
        classify(&mut report, &plan, &plan, "v1");
        let b = report.baseline.clone().unwrap();
        assert!(b.drift > 0 && b.pending == 0 && b.conflict == 0, "{b:?}");
        assert!(report.needs_attention());

        let empty = Plan::of(plan.specs_digest.clone(), Vec::new());
        let mut report = DriftReport::from_plan(&plan);
        classify(&mut report, &plan, &empty, "v1");
        let b = report.baseline.clone().unwrap();
        assert!(b.pending > 0 && b.drift == 0 && b.conflict == 0, "{b:?}");
        assert!(!report.needs_attention(), "pending alone exits 0");
        assert!(super::super::drift::human(&report, false).contains("pending changes (merged, not yet applied)"));
    }

    #[test]
    fn a_field_the_baseline_sets_differently_is_a_conflict() {
        let plan = gallery(false);
        let mut baseline = plan.clone();
        let change = baseline
            .changes
            .iter_mut()
            .find(|c| c.action != Action::Create && !c.requests.is_empty() && c.fields.iter().any(|f| !is_unchanged(f)))
            .unwrap();
        let address = change.address.clone();
        let field = change.fields.iter_mut().find(|f| !is_unchanged(f)).unwrap();
        let name = field.field.clone();
        field.after = Some(Value::String("something else".into()));
        let mut report = DriftReport::from_plan(&plan);
        classify(&mut report, &plan, &baseline, "v1");
        let f = report
            .drifted
            .iter()
            .find(|d| d.address == address)
            .and_then(|d| d.fields.iter().find(|f| f.field == name))
            .unwrap();
        assert_eq!(f.class, Some(Class::Conflict));
        assert_eq!(f.baseline, Some(Value::String("something else".into())));
        let md = super::super::drift::markdown(&report);
        assert!(md.contains("### Conflicts") && md.contains("### Drift"), "{md}");
    }
}
