//! [`InMemory`]: an in-process [`Transport`] that hands each planned request to [`State::handle_planned`], with
//! no HTTP in between.
//!
//! Only the transport is here: reads, writes, pagination and error mapping are `ldexp_core::client`'s, the same
//! code the REST client runs over HTTP, so planner and applier tests exercise the real wire shapes and decoding.

use std::sync::{Mutex, MutexGuard};

use ldexp_core::Error;
use ldexp_core::client::{Answer, Transport};
use ldexp_core::plan::PlannedRequest;

use crate::model::State;

/// An in-process LaunchDarkly. Every call locks the state, handles one request and releases it.
#[derive(Debug)]
pub struct InMemory {
    state: Mutex<State>,
}

impl InMemory {
    pub fn new(state: State) -> Self {
        InMemory { state: Mutex::new(state) }
    }

    /// A snapshot of the current state.
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    /// Runs `f` on the live state, e.g. to change LaunchDarkly behind the planner's back in a test.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written: handlers commit at the end.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Transport for InMemory {
    async fn execute(&self, request: &PlannedRequest, resource: &str) -> Result<Answer, Error> {
        let response = self.lock().handle_planned(request);
        let body = match &response.body {
            Some(v) => serde_json::to_vec(v).map_err(|e| Error::Decode {
                resource: resource.to_owned(),
                reason: format!("cannot encode the emulator's answer: {e}"),
            })?,
            None => Vec::new(),
        };
        Ok(Answer { status: response.status, body })
    }
}
