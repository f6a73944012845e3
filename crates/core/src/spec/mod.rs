//! Spec sources: the v1 model, where each document and field came from, and the one function that loads them.

mod catalog;
#[cfg(test)]
mod catalog_tests;
mod digest;
mod discover;
mod locations;
mod model;
mod org;
mod rules;
mod shape;
#[cfg(test)]
mod tests;
mod warnings;
mod workspace;
pub(crate) mod yaml;

pub use crate::flag_map::{FlagMap, FlagMapIter};
pub use catalog::{
    AnalysisType, EventDefault, EventKind, ExperimentationSettingsSpec, GroupKind, GroupMember, MetricGroupSpec,
    MetricSpec, SuccessCriteria, UnitAggregationType, UnitSpec, UrlMatcher,
};
pub use locations::FieldLocations;
pub use model::*;
pub use org::{HoldoutSpec, HoldoutState, LayerRef, LayerSpec};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

/// Where something is written: a file and a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SourceLocation {
    /// Shared: every field of a file records its location, so a per-location copy of the name adds up at scale.
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A spec with the location of its document and of each of its fields.
///
/// Field paths are dotted, with list indices in brackets and map keys as written:
/// `iteration.treatments[1].variations.checkout-button`, `metrics[0].environments`.
/// The location of a field is where its value starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub spec: T,
    /// Where the document starts.
    pub location: SourceLocation,
    pub field_locations: FieldLocations,
}

impl<T> Located<T> {
    /// The location of `field`, else of its nearest recorded parent, else of the document.
    pub fn location_of(&self, field: &str) -> SourceLocation {
        let mut path = field;
        loop {
            if let Some(l) = self.field_locations.get(path) {
                return l;
            }
            match path.rfind(['.', '[']) {
                Some(i) => path = &path[..i],
                None => return self.location.clone(),
            }
        }
    }
}

/// Every spec loaded from a set of sources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpecSet {
    /// The files that held specs, in load order; other YAML a directory walk found and skipped is not listed.
    pub files: Vec<PathBuf>,
    pub experiments: Vec<Located<ExperimentSpec>>,
    pub legacy: Vec<Located<LegacyFlagExperimentsSpec>>,
    /// The `kind: Workspace` documents: the declared scope. Each project appears in at most one entry of one.
    pub workspaces: Vec<Located<WorkspaceSpec>>,
    pub metrics: Vec<Located<MetricSpec>>,
    pub metric_groups: Vec<Located<MetricGroupSpec>>,
    /// At most one per project.
    pub settings: Vec<Located<ExperimentationSettingsSpec>>,
    pub layers: Vec<Located<LayerSpec>>,
    pub holdouts: Vec<Located<HoldoutSpec>>,
    /// What is valid but deserves a second look, such as a name holding a right-to-left override; in file order,
    /// then by line and column, like the errors of [`crate::Error::Spec`].
    pub warnings: Vec<Diagnostic>,
    /// `sha256:<hex>` of what the documents mean, independent of file names, paths, formatting and comments: a
    /// saved plan records it, and `apply --plan` refuses the plan when it differs. See `spec/digest.rs`.
    pub digest: String,
}

/// One problem found in a spec, at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `loc`.
    pub fn at(loc: &SourceLocation, message: impl Into<String>, help: Option<String>) -> Self {
        Diagnostic { file: loc.file.to_string(), line: loc.line, column: loc.column, message: message.into(), help }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if let Some(h) = &self.help {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Loads every spec under `paths` (files, or directories searched recursively for `*.yaml`/`*.yml` in sorted
/// order), validating each document. Returns every problem found, not just the first.
///
/// Hidden entries (`.git`, `.github`, …) inside a directory are skipped, and so is other tools' YAML found there
/// (see `discover.rs`; each skip is logged at debug level); a path given explicitly is always read as specs.
/// A file reached twice (through two paths) is read once. `Error::Io` when a path cannot be read, `Error::Config`
/// when no spec file is found, `Error::Spec` with every problem otherwise; warnings, which leave the specs valid,
/// are in [`SpecSet::warnings`].
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<SpecSet, crate::Error> {
    let files = discover::files(paths)?;
    let mut loader = Loader::new();
    for (file, explicit) in &files {
        let bytes = std::fs::read(file).map_err(|source| crate::Error::Io { path: file.clone(), source })?;
        loader.add(file.clone(), &bytes, *explicit);
    }
    if loader.set.files.is_empty() && loader.diagnostics.is_empty() {
        return Err(discover::no_specs(paths));
    }
    loader.finish()
}

/// Loads specs from text, as if read from a file called `name`. For tests and for callers that hold the text.
pub fn load_str(name: &str, text: &str) -> Result<SpecSet, crate::Error> {
    let mut loader = Loader::new();
    loader.add(PathBuf::from(name), text.as_bytes(), true);
    loader.finish()
}

/// Loads specs from texts held in memory, each as if read from its path by a directory walk: `pull` plans the files
/// it would write before writing them.
pub fn load_sources(sources: &[(PathBuf, String)]) -> Result<SpecSet, crate::Error> {
    let mut loader = Loader::new();
    for (path, text) in sources {
        loader.add(path.clone(), text.as_bytes(), false);
    }
    loader.finish()
}

/// The JSON Schema of one spec document, generated from [`SpecDocument`]; committed as `schema/ldexp.schema.json`.
pub fn json_schema() -> serde_json::Value {
    sorted(serde_json::to_value(schemars::schema_for!(SpecDocument)).unwrap_or_default())
}

/// `v` with object keys in sorted order at every depth, whether or not a dependency turns on serde_json's
/// `preserve_order`, so the committed schema is byte-identical however the binary was built.
pub(crate) fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let entries: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Accumulates documents and problems over the files of one load.
struct Loader {
    shape: shape::Shape,
    set: SpecSet,
    diagnostics: Vec<Diagnostic>,
}

impl Loader {
    fn new() -> Self {
        Loader { shape: shape::Shape::new(), set: SpecSet::default(), diagnostics: Vec::new() }
    }

    fn add(&mut self, path: PathBuf, bytes: &[u8], explicit: bool) {
        let name = path.display().to_string();
        // Editors do not count a byte-order mark as a column, and yaml-rust2 would read it as part of the first key.
        let parsed = std::str::from_utf8(bytes).map(|t| {
            let t = t.strip_prefix('\u{feff}').unwrap_or(t);
            (t, yaml::parse(t))
        });
        match parsed {
            Ok((text, (docs, problems))) => {
                let docs = if explicit {
                    docs
                } else {
                    match discover::sort_walked(text, docs, &problems) {
                        discover::Walked::Specs { docs, skipped } => {
                            for (pos, why) in skipped {
                                tracing::debug!("skipped the document at {name}:{}:{}: {why}", pos.line, pos.column);
                            }
                            docs
                        }
                        discover::Walked::NotSpecs(why) => {
                            tracing::debug!("skipped {name}: {why}");
                            return;
                        }
                    }
                };
                self.set.files.push(path);
                self.check_source(&name, docs, problems);
            }
            Err(e) => {
                let lossy = String::from_utf8_lossy(bytes);
                if !explicit && !discover::looks_like_spec(&lossy) {
                    tracing::debug!("skipped {name}: it is not UTF-8 text and does not look like an ldexp spec");
                    return;
                }
                self.set.files.push(path);
                let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
                let line = valid.matches('\n').count() + 1;
                let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                self.diagnostics.push(Diagnostic {
                    file: name,
                    line,
                    column,
                    message: "the file is not valid UTF-8".to_owned(),
                    help: Some("save the spec as UTF-8 text".to_owned()),
                });
            }
        }
    }

    fn check_source(&mut self, name: &str, docs: Vec<yaml::Document>, problems: Vec<yaml::Problem>) {
        let file: Arc<str> = Arc::from(name);
        let loc = |p: yaml::Pos| SourceLocation { file: Arc::clone(&file), line: p.line, column: p.column };
        for p in problems {
            self.diagnostics.push(Diagnostic::at(&loc(p.pos), p.message, Some(p.help)));
        }
        for doc in docs {
            if doc.merge_failed {
                continue;
            }
            let (kind, findings) = self.shape.check_document(&doc.root);
            if !findings.is_empty() || kind.is_none() {
                for f in findings {
                    self.diagnostics.push(Diagnostic::at(&loc(f.pos), f.message, Some(f.help)));
                }
                continue;
            }
            let mut values = Vec::new();
            let mut keys = Vec::new();
            record(&doc.root, String::new(), &loc, &mut values, &mut keys);
            warnings::unsafe_text(&doc.root, "", &loc, &mut self.set.warnings);
            let (values, keys): (FieldLocations, FieldLocations) =
                (values.into_iter().collect(), keys.into_iter().collect());
            let location = loc(doc.root.pos);
            match serde_json::from_value::<SpecDocument>(doc.root.to_json()) {
                Ok(SpecDocument::Experiment(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    rules::experiment(&located, &keys, &mut self.diagnostics);
                    org::experiment(&located, &mut self.diagnostics);
                    self.set.experiments.push(located);
                }
                Ok(SpecDocument::LegacyFlagExperiments(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    rules::legacy(&located, &keys, &mut self.diagnostics);
                    self.set.legacy.push(located);
                }
                Ok(SpecDocument::Workspace(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    workspace::workspace(&located, &mut self.diagnostics);
                    self.set.workspaces.push(located);
                }
                Ok(SpecDocument::Metric(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    catalog::metric(&located, &mut self.diagnostics);
                    self.set.metrics.push(located);
                }
                Ok(SpecDocument::MetricGroup(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    catalog::metric_group(&located, &mut self.diagnostics);
                    self.set.metric_groups.push(located);
                }
                Ok(SpecDocument::ExperimentationSettings(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    catalog::settings(&located, &mut self.diagnostics);
                    self.set.settings.push(located);
                }
                Ok(SpecDocument::Layer(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    org::layer(&located, &mut self.diagnostics);
                    self.set.layers.push(located);
                }
                Ok(SpecDocument::Holdout(spec)) => {
                    let located = Located { spec, location, field_locations: values };
                    org::holdout(&located, &mut self.diagnostics);
                    self.set.holdouts.push(located);
                }
                // The shape check accepts only what the types accept; this is a safety net, not a path users see.
                Err(e) => self.diagnostics.push(Diagnostic::at(
                    &location,
                    format!("the document does not match spec format v1: {e}"),
                    Some("compare it with the spec reference in README.md".to_owned()),
                )),
            }
        }
    }

    fn finish(mut self) -> Result<SpecSet, crate::Error> {
        rules::duplicates(&self.set.experiments, &self.set.legacy, &mut self.diagnostics);
        catalog::duplicates(&self.set, &mut self.diagnostics);
        org::duplicates(&self.set, &mut self.diagnostics);
        workspace::scope(&self.set, &mut self.diagnostics);
        let order: BTreeMap<String, usize> =
            self.set.files.iter().enumerate().map(|(i, f)| (f.display().to_string(), i)).collect();
        let key = |d: &Diagnostic| (order.get(&d.file).copied().unwrap_or(usize::MAX), d.line, d.column);
        if !self.diagnostics.is_empty() {
            self.diagnostics.sort_by_key(key);
            return Err(crate::Error::Spec { diagnostics: self.diagnostics });
        }
        self.set.warnings.sort_by_key(key);
        self.set.digest = digest::of(&self.set);
        Ok(self.set)
    }
}

/// Records where every value (and every mapping key) of the tree is written, by dotted path.
fn record(
    node: &yaml::Node,
    path: String,
    loc: &dyn Fn(yaml::Pos) -> SourceLocation,
    values: &mut Vec<(String, SourceLocation)>,
    keys: &mut Vec<(String, SourceLocation)>,
) {
    match &node.value {
        yaml::Value::Map(entries) => {
            for e in entries {
                let p = if path.is_empty() { e.key.clone() } else { format!("{path}.{}", e.key) };
                keys.push((p.clone(), loc(e.key_pos)));
                record(&e.value, p, loc, values, keys);
            }
        }
        yaml::Value::Seq(items) => {
            for (i, n) in items.iter().enumerate() {
                record(n, format!("{path}[{i}]"), loc, values, keys);
            }
        }
        _ => {}
    }
    if !path.is_empty() {
        values.push((path, loc(node.pos)));
    }
}
