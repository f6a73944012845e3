//! The GitHub Action's scripts end to end: action/run.sh runs the real `ldexp` against the emulator, and
//! action/comment.sh keeps the sticky plan comments through a fake `gh` on PATH (fixtures/fake_gh.py) that holds a
//! pull request's comments and records every call. First comment, update in place, the no-change shrink, a failed
//! plan, and two spec folders with two comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::specs::Exp;
use crate::support::{BIN, Emulator, Workspace, canary};

const REPO: &str = "acme/shop";
const PR: u64 = 7;
const RUN_URL: &str = "https://github.com/acme/shop/actions/runs/1";
const FILTER_PREFIX: &str = ".[] | select(.body | startswith(\"";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A runner's view: a workspace with `ldexp` and the fake `gh` first on PATH, the files GitHub hands a step
/// (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP) and the fake's state and call log.
struct Runner {
    ws: Workspace,
    path_var: String,
    steps: usize,
    /// LD_ACCESS_TOKEN as the secret holds it; ldexp and the masks use it trimmed, which is the canary.
    token: String,
}

/// What one run of action/run.sh left: its outputs, the job summary it appended, and its stdout and stderr.
struct Step {
    outputs: BTreeMap<String, String>,
    summary: String,
    stdout: String,
    stderr: String,
}

impl Step {
    fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map_or("", String::as_str)
    }
}

impl Runner {
    fn new() -> Runner {
        let ws = Workspace::new();
        let bin = ws.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("ldexp")).unwrap();
        let gh = bin.join("gh");
        std::fs::copy(root().join("tests/e2e/fixtures/fake_gh.py"), &gh).unwrap();
        let mut perms = std::fs::metadata(&gh).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&gh, perms).unwrap();
        std::fs::create_dir_all(ws.path().join("runner-temp")).unwrap();
        let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        Runner { ws, path_var, steps: 0, token: canary().to_owned() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.ws.path().join(name)
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg(root().join("action").join(name))
            .current_dir(self.ws.path())
            .env("PATH", &self.path_var)
            .env("NO_COLOR", "1")
            .env("RUNNER_TEMP", self.file("runner-temp"))
            .env("FAKE_GH_STATE", self.file("gh-state.json"))
            .env("FAKE_GH_LOG", self.file("gh-calls.jsonl"))
            .env_remove("RUST_LOG")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdin(Stdio::null());
        c
    }

    /// action/run.sh with the action's inputs, against `em`, with the canary as LD_ACCESS_TOKEN.
    fn run(&mut self, em: &Emulator, command: &str, path: &str, args: &str) -> Step {
        self.steps += 1;
        let outputs = self.file(&format!("github-output-{}", self.steps));
        let summary = self.file(&format!("step-summary-{}", self.steps));
        let out = self
            .script("run.sh")
            .env("INPUT_COMMAND", command)
            .env("INPUT_PATH", path)
            .env("INPUT_ARGS", args)
            .env("LD_BASE_URL", &em.base_url)
            .env("LD_ACCESS_TOKEN", &self.token)
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "run.sh {command} {path} failed:\n{stdout}\n{stderr}");
        // The token is masked as ldexp sends it (trimmed), and appears nowhere else: not in the log, the summary or
        // the outputs.
        let masks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::add-mask::")).collect();
        assert_eq!(masks, [format!("::add-mask::{}", canary())], "the token is not masked as sent:\n{stdout}");
        let leaks: Vec<&str> =
            stdout.lines().filter(|l| l.contains(canary()) && !l.starts_with("::add-mask::")).collect();
        assert!(leaks.is_empty() && !stderr.contains(canary()), "the token leaked to the log: {leaks:?}\n{stderr}");
        let outputs = std::fs::read_to_string(outputs).unwrap_or_default();
        let outputs = outputs.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        Step { outputs, summary: std::fs::read_to_string(summary).unwrap_or_default(), stdout, stderr }
    }

    /// action/comment.sh for the report of `step`, as the action's comment step runs it.
    fn comment(&self, step: &Step, path: &str) -> Output {
        let _ = std::fs::remove_file(self.file("gh-calls.jsonl"));
        let out = self
            .script("comment.sh")
            .env("GH_TOKEN", "ghs_fake")
            .env("REPO", REPO)
            .env("PR_NUMBER", PR.to_string())
            .env("HEAD_SHA", "0123abcdef0123abcdef0123abcdef0123abcdef")
            .env("RUN_URL", RUN_URL)
            .env("SPEC_PATH", path)
            .env("EXITCODE", step.output("exitcode"))
            .env("REPORT_FILE", step.output("report-file"))
            .output()
            .unwrap();
        assert!(out.status.success(), "comment.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("::warning::"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// The calls the last comment step made: method (GET unless -X) and endpoint.
    fn calls(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.file("gh-calls.jsonl")).unwrap_or_default();
        log.lines()
            .map(|l| {
                let args: Vec<String> = serde_json::from_str(l).unwrap();
                assert_eq!(args[0], "api", "{args:?}");
                let method = args.iter().position(|a| a == "-X").map_or("GET".to_owned(), |i| args[i + 1].clone());
                let endpoint = args.iter().find(|a| a.starts_with("repos/")).unwrap().clone();
                if method == "GET" {
                    assert!(args.contains(&"--paginate".to_owned()), "a listing must read every page: {args:?}");
                    assert!(args.iter().any(|a| a.starts_with(FILTER_PREFIX)), "{args:?}");
                }
                (method, endpoint)
            })
            .collect()
    }

    fn seed_comments(&self, comments: Value) {
        std::fs::write(self.file("gh-state.json"), json!({"next_id": 5000, "comments": comments}).to_string()).unwrap();
    }

    /// The comments of the pull request, oldest first.
    fn comments(&self) -> Vec<Value> {
        let state: Value = serde_json::from_str(&std::fs::read_to_string(self.file("gh-state.json")).unwrap()).unwrap();
        state["comments"].as_array().unwrap().iter().filter(|c| c["issue"] == PR).cloned().collect()
    }

    /// The comments whose body starts with `marker`.
    fn sticky(&self, marker: &str) -> Vec<Value> {
        self.comments().into_iter().filter(|c| c["body"].as_str().unwrap().starts_with(marker)).collect()
    }
}

fn call(method: &str, endpoint: &str) -> (String, String) {
    (method.to_owned(), endpoint.to_owned())
}

const LIST: &str = "repos/acme/shop/issues/7/comments";
const EXPERIMENTS: &str = "<!-- ldexp-plan path=experiments -->\n";
const OTHER: &str = "<!-- ldexp-plan path=other -->\n";
const FOOTER: &str =
    "\n<sub>ldexp plan for 0123abc · [workflow run](https://github.com/acme/shop/actions/runs/1)</sub>\n";

#[test]
fn the_action_keeps_one_sticky_plan_comment_per_spec_folder() {
    let em = Emulator::start(&[]);
    let mut runner = Runner::new();
    // 31 older comments put the sticky one on the second page of 30; one quotes a marker, which is not a sticky
    // comment; another pull request has a comment of its own.
    let mut seed: Vec<Value> = (0..31)
        .map(|i| json!({"id": 100 + i, "issue": PR, "body": format!("review note {i}"), "html_url": "", "user": {}}))
        .collect();
    seed.push(
        json!({"id": 200, "issue": PR, "body": format!("> {EXPERIMENTS}> old plan"), "html_url": "", "user": {}}),
    );
    seed.push(json!({"id": 300, "issue": 8, "body": format!("{EXPERIMENTS}other PR"), "html_url": "", "user": {}}));
    runner.seed_comments(Value::Array(seed));
    let mut exp = Exp::new("checkout-color", &["production"]);
    runner.ws.write("experiments/checkout.yaml", &exp.yaml());

    // The first plan creates the comment.
    let first = runner.run(&em, "plan", "experiments", "");
    assert_eq!(first.output("exitcode"), "2", "{}{}", first.stdout, first.stderr);
    assert_eq!(first.output("has-changes"), "true");
    let plan_file = first.output("plan-file").to_owned();
    assert!(Path::new(&plan_file).is_file(), "plan-file {plan_file:?}");
    assert!(first.summary.starts_with("## ldexp plan: `experiments`\n\n**Plan: 1 to create"), "{}", first.summary);
    let out = runner.comment(&first, "experiments");
    assert_eq!(runner.calls(), [call("GET", LIST), call("POST", LIST)]);
    let sticky = runner.sticky(EXPERIMENTS);
    assert_eq!(sticky.len(), 1);
    let id = sticky[0]["id"].as_u64().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sticky[0]["html_url"].as_str().unwrap());
    let body = sticky[0]["body"].as_str().unwrap();
    // The body is the job summary's markdown, behind the marker and with the footer.
    assert_eq!(body, format!("{EXPERIMENTS}{}{FOOTER}", first.summary));
    assert!(body.contains("experiment/shop/production/checkout-color"), "{body}");

    // A push that changes the spec edits the same comment in place.
    exp.name = "Checkout colour, renamed".into();
    runner.ws.write("experiments/checkout.yaml", &exp.yaml());
    let second = runner.run(&em, "plan", "experiments/", "");
    assert_eq!(second.output("exitcode"), "2");
    runner.comment(&second, "experiments/");
    assert_eq!(runner.calls(), [call("GET", LIST), call("PATCH", &format!("repos/acme/shop/issues/comments/{id}"))]);
    let sticky = runner.sticky(EXPERIMENTS);
    assert_eq!(sticky.len(), 1);
    assert_eq!(sticky[0]["id"].as_u64(), Some(id));
    assert!(sticky[0]["body"].as_str().unwrap().contains("Checkout colour, renamed"));
    assert_eq!(runner.comments().len(), 33);

    // apply the saved plan (the plan-file output), as a deploy job does.
    let apply = runner.run(&em, "apply", "experiments", &format!("--plan {}", second.output("plan-file")));
    assert_eq!(apply.output("exitcode"), "0", "{}{}", apply.stdout, apply.stderr);
    assert_eq!(apply.output("has-changes"), "false");
    assert!(apply.summary.starts_with("## ldexp apply: `experiments`\n\n~~~~text\n"), "{}", apply.summary);
    assert!(apply.summary.contains("Apply complete"), "{}", apply.summary);

    // Nothing left to change: the same comment shrinks to the summary line.
    let third = runner.run(&em, "plan", "./experiments", "");
    assert_eq!(third.output("exitcode"), "0");
    assert_eq!(third.output("has-changes"), "false");
    runner.comment(&third, "./experiments");
    assert_eq!(runner.calls(), [call("GET", LIST), call("PATCH", &format!("repos/acme/shop/issues/comments/{id}"))]);
    let sticky = runner.sticky(EXPERIMENTS);
    assert_eq!(sticky.len(), 1);
    assert_eq!(
        sticky[0]["body"].as_str().unwrap(),
        format!("{EXPERIMENTS}## ldexp plan: `experiments`\n\n**No changes. Remote matches the specs.**\n{FOOTER}")
    );

    // A second spec folder gets a second comment, and leaves the first alone.
    runner.ws.write("other/pricing.yaml", &Exp::new("pricing-test", &["staging"]).yaml());
    let other = runner.run(&em, "plan", "other", "");
    assert_eq!(other.output("exitcode"), "2");
    runner.comment(&other, "other");
    assert_eq!(runner.calls(), [call("GET", LIST), call("POST", LIST)]);
    let other_sticky = runner.sticky(OTHER);
    assert_eq!(other_sticky.len(), 1);
    let other_id = other_sticky[0]["id"].as_u64().unwrap();
    assert_ne!(other_id, id);
    assert!(other_sticky[0]["body"].as_str().unwrap().starts_with(&format!("{OTHER}## ldexp plan: `other`\n")));
    assert!(other_sticky[0]["body"].as_str().unwrap().contains("experiment/shop/staging/pricing-test"));
    assert_eq!(runner.sticky(EXPERIMENTS)[0]["body"], sticky[0]["body"]);

    // A plan that fails says so in its folder's comment, with the problem at file:line:column.
    runner.ws.write("other/broken.yaml", &exp.yaml().replace("primaryMetric:", "primary_metric:"));
    let broken = runner.run(&em, "plan", "other", "");
    assert_eq!(broken.output("exitcode"), "1");
    assert_eq!(broken.output("plan-file"), "");
    assert!(broken.summary.contains(":x: **`ldexp plan` failed (exit 1).**"), "{}", broken.summary);
    runner.comment(&broken, "other");
    assert_eq!(
        runner.calls(),
        [call("GET", LIST), call("PATCH", &format!("repos/acme/shop/issues/comments/{other_id}"))]
    );
    let body = runner.sticky(OTHER)[0]["body"].as_str().unwrap().to_owned();
    assert!(body.contains("failed (exit 1)") && body.contains("other/broken.yaml:9:3"), "{body}");
    assert!(body.contains("unknown field `primary_metric`"), "{body}");

    // Two sticky comments in all; the quoted marker and the other pull request's comment are untouched.
    assert_eq!(runner.comments().len(), 34);
    assert_eq!(
        runner.comments().iter().filter(|c| c["body"].as_str().unwrap().starts_with("<!-- ldexp-plan")).count(),
        2
    );
    let state = std::fs::read_to_string(runner.file("gh-state.json")).unwrap();
    assert!(state.contains("\"> <!-- ldexp-plan path=experiments -->\\n> old plan\""));
    assert!(state.contains("<!-- ldexp-plan path=experiments -->\\nother PR"));
    runner.ws.assert_no_canary();
}

#[test]
fn drift_and_validate_report_to_the_summary_without_a_comment() {
    let em = Emulator::start(&[]);
    let mut runner = Runner::new();
    runner.token = format!("  {}\n", canary());
    runner.ws.write("experiments/checkout.yaml", &Exp::new("checkout-color", &["production"]).yaml());
    let drift = runner.run(&em, "drift", "experiments", "");
    assert_eq!(drift.output("exitcode"), "2");
    assert_eq!(drift.output("has-changes"), "true");
    assert_eq!(drift.output("plan-file"), "");
    assert!(drift.summary.starts_with("## ldexp drift: `experiments`\n"), "{}", drift.summary);
    let valid = runner.run(&em, "validate", "experiments", "");
    assert_eq!(valid.output("exitcode"), "0");
    assert_eq!(
        valid.summary,
        "## ldexp validate: `experiments`\n\n~~~~text\n1 file, 1 experiment, 0 legacy flag specs: valid\n~~~~\n"
    );
    let unknown = runner.run(&em, "destroy", "experiments", "");
    assert_eq!(unknown.output("exitcode"), "1");
    assert!(unknown.stdout.contains("::error::command must be validate, plan, apply or drift"), "{}", unknown.stdout);
    runner.ws.assert_no_canary();
}

/// The renderer leaves COMMENT_RESERVE (1,024 bytes) of GitHub's 65,536 for the marker, heading and footer; a
/// report that would still not fit is replaced by a pointer to the job summary.
#[test]
fn a_comment_never_exceeds_githubs_limit() {
    let runner = Runner::new();
    runner.seed_comments(json!([]));
    let path = format!("specs/{}", "nested/".repeat(20));
    let heading = format!("## ldexp plan: `{}`\n", path.trim_end_matches('/'));
    // What run.sh makes of a renderer's plan of `len` bytes: the same markdown under the action's heading.
    let report = |len: usize| {
        let mut plan = String::from("## ldexp plan\n\n**Plan: 1 to create.**\n\n");
        while plan.len() < len {
            plan.push_str("| | `experiment/shop/production/x` | create | | 1 |\n");
        }
        plan.truncate(len);
        plan.replacen("## ldexp plan\n", &heading, 1)
    };
    let largest_plan = 65_536 - 1_024 - 1;
    for (len, fits) in [(largest_plan, true), (70_000, false)] {
        std::fs::write(runner.file("report.md"), report(len)).unwrap();
        let step = Step {
            outputs: [("exitcode", "2"), ("report-file", runner.file("report.md").to_str().unwrap())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            summary: String::new(),
            stdout: String::new(),
            stderr: String::new(),
        };
        runner.comment(&step, &path);
        let body = runner.comments().last().unwrap()["body"].as_str().unwrap().to_owned();
        assert!(body.len() <= 65_536, "{len}: {} bytes", body.len());
        assert!(body.starts_with("<!-- ldexp-plan path=specs/nested/nested/"), "{}", &body[..100]);
        if fits {
            assert!(body.contains("**Plan: 1 to create.**") && body.len() > 64_000, "{len}: {} bytes", body.len());
        } else {
            assert!(body.contains("The plan is too long for a comment; it is in the job summary"), "{body}");
            assert!(body.len() < 1_000, "{} bytes", body.len());
        }
    }
}
