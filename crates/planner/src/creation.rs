//! Creation-only fields: what LaunchDarkly fixes when an experiment is created, the divergences that refuse an
//! experiment whose spec no longer agrees with them, and the `ExperimentPost` that sets them.

use std::collections::BTreeSet;

use ldexp_core::api::{AnalysisConfig, Experiment, ExperimentPost, IterationInput, Percent};
use ldexp_core::plan::{Address, Divergence, FieldChange};
use ldexp_core::spec::{AnalysisConfigSpec, CorrectionMethod, CorrectionScope, ExperimentSpec, Located};
use serde_json::{Value, json};

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
        bayesian_threshold: a.bayesian_threshold.clone(),
        significance_threshold: a.significance_threshold.clone(),
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

/// Every creation-only field that differs from the existing experiment, as a refusing divergence located at the
/// spec's field. A field the spec leaves out means the API's empty value (no tags, the default methodology and data
/// source, no holdout, no analysis settings), so removing one from a spec is a difference too; the exception is
/// `maintainerId`, which LaunchDarkly always sets (to the token's member when a create names none) and cannot clear.
pub(crate) fn divergences(spec: &Located<ExperimentSpec>, remote: &Experiment, address: &Address) -> Vec<Divergence> {
    let s = &spec.spec;
    let mut out = Vec::new();
    let mut differ = |field: &str, written: &str, spec_value: Value, remote_value: Value| {
        out.push(Divergence {
            address: address.clone(),
            field: field.to_owned(),
            remote: Some(remote_value).filter(|v| !v.is_null()),
            spec: Some(spec_value).filter(|v| !v.is_null()),
            reason: format!("`{field}` is fixed when an experiment is created, and LaunchDarkly cannot change it"),
            hint: Some(format!(
                "create the experiment under a new key and archive `{}` (state: archived), or write LaunchDarkly's \
                 value in the spec",
                s.key
            )),
            location: spec.location_of(written),
            refuses: true,
        });
    };
    if let Some(m) = &s.maintainer_id
        && *m != remote.maintainer_id
    {
        differ("maintainerId", "maintainerId", m.clone().into(), remote.maintainer_id.clone().into());
    }
    // Most experiments have no tags on either side: compared without building sets, as this runs for every one.
    let spec_tags = s.tags.as_deref().unwrap_or_default();
    if !(spec_tags.is_empty() && remote.tags.is_empty()) {
        let want: BTreeSet<&str> = spec_tags.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = remote.tags.iter().map(String::as_str).collect();
        if want != have {
            differ("tags", "tags", json!(want), json!(have));
        }
    }
    // LaunchDarkly omits defaults in older answers: an absent methodology is bayesian, an absent source launchdarkly.
    let (want, have) = (s.methodology.map_or("bayesian", |m| m.as_str()), remote.methodology.as_deref());
    if want != have.unwrap_or("bayesian") {
        differ("methodology", "methodology", want.into(), have.unwrap_or("bayesian").into());
    }
    let (want, have) = (s.data_source.map_or("launchdarkly", |d| d.as_str()), remote.data_source.as_deref());
    if want != have.unwrap_or("launchdarkly") {
        differ("dataSource", "dataSource", want.into(), have.unwrap_or("launchdarkly").into());
    }
    // Only a `holdoutId` the spec writes is compared here: `holdout` (a key) and leaving a holdout are `org`'s.
    if let Some(id) = &s.holdout_id
        && Some(id) != remote.holdout_id.as_ref()
    {
        differ("holdoutId", "holdoutId", json!(s.holdout_id), json!(remote.holdout_id));
    }
    let unset = AnalysisConfig::default();
    if s.analysis_config.is_none() && remote.analysis_config.as_ref().is_none_or(|a| *a == unset) {
        return out;
    }
    let want = s.analysis_config.as_ref().map(analysis_config).unwrap_or_default();
    let have = remote.analysis_config.as_ref().unwrap_or(&unset);
    for (field, w, h) in analysis_fields(&want, have) {
        if w != h {
            let name = format!("analysisConfig.{field}");
            differ(&name, &name, json!(w), json!(h));
        }
    }
    out
}

/// The fields of a create body besides its iteration (which the design shows) and its key (which the address
/// shows), so a reviewer sees every value the create writes: most of them can never change afterwards.
pub(crate) fn fields(body: &ExperimentPost) -> Vec<FieldChange> {
    let mut value = serde_json::to_value(body).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.remove("iteration");
        o.remove("key");
    }
    let mut out = Vec::new();
    crate::fields::diff("", None, Some(&value), &mut out);
    out
}

/// `(field, spec value, remote value)` for each analysis setting, thresholds compared as canonical decimals.
fn analysis_fields(
    want: &AnalysisConfig,
    have: &AnalysisConfig,
) -> Vec<(&'static str, Option<String>, Option<String>)> {
    let num = |n: &Option<Percent>| n.as_ref().map(Percent::to_string);
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
