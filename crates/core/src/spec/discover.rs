//! Which files and documents are specs: the files under the paths given, and, in a directory walk, which of the
//! YAML files and documents found are ldexp specs rather than other YAML living beside them.
//!
//! A directory, `.` by default, may hold Kubernetes manifests, Helm templates, CI workflows and seeds next to the
//! specs. What is found there is a spec when it says so (an ldexp `kind`, or a near miss of one, which is then
//! reported), or when a document without `kind` has fields only specs have; anything else is skipped, and `-v`
//! lists it with the reason. A file named on the command line is always read as a spec.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::shape::{kinds, suggest};
use super::yaml::{Document, Pos, Problem, Value};

/// The files to read, each with whether it was named explicitly (rather than found in a directory).
pub(crate) fn files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<(PathBuf, bool)>, crate::Error> {
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|source| crate::Error::Io { path: p.to_owned(), source })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, &mut visited)?;
            found.sort();
            files.extend(found.into_iter().map(|f| (f, false)));
        } else {
            files.push((p.to_owned(), true));
        }
    }
    let mut seen = BTreeSet::new();
    files.retain(|(f, _)| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(files)
}

pub(crate) fn no_specs<P: AsRef<Path>>(paths: &[P]) -> crate::Error {
    let list = paths.iter().map(|p| p.as_ref().display().to_string()).collect::<Vec<_>>().join(", ");
    crate::Error::config(
        format!("no spec files (*.yaml, *.yml with a `kind`) under {list}"),
        Some("pass the directory or files holding the specs, e.g. `ldexp validate examples`".to_owned()),
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, visited: &mut BTreeSet<PathBuf>) -> Result<(), crate::Error> {
    // Symlinked directories may form cycles; each real directory is read once.
    if !visited.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())) {
        return Ok(());
    }
    let io = |source| crate::Error::Io { path: dir.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out, visited)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Top-level fields that make a document without `kind` a spec (one missing its `kind`). Other YAML that lives
/// beside specs, such as CI workflows or the emulator seed, has none of them.
const SPEC_MARKS: [&str; 7] = ["project", "environment", "environments", "iteration", "state", "flag", "baseline"];

/// Top-level fields that only ldexp specs have: a file that does not parse is still taken for a broken spec when
/// a line starts with one of them.
const SPEC_ONLY: [&str; 4] = ["iteration", "analysisConfig", "maintainerId", "holdoutId"];

/// What a directory walk makes of a file that parsed (perhaps only in part).
pub(crate) enum Walked {
    /// The file holds specs: these documents are checked. Each document dropped has its position and the reason.
    Specs { docs: Vec<Document>, skipped: Vec<(Pos, String)> },
    /// The file holds no spec, for this reason.
    NotSpecs(String),
}

/// What one document found in a directory is.
enum Class {
    Spec,
    /// Another tool's document, for this reason.
    Foreign(String),
    /// Nothing says what it is.
    Unmarked,
}

/// Whether `kind` is an ldexp kind or close enough to one to be a misspelling of it.
fn ldexp_kind(kind: &str) -> bool {
    let names: Vec<&str> = kinds().collect();
    names.contains(&kind) || suggest(kind, &names).is_some()
}

fn classify(doc: &Document) -> Class {
    let Value::Map(entries) = &doc.root.value else { return Class::Unmarked };
    // Kubernetes-style manifests carry `apiVersion`, and some of their kinds are ldexp's own names (Argo Rollouts and
    // Kubeflow Katib both have `kind: Experiment`); no ldexp spec has it.
    if doc.root.get("apiVersion").is_some() {
        return Class::Foreign("it has `apiVersion`, so it is a Kubernetes-style manifest, not an ldexp spec".into());
    }
    match doc.root.get("kind").map(|e| &e.value.value) {
        Some(Value::Str(k)) if ldexp_kind(k) => Class::Spec,
        Some(Value::Str(k)) => Class::Foreign(format!("kind `{k}` is not an ldexp kind")),
        Some(_) => Class::Foreign("its `kind` is not a string naming an ldexp kind".into()),
        None => {
            // `Kind: Experiment`: a misspelt `kind` naming an ldexp kind is a spec, reported as such.
            let misspelt_kind = entries.iter().any(|e| {
                suggest(&e.key, &["kind"]).is_some() && matches!(&e.value.value, Value::Str(k) if ldexp_kind(k))
            });
            if misspelt_kind || SPEC_MARKS.iter().any(|m| doc.root.get(m).is_some()) {
                Class::Spec
            } else {
                Class::Unmarked
            }
        }
    }
}

/// Sorts the documents of a file found in a directory walk. Documents of another tool's kind are dropped; the
/// others are kept when at least one is a spec, so that a broken spec beside a good one is still reported. A file
/// that did not parse is a broken spec when what parsed holds a spec or its text [looks like one](looks_like_spec).
pub(crate) fn sort_walked(text: &str, docs: Vec<Document>, problems: &[Problem]) -> Walked {
    let classes: Vec<Class> = docs.iter().map(classify).collect();
    let any_spec = classes.iter().any(|c| matches!(c, Class::Spec));
    // `yaml.rs` starts every problem that leaves the text unreadable as a spec with "invalid " (syntax, an unknown
    // anchor, a collection as a key, the alias and depth caps); a duplicate key or a merge-key mistake is not one.
    let syntax = problems.iter().find(|p| p.message.starts_with("invalid "));
    if any_spec || (syntax.is_some() && looks_like_spec(text)) {
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for (doc, class) in docs.into_iter().zip(classes) {
            match class {
                Class::Foreign(why) => skipped.push((doc.root.pos, why)),
                Class::Spec | Class::Unmarked => kept.push(doc),
            }
        }
        return Walked::Specs { docs: kept, skipped };
    }
    if let Some(p) = syntax {
        return Walked::NotSpecs(format!(
            "it does not parse as YAML ({} at line {}, column {}) and does not look like an ldexp spec",
            p.message, p.pos.line, p.pos.column
        ));
    }
    let mut reasons: Vec<String> = Vec::new();
    for class in classes {
        if let Class::Foreign(why) = class
            && !reasons.contains(&why)
        {
            reasons.push(why);
        }
    }
    Walked::NotSpecs(if reasons.is_empty() {
        "no document in it has a `kind` or a field of an ldexp spec".to_owned()
    } else {
        reasons.join("; ")
    })
}

/// Whether text that does not parse looks like an ldexp spec: a top-level line `kind: <an ldexp kind or a near
/// miss>`, or a top-level field only specs have, and no `apiVersion`. A Helm template, whose `{{ }}` rarely
/// parses, names a Kubernetes kind and has `apiVersion`.
pub(crate) fn looks_like_spec(text: &str) -> bool {
    let mut spec = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        if key == "apiVersion" {
            return false;
        }
        if key == "kind" {
            let value = value.split('#').next().unwrap_or_default().trim().trim_matches(['"', '\'']);
            spec |= ldexp_kind(value);
        }
        spec |= SPEC_ONLY.contains(&key);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse;

    fn walked(text: &str) -> Result<Vec<Pos>, String> {
        let (docs, problems) = parse(text);
        match sort_walked(text, docs, &problems) {
            Walked::Specs { docs, .. } => Ok(docs.iter().map(|d| d.root.pos).collect()),
            Walked::NotSpecs(why) => Err(why),
        }
    }

    #[test]
    fn ldexp_kinds_and_their_near_misses_are_specs_other_kinds_are_not() {
        for kind in ["Experiment", "LegacyFlagExperiments", "Workspace", "Experimnet", "experiment", "WorkSpace"] {
            assert!(walked(&format!("kind: {kind}\n")).is_ok(), "{kind}");
        }
        assert_eq!(
            walked("kind: Deployment\nmetadata: {name: web}\n"),
            Err("kind `Deployment` is not an ldexp kind".into())
        );
        assert_eq!(walked("kind: Namespace\n").unwrap_err(), "kind `Namespace` is not an ldexp kind");
        assert_eq!(walked("kind: [a]\n").unwrap_err(), "its `kind` is not a string naming an ldexp kind");
        // Argo Rollouts' and Kubeflow's experiments are manifests, told apart by `apiVersion`.
        assert_eq!(
            walked("apiVersion: argoproj.io/v1alpha1\nkind: Experiment\n").unwrap_err(),
            "it has `apiVersion`, so it is a Kubernetes-style manifest, not an ldexp spec"
        );
    }

    #[test]
    fn documents_without_kind_are_specs_when_they_have_spec_fields() {
        assert!(walked("project: demo\nflag: f\n").is_ok());
        assert!(walked("Kind: Experiment\nname: x\n").is_ok());
        assert_eq!(
            walked("name: ci\non: push\njobs: {}\n").unwrap_err(),
            "no document in it has a `kind` or a field of an ldexp spec"
        );
        assert_eq!(
            walked("# only a comment\n").unwrap_err(),
            "no document in it has a `kind` or a field of an ldexp spec"
        );
    }

    #[test]
    fn foreign_documents_beside_specs_are_dropped_and_unmarked_ones_kept() {
        let text = "kind: Service\n---\nkind: Experiment\n---\nname: stray\n---\nkind: ConfigMap\n";
        let (docs, problems) = parse(text);
        let Walked::Specs { docs, skipped } = sort_walked(text, docs, &problems) else { panic!("not specs") };
        assert_eq!(docs.iter().map(|d| d.root.pos.line).collect::<Vec<_>>(), [3, 5]);
        assert_eq!(
            skipped,
            [
                (Pos { line: 1, column: 1 }, "kind `Service` is not an ldexp kind".to_owned()),
                (Pos { line: 7, column: 1 }, "kind `ConfigMap` is not an ldexp kind".to_owned()),
            ]
        );
    }

    #[test]
    fn unparseable_files_are_specs_only_when_they_look_like_one() {
        let helm = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  labels: {{- include \"x\" . | nindent 4 }}\n";
        let why = walked(helm).unwrap_err();
        assert!(why.starts_with("it does not parse as YAML (invalid "), "{why}");
        assert!(why.ends_with("and does not look like an ldexp spec"), "{why}");
        for broken in ["kind: Experiment\nname: [x\n", "kind: 'Experimnet'  # typo\nname: [x\n", "iteration:\n  a: [\n"]
        {
            assert_eq!(walked(broken), Ok(vec![]), "{broken}");
        }
        assert!(!looks_like_spec("kind: Deployment\nname: [x\n"));
        assert!(!looks_like_spec("  iteration: 3\n"), "only top-level fields count");
        assert!(looks_like_spec("maintainerId: x\n"));
    }
}
