#!/usr/bin/env bash
# Installs Prism (@stoplight/prism-cli, pinned) into the git-ignored .tools/prism for the contract conformance
# test (crates/emulator/tests/contract.rs). A no-op when that exact version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version="5.16.0"
dir=".tools/prism"
bin="$dir/node_modules/.bin/prism"
manifest="$dir/node_modules/@stoplight/prism-cli/package.json"

if [[ -x "$bin" && -f "$manifest" ]] \
    && [[ "$(node -p "require('./$manifest').version" 2>/dev/null)" == "$version" ]]; then
    echo "prism $version already installed in $dir"
    exit 0
fi

command -v npm >/dev/null || { echo "prism.sh: npm is required (Node.js 18 or newer)" >&2; exit 1; }
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] || printf '{ "name": "ldexp-tools-prism", "private": true }\n' > "$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --save-exact "@stoplight/prism-cli@$version"
echo "prism $("$bin" --version) installed in $dir"
