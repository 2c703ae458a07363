//! The one piece of state the supervisor and the workers share: which phase of its life the
//! server is in, and how to wake every event loop when that changes.
//!
//! The supervisor (see `server`) turns signals and deadlines into phase changes here; each worker
//! reads the phase when its `Waker` fires. Nothing on a request's path touches this type.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// Finish what was accepted, accept nothing new, then exit.
    Draining,
    /// Close everything now: the drain deadline passed, or a second signal came.
    Abort,
}

#[derive(Default)]
pub struct Control {
    phase: AtomicU8,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Control {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Serving,
            1 => Phase::Draining,
            _ => Phase::Abort,
        }
    }

    /// Registers a worker's waker; the worker is told of every later phase change.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        self.lock().push(waker);
    }

    /// Moves to `phase` if that is further along than the current one, and wakes every loop.
    pub fn advance(&self, phase: Phase) {
        let code = match phase {
            Phase::Serving => 0,
            Phase::Draining => 1,
            Phase::Abort => 2,
        };
        self.phase.fetch_max(code, Ordering::AcqRel);
        for waker in self.lock().iter() {
            if let Err(e) = waker.wake() {
                tracing::error!(error = %e, "cannot wake an event loop");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Waker>>> {
        // A panic elsewhere cannot leave a Vec of wakers half-updated; keep using it.
        self.wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
