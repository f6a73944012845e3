//! Writing a set of files all or nothing, without losing local edits: every target is checked first (absent,
//! identical, or different, with a unified diff), each file is staged in a temporary file beside its target, and
//! only when all are staged are they renamed into place. `ldexp export` writes through this.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use similar::TextDiff;

/// One file to write, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewFile {
    pub path: PathBuf,
    pub contents: String,
}

/// What is at a target now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing: the file is new.
    Absent,
    /// The same bytes: nothing to write.
    Same,
    /// Something else, e.g. a spec edited after an earlier export; holds the local text.
    Differs(String),
}

/// What [`commit`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Written {
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
}

/// What is at each target under `dir`, in the order of `files`. A target that is a directory, or a file that cannot
/// be read as text, is an error: export would have to destroy it.
pub(crate) fn inspect(dir: &Path, files: &[NewFile]) -> Result<Vec<Existing>> {
    files
        .iter()
        .map(|f| {
            let target = dir.join(&f.path);
            match std::fs::symlink_metadata(&target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Absent),
                Err(e) => Err(e).with_context(|| format!("cannot inspect {}", target.display())),
                Ok(m) if m.is_dir() => bail!("{} is a directory; export would write a file there", target.display()),
                Ok(_) => {
                    let local = std::fs::read_to_string(&target)
                        .with_context(|| format!("cannot read {} to compare it", target.display()))?;
                    Ok(if local == f.contents { Existing::Same } else { Existing::Differs(local) })
                }
            }
        })
        .collect()
}

/// The unified diff from `local` to `new` for `name`, at most `max_lines` lines of it.
pub(crate) fn diff(name: &str, local: &str, new: &str, max_lines: usize) -> String {
    let text = TextDiff::from_lines(local, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (local)"), &format!("{name} (export)"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for line in lines.iter().take(max_lines) {
        let _ = writeln!(out, "{line}");
    }
    if lines.len() > max_lines {
        let _ = writeln!(out, "… {} more line(s) of this diff not shown", lines.len() - max_lines);
    }
    out
}

/// Writes every file whose target is absent or differs: each is staged in a temporary file in its target's
/// directory, and renamed into place only after all are staged. On an error before the renames, the staged files
/// and the directories created for them are removed, so nothing is left behind.
pub(crate) fn commit(dir: &Path, files: &[NewFile], existing: &[Existing]) -> Result<Written> {
    let mut created = Vec::new();
    let staged = stage(dir, files, existing, &mut created);
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // The staged files are gone already (dropped with the error); deepest directories first.
            for d in created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
    };
    let mut done = Written::default();
    for (f, e) in files.iter().zip(existing) {
        if *e == Existing::Same {
            done.unchanged.push(f.path.clone());
        }
    }
    let total = staged.len();
    for (tmp, target, rel) in staged {
        tmp.persist(&target).map_err(|e| e.error).with_context(|| {
            format!(
                "cannot move the new {} into place after writing {} of {total} file(s)",
                target.display(),
                done.written.len()
            )
        })?;
        done.written.push(rel);
    }
    Ok(done)
}

type Staged = Vec<(tempfile::NamedTempFile, PathBuf, PathBuf)>;

fn stage(dir: &Path, files: &[NewFile], existing: &[Existing], created: &mut Vec<PathBuf>) -> Result<Staged> {
    let mut staged = Vec::new();
    for (f, e) in files.iter().zip(existing) {
        if *e == Existing::Same {
            continue;
        }
        let target = dir.join(&f.path);
        let parent = target.parent().unwrap_or(dir).to_path_buf();
        create_dirs(&parent, created)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".ldexp-export-")
            .suffix(".tmp")
            .tempfile_in(&parent)
            .with_context(|| format!("cannot create a temporary file in {}", parent.display()))?;
        tmp.write_all(f.contents.as_bytes())
            .with_context(|| format!("cannot write a temporary file in {}", parent.display()))?;
        // Temporary files are private (0600); a spec is as readable as any file the user creates.
        let mode = std::fs::metadata(&target).map(|m| m.permissions()).ok();
        set_permissions(&tmp, mode)?;
        staged.push((tmp, target, f.path.clone()));
    }
    sync_all(&staged)?;
    Ok(staged)
}

/// Flushes every staged file to disk before any is renamed into place. From several threads at once: the
/// file system then commits many flushes together, where one after another an export of thousands of files
/// spent most of its time waiting on the disk.
fn sync_all(staged: &Staged) -> Result<()> {
    const THREADS: usize = 8;
    let chunk = staged.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = staged
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    for (tmp, target, _) in part {
                        tmp.as_file().sync_all().with_context(|| format!("cannot write {}", target.display()))?;
                    }
                    Ok::<(), anyhow::Error>(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a flush thread failed"))))
    })
}

/// `create_dir_all`, remembering each directory it created, outermost first.
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    for p in missing.into_iter().rev() {
        std::fs::create_dir(&p).with_context(|| format!("cannot create {}", p.display()))?;
        created.push(p);
    }
    Ok(())
}

#[cfg(unix)]
fn set_permissions(tmp: &tempfile::NamedTempFile, existing: Option<std::fs::Permissions>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let permissions = existing.unwrap_or_else(|| std::fs::Permissions::from_mode(0o644));
    std::fs::set_permissions(tmp.path(), permissions)
        .with_context(|| format!("cannot set the permissions of {}", tmp.path().display()))
}

#[cfg(not(unix))]
fn set_permissions(_: &tempfile::NamedTempFile, _: Option<std::fs::Permissions>) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> NewFile {
        NewFile { path: path.into(), contents: contents.into() }
    }

    /// Every path under `dir`, relative, sorted; directories end with `/`.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if p.is_dir() {
                    out.push(format!("{rel}/"));
                    stack.push(p);
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn new_changed_and_identical_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("same.yaml"), "a\n").unwrap();
        std::fs::write(dir.path().join("edited.yaml"), "mine\n").unwrap();
        let files = [file("same.yaml", "a\n"), file("edited.yaml", "theirs\n"), file("x/y/new.yaml", "n\n")];
        let seen = inspect(dir.path(), &files).unwrap();
        assert_eq!(seen, [Existing::Same, Existing::Differs("mine\n".into()), Existing::Absent]);
        let done = commit(dir.path(), &files, &seen).unwrap();
        assert_eq!(done.written, [PathBuf::from("edited.yaml"), PathBuf::from("x/y/new.yaml")]);
        assert_eq!(done.unchanged, [PathBuf::from("same.yaml")]);
        assert_eq!(tree(dir.path()), ["edited.yaml", "same.yaml", "x/", "x/y/", "x/y/new.yaml"]);
        assert_eq!(std::fs::read_to_string(dir.path().join("edited.yaml")).unwrap(), "theirs\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("x/y/new.yaml")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn a_failure_before_the_renames_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.yaml"), "old\n").unwrap();
        // `blocked` is a file, so nothing can be staged under `blocked/`: the third file fails after two staged.
        std::fs::write(dir.path().join("blocked"), "").unwrap();
        let files = [file("a/b/one.yaml", "1\n"), file("keep.yaml", "new\n"), file("blocked/two.yaml", "2\n")];
        assert!(inspect(dir.path(), &files).is_err(), "inspect already sees it");
        let seen = [Existing::Absent, Existing::Differs("old\n".into()), Existing::Absent];
        let e = commit(dir.path(), &files, &seen).unwrap_err();
        assert!(format!("{e:#}").contains("blocked"), "{e:#}");
        assert_eq!(tree(dir.path()), ["blocked", "keep.yaml"], "no temporary file, no created directory");
        assert_eq!(std::fs::read_to_string(dir.path().join("keep.yaml")).unwrap(), "old\n");
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("spec.yaml")).unwrap();
        let e = inspect(dir.path(), &[file("spec.yaml", "x")]).unwrap_err();
        assert!(e.to_string().ends_with("spec.yaml is a directory; export would write a file there"), "{e}");
    }

    #[test]
    fn diffs_go_from_local_to_export_and_are_clipped() {
        let d = diff("legacy/banner.yaml", "a\nb\nc\n", "a\nB\nc\n", 100);
        assert_eq!(
            d,
            "--- legacy/banner.yaml (local)\n+++ legacy/banner.yaml (export)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        let local: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let clipped = diff("f", &local, "", 10);
        assert_eq!(clipped.lines().count(), 11);
        assert!(clipped.ends_with("… 43 more line(s) of this diff not shown\n"), "{clipped}");
    }
}
