//! The one piece of state the supervisor and the workers share: which phase of its life the
//! server is in, the configuration to serve (replaced on reload), and how to wake every event loop
//! when either changes.
//!
//! The supervisor (see `server`) turns signals and deadlines into changes here; each worker reads
//! them when its `Waker` fires. Nothing on a request's path touches this type.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

use crate::worker::Site;

/// Phases only move forward, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// The shutdown delay: serve as usual, but the readiness probe answers 503.
    Unready,
    /// Finish what was accepted, accept nothing new, then exit.
    Draining,
    /// Close everything now: the drain deadline passed, or a second signal came.
    Abort,
}

pub struct Control {
    phase: AtomicU8,
    wakers: Mutex<Vec<Arc<Waker>>>,
    site: Mutex<Arc<Site>>,
    site_generation: AtomicU64,
}

const PHASES: [Phase; 4] = [
    Phase::Serving,
    Phase::Unready,
    Phase::Draining,
    Phase::Abort,
];

impl Control {
    pub fn new(site: Arc<Site>) -> Control {
        Control {
            phase: AtomicU8::new(0),
            wakers: Mutex::new(Vec::new()),
            site: Mutex::new(site),
            site_generation: AtomicU64::new(0),
        }
    }

    pub fn phase(&self) -> Phase {
        let code = usize::from(self.phase.load(Ordering::Acquire));
        PHASES[code.min(PHASES.len() - 1)]
    }

    /// Registers a worker's waker; the worker is told of every later phase change.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        lock(&self.wakers).push(waker);
    }

    /// Moves to `phase` if that is further along than the current one, and wakes every loop.
    pub fn advance(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        self.wake_all();
    }

    /// Replaces the configuration every worker serves; each takes it on its next wake-up.
    pub fn publish(&self, site: Arc<Site>) {
        let mut current = lock(&self.site);
        *current = site;
        // Under the lock, so that `site` never pairs a new generation with an old site.
        self.site_generation.fetch_add(1, Ordering::AcqRel);
        drop(current);
        self.wake_all();
    }

    /// The current configuration and its generation, which every publication increments.
    pub fn site(&self) -> (u64, Arc<Site>) {
        let site = lock(&self.site);
        (
            self.site_generation.load(Ordering::Acquire),
            Arc::clone(&site),
        )
    }

    fn wake_all(&self) {
        for waker in lock(&self.wakers).iter() {
            if let Err(e) = waker.wake() {
                tracing::error!(error = %e, "cannot wake an event loop");
            }
        }
    }
}

/// A panic elsewhere cannot leave these values half-updated (each is replaced whole): keep using
/// them.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
