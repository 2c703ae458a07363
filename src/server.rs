//! Starting and stopping: binds the listeners, starts one worker thread per event loop, and
//! supervises them from the main thread, where `signal-hook-mio` makes SIGTERM and SIGINT one more
//! event source of a `mio::Poll`.
//!
//! The first signal starts the drain and its deadline (`--shutdown-timeout`); the deadline or a
//! second signal aborts it. The server's outcome is the exit status `main` reports. Request
//! handling is the workers' (see `worker`).

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::Config;
use crate::conn::Settings;
use crate::control::{Control, Phase};
use crate::http::Limits;
use crate::net::{self, BindError, ListenOptions, RESERVED_FDS};
use crate::response::Responses;
use crate::worker::{Worker, WorkerEnd, WorkerOptions};

const SIGNALS: Token = Token(0);
const WORKER_EXIT: Token = Token(1);

/// How the server ended, when it ended as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every connection finished before the deadline.
    Drained,
    /// The deadline or a second signal closed this many connections.
    Forced { connections: usize },
}

#[derive(Debug)]
pub enum ServerError {
    Bind(BindError),
    Io {
        what: &'static str,
        source: io::Error,
    },
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind(e) => e.fmt(f),
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for ServerError {}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> ServerError {
    move |source| ServerError::Io { what, source }
}

/// Serves until a signal's drain completes (or is cut short).
pub fn run(config: &Config) -> Result<Outcome, ServerError> {
    let max_connections = connection_budget(config.max_connections);
    let listeners = net::bind_listeners(
        &ListenOptions {
            addr: config.listen,
            backlog: config.backlog,
            reuse_address: config.reuse_address,
        },
        config.workers,
    )
    .map_err(ServerError::Bind)?;
    let addr = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(config.listen);

    let mut poll = Poll::new().map_err(io_error("cannot create the supervisor's poll"))?;
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(io_error("cannot install signal handlers"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(io_error("cannot watch signals"))?;
    let exit_waker = Arc::new(
        Waker::new(poll.registry(), WORKER_EXIT).map_err(io_error("cannot create a waker"))?,
    );

    let control = Arc::new(Control::default());
    let settings = settings(config);
    let responses = Responses::new(&config.routes);
    let count = listeners.len();
    let (ended_tx, ended_rx) = mpsc::channel();
    let mut workers = Vec::with_capacity(count);
    for (index, listener) in listeners.into_iter().enumerate() {
        let options = WorkerOptions {
            index,
            count,
            responses: responses.clone(),
            settings,
            max_connections: max_connections.div_ceil(count),
            tcp_nodelay: config.tcp_nodelay,
        };
        let worker = Worker::new(listener, options, Arc::clone(&control))
            .map_err(io_error("cannot start an event loop"))?;
        let exit_waker = Arc::clone(&exit_waker);
        let ended = ended_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                // The result travels by channel, not by `join`, so that the supervisor learns of it
                // the moment it is sent: `JoinHandle::is_finished` turns true a little later,
                // and a wake-up that saw it false would sleep until the deadline.
                // A panic (only possible in builds that unwind) still reports, so the supervisor
                // never waits on a loop that is gone.
                let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()))
                    .unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
                let _ = ended.send(end);
                let _ = exit_waker.wake();
            })
            .map_err(io_error("cannot start a worker thread"))?;
        workers.push(handle);
    }
    announce(addr, config, max_connections);
    supervise(
        &mut poll,
        &mut signals,
        &control,
        config,
        (workers, ended_rx),
    )
}

fn announce(addr: SocketAddr, config: &Config, max_connections: usize) {
    tracing::info!(
        addr = %addr,
        workers = config.workers,
        max_connections,
        routes = config.routes.len(),
        "listening"
    );
}

/// Raises the descriptor limit and returns how many connections it can hold, warning when that
/// is fewer than configured.
fn connection_budget(configured: usize) -> usize {
    match net::raise_fd_limit() {
        Ok(limit) => {
            let usable = usize::try_from(limit.saturating_sub(RESERVED_FDS))
                .unwrap_or(usize::MAX)
                .max(1);
            if usable < configured {
                tracing::warn!(
                    configured,
                    usable,
                    fd_limit = limit,
                    "RLIMIT_NOFILE cannot cover max_connections; serving at most `usable`"
                );
            }
            configured.min(usable)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE");
            configured
        }
    }
}

fn settings(config: &Config) -> Settings {
    Settings {
        limits: Limits {
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
        },
        read_timeout: config.read_timeout,
        idle_timeout: config.idle_timeout,
        write_timeout: config.write_timeout,
        tcp_cork: config.tcp_cork,
        access_log: config.access_log,
    }
}

fn supervise(
    poll: &mut Poll,
    signals: &mut Signals,
    control: &Control,
    config: &Config,
    (workers, ended): (Vec<JoinHandle<()>>, mpsc::Receiver<io::Result<WorkerEnd>>),
) -> Result<Outcome, ServerError> {
    let mut events = Events::with_capacity(8);
    let mut deadline: Option<Instant> = None;
    let mut forced = 0;
    let mut failure = None;
    let mut running = workers.len();
    while running > 0 {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                control.advance(Phase::Abort);
                failure = Some(ServerError::Io {
                    what: "supervisor poll failed",
                    source: e,
                });
                break;
            }
        }
        for signal in signals.pending() {
            let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
            if deadline.is_none() {
                tracing::info!(
                    signal = name,
                    timeout_s = config.shutdown_timeout.as_secs_f64(),
                    "signal received; draining"
                );
                deadline = Some(Instant::now() + config.shutdown_timeout);
                control.advance(Phase::Draining);
            } else {
                tracing::warn!(signal = name, "second signal; closing every connection now");
                control.advance(Phase::Abort);
            }
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            control.advance(Phase::Abort);
        }
        for end in ended.try_iter() {
            running -= 1;
            match end {
                Ok(end) => forced += end.forced,
                Err(e) => {
                    failure = Some(ServerError::Io {
                        what: "event loop failed",
                        source: e,
                    })
                }
            }
            if control.phase() == Phase::Serving {
                // A loop ended while serving: stop the others rather than serve on at reduced size.
                control.advance(Phase::Abort);
            }
        }
    }
    for handle in workers {
        let _ = handle.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if forced > 0 {
        tracing::warn!(connections = forced, "shutdown forced");
        Ok(Outcome::Forced {
            connections: forced,
        })
    } else {
        tracing::info!("shutdown complete");
        Ok(Outcome::Drained)
    }
}
