//! Postcondition checks: does a freshly read object show that a planned request took effect?
//!
//! The applier asks this after a lost response, and counts a request as done when every one of its
//! [`Expectation`]s holds. That is only safe if each postcondition is false in every state where its request did not
//! take effect. The planner plans each request from a known state, and each postcondition is chosen to be false there:
//!
//! | request | planned only when | postcondition |
//! |---|---|---|
//! | `createExperiment` | the experiment is absent | it exists, and its pending iteration has the design |
//! | `createIteration` | no pending iteration has the spec's design | the pending iteration has the design |
//! | `startIteration` | no running iteration has the spec's design (draft, stopped, or running another design) | the running iteration has the design |
//! | `stopIteration` | iteration `I` is running | `I` is stopped, with the planned winner |
//! | `archiveExperiment` / `restoreExperiment` | not archived / archived | archived / not archived |
//! | `updateName` / `updateDescription` | the value differs (an absent description is `""`) | the value |
//! | legacy flag patch | `experiments` is not equivalent to the spec's | it is |
//! | `postMetric` / `createMetricGroup` | the object is absent | it exists with every field the create sets |
//! | `patchMetric` / `patchMetricGroup` | at least one patched field differs | every patched field has its new value |
//! | `deleteMetric` / `deleteMetricGroup` | the object exists | it is absent |
//! | `putExperimentationSettings` | the units differ as a set | they are the planned set |
//! | `createLayer` / `postHoldout` | the object is absent | it exists with the planned name and description |
//! | `updateLayer` / `patchHoldout` `updateName`, `updateDescription` | the value differs | the value |
//! | `updateExperimentReservation` | the experiment's reservation in that environment is absent or another share | it is the planned share |
//! | layer `removeExperiment` | the layer holds a reservation for the experiment there | it holds none |
//! | `endHoldout` | the holdout has not ended | it has ended |
//! | holdout `removeExperiment` | the holdout holds the experiment | it does not |
//!
//! The earlier requests of the same change never make a later one's postcondition true: a restore starts nothing, a new
//! iteration is a draft and not the running one, and a stop does not archive. What the planner saw is what the applier
//! starts from: a fresh plan is applied at once, and `apply --plan` refuses a saved plan whose requests moved. The
//! planner's `postconditions_identify_their_request` property test checks all of this against the emulator, over
//! remote states with stale drafts, stopped and archived iterations, and the spec's design in the wrong slot.
//!
//! Postconditions are checked against the pending and running slots, never "any iteration": a stopped iteration, or a
//! colleague's draft, with an equal design is exactly the state in which a looser check would lie.

use crate::api::{Experiment, ExperimentationSettings, Holdout, IterationStatus, Layer, Metric, MetricGroup};
use crate::catalog;
use crate::design::legacy_equivalent;
use crate::plan::Expectation;
use crate::remote::FlagSnapshot;

/// A fresh read of a change's object; `None` inside when it does not exist.
#[derive(Debug)]
pub enum Object {
    Experiment(Option<Box<Experiment>>),
    Flag(Option<FlagSnapshot>),
    Metric(Option<Box<Metric>>),
    MetricGroup(Option<Box<MetricGroup>>),
    Settings(Option<Box<ExperimentationSettings>>),
    Layer(Option<Box<Layer>>),
    Holdout(Option<Box<Holdout>>),
}

/// The verdict on a request's postconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Satisfied,
    /// What does not hold, one line per postcondition.
    Unsatisfied(Vec<String>),
}

/// Checks every postcondition of a request against `object`; all must hold. An empty list is never satisfied by a
/// read: a request without postconditions cannot be proven to have taken effect.
pub fn check_all(expect: &[Expectation], object: &Object) -> Check {
    if expect.is_empty() {
        return Check::Unsatisfied(vec!["the request has no postcondition to check".to_owned()]);
    }
    let failures: Vec<String> = expect.iter().filter_map(|e| check_one(e, object).err()).collect();
    if failures.is_empty() { Check::Satisfied } else { Check::Unsatisfied(failures) }
}

fn check_one(e: &Expectation, object: &Object) -> Result<(), String> {
    match (e, object) {
        (Expectation::Absent, Object::Metric(None) | Object::MetricGroup(None)) => Ok(()),
        (Expectation::Absent, Object::Metric(Some(_)) | Object::MetricGroup(Some(_))) => {
            Err("it still exists".to_owned())
        }
        (Expectation::CatalogFields { fields }, Object::Metric(m)) => {
            let m = m.as_ref().ok_or("the metric does not exist")?;
            fields_hold(fields, &catalog::metric_fields(m))
        }
        (Expectation::CatalogFields { fields }, Object::MetricGroup(g)) => {
            let g = g.as_ref().ok_or("the metric group does not exist")?;
            fields_hold(fields, &catalog::group_fields(g))
        }
        (Expectation::RandomizationUnits { units }, Object::Settings(s)) => {
            let s = s.as_ref().ok_or("the project has no experimentation settings")?;
            if catalog::units_match(&s.randomization_units, units) {
                Ok(())
            } else {
                Err("the randomization units differ from the planned ones".to_owned())
            }
        }
        (e, Object::Layer(None)) => Err(format!("the layer does not exist ({})", name(e))),
        (e, Object::Layer(Some(l))) => check_layer(e, l),
        (e, Object::Holdout(None)) => Err(format!("the holdout does not exist ({})", name(e))),
        (e, Object::Holdout(Some(h))) => check_holdout(e, h),
        (e, Object::Metric(_) | Object::MetricGroup(_) | Object::Settings(_)) => {
            Err(format!("{} does not apply to a metric, metric group or settings", name(e)))
        }
        (Expectation::FlagExperiments { experiments }, Object::Flag(flag)) => {
            let flag = flag.as_ref().ok_or("the flag does not exist")?;
            if legacy_equivalent(&flag.flag.experiments, experiments) {
                Ok(())
            } else {
                Err("the flag's legacy experiments differ from the planned ones".into())
            }
        }
        (Expectation::FlagExperiments { .. }, Object::Experiment(_)) => {
            Err("a flag postcondition was attached to an experiment".into())
        }
        (_, Object::Flag(_)) => Err("an experiment postcondition was attached to a legacy flag change".into()),
        (e, Object::Experiment(None)) => Err(format!("the experiment does not exist ({})", name(e))),
        (e, Object::Experiment(Some(x))) => check_experiment(e, x),
    }
}

fn name(e: &Expectation) -> &'static str {
    match e {
        Expectation::ExperimentExists => "expected it to exist",
        Expectation::PendingDesign { .. } => "expected a pending iteration with the planned design",
        Expectation::RunningDesign { .. } => "expected a running iteration with the planned design",
        Expectation::IterationStopped { .. } => "expected the iteration stopped with the planned winner",
        Expectation::Archived => "expected it archived",
        Expectation::NotArchived => "expected it active",
        Expectation::Name { .. } => "expected the planned name",
        Expectation::Description { .. } => "expected the planned description",
        Expectation::FlagExperiments { .. } => "expected legacy experiments",
        Expectation::CatalogFields { .. } => "expected the planned fields",
        Expectation::Absent => "expected it deleted",
        Expectation::RandomizationUnits { .. } => "expected the planned randomization units",
        Expectation::Reservation { .. } => "expected the planned reservation",
        Expectation::NoReservation { .. } => "expected no reservation",
        Expectation::HoldoutEnded => "expected it ended",
        Expectation::NotInHoldout { .. } => "expected the experiment out of the holdout",
    }
}

fn check_layer(e: &Expectation, l: &Layer) -> Result<(), String> {
    let holds = match e {
        Expectation::Name { value } => &l.name == value,
        Expectation::Description { value } => l.description.as_deref().unwrap_or("") == value,
        Expectation::Reservation { environment, experiment, percent } => {
            l.reservation(environment, experiment).is_some_and(|r| r.reservation_percent == *percent)
        }
        Expectation::NoReservation { environment, experiment } => l.reservation(environment, experiment).is_none(),
        _ => return Err(format!("{} does not apply to a layer", name(e))),
    };
    if holds { Ok(()) } else { Err(format!("layer {}: {}", l.key, name(e))) }
}

fn check_holdout(e: &Expectation, h: &Holdout) -> Result<(), String> {
    let holds = match e {
        Expectation::Name { value } => h.name() == value,
        Expectation::Description { value } => h.description() == value,
        Expectation::HoldoutEnded => h.is_ended(),
        Expectation::NotInHoldout { experiment } => !h.holds(experiment),
        _ => return Err(format!("{} does not apply to a holdout", name(e))),
    };
    if holds { Ok(()) } else { Err(format!("holdout {}: {}", h.key(), name(e))) }
}

fn fields_hold(
    expected: &serde_json::Map<String, serde_json::Value>,
    actual: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let differ: Vec<&str> =
        expected.iter().filter(|(k, v)| !catalog::same(k, actual.get(*k), v)).map(|(k, _)| k.as_str()).collect();
    if differ.is_empty() { Ok(()) } else { Err(format!("{} differ from the plan", differ.join(", "))) }
}

fn check_experiment(e: &Expectation, x: &Experiment) -> Result<(), String> {
    let holds = match e {
        Expectation::ExperimentExists => true,
        Expectation::PendingDesign { design } => x.pending_iteration().is_some_and(|it| design.matches_iteration(it)),
        Expectation::RunningDesign { design } => x.running_iteration().is_some_and(|it| design.matches_iteration(it)),
        Expectation::IterationStopped { iteration_id, winning_treatment_id } => {
            x.current_iteration.as_deref().into_iter().chain(x.previous_iterations.iter()).any(|it| {
                it.id.as_deref() == Some(iteration_id.as_str())
                    && it.status == IterationStatus::Stopped
                    && it.winning_treatment_id.as_deref() == Some(winning_treatment_id.as_str())
            })
        }
        Expectation::Archived => x.is_archived(),
        Expectation::NotArchived => !x.is_archived(),
        Expectation::Name { value } => &x.name == value,
        Expectation::Description { value } => x.description.as_deref().unwrap_or("") == value,
        Expectation::FlagExperiments { .. }
        | Expectation::CatalogFields { .. }
        | Expectation::Absent
        | Expectation::RandomizationUnits { .. }
        | Expectation::Reservation { .. }
        | Expectation::NoReservation { .. }
        | Expectation::HoldoutEnded
        | Expectation::NotInHoldout { .. } => false,
    };
    if holds { Ok(()) } else { Err(format!("experiment {}: {}", x.key, name(e))) }
}
