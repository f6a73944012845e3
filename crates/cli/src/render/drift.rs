//! The drift report of `ldexp drift`: which objects differ from the specs, field by field, built from a [`Plan`],
//! and its human, json and markdown renderings.
//!
//! An object has drifted when the plan would send it at least one request; so `drift` and `plan` always agree.
//! Unmanaged experiments are listed but are not drift: they are in no spec, and `plan` without `--prune` leaves
//! them alone. `ldexp drift` exits 0 when [`DriftReport::in_sync`], 2 otherwise, 1 on error.

use std::fmt::Write as _;

use ldexp_core::plan::{Action, Address, FORMAT_VERSION, Plan, Risk, Unmanaged, Warning};
use serde::Serialize;
use serde_json::Value;

use super::human::Paint;
use super::markdown::{LIMIT, Part, code, fit, unmanaged_part, warnings_part};
use super::{changed_fields, clip, is_text_field, marker, risk_sentence, show_value, text_diff, to_pretty_json};

/// Everything that differs between the remote and the specs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub format_version: u32,
    pub in_sync: bool,
    pub specs_digest: String,
    pub drifted: Vec<DriftedObject>,
    pub unmanaged: Vec<Unmanaged>,
    pub warnings: Vec<Warning>,
}

/// One object whose remote state differs from its spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftedObject {
    pub address: Address,
    /// The action `apply` would take to bring it back.
    pub fix: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// False when the object is missing remotely (the fix creates it).
    pub remote_exists: bool,
    pub fields: Vec<FieldDrift>,
}

/// One field that differs; a side that has no value is omitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDrift {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
}

impl DriftReport {
    /// The drift a plan reveals.
    pub fn from_plan(plan: &Plan) -> Self {
        let drifted: Vec<DriftedObject> = plan
            .changes
            .iter()
            .filter(|c| !c.requests.is_empty())
            .map(|c| DriftedObject {
                address: c.address.clone(),
                fix: c.action,
                risk: c.risk,
                remote_exists: c.action != Action::Create,
                fields: changed_fields(c)
                    .into_iter()
                    .map(|f| FieldDrift { field: f.field, remote: f.before, spec: f.after })
                    .collect(),
            })
            .collect();
        DriftReport {
            format_version: FORMAT_VERSION,
            in_sync: drifted.is_empty(),
            specs_digest: plan.specs_digest.clone(),
            drifted,
            unmanaged: plan.unmanaged.clone(),
            warnings: plan.warnings.clone(),
        }
    }

    /// The closing sentence of every rendering.
    pub fn summary_line(&self) -> String {
        match self.drifted.len() {
            0 => "No drift. Remote matches the specs.".to_owned(),
            1 => "Drift: 1 object differs from the specs.".to_owned(),
            n => format!("Drift: {n} objects differ from the specs."),
        }
    }
}

/// The report for a terminal; `color` as for [`super::human`].
pub fn human(report: &DriftReport, color: bool) -> String {
    const IND: &str = "      ";
    let p = Paint(color);
    let mut out = String::new();
    for d in &report.drifted {
        let _ = writeln!(out, "  {} {} (fix: {})", p.action_marker(d.fix), p.bold(&d.address.to_string()), d.fix);
        if let Some(r) = d.risk {
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
    if !report.unmanaged.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Unmanaged experiments (in no spec; not counted as drift):"));
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
    if !report.in_sync {
        let _ = writeln!(out, "Run `ldexp plan` to see the requests that would fix it.");
    }
    out
}

/// The report as pretty JSON with a trailing newline; deterministic.
pub fn json(report: &DriftReport) -> String {
    to_pretty_json(report)
}

/// The report as markdown (for an issue opened by a nightly job), always shorter than 65,536 characters.
pub fn markdown(report: &DriftReport) -> String {
    markdown_within(report, LIMIT)
}

/// Longest value shown in a markdown cell; the JSON report has every value whole.
const CELL: usize = 120;

fn markdown_within(report: &DriftReport, limit: usize) -> String {
    let head = format!("## ldexp drift\n\n**{}**\n\n", report.summary_line());
    let mut parts = Vec::new();
    if !report.unmanaged.is_empty() {
        parts.push(unmanaged_part("In no spec; not counted as drift.", &report.unmanaged));
    }
    if !report.warnings.is_empty() {
        parts.push(warnings_part(&report.warnings));
    }
    if !report.drifted.is_empty() {
        let rows = report
            .drifted
            .iter()
            .map(|d| {
                let obj = format!("{} {}", code(marker(d.fix), true), code(&d.address.to_string(), true));
                let fix = match d.risk {
                    Some(r) => format!("{} ⚠️ {r}", d.fix),
                    None => d.fix.to_string(),
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
    use super::super::fixtures;
    use super::*;

    #[test]
    fn a_drifted_remote_is_not_in_sync_and_lists_every_field() {
        let report = DriftReport::from_plan(&fixtures::full_plan());
        assert!(!report.in_sync);
        assert_eq!(report.drifted.len(), 8);
        let button = &report.drifted[1];
        assert_eq!(button.address.to_string(), "experiment/demo/production/checkout-button");
        assert_eq!(button.fix, Action::Update);
        assert_eq!(button.fields[0].remote, Some(serde_json::json!("Checkout button")));
        assert_eq!(button.fields[0].spec, Some(serde_json::json!("Checkout button colour")));
        assert!(!report.drifted[0].remote_exists);
        assert_eq!(report.summary_line(), "Drift: 8 objects differ from the specs.");
    }

    #[test]
    fn unmanaged_objects_and_note_only_changes_are_not_drift() {
        let mut plan = fixtures::empty_plan();
        plan.changes.push(fixtures::change(Action::Archive, 0));
        plan.unmanaged = fixtures::full_plan().unmanaged;
        let report = DriftReport::from_plan(&plan);
        assert!(report.in_sync);
        assert!(report.drifted.is_empty());
        assert_eq!(report.unmanaged.len(), 2);
        insta::assert_snapshot!(human(&report, false));
    }

    #[test]
    fn human_report() {
        insta::assert_snapshot!(human(&DriftReport::from_plan(&fixtures::full_plan()), false));
    }

    #[test]
    fn human_report_in_colour() {
        insta::assert_snapshot!(human(&DriftReport::from_plan(&fixtures::full_plan()), true));
    }

    #[test]
    fn json_report_is_deterministic() {
        let report = DriftReport::from_plan(&fixtures::full_plan());
        let a = json(&report);
        assert_eq!(a, json(&DriftReport::from_plan(&fixtures::full_plan())));
        insta::assert_snapshot!(a);
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(markdown(&DriftReport::from_plan(&fixtures::full_plan())));
    }

    #[test]
    fn in_sync_renderings() {
        let report = DriftReport::from_plan(&fixtures::empty_plan());
        assert_eq!(human(&report, false), "No drift. Remote matches the specs.\n");
        assert_eq!(markdown(&report), "## ldexp drift\n\n**No drift. Remote matches the specs.**\n\n");
        assert_eq!(
            json(&report),
            "{\n  \"formatVersion\": 1,\n  \"inSync\": true,\n  \"specsDigest\": \"sha256:0f1e2d3c\",\n  \
             \"drifted\": [],\n  \"unmanaged\": [],\n  \"warnings\": []\n}\n"
        );
    }

    #[test]
    fn markdown_report_is_cut_under_the_limit() {
        let mut plan = fixtures::full_plan();
        let base = plan.changes.clone();
        plan.changes = (0..3_000)
            .map(|i| {
                let mut c = base[i % base.len()].clone();
                c.address = fixtures::exp(&format!("e{i}"));
                c
            })
            .collect();
        let out = markdown(&DriftReport::from_plan(&plan));
        assert!(out.len() < LIMIT);
        assert!(out.contains("of 3000 drifted objects. Run `ldexp drift --format json` to see everything.\n"));
        let small = markdown_within(&DriftReport::from_plan(&plan), 4_000);
        assert!(small.len() < 4_000);
    }
}
