//! The one piece of state the supervisor and the workers share besides the published site: which
//! phase of its life the server is in, and how to wake every event loop when it changes (or when a
//! reload published a new site).
//!
//! The supervisor (see `server`) turns signals and deadlines into changes here; each worker reads
//! them when its `Waker` fires. Nothing on a request's path touches this type.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

use crate::site::{lock, Phase};

#[derive(Default)]
pub struct Control {
    phase: AtomicU8,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Control {
    pub fn phase(&self) -> Phase {
        let code = usize::from(self.phase.load(Ordering::Acquire));
        Phase::ALL[code.min(Phase::ALL.len() - 1)]
    }

    /// Registers a worker's waker; the worker is told of every later change.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        lock(&self.wakers).push(waker);
    }

    /// Moves to `phase` if that is further along than the current one, and wakes every loop.
    pub fn advance(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        self.wake_all();
    }

    /// Wakes every loop, so that each looks at the phase and the published site.
    pub fn wake_all(&self) {
        for waker in lock(&self.wakers).iter() {
            if let Err(e) = waker.wake() {
                tracing::error!(error = %e, "cannot wake an event loop");
            }
        }
    }
}
