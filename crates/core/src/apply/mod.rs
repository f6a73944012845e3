//! The applier: the only code that writes to LaunchDarkly. It executes a [`Plan`] exactly as planned and
//! recovers from lost responses by re-reading the object, never by guessing.
//!
//! Rules it keeps:
//! - the requests of one object run in order; so do the changes that share a flag in one environment (a start or
//!   stop rewrites the flag, and a create carries its version), in plan order; everything else runs concurrently,
//!   bounded by [`ApplyOptions::concurrency`];
//! - a body field the plan binds ([`Binding`]) is filled in from a fresh read just before each send; nothing else
//!   in a request differs from the plan;
//! - a failed object does not stop the others. A 401 is read two ways (contract §9.8): answering the first
//!   request of the apply, before anything succeeded, it means the token is invalid, every remaining object
//!   would fail the same way and is reported as skipped; once something succeeded with the token, it means the
//!   token's role does not reach that object's project, which fails alone ([`Error::NoPermission`]);
//! - after an unknown outcome (a lost response or a 5xx on a write) the object is re-read and the
//!   request's [`Expectation`](crate::plan::Expectation)s decide: satisfied means the step took effect,
//!   otherwise the request is sent again, at most [`ApplyOptions::max_attempts`] times in all. A 409 is resent
//!   once only: LaunchDarkly also answers 409 for conflicts no retry fixes (contract §9.11). A request
//!   without postconditions is never resent after an unknown outcome, so no experiment, iteration or flag
//!   patch is ever applied twice;
//! - once [`ApplyOptions::stop`] is raised (the first Ctrl-C), no request is sent any more, not even a resend:
//!   requests in flight finish, and everything not yet sent is reported as interrupted.

mod stale;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use std::sync::atomic::AtomicBool as StopFlag;
use std::time::Duration;

use futures::StreamExt;

pub use crate::verify::Check;
pub use stale::{ObjectStaleness, Staleness, Verdict, compare};

use crate::Error;
use crate::client::{ObjectReads, Writer};
use crate::plan::{Action, Address, Binding, BoundValue, Change, Method, Plan, PlannedRequest};
use crate::verify;
use crate::verify::Object;

/// A progress callback.
pub type EventSink = Arc<dyn Fn(&ApplyEvent<'_>) + Send + Sync>;

/// How to apply.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Objects applied at the same time (the client bounds requests in flight separately).
    pub concurrency: usize,
    /// Sends of one request in all, including resends after an unknown outcome or a 409.
    pub max_attempts: u32,
    /// First pause before a resend or a re-read; doubles each time.
    pub retry_delay: Duration,
    /// Called as objects start and finish, for progress displays and for reporting each object as it finishes.
    pub on_event: Option<EventSink>,
    /// Raised to stop sending: requests in flight finish, nothing new is sent.
    pub stop: Arc<StopFlag>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 4,
            max_attempts: 4,
            retry_delay: Duration::from_millis(200),
            on_event: None,
            stop: Arc::new(StopFlag::new(false)),
        }
    }
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .field("on_event", &self.on_event.as_ref().map(|_| "<callback>"))
            .field("stop", &self.stop.load(Ordering::SeqCst))
            .finish()
    }
}

/// Progress of an apply, for displays.
#[derive(Debug)]
pub enum ApplyEvent<'a> {
    /// An object's first request is about to be sent.
    Started { address: &'a Address },
    /// A request's response was lost or it failed with a 5xx; the object is being re-read.
    Verifying { address: &'a Address, step: usize },
    /// An object is done, whatever the outcome (skipped and interrupted objects included).
    Finished { outcome: &'a ChangeOutcome },
}

/// What happened to every change of the plan, in plan order.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub outcomes: Vec<ChangeOutcome>,
}

impl ApplyReport {
    /// True when every change with requests was applied.
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o.status, OutcomeStatus::Applied))
    }

    /// True when the apply was stopped before every request was sent.
    pub fn interrupted(&self) -> bool {
        self.outcomes.iter().any(|o| matches!(o.status, OutcomeStatus::Interrupted))
    }

    /// Counts of applied, failed, skipped and interrupted changes.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.outcomes {
            match o.status {
                OutcomeStatus::Applied => c.applied += 1,
                OutcomeStatus::Failed { .. } => c.failed += 1,
                OutcomeStatus::Skipped { .. } => c.skipped += 1,
                OutcomeStatus::Interrupted => c.interrupted += 1,
            }
        }
        c
    }
}

/// How many changes ended each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Not finished because the apply was stopped: `requests_done` of them took effect, the rest were never sent.
    pub interrupted: usize,
}

/// The outcome of one change.
#[derive(Debug)]
pub struct ChangeOutcome {
    pub address: Address,
    pub action: Action,
    /// Requests that took effect: answered with success, or proven by a re-read.
    pub requests_done: usize,
    pub requests_total: usize,
    /// Requests whose response was lost but whose effect a re-read confirmed.
    pub recovered: usize,
    /// Requests sent again after a re-read showed the first send had not taken effect.
    pub resent: usize,
    pub status: OutcomeStatus,
}

/// Applied, failed or skipped.
#[derive(Debug)]
pub enum OutcomeStatus {
    Applied,
    /// `step` is the index of the failing request; `error.hint()` says what to do.
    Failed {
        step: usize,
        request: String,
        error: Error,
    },
    Skipped {
        reason: String,
    },
    /// The apply was stopped before this change's remaining requests were sent.
    Interrupted,
}

/// Executes `plan` with `client`. Changes without requests are not listed in the report.
///
/// Changes run in waves: a change whose [`Change::depends_on`] names others of the plan runs in a later wave than
/// they, and only if they were all applied (otherwise it is skipped, never sent); within a wave, independent
/// changes run concurrently and the changes of one group (see [`groups`]) one after another.
pub async fn apply<C: ObjectReads + Writer>(plan: &Plan, client: &C, options: &ApplyOptions) -> ApplyReport {
    let auth_failed = AtomicBool::new(false);
    let token_worked = AtomicBool::new(false);
    let ctx = Ctx { client, options, auth_failed: &auth_failed, token_worked: &token_worked };
    let changes: Vec<(usize, &Change)> =
        plan.changes.iter().enumerate().filter(|(_, c)| !c.requests.is_empty()).collect();
    let mut results: Vec<(usize, ChangeOutcome)> = Vec::new();
    let mut applied: BTreeMap<Address, bool> = BTreeMap::new();
    for wave in waves(&changes) {
        let groups = groups(&wave);
        let done = &applied;
        let outcomes: Vec<(usize, ChangeOutcome)> = futures::stream::iter(groups)
            .map(|group| ctx.run_group(group, done))
            .buffer_unordered(options.concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        for (_, o) in &outcomes {
            let ok = matches!(o.status, OutcomeStatus::Applied);
            *applied.entry(o.address.clone()).or_insert(true) &= ok;
        }
        results.extend(outcomes);
    }
    results.sort_by_key(|(i, _)| *i);
    ApplyReport { outcomes: results.into_iter().map(|(_, o)| o).collect() }
}

/// The changes split into waves: each change in a later wave than every change it depends on, and not earlier
/// than a change before it in its group, so that a group's plan order holds across waves.
fn waves<'a>(changes: &[(usize, &'a Change)]) -> Vec<Vec<(usize, &'a Change)>> {
    let n = changes.len();
    let by_address: BTreeMap<&Address, Vec<usize>> =
        changes.iter().enumerate().fold(BTreeMap::new(), |mut m, (i, (_, c))| {
            m.entry(&c.address).or_insert_with(Vec::new).push(i);
            m
        });
    let group_of = group_roots(changes);
    let mut wave = vec![0usize; n];
    // Dependencies and groups point backwards in a planner's plan; passes repeat until nothing moves, bounded so a
    // cyclic hand-made plan cannot loop (its cycle then shares a wave, and the skip rule still holds).
    for _ in 0..=n {
        let mut moved = false;
        let mut last_in_group: BTreeMap<usize, usize> = BTreeMap::new();
        for i in 0..n {
            let c = changes[i].1;
            let mut w = wave[i];
            for d in &c.depends_on {
                for &j in by_address.get(d).into_iter().flatten() {
                    if j != i {
                        w = w.max(wave[j] + 1);
                    }
                }
            }
            if let Some(&prev) = last_in_group.get(&group_of[i]) {
                w = w.max(wave[prev]);
            }
            last_in_group.insert(group_of[i], i);
            if w != wave[i] && w <= n {
                wave[i] = w;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: Vec<Vec<(usize, &Change)>> = Vec::new();
    for (i, &w) in wave.iter().enumerate() {
        if out.len() <= w {
            out.resize_with(w + 1, Vec::new);
        }
        out[w].push(changes[i]);
    }
    out.retain(|w| !w.is_empty());
    out
}

/// The changes that must run one after another, each group in plan order: changes of one object, and changes that
/// share a flag in one environment (joined transitively).
fn groups<'a>(changes: &[(usize, &'a Change)]) -> Vec<Vec<(usize, &'a Change)>> {
    let roots = group_roots(changes);
    let mut out: BTreeMap<usize, Vec<(usize, &Change)>> = BTreeMap::new();
    for (n, &(i, c)) in changes.iter().enumerate() {
        out.entry(roots[n]).or_default().push((i, c));
    }
    out.into_values().collect()
}

/// For each change, a representative of its group (see [`groups`]).
fn group_roots(changes: &[(usize, &Change)]) -> Vec<usize> {
    // Union-find over the changes, joined through the keys they touch.
    let mut parent: Vec<usize> = (0..changes.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (n, (_, c)) in changes.iter().enumerate() {
        for key in touched(c) {
            match owner.get(&key) {
                Some(&m) => {
                    let (a, b) = (root(&mut parent, n), root(&mut parent, m));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    owner.insert(key, n);
                }
            }
        }
    }
    (0..changes.len()).map(|n| root(&mut parent, n)).collect()
}

/// The keys a change touches: its object, and each of its flags in its environment.
fn touched(c: &Change) -> Vec<String> {
    let mut keys = vec![format!("object {}", c.address)];
    if let Address::Experiment { project, environment, .. } = &c.address {
        keys.extend(c.flags.iter().map(|f| format!("flag {project}/{environment}/{f}")));
    }
    keys
}

fn describe(r: &PlannedRequest) -> String {
    format!("{} {}", r.method, r.path)
}

struct Ctx<'a, C> {
    client: &'a C,
    options: &'a ApplyOptions,
    /// Raised by a 401 before anything succeeded: the token itself is taken to be invalid.
    auth_failed: &'a AtomicBool,
    /// Raised by the first request (write or read) LaunchDarkly answered with success: from then on a 401 is about
    /// one project, not the token.
    token_worked: &'a AtomicBool,
}

/// How one send of one request ended, after any re-reads.
enum Step {
    Done {
        recovered: bool,
    },
    Failed(Error),
    /// Not sent (again): the apply was stopped.
    Interrupted,
}

impl<C: ObjectReads + Writer> Ctx<'_, C> {
    fn emit(&self, e: ApplyEvent) {
        if let Some(cb) = &self.options.on_event {
            cb(&e);
        }
    }

    async fn run_group(
        &self,
        group: Vec<(usize, &Change)>,
        applied: &BTreeMap<Address, bool>,
    ) -> Vec<(usize, ChangeOutcome)> {
        let mut out = Vec::with_capacity(group.len());
        // Objects whose earlier change failed: their later changes are not attempted.
        let mut failed: Vec<&Address> = Vec::new();
        for (i, change) in group {
            let blocked = failed
                .contains(&&change.address)
                .then(|| format!("not attempted: an earlier change of {} failed", change.address))
                .or_else(|| {
                    let unmet: Vec<String> = change
                        .depends_on
                        .iter()
                        .filter(|d| applied.get(*d) == Some(&false))
                        .map(ToString::to_string)
                        .collect();
                    (!unmet.is_empty()).then(|| {
                        format!(
                            "not attempted: it depends on {}, which did not apply; apply again once it does",
                            unmet.join(", ")
                        )
                    })
                });
            let skip = blocked.or_else(|| {
                self.auth_failed.load(Ordering::SeqCst).then(|| {
                    "not attempted: LaunchDarkly rejected the access token (401 before any request succeeded)"
                        .to_owned()
                })
            });
            let not_run_because = if self.stopped() {
                Some(OutcomeStatus::Interrupted)
            } else {
                skip.map(|reason| OutcomeStatus::Skipped { reason })
            };
            let outcome = match not_run_because {
                Some(status) => {
                    let outcome = not_run(change, status);
                    // Still "finished" for progress displays, which count every object of the plan.
                    self.emit(ApplyEvent::Finished { outcome: &outcome });
                    outcome
                }
                None => self.run_change(change).await,
            };
            if matches!(outcome.status, OutcomeStatus::Failed { .. }) {
                failed.push(&change.address);
            }
            out.push((i, outcome));
        }
        out
    }

    fn stopped(&self) -> bool {
        self.options.stop.load(Ordering::SeqCst)
    }

    async fn run_change(&self, change: &Change) -> ChangeOutcome {
        self.emit(ApplyEvent::Started { address: &change.address });
        let resource = change.address.to_string();
        let mut outcome = not_run(change, OutcomeStatus::Applied);
        for (step, request) in change.requests.iter().enumerate() {
            match self.run_step(change, step, request, &resource, &mut outcome.resent).await {
                Step::Done { recovered } => {
                    outcome.requests_done += 1;
                    outcome.recovered += usize::from(recovered);
                }
                Step::Interrupted => {
                    outcome.status = OutcomeStatus::Interrupted;
                    break;
                }
                Step::Failed(mut error) => {
                    if is_auth_failure(&error) {
                        error = self.read_401(&change.address, error);
                    }
                    outcome.status = OutcomeStatus::Failed { step, request: describe(request), error };
                    break;
                }
            }
        }
        self.emit(ApplyEvent::Finished { outcome: &outcome });
        outcome
    }

    /// Sends one request until it is known to have taken effect, or is known to have failed.
    async fn run_step(
        &self,
        change: &Change,
        step: usize,
        request: &PlannedRequest,
        resource: &str,
        resent: &mut usize,
    ) -> Step {
        let max = self.options.max_attempts.max(1);
        let mut attempt = 1;
        // A 409 earns one resend; the second is final.
        let mut conflicted = false;
        // Set once a send may have taken effect: from then on every failure is checked against the remote.
        let mut maybe_applied = false;
        loop {
            if self.stopped() {
                return Step::Interrupted;
            }
            // Bound fields are read again before every send: a resend after a 409 must not repeat a stale value.
            let bound;
            let to_send = if request.bind.is_empty() {
                request
            } else {
                match self.bind(request, resource).await {
                    Ok(r) => {
                        bound = r;
                        &bound
                    }
                    Err(e) => return Step::Failed(e),
                }
            };
            let error = match self.client.send(to_send, resource).await {
                Ok(_) => {
                    self.token_worked.store(true, Ordering::SeqCst);
                    return Step::Done { recovered: false };
                }
                Err(e) => e,
            };
            let unknown = is_unknown_outcome(&error, request);
            maybe_applied |= unknown;
            if maybe_applied {
                if request.expect.is_empty() {
                    // Nothing to check against: sending again could duplicate the write.
                    return Step::Failed(error);
                }
                self.emit(ApplyEvent::Verifying { address: &change.address, step });
                match self.check(request.object.as_ref().unwrap_or(&change.address), request).await {
                    Ok(Check::Satisfied) => return Step::Done { recovered: true },
                    Ok(Check::Unsatisfied(why)) => {
                        tracing::debug!("{resource}: request {} had not taken effect: {}", step + 1, why.join("; "));
                    }
                    Err(read_error) => {
                        // The state is unknown and may stay so: give up rather than risk a duplicate.
                        tracing::warn!("{resource}: re-read after an unknown outcome failed: {read_error}");
                        return Step::Failed(error);
                    }
                }
            }
            // A definite refusal (4xx other than a first 409) will not change by sending the same request again.
            if !unknown {
                if conflicted || !is_retryable_conflict(&error) {
                    return Step::Failed(error);
                }
                conflicted = true;
            }
            if attempt >= max {
                return Step::Failed(error);
            }
            self.pause(attempt).await;
            attempt += 1;
            *resent += 1;
        }
    }

    /// What a 401 on `address` means. Before anything succeeded it is taken as an invalid token: the objects not
    /// started yet are skipped. Afterwards the token demonstrably works, so the 401 is a role that does not reach
    /// this object's project: only this object fails, saying so.
    fn read_401(&self, address: &Address, error: Error) -> Error {
        if !self.token_worked.load(Ordering::SeqCst) {
            self.auth_failed.store(true, Ordering::SeqCst);
            return error;
        }
        match error {
            Error::Api(api) => Error::NoPermission { project: project_of(address).to_owned(), api },
            other => other,
        }
    }

    /// `request` with its bound fields filled in from fresh reads.
    async fn bind(&self, request: &PlannedRequest, resource: &str) -> Result<PlannedRequest, Error> {
        let mut read: Vec<(&BoundValue, Option<serde_json::Value>)> = Vec::with_capacity(request.bind.len());
        for Binding { value, .. } in &request.bind {
            let got = match value {
                BoundValue::FlagVersion { project, flag, environment } => {
                    let address = Address::Legacy { project: project.clone(), flag: flag.clone() };
                    match self.reread_retrying(&address).await? {
                        Object::Flag(Some(snap)) => snap.flag.environments.get(environment).map(|e| e.version.into()),
                        _ => None,
                    }
                }
                BoundValue::HoldoutId { project, environment, key } => {
                    let address = Address::Holdout {
                        project: project.clone(),
                        environment: environment.clone(),
                        key: key.clone(),
                    };
                    match self.reread_retrying(&address).await? {
                        Object::Holdout(Some(h)) if !h.id.is_empty() => Some(h.id.clone().into()),
                        _ => None,
                    }
                }
            };
            read.push((value, got));
        }
        let value_of = |v: &BoundValue| read.iter().find(|(w, _)| *w == v).and_then(|(_, x)| x.clone());
        request.with_bound(value_of).map_err(|why| Error::NotFound {
            message: format!("{resource}: {why}; run `ldexp plan` again to see what changed"),
        })
    }

    /// A fresh read of the object of `address`, retrying reads that fail.
    async fn reread_retrying(&self, address: &Address) -> Result<Object, Error> {
        let mut attempt = 1;
        loop {
            match self.client.reread(address).await {
                Ok(object) => {
                    self.token_worked.store(true, Ordering::SeqCst);
                    return Ok(object);
                }
                Err(e) if attempt >= self.options.max_attempts.max(1) || is_auth_failure(&e) => return Err(e),
                Err(_) => {
                    self.pause(attempt).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Re-reads the object of `address`, retrying reads that fail, and checks `request`'s postconditions.
    async fn check(&self, address: &Address, request: &PlannedRequest) -> Result<Check, Error> {
        Ok(verify::check_all(&request.expect, &self.reread_retrying(address).await?))
    }

    async fn pause(&self, attempt: u32) {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        let delay = self.options.retry_delay.saturating_mul(factor);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// The outcome of `change` before any of its requests took effect.
fn not_run(change: &Change, status: OutcomeStatus) -> ChangeOutcome {
    ChangeOutcome {
        address: change.address.clone(),
        action: change.action,
        requests_done: 0,
        requests_total: change.requests.len(),
        recovered: 0,
        resent: 0,
        status,
    }
}

/// A write whose effect is unknown: the client says so, or the server failed after receiving it.
fn is_unknown_outcome(e: &Error, r: &PlannedRequest) -> bool {
    match e {
        Error::OutcomeUnknown { .. } => true,
        Error::Api(api) => api.status >= 500 && r.method != Method::Get,
        _ => false,
    }
}

/// A 409 (optimistic locking) means the request was refused as a whole; LaunchDarkly says to retry, once.
fn is_retryable_conflict(e: &Error) -> bool {
    matches!(e, Error::Api(api) if api.status == 409)
}

/// The project an address belongs to, as a 401 on it names it.
fn project_of(address: &Address) -> &str {
    match address {
        Address::Experiment { project, .. }
        | Address::Legacy { project, .. }
        | Address::LegacyResults { project, .. }
        | Address::Metric { project, .. }
        | Address::MetricGroup { project, .. }
        | Address::Layer { project, .. }
        | Address::Holdout { project, .. }
        | Address::Settings { project } => project,
    }
}

fn is_auth_failure(e: &Error) -> bool {
    matches!(e, Error::Api(api) if api.status == 401)
}
