//! Creation-only fields: what LaunchDarkly fixes when an experiment is created, compared only where the spec
//! sets them, and the `ExperimentPost` that sets them.

use std::collections::BTreeSet;

use ldexp_core::api::{AnalysisConfig, Experiment, ExperimentPost, IterationInput, NumString};
use ldexp_core::plan::Address;
use ldexp_core::spec::{AnalysisConfigSpec, CorrectionMethod, CorrectionScope, ExperimentSpec, Located};

use crate::error::{ProblemKind, Problems};

/// The create body for `spec` with its first iteration.
pub(crate) fn post(s: &ExperimentSpec, iteration: IterationInput) -> ExperimentPost {
    ExperimentPost {
        name: s.name.clone(),
        key: s.key.clone(),
        description: s.description.clone(),
        maintainer_id: s.maintainer_id.clone(),
        iteration,
        holdout_id: s.holdout_id.clone(),
        tags: s.tags.clone(),
        methodology: s.methodology.map(|m| m.as_str().to_owned()),
        analysis_config: s.analysis_config.as_ref().map(analysis_config),
        data_source: s.data_source.map(|d| d.as_str().to_owned()),
    }
}

fn analysis_config(a: &AnalysisConfigSpec) -> AnalysisConfig {
    AnalysisConfig {
        bayesian_threshold: a.bayesian_threshold.map(|d| NumString::from_f64(d.value())),
        significance_threshold: a.significance_threshold.map(|d| NumString::from_f64(d.value())),
        test_direction: a.test_direction.clone(),
        multiple_comparison_correction_method: a.multiple_comparison_correction_method.map(|m| {
            match m {
                CorrectionMethod::Bonferroni => "bonferroni",
                CorrectionMethod::BenjaminiHochberg => "benjamini-hochberg",
            }
            .to_owned()
        }),
        multiple_comparison_correction_scope: a.multiple_comparison_correction_scope.map(|m| {
            match m {
                CorrectionScope::Variations => "variations",
                CorrectionScope::VariationsAndMetrics => "variations-and-metrics",
                CorrectionScope::Metrics => "metrics",
            }
            .to_owned()
        }),
        sequential_testing_enabled: a.sequential_testing_enabled,
    }
}

/// Reports each creation-only field the spec sets that differs from the existing experiment.
pub(crate) fn check(spec: &Located<ExperimentSpec>, remote: &Experiment, address: &Address, problems: &mut Problems) {
    let s = &spec.spec;
    let mut differ = |field: &str, spec_value: String, remote_value: String| {
        problems.push(
            ProblemKind::CreationOnly,
            &spec.location_of(field),
            address,
            format!("`{field}` is {spec_value} in the spec but {remote_value} in LaunchDarkly"),
            Some(format!(
                "LaunchDarkly cannot change `{field}` after creation: create the experiment under a new key and \
                 archive `{}` (state: archived)",
                s.key
            )),
        );
    };
    let shown = |v: Option<&str>| v.map_or_else(|| "unset".to_owned(), |v| format!("`{v}`"));
    if let Some(m) = &s.maintainer_id
        && *m != remote.maintainer_id
    {
        differ("maintainerId", shown(Some(m)), shown(Some(&remote.maintainer_id)));
    }
    if let Some(tags) = &s.tags {
        let want: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = remote.tags.iter().map(String::as_str).collect();
        if want != have {
            let list = |t: &BTreeSet<&str>| format!("[{}]", t.iter().copied().collect::<Vec<_>>().join(", "));
            differ("tags", list(&want), list(&have));
        }
    }
    // LaunchDarkly omits defaults in older answers: an absent methodology is bayesian, an absent source launchdarkly.
    if let Some(m) = s.methodology
        && m.as_str() != remote.methodology.as_deref().unwrap_or("bayesian")
    {
        differ(
            "methodology",
            shown(Some(m.as_str())),
            shown(Some(remote.methodology.as_deref().unwrap_or("bayesian"))),
        );
    }
    if let Some(d) = s.data_source
        && d.as_str() != remote.data_source.as_deref().unwrap_or("launchdarkly")
    {
        differ(
            "dataSource",
            shown(Some(d.as_str())),
            shown(Some(remote.data_source.as_deref().unwrap_or("launchdarkly"))),
        );
    }
    if let Some(h) = &s.holdout_id
        && Some(h) != remote.holdout_id.as_ref()
    {
        differ("holdoutId", shown(Some(h)), shown(remote.holdout_id.as_deref()));
    }
    if let Some(a) = &s.analysis_config {
        let want = analysis_config(a);
        let have = remote.analysis_config.clone().unwrap_or_default();
        for (field, w, h) in analysis_fields(&want, &have) {
            if let Some(w) = w
                && Some(&w) != h.as_ref()
            {
                differ(&format!("analysisConfig.{field}"), format!("`{w}`"), shown(h.as_deref()));
            }
        }
    }
}

/// `(field, spec value, remote value)` for each analysis setting, thresholds compared as canonical decimals.
fn analysis_fields(
    want: &AnalysisConfig,
    have: &AnalysisConfig,
) -> Vec<(&'static str, Option<String>, Option<String>)> {
    let num = |n: &Option<NumString>| n.as_ref().map(NumString::canonical);
    vec![
        ("bayesianThreshold", num(&want.bayesian_threshold), num(&have.bayesian_threshold)),
        ("significanceThreshold", num(&want.significance_threshold), num(&have.significance_threshold)),
        ("testDirection", want.test_direction.clone(), have.test_direction.clone()),
        (
            "multipleComparisonCorrectionMethod",
            want.multiple_comparison_correction_method.clone(),
            have.multiple_comparison_correction_method.clone(),
        ),
        (
            "multipleComparisonCorrectionScope",
            want.multiple_comparison_correction_scope.clone(),
            have.multiple_comparison_correction_scope.clone(),
        ),
        (
            "sequentialTestingEnabled",
            want.sequential_testing_enabled.map(|b| b.to_string()),
            have.sequential_testing_enabled.map(|b| b.to_string()),
        ),
    ]
}
