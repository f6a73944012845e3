#!/usr/bin/env bash
# The steps of the ldexp GitHub Action (action.yml) that install ldexp with `cargo install --locked`.
#
#   install.sh resolve   decides the source and writes `key` (the cache key) and `root` (where ldexp is installed)
#                        to $GITHUB_OUTPUT, and puts root/bin on $GITHUB_PATH
#   install.sh install   builds and installs ldexp into root (run on a cache miss only)
#
# The source is this repository at the tag of INPUT_VERSION (`0.1.0` or `v0.1.0`), else at the action's own ref
# (ACTION_REF, ACTION_REPOSITORY: github.action_ref and github.action_repository, which the runner fills in only
# for an action used from another repository), else the action's own directory (`uses: ./` in this repository).
# A tag or branch is resolved to its commit with `git ls-remote`, so the cache key names exactly what was built
# and a moved branch builds again.
set -euo pipefail

mode=${1:?usage: install.sh resolve|install}
root=${LDEXP_INSTALL_ROOT:-$HOME/.cache/ldexp-action}
repo_url=https://github.com/${ACTION_REPOSITORY:-ldexp/ldexp}
action_dir=${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

ref=""
if [[ -n ${INPUT_VERSION:-} ]]; then
    ref=v${INPUT_VERSION#v}
elif [[ -n ${ACTION_REF:-} && -n ${ACTION_REPOSITORY:-} ]]; then
    ref=$ACTION_REF
fi

# The commit of $ref: a commit hash as is, else the tag (peeled, for an annotated tag) or the branch it names.
commit_of() {
    if [[ $1 =~ ^[0-9a-f]{40}$ ]]; then
        echo "$1"
        return
    fi
    local refs
    refs=$(git ls-remote "$repo_url" "refs/tags/$1" "refs/tags/$1^{}" "refs/heads/$1")
    local peeled tag branch
    peeled=$(awk -v r="refs/tags/$1^{}" '$2 == r { print $1 }' <<<"$refs")
    tag=$(awk -v r="refs/tags/$1" '$2 == r { print $1 }' <<<"$refs")
    branch=$(awk -v r="refs/heads/$1" '$2 == r { print $1 }' <<<"$refs")
    local commit=${peeled:-${tag:-$branch}}
    if [[ -z $commit ]]; then
        echo "::error::$repo_url has no tag or branch '$1' (the version input, or the ref the action is used at)" >&2
        return 1
    fi
    echo "$commit"
}

case $mode in
    resolve)
        if [[ -n $ref ]]; then
            source_id=$(commit_of "$ref")
            echo "ldexp from $repo_url at $ref ($source_id)"
        else
            # A hash of what the binary is built from: the manifests, the lock file, the sources and the bundled
            # examples.
            source_id=path-$(cd "$action_dir" && find Cargo.toml Cargo.lock crates examples -type f \
                -not -path '*/target/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
            echo "ldexp from the action's directory $action_dir ($source_id)"
        fi
        {
            echo "key=ldexp-${RUNNER_OS:-$(uname -s)}-${RUNNER_ARCH:-$(uname -m)}-$source_id"
            echo "root=$root"
            echo "source=$source_id"
        } >>"${GITHUB_OUTPUT:-/dev/null}"
        echo "$root/bin" >>"${GITHUB_PATH:-/dev/null}"
        ;;
    install)
        command -v cargo >/dev/null || {
            echo "::error::cargo is not installed: ldexp is built from source; add a Rust toolchain step first" >&2
            exit 1
        }
        if [[ -n $ref ]]; then
            from=(--git "$repo_url" --rev "$(commit_of "$ref")" ldexp)
        else
            from=(--path "$action_dir/crates/cli")
        fi
        start=$SECONDS
        cargo install --locked --force --root "$root" "${from[@]}"
        echo "installed $("$root/bin/ldexp" --version) in $((SECONDS - start)) s"
        ;;
    *)
        echo "usage: install.sh resolve|install" >&2
        exit 2
        ;;
esac
