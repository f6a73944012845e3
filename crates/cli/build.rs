//! Build script of the cli: names the git commit the binary is built from, for `ldexp --version`.
//!
//! It asks the `git` command line rather than linking a git library, so the build gains no dependency. Outside a
//! git checkout of this workspace (a source tarball, a vendored copy, no `git` installed) the commit is
//! `unknown`; the build never fails for it.
// Cargo reads a build script's instructions from its stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match checkout_of_this_workspace(&manifest_dir) {
        Some(top) => {
            watch_head_and_refs(&top);
            git(&top, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=LDEXP_GIT_COMMIT={commit}");
}

/// The top of the git work tree, when that work tree is this workspace. A copy of the sources unpacked somewhere
/// inside an unrelated repository (a home directory under git, a vendor folder) must not claim that repository's
/// commit, so the work tree has to start exactly at the workspace root, two levels above this crate.
fn checkout_of_this_workspace(manifest_dir: &Path) -> Option<PathBuf> {
    let top = PathBuf::from(git(manifest_dir, &["rev-parse", "--show-toplevel"])?);
    let workspace = manifest_dir.join("../..");
    let same = top.canonicalize().ok()? == workspace.canonicalize().ok()?;
    same.then_some(top)
}

/// Reruns the build script when HEAD moves: a checkout rewrites HEAD, a commit rewrites the branch's ref, which is
/// a loose file under `refs/heads` or a line of `packed-refs`. In a linked worktree HEAD lives in the worktree's
/// own git dir and the refs in the common one. Only paths that exist are named: Cargo reruns a build script on
/// every build while a named path is missing.
fn watch_head_and_refs(top: &Path) {
    let git_dir = git(top, &["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common_dir = git(top, &["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
    let mut watched = Vec::new();
    if let Some(dir) = &git_dir {
        watched.push(dir.join("HEAD"));
    }
    if let Some(dir) = common_dir.as_ref().or(git_dir.as_ref()) {
        watched.push(dir.join("refs/heads"));
        watched.push(dir.join("packed-refs"));
    }
    for path in watched.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The trimmed stdout of a successful `git` run in `dir`; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
