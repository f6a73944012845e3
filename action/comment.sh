#!/usr/bin/env bash
# The step of the ldexp GitHub Action (action.yml) that keeps one sticky plan comment per spec folder on a pull
# request. The comment opens with a hidden marker naming the folder, `<!-- ldexp-plan path=experiments -->`; the
# step finds the comment by that marker and edits it in place on each push, or creates it on the first. With no
# changes the comment shrinks to the summary line. The body never exceeds GitHub's 65,536-character limit.
#
# It talks to GitHub only through `gh api` (on GitHub's runners already, authenticated by GH_TOKEN). Environment:
# REPO (owner/name), PR_NUMBER, SPEC_PATH, EXITCODE and REPORT_FILE (from run.sh), and optionally RUN_URL and
# HEAD_SHA for the footer.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${REPO:?} ${PR_NUMBER:?} ${SPEC_PATH:?} ${EXITCODE:?} ${REPORT_FILE:?}"
limit=65536
marker="<!-- ldexp-plan path=$(encoded_path "$SPEC_PATH") -->"
body=$(mktemp)
trap 'rm -f "$body"' EXIT

footer() {
    local text=""
    [[ -n ${HEAD_SHA:-} ]] && text="for ${HEAD_SHA:0:7}"
    [[ -n ${RUN_URL:-} ]] && text+="${text:+ · }[workflow run]($RUN_URL)"
    [[ -z $text ]] || printf '\n<sub>ldexp plan %s</sub>\n' "$text"
}

{
    echo "$marker"
    if [[ $EXITCODE == 0 ]] && grep -q '^\*\*' "$REPORT_FILE"; then
        # Nothing to change: the summary line alone, so an old plan's details do not linger on the pull request.
        head -n 1 "$REPORT_FILE"
        echo
        grep -m 1 '^\*\*' "$REPORT_FILE"
    else
        cat "$REPORT_FILE"
    fi
    footer
} >"$body"

if (($(wc -c <"$body") > limit)); then
    # The renderer leaves room for the marker and footer; a very long path could still tip the body over.
    {
        echo "$marker"
        head -n 1 "$REPORT_FILE"
        echo
        echo "The plan is too long for a comment; it is in the job summary${RUN_URL:+ of the [workflow run]($RUN_URL)}."
    } >"$body"
fi

post() {
    local ids existing
    ids=$(gh api --paginate "repos/$REPO/issues/$PR_NUMBER/comments" \
        --jq ".[] | select(.body | startswith(\"$marker\")) | .id") || return 1
    existing=${ids%%$'\n'*}
    if [[ -n $existing ]]; then
        gh api -X PATCH "repos/$REPO/issues/comments/$existing" -F "body=@$body" --jq .html_url
    else
        gh api -X POST "repos/$REPO/issues/$PR_NUMBER/comments" -F "body=@$body" --jq .html_url
    fi
}

# The plan is in the job summary whatever happens here; a token that may not comment (a pull request from a fork,
# a workflow without `pull-requests: write`) is worth a warning, not a failed check.
if ! post; then
    echo "::warning::could not post the ldexp plan comment on pull request #$PR_NUMBER (the workflow needs \
\`permissions: pull-requests: write\`; pull requests from forks get a read-only token); the plan is in the job summary"
fi
