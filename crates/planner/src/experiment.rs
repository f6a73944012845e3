//! The lifecycle table: what one experiment in one environment needs, from its remote state to the spec's
//! `state`, as an ordered list of requests with their postconditions.

use ldexp_core::api::{Experiment, ExperimentPatch, Instruction, IterationRep, IterationStatus};
use ldexp_core::design::Design;
use ldexp_core::digest::fingerprint;
use ldexp_core::json_text::JsonText;
use ldexp_core::plan::{Action, Address, Change, Expectation, FieldChange, PlannedRequest, Risk, Warning};
use ldexp_core::requests;
use ldexp_core::spec::ExperimentState;
use serde_json::Value;

use crate::checks::{Desired, Target};
use crate::error::{ProblemKind, Problems};
use crate::{creation, fields};

/// The remote iteration state of an experiment, ignoring any archive (docs/semantics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IterState {
    Draft,
    Running,
    Stopped,
}

pub(crate) fn iteration_state(e: &Experiment) -> IterState {
    match e.current_iteration.as_ref().map(|c| c.status) {
        Some(IterationStatus::Running) => IterState::Running,
        Some(IterationStatus::Stopped) => IterState::Stopped,
        _ => IterState::Draft,
    }
}

impl IterState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IterState::Draft => "draft",
            IterState::Running => "running",
            IterState::Stopped => "stopped",
        }
    }
}

/// `draft`, `running`, `stopped` or `archived`.
pub(crate) fn state_name(e: &Experiment) -> &'static str {
    if e.is_archived() { "archived" } else { iteration_state(e).as_str() }
}

/// The iteration waiting to be started: the draft, or a current iteration that never started.
fn pending(e: &Experiment) -> Option<&IterationRep> {
    e.draft_iteration
        .as_deref()
        .or_else(|| e.current_iteration.as_deref().filter(|c| c.status == IterationStatus::NotStarted))
}

/// One step of a change, before it becomes a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Create,
    PostIteration,
    Start { justification: Option<String>, replaces: Option<String> },
    Stop { winner: String, reason: Option<String>, iteration: String },
    Archive,
    Restore,
}

/// The cell of the lifecycle table that applies.
struct Row {
    action: Option<Action>,
    risk: Option<Risk>,
    steps: Vec<Step>,
    notes: Vec<String>,
}

impl Row {
    fn none() -> Self {
        Row { action: None, risk: None, steps: Vec::new(), notes: Vec::new() }
    }
    fn of(action: Action, risk: Option<Risk>, steps: Vec<Step>) -> Self {
        Row { action: Some(action), risk, steps, notes: Vec::new() }
    }
}

/// The change `t` needs, if any; impossible transitions become problems, odd but harmless ones warnings.
pub(crate) fn plan(t: &Target<'_>, problems: &mut Problems, warnings: &mut Vec<Warning>) -> Option<Change> {
    let s = &t.spec.spec;
    if let Some(e) = t.remote {
        creation::check(t.spec, e, &t.address, problems);
    }
    let Some(desired) = t.desired.as_ref() else {
        // The design did not resolve, but a running spec on anything not yet running starts for sure: say now
        // that it could not, rather than on the next attempt.
        if s.state == ExperimentState::Running && t.remote.is_none_or(|e| iteration_state(e) != IterState::Running) {
            unstartable(t, problems);
        }
        return None;
    };
    let mut warn = |message: String| warnings.push(Warning { address: Some(t.address.clone()), message });
    let row = match t.remote {
        None => match s.state {
            ExperimentState::Draft => Row::of(Action::Create, None, vec![Step::Create]),
            ExperimentState::Running => {
                Row::of(Action::Create, None, vec![Step::Create, Step::Start { justification: None, replaces: None }])
            }
            ExperimentState::Stopped => {
                problems.push(
                    ProblemKind::Lifecycle,
                    &t.spec.location_of("state"),
                    &t.address,
                    "state: stopped, but the experiment does not exist, so there is nothing to stop",
                    Some("create it with state: draft or running first".to_owned()),
                );
                return None;
            }
            ExperimentState::Archived => {
                warn("state: archived and the experiment does not exist; nothing to do".to_owned());
                return None;
            }
        },
        Some(e) if e.is_archived() => {
            if s.state == ExperimentState::Archived {
                return None;
            }
            let inner = row(t, e, desired, problems, &mut warn)?;
            let mut steps = vec![Step::Restore];
            steps.extend(inner.steps);
            Row { action: Some(Action::Restore), risk: inner.risk, steps, notes: inner.notes }
        }
        Some(e) => row(t, e, desired, problems, &mut warn)?,
    };
    if row.steps.iter().any(|st| matches!(st, Step::Start { .. })) && !t.unstartable.is_empty() {
        unstartable(t, problems);
        return None;
    }
    build(t, desired, row)
}

/// Reports each flag that would make `startIteration` fail.
fn unstartable(t: &Target<'_>, problems: &mut Problems) {
    let env = match &t.address {
        Address::Experiment { environment, .. } => environment.as_str(),
        Address::Legacy { .. } => "",
    };
    for (flag, why) in &t.unstartable {
        problems.push(
            ProblemKind::Reference,
            &t.spec.location_of("state"),
            &t.address,
            format!("state: running, but flag `{flag}` is {why} in environment `{env}`, so startIteration would fail"),
            Some(format!("turn `{flag}` on in `{env}` first, or use state: draft")),
        );
    }
}

/// The lifecycle row for an existing experiment, by its iteration state.
fn row(
    t: &Target<'_>,
    e: &Experiment,
    desired: &Desired,
    problems: &mut Problems,
    warn: &mut impl FnMut(String),
) -> Option<Row> {
    let s = &t.spec.spec;
    let d = &desired.design;
    let state = iteration_state(e);
    let cur = e.current_iteration.as_ref();
    let same_current = cur.is_some_and(|c| d.matches_iteration(c));
    let pend = pending(e);
    let same_pending = pend.is_some_and(|p| d.matches_iteration(p));
    let running_id = if state == IterState::Running { cur.and_then(|c| c.id.clone()) } else { None };
    let start = |justification: Option<String>| {
        let st = Step::Start { justification, replaces: running_id.clone() };
        if same_pending { vec![st] } else { vec![Step::PostIteration, st] }
    };
    let mut lifecycle = |message: &str, hint: &str| {
        problems.push(ProblemKind::Lifecycle, &t.spec.location_of("state"), &t.address, message, Some(hint.to_owned()));
    };
    let row = match (state, s.state) {
        (IterState::Draft | IterState::Stopped, ExperimentState::Archived) => {
            Row::of(Action::Archive, Some(Risk::EndsExperiment), vec![Step::Archive])
        }
        (IterState::Draft, ExperimentState::Stopped) => {
            lifecycle(
                "state: stopped, but the experiment never ran, so there is nothing to stop",
                "use state: running to start it, or state: archived to retire it",
            );
            return None;
        }
        (IterState::Draft, ExperimentState::Draft) => {
            if same_pending {
                Row::none()
            } else {
                Row::of(Action::Update, None, vec![Step::PostIteration])
            }
        }
        (IterState::Draft | IterState::Stopped, ExperimentState::Running) => Row::of(Action::Start, None, start(None)),
        (IterState::Running, ExperimentState::Draft) => {
            if same_current {
                lifecycle(
                    "state: draft, but the experiment is running and LaunchDarkly cannot un-start it",
                    "use state: running, stopped or archived; a new design in a draft spec is prepared as the next iteration",
                );
                return None;
            }
            if same_pending {
                Row::none()
            } else {
                let mut r = Row::of(Action::Update, None, vec![Step::PostIteration]);
                r.notes.push("the running iteration continues; the new design waits as a draft iteration".to_owned());
                r
            }
        }
        (IterState::Running, ExperimentState::Running) => {
            if same_current {
                Row::none()
            } else if let Some(j) = &s.iteration.change_justification {
                Row::of(Action::Restart, Some(Risk::EndsDataCollection), start(Some(j.clone())))
            } else {
                problems.push(
                    ProblemKind::Lifecycle,
                    &t.spec.location_of("iteration"),
                    &t.address,
                    "the design of a running experiment changed, which restarts it, but `iteration.changeJustification` is missing",
                    Some("add `changeJustification` explaining why data collection restarts".to_owned()),
                );
                return None;
            }
        }
        (IterState::Running, ExperimentState::Stopped | ExperimentState::Archived) => {
            let cur = cur?;
            let stop = stop_step(t, cur, problems)?;
            if s.state == ExperimentState::Stopped {
                if !same_current {
                    warn("the design change is ignored: the experiment stops with the design it ran".to_owned());
                }
                Row::of(Action::Stop, Some(Risk::EndsExperiment), vec![stop])
            } else {
                Row::of(Action::Archive, Some(Risk::EndsExperiment), vec![stop, Step::Archive])
            }
        }
        (IterState::Stopped, ExperimentState::Draft) => {
            let same = if pend.is_some() { same_pending } else { same_current };
            if same { Row::none() } else { Row::of(Action::Update, None, vec![Step::PostIteration]) }
        }
        (IterState::Stopped, ExperimentState::Stopped) => {
            if let (Some(cur), Some(stop)) = (cur, &s.stop) {
                let wanted = cur.treatments.iter().find(|tr| tr.name == stop.winner).and_then(|tr| tr.id.as_ref());
                if wanted.is_some() && wanted != cur.winning_treatment_id.as_ref() {
                    let actual = cur
                        .treatments
                        .iter()
                        .find(|tr| tr.id.is_some() && tr.id == cur.winning_treatment_id)
                        .map_or("none", |tr| tr.name.as_str());
                    warn(format!(
                        "the experiment stopped with winner `{actual}`, the spec names `{}`; a stopped iteration's winner cannot change",
                        stop.winner
                    ));
                }
            }
            if !same_current && !same_pending {
                warn("the design change is ignored: the experiment is stopped".to_owned());
            }
            Row::none()
        }
    };
    Some(row)
}

/// Stops the running iteration `cur`: with the spec's winner when `state: stopped`; when archiving, with the
/// spec's winner if it names one, else the baseline (LaunchDarkly needs a winner to stop).
fn stop_step(t: &Target<'_>, cur: &IterationRep, problems: &mut Problems) -> Option<Step> {
    let s = &t.spec.spec;
    let Some(iteration) = cur.id.clone() else {
        problems.push(
            ProblemKind::Reference,
            &t.spec.location_of("state"),
            &t.address,
            "the running iteration has no _id in LaunchDarkly's answer, so it cannot be stopped",
            None,
        );
        return None;
    };
    let (name, reason) = match (&s.stop, s.state) {
        (Some(stop), _) => (Some(stop.winner.as_str()), stop.reason.clone()),
        (None, ExperimentState::Archived) => (None, Some("archived by ldexp".to_owned())),
        (None, _) => {
            problems.push(
                ProblemKind::Lifecycle,
                &t.spec.location_of("state"),
                &t.address,
                "state: stopped needs `stop.winner`",
                Some("LaunchDarkly requires a winner to stop; for an inconclusive result name the baseline".to_owned()),
            );
            return None;
        }
    };
    let found = match name {
        Some(n) => cur.treatments.iter().find(|tr| tr.name == n),
        None => cur.treatments.iter().find(|tr| tr.baseline),
    };
    match found.and_then(|tr| tr.id.clone()) {
        Some(winner) => Some(Step::Stop { winner, reason, iteration }),
        None => {
            let names: Vec<&str> = cur.treatments.iter().map(|tr| tr.name.as_str()).collect();
            problems.push(
                ProblemKind::Reference,
                &t.spec.location_of(if name.is_some() { "stop.winner" } else { "state" }),
                &t.address,
                match name {
                    Some(n) => format!("the running iteration has no treatment `{n}` to declare the winner"),
                    None => "the running iteration has no baseline treatment to declare the winner".to_owned(),
                },
                Some(format!("treatments: {}", names.join(", "))),
            );
            None
        }
    }
}

/// Turns a row into a change: requests in order, name and description joined to the first semantic patch.
fn build(t: &Target<'_>, desired: &Desired, row: Row) -> Option<Change> {
    let s = &t.spec.spec;
    let mut meta: Vec<(Instruction, Expectation)> = Vec::new();
    let mut fields = Vec::new();
    if let Some(e) = t.remote {
        if e.name != s.name {
            meta.push((Instruction::UpdateName { value: s.name.clone() }, Expectation::Name { value: s.name.clone() }));
            fields.push(FieldChange {
                field: "name".into(),
                before: Some(e.name.clone().into()),
                after: Some(s.name.clone().into()),
            });
        }
        if let Some(d) = &s.description
            && e.description.as_ref() != Some(d)
        {
            meta.push((
                Instruction::UpdateDescription { value: d.clone() },
                Expectation::Description { value: d.clone() },
            ));
            fields.push(FieldChange {
                field: "description".into(),
                before: e.description.clone().map(Value::from),
                after: Some(d.clone().into()),
            });
        }
    }
    if row.steps.is_empty() && meta.is_empty() {
        return None;
    }
    let action = row.action.unwrap_or(Action::Update);
    let (p, env, key) = match &t.address {
        Address::Experiment { project, environment, key } => (project.as_str(), environment.as_str(), key.as_str()),
        Address::Legacy { .. } => return None,
    };
    let design = &desired.design;
    let mut meta = Some(meta);
    let mut requests = Vec::new();
    for step in &row.steps {
        let mut instructions = Vec::new();
        let mut expect = Vec::new();
        let verb = match step {
            Step::Create => {
                let body = creation::post(s, desired.input(t));
                let mut r = requests::create_experiment(p, env, &body);
                r.expect = vec![Expectation::ExperimentExists, design_expectation(design)];
                requests.push(r);
                continue;
            }
            Step::PostIteration => {
                let mut r = requests::create_iteration(p, env, key, &desired.input(t));
                r.expect = vec![design_expectation(design)];
                requests.push(r);
                continue;
            }
            Step::Restore => {
                instructions.push(Instruction::RestoreExperiment);
                expect.push(Expectation::NotArchived);
                "restore"
            }
            Step::Start { justification, replaces } => {
                instructions.push(Instruction::StartIteration { change_justification: justification.clone() });
                expect.push(Expectation::IterationRunning { replaces: replaces.clone() });
                if action == Action::Restart { "restart" } else { "start" }
            }
            Step::Stop { winner, reason, iteration } => {
                instructions.push(Instruction::StopIteration {
                    winning_treatment_id: Some(winner.clone()),
                    winning_reason: reason.clone(),
                });
                expect.push(Expectation::IterationStopped { iteration_id: iteration.clone() });
                "stop"
            }
            Step::Archive => {
                instructions.push(Instruction::ArchiveExperiment);
                expect.push(Expectation::Archived);
                "archive"
            }
        };
        // Restore first, so the name changes apply to a live experiment; otherwise before the lifecycle move.
        let at = usize::from(matches!(step, Step::Restore));
        for (i, (ins, exp)) in meta.take().into_iter().flatten().enumerate() {
            instructions.insert(at + i, ins);
            expect.push(exp);
        }
        requests.push(semantic_patch(&t.address, verb, instructions, expect));
    }
    if let Some(meta) = meta.filter(|m| !m.is_empty()) {
        let (instructions, expect) = meta.into_iter().unzip();
        requests.push(semantic_patch(&t.address, "update", instructions, expect));
    }
    let remote_state = t.remote.map(state_name);
    let after_state = row.steps.iter().fold(remote_state, |st, step| match step {
        Step::Create => Some("draft"),
        Step::PostIteration => st,
        Step::Start { .. } => Some("running"),
        Step::Stop { .. } => Some("stopped"),
        Step::Archive => Some("archived"),
        Step::Restore => t.remote.map(|e| iteration_state(e).as_str()),
    });
    if remote_state != after_state {
        fields.push(FieldChange {
            field: "state".into(),
            before: remote_state.map(Value::from),
            after: after_state.map(Value::from),
        });
    }
    let compared = t.remote.and_then(|e| compared_design(e, s.state));
    let applies = row.steps.iter().any(|st| matches!(st, Step::Create | Step::PostIteration | Step::Start { .. }));
    let (before, after) = if applies {
        let before = compared.as_ref().map(to_json);
        let after = to_json(design);
        let at = fields.len();
        fields::diff("", before.as_ref(), Some(&after), &mut fields);
        let labels = t.labels();
        for f in &mut fields[at..] {
            if f.field.contains(".variations.")
                || f.field.ends_with(".notInExperimentVariationId")
                || f.field.ends_with(".ruleId")
            {
                for v in [&mut f.before, &mut f.after].into_iter().flatten() {
                    label(v, &labels);
                }
            }
        }
        (before.map(JsonText::from), Some(JsonText::from(after)))
    } else {
        // Unchanged design: written once, straight from the typed design, and shared by both sides.
        let text = compared.as_ref().and_then(|d| JsonText::of(d).ok());
        (text.clone(), text)
    };
    Some(Change {
        address: t.address.clone(),
        action,
        risk: row.risk,
        remote_fingerprint: t.remote.map(fingerprint),
        before,
        after,
        fields,
        requests,
        notes: row.notes,
    })
}

/// The remote design a change is compared with: the pending draft when the spec or the remote is a draft,
/// else the current iteration.
fn compared_design(e: &Experiment, spec: ExperimentState) -> Option<Design> {
    let it = if spec == ExperimentState::Draft || iteration_state(e) == IterState::Draft {
        pending(e).or(e.current_iteration.as_deref())
    } else {
        e.current_iteration.as_deref().or(pending(e))
    };
    it.map(Design::from_iteration)
}

/// Replaces an `_id` with `label (_id)` when the flag names it, so a reviewer sees `Control`, not a UUID.
fn label(v: &mut Value, labels: &std::collections::BTreeMap<String, String>) {
    if let Some(l) = v.as_str().and_then(|id| labels.get(id).map(|l| format!("{l} ({id})"))) {
        *v = Value::String(l);
    }
}

fn design_expectation(d: &Design) -> Expectation {
    Expectation::IterationDesign { design: Box::new(d.clone()) }
}

fn to_json(d: &Design) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

/// A semantic-patch request with the deterministic audit comment `ldexp: <verb> <address>`.
pub(crate) fn semantic_patch(
    address: &Address,
    verb: &str,
    instructions: Vec<Instruction>,
    expect: Vec<Expectation>,
) -> PlannedRequest {
    let (p, env, key) = match address {
        Address::Experiment { project, environment, key } => (project.as_str(), environment.as_str(), key.as_str()),
        Address::Legacy { project, flag } => (project.as_str(), "", flag.as_str()),
    };
    let body = ExperimentPatch { comment: Some(format!("ldexp: {verb} {address}")), instructions };
    let mut r = requests::patch_experiment(p, env, key, &body);
    r.expect = expect;
    r
}
