//! Rules of `kind: Workspace` documents, and of the scope they declare over the other specs.

use std::collections::{BTreeMap, BTreeSet};

use super::rules::{is_ld_key, key_help};
use super::{Diagnostic, Located, SourceLocation, SpecSet, WorkspaceSpec};

/// The rules of one Workspace document on its own.
pub(crate) fn workspace(doc: &Located<WorkspaceSpec>, out: &mut Vec<Diagnostic>) {
    let mut at = |field: &str, message: String, help: String| {
        out.push(Diagnostic::at(&doc.location_of(field), message, Some(help)));
    };
    if doc.spec.projects.is_empty() {
        at(
            "projects",
            "`projects` is empty".to_owned(),
            "list the projects ldexp manages, e.g. `- {key: shop, environments: [production], owns: [experiments]}`"
                .to_owned(),
        );
    }
    for (i, p) in doc.spec.projects.iter().enumerate() {
        let path = format!("projects[{i}]");
        if !is_ld_key(&p.key) {
            at(
                &format!("{path}.key"),
                format!("project key `{}` is not a valid LaunchDarkly key", p.key),
                key_help(&p.key),
            );
        }
        if p.environments.is_empty() {
            at(
                &format!("{path}.environments"),
                format!("`environments` of project `{}` is empty", p.key),
                "list the environments ldexp manages in this project".to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        for (j, env) in p.environments.iter().enumerate() {
            let field = format!("{path}.environments[{j}]");
            if !is_ld_key(env) {
                at(&field, format!("environment key `{env}` is not a valid LaunchDarkly key"), key_help(env));
            } else if !seen.insert(env.as_str()) {
                at(
                    &field,
                    format!("environment `{env}` is listed twice for project `{}`", p.key),
                    "list it once".to_owned(),
                );
            }
        }
        let mut owned = BTreeSet::new();
        for (j, o) in p.owns.iter().enumerate() {
            if !owned.insert(*o) {
                at(
                    &format!("{path}.owns[{j}]"),
                    format!("`{o}` is listed twice in `owns` of project `{}`", p.key),
                    "list it once".to_owned(),
                );
            }
        }
    }
}

/// Rules across documents: a project has at most one Workspace entry, and a spec of a declared project targets
/// only the environments declared for it.
pub(crate) fn scope(set: &SpecSet, out: &mut Vec<Diagnostic>) {
    // Project key → its declared environments, and where the project's entry is.
    let mut declared: BTreeMap<&str, (BTreeSet<&str>, SourceLocation)> = BTreeMap::new();
    for doc in &set.workspaces {
        for (i, p) in doc.spec.projects.iter().enumerate() {
            let here = doc.location_of(&format!("projects[{i}].key"));
            match declared.get(p.key.as_str()) {
                Some((_, first)) => out.push(Diagnostic::at(
                    &here,
                    format!("project `{}` is declared twice in a Workspace: first at {first}", p.key),
                    Some("at most one Workspace entry per project: merge the two entries".to_owned()),
                )),
                None => {
                    let envs = p.environments.iter().map(String::as_str).collect();
                    declared.insert(&p.key, (envs, here));
                }
            }
        }
    }
    if declared.is_empty() {
        return;
    }
    let mut check = |project: &str, env: &str, at: SourceLocation, what: &str| {
        let Some((envs, entry)) = declared.get(project) else { return };
        if envs.contains(env) {
            return;
        }
        let list = envs.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ");
        out.push(Diagnostic::at(
            &at,
            format!("{what} targets environment `{env}`, which the Workspace does not declare for project `{project}`"),
            Some(format!(
                "the Workspace entry at {entry} manages {list}: add `{env}` to its `environments`, or target one of \
                 those"
            )),
        ));
    };
    for doc in &set.experiments {
        let e = &doc.spec;
        let what = format!("experiment `{}`", e.key);
        match (&e.environment, &e.environments) {
            (Some(env), _) => check(&e.project, env, doc.location_of("environment"), &what),
            (None, Some(envs)) => {
                for (j, env) in envs.iter().enumerate() {
                    check(&e.project, env, doc.location_of(&format!("environments[{j}]")), &what);
                }
            }
            (None, None) => {}
        }
    }
    for doc in &set.holdouts {
        let h = &doc.spec;
        let what = format!("holdout `{}`", h.key);
        for (j, env) in h.target_environments().into_iter().enumerate() {
            let field = if h.environment.is_some() { "environment".to_owned() } else { format!("environments[{j}]") };
            check(&h.project, env, doc.location_of(&field), &what);
        }
    }
    for doc in &set.legacy {
        let l = &doc.spec;
        for (i, m) in l.metrics.iter().enumerate() {
            let what = format!("legacy metric `{}` of flag `{}`", m.key, l.flag);
            for (j, env) in m.environments.iter().enumerate() {
                check(&l.project, env, doc.location_of(&format!("metrics[{i}].environments[{j}]")), &what);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{Owned, load_str};

    const WORKSPACE: &str = "\
kind: Workspace
projects:
  - key: shop
    environments: [staging, production]
    owns: [experiments]
  - key: blog
    environments: [production]
";

    const LEGACY: &str = "\
kind: LegacyFlagExperiments
project: shop
flag: banner
baseline: 0
metrics:
  - key: clicks
    environments: [production, qa]
";

    fn problems(text: &str) -> Vec<String> {
        match load_str("w.yaml", text) {
            Ok(_) => Vec::new(),
            Err(crate::Error::Spec { diagnostics }) => diagnostics.iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn a_workspace_loads_with_its_locations() {
        let set = load_str("w.yaml", WORKSPACE).unwrap();
        let w = &set.workspaces[0];
        assert_eq!(w.spec.projects.len(), 2);
        assert_eq!(w.spec.projects[0].owns, [Owned::Experiments]);
        assert_eq!(w.spec.projects[1].owns, [], "`owns` may be left out: the scope is declared, nothing is prunable");
        assert_eq!(w.location_of("projects[1].environments[0]").to_string(), "w.yaml:7:20");
        assert!(set.experiments.is_empty() && set.legacy.is_empty());
        // The digest covers workspaces.
        let other = load_str("w.yaml", &WORKSPACE.replace("[staging, production]", "[production]")).unwrap();
        assert_ne!(set.digest, other.digest);
    }

    #[test]
    fn keys_environments_and_owns_are_checked() {
        let text = WORKSPACE
            .replace("key: shop", "key: the shop")
            .replace("[staging, production]", "[staging, production, staging, qa!]")
            .replace("owns: [experiments]", "owns: [experiments, experiments]")
            .replace("environments: [production]\n", "environments: []\n");
        assert_eq!(
            problems(&text),
            [
                "w.yaml:3:10: project key `the shop` is not a valid LaunchDarkly key (hint: use only letters, digits, \
                 `.`, `_` and `-`, starting with a letter or digit, e.g. `the-shop`)",
                "w.yaml:4:41: environment `staging` is listed twice for project `the shop` (hint: list it once)",
                "w.yaml:4:50: environment key `qa!` is not a valid LaunchDarkly key (hint: use only letters, digits, \
                 `.`, `_` and `-`, starting with a letter or digit, e.g. `qa`)",
                "w.yaml:5:25: `experiments` is listed twice in `owns` of project `the shop` (hint: list it once)",
                "w.yaml:7:19: `environments` of project `blog` is empty (hint: list the environments ldexp manages in \
                 this project)",
            ]
        );
        assert_eq!(
            problems("kind: Workspace\nprojects: []\n"),
            ["w.yaml:2:11: `projects` is empty (hint: list the projects ldexp manages, e.g. `- {key: shop, \
              environments: [production], owns: [experiments]}`)"]
        );
    }

    #[test]
    fn owned_kinds_are_spelt_as_the_spec_reference_says() {
        assert_eq!(
            problems(&WORKSPACE.replace("owns: [experiments]", "owns: [experiments, holdouts, layers, experimnts]")),
            ["w.yaml:5:43: `projects[0].owns[3]` must be one of `experiments`, `metrics`, `metricGroups`, \
                 `holdouts`, `layers`, found `experimnts`, did you mean `experiments`? (hint: write `experiments`)",]
        );
    }

    #[test]
    fn unknown_fields_get_suggestions_as_in_other_kinds() {
        assert_eq!(
            problems(
                &WORKSPACE
                    .replace("    owns:", "    onws:")
                    .replace("    environments: [production]", "    environmnts: [production]")
            ),
            [
                "w.yaml:5:5: unknown field `onws` in `projects[0]`, did you mean `owns`? (hint: rename `onws` to `owns`)",
                "w.yaml:7:5: unknown field `environmnts` in `projects[1]`, did you mean `environments`? (hint: rename \
                 `environmnts` to `environments`)",
            ]
        );
        assert_eq!(
            problems("projects:\n  - key: shop\n    environments: [production]\n"),
            ["w.yaml:1:1: missing field `kind`, did you mean `kind: Workspace`? (hint: add `kind: Workspace` at the \
              top of the document)"]
        );
    }

    #[test]
    fn a_project_has_one_workspace_entry() {
        let again = "kind: Workspace\nprojects:\n  - key: blog\n    environments: [staging]\n";
        assert_eq!(
            problems(&format!("{WORKSPACE}---\n{again}")),
            ["w.yaml:11:10: project `blog` is declared twice in a Workspace: first at w.yaml:6:10 (hint: at most one \
              Workspace entry per project: merge the two entries)"]
        );
    }

    #[test]
    fn specs_of_a_declared_project_target_only_its_environments() {
        let experiment = include_str!("../../../../examples/checkout-button-placement.yaml")
            .replace("project: demo", "project: shop")
            .replace("environment: production", "environments: [production, qa]");
        assert_eq!(
            problems(&format!("{WORKSPACE}---\n{experiment}---\n{LEGACY}")),
            [
                "w.yaml:13:28: experiment `checkout-button-placement` targets environment `qa`, which the Workspace \
                 does not declare for project `shop` (hint: the Workspace entry at w.yaml:3:10 manages `production`, \
                 `staging`: add `qa` to its `environments`, or target one of those)",
                "w.yaml:54:32: legacy metric `clicks` of flag `banner` targets environment `qa`, which the Workspace \
                 does not declare for project `shop` (hint: the Workspace entry at w.yaml:3:10 manages `production`, \
                 `staging`: add `qa` to its `environments`, or target one of those)",
            ]
        );
        // Projects no Workspace declares are not restricted, and without a Workspace nothing is.
        let elsewhere = LEGACY.replace("project: shop", "project: other");
        assert_eq!(problems(&format!("{WORKSPACE}---\n{elsewhere}")), Vec::<String>::new());
        assert_eq!(problems(LEGACY), Vec::<String>::new());
    }
}
