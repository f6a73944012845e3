#!/usr/bin/env bash
# The step of the ldexp GitHub Action (action.yml) that runs one ldexp command and reports it: the outputs
# `exitcode`, `has-changes` and `plan-file`, the job summary, and the files the comment step posts. It exits 0
# whatever ldexp answered, so that the comment is posted for a failed plan too; the action's last step fails the
# job.
#
# Inputs come from the environment (never from ${{ }} in the script, which would let a value run as code):
# INPUT_COMMAND, INPUT_PATH, INPUT_ARGS, and LD_ACCESS_TOKEN for the commands that call LaunchDarkly.
set -uo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command=${INPUT_COMMAND:-plan}
path=${INPUT_PATH:-experiments}
read -r -a args <<<"${INPUT_ARGS:-}"
out_file=${GITHUB_OUTPUT:-/dev/null}
summary_file=${GITHUB_STEP_SUMMARY:-/dev/null}

# The runner masks the secret itself, but only the value as stored. ldexp sends the token trimmed, and a value
# with several lines is masked line by line, so each trimmed line is masked too. The workflow command is consumed
# by the runner and never shown in the log.
token_lines=()
if [[ -n ${LD_ACCESS_TOKEN:-} ]]; then
    while IFS= read -r line; do
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [[ -n $line ]] && token_lines+=("$line") && echo "::add-mask::$line"
    done <<<"$LD_ACCESS_TOKEN"
fi

case $command in
    validate | plan | apply | drift) ;;
    *)
        echo "::error::command must be validate, plan, apply or drift, not '$command'"
        echo "exitcode=1" >>"$out_file"
        exit 0
        ;;
esac

# Belt and braces: ldexp never prints the token, and nothing this action writes for others to read (the summary,
# the PR comment) may hold it either.
scrub() {
    local f text t
    for f in "$@"; do
        [[ -s $f ]] || continue
        text=$(<"$f")
        for t in "${token_lines[@]}"; do
            [[ $text == *"$t"* ]] && printf '%s\n' "${text//"$t"/***}" >"$f" && text=$(<"$f")
        done
    done
}

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/ldexp-XXXXXX")
stdout_file=$work/stdout
stderr_file=$work/stderr
plan_file=""
case $command in
    validate) cmd=(ldexp validate "$path") ;;
    plan)
        plan_file=$work/plan.json
        cmd=(ldexp plan "$path" --format markdown --out "$plan_file" --detailed-exitcode)
        ;;
    drift) cmd=(ldexp drift "$path" --format markdown) ;;
    # No terminal answers apply's question in CI: approval is the review of the plan (and the environment's).
    apply) cmd=(ldexp apply "$path" --auto-approve) ;;
esac
cmd+=("${args[@]}")

ldexp --version
echo "::group::${cmd[*]}"
"${cmd[@]}" 2>"$stderr_file" | tee "$stdout_file"
code=${PIPESTATUS[0]}
echo "::endgroup::"
scrub "$stdout_file" "$stderr_file"
cat "$stderr_file" >&2

case $command in
    plan | drift) has_changes=$([[ $code == 2 ]] && echo true || echo false) ;;
    *) has_changes=false ;;
esac
[[ -n $plan_file && -f $plan_file ]] || plan_file=""

# The markdown of plan and drift is already cut to fit a comment; validate and apply print text for a terminal.
report=$work/report.md
if [[ ($command == plan || $command == drift) && -s $stdout_file ]]; then
    with_heading "$command" "$stdout_file" "$path" >"$report"
elif [[ $code == 0 ]]; then
    { heading "$command" "$path"; fenced "$stdout_file"; } >"$report"
else
    { failure_md "$command" "$path" "$code" "$stderr_file"; fenced "$stdout_file"; } >"$report"
fi
cat "$report" >>"$summary_file"

{
    echo "exitcode=$code"
    echo "has-changes=$has_changes"
    echo "plan-file=$plan_file"
    echo "report-file=$report"
    echo "stdout-file=$stdout_file"
    echo "stderr-file=$stderr_file"
} >>"$out_file"
exit 0
