//! Postcondition checks: does a freshly read object show that a planned request took effect?

use crate::api::{Experiment, IterationRep, IterationStatus};
use crate::design::{Design, legacy_equivalent};
use crate::plan::Expectation;
use crate::remote::FlagSnapshot;

/// A fresh read of a change's object; `None` inside when it does not exist.
#[derive(Debug)]
pub(crate) enum Object {
    Experiment(Option<Box<Experiment>>),
    Flag(Option<FlagSnapshot>),
}

/// The verdict on a request's postconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Satisfied,
    /// What does not hold, one line per postcondition.
    Unsatisfied(Vec<String>),
}

pub(crate) fn check_all(expect: &[Expectation], object: &Object) -> Check {
    let failures: Vec<String> = expect.iter().filter_map(|e| check_one(e, object).err()).collect();
    if failures.is_empty() { Check::Satisfied } else { Check::Unsatisfied(failures) }
}

fn check_one(e: &Expectation, object: &Object) -> Result<(), String> {
    match (e, object) {
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
        Expectation::IterationDesign { .. } => "expected an iteration with the planned design",
        Expectation::IterationRunning { .. } => "expected a running iteration",
        Expectation::IterationStopped { .. } => "expected a stopped iteration",
        Expectation::Archived => "expected it archived",
        Expectation::NotArchived => "expected it active",
        Expectation::Name { .. } => "expected a name",
        Expectation::Description { .. } => "expected a description",
        Expectation::FlagExperiments { .. } => "expected legacy experiments",
    }
}

fn check_experiment(e: &Expectation, x: &Experiment) -> Result<(), String> {
    let holds = match e {
        Expectation::ExperimentExists => true,
        Expectation::IterationDesign { design } => {
            let matches =
                |it: &Option<Box<IterationRep>>| it.as_deref().is_some_and(|it| Design::from_iteration(it) == **design);
            matches(&x.draft_iteration) || matches(&x.current_iteration)
        }
        Expectation::IterationRunning { replaces } => x.current_iteration.as_ref().is_some_and(|it| {
            it.status == IterationStatus::Running && (replaces.is_none() || it.id.as_ref() != replaces.as_ref())
        }),
        Expectation::IterationStopped { iteration_id } => x
            .current_iteration
            .as_deref()
            .into_iter()
            .chain(x.previous_iterations.iter())
            .any(|it| it.id.as_deref() == Some(iteration_id.as_str()) && it.status == IterationStatus::Stopped),
        Expectation::Archived => x.is_archived(),
        Expectation::NotArchived => !x.is_archived(),
        Expectation::Name { value } => &x.name == value,
        Expectation::Description { value } => x.description.as_deref().unwrap_or("") == value,
        Expectation::FlagExperiments { .. } => false,
    };
    if holds { Ok(()) } else { Err(format!("experiment {}: {}", x.key, name(e))) }
}
