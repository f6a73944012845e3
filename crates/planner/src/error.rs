//! `PlanError`: every problem that stops a plan, each at the spec field it comes from.

use std::fmt;

use ldexp_core::plan::Address;
use ldexp_core::spec::{Diagnostic, SourceLocation};

/// What kind of problem stopped the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// A spec names something LaunchDarkly does not have (project, environment, flag, variation, rule, metric, …).
    Reference,
    /// The requested lifecycle transition is impossible (stop what never ran, un-start, restart without reason).
    Lifecycle,
    /// The specs contradict each other (two specs for one experiment).
    Conflict,
    /// The planner produced something it could not verify: a bug in ldexp, never sent.
    Internal,
}

/// One problem, located in the specs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Where in the specs: `file:line:col` of the offending field.
    pub location: SourceLocation,
    pub kind: ProblemKind,
    /// The object the problem is about.
    pub address: Address,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Problem {
    /// The problem as a spec diagnostic, the form `ldexp validate` prints.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::at(&self.location, format!("{}: {}", self.address, self.message), self.hint.clone())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.diagnostic().fmt(f)
    }
}

/// The planner's one error: every problem found, never just the first.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The specs cannot be planned against the remote state; each problem names its spec location.
    #[error("cannot plan: {} problem{} found", problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Problems { problems: Vec<Problem> },
}

impl PlanError {
    /// Every problem, sorted by location.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Problems { problems } => problems,
        }
    }

    /// Every problem as a spec diagnostic.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.problems().iter().map(Problem::diagnostic).collect()
    }
}

/// Collects problems while planning goes on, so one run reports all of them.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(
        &mut self,
        kind: ProblemKind,
        location: &SourceLocation,
        address: &Address,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.0.push(Problem {
            location: location.clone(),
            kind,
            address: address.clone(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// `Err` with every problem, sorted and without repeats (a multi-environment spec finds the same
    /// environment-independent problem once per environment).
    pub(crate) fn into_result(self) -> Result<(), PlanError> {
        let mut problems = self.0;
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort();
        let mut seen = std::collections::BTreeSet::new();
        problems.retain(|p| seen.insert((p.location.clone(), p.kind, p.message.clone())));
        Err(PlanError::Problems { problems })
    }
}
