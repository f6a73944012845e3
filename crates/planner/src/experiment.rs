//! The lifecycle table: what one experiment in one environment needs, from its remote state to the spec's
//! `state`, as an ordered list of requests with their postconditions.

use std::sync::Arc;

use ldexp_core::api::{Experiment, ExperimentPatch, Instruction, IterationInput, IterationRep, IterationStatus};
use ldexp_core::design::Design;
use ldexp_core::json_text::JsonText;
use ldexp_core::managed::experiment_fingerprint;
use ldexp_core::plan::{Action, Address, Change, Divergence, Expectation, FieldChange, PlannedRequest, Risk, Warning};
use ldexp_core::requests;
use ldexp_core::spec::ExperimentState;
use serde_json::Value;

use crate::checks::Target;
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

/// One step of a change, before it becomes a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Create,
    PostIteration,
    Start { justification: Option<String> },
    Stop(StopStep),
    Archive,
    Restore,
}

/// Stopping the running iteration `iteration` with a winner, shown to reviewers by name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StopStep {
    pub iteration: String,
    pub winner: String,
    pub winner_name: String,
    pub reason: Option<String>,
}

impl StopStep {
    /// The instruction, its postcondition, and the fields a reviewer sees: the winner by name (with its `_id`, the
    /// value the body carries) and the reason.
    pub(crate) fn parts(&self) -> (Instruction, Expectation, Vec<FieldChange>) {
        let instruction = Instruction::StopIteration {
            winning_treatment_id: Some(self.winner.clone()),
            winning_reason: self.reason.clone(),
        };
        let expect = Expectation::IterationStopped {
            iteration_id: self.iteration.clone(),
            winning_treatment_id: self.winner.clone(),
        };
        let mut fields = vec![FieldChange {
            field: "stop.winner".into(),
            before: None,
            after: Some(format!("{} ({})", self.winner_name, self.winner).into()),
        }];
        if let Some(r) = &self.reason {
            fields.push(FieldChange { field: "stop.reason".into(), before: None, after: Some(r.clone().into()) });
        }
        (instruction, expect, fields)
    }
}

/// The cell of the lifecycle table that applies.
struct Row {
    action: Option<Action>,
    risks: Vec<Risk>,
    steps: Vec<Step>,
    notes: Vec<String>,
}

impl Row {
    fn none() -> Self {
        Row { action: None, risks: Vec::new(), steps: Vec::new(), notes: Vec::new() }
    }
    fn of(action: Action, risk: Option<Risk>, steps: Vec<Step>) -> Self {
        Row { action: Some(action), risks: risk.into_iter().collect(), steps, notes: Vec::new() }
    }
}

/// Which slots of an existing experiment already hold the spec's design.
struct Slots<'a> {
    state: IterState,
    current: Option<&'a IterationRep>,
    pending: Option<&'a IterationRep>,
    same_current: bool,
    same_pending: bool,
}

impl<'a> Slots<'a> {
    fn of(e: &'a Experiment, d: &Design) -> Self {
        let current = e.current_iteration.as_deref();
        let pending = e.pending_iteration();
        Slots {
            state: iteration_state(e),
            current,
            pending,
            same_current: current.is_some_and(|c| d.matches_iteration(c)),
            same_pending: pending.is_some_and(|p| d.matches_iteration(p)),
        }
    }

    /// Whether the spec's design is in neither slot, so a state that starts nothing leaves it unapplied.
    fn design_missing(&self) -> bool {
        !self.same_current && !self.same_pending
    }
}

/// The change `t` needs, if any; impossible transitions become problems, odd but harmless ones warnings, and
/// differences no request can remove divergences (which refuse the object when a creation-only field differs).
pub(crate) fn plan(
    t: &Target<'_>,
    problems: &mut Problems,
    warnings: &mut Vec<Warning>,
    divergences: &mut Vec<Divergence>,
) -> Option<Change> {
    let s = &t.spec.spec;
    if let Some(e) = t.remote {
        let refused = creation::divergences(t.spec, e, &t.address);
        if !refused.is_empty() {
            divergences.extend(refused);
            return None;
        }
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
    let mut row = match t.remote {
        None => match s.state {
            ExperimentState::Draft => Row::of(Action::Create, None, vec![Step::Create]),
            ExperimentState::Running => {
                Row::of(Action::Create, None, vec![Step::Create, Step::Start { justification: None }])
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
        Some(e) => {
            let slots = Slots::of(e, desired);
            stopped_divergences(t, &slots, divergences);
            if e.is_archived() && s.state == ExperimentState::Archived {
                if slots.design_missing() {
                    design_divergences(t, e, desired, "an archived experiment keeps the design it had", divergences);
                }
                // Name and description still change: the API renames archived experiments.
                Row::none()
            } else if e.is_archived() {
                let inner = row(t, e, &slots, desired, problems, divergences)?;
                let mut steps = vec![Step::Restore];
                steps.extend(inner.steps);
                Row { action: Some(Action::Restore), steps, ..inner }
            } else {
                row(t, e, &slots, desired, problems, divergences)?
            }
        }
    };
    if let Some(e) = t.remote
        && row.steps.contains(&Step::PostIteration)
    {
        if let Some(refusal) = flags_changed(t, e, desired) {
            divergences.push(refusal);
            return None;
        }
        if let Some(risk) = replaced_draft(e, desired) {
            row.risks.push(risk);
        }
    }
    if row.steps.iter().any(|st| matches!(st, Step::Start { .. })) && !t.unstartable.is_empty() {
        unstartable(t, problems);
        return None;
    }
    if row.steps.iter().any(|st| matches!(st, Step::Create | Step::PostIteration)) && !t.misfits.is_empty() {
        for m in &t.misfits {
            problems.push(
                ProblemKind::Reference,
                &t.spec.location_of(&m.field),
                &t.address,
                m.message.clone(),
                Some(m.hint.clone()),
            );
        }
        return None;
    }
    build(t, desired, row)
}

/// The flags of an experiment are fixed when it is created: LaunchDarkly refuses a new iteration whose flags are not
/// those of the first one (contract §9.4), so a spec that changes them is refused, naming both sets.
fn flags_changed(t: &Target<'_>, e: &Experiment, desired: &Design) -> Option<Divergence> {
    let slots = e.current_iteration.iter().chain(e.draft_iteration.iter()).map(|b| &**b);
    let first = slots.chain(e.previous_iterations.iter()).min_by_key(|it| it.created_at)?;
    let have: Vec<&String> = first.flags.keys().collect();
    let want: Vec<&String> = desired.flags.keys().collect();
    (have != want).then(|| Divergence {
        address: t.address.clone(),
        field: "flags".to_owned(),
        remote: Some(serde_json::json!(have)),
        spec: Some(serde_json::json!(want)),
        reason: "the flags of an experiment are fixed when it is created; LaunchDarkly refuses a new iteration with \
                 other flags"
            .to_owned(),
        hint: Some(format!(
            "give the experiment with the new flags a new key, and archive `{}` (state: archived)",
            t.spec.spec.key
        )),
        location: t.spec.location_of("iteration.flags"),
        refuses: true,
    })
}

/// Whether an iteration of `e` was ever started: a running or stopped current one, or any previous one.
fn ran_before(e: &Experiment) -> bool {
    !e.previous_iterations.is_empty()
        || e.current_iteration.as_deref().is_some_and(|c| c.status != IterationStatus::NotStarted)
}

/// The risk of a new iteration that replaces a draft waiting beside a started iteration: the draft is not the
/// experiment's own design being edited (as when nothing has started yet) but something prepared beside it.
fn replaced_draft(e: &Experiment, d: &Design) -> Option<Risk> {
    let started = matches!(iteration_state(e), IterState::Running | IterState::Stopped);
    let draft = e.draft_iteration.as_deref().filter(|it| !d.matches_iteration(it))?;
    started.then(|| Risk::ReplacesPendingDraft { iteration_id: draft.id.clone(), hypothesis: draft.hypothesis.clone() })
}

/// Reports each flag that would make `startIteration` fail.
fn unstartable(t: &Target<'_>, problems: &mut Problems) {
    let env = match &t.address {
        Address::Experiment { environment, .. } => environment.as_str(),
        _ => "",
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
    slots: &Slots<'_>,
    desired: &Design,
    problems: &mut Problems,
    divergences: &mut Vec<Divergence>,
) -> Option<Row> {
    let s = &t.spec.spec;
    let start = |justification: Option<String>| {
        let st = Step::Start { justification };
        if slots.same_pending { vec![st] } else { vec![Step::PostIteration, st] }
    };
    let mut lifecycle = |message: &str, hint: &str| {
        problems.push(ProblemKind::Lifecycle, &t.spec.location_of("state"), &t.address, message, Some(hint.to_owned()));
    };
    let row = match (slots.state, s.state) {
        (IterState::Draft | IterState::Stopped, ExperimentState::Archived) => {
            if slots.design_missing() {
                design_divergences(t, e, desired, "an archived experiment keeps the design it had", divergences);
            }
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
            if slots.same_pending {
                Row::none()
            } else {
                Row::of(Action::Update, None, vec![Step::PostIteration])
            }
        }
        (IterState::Draft | IterState::Stopped, ExperimentState::Running) => {
            // LaunchDarkly refuses to start again, without a reason, an experiment that already ran (contract §9.5).
            if !ran_before(e) {
                Row::of(Action::Start, None, start(None))
            } else if let Some(j) = &s.iteration.change_justification {
                Row::of(Action::Start, None, start(Some(j.clone())))
            } else {
                problems.push(
                    ProblemKind::Lifecycle,
                    &t.spec.location_of("iteration"),
                    &t.address,
                    "the experiment ran before and starts again, which LaunchDarkly refuses without a reason, but \
                     `iteration.changeJustification` is missing",
                    Some("add `changeJustification` saying why the experiment runs again".to_owned()),
                );
                return None;
            }
        }
        (IterState::Running, ExperimentState::Draft) => {
            if slots.same_current {
                lifecycle(
                    "state: draft, but the experiment is running and LaunchDarkly cannot un-start it",
                    "use state: running, stopped or archived; a new design in a draft spec is prepared as the next iteration",
                );
                return None;
            }
            if slots.same_pending {
                Row::none()
            } else {
                let mut r = Row::of(Action::Update, None, vec![Step::PostIteration]);
                r.notes.push("the running iteration continues; the new design waits as a draft iteration".to_owned());
                r
            }
        }
        (IterState::Running, ExperimentState::Running) => {
            if slots.same_current {
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
            let cur = slots.current?;
            let stop = stop_step(t, cur, problems)?;
            if slots.design_missing() {
                design_divergences(t, e, desired, "the experiment stops with the design it ran", divergences);
            }
            if s.state == ExperimentState::Stopped {
                Row::of(Action::Stop, Some(Risk::EndsExperiment), vec![Step::Stop(stop)])
            } else {
                Row::of(Action::Archive, Some(Risk::EndsExperiment), vec![Step::Stop(stop), Step::Archive])
            }
        }
        (IterState::Stopped, ExperimentState::Draft) => {
            let same = if slots.pending.is_some() { slots.same_pending } else { slots.same_current };
            if same { Row::none() } else { Row::of(Action::Update, None, vec![Step::PostIteration]) }
        }
        (IterState::Stopped, ExperimentState::Stopped) => {
            if slots.design_missing() {
                design_divergences(
                    t,
                    e,
                    desired,
                    "the experiment is stopped: a new design runs only with state: running, or waits as a draft with \
                     state: draft",
                    divergences,
                );
            }
            Row::none()
        }
    };
    Some(row)
}

/// The winner and reason of a stopped iteration cannot change: when the spec names others, that is a divergence.
fn stopped_divergences(t: &Target<'_>, slots: &Slots<'_>, divergences: &mut Vec<Divergence>) {
    let (Some(cur), Some(stop)) = (slots.current, &t.spec.spec.stop) else { return };
    if slots.state != IterState::Stopped {
        return;
    }
    let name_of = |id: Option<&String>| {
        cur.treatments.iter().find(|tr| id.is_some() && tr.id.as_ref() == id).map(|tr| tr.name.clone())
    };
    let actual = name_of(cur.winning_treatment_id.as_ref());
    let mut push = |field: &str, remote: Option<String>, spec: Option<String>, what: &str| {
        divergences.push(Divergence {
            address: t.address.clone(),
            field: field.to_owned(),
            remote: remote.map(Value::from),
            spec: spec.map(Value::from),
            reason: format!("the {what} of a stopped iteration cannot change"),
            hint: Some(format!(
                "write LaunchDarkly's {what} in the spec; to run the experiment again use state: running with a \
                 changeJustification"
            )),
            location: t.spec.location_of(field),
            refuses: false,
        });
    };
    if actual.as_deref() != Some(stop.winner.as_str()) {
        push("stop.winner", actual, Some(stop.winner.clone()), "winner");
    }
    if cur.winning_reason != stop.reason {
        push("stop.reason", cur.winning_reason.clone(), stop.reason.clone(), "reason");
    }
}

/// One divergence per design field that differs between the spec and the iteration LaunchDarkly keeps.
fn design_divergences(
    t: &Target<'_>,
    e: &Experiment,
    desired: &Design,
    reason: &str,
    divergences: &mut Vec<Divergence>,
) {
    let remote = compared_design(e, t.spec.spec.state).map(|d| to_json(&d));
    let mut fields = Vec::new();
    fields::diff("", remote.as_ref(), Some(&to_json(desired)), &mut fields);
    label_fields(t, &mut fields);
    for f in fields {
        divergences.push(Divergence {
            address: t.address.clone(),
            location: t.spec.location_of(&spec_path(&t.spec.spec, &f.field)),
            field: f.field,
            remote: f.before,
            spec: f.after,
            reason: reason.to_owned(),
            hint: Some(
                "write the design LaunchDarkly has in the spec, or use state: running (with a changeJustification) \
                 to run the new design"
                    .to_owned(),
            ),
            refuses: false,
        });
    }
}

/// Where the spec writes a design field: treatments are listed in the spec and keyed by name in the design.
fn spec_path(s: &ldexp_core::spec::ExperimentSpec, field: &str) -> String {
    for (i, t) in s.iteration.treatments.iter().enumerate() {
        if let Some(rest) = field.strip_prefix(&format!("treatments.{}.", t.name)) {
            return format!("iteration.treatments[{i}].{rest}");
        }
    }
    format!("iteration.{field}")
}

/// Stops the running iteration `cur`: with the spec's winner when it names one; when archiving without one, with
/// the baseline (LaunchDarkly needs a winner to stop), which the plan shows.
fn stop_step(t: &Target<'_>, cur: &IterationRep, problems: &mut Problems) -> Option<StopStep> {
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
        (None, ExperimentState::Archived) => (None, Some(ARCHIVE_REASON.to_owned())),
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
    match found.and_then(|tr| Some((tr.id.clone()?, tr.name.clone()))) {
        Some((winner, winner_name)) => Some(StopStep { iteration, winner, winner_name, reason }),
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

/// The reason sent when an archived spec without `stop` stops a running experiment (with the baseline as winner).
pub const ARCHIVE_REASON: &str = "archived by ldexp";

/// Turns a row into a change: requests in order, name and description joined to the first semantic patch, and one
/// field per value the requests write.
fn build(t: &Target<'_>, desired: &Design, row: Row) -> Option<Change> {
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
        // An absent description is the empty one, on both sides: removing it from a spec clears it.
        let (have, want) = (e.description.as_deref().unwrap_or(""), s.description.as_deref().unwrap_or(""));
        if have != want {
            meta.push((
                Instruction::UpdateDescription { value: want.to_owned() },
                Expectation::Description { value: want.to_owned() },
            ));
            let text = |v: &str| Some(v).filter(|v| !v.is_empty()).map(Value::from);
            fields.push(FieldChange { field: "description".into(), before: text(have), after: text(want) });
        }
    }
    if row.steps.is_empty() && meta.is_empty() {
        return None;
    }
    let action = row.action.unwrap_or(Action::Update);
    let (p, env, key) = match &t.address {
        Address::Experiment { project, environment, key } => (project.as_str(), environment.as_str(), key.as_str()),
        _ => return None,
    };
    let design = desired;
    // One copy of the design for every postcondition of the change, made only for a change that has one.
    let shared = std::cell::OnceCell::new();
    let shared = || Arc::clone(shared.get_or_init(|| Arc::new(design.clone())));
    let mut meta = Some(meta);
    let mut requests = Vec::new();
    // The iteration body a create or a new iteration sends, for the fields; a start of a pending draft shows the
    // design it starts without sending one.
    let mut body: Option<IterationInput> = None;
    for step in &row.steps {
        let mut instructions = Vec::new();
        let mut expect = Vec::new();
        let verb = match step {
            Step::Create => {
                let input = t.input(design);
                let post = creation::post(s, input.clone());
                fields.extend(creation::fields(&post));
                let mut r = requests::create_experiment(p, env, &post);
                r.expect = vec![Expectation::ExperimentExists, Expectation::PendingDesign { design: shared() }];
                requests.push(r);
                body = Some(input);
                continue;
            }
            Step::PostIteration => {
                let input = t.input(design);
                let mut r = requests::create_iteration(p, env, key, &input);
                r.expect = vec![Expectation::PendingDesign { design: shared() }];
                requests.push(r);
                body = Some(input);
                continue;
            }
            Step::Restore => {
                instructions.push(Instruction::RestoreExperiment);
                expect.push(Expectation::NotArchived);
                "restore"
            }
            Step::Start { justification } => {
                instructions.push(Instruction::StartIteration { change_justification: justification.clone() });
                expect.push(Expectation::RunningDesign { design: shared() });
                if let Some(j) = justification {
                    fields.push(FieldChange {
                        field: "changeJustification".into(),
                        before: None,
                        after: Some(j.clone().into()),
                    });
                }
                if action == Action::Restart { "restart" } else { "start" }
            }
            Step::Stop(stop) => {
                let (instruction, expectation, stop_fields) = stop.parts();
                instructions.push(instruction);
                expect.push(expectation);
                fields.extend(stop_fields);
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
        Step::Stop(_) => Some("stopped"),
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
    let compared_it = t.remote.and_then(|e| compared_iteration(e, s.state));
    let compared = compared_it.map(Design::from_iteration);
    // The design is listed where a body carries it (a create or a new iteration). Starting a pending draft that
    // already is the spec's design sends none, and its design is the spec's own.
    let shows_design = body.is_some();
    let (before, after) = if shows_design {
        let before = compared.as_ref().map(to_json);
        let after = to_json(design);
        let at = fields.len();
        fields::all("", before.as_ref(), Some(&after), &mut fields);
        if let Some(input) = &body {
            for (flag, f) in &input.flags {
                let was = compared_it.and_then(|it| it.flags.get(flag)).and_then(|r| r.flag_config_version);
                fields.push(FieldChange {
                    field: format!("flags.{flag}.flagConfigVersion"),
                    before: was.map(Value::from),
                    after: Some(f.flag_config_version.into()),
                });
            }
        }
        label_fields(t, &mut fields[at..]);
        // One design block in field order, each flag's version beside its rule.
        fields[at..].sort_by(|a, b| a.field.cmp(&b.field));
        (before.map(JsonText::from), Some(JsonText::from(after)))
    } else {
        // Unchanged design: written once, straight from the typed design, and shared by both sides.
        let text = compared.as_ref().and_then(|d| JsonText::of(d).ok());
        (text.clone(), text)
    };
    let mut risks = row.risks;
    risks.sort();
    // A plan holds every change at once; the growth slack of these vectors was a megabyte at 10,000 experiments.
    fields.shrink_to_fit();
    requests.shrink_to_fit();
    Some(Change {
        address: t.address.clone(),
        action,
        risks,
        remote_fingerprint: t.remote.map(experiment_fingerprint),
        before,
        after,
        fields,
        requests,
        notes: row.notes,
        flags: experiment_flags(t.remote, desired),
        depends_on: Vec::new(),
    })
}

/// The flags of an experiment: the spec's, and the remote's where they differ (a refused change of flags plans
/// nothing, but a stop still rewrites the flags that run).
fn experiment_flags(remote: Option<&Experiment>, desired: &Design) -> Vec<String> {
    let mut out: Vec<String> = desired.flags.keys().cloned().collect();
    let slots = remote.into_iter().flat_map(|e| e.current_iteration.iter().chain(e.draft_iteration.iter()));
    for k in slots.flat_map(|it| it.flags.keys()) {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out.sort();
    out
}

/// Replaces `_id`s of variations and rules with `label (_id)` in the fields that carry them, so a reviewer sees
/// `Control`, not a UUID.
fn label_fields(t: &Target<'_>, fields: &mut [FieldChange]) {
    let labels = t.labels();
    for f in fields {
        if f.field.contains(".variations.")
            || f.field.ends_with(".notInExperimentVariationId")
            || f.field.ends_with(".ruleId")
        {
            for v in [&mut f.before, &mut f.after].into_iter().flatten() {
                label(v, &labels);
            }
        }
    }
}

/// The remote iteration a change is compared with: the pending one when the spec or the remote is a draft, else
/// the current one.
fn compared_iteration(e: &Experiment, spec: ExperimentState) -> Option<&IterationRep> {
    if spec == ExperimentState::Draft || iteration_state(e) == IterState::Draft {
        e.pending_iteration().or(e.current_iteration.as_deref())
    } else {
        e.current_iteration.as_deref().or(e.pending_iteration())
    }
}

fn compared_design(e: &Experiment, spec: ExperimentState) -> Option<Design> {
    compared_iteration(e, spec).map(Design::from_iteration)
}

/// Replaces an `_id` with `label (_id)` when the flag names it, so a reviewer sees `Control`, not a UUID.
fn label(v: &mut Value, labels: &std::collections::BTreeMap<String, String>) {
    if let Some(l) = v.as_str().and_then(|id| labels.get(id).map(|l| format!("{l} ({id})"))) {
        *v = Value::String(l);
    }
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
        Address::Legacy { project, flag } | Address::LegacyResults { project, flag, .. } => {
            (project.as_str(), "", flag.as_str())
        }
        Address::Metric { project, key } | Address::MetricGroup { project, key } | Address::Layer { project, key } => {
            (project.as_str(), "", key.as_str())
        }
        Address::Holdout { project, environment, key } => (project.as_str(), environment.as_str(), key.as_str()),
        Address::Settings { project } => (project.as_str(), "", ""),
    };
    let body = ExperimentPatch { comment: Some(format!("ldexp: {verb} {address}")), instructions };
    let mut r = requests::patch_experiment(p, env, key, &body);
    r.expect = expect;
    r
}
