//! Reference checks for one experiment in one environment, and the design the spec asks for once every
//! reference has resolved: the one step from spec to what is sent.

use std::collections::BTreeMap;

use ldexp_core::api::{Experiment, IterationInput};
use ldexp_core::design::{DEFAULT_RANDOMIZATION_UNIT, Design, DesignFlag, DesignMetric, DesignTreatment};
use ldexp_core::flag_map::FlagMap;
use ldexp_core::plan::Address;
use ldexp_core::spec::{ExperimentSpec, Located};

use crate::error::{ProblemKind, Problems};
use crate::index::{Index, ProjectView};
use crate::resolve;

/// One experiment spec in one environment, checked against the remote.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    pub spec: &'a Located<ExperimentSpec>,
    pub address: Address,
    pub remote: Option<&'a Experiment>,
    /// The design the spec asks for here, as LaunchDarkly will hold it; `None` when some reference did not resolve
    /// (already reported).
    pub desired: Option<Design>,
    /// Flags that would make `startIteration` fail in this environment, with why.
    pub unstartable: Vec<(String, String)>,
    /// Metrics that do not allow the iteration's unit: LaunchDarkly refuses a create or a new iteration with them,
    /// so they refuse only a plan that sends one (a stop, an archive or a rename still plans).
    pub misfits: Vec<Misfit>,
    /// The project the spec lives in, for [`Target::labels`].
    pub project: &'a ProjectView<'a>,
    pub env: &'a str,
}

impl Target<'_> {
    /// The iteration body that creates the desired design, with each flag's `flagConfigVersion` in this
    /// environment now.
    pub(crate) fn input(&self, design: &Design) -> IterationInput {
        // A design exists only when every flag resolved in this environment, so each has a configuration here.
        design.input(|k| self.project.flag(k).and_then(|f| f.flag.environments.get(self.env)).map_or(0, |e| e.version))
    }

    /// Variation and rule `_id` → what a reviewer recognises (name, value or description), for `fields`.
    /// Built on demand: only a change that applies a design shows labelled fields.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        labels(&self.spec.spec, self.env, self.project)
    }
}

/// The project state, or a problem when LaunchDarkly has no such project.
pub(crate) fn project<'a, T>(
    index: &'a Index<'a>,
    spec: &Located<T>,
    key: &str,
    address: &Address,
    problems: &mut Problems,
) -> Option<&'a ProjectView<'a>> {
    let found = index.get(key).and_then(Option::as_ref);
    if found.is_none() {
        problems.push(
            ProblemKind::Reference,
            &spec.location_of("project"),
            address,
            format!("project `{key}` does not exist"),
            Some("check the project key and that the access token can read it".to_owned()),
        );
    }
    found
}

/// Checks `spec` in environment `env` (written at `env_field`) and resolves what it names.
pub(crate) fn experiment<'a>(
    spec: &'a Located<ExperimentSpec>,
    env: &'a str,
    env_field: &str,
    index: &'a Index<'a>,
    problems: &mut Problems,
) -> Option<Target<'a>> {
    let s = &spec.spec;
    let address = Address::Experiment { project: s.project.clone(), environment: env.to_owned(), key: s.key.clone() };
    let project = project(index, spec, &s.project, &address, problems)?;
    let Some(experiments) = project.experiments(env) else {
        problems.push(
            ProblemKind::Reference,
            &spec.location_of(env_field),
            &address,
            format!("environment `{env}` does not exist in project `{}`", s.project),
            Some("check the environment key".to_owned()),
        );
        return None;
    };
    let before = problems.len();
    let primary_group = metrics(spec, project, &address, problems);
    randomization_unit(spec, project, &address, problems);
    let misfits = metrics_fit_the_unit(spec, project);
    let (flags, unstartable) = flags(spec, env, project, &address, problems);
    let treatments = treatments(spec, project, &address, problems);
    let desired = (problems.len() == before).then(|| design(s, primary_group, flags, treatments));
    let remote = experiments.get(s.key.as_str()).copied();
    Some(Target { spec, address, remote, desired, unstartable, misfits, project, env })
}

/// Labels for the variations and rules of the spec's flags in `env`: a variation's name (else its value), a
/// rule's description. Ids stay in `before`/`after`; the labels only make `fields` readable.
fn labels(s: &ExperimentSpec, env: &str, project: &ProjectView<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in s.iteration.flags.keys() {
        let Some(snap) = project.flag(key) else { continue };
        for v in &snap.flag.variations {
            if let Some(id) = &v.id {
                out.insert(id.clone(), v.name.clone().unwrap_or_else(|| v.value.to_string()));
            }
        }
        for r in snap.flag.environments.get(env).map(|e| e.rules.as_slice()).unwrap_or_default() {
            if let (Some(id), Some(d)) = (&r.id, &r.description) {
                out.insert(id.clone(), format!("rule `{d}`"));
            }
        }
    }
    out
}

/// Checks every metric reference; returns whether the primary metric is a group.
fn metrics(
    spec: &Located<ExperimentSpec>,
    project: &ProjectView<'_>,
    address: &Address,
    problems: &mut Problems,
) -> bool {
    let s = &spec.spec;
    let p = &s.project;
    for (i, m) in s.iteration.metrics.iter().enumerate() {
        let key = m.key();
        let (is_metric, is_group) = (project.is_metric(key), project.is_group(key));
        let problem = match (m.is_group(), is_metric, is_group) {
            (true, _, true) | (false, true, _) => None,
            (true, true, false) => {
                Some((format!("`{key}` is a metric, not a metric group"), format!("remove `group: true` from `{key}`")))
            }
            (false, false, true) => Some((
                format!("`{key}` is a metric group, not a metric"),
                format!("write it as `{{key: {key}, group: true}}`"),
            )),
            (_, false, false) => Some((
                format!("metric{} `{key}` does not exist in project `{p}`", if m.is_group() { " group" } else { "" }),
                format!(
                    "check the key, or create the metric{} in LaunchDarkly first",
                    if m.is_group() { " group" } else { "" }
                ),
            )),
        };
        if let Some((message, hint)) = problem {
            problems.push(
                ProblemKind::Reference,
                &spec.location_of(&format!("iteration.metrics[{i}]")),
                address,
                message,
                Some(hint),
            );
        }
    }
    let primary = &s.iteration.primary_metric;
    if let Some(m) = s.iteration.metrics.iter().find(|m| m.key() == primary) {
        return m.is_group();
    }
    let is_group = !project.is_metric(primary) && project.is_group(primary);
    if !project.is_metric(primary) && !is_group {
        problems.push(
            ProblemKind::Reference,
            &spec.location_of("iteration.primaryMetric"),
            address,
            format!("primary metric `{primary}` does not exist in project `{p}`"),
            Some("check the key, or create the metric in LaunchDarkly first".to_owned()),
        );
    }
    is_group
}

fn randomization_unit(
    spec: &Located<ExperimentSpec>,
    project: &ProjectView<'_>,
    address: &Address,
    problems: &mut Problems,
) {
    let (Some(unit), Some(settings)) = (&spec.spec.iteration.randomization_unit, project.settings()) else {
        return;
    };
    if settings.randomization_units.iter().any(|u| &u.randomization_unit == unit) {
        return;
    }
    let known: Vec<&str> = settings.randomization_units.iter().map(|u| u.randomization_unit.as_str()).collect();
    problems.push(
        ProblemKind::Reference,
        &spec.location_of("iteration.randomizationUnit"),
        address,
        format!("randomization unit `{unit}` is not in project `{}`'s experimentation settings", spec.spec.project),
        Some(if known.is_empty() {
            "the project has no randomization units configured".to_owned()
        } else {
            format!("known units: {}", known.join(", "))
        }),
    );
}

/// A metric the iteration measures that does not allow its randomization unit: where the spec names it, and why.
#[derive(Debug)]
pub(crate) struct Misfit {
    pub field: String,
    pub message: String,
    pub hint: String,
}

/// Every metric the iteration measures, and every member of a metric group it measures, must allow its randomization
/// unit, or LaunchDarkly refuses the create (contract §9.6). A metric whose units LaunchDarkly did not say is not
/// judged. (The loader requires `primaryMetric` among `metrics`, so the metrics list covers it.)
fn metrics_fit_the_unit(spec: &Located<ExperimentSpec>, project: &ProjectView<'_>) -> Vec<Misfit> {
    let it = &spec.spec.iteration;
    let unit = it.randomization_unit.as_deref().unwrap_or(DEFAULT_RANDOMIZATION_UNIT);
    let refuses = |key: &str| {
        project
            .metric(key)
            .filter(|m| !m.randomization_units.is_empty() && !m.randomization_units.iter().any(|u| u == unit))
    };
    let mut out = Vec::new();
    for (i, m) in it.metrics.iter().enumerate() {
        let (key, group) = (m.key(), m.is_group());
        let members: Vec<&str> = if group {
            project.group(key).map(|g| g.metrics.iter().map(|m| m.key.as_str()).collect()).unwrap_or_default()
        } else {
            vec![key]
        };
        for member in members {
            let Some(m) = refuses(member) else { continue };
            let whose =
                if group { format!("metric `{member}` of group `{key}`") } else { format!("metric `{member}`") };
            out.push(Misfit {
                field: format!("iteration.metrics[{i}]"),
                message: format!(
                    "{whose} allows randomization unit{} {}, not `{unit}`, which the iteration randomizes by",
                    if m.randomization_units.len() == 1 { "" } else { "s" },
                    m.randomization_units.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
                ),
                hint: format!(
                    "LaunchDarkly refuses a metric that does not fit the unit: add `{unit}` to the metric's \
                     randomization units, or measure another metric"
                ),
            });
        }
    }
    out
}

/// The resolved flags of a spec in one environment, and the flags that would make `startIteration` fail, with why.
type ResolvedFlags = (FlagMap<DesignFlag>, Vec<(String, String)>);

/// Resolves each flag's rule and not-in-experiment variation in `env`.
fn flags(
    spec: &Located<ExperimentSpec>,
    env: &str,
    project: &ProjectView<'_>,
    address: &Address,
    problems: &mut Problems,
) -> ResolvedFlags {
    let s = &spec.spec;
    let mut resolved = FlagMap::with_capacity(s.iteration.flags.len());
    let mut unstartable = Vec::new();
    for (key, fs) in &s.iteration.flags {
        // Field names are only formatted for a problem: most specs have none.
        let field = || format!("iteration.flags.{key}");
        let Some(snap) = project.flag(key) else {
            problems.push(
                ProblemKind::Reference,
                &spec.location_of(&field()),
                address,
                format!("flag `{key}` does not exist in project `{}`", s.project),
                Some("check the flag key".to_owned()),
            );
            continue;
        };
        let flag = &snap.flag;
        let Some(fe) = flag.environments.get(env) else {
            problems.push(
                ProblemKind::Reference,
                &spec.location_of(&field()),
                address,
                format!("flag `{key}` has no configuration for environment `{env}`"),
                None,
            );
            continue;
        };
        if flag.archived || fe.archived {
            unstartable.push((key.clone(), "archived".to_owned()));
        } else if !fe.on {
            unstartable.push((key.clone(), "off".to_owned()));
        }
        let rule = match resolve::rule_id(key, env, fe, fs) {
            Ok(r) => Some(r),
            Err(e) => {
                let f = if fs.rule_id.is_some() { format!("{}.ruleId", field()) } else { format!("{}.rule", field()) };
                problems.push(ProblemKind::Reference, &spec.location_of(&f), address, e.message, e.hint);
                None
            }
        };
        let nie = match &fs.not_in_experiment_variation {
            None => Some(None),
            Some(r) => match resolve::variation_id(flag, r) {
                Ok(id) => Some(Some(id)),
                Err(e) => {
                    let f = format!("{}.notInExperimentVariation", field());
                    problems.push(ProblemKind::Reference, &spec.location_of(&f), address, e.message, e.hint);
                    None
                }
            },
        };
        if let (Some(rule_id), Some(nie)) = (rule, nie) {
            resolved.insert(key.clone(), DesignFlag { rule_id, not_in_experiment_variation_id: nie });
        }
    }
    (resolved, unstartable)
}

/// Resolves every treatment's variations to `_id`s, in the spec's order.
fn treatments(
    spec: &Located<ExperimentSpec>,
    project: &ProjectView<'_>,
    address: &Address,
    problems: &mut Problems,
) -> Vec<DesignTreatment> {
    let s = &spec.spec;
    let mut out = Vec::with_capacity(s.iteration.treatments.len());
    for (i, t) in s.iteration.treatments.iter().enumerate() {
        let mut variations = FlagMap::with_capacity(t.variations.len());
        for flag_key in s.iteration.flags.keys() {
            if !t.variations.contains_key(flag_key) {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location_of(&format!("iteration.treatments[{i}].variations")),
                    address,
                    format!("treatment `{}` names no variation of flag `{flag_key}`", t.name),
                    Some("every treatment serves one variation of every flag in `iteration.flags`".to_owned()),
                );
            }
        }
        for (flag_key, r) in &t.variations {
            let field = || format!("iteration.treatments[{i}].variations.{flag_key}");
            if !s.iteration.flags.contains_key(flag_key) {
                problems.push(
                    ProblemKind::Reference,
                    &spec.location_of(&field()),
                    address,
                    format!("flag `{flag_key}` is not one of the iteration's flags"),
                    Some(format!("add `{flag_key}` under `iteration.flags`")),
                );
                continue;
            }
            // A missing flag is reported once, under `iteration.flags`.
            let Some(snap) = project.flag(flag_key) else { continue };
            match resolve::variation_id(&snap.flag, r) {
                Ok(variation_id) => {
                    variations.insert(flag_key.clone(), variation_id);
                }
                Err(e) => {
                    problems.push(ProblemKind::Reference, &spec.location_of(&field()), address, e.message, e.hint)
                }
            }
        }
        out.push(DesignTreatment {
            name: t.name.clone(),
            baseline: t.baseline,
            allocation_percent: t.allocation_percent.clone(),
            variations,
        });
    }
    out
}

/// The design of a fully resolved spec, with LaunchDarkly's defaults written out and the spec's order kept for the
/// body: the one place that turns a spec into what is sent.
fn design(
    s: &ExperimentSpec,
    primary_group: bool,
    flags: FlagMap<DesignFlag>,
    treatments: Vec<DesignTreatment>,
) -> Design {
    let it = &s.iteration;
    let mut metrics: Vec<DesignMetric> =
        it.metrics.iter().map(|m| DesignMetric { key: m.key().to_owned(), group: m.is_group() }).collect();
    // A primary metric the spec does not list is measured too, and sent first.
    if !it.metrics.iter().any(|m| m.key() == it.primary_metric) {
        metrics.insert(0, DesignMetric { key: it.primary_metric.clone(), group: primary_group });
    }
    Design {
        hypothesis: it.hypothesis.clone(),
        can_reshuffle_traffic: it.can_reshuffle_traffic.unwrap_or(true),
        randomization_unit: it.randomization_unit.clone().unwrap_or_else(|| DEFAULT_RANDOMIZATION_UNIT.to_owned()),
        attributes: it.attributes.clone().unwrap_or_default(),
        metrics,
        primary_metric: Some(it.primary_metric.clone()),
        treatments,
        flags,
    }
}
