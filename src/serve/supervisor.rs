//! Starting and stopping: binds the listeners, starts one worker thread per event loop, and
//! supervises them from the main thread, where `signal-hook-mio` makes SIGTERM and SIGINT one more
//! event source of a `mio::Poll`.
//!
//! The first SIGTERM or SIGINT starts the shutdown: after `--shutdown-delay` (during which the
//! readiness probe fails) the drain, bounded by `--shutdown-timeout`; that deadline or a second
//! signal aborts it. SIGHUP reloads the configuration, and so does a change in its files with
//! `--watch` (their `config::watch::Watch` is one more source of the same `Poll`). The server's
//! outcome is the exit status `main` reports. Request handling is the workers' (see `worker`).

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::answers::Role;
use crate::config::watch::{Snapshot, Watch};
use crate::config::{default_listen_v4, Config, ConfigError};
use crate::log::{self, DroppedLines};
use crate::metrics::{Cause, Metrics, WorkerStats};
use crate::net::{self, BindError, ListenOptions};
use crate::serve::control::Control;
use crate::serve::control::{Phase, Published};
use crate::serve::worker::{Listener, Worker, WorkerEnd, WorkerOptions, ADMIN_CONNECTIONS};
use crate::site::Site;
use crate::sys;

const SIGNALS: Token = Token(0);
const WORKER_EXIT: Token = Token(1);
const WATCH: Token = Token(2);
/// How often the supervisor looks at the log writer's dropped-line count.
const DROPPED_LOG_CHECK: Duration = Duration::from_secs(10);

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
    /// The TLS settings cannot be served (a file missing or bad, or no TLS in this build).
    Tls(String),
    Io {
        what: &'static str,
        source: io::Error,
    },
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind(e) => e.fmt(f),
            ServerError::Tls(e) => f.write_str(e),
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for ServerError {}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> ServerError {
    move |source| ServerError::Io { what, source }
}

/// How the supervisor gets a fresh configuration on SIGHUP (the same sources as at start).
pub type Reload<'a> = &'a dyn Fn() -> Result<Config, ConfigError>;

/// Serves until a signal's drain completes (or is cut short).
/// `dropped_log_lines` is the log writer's count of lines it had to drop, for `/metrics` and a
/// periodic warning.
pub fn run(
    config: &Config,
    reload: Reload<'_>,
    dropped_log_lines: DroppedLines,
) -> Result<Outcome, ServerError> {
    let max_connections = connection_budget(config);
    let Bound {
        listeners,
        addrs,
        tls_addrs,
        admin_addr,
    } = bind(config)?;
    let tls = TlsLoader::new(config)?;
    let loaded_tls = tls.load(config).map_err(ServerError::Tls)?;
    let (poll, signals, exit_waker) = supervisor_poll()?;
    let control = Arc::new(Control::default());
    let stats: Vec<Arc<WorkerStats>> = (0..listeners.len()).map(|_| Arc::default()).collect();
    let metrics = Arc::new(Metrics::new(stats.clone(), dropped_log_lines));
    let mut site = Site::new(config);
    loaded_tls.install(&mut site, &metrics);
    let published = Arc::new(Published::new(site));
    let loaded = Snapshot::take(&config.files());
    metrics.reloads().applied(None, loaded.sha256());
    let (ended_tx, ended_rx) = mpsc::channel();
    let count = listeners.len();
    let mut workers = Vec::with_capacity(count);
    for (index, listeners) in listeners.into_iter().enumerate() {
        let options = WorkerOptions {
            index,
            count,
            max_connections: max_connections.div_ceil(count),
            stats: Arc::clone(&stats[index]),
            metrics: Arc::clone(&metrics),
        };
        let worker = Worker::new(
            listeners,
            options,
            Arc::clone(&control),
            Arc::clone(&published),
        )
        .map_err(io_error("cannot start an event loop"))?;
        workers.push(spawn(
            worker,
            index,
            ended_tx.clone(),
            Arc::clone(&exit_waker),
        )?);
    }
    // Watching before `listening` is said: a change made once the server is up is seen.
    let watch = watch_files(&poll, config, &loaded);
    let named: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    let tls_named: Vec<String> = tls_addrs.iter().map(SocketAddr::to_string).collect();
    tracing::info!(
        addr = named.first().map(String::as_str),
        addrs = named.join(", "),
        tls_addrs = (!tls_named.is_empty()).then(|| tls_named.join(", ")),
        admin_addr = admin_addr.map(tracing::field::display),
        workers = config.workers,
        max_connections,
        routes = config.routes.len(),
        "listening"
    );
    let mut supervisor = Supervisor {
        poll,
        signals,
        control,
        published,
        started: config,
        config: config.clone(),
        reload,
        tls,
        ended: ended_rx,
        running: workers.len(),
        delay_ends: None,
        drain_ends: None,
        metrics,
        dropped_reported: 0,
        next_drop_check: Instant::now() + DROPPED_LOG_CHECK,
        watch,
        loaded,
    };
    let outcome = supervisor.run();
    for handle in workers {
        let _ = handle.join();
    }
    outcome
}

/// Every worker's listeners, and the addresses they are bound to (a port 0 resolved).
struct Bound {
    /// For each worker, a listener on each traffic address, then one on the admin address.
    listeners: Vec<Vec<Listener>>,
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    admin_addr: Option<SocketAddr>,
}

/// Binds every configured address for every worker. The default address, `[::]`, falls back to
/// `0.0.0.0` on a host without IPv6; an address that was given is taken as given.
fn bind(config: &Config) -> Result<Bound, ServerError> {
    let mut per_worker: Vec<Vec<Listener>> = (0..config.workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(config.listen.len());
    let mut add = |listeners: Vec<TcpListener>, role: Role, tls: bool| {
        for (worker, socket) in per_worker.iter_mut().zip(listeners) {
            worker.push(Listener { socket, role, tls });
        }
    };
    for &addr in &config.listen {
        let listeners = match bind_address(config, addr) {
            Err(e) if !config.listen_given && no_ipv6(&e) => {
                let fallback = default_listen_v4();
                tracing::warn!(
                    addr = %addr,
                    error = %e.source,
                    fallback = %fallback,
                    "no IPv6 here; listening on IPv4 only"
                );
                bind_address(config, fallback)
            }
            other => other,
        }
        .map_err(ServerError::Bind)?;
        bound.push(local_addr(&listeners, addr));
        add(listeners, Role::Traffic, false);
    }
    let mut tls_bound = Vec::with_capacity(config.tls_listen.len());
    for &addr in &config.tls_listen {
        let listeners = bind_address(config, addr).map_err(ServerError::Bind)?;
        tls_bound.push(local_addr(&listeners, addr));
        add(listeners, Role::Traffic, true);
    }
    let admin_addr = match config.admin_listen {
        Some(addr) => {
            let listeners = bind_address(config, addr).map_err(ServerError::Bind)?;
            let local = local_addr(&listeners, addr);
            add(listeners, Role::Admin, false);
            Some(local)
        }
        None => None,
    };
    Ok(Bound {
        listeners: per_worker,
        addrs: bound,
        tls_addrs: tls_bound,
        admin_addr,
    })
}

/// The address a group of listeners is bound to: `asked`, its port resolved when it was 0.
fn local_addr(listeners: &[TcpListener], asked: SocketAddr) -> SocketAddr {
    listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(asked)
}

/// One listener per worker on `addr`.
fn bind_address(config: &Config, addr: SocketAddr) -> Result<Vec<TcpListener>, BindError> {
    let options = ListenOptions {
        addr,
        backlog: config.backlog,
        reuse_address: config.reuse_address,
        tcp_nodelay: config.tcp_nodelay,
    };
    net::bind_listeners(&options, config.workers)
}

/// The errors of binding `[::]` on a host whose kernel or interfaces have no IPv6.
fn no_ipv6(e: &BindError) -> bool {
    matches!(
        e.source.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

/// The supervisor's poll, with SIGTERM, SIGINT and SIGHUP as one event source and a waker that
/// workers use when they end.
fn supervisor_poll() -> Result<(Poll, Signals, Arc<Waker>), ServerError> {
    let poll = Poll::new().map_err(io_error("cannot create the supervisor's poll"))?;
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(io_error("cannot install signal handlers"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(io_error("cannot watch signals"))?;
    let exit_waker = Arc::new(
        Waker::new(poll.registry(), WORKER_EXIT).map_err(io_error("cannot create a waker"))?,
    );
    Ok((poll, signals, exit_waker))
}

/// Runs `worker` on a thread of its own, which reports its end on `ended` and wakes the
/// supervisor.
fn spawn(
    worker: Worker,
    index: usize,
    ended: mpsc::Sender<io::Result<WorkerEnd>>,
    exit_waker: Arc<Waker>,
) -> Result<JoinHandle<()>, ServerError> {
    std::thread::Builder::new()
        .name(format!("worker-{index}"))
        .spawn(move || {
            // The result travels by channel, not by `join`, so that the supervisor learns of it
            // the moment it is sent: `JoinHandle::is_finished` turns true a little later, and a
            // wake-up that saw it false would sleep until the deadline.
            // A panic (only possible in builds that unwind) still reports, so the supervisor
            // never waits on a loop that is gone.
            log::batch_this_thread();
            let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()))
                .unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
            log::flush_batch();
            let _ = ended.send(end);
            let _ = exit_waker.wake();
        })
        .map_err(io_error("cannot start a worker thread"))
}

/// Raises the descriptor limit and returns how many connections it can hold, warning when that
/// is fewer than configured. Each worker's listeners and the admin connections it may hold (which
/// the limit does not count) are kept out of it.
fn connection_budget(config: &Config) -> usize {
    let configured = config.max_connections;
    let admin = config
        .admin_listen
        .map_or(0, |_| 1 + ADMIN_CONNECTIONS as u64);
    let beside = (config.listen.len() + config.tls_listen.len()) as u64 + admin;
    match sys::raise_fd_limit() {
        Ok(limit) => {
            let reserved = net::reserved_fds(config.workers, beside);
            let usable = usize::try_from(limit.saturating_sub(reserved))
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

/// The main thread's loop: signals in, phase changes and reloads out, until every worker ended.
struct Supervisor<'a> {
    poll: Poll,
    signals: Signals,
    control: Arc<Control>,
    published: Arc<Published>,
    /// The configuration the server started with: what the settings a reload cannot change are.
    started: &'a Config,
    /// The latest configuration loaded, for the shutdown delay and timeout.
    config: Config,
    reload: Reload<'a>,
    tls: TlsLoader,
    ended: mpsc::Receiver<io::Result<WorkerEnd>>,
    running: usize,
    /// When the shutdown delay ends and the drain begins.
    delay_ends: Option<Instant>,
    /// When the drain is cut short.
    drain_ends: Option<Instant>,
    metrics: Arc<Metrics>,
    /// Dropped log lines already reported, and when to look again.
    dropped_reported: u64,
    next_drop_check: Instant,
    /// With `watch`: what follows the configuration's files.
    watch: Option<Watch>,
    /// The configuration's files as the configuration in force was loaded from them.
    loaded: Snapshot,
}

impl Supervisor<'_> {
    fn run(&mut self) -> Result<Outcome, ServerError> {
        let mut events = Events::with_capacity(8);
        let mut forced = 0;
        let mut failure = None;
        while self.running > 0 {
            if let Err(e) = self.wait(&mut events) {
                self.control.advance(Phase::Abort);
                failure = Some(e);
                break;
            }
            let now = Instant::now();
            if let Some(watch) = self.watch.as_mut() {
                if events.iter().any(|e| e.token() == WATCH) {
                    watch.on_readable(now);
                }
            }
            let pending: Vec<i32> = self.signals.pending().collect();
            for signal in pending {
                self.on_signal(signal);
            }
            self.on_time(Instant::now());
            self.collect_ends(&mut forced, &mut failure);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        self.report_dropped_log_lines();
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

    /// Waits for a signal, a worker's end, or the next deadline of the supervisor's own.
    fn wait(&mut self, events: &mut Events) -> Result<(), ServerError> {
        let watch = self.watch.as_ref().and_then(Watch::deadline);
        let next = [
            self.delay_ends,
            self.drain_ends,
            Some(self.next_drop_check),
            watch,
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
        match self.poll.poll(events, timeout) {
            Err(e) if e.kind() != ErrorKind::Interrupted => Err(ServerError::Io {
                what: "supervisor poll failed",
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Takes in the ends the workers reported: the connections a forced drain closed, or the
    /// error that ended a loop.
    fn collect_ends(&mut self, forced: &mut usize, failure: &mut Option<ServerError>) {
        for end in self.ended.try_iter() {
            self.running -= 1;
            match end {
                Ok(end) => *forced += end.forced,
                Err(e) => {
                    *failure = Some(ServerError::Io {
                        what: "event loop failed",
                        source: e,
                    })
                }
            }
            if self.control.phase() < Phase::Draining {
                // A loop ended while serving: stop the others rather than serve on at reduced
                // size.
                self.control.advance(Phase::Abort);
            }
        }
    }

    fn on_signal(&mut self, signal: i32) {
        let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
        if signal == SIGHUP {
            let snapshot = Snapshot::take(&self.config.files());
            self.reload(Cause::Signal, snapshot);
            return;
        }
        let now = Instant::now();
        if self.control.phase() != Phase::Serving {
            tracing::warn!(signal = name, "second signal; closing every connection now");
            self.control.advance(Phase::Abort);
        } else if self.config.shutdown_delay > Duration::ZERO {
            tracing::info!(
                signal = name,
                delay_s = self.config.shutdown_delay.as_secs_f64(),
                "signal received; readiness now fails, draining after the delay"
            );
            self.delay_ends = Some(now + self.config.shutdown_delay);
            self.control.advance(Phase::Unready);
        } else {
            tracing::info!(signal = name, "signal received");
            self.start_drain(now);
        }
    }

    fn on_time(&mut self, now: Instant) {
        if let Some(snapshot) = self.watch.as_mut().and_then(|w| w.due(now)) {
            self.reload(Cause::Watch, snapshot);
        }
        if self.next_drop_check <= now {
            self.next_drop_check = now + DROPPED_LOG_CHECK;
            self.report_dropped_log_lines();
        }
        if self.delay_ends.is_some_and(|at| at <= now) {
            self.delay_ends = None;
            self.start_drain(now);
        }
        if self.drain_ends.is_some_and(|at| at <= now) {
            self.drain_ends = None;
            self.control.advance(Phase::Abort);
        }
    }

    /// Says in the log how many lines the log lost since the last report, if any (this line may
    /// be lost too while the output is stalled; `/metrics` has the count either way).
    fn report_dropped_log_lines(&mut self) {
        let dropped = self.metrics.dropped_log_lines();
        if dropped > self.dropped_reported {
            tracing::warn!(
                dropped = dropped - self.dropped_reported,
                total = dropped,
                "log lines dropped: the log output is not keeping up"
            );
            self.dropped_reported = dropped;
        }
    }

    fn start_drain(&mut self, now: Instant) {
        tracing::info!(
            timeout_s = self.config.shutdown_timeout.as_secs_f64(),
            "draining"
        );
        self.drain_ends = Some(now + self.config.shutdown_timeout);
        self.control.advance(Phase::Draining);
    }

    /// SIGHUP, or a change in the files with `watch`: a valid new configuration replaces the
    /// routes, limits and timeouts for new requests; an invalid one is refused and the old one
    /// stays. Sockets are not reopened. `snapshot` holds the files as read just before the load.
    fn reload(&mut self, cause: Cause, snapshot: Snapshot) {
        let changed: Vec<String> = snapshot
            .changed_since(&self.loaded)
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let loaded = (self.reload)()
            .map_err(|e| e.to_string())
            .and_then(|config| Ok((self.tls.load(&config)?, config)));
        let (tls, mut config) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.metrics.reloads().refused(cause);
                tracing::error!(
                    cause = cause.label(),
                    error = %e,
                    "configuration refused"
                );
                if let Some(watch) = self.watch.as_mut() {
                    watch.follow(self.config.files(), snapshot, Instant::now());
                }
                return;
            }
        };
        let fixed = [
            ("listen", config.listen != self.started.listen),
            ("tls_listen", config.tls_listen != self.started.tls_listen),
            (
                "admin_listen",
                config.admin_listen != self.started.admin_listen,
            ),
            ("workers", config.workers != self.started.workers),
            ("backlog", config.backlog != self.started.backlog),
            (
                "reuse_address",
                config.reuse_address != self.started.reuse_address,
            ),
            (
                "max_connections",
                config.max_connections != self.started.max_connections,
            ),
            (
                "tcp_nodelay",
                config.tcp_nodelay != self.started.tcp_nodelay,
            ),
            ("log_format", config.log_format != self.started.log_format),
        ];
        for (key, _) in fixed.iter().filter(|(_, changed)| *changed) {
            tracing::warn!(
                key,
                "this setting changes only on restart; reload ignores it"
            );
        }
        // Which paths the traffic ports route follows the listeners that are open.
        config.admin_listen = self.started.admin_listen;
        // New handshakes take the certificates read now; established connections keep theirs.
        let mut site = Site::new(&config);
        tls.install(&mut site, &self.metrics);
        // Counted first: whoever sees the new answers sees the reload in /metrics too.
        let loaded = snapshot.extended(&config.files());
        self.metrics.reloads().applied(Some(cause), loaded.sha256());
        self.published.publish(site);
        self.control.wake_all();
        tracing::info!(
            cause = cause.label(),
            changed = changed.join(", "),
            routes = config.routes.len(),
            "configuration reloaded"
        );
        let watching = self.config.watch;
        self.config = config;
        self.loaded = loaded;
        let now = Instant::now();
        match self.watch.as_mut() {
            Some(watch) if self.config.watch == watching => {
                watch.follow(self.config.files(), self.loaded.clone(), now)
            }
            _ => {
                // The old watch's registration goes before the new one takes its token.
                self.watch = None;
                self.watch = watch_files(&self.poll, &self.config, &self.loaded);
            }
        }
    }
}

/// What follows `config`'s files, which `loaded` holds as loaded, when its `watch` is on.
fn watch_files(poll: &Poll, config: &Config, loaded: &Snapshot) -> Option<Watch> {
    config.watch.enabled.then(|| {
        Watch::new(
            poll.registry(),
            WATCH,
            config.files(),
            loaded.clone(),
            config.watch,
            Instant::now(),
        )
    })
}

/// Loads the TLS settings into each `Site` when there are TLS listeners, with the ticket keys and
/// session cache (and a self-signed certificate, once made) kept from one load to the next.
struct TlsLoader {
    #[cfg(feature = "tls")]
    shared: Option<crate::tls::Shared>,
}

impl TlsLoader {
    fn new(config: &Config) -> Result<TlsLoader, ServerError> {
        if config.tls_listen.is_empty() {
            return Ok(TlsLoader {
                #[cfg(feature = "tls")]
                shared: None,
            });
        }
        #[cfg(feature = "tls")]
        return Ok(TlsLoader {
            shared: Some(crate::tls::Shared::new().map_err(|e| ServerError::Tls(e.0))?),
        });
        #[cfg(not(feature = "tls"))]
        Err(ServerError::Tls(
            "tls_listen: this build has no TLS (cargo feature `tls`)".into(),
        ))
    }

    /// Reads the certificate, key and CA files; an error names the file at fault.
    fn load(&self, config: &Config) -> Result<LoadedTls, String> {
        #[cfg(feature = "tls")]
        if let Some(shared) = &self.shared {
            let tls = crate::tls::Tls::load(&config.tls, shared).map_err(|e| e.0)?;
            return Ok(LoadedTls {
                served: tls
                    .served
                    .into_iter()
                    .map(|s| (s.name, s.not_after))
                    .collect(),
                config: Some(tls.config),
            });
        }
        let _ = config;
        Ok(LoadedTls::default())
    }
}

/// One load of the TLS settings, to serve with the `Site` of the same load.
#[derive(Default)]
struct LoadedTls {
    #[cfg(feature = "tls")]
    config: Option<Arc<rustls::ServerConfig>>,
    /// Each certificate's name and expiry, for the metrics.
    served: Vec<(String, i64)>,
}

impl LoadedTls {
    fn install(self, site: &mut Site, metrics: &Metrics) {
        #[cfg(feature = "tls")]
        {
            site.tls = self.config;
        }
        #[cfg(not(feature = "tls"))]
        let _ = site;
        metrics.set_certificates(self.served);
    }
}
