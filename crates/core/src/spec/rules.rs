//! The rules of spec format v1 that types cannot express: keys, baselines, allocations, metrics, stop, and
//! identities unique across every loaded document.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{ExperimentSpec, ExperimentState, LegacyFlagExperimentsSpec};
use super::shape::suggest;
use super::{Diagnostic, FieldLocations, Located, SourceLocation};

/// Where keys are written, by the same dotted paths as `Located::field_locations` (which holds values).
pub(crate) type KeyLocations = FieldLocations;

/// Collects diagnostics for one document, locating fields by path.
struct Check<'a, T> {
    doc: &'a Located<T>,
    keys: &'a KeyLocations,
    out: &'a mut Vec<Diagnostic>,
}

impl<T> Check<'_, T> {
    fn at(&mut self, field: &str, message: String, help: String) {
        self.out.push(Diagnostic::at(&self.doc.location_of(field), message, Some(help)));
    }

    fn at_key(&mut self, field: &str, message: String, help: String) {
        let loc = self.keys.get(field).unwrap_or_else(|| self.doc.location_of(field));
        self.out.push(Diagnostic::at(&loc, message, Some(help)));
    }

    fn key(&mut self, field: &str, what: &str, value: &str) {
        if !is_ld_key(value) {
            self.at(field, format!("{what} `{value}` is not a valid LaunchDarkly key"), key_help(value));
        }
    }
}

/// Letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub(crate) fn is_ld_key(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn slug(s: &str) -> String {
    let mapped: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '-' }).collect();
    let mut out = String::new();
    for c in mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_lowercase()
}

pub(crate) fn experiment(doc: &Located<ExperimentSpec>, keys: &KeyLocations, out: &mut Vec<Diagnostic>) {
    let e = &doc.spec;
    let mut c = Check { doc, keys, out };
    c.key("project", "project key", &e.project);
    c.key("key", "experiment key", &e.key);
    match (&e.environment, &e.environments) {
        (Some(_), Some(_)) => c.at_key(
            "environments",
            "`environment` and `environments` are both given".to_owned(),
            "keep `environment: <key>` for one environment, or `environments: [<key>, ...]` for several".to_owned(),
        ),
        (None, None) => c.at(
            "",
            "missing field `environment` (or `environments`)".to_owned(),
            "add `environment: <key>`, or `environments: [<key>, ...]` for one experiment per environment".to_owned(),
        ),
        (Some(env), None) => c.key("environment", "environment key", env),
        (None, Some(envs)) => {
            if envs.is_empty() {
                c.at(
                    "environments",
                    "`environments` is empty".to_owned(),
                    "list at least one environment key, or use `environment: <key>`".to_owned(),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, env) in envs.iter().enumerate() {
                let path = format!("environments[{i}]");
                c.key(&path, "environment key", env);
                if !seen.insert(env.as_str()) {
                    c.at(
                        &path,
                        format!("environment `{env}` is listed twice in `environments`"),
                        "list it once".to_owned(),
                    );
                }
            }
        }
    }

    let it = &e.iteration;
    if it.flags.is_empty() {
        c.at(
            "iteration.flags",
            "`iteration.flags` is empty".to_owned(),
            "name the flag the experiment runs on, e.g. `checkout-button: {rule: fallthrough}`".to_owned(),
        );
    }
    for (flag, spec) in &it.flags {
        let path = format!("iteration.flags.{flag}");
        if !is_ld_key(flag) {
            c.at_key(&path, format!("flag key `{flag}` is not a valid LaunchDarkly key"), key_help(flag));
        }
        // Neither is fine: the experiment then runs on the fallthrough, like `rule: fallthrough`.
        if spec.rule.is_some() && spec.rule_id.is_some() {
            c.at_key(
                &format!("{path}.ruleId"),
                format!("flag `{flag}` gives both `rule` and `ruleId`"),
                "keep one: `rule` (`fallthrough` or a rule description) or `ruleId` (a rule `_id`)".to_owned(),
            );
        }
    }

    metrics(&mut c, e);
    treatments(&mut c, e);
    stop(&mut c, e);
}

pub(crate) fn key_help(value: &str) -> String {
    let example = slug(value);
    let e = if example.is_empty() { String::new() } else { format!(", e.g. `{example}`") };
    format!("use only letters, digits, `.`, `_` and `-`, starting with a letter or digit{e}")
}

fn metrics(c: &mut Check<'_, ExperimentSpec>, e: &ExperimentSpec) {
    let it = &e.iteration;
    let mut seen = BTreeSet::new();
    for (i, m) in it.metrics.iter().enumerate() {
        let path = if matches!(m, super::MetricRef::Key(_)) {
            format!("iteration.metrics[{i}]")
        } else {
            format!("iteration.metrics[{i}].key")
        };
        c.key(&path, "metric key", m.key());
        if !seen.insert(m.key()) {
            c.at(
                &path,
                format!("metric `{}` is listed twice in `iteration.metrics`", m.key()),
                "list each metric once".to_owned(),
            );
        }
    }
    if !it.metrics.iter().any(|m| m.key() == it.primary_metric) {
        let keys: Vec<&str> = it.metrics.iter().map(|m| m.key()).collect();
        let help = match suggest(&it.primary_metric, &keys) {
            Some(s) => format!("did you mean `{s}`? The primary metric must also be listed in `iteration.metrics`"),
            None => format!("add `{}` to `iteration.metrics`", it.primary_metric),
        };
        c.at(
            "iteration.primaryMetric",
            format!("`primaryMetric` `{}` is not among `iteration.metrics`", it.primary_metric),
            help,
        );
    }
}

fn treatments(c: &mut Check<'_, ExperimentSpec>, e: &ExperimentSpec) {
    let it = &e.iteration;
    let mut baseline: Option<&str> = None;
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0.0;
    for (i, t) in it.treatments.iter().enumerate() {
        let path = format!("iteration.treatments[{i}]");
        if let Some(&first) = names.get(t.name.as_str()) {
            let loc = c.doc.location_of(&format!("iteration.treatments[{first}].name"));
            c.at(
                &format!("{path}.name"),
                format!("treatment name `{}` is not unique: also used at {loc}", t.name),
                "give every treatment a distinct name".to_owned(),
            );
        } else {
            names.insert(&t.name, i);
        }
        if t.baseline {
            match baseline {
                Some(first) => c.at(
                    &format!("{path}.baseline"),
                    format!("treatment `{}` is a second baseline: `{first}` already has `baseline: true`", t.name),
                    "keep `baseline: true` on exactly one treatment".to_owned(),
                ),
                None => baseline = Some(&t.name),
            }
        }
        // A spec's percentage is always a number: the spec form refuses text.
        let pct = t.allocation_percent.value().unwrap_or(f64::NAN);
        if !(0.0..=100.0).contains(&pct) {
            c.at(
                &format!("{path}.allocationPercent"),
                format!("`allocationPercent` of treatment `{}` is {pct}, outside 0–100", t.name),
                "give a percentage between 0 and 100".to_owned(),
            );
        } else {
            total += pct;
        }
        for flag in it.flags.keys() {
            if !t.variations.contains_key(flag) {
                c.at(
                    &format!("{path}.variations"),
                    format!("treatment `{}` does not name a variation of flag `{flag}`", t.name),
                    format!("add `{flag}: <variation name, value or _id>` under `variations`"),
                );
            }
        }
        let flag_keys: Vec<&str> = it.flags.keys().map(String::as_str).collect();
        for flag in t.variations.keys().filter(|f| !it.flags.contains_key(*f)) {
            let help = match suggest(flag, &flag_keys) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("add `{flag}` to `iteration.flags`, or remove it from this treatment"),
            };
            c.at_key(
                &format!("{path}.variations.{flag}"),
                format!("treatment `{}` names flag `{flag}`, which is not in `iteration.flags`", t.name),
                help,
            );
        }
    }
    if baseline.is_none() {
        c.at(
            "iteration.treatments",
            "no treatment has `baseline: true`".to_owned(),
            "mark exactly one treatment, usually the control, with `baseline: true`".to_owned(),
        );
    }
    // Allocations are percentages with at most a few decimals; the tolerance absorbs float sums like 33.3 * 3.
    if total > 100.0 + 1e-9 {
        c.at(
            "iteration.treatments",
            format!("treatment allocations add up to {}%, more than 100%", round(total)),
            "lower the `allocationPercent` values so that they total at most 100".to_owned(),
        );
    }
    let all_zero = !it.treatments.is_empty() && it.treatments.iter().all(|t| t.allocation_percent.value() == Some(0.0));
    if all_zero {
        c.at(
            "iteration.treatments",
            "every treatment has `allocationPercent` 0".to_owned(),
            "give at least one treatment a non-zero allocation; LaunchDarkly cannot start an experiment without \
             traffic"
                .to_owned(),
        );
    }
}

fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn stop(c: &mut Check<'_, ExperimentSpec>, e: &ExperimentSpec) {
    let mut names: Vec<&str> = Vec::new();
    for t in &e.iteration.treatments {
        if !names.contains(&t.name.as_str()) {
            names.push(&t.name);
        }
    }
    match (&e.stop, e.state) {
        (None, ExperimentState::Stopped) => c.at(
            "state",
            "`state: stopped` needs `stop.winner`".to_owned(),
            "add `stop: {winner: <treatment name>}`; for an inconclusive result name the baseline".to_owned(),
        ),
        (Some(_), ExperimentState::Draft | ExperimentState::Running) => c.at_key(
            "stop",
            format!("`stop` is given but `state` is `{}`", e.state),
            "remove `stop`, or set `state: stopped`".to_owned(),
        ),
        (Some(s), _) if !names.contains(&s.winner.as_str()) => {
            let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            let message = match suggest(&s.winner, &names) {
                Some(g) => format!("`stop.winner` `{}` is not a treatment name, did you mean `{g}`?", s.winner),
                None => format!("`stop.winner` `{}` is not a treatment name", s.winner),
            };
            c.at("stop.winner", message, format!("name one of the treatments: {list}"));
        }
        _ => {}
    }
}

pub(crate) fn legacy(doc: &Located<LegacyFlagExperimentsSpec>, keys: &KeyLocations, out: &mut Vec<Diagnostic>) {
    let l = &doc.spec;
    let mut c = Check { doc, keys, out };
    c.key("project", "project key", &l.project);
    c.key("flag", "flag key", &l.flag);
    let mut seen = BTreeSet::new();
    for (i, m) in l.metrics.iter().enumerate() {
        let path = format!("metrics[{i}]");
        c.key(&format!("{path}.key"), "metric key", &m.key);
        if !seen.insert(m.key.as_str()) {
            c.at(
                &format!("{path}.key"),
                format!("metric `{}` is listed twice in `metrics`", m.key),
                "list each metric once, with every environment it records in under its `environments`".to_owned(),
            );
        }
        let mut envs = BTreeSet::new();
        for (j, env) in m.environments.iter().enumerate() {
            let p = format!("{path}.environments[{j}]");
            c.key(&p, "environment key", env);
            if !envs.insert(env.as_str()) {
                c.at(
                    &p,
                    format!("environment `{env}` is listed twice in `{path}.environments`"),
                    "list it once".to_owned(),
                );
            }
        }
    }
}

/// The same `(project, environment, key)` experiment or `(project, flag)` legacy spec defined twice.
pub(crate) fn duplicates(
    experiments: &[Located<ExperimentSpec>],
    legacy: &[Located<LegacyFlagExperimentsSpec>],
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<(&str, &str, &str), SourceLocation> = BTreeMap::new();
    for doc in experiments {
        let e = &doc.spec;
        let here = doc.location_of("key");
        let mut envs = e.target_environments();
        // An environment listed twice in one spec is its own diagnostic, not a duplicate experiment.
        envs.sort_unstable();
        envs.dedup();
        for env in envs {
            match seen.get(&(e.project.as_str(), env, e.key.as_str())) {
                Some(first) => out.push(Diagnostic::at(
                    &here,
                    format!(
                        "experiment `{}` in project `{}`, environment `{env}` is defined twice: first at {first}",
                        e.key, e.project
                    ),
                    Some("remove one of the two definitions, or give one another `key`".to_owned()),
                )),
                None => {
                    seen.insert((&e.project, env, &e.key), here.clone());
                }
            }
        }
    }
    let mut seen: BTreeMap<(&str, &str), SourceLocation> = BTreeMap::new();
    for doc in legacy {
        let l = &doc.spec;
        let here = doc.location_of("flag");
        match seen.get(&(l.project.as_str(), l.flag.as_str())) {
            Some(first) => out.push(Diagnostic::at(
                &here,
                format!(
                    "legacy experiments of flag `{}` in project `{}` are defined twice: first at {first}",
                    l.flag, l.project
                ),
                Some("one LegacyFlagExperiments spec owns a flag's `experiments`: merge the two".to_owned()),
            )),
            None => {
                seen.insert((&l.project, &l.flag), here);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchdarkly_keys() {
        for ok in ["demo", "a", "0", "checkout-button.v2_x"] {
            assert!(is_ld_key(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "_x", "a b", "é", "a/b"] {
            assert!(!is_ld_key(bad), "{bad}");
        }
        assert_eq!(slug("Checkout Button!"), "checkout-button");
        assert_eq!(slug("--"), "");
    }
}
