//! One event loop: a `mio::Poll` (epoll, edge-triggered), a listener per configured address, a
//! `Slab` of connections,
//! their deadlines, and its own copy of what it serves (the `Site`: prebuilt responses and
//! per-connection settings), replaced whole when a reload publishes a new one.
//!
//! The loop accepts until a listener would block, drives each ready connection (see
//! `serve::connection`), fires due deadlines, tidies memory after connections close, and follows
//! the phase in `control` when its waker fires: a drain accepts what the kernel has queued, closes
//! the listeners, serves what is in flight, and returns when the last connection is gone.
//! Starting workers and handling signals is `serve::supervisor`'s job.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::answers::template::TlsValues;
use crate::answers::Role;
use crate::http::status::Rejection;
use crate::log;
use crate::log::json::PassTime;
use crate::metrics::{ErrorClass, Metrics, WorkerStats};
use crate::net::is_resource_exhaustion;
use crate::serve::connection::{CloseReason, Connection, Scratch};
use crate::serve::control::Control;
use crate::serve::control::{Phase, Published};
use crate::serve::exchange::{self, Pass, RequestIds};
use crate::serve::memory::{self, Tidy};
use crate::serve::timer::{Deadlines, LastMoment};
use crate::site::Site;
use crate::sys;

const WAKER: Token = Token(usize::MAX);
/// Listener `i` has the token `FIRST_LISTENER - i`: no connection's token comes near (its low 32
/// bits are a Slab slot, far below 2^32).
const FIRST_LISTENER: usize = usize::MAX - 1;

fn listener_token(index: usize) -> Token {
    Token(FIRST_LISTENER - index)
}
/// How long accepting pauses when the process is out of descriptors or memory: long enough not
/// to spin, short enough that a freed descriptor is used soon.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Events taken from epoll per wake-up.
const EVENTS_PER_POLL: usize = 1024;
/// A connection's token carries its Slab slot in the low 32 bits and the low 32 bits of its id in
/// the high bits: a readiness event for a slot that was freed and reused within the same batch
/// then no longer matches, and is dropped instead of reaching the new connection.
fn token_for(slot: usize, conn_tag: u32) -> Token {
    Token((slot & 0xFFFF_FFFF) | ((conn_tag as usize) << 32))
}

fn split_token(token: Token) -> (usize, u32) {
    (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32)
}

/// How a worker's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerEnd {
    /// Connections still open when the drain was cut short.
    pub forced: usize,
}

/// Admin connections a worker holds at most. They are not counted against `max_connections`,
/// so that probes still get in while the traffic fills the limit.
pub const ADMIN_CONNECTIONS: usize = 64;

/// A listening socket and the kind of connections it takes.
pub struct Listener {
    pub socket: TcpListener,
    pub role: Role,
    /// Its connections speak TLS.
    pub tls: bool,
}

pub struct Worker {
    poll: Poll,
    /// Indexed as their tokens are; `None` once closed (the traffic ones as the drain begins, the
    /// admin one when no traffic connection is left).
    listeners: Vec<Option<Listener>>,
    conns: Slab<Connection>,
    /// How many of `conns` came in on the admin listener.
    admin_conns: usize,
    tidy: Tidy,
    deadlines: Deadlines,
    site: Site,
    site_generation: u64,
    published: Arc<Published>,
    max_connections: usize,
    control: Arc<Control>,
    scratch: Scratch,
    /// The phase as this loop last followed it.
    phase: Phase,
    /// Set while accepting is paused for lack of descriptors or memory.
    accept_paused_until: Option<Instant>,
    /// Logged once when they begin and once when they end, never per connection.
    out_of_resources: Episode,
    at_connection_limit: Episode,
    stats: Arc<WorkerStats>,
    metrics: Arc<Metrics>,
    request_ids: RequestIds,
    next_id: u64,
    id_stride: u64,
    last_moment: LastMoment,
}

pub struct WorkerOptions {
    pub index: usize,
    pub count: usize,
    pub max_connections: usize,
    pub stats: Arc<WorkerStats>,
    pub metrics: Arc<Metrics>,
}

/// A condition that can last for many events (out of descriptors, at the connection limit),
/// remembered so that it is logged when it begins and when it ends, not at every event.
#[derive(Debug, Default)]
struct Episode {
    since: Option<Instant>,
    events: u64,
}

impl Episode {
    /// Counts one occurrence; true if it starts a new episode.
    fn occur(&mut self, now: Instant) -> bool {
        let starts = self.since.is_none();
        self.since.get_or_insert(now);
        self.events += 1;
        starts
    }

    /// Ends the episode, if one is under way: how long it lasted and how many occurrences it had.
    fn end(&mut self, now: Instant) -> Option<(Duration, u64)> {
        let since = self.since.take()?;
        let events = std::mem::take(&mut self.events);
        Some((now.saturating_duration_since(since), events))
    }
}

impl Worker {
    pub fn new(
        mut listeners: Vec<Listener>,
        options: WorkerOptions,
        control: Arc<Control>,
        published: Arc<Published>,
    ) -> io::Result<Worker> {
        let (site_generation, site) = published.current();
        let poll = Poll::new()?;
        for (index, listener) in listeners.iter_mut().enumerate() {
            poll.registry().register(
                &mut listener.socket,
                listener_token(index),
                Interest::READABLE,
            )?;
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        control.add_waker(waker);
        Ok(Worker {
            poll,
            listeners: listeners.into_iter().map(Some).collect(),
            conns: Slab::with_capacity(options.max_connections.min(1024)),
            admin_conns: 0,
            tidy: Tidy::new(std::mem::size_of::<Connection>()),
            deadlines: Deadlines::default(),
            site: Site::clone(&site),
            site_generation,
            published,
            max_connections: options.max_connections,
            control,
            scratch: Scratch::new(),
            phase: Phase::Serving,
            accept_paused_until: None,
            out_of_resources: Episode::default(),
            at_connection_limit: Episode::default(),
            stats: options.stats,
            metrics: options.metrics,
            request_ids: RequestIds::new(),
            // Ids interleave across workers so that each is unique for the process's lifetime.
            next_id: options.index as u64 + 1,
            id_stride: options.count as u64,
            last_moment: LastMoment::new(Instant::now()),
        })
    }

    pub fn run(mut self) -> io::Result<WorkerEnd> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        // A phase change may have happened before the waker was registered.
        self.follow_phase(Instant::now());
        loop {
            if self.control.phase() == Phase::Abort {
                return Ok(self.abort());
            }
            if self.phase.draining() {
                if self.conns.len() == self.admin_conns {
                    self.close_listeners(Role::Admin);
                }
                if self.conns.is_empty() {
                    return Ok(WorkerEnd { forced: 0 });
                }
            }
            let now = Instant::now();
            let log_due = log::flush_batch_if_due(now);
            let timeout = self.poll_timeout(now, log_due);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            let wall_now = SystemTime::now();
            self.site.responses.stamp(wall_now);
            let _lines_at = PassTime::start(wall_now);
            for event in events.iter() {
                match event.token() {
                    WAKER => self.follow_phase(now),
                    token => match self.listener_index(token) {
                        Some(index) => {
                            self.accept_from(index, now);
                        }
                        None => self.on_ready(event, now),
                    },
                }
            }
            if self.accept_paused_until.is_some_and(|until| until <= now) {
                self.accept_paused_until = None;
                self.accept_all(now);
            }
            self.expire_due(now);
            if let Some(flood_over) = self.tidy.start(now, self.conns.len()) {
                self.tidy_memory(flood_over, now);
            }
        }
    }

    /// Gives back what connections that came and went left behind. Their buffers, freed, stay
    /// resident in the allocator's arenas until trimmed; `malloc_trim` returns those pages (a few
    /// microseconds). After a flood (slowloris, a burst of clients), once the connections hold a
    /// quarter of their high-water mark or less, the Slab and the deadline heap shrink too.
    /// Without this the process would keep the RSS of its largest attack for good.
    fn tidy_memory(&mut self, flood_over: bool, now: Instant) {
        let slab_capacity = self.conns.capacity();
        if flood_over {
            self.shrink_after_a_flood(now);
        }
        memory::return_free_pages();
        if flood_over {
            tracing::info!(
                high_water_bytes = self.tidy.high_water(),
                held_bytes = self.tidy.held_bytes(self.conns.len()),
                connections = self.conns.len(),
                slab_capacity,
                slab_capacity_now = self.conns.capacity(),
                "flood over; memory released"
            );
            self.tidy.released(self.conns.len());
        }
    }

    fn shrink_after_a_flood(&mut self, now: Instant) {
        // Connections accepted as the flood ended took its freed slots, high in the Slab, and
        // would hold it at its high-water size. Move them down: each gets a new token and a new
        // deadline entry (its old entry no longer matches its slot and is dropped below).
        let registry = self.poll.registry();
        let mut moved = Vec::new();
        self.conns.compact(|conn, _, to| {
            let token = token_for(to, conn.tag());
            let interest = conn.wanted_interest();
            match registry.reregister(conn.socket_mut(), token, interest) {
                Ok(()) => {
                    conn.registered(interest);
                    conn.moved();
                    moved.push(to);
                    true
                }
                Err(e) => {
                    tracing::debug!(conn = conn.id, error = %e, "cannot move a connection");
                    false
                }
            }
        });
        for slot in moved {
            self.settle(slot, None, now);
        }
        // Every connection that came and went in the last timeout left a stale entry behind.
        let conns = &self.conns;
        self.deadlines.keep_only(|entry| {
            conns
                .get(entry.slot as usize)
                .is_some_and(|conn| conn.is_armed_with(entry))
        });
    }

    /// Takes a finished connection out of the Slab (dropping it closes its socket).
    fn remove(&mut self, slot: usize, now: Instant) -> Connection {
        let conn = self.conns.remove(slot);
        if conn.role() == Role::Admin {
            self.admin_conns -= 1;
        }
        self.tidy.closed(conn.buffered_bytes(), now);
        conn
    }

    /// Until the next deadline, the end of an accept pause, or the log batch's hand-over.
    fn poll_timeout(&self, now: Instant, log_due: Option<Instant>) -> Option<Duration> {
        let next = [
            self.deadlines.next(),
            self.accept_paused_until,
            self.tidy.due(),
            log_due,
        ]
        .into_iter()
        .flatten()
        .min();
        // Round up to whole milliseconds (epoll's unit) so that a deadline a few microseconds
        // away does not turn into a zero timeout and a busy loop.
        next.map(|at| at.saturating_duration_since(now) + Duration::from_micros(999))
    }

    /// The listener a token is for, if it is one.
    fn listener_index(&self, token: Token) -> Option<usize> {
        let index = FIRST_LISTENER.checked_sub(token.0)?;
        (index < self.listeners.len()).then_some(index)
    }

    fn accept_all(&mut self, now: Instant) {
        for index in 0..self.listeners.len() {
            if !self.accept_from(index, now) {
                return;
            }
        }
    }

    /// Accepts from listener `index` until it would block. False when accepting is paused.
    fn accept_from(&mut self, index: usize, now: Instant) -> bool {
        if self.accept_paused_until.is_some() {
            return false;
        }
        loop {
            let Some(listener) = self.listeners.get(index).and_then(Option::as_ref) else {
                return true;
            };
            let (role, tls) = (listener.role, listener.tls);
            match listener.socket.accept() {
                Ok((socket, peer)) => {
                    if let Some((lasted, failures)) = self.out_of_resources.end(now) {
                        tracing::info!(
                            lasted_ms = lasted.as_millis() as u64,
                            failures,
                            "accepting again"
                        );
                    }
                    self.admit(socket, peer, role, tls, now)
                }
                // The queue is empty; the next connection is a new edge.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    // With edge triggering no new event comes for connections already queued,
                    // so retry on a timer; retrying now would spin.
                    self.stats.error(ErrorClass::AcceptExhausted);
                    if self.out_of_resources.occur(now) {
                        tracing::warn!(
                            error = %e,
                            errno = e.raw_os_error(),
                            open = self.conns.len(),
                            retry_ms = ACCEPT_BACKOFF.as_millis() as u64,
                            "accept failed for lack of resources; retrying on a timer"
                        );
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return false;
                }
                // A connection reset while queued, and the like: it concerns that client only.
                Err(e) => {
                    self.stats.error(ErrorClass::Accept);
                    tracing::debug!(error = %e, errno = e.raw_os_error(), "accept failed");
                }
            }
        }
    }

    fn admit(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        role: Role,
        tls: bool,
        now: Instant,
    ) {
        let conn_id = self.next_id;
        self.next_id += self.id_stride;
        self.stats.accepted.add(1);
        let at_limit = match role {
            Role::Traffic => self.conns.len() - self.admin_conns >= self.max_connections,
            Role::Admin => self.admin_conns >= ADMIN_CONNECTIONS,
        };
        if at_limit {
            // A TLS client would take a plain 503 for a broken handshake: it gets the close alone.
            if !tls {
                self.reject_at_limit(&mut socket, conn_id, peer, now);
            }
            return;
        }
        if let Some((lasted, rejected)) = self.at_connection_limit.end(now) {
            tracing::info!(
                lasted_ms = lasted.as_millis() as u64,
                rejected,
                "below the connection limit again"
            );
        }
        tracing::debug!(conn = conn_id, remote_addr = %peer, "accept");
        let at = self.last_moment.of(now);
        let conn = Connection::new(conn_id, socket, peer, role, &self.site.settings, at);
        #[cfg(feature = "tls")]
        let conn = if tls {
            let session = self
                .site
                .tls
                .as_ref()
                .map(|config| crate::tls::Session::new(std::sync::Arc::clone(config)));
            match session {
                Some(Ok(session)) => conn.with_tls(session),
                Some(Err(e)) => {
                    tracing::warn!(conn = conn_id, error = %e, "cannot start a TLS session");
                    return;
                }
                None => {
                    tracing::warn!(conn = conn_id, "a TLS listener without a TLS configuration");
                    return;
                }
            }
        } else {
            conn
        };
        let slot = self.conns.insert(conn);
        if role == Role::Admin {
            self.admin_conns += 1;
        }
        self.stats.active.set(self.conns.len() as u64);
        // Read at once, before any registration: a client usually sends its request right behind
        // the handshake, and a connection answered and closed now never costs an epoll_ctl (one
        // that is not done is registered by `settle`).
        self.drive(slot, now, Connection::drive);
    }

    /// Past the connection limit: a best-effort 503 in one non-blocking write, then close.
    fn reject_at_limit(
        &mut self,
        socket: &mut TcpStream,
        conn_id: u64,
        peer: SocketAddr,
        now: Instant,
    ) {
        let mut out = Vec::new();
        exchange::reject_connection(
            &self.site.responses,
            &self.stats,
            conn_id,
            peer,
            &TlsValues::default(),
            Rejection::ServiceUnavailable,
            &mut out,
        );
        // Not held for the FIN (`last` false): the request is never read, so the close resets
        // the connection, and a reset drops whatever the kernel still holds.
        let _ = sys::send(socket, &out, false);
        if self.at_connection_limit.occur(now) {
            tracing::warn!(
                limit = self.max_connections,
                "connection limit reached; answering 503"
            );
        }
        tracing::debug!(conn = conn_id, remote_addr = %peer, "rejected at the connection limit");
    }

    fn on_ready(&mut self, event: &mio::event::Event, now: Instant) {
        let (slot, conn_tag) = split_token(event.token());
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.tag() != conn_tag {
            return;
        }
        if event.is_readable() || event.is_read_closed() {
            conn.mark_readable(event.is_read_closed());
        }
        self.drive(slot, now, Connection::drive);
    }

    /// Runs `step` (`Connection::drive` or `Connection::expire`) on the connection in `slot`,
    /// then settles it.
    fn drive(
        &mut self,
        slot: usize,
        now: Instant,
        step: fn(&mut Connection, &Pass<'_>, &mut Scratch) -> Option<CloseReason>,
    ) {
        let moment = self.last_moment.of(now);
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let pass = Pass {
            site: &self.site,
            phase: self.phase,
            now,
            moment,
            stats: &self.stats,
            metrics: &self.metrics,
            ids: &self.request_ids,
            switches: self.control.switches(),
        };
        let buffered_before = conn.buffered_bytes();
        let outcome = step(conn, &pass, &mut self.scratch);
        let buffered_after = conn.buffered_bytes();
        self.tidy
            .buffers_changed(buffered_before, buffered_after, self.conns.len());
        self.settle(slot, outcome, now);
    }

    /// After a connection was driven: drop it if it is finished (or idle in a drain), otherwise
    /// make sure its socket is registered for what it waits for and its deadline is armed.
    fn settle(&mut self, slot: usize, outcome: Option<CloseReason>, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let idle_in_drain =
            self.phase.draining() && conn.may_close_in_drain(self.last_moment.of(now));
        let outcome = outcome.or(idle_in_drain.then_some(CloseReason::Shutdown));
        let outcome = outcome.or_else(|| {
            // Registered the first time it is not done after a drive; registered again when it
            // first waits to write (writable edges are asked for only then).
            let registered = conn.registered_interest();
            let wanted = conn.wanted_interest();
            if registered == Some(wanted) {
                return None;
            }
            let token = token_for(slot, conn.tag());
            let registry = self.poll.registry();
            let result = match registered {
                None => registry.register(conn.socket_mut(), token, wanted),
                Some(_) => registry.reregister(conn.socket_mut(), token, wanted),
            };
            match result {
                Ok(()) => {
                    conn.registered(wanted);
                    None
                }
                Err(e) => {
                    if registered.is_none() {
                        tracing::warn!(conn = conn.id, error = %e, "cannot register a connection");
                    }
                    Some(CloseReason::error(&e))
                }
            }
        });
        if let Some(reason) = outcome {
            conn.finish(reason);
            let conn = self.remove(slot, now);
            // Dropping the socket closes it, which also removes it from epoll: no extra
            // EPOLL_CTL_DEL call per connection.
            self.closed(conn.id, reason);
            return;
        }
        conn.arm(slot, &mut self.deadlines);
    }

    fn expire_due(&mut self, now: Instant) {
        let moment = self.last_moment.of(now);
        while let Some(entry) = self.deadlines.pop_due(moment) {
            let slot = entry.slot as usize;
            let Some(conn) = self.conns.get_mut(slot).filter(|c| c.is_armed_with(&entry)) else {
                continue;
            };
            if conn.disarm(moment) {
                self.drive(slot, now, Connection::expire);
            } else {
                self.settle(slot, None, now);
            }
        }
    }

    /// Takes in what the supervisor changed: a reloaded configuration, the end of readiness, the
    /// start of the drain. (The abort is checked at the top of the loop.)
    fn follow_phase(&mut self, now: Instant) {
        let (generation, site) = self.published.current();
        if generation != self.site_generation {
            self.site = Site::clone(&site);
            self.site.responses.stamp(SystemTime::now());
            self.site_generation = generation;
        }
        let was_draining = self.phase.draining();
        self.phase = self.control.phase();
        if self.phase.draining() && !was_draining {
            self.begin_drain(now);
        }
    }

    /// Accepts what the kernel already queued, closes the traffic listeners, and closes every
    /// connection that is idle after one last read (a request may sit in its receive buffer
    /// unseen). The admin listener stays open until the traffic is drained, so that probes see
    /// the drain (`/readyz` answers 503) rather than a refused connection.
    fn begin_drain(&mut self, now: Instant) {
        self.accept_paused_until = None;
        self.accept_all(now);
        self.close_listeners(Role::Traffic);
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        tracing::info!(connections = slots.len(), "listener closed; draining");
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.mark_readable(false);
                self.drive(slot, now, Connection::drive);
            }
        }
    }

    /// Closes the listeners of one kind. In a drain this comes straight after the last accept,
    /// with no deregistration in between (the close removes them from epoll): a connection the
    /// kernel completes in that window is reset.
    fn close_listeners(&mut self, role: Role) {
        let mut closed = 0;
        for slot in &mut self.listeners {
            if slot.as_ref().is_some_and(|l| l.role == role) {
                *slot = None;
                closed += 1;
            }
        }
        if role == Role::Admin && closed > 0 {
            tracing::info!("admin listener closed");
        }
    }

    /// Counts and logs a connection's end (its socket is already dropped).
    fn closed(&self, conn_id: u64, reason: CloseReason) {
        self.stats.close(reason.closed());
        self.stats.active.set(self.conns.len() as u64);
        if let CloseReason::Error { kind, errno } = reason {
            self.stats.error(ErrorClass::of(kind));
            tracing::debug!(conn = conn_id, reason = reason.closed().label(), error = %kind, errno, "close");
        } else {
            tracing::debug!(conn = conn_id, reason = reason.closed().label(), "close");
        }
    }

    fn abort(&mut self) -> WorkerEnd {
        let forced = self.conns.len();
        if forced > 0 {
            tracing::warn!(
                connections = forced,
                "drain deadline reached; closing connections"
            );
        }
        for (_, conn) in std::mem::take(&mut self.conns) {
            self.closed(conn.id, CloseReason::Shutdown);
        }
        WorkerEnd { forced }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_gets_a_different_token() {
        let old = token_for(5, 41);
        let new = token_for(5, 43);
        assert_ne!(old, new);
        assert_eq!(split_token(new), (5, 43));
        assert_ne!(old, listener_token(0));
        assert_ne!(old, WAKER);
        // Slots stay below max_connections (at most 10,000,000); listeners number far fewer
        // than a million.
        let highest_slot = token_for(10_000_000, u32::MAX);
        assert!(highest_slot.0 < listener_token(1_000_000).0);
    }
}
