//! What the supervisor and the workers share: the phase of the server's life ([`Phase`]), the
//! site a reload publishes ([`Published`]), and how to wake every event loop when either changes
//! ([`Control`]).
//!
//! The supervisor turns signals, deadlines and reloads into changes here; each worker reads them
//! when its `Waker` fires. Nothing on a request's path takes a lock here; the probes'
//! [`Switches`] are read there with a plain atomic load, and written by an admin listener's `POST`
//! to a switch.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mio::Waker;

use crate::answers::Probe;
use crate::site::Site;

#[derive(Default)]
pub struct Control {
    phase: AtomicU8,
    wakers: Mutex<Vec<Arc<Waker>>>,
    switches: Switches,
}

impl Control {
    pub fn phase(&self) -> Phase {
        let code = usize::from(self.phase.load(Ordering::Acquire));
        Phase::ALL[code.min(Phase::ALL.len() - 1)]
    }

    /// The probes' switches, shared by every worker.
    pub fn switches(&self) -> &Switches {
        &self.switches
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

/// The phases of the server's life. They only move forward, in this order.
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

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Serving,
        Phase::Unready,
        Phase::Draining,
        Phase::Abort,
    ];

    /// The readiness probe answers 200 only while serving.
    pub fn ready(self) -> bool {
        self == Phase::Serving
    }

    /// From the drain on, every answer says `Connection: close`.
    pub fn draining(self) -> bool {
        self >= Phase::Draining
    }
}

/// Whether each probe is switched on (`admin_switches`), shared by every worker: written by an
/// admin request, read with a plain load by every probe request. Both start on.
#[derive(Debug)]
pub struct Switches {
    health: AtomicBool,
    ready: AtomicBool,
}

impl Default for Switches {
    fn default() -> Switches {
        Switches {
            health: AtomicBool::new(true),
            ready: AtomicBool::new(true),
        }
    }
}

impl Switches {
    fn cell(&self, probe: Probe) -> &AtomicBool {
        match probe {
            Probe::Health => &self.health,
            Probe::Ready => &self.ready,
        }
    }

    pub fn enabled(&self, probe: Probe) -> bool {
        self.cell(probe).load(Ordering::Relaxed)
    }

    pub fn set(&self, probe: Probe, enabled: bool) {
        self.cell(probe).store(enabled, Ordering::Relaxed);
    }
}

/// The `Site` every event loop should serve, replaced whole by a reload. Each loop keeps its own
/// copy and compares generations when woken, so serving never takes this lock.
pub struct Published {
    site: Mutex<Arc<Site>>,
    generation: AtomicU64,
}

impl Published {
    pub fn new(site: Site) -> Published {
        Published {
            site: Mutex::new(Arc::new(site)),
            generation: AtomicU64::new(0),
        }
    }

    /// Replaces the site; the caller then wakes the loops.
    pub fn publish(&self, site: Site) {
        let mut current = lock(&self.site);
        *current = Arc::new(site);
        // Under the lock, so that `current` never pairs a new generation with an old site.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The current site and its generation, which every publication increments.
    pub fn current(&self) -> (u64, Arc<Site>) {
        let site = lock(&self.site);
        (self.generation.load(Ordering::Acquire), Arc::clone(&site))
    }
}

/// A panic elsewhere cannot leave the value half-updated (it is replaced whole): keep using it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
