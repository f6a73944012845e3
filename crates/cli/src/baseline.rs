//! The baseline of `ldexp drift --baseline REF` / `--baseline-dir DIR`: the spec set as last applied, read from a
//! git revision through the `git` CLI (never by parsing `.git`), or from a folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use ldexp_core::spec::SpecSet;

/// Where the baseline comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A git revision (commit, tag, branch) of the repository holding the spec paths.
    Git(String),
    /// A folder of specs, as they were applied.
    Dir(PathBuf),
}

impl Source {
    /// How reports name the baseline.
    pub(crate) fn label(&self) -> String {
        match self {
            Source::Git(r) => r.clone(),
            Source::Dir(d) => d.display().to_string(),
        }
    }
}

/// Loads the baseline of the spec `paths`.
///
/// For a git revision, the same paths are read at that revision, so the baseline covers exactly what the current
/// specs cover. A path with no spec at the revision contributes nothing: everything in it is new since the baseline.
pub(crate) fn load(source: &Source, paths: &[PathBuf]) -> Result<SpecSet> {
    match source {
        Source::Dir(dir) => {
            if !dir.is_dir() {
                bail!("the baseline folder {} does not exist; give --baseline-dir the specs as applied", dir.display());
            }
            ldexp_core::spec::load(std::slice::from_ref(dir))
                .with_context(|| format!("cannot load the baseline specs in {}", dir.display()))
        }
        Source::Git(reference) => {
            let tmp = tempfile::tempdir().context("cannot create a temporary folder for the baseline specs")?;
            let mut roots = Vec::new();
            for (i, path) in paths.iter().enumerate() {
                if let Some(root) = materialise(reference, path, &tmp.path().join(i.to_string()))? {
                    roots.push(root);
                }
            }
            if roots.is_empty() {
                // No spec existed at the baseline: every object is pending.
                return Ok(SpecSet::default());
            }
            ldexp_core::spec::load(&roots).with_context(|| format!("cannot load the baseline specs at `{reference}`"))
        }
    }
}

/// Writes the YAML files under `path` as they were at `reference` into `into`, and returns the path there that
/// stands for `path`; `None` when `path` held no spec at that revision.
fn materialise(reference: &str, path: &Path, into: &Path) -> Result<Option<PathBuf>> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve the spec path {}", path.display()))?;
    // The folder git runs in: the path itself, or the folder of a file (which may no longer exist).
    let probe = if absolute.is_dir() {
        absolute.clone()
    } else {
        absolute.parent().map_or(absolute.clone(), Path::to_path_buf)
    };
    let top = git(&probe, &["rev-parse", "--show-toplevel"]).with_context(|| {
        format!(
            "{} is not in a git repository; --baseline reads the specs from git (use --baseline-dir for a folder)",
            path.display()
        )
    })?;
    let top = PathBuf::from(String::from_utf8_lossy(&top).trim_end_matches(['\n', '\r']));
    let commit = format!("{reference}^{{commit}}");
    if git(&top, &["rev-parse", "--verify", "--quiet", &commit]).is_err() {
        bail!(
            "the baseline `{reference}` is not a commit in the git repository {}; give the tag or commit the deploy \
             job recorded (`git tag --list` shows the tags; fetch them first in a shallow CI clone)",
            top.display()
        );
    }
    // Symlinks (macOS /var → /private/var) make the two spellings differ; compare resolved paths.
    let top_real = std::fs::canonicalize(&top).unwrap_or(top.clone());
    let probe_real = std::fs::canonicalize(&probe).unwrap_or(probe.clone());
    let rel_dir = probe_real
        .strip_prefix(&top_real)
        .with_context(|| format!("{} is not inside the git repository {}", path.display(), top.display()))?;
    let rel =
        if absolute.is_dir() { rel_dir.to_path_buf() } else { rel_dir.join(absolute.file_name().unwrap_or_default()) };
    let rel_arg = if rel.as_os_str().is_empty() { ".".to_owned() } else { rel.to_string_lossy().into_owned() };
    let listed = git(&top, &["ls-tree", "-r", "-z", "--name-only", "--full-tree", &commit, "--", &rel_arg])
        .with_context(|| format!("cannot list {} at `{reference}`", path.display()))?;
    let mut any = false;
    for name in listed.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let bytes = git(&top, &["show", &format!("{reference}:{name}")])
            .with_context(|| format!("cannot read {name} at `{reference}`"))?;
        let target = into.join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
        any = true;
    }
    Ok(any.then(|| into.join(&rel)))
}

/// Runs `git -C dir args…` and returns its stdout; a failure carries git's own message.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("cannot run `git`; --baseline needs git on the PATH (or use --baseline-dir)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}
