# shellcheck shell=bash
# Helpers shared by run.sh and comment.sh of the ldexp GitHub Action (action.yml). Sourced, not run.

# The spec path as the action names it: "./experiments/" and "experiments" are the same folder, so they share one
# sticky comment.
normalized_path() {
    local p=$1
    while [[ $p == ./* ]]; do p=${p#./}; done
    while [[ $p == */ && $p != / ]]; do p=${p%/}; done
    printf '%s' "${p:-.}"
}

# The path percent-encoded down to [A-Za-z0-9._/-], with no "--": safe inside an HTML comment, a JSON string and
# a jq string literal, and still unique per path.
encoded_path() {
    local p out="" c i
    p=$(normalized_path "$1")
    for ((i = 0; i < ${#p}; i++)); do
        c=${p:i:1}
        if [[ $c == [A-Za-z0-9._/] || ($c == - && ${out: -1} != -) ]]; then
            out+=$c
        else
            out+=$(printf '%%%02X' "'$c")
        fi
    done
    printf '%s' "$out"
}

# The first line of every report: which command, on which folder. It replaces the renderer's own "## ldexp plan"
# title, so two spec folders' comments and summaries tell themselves apart.
heading() {
    # shellcheck disable=SC2016 # the backticks are markdown
    printf '## ldexp %s: `%s`\n' "$1" "$(normalized_path "$2" | tr -d '`')"
}

# $2 with its first line replaced by heading $1 $3, when that first line is a "## " title.
with_heading() {
    local command=$1 file=$2 path=$3
    heading "$command" "$path"
    if head -n 1 "$file" | grep -q '^## '; then tail -n +2 "$file"; else echo; cat "$file"; fi
}

# The report of a command that failed before it had anything to show: its exit code and the end of its stderr.
failure_md() {
    local command=$1 path=$2 code=$3 stderr_file=$4
    heading "$command" "$path"
    # shellcheck disable=SC2016 # the backticks are markdown
    printf '\n:x: **`ldexp %s` failed (exit %s).**\n' "$command" "$code"
    fenced "$stderr_file"
}

# The end of a command's text output (at most 16 KiB: the part with the error or the result) in a fence, so that
# nothing in it renders as markdown; nothing when the file is empty.
fenced() {
    [[ -s $1 ]] || return 0
    printf '\n~~~~text\n'
    tail -c 16384 "$1" | sed 's/^~~~~/ ~~~~/'
    [[ $(tail -c 1 "$1") == "" ]] || echo
    printf '~~~~\n'
}
