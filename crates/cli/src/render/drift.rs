//! The drift report of `ldexp drift`: which objects differ from the specs, field by field, built from a [`Plan`],
//! and its human, json and markdown renderings.
//!
//! An object has drifted when the plan would send it at least one request, or when the plan has a divergence for it
//! (a difference no request can remove: a creation-only field, a stopped iteration's winner); so `drift` and `plan`
//! always agree, and nothing the plan cannot fix reads as "No drift". Unmanaged experiments are listed but are not
//! drift: they are in no spec, and `plan` without `--prune` leaves them alone. `ldexp drift` exits 0 when
//! [`DriftReport::in_sync`], 2 otherwise, 1 on error.

use std::fmt::Write as _;

use ldexp_core::plan::{Action, Address, Divergence, FORMAT_VERSION, Plan, Risk, Unmanaged, Warning};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::human::Paint;
use super::markdown::{COMMENT_RESERVE, LIMIT, Part, cell, code, divergences_part, fit, unmanaged_part, warnings_part};
use super::{clip, is_text_field, is_unchanged, marker, risk_sentence, show_value, text_diff, to_pretty_json};

/// Everything that differs between the remote and the specs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DriftReport {
    pub format_version: u32,
    pub in_sync: bool,
    pub specs_digest: String,
    pub drifted: Vec<DriftedObject>,
    /// Differences no request can remove; each one is drift too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergences: Vec<Divergence>,
    pub unmanaged: Vec<Unmanaged>,
    pub warnings: Vec<Warning>,
    /// With `--baseline`: what the baseline is and how many differences fall in each class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// With `--baseline`: the class of each of `divergences`, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergence_classes: Vec<Class>,
}

/// Whether the remote, the spec or both moved away from the baseline (the spec set as last applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Class {
    /// The remote moved away from the baseline; the spec did not change.
    Drift,
    /// Both the remote and the spec moved, to different values.
    Conflict,
    /// The spec changed since the baseline; the remote still has the baseline's value (merged, not yet applied).
    Pending,
}

/// The baseline a report was classified against, and the count of differences in each class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BaselineSummary {
    /// The git revision or folder given.
    pub reference: String,
    pub drift: usize,
    pub pending: usize,
    pub conflict: usize,
}

/// One object whose remote state differs from its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DriftedObject {
    pub address: Address,
    /// The action `apply` would take to bring it back.
    pub fix: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    /// False when the object is missing remotely (the fix creates it).
    pub remote_exists: bool,
    pub fields: Vec<FieldDrift>,
    /// With `--baseline`, for an object classified whole (missing remotely, or a change without fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
}

/// One field that differs; a side that has no value is omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldDrift {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// With `--baseline`: the field's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
    /// With `--baseline`, for a conflict: the value the baseline has (neither the remote's nor the spec's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
}

impl DriftReport {
    /// The drift a plan reveals.
    pub(crate) fn from_plan(plan: &Plan) -> Self {
        let drifted: Vec<DriftedObject> = plan
            .changes
            .iter()
            .filter(|c| !c.requests.is_empty())
            .map(|c| DriftedObject {
                address: c.address.clone(),
                fix: c.action,
                risks: c.risks.clone(),
                remote_exists: c.action != Action::Create,
                fields: c
                    .fields
                    .iter()
                    .filter(|f| !is_unchanged(f))
                    .map(|f| FieldDrift {
                        field: f.field.clone(),
                        remote: f.before.clone(),
                        spec: f.after.clone(),
                        class: None,
                        baseline: None,
                    })
                    .collect(),
                class: None,
            })
            .collect();
        DriftReport {
            format_version: FORMAT_VERSION,
            in_sync: drifted.is_empty() && plan.divergences.is_empty(),
            specs_digest: plan.specs_digest.clone(),
            drifted,
            divergences: plan.divergences.clone(),
            unmanaged: plan.unmanaged.clone(),
            warnings: plan.warnings.clone(),
            baseline: None,
            divergence_classes: Vec::new(),
        }
    }

    /// True when `drift` should exit 2: anything differs, except that with a baseline only drift and conflicts
    /// count (pending changes are merged specs waiting for `apply`, not a problem).
    pub(crate) fn needs_attention(&self) -> bool {
        match &self.baseline {
            Some(b) => b.drift + b.conflict > 0,
            None => !self.in_sync,
        }
    }

    /// The closing sentence of every rendering.
    pub(crate) fn summary_line(&self) -> String {
        if let Some(b) = &self.baseline {
            return super::drift_baseline::summary_line(b);
        }
        let mut objects: Vec<&Address> =
            self.drifted.iter().map(|d| &d.address).chain(self.divergences.iter().map(|d| &d.address)).collect();
        objects.sort();
        objects.dedup();
        let unappliable = match self.divergences.len() {
            0 => String::new(),
            1 => " 1 difference cannot be applied.".to_owned(),
            n => format!(" {n} differences cannot be applied."),
        };
        match objects.len() {
            0 => "No drift. Remote matches the specs.".to_owned(),
            1 => format!("Drift: 1 object differs from the specs.{unappliable}"),
            n => format!("Drift: {n} objects differ from the specs.{unappliable}"),
        }
    }
}

/// The report for a terminal; `color` as for [`super::human`].
pub(crate) fn human(report: &DriftReport, color: bool) -> String {
    let report = &*super::display_safe(report);
    const IND: &str = "      ";
    let p = Paint(color);
    let mut out = String::new();
    if report.baseline.is_some() {
        super::drift_baseline::human_groups(&mut out, report, p);
    }
    for d in report.drifted.iter().filter(|_| report.baseline.is_none()) {
        let _ = writeln!(out, "  {} {} (fix: {})", p.action_marker(d.fix), p.bold(&d.address.to_string()), d.fix);
        for r in &d.risks {
            let _ = writeln!(out, "{IND}{}", p.alert(&format!("! fixing it: {}", risk_sentence(d.fix, r))));
        }
        if !d.remote_exists {
            // Every field of a missing object differs; the JSON report lists them, here they would only be noise.
            let _ = writeln!(out, "{IND}missing remotely ({} fields in the spec)", d.fields.len());
            out.push('\n');
            continue;
        }
        for f in &d.fields {
            let fc = ldexp_core::plan::FieldChange {
                field: f.field.clone(),
                before: f.remote.clone(),
                after: f.spec.clone(),
            };
            let _ = writeln!(out, "{IND}{}:", f.field);
            if is_text_field(&fc) && f.remote.is_some() {
                for l in text_diff(&fc) {
                    let _ = writeln!(out, "{IND}    {}", p.diff_line(&l));
                }
            } else {
                let _ = writeln!(out, "{IND}  remote {}", p.red(&show_value(f.remote.as_ref())));
                let _ = writeln!(out, "{IND}  spec   {}", p.green(&show_value(f.spec.as_ref())));
            }
        }
        out.push('\n');
    }
    if !report.divergences.is_empty() {
        super::human::divergences(&mut out, &report.divergences, p);
    }
    if !report.unmanaged.is_empty() {
        let title = super::markdown::unmanaged_title(&report.unmanaged);
        let _ = writeln!(out, "{}", p.bold(&format!("{title} (in no spec; not counted as drift):")));
        for u in &report.unmanaged {
            let _ = writeln!(out, "  ? {} {} ({})", u.address, Value::String(u.name.clone()), u.state);
        }
        out.push('\n');
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Warnings:"));
        for w in &report.warnings {
            let text = w.address.as_ref().map_or_else(|| w.message.clone(), |a| format!("{a}: {}", w.message));
            let _ = writeln!(out, "  {} {text}", p.yellow("warning:"));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.bold(&report.summary_line()));
    if report.needs_attention() {
        let _ = writeln!(out, "Run `ldexp plan` to see the requests that would fix it.");
    } else if report.baseline.as_ref().is_some_and(|b| b.pending > 0) {
        let _ = writeln!(out, "`ldexp apply` applies them.");
    }
    out
}

/// The report as pretty JSON with a trailing newline; deterministic.
pub(crate) fn json(report: &DriftReport) -> String {
    to_pretty_json(report)
}

/// The report as markdown (for an issue opened by a nightly job), always shorter than 65,536 characters with room
/// to spare for the heading the GitHub Action puts on it ([`COMMENT_RESERVE`]).
pub(crate) fn markdown(report: &DriftReport) -> String {
    markdown_within(report, LIMIT - COMMENT_RESERVE)
}

/// Longest value shown in a markdown cell; the JSON report has every value whole.
const CELL: usize = 120;

fn markdown_within(report: &DriftReport, limit: usize) -> String {
    let report = &*super::display_safe(report);
    let head = format!("## ldexp drift\n\n**{}**\n\n", report.summary_line());
    let mut parts = Vec::new();
    if !report.divergences.is_empty() {
        parts.push(divergences_part(&report.divergences));
    }
    if !report.unmanaged.is_empty() {
        parts.push(unmanaged_part("In no spec; not counted as drift.", &report.unmanaged));
    }
    if !report.warnings.is_empty() {
        parts.push(warnings_part(&report.warnings));
    }
    if report.baseline.is_some() {
        parts.extend(super::drift_baseline::markdown_parts(report));
    } else if !report.drifted.is_empty() {
        let rows = report
            .drifted
            .iter()
            .map(|d| {
                let obj = format!("{} {}", code(marker(d.fix), true), code(&d.address.to_string(), true));
                let fix = match d.risks.as_slice() {
                    [] => d.fix.to_string(),
                    risks => format!(
                        "{} {}",
                        d.fix,
                        risks.iter().map(|r| cell(&format!("⚠️ {r}"))).collect::<Vec<_>>().join("<br>")
                    ),
                };
                let mut rows = String::new();
                if !d.remote_exists {
                    let _ =
                        writeln!(rows, "| {obj} | {fix} | *(object)* | *(missing)* | *({} fields)* |", d.fields.len());
                    return rows;
                }
                for f in &d.fields {
                    let _ = writeln!(
                        rows,
                        "| {obj} | {fix} | {} | {} | {} |",
                        code(&f.field, true),
                        code(&clip(&show_value(f.remote.as_ref()), CELL), true),
                        code(&clip(&show_value(f.spec.as_ref()), CELL), true)
                    );
                }
                if rows.is_empty() {
                    let _ = writeln!(rows, "| {obj} | {fix} | | | |");
                }
                rows
            })
            .collect();
        parts.push(Part::new(
            "drifted objects",
            "### Drifted objects\n\n| Object | Fix | Field | Remote | Spec |\n|---|---|---|---|---|\n",
            rows,
            "\n",
            |n| format!("| … | {n} more objects not shown | | | |\n"),
        ));
    }
    fit(&head, parts, limit, "`ldexp drift --format json`")
}

#[cfg(test)]
mod tests {
    use super::super::golden::{empty, gallery};
    use super::*;

    #[test]
    fn a_drifted_remote_is_not_in_sync_and_lists_every_field_that_differs() {
        let report = DriftReport::from_plan(&gallery(false));
        assert!(!report.in_sync);
        let ranking = report.drifted.iter().find(|d| d.address.to_string().ends_with("/ranking")).unwrap();
        assert_eq!(ranking.fix, Action::Restart);
        // Only what differs: values a request sends unchanged are not drift.
        assert!(ranking.fields.iter().all(|f| f.remote != f.spec), "{:?}", ranking.fields);
        let description = ranking.fields.iter().find(|f| f.field == "description").unwrap();
        assert_eq!(description.remote, Some(serde_json::json!("Semantic ranking against the keyword baseline.")));
        assert!(!report.drifted.iter().find(|d| d.fix == Action::Create).unwrap().remote_exists);
    }

    #[test]
    fn what_no_request_can_change_is_drift_too() {
        let mut plan = gallery(false);
        plan.changes.clear();
        let report = DriftReport::from_plan(&plan);
        assert!(!report.in_sync, "a refused object and a stopped winner are drift, never `No drift`");
        assert!(report.drifted.is_empty());
        assert_eq!(report.summary_line(), "Drift: 2 objects differ from the specs. 3 differences cannot be applied.");
    }

    #[test]
    fn unmanaged_objects_and_note_only_changes_are_not_drift() {
        let mut plan = gallery(false);
        plan.changes.retain(|c| c.requests.is_empty());
        plan.divergences.clear();
        let report = DriftReport::from_plan(&plan);
        assert!(report.in_sync);
        assert!(report.drifted.is_empty());
        assert_eq!(report.unmanaged.len(), 1);
        insta::assert_snapshot!(human(&report, false));
    }

    #[test]
    fn human_report() {
        insta::assert_snapshot!(human(&DriftReport::from_plan(&gallery(false)), false));
    }

    #[test]
    fn human_report_in_colour() {
        insta::assert_snapshot!(human(&DriftReport::from_plan(&gallery(false)), true));
    }

    #[test]
    fn json_report_is_deterministic() {
        let report = DriftReport::from_plan(&gallery(false));
        let a = json(&report);
        assert_eq!(a, json(&DriftReport::from_plan(&gallery(false))));
        insta::assert_snapshot!(a);
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(markdown(&DriftReport::from_plan(&gallery(false))));
    }

    #[test]
    fn in_sync_renderings() {
        let report = DriftReport::from_plan(&empty());
        assert_eq!(human(&report, false), "No drift. Remote matches the specs.\n");
        assert_eq!(markdown(&report), "## ldexp drift\n\n**No drift. Remote matches the specs.**\n\n");
        let json = json(&report);
        assert!(json.contains("\"inSync\": true"), "{json}");
        assert!(json.contains("\"drifted\": []"), "{json}");
    }

    #[test]
    fn markdown_report_is_cut_under_the_limit() {
        let mut plan = gallery(false);
        let base = plan.changes.clone();
        plan.changes = (0..3_000)
            .map(|i| {
                let mut c = base[i % base.len()].clone();
                c.address = ldexp_core::plan::Address::Experiment {
                    project: "demo".into(),
                    environment: "production".into(),
                    key: format!("e{i}"),
                };
                c
            })
            .collect();
        let out = markdown(&DriftReport::from_plan(&plan));
        assert!(out.len() < LIMIT - COMMENT_RESERVE);
        assert!(
            out.contains("of 3000 drifted objects. Run `ldexp drift --format json` to see everything.\n"),
            "{}",
            &out[out.len() - 400..]
        );
        let small = markdown_within(&DriftReport::from_plan(&plan), 4_000);
        assert!(small.len() < 4_000);
    }
}
