//! The specs digest: one hash of what a set of loaded specs means, recorded by a saved plan so that `apply --plan`
//! can tell whether the specs changed since.
//!
//! It hashes the parsed documents, not the files: a comment, a re-indent, other quoting, moving a document to
//! another file, renaming a file or reaching the same directory by another path (`examples`, `./examples/`, an
//! absolute path, `.` from inside) all leave it unchanged, since none of them changes what `apply` would do. A
//! digest of file names and bytes made every such edit refuse a saved plan as stale.

use std::borrow::Cow;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    ExperimentSpec, ExperimentationSettingsSpec, HoldoutSpec, LayerSpec, LegacyFlagExperimentsSpec, MetricGroupSpec,
    MetricSpec, SpecSet, WorkspaceSpec,
};

/// A loaded document as it would be written, `kind` included, without copying the spec.
#[derive(Serialize)]
#[serde(tag = "kind")]
enum Document<'a> {
    Experiment(&'a ExperimentSpec),
    LegacyFlagExperiments(&'a LegacyFlagExperimentsSpec),
    Workspace(&'a WorkspaceSpec),
    Metric(&'a MetricSpec),
    MetricGroup(&'a MetricGroupSpec),
    ExperimentationSettings(&'a ExperimentationSettingsSpec),
    Layer(&'a LayerSpec),
    Holdout(&'a HoldoutSpec),
}

/// `sha256:<hex>` over the BLAKE3 hashes of every document's compact JSON (canonical: the spec types write their
/// fields in declaration order and their maps sorted, whatever order the YAML had), with the documents sorted by identity (kind, project, key or flag, environments; a
/// Workspace's projects) and then by fingerprint, so that neither file names nor the order in which files or
/// documents are found matter.
pub(crate) fn of(set: &SpecSet) -> String {
    // Kept for every document until they are sorted: raw 32-byte hashes, not hex text.
    let mut docs: Vec<([&str; 3], Cow<'_, str>, [u8; 32])> = Vec::new();
    // One buffer for every document: at thousands of specs, a fresh one each was most of what loading churned.
    let mut buf = Vec::with_capacity(8192);
    let mut canonical = |doc: &Document<'_>| -> [u8; 32] {
        buf.clear();
        // Writing these types into a `Vec` cannot fail; a failure would leave a prefix, still deterministic.
        let _ = serde_json::to_writer(&mut buf, doc);
        *blake3::hash(&buf).as_bytes()
    };
    for e in &set.experiments {
        let s = &e.spec;
        // Most specs name one environment: borrowed, not joined.
        let envs = match (&s.environment, &s.environments) {
            (Some(e), _) => Cow::Borrowed(e.as_str()),
            (None, Some(es)) => Cow::Owned(es.join(",")),
            (None, None) => Cow::Borrowed(""),
        };
        docs.push((["Experiment", &s.project, &s.key], envs, canonical(&Document::Experiment(s))));
    }
    for l in &set.legacy {
        let s = &l.spec;
        docs.push((
            ["LegacyFlagExperiments", &s.project, &s.flag],
            Cow::Borrowed(""),
            canonical(&Document::LegacyFlagExperiments(s)),
        ));
    }
    for w in &set.workspaces {
        let projects: Vec<&str> = w.spec.projects.iter().map(|p| p.key.as_str()).collect();
        docs.push((["Workspace", "", ""], Cow::Owned(projects.join(",")), canonical(&Document::Workspace(&w.spec))));
    }
    for m in &set.metrics {
        let s = &m.spec;
        docs.push((["Metric", &s.project, &s.key], Cow::Borrowed(""), canonical(&Document::Metric(s))));
    }
    for g in &set.metric_groups {
        let s = &g.spec;
        docs.push((["MetricGroup", &s.project, &s.key], Cow::Borrowed(""), canonical(&Document::MetricGroup(s))));
    }
    for x in &set.settings {
        let s = &x.spec;
        let doc = canonical(&Document::ExperimentationSettings(s));
        docs.push((["ExperimentationSettings", &s.project, ""], Cow::Borrowed(""), doc));
    }
    for l in &set.layers {
        let s = &l.spec;
        docs.push((["Layer", &s.project, &s.key], Cow::Borrowed(""), canonical(&Document::Layer(s))));
    }
    for h in &set.holdouts {
        let s = &h.spec;
        let envs = Cow::Owned(s.target_environments().join(","));
        docs.push((["Holdout", &s.project, &s.key], envs, canonical(&Document::Holdout(s))));
    }
    docs.sort_unstable();
    let mut hasher = Sha256::new();
    for (_, _, hash) in &docs {
        hasher.update(hash);
    }
    crate::digest::hex(hasher)
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path, PathBuf};

    use crate::spec::{load, load_str};

    const EXPERIMENT: &str = include_str!("../../../../examples/checkout-button-placement.yaml");
    const LEGACY: &str = include_str!("../../../../examples/pricing-banner.yaml");

    fn digest(text: &str) -> String {
        load_str("spec.yaml", text).unwrap().digest
    }

    /// `text` with `from` replaced once; `from` must occur, so that no case silently tests nothing.
    fn edit(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "`{from}` is not in the spec");
        text.replacen(from, to, 1)
    }

    fn both() -> String {
        format!("{EXPERIMENT}---\n{LEGACY}")
    }

    #[test]
    fn comments_formatting_and_quoting_leave_it_unchanged() {
        let base = digest(&both());
        assert!(base.starts_with("sha256:") && base.len() == 71, "{base}");
        let same = [
            edit(&both(), "kind: Experiment\n", "# a new comment\nkind: Experiment   # and another\n"),
            edit(&both(), "name: Checkout button placement", "name: \"Checkout button placement\""),
            edit(&both(), "project: demo", "project: 'demo'"),
            edit(&both(), "tags: [checkout]", "tags:\n  - checkout"),
            edit(&both(), "analysisConfig:\n  bayesianThreshold: 95", "analysisConfig: { bayesianThreshold: \"95\" }"),
            // Fields in another order, and the document order of the file swapped.
            edit(&both(), "project: demo\nenvironment: production\n", "environment: production\nproject: demo\n"),
            format!("{LEGACY}\n---\n{EXPERIMENT}"),
            both().replace('\n', "\r\n"),
        ];
        for (i, text) in same.iter().enumerate() {
            assert_eq!(digest(text), base, "case {i}:\n{text}");
        }
    }

    #[test]
    fn every_change_of_a_value_changes_it() {
        let base = digest(&both());
        let changed = [
            ("name: Checkout button placement", "name: Checkout button placement!"),
            ("environment: production", "environment: staging"),
            ("state: running", "state: draft"),
            ("allocationPercent: 50", "allocationPercent: 49"),
            ("randomizationUnit: user", "randomizationUnit: organization"),
            ("rule: Beta users", "rule: fallthrough"),
            ("key: checkout-button-placement", "key: checkout-button-placement-2"),
            ("methodology: bayesian\n", ""),
            ("    - name: Control\n", "    - name: control\n"),
            ("flag: pricing-banner", "flag: pricing-banner-2"),
            ("baseline: \"off\"", "baseline: \"on\""),
            ("environments: [production, staging]", "environments: [staging, production]"),
        ];
        let mut seen = std::collections::BTreeSet::from([base]);
        for (from, to) in changed {
            let d = digest(&edit(&both(), from, to));
            assert!(seen.insert(d), "`{from}` → `{to}` left the digest as another case had it");
        }
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn file_names_and_which_file_holds_a_document_leave_it_unchanged() {
        let one = tempfile::tempdir().unwrap();
        write(one.path(), &[("all.yaml", &both())]);
        let split = tempfile::tempdir().unwrap();
        write(split.path(), &[("z/experiment.yml", EXPERIMENT), ("a-legacy.yaml", LEGACY)]);
        let (one, split) = (load(&[one.path()]).unwrap(), load(&[split.path()]).unwrap());
        assert_eq!((one.files.len(), split.files.len()), (1, 2));
        assert_eq!(one.digest, split.digest);
        assert_eq!(one.digest, digest(&both()));
    }

    /// `to` relative to `from`, both absolute: `../../tmp/x` and the like.
    fn relative(from: &Path, to: &Path) -> PathBuf {
        let (from, to): (Vec<Component>, Vec<Component>) = (from.components().collect(), to.components().collect());
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        let mut out = PathBuf::new();
        for _ in common..from.len() {
            out.push("..");
        }
        out.extend(&to[common..]);
        out
    }

    #[test]
    fn the_path_that_reaches_the_specs_does_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write(&root, &[("specs/a.yaml", EXPERIMENT), ("specs/b.yaml", LEGACY)]);
        let specs = root.join("specs");
        // Relative spellings are computed from this process's directory, which the tests must not change.
        let rel = relative(&std::env::current_dir().unwrap().canonicalize().unwrap(), &specs);
        let spellings = [
            specs.clone(),
            PathBuf::from(format!("{}/", specs.display())),
            specs.join("."),
            root.join("specs/../specs"),
            rel.clone(),
            PathBuf::from(format!("./{}/", rel.display())),
        ];
        let digests: Vec<String> = spellings.iter().map(|p| load(&[p]).unwrap().digest).collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{spellings:?}\n{digests:?}");
        // Files named one by one, in either order, are the same specs too.
        let files = load(&[specs.join("b.yaml"), specs.join("a.yaml")]).unwrap();
        assert_eq!(files.digest, digests[0]);
    }
}
