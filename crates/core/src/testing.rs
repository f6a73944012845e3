//! Helpers shared by the unit tests: a count of the calls in flight at once, to prove that reads run together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

/// How many calls are in flight, and the most there were at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    /// One call: counted in flight while it yields once, so that every call started together is in flight before
    /// any finishes.
    pub(crate) async fn visit(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// The most calls in flight at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}
