//! One client connection: its socket, the request stream that parses it, the bytes it could not
//! take yet, and the deadline it is waiting under.
//!
//! [`Connection::drive`] does all of a connection's I/O for one readiness event, edge-triggered:
//! it reads until the socket is drained (or the output must be flushed first), answers, writes, and
//! reports whether the connection is finished. Buffers are the worker's ([`Scratch`]) except while
//! a request is partial or an answer could not be written whole, so an idle connection holds no
//! buffer at all. It also decides which timeout the connection is under and arms its deadline in
//! the worker's heap. This module does not own the event loop, the heap or the Slab (see
//! `serve::worker`), and writes no answer itself (see `serve::exchange`).

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::TcpStream;
use mio::Interest;

use crate::answers::template::TlsValues;
use crate::answers::Role;
use crate::http::status::Rejection;
use crate::http::{RequestStream, Verdict, OUTPUT_HIGH_WATER};
use crate::metrics::Closed;
use crate::serve::exchange::{self, Pass};
use crate::serve::timer::{Deadlines, Entry, Moment};
use crate::site::Settings;
use crate::sys;
#[cfg(feature = "tls")]
use crate::tls::{Failure, Input, Session, PLAIN_HTTP_ANSWER};
/// Without TLS no connection has a session.
#[cfg(not(feature = "tls"))]
type Session = std::convert::Infallible;

/// How long a graceful close waits for the peer to finish sending before the socket is closed
/// anyway: long enough for a response to reach a live client, short enough that a peer which never
/// stops sending cannot keep the connection.
pub const LINGER: Duration = Duration::from_secs(2);

/// In a drain, how long after its accept a connection that has sent nothing yet may still send its
/// request: its client connected before the listener closed and is most likely sending now.
pub const DRAIN_FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// The worker's buffers, lent to one connection at a time.
pub struct Scratch {
    input: Box<[u8]>,
    output: Vec<u8>,
}

impl Scratch {
    /// Large enough for a pipelined batch of typical requests in one read.
    const INPUT_BYTES: usize = 64 * 1024;
    /// The answers to such a batch; a larger answer (a large echo) grows it for itself only.
    const OUTPUT_BYTES: usize = OUTPUT_HIGH_WATER * 2;

    pub fn new() -> Scratch {
        Scratch {
            input: vec![0; Scratch::INPUT_BYTES].into_boxed_slice(),
            output: Vec::with_capacity(Scratch::OUTPUT_BYTES),
        }
    }
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch::new()
    }
}

/// Why a connection ended, with an error's details; logged and counted on close as its
/// [`Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    Done,
    IdleTimeout,
    ReadTimeout,
    WriteTimeout,
    Error { kind: ErrorKind, errno: Option<i32> },
    Shutdown,
}

impl CloseReason {
    pub fn error(e: &io::Error) -> CloseReason {
        CloseReason::Error {
            kind: e.kind(),
            errno: e.raw_os_error(),
        }
    }

    /// What it is counted and logged as.
    pub fn closed(self) -> Closed {
        match self {
            CloseReason::ClientClosed => Closed::ClientClosed,
            CloseReason::Done => Closed::Done,
            CloseReason::IdleTimeout => Closed::IdleTimeout,
            CloseReason::ReadTimeout => Closed::ReadTimeout,
            CloseReason::WriteTimeout => Closed::WriteTimeout,
            CloseReason::Error { .. } => Closed::Error,
            CloseReason::Shutdown => Closed::Shutdown,
        }
    }
}

/// What the connection is waiting for; each has its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Accepted, no byte received yet.
    FirstRequest,
    /// Between keep-alive requests.
    Idle,
    /// A request has begun and must be complete within the read timeout.
    Request,
    /// The peer is not taking the answer.
    Write,
    /// Graceful close: write side shut, discarding input until the peer closes.
    Linger,
    /// An answer is held until a route's delay ends.
    Held,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The last answer is queued; close once it is written.
    Closing {
        linger: bool,
    },
    Lingering,
}

/// The bytes a connection keeps from one readiness event to the next, in one box that exists only
/// while one of them is not empty, so that an idle connection holds no buffer and stays small.
#[derive(Default)]
struct Buffers {
    /// The unconsumed start of the next request.
    partial: Vec<u8>,
    /// Answer bytes the socket did not take yet.
    unsent: Vec<u8>,
    /// An answer held for a route's delay (rare; nothing else moves meanwhile).
    held: Option<Held>,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.partial.is_empty() && self.unsent.is_empty() && self.held.is_none()
    }
}

/// An answer waiting for its route's delay to end.
struct Held {
    answer: Vec<u8>,
    until: Moment,
}

pub struct Connection {
    pub id: u64,
    socket: TcpStream,
    /// The client's address, for the access log.
    peer: SocketAddr,
    /// The kind of listener it came in on.
    role: Role,
    stream: RequestStream,
    /// What is kept between events: none between requests.
    buffers: Option<Box<Buffers>>,
    /// A TLS connection's session, boxed so that a plain connection pays a pointer for it.
    tls: Option<Box<Session>>,
    state: State,
    /// The socket may hold unread input: reading stopped before the kernel said it was drained.
    may_read: bool,
    /// `partial` may hold complete requests left unanswered when the output reached its limit.
    paused: bool,
    /// The peer's FIN has been reported: read on until `read` returns 0.
    peer_closed: bool,
    waiting: Waiting,
    /// The readiness its socket is registered for; none before its registration.
    interest: Option<Interest>,
    deadline: Moment,
    accepted_at: Moment,
    /// The earliest deadline the worker's timer heap holds for this connection.
    armed: Option<Moment>,
}

impl Connection {
    pub fn new(
        id: u64,
        socket: TcpStream,
        peer: SocketAddr,
        role: Role,
        settings: &Settings,
        now: Moment,
    ) -> Self {
        Connection {
            id,
            socket,
            peer,
            role,
            stream: RequestStream::default(),
            buffers: None,
            tls: None,
            state: State::Open,
            may_read: true,
            paused: false,
            peer_closed: false,
            waiting: Waiting::FirstRequest,
            interest: None,
            deadline: now + settings.read_timeout,
            accepted_at: now,
            armed: None,
        }
    }

    /// The connection came in on a TLS listener: everything it reads and writes goes through
    /// `session`, beginning with the handshake.
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, session: Session) -> Self {
        self.tls = Some(Box::new(session));
        self
    }

    fn held(&self) -> Option<&Held> {
        self.buffers.as_ref()?.held.as_ref()
    }

    fn partial(&self) -> &[u8] {
        self.buffers.as_ref().map_or(&[], |b| &b.partial)
    }

    fn unsent(&self) -> &[u8] {
        self.buffers.as_ref().map_or(&[], |b| &b.unsent)
    }

    fn buffers(&mut self) -> &mut Buffers {
        self.buffers.get_or_insert_with(Box::default)
    }

    /// Between requests a connection holds no buffer: each is freed once empty, and the box with
    /// the last of them.
    fn release_empty_buffers(&mut self) {
        let Some(buffers) = self.buffers.as_mut() else {
            return;
        };
        if buffers.is_empty() {
            self.buffers = None;
            return;
        }
        if buffers.partial.is_empty() {
            buffers.partial = Vec::new();
        }
        if buffers.unsent.is_empty() {
            buffers.unsent = Vec::new();
        }
    }

    /// Whether answer bytes wait for the socket (in `unsent`, or encrypted in the TLS session).
    fn has_unsent(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.as_ref().is_some_and(|s| s.has_pending_output()) {
            return true;
        }
        !self.unsent().is_empty()
    }

    /// A TLS connection that ends without an error says so with `close_notify` (best effort: the
    /// socket is closed next either way).
    pub fn finish(&mut self, reason: CloseReason) {
        #[cfg(feature = "tls")]
        if let Some(session) = self.tls.as_mut() {
            if !matches!(reason, CloseReason::Error { .. }) {
                let _ = session.close_notify(&mut self.socket);
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = reason;
    }

    /// The readiness its socket should be registered for now: readable edges, and writable ones
    /// too from the first time answer bytes wait for the socket. Asked for at the registration,
    /// a writable edge would come at once, a wake-up for nothing on nearly every connection.
    /// Never narrowed again: an edge that finds nothing to write costs less than a call to stop it.
    pub fn wanted_interest(&self) -> Interest {
        let writable = self.interest.is_some_and(|i| i.is_writable()) || self.has_unsent();
        if writable {
            Interest::READABLE.add(Interest::WRITABLE)
        } else {
            Interest::READABLE
        }
    }

    pub fn registered_interest(&self) -> Option<Interest> {
        self.interest
    }

    pub fn registered(&mut self, interest: Interest) {
        self.interest = Some(interest);
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// Heap bytes held by this connection's buffers and their box (none between requests).
    pub fn buffered_bytes(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| {
            let held = b.held.as_ref().map_or(0, |h| h.answer.capacity());
            std::mem::size_of::<Buffers>() + b.partial.capacity() + b.unsent.capacity() + held
        })
    }

    /// In a drain: whether closing now loses no request. Between keep-alive requests it does not
    /// (the last read found nothing). A connection that has sent nothing yet gets
    /// [`DRAIN_FIRST_REQUEST_GRACE`] from its accept, and its deadline moves to the grace's end.
    pub fn may_close_in_drain(&mut self, now: Moment) -> bool {
        match self.waiting {
            Waiting::Idle => true,
            Waiting::FirstRequest => {
                let grace_ends = self.accepted_at + DRAIN_FIRST_REQUEST_GRACE;
                self.deadline = self.deadline.min(grace_ends);
                grace_ends <= now
            }
            Waiting::Request | Waiting::Write | Waiting::Linger | Waiting::Held => false,
        }
    }

    /// Does every read, parse and write this connection can do now. `Some` means it is finished
    /// and should be dropped (closing the socket, which also removes it from epoll).
    pub fn drive(&mut self, pass: &Pass<'_>, scratch: &mut Scratch) -> Option<CloseReason> {
        let before = self.waiting;
        let mut active = false;
        let outcome = self.pump(pass, scratch, &mut active);
        if outcome.is_none() {
            self.refresh_deadline(pass, before, active);
        }
        outcome
    }

    /// Called when the deadline has passed.
    pub fn expire(&mut self, pass: &Pass<'_>, scratch: &mut Scratch) -> Option<CloseReason> {
        match self.waiting {
            Waiting::FirstRequest if pass.phase.draining() => {
                // One last read before the close: a request whose bytes came in after this
                // wake-up's events were taken (its grace ending in the same pass) is answered
                // rather than reset by closing over it.
                self.may_read = true;
                match self.drive(pass, scratch) {
                    None if self.waiting == Waiting::FirstRequest => Some(CloseReason::Shutdown),
                    outcome => outcome,
                }
            }
            Waiting::FirstRequest => {
                #[cfg(feature = "tls")]
                if self.tls.as_ref().is_some_and(|s| s.is_handshaking()) {
                    self.handshake_failed(pass, Failure::Timeout, None);
                }
                Some(CloseReason::ReadTimeout)
            }
            Waiting::Idle => Some(CloseReason::IdleTimeout),
            Waiting::Write => Some(CloseReason::WriteTimeout),
            Waiting::Linger => Some(CloseReason::ClientClosed),
            Waiting::Held => {
                // The delay is over: the held answer goes out (through the TLS session on a TLS
                // connection), then the connection goes on.
                let held = self.buffers.as_mut().and_then(|b| b.held.take());
                if let Some(held) = held {
                    if let Err(e) = self.send(&pass.site.settings, &held.answer) {
                        return Some(CloseReason::error(&e));
                    }
                }
                self.release_empty_buffers();
                self.drive(pass, scratch)
            }
            Waiting::Request => {
                // Part of a request is here and the rest is late: say so, then close gracefully.
                if let Some(buffers) = self.buffers.as_mut() {
                    buffers.partial = Vec::new();
                }
                self.stream = RequestStream::default();
                self.paused = false;
                scratch.output.clear();
                exchange::reject_connection(
                    &pass.site.responses,
                    pass.stats,
                    self.id,
                    self.peer,
                    &tls_values(&self.tls),
                    Rejection::RequestTimeout,
                    &mut scratch.output,
                );
                self.state = State::Closing { linger: true };
                let result = self.send(&pass.site.settings, &scratch.output);
                scratch.output.clear();
                if let Err(e) = result {
                    return Some(CloseReason::error(&e));
                }
                match self.drive(pass, scratch) {
                    None => None,
                    Some(CloseReason::ClientClosed | CloseReason::Done) => {
                        Some(CloseReason::ReadTimeout)
                    }
                    Some(other) => Some(other),
                }
            }
        }
    }

    fn refresh_deadline(&mut self, pass: &Pass<'_>, before: Waiting, active: bool) {
        // While answers before a held one wait for the socket, the client is under its write
        // timeout: the held answer could not go out before them anyway.
        let held = self.held().map(|held| held.until);
        if let Some(until) = held.filter(|_| !self.has_unsent()) {
            self.waiting = Waiting::Held;
            self.deadline = until;
            return;
        }
        self.waiting = match self.state {
            State::Lingering => Waiting::Linger,
            _ if self.has_unsent() => Waiting::Write,
            State::Closing { .. } => Waiting::Write,
            State::Open if self.stream.mid_request(self.partial().len()) => Waiting::Request,
            State::Open if before == Waiting::FirstRequest && !active => Waiting::FirstRequest,
            State::Open => Waiting::Idle,
        };
        // A request's deadline runs from its first byte and is not extended by later bytes; idle
        // and write deadlines restart with every sign of life: an answer, or bytes written. A
        // request still coming after an answer began after it, in this pass: its deadline runs
        // from now, not from the first byte of the one answered.
        let restart = self.waiting != before
            || (active
                && matches!(
                    self.waiting,
                    Waiting::Idle | Waiting::Write | Waiting::Request
                ));
        if restart {
            let s = &pass.site.settings;
            let timeout = match self.waiting {
                Waiting::FirstRequest | Waiting::Request => s.read_timeout,
                Waiting::Idle => s.idle_timeout,
                Waiting::Write => s.write_timeout,
                Waiting::Linger => LINGER,
                Waiting::Held => Duration::ZERO,
            };
            self.deadline = pass.moment + timeout;
        }
    }

    fn pump(
        &mut self,
        pass: &Pass<'_>,
        scratch: &mut Scratch,
        active: &mut bool,
    ) -> Option<CloseReason> {
        loop {
            // The answers before a held one go out while it waits.
            if self.has_unsent() {
                match self.flush() {
                    Ok(0) => return None,
                    Ok(_) => *active = true,
                    Err(e) => return Some(CloseReason::error(&e)),
                }
                if self.has_unsent() {
                    return None;
                }
            }
            if self.held().is_some() {
                return None;
            }
            match self.state {
                State::Closing { linger: false } => return Some(CloseReason::Done),
                State::Closing { linger: true } => {
                    // Shutting the write side sends FIN after the answer; reading on until the
                    // peer's FIN keeps the kernel from answering its late bytes with a reset.
                    self.finish(CloseReason::Done);
                    if let Err(e) = self.socket.shutdown(Shutdown::Write) {
                        return Some(CloseReason::error(&e));
                    }
                    self.state = State::Lingering;
                    self.may_read = true;
                }
                State::Lingering => return self.discard(scratch),
                State::Open if self.paused => {
                    self.paused = false;
                    match self.feed(pass, scratch, 0) {
                        Ok(answered) => *active |= answered,
                        Err(e) => return Some(CloseReason::error(&e)),
                    }
                }
                State::Open if !self.may_read => return None,
                State::Open => match self.receive(pass, &mut scratch.input) {
                    // The TLS state moved on without plaintext: look again.
                    Ok(None) => {}
                    // The peer closed its side: a partial request can never complete, and a
                    // complete one has already been answered.
                    Ok(Some(0)) => return Some(CloseReason::ClientClosed),
                    Ok(Some(n)) => {
                        pass.stats.bytes_in.add(n as u64);
                        tracing::trace!(conn = self.id, bytes = n, "read");
                        // A short read means the receive queue was empty at that moment, and
                        // epoll reports new data as a new edge: no need to read until WouldBlock.
                        // A FIN already reported is no new edge, so then read on to the 0. Over
                        // TLS, the session may hold decrypted bytes no edge announces: read on
                        // until it would block.
                        self.may_read =
                            n == scratch.input.len() || self.peer_closed || self.is_tls();
                        // Bytes are no sign of life unless they are answered (or begin a
                        // request, which its own deadline bounds): the empty lines RFC 9112 2.2
                        // has ignored before a request would otherwise hold a connection open
                        // on two bytes a timeout.
                        match self.feed(pass, scratch, n) {
                            Ok(answered) => *active |= answered,
                            Err(e) => return Some(CloseReason::error(&e)),
                        }
                    }
                    // Nothing more now; the next edge wakes this connection again.
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.may_read = false;
                        return None;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Some(CloseReason::error(&e)),
                },
            }
        }
    }

    /// Feeds `n` new bytes of `scratch.input` (after any kept partial request) to the request
    /// stream and sends what it answers; true if it answered.
    fn feed(&mut self, pass: &Pass<'_>, scratch: &mut Scratch, n: usize) -> io::Result<bool> {
        let cx = pass.context();
        let mut responder = pass.responder(
            self.id,
            self.peer,
            self.role,
            Some(&self.socket),
            tls_values(&self.tls),
        );
        scratch.output.clear();
        let fresh = &scratch.input[..n];
        let progress = match self.buffers.as_mut().filter(|b| !b.partial.is_empty()) {
            None => {
                let progress = self
                    .stream
                    .advance(fresh, &cx, &mut responder, &mut scratch.output);
                let rest = &fresh[progress.consumed..];
                if !rest.is_empty() {
                    self.buffers().partial.extend_from_slice(rest);
                }
                progress
            }
            Some(buffers) => {
                buffers.partial.extend_from_slice(fresh);
                let progress =
                    self.stream
                        .advance(&buffers.partial, &cx, &mut responder, &mut scratch.output);
                buffers.partial.drain(..progress.consumed);
                progress
            }
        };
        match progress.verdict {
            Verdict::Wait => {}
            Verdict::Flush => self.paused = true,
            Verdict::Close { linger } => {
                self.state = State::Closing {
                    linger: linger || self.may_read || !self.partial().is_empty(),
                };
                if let Some(buffers) = self.buffers.as_mut() {
                    buffers.partial.clear();
                }
            }
        }
        let mut now = &scratch.output[..];
        if let Some(hold) = progress.hold {
            let (before, held) = scratch.output.split_at(hold.from);
            self.buffers().held = Some(Held {
                answer: held.to_vec(),
                until: pass.moment + hold.delay,
            });
            now = before;
        }
        let answered = !scratch.output.is_empty();
        let result = self.send(&pass.site.settings, now);
        scratch.output.clear();
        scratch.output.shrink_to(Scratch::OUTPUT_BYTES);
        self.release_empty_buffers();
        result.map(|()| answered)
    }

    /// Writes `data` in one call; whatever the socket does not take waits in `unsent`. Behind
    /// bytes already waiting there, `data` waits too: an answer never overtakes the one before.
    fn send(&mut self, settings: &Settings, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "tls")]
        if let Some(session) = self.tls.as_mut() {
            let written = session.write(&mut self.socket, data)?;
            tracing::trace!(conn = self.id, bytes = written, "write");
            return Ok(());
        }
        if !self.unsent().is_empty() {
            self.buffers().unsent.extend_from_slice(data);
            return Ok(());
        }
        if settings.tcp_cork {
            // The article's TCP_CORK: hold partial frames until the whole batch is queued.
            set_cork(&self.socket, true)?;
        }
        let written = loop {
            match sys::send(&self.socket, data, self.closing()) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break 0,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        tracing::trace!(
            conn = self.id,
            bytes = written,
            queued = data.len() - written,
            "write"
        );
        if written < data.len() {
            self.buffers().unsent.extend_from_slice(&data[written..]);
        }
        if settings.tcp_cork {
            set_cork(&self.socket, false)?;
        }
        Ok(())
    }

    /// Writes as much of `unsent` as the socket takes; returns how many bytes went.
    fn flush(&mut self) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.tls.as_mut() {
            return session.flush(&mut self.socket);
        }
        let closing = self.closing();
        let Some(buffers) = self.buffers.as_mut() else {
            return Ok(0);
        };
        let mut total = 0;
        let result = loop {
            if buffers.unsent.is_empty() {
                break Ok(total);
            }
            match sys::send(&self.socket, &buffers.unsent, closing) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    tracing::trace!(conn = self.id, bytes = n, "write");
                    buffers.unsent.drain(..n);
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(total),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.release_empty_buffers();
        result
    }

    /// Whether what is written now is the last: the socket is closed, or its write side shut,
    /// once it is out.
    fn closing(&self) -> bool {
        matches!(self.state, State::Closing { .. })
    }

    fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads what the peer sent into `input`: from the socket, or through TLS. `None`: nothing
    /// to parse, but the TLS state moved on (the handshake ended, or a plain HTTP request on the
    /// TLS port was answered): look again.
    fn receive(&mut self, pass: &Pass<'_>, input: &mut [u8]) -> io::Result<Option<usize>> {
        #[cfg(feature = "tls")]
        if let Some(session) = self.tls.as_mut() {
            let handshaking = session.is_handshaking();
            return match session.read(&mut self.socket, input)? {
                Input::Plain(n) => Ok(Some(n)),
                Input::Blocked => Err(ErrorKind::WouldBlock.into()),
                Input::Closed => {
                    if handshaking {
                        self.handshake_failed(pass, Failure::Closed, None);
                    }
                    Ok(Some(0))
                }
                Input::Handshaken => {
                    if let Some(facts) = session.facts() {
                        pass.stats.tls_handshake(facts.version, facts.resumed);
                        tracing::debug!(
                            conn = self.id,
                            version = facts.version,
                            cipher = facts.cipher,
                            resumed = facts.resumed,
                            "handshake"
                        );
                    }
                    Ok(None)
                }
                Input::Failed {
                    failure: Failure::PlainHttp,
                    ..
                } => {
                    // As nginx does: a short plain answer the client can read, then a close.
                    self.handshake_failed(pass, Failure::PlainHttp, None);
                    self.tls = None;
                    self.buffers().unsent.extend_from_slice(PLAIN_HTTP_ANSWER);
                    self.state = State::Closing { linger: true };
                    Ok(None)
                }
                Input::Failed { failure, error } => {
                    self.handshake_failed(pass, failure, error.as_ref());
                    let error =
                        error.map_or_else(|| failure.label().to_string(), |e| e.to_string());
                    Err(io::Error::new(ErrorKind::InvalidData, error))
                }
            };
        }
        #[cfg(not(feature = "tls"))]
        let _ = pass;
        sys::recv(&self.socket, input).map(Some)
    }

    /// Counts and logs (at debug) a failed handshake, or a TLS connection's records gone bad
    /// after one, which is counted the same way.
    #[cfg(feature = "tls")]
    fn handshake_failed(&self, pass: &Pass<'_>, failure: Failure, error: Option<&rustls::Error>) {
        pass.stats.tls_failure(failure);
        tracing::debug!(
            conn = self.id,
            remote_addr = %self.peer,
            reason = failure.label(),
            error = error.map(tracing::field::display),
            "handshake failed"
        );
    }

    /// The lingering half of a graceful close: read and drop input until the peer closes.
    fn discard(&mut self, scratch: &mut Scratch) -> Option<CloseReason> {
        loop {
            match sys::recv(&self.socket, &mut scratch.input) {
                Ok(0) => return Some(CloseReason::ClientClosed),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset at this point only means the peer is gone, which is what we wait for.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Some(CloseReason::ClientClosed)
                }
                Err(e) => return Some(CloseReason::error(&e)),
            }
        }
    }

    /// The low 32 bits of the id, which the connection's token and deadline entries carry: enough
    /// to tell a slot's successive connections apart.
    pub fn tag(&self) -> u32 {
        self.id as u32
    }

    /// Pushes a deadline entry for `slot` unless one at or before the deadline is armed already.
    /// A deadline that moved later (every keep-alive request) costs nothing now: the old entry
    /// re-arms it when it comes due.
    pub fn arm(&mut self, slot: usize, deadlines: &mut Deadlines) {
        if self.armed.is_none_or(|armed| self.deadline < armed) {
            deadlines.push(Entry {
                at: self.deadline,
                // Slots stay far below 2^32: each holds a descriptor.
                slot: slot as u32,
                conn_tag: self.tag(),
            });
            self.armed = Some(self.deadline);
        }
    }

    /// Whether `entry` is the deadline this connection has armed. Entries of closed connections,
    /// of moved ones, and entries superseded by an earlier one are not: they are dropped when they
    /// surface (the lazy deletion) or when memory is released.
    pub fn is_armed_with(&self, entry: &Entry) -> bool {
        self.tag() == entry.conn_tag && self.armed == Some(entry.at)
    }

    /// Its armed entry came due and was taken out of the heap: true if the deadline has passed,
    /// false if it moved later (the caller arms it again).
    pub fn disarm(&mut self, now: Moment) -> bool {
        self.armed = None;
        self.deadline <= now
    }

    /// The connection moved to another slot: its entry in the heap no longer finds it.
    pub fn moved(&mut self) {
        self.armed = None;
    }

    /// Notes that the socket may have input: a readable edge arrived, or a drain wants one last
    /// read (a request may be waiting in the receive buffer even though its edge was consumed).
    /// `peer_closed` says the edge also carried the peer's FIN, which no later edge will repeat.
    pub fn mark_readable(&mut self, peer_closed: bool) {
        self.may_read = true;
        self.peer_closed |= peer_closed;
    }
}

/// What the connection's TLS handshake agreed, for its answers' log lines and templates.
fn tls_values(tls: &Option<Box<Session>>) -> TlsValues<'_> {
    #[cfg(feature = "tls")]
    if let Some(facts) = tls.as_deref().and_then(Session::facts) {
        return facts.values();
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    TlsValues::default()
}

fn set_cork(socket: &TcpStream, on: bool) -> io::Result<()> {
    socket2::SockRef::from(socket).set_cork(on)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::{Config, MatchKind, Route, RouteDelay};
    use crate::metrics::{Metrics, WorkerStats};
    use crate::serve::control::Phase;
    use crate::serve::exchange::RequestIds;
    use crate::site::Site;

    fn route(path: &str, body: Vec<u8>, delay: Option<Duration>) -> Route {
        Route {
            path: path.into(),
            match_kind: MatchKind::Exact,
            body,
            delay: delay.map(|d| RouteDelay { min: d, max: d }),
            ..Route::default_hello()
        }
    }

    /// Reads what the client has now, without waiting.
    fn read_now(client: &mut std::net::TcpStream, into: &mut Vec<u8>) {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match client.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => into.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Small socket buffers on both sides, so that an answer of some tens of KiB is written in
    /// part and the rest waits in the connection; the client reads meanwhile, so that a held
    /// answer sent when its delay ends would find room in the socket before that rest.
    #[test]
    fn a_held_answer_is_sent_behind_the_rest_of_the_answer_before_it() {
        let config = Config {
            access_log: false,
            routes: vec![
                route("/first", vec![b'y'; 60 * 1024], None),
                route("/late", b"late".to_vec(), Some(Duration::from_millis(20))),
            ],
            ..Config::default()
        };
        let site = Site::new(&config);
        let (stats, ids) = (WorkerStats::default(), RequestIds::new());
        let metrics = Metrics::new(vec![], Default::default());
        let switches = Default::default();
        let pass_at = |now: Instant| Pass {
            site: &site,
            phase: Phase::Serving,
            now,
            moment: Moment::of(now),
            stats: &stats,
            metrics: &metrics,
            ids: &ids,
            switches: &switches,
        };

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let mut client: std::net::TcpStream = client.into();
        let (socket, peer) = listener.accept().unwrap();
        socket2::SockRef::from(&socket)
            .set_send_buffer_size(4096)
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let now = Instant::now();
        let mut conn = Connection::new(
            1,
            TcpStream::from_std(socket),
            peer,
            Role::Traffic,
            &site.settings,
            Moment::of(now),
        );
        let mut scratch = Scratch::new();

        client
            .write_all(
                b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /late HTTP/1.1\r\nHost: t\r\n\r\n",
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        conn.mark_readable(false);
        assert_eq!(conn.drive(&pass_at(Instant::now()), &mut scratch), None);
        assert!(
            conn.held().is_some() && !conn.unsent().is_empty(),
            "the setting held"
        );
        assert_eq!(
            conn.waiting,
            Waiting::Write,
            "a client that stops reading is cut"
        );

        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut expired = false;
        while !got.ends_with(b"\r\n\r\nlate") {
            assert!(Instant::now() < deadline, "{} bytes", got.len());
            read_now(&mut client, &mut got);
            std::thread::sleep(Duration::from_millis(5));
            let pass = pass_at(Instant::now());
            // A writable edge, or the deadline, as the worker would fire it.
            let outcome = if conn.deadline <= pass.moment {
                expired |= conn.waiting == Waiting::Held;
                conn.expire(&pass, &mut scratch)
            } else {
                conn.drive(&pass, &mut scratch)
            };
            assert_eq!(outcome, None);
        }
        assert!(expired, "the held answer went out at its deadline");
        let first_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4 + 60 * 1024;
        assert!(
            got[..first_end].ends_with(&[b'y'; 60 * 1024][..]),
            "another answer inside the first one's body"
        );
        assert!(got[first_end..].starts_with(b"HTTP/1.1 200 OK\r\n"));
    }

    /// An idle connection costs its Slab entry and one deadline-heap entry; keep the sum within
    /// 192 bytes (no buffer is held between requests).
    #[test]
    fn an_idle_connection_fits_in_192_bytes() {
        let connection = std::mem::size_of::<super::Connection>();
        let deadline = std::mem::size_of::<crate::serve::timer::Entry>();
        // The Slab's occupied/vacant tag takes at most a word beside each connection.
        let per_connection = connection + 8 + deadline;
        assert!(
            per_connection <= 192,
            "{per_connection} bytes: connection {connection}, deadline {deadline}"
        );
    }
}
