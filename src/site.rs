//! What is served and how, as inert facts every layer above may read: the prebuilt answers, the
//! per-connection settings and limits ([`Site`], built from a [`Config`]), the shutdown [`Phase`],
//! and the cell through which a reload publishes a new `Site` to the event loops.
//!
//! It decides nothing and does no I/O; it imports only `config` and `response`, so that the
//! request path, the connections and the counters can all share these types without importing
//! one another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::answers::Responses;
use crate::config::{Config, RequestIdMode};
use crate::http::Limits;

/// Per-connection settings taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub limits: Limits,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub tcp_cork: bool,
    pub access_log: bool,
    /// Whether requests to the built-in endpoints are logged too.
    pub log_health_checks: bool,
    pub request_id: RequestIdMode,
}

/// Everything a reload can change: the answers and the per-connection settings.
#[derive(Debug, Clone)]
pub struct Site {
    pub responses: Responses,
    pub settings: Settings,
}

impl Site {
    pub fn new(config: &Config) -> Site {
        Site {
            responses: Responses::new(config),
            settings: Settings {
                limits: Limits {
                    max_header_bytes: config.max_header_bytes,
                    max_body_bytes: config.max_body_bytes,
                },
                read_timeout: config.read_timeout,
                idle_timeout: config.idle_timeout,
                write_timeout: config.write_timeout,
                tcp_cork: config.tcp_cork,
                access_log: config.access_log,
                log_health_checks: config.endpoints.log_health_checks,
                request_id: config.request_id,
            },
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
