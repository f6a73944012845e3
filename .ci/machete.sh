#!/usr/bin/env bash
# Fails when a crate declares a dependency it does not use: installs cargo-machete (pinned) into the git-ignored
# .tools/cargo once, then runs it over the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

version="0.9.2"
root=".tools/cargo"
bin="$root/bin/cargo-machete"

if [[ ! -x "$bin" ]] || [[ "$("$bin" --version 2>/dev/null)" != *"$version"* ]]; then
    cargo install --locked --root "$root" --version "$version" cargo-machete
fi
"$bin"
