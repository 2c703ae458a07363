//! Writing, counting and logging answers: the [`Exchanges`] the request stream hands its decisions
//! to, and `reject`, the one place any rejected request or connection is answered (400 to 505 from
//! the request stream, 408 when a request is cut by its timeout, 503 at the connection limit),
//! counted, and logged as `request rejected`.
//!
//! Prebuilt answers are copied from `answers`; the metrics are rendered here at each scrape,
//! since they are the one answer whose body changes. Request ids are echoed (or made, with
//! `request_id = "generate"`) here, and every access-log line names who asked: the peer, the
//! request's `Host`, `User-Agent`, `Referer`, `X-Forwarded-For`, request id and W3C trace context.
//! Which answer a request gets is `answers`'s decision (`Responses::choose`); sockets are
//! `serve::connection`'s and `serve::worker`'s.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::answers::template::{TlsValues, Values};
use crate::answers::{AnswerId, Echoed, Framing, Probe, Probes, Resolved, Responses, Role, Sent};
use crate::config::RequestIdMode;
use crate::http::status::Rejection;
use crate::http::{
    version_name, Client, Context, Exchange, Exchanges, Rejected, Request, Selectors, Target,
};
use crate::log::{self, key, FieldWriter, Record};
use crate::metrics::{Metrics, WorkerStats};
use crate::serve::control::{Phase, Switches};
use crate::serve::timer::Moment;
use crate::site::Site;
use crate::{ascii, escape};

/// What answering needs from the event loop for one pass over its ready connections.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    pub site: &'a Site,
    pub phase: Phase,
    /// The event loop's clock, taken once per wake-up.
    pub now: Instant,
    /// `now` as a moment, for deadlines.
    pub moment: Moment,
    /// This worker's counters.
    pub stats: &'a WorkerStats,
    /// Every worker's counters, for a `/metrics` request.
    pub metrics: &'a Metrics,
    /// This worker's maker of request ids.
    pub ids: &'a RequestIds,
    /// The probes' switches, every worker's.
    pub switches: &'a Switches,
}

impl<'a> Pass<'a> {
    /// The request stream's context for this pass.
    pub fn context(&self) -> Context<'a> {
        let site = self.site;
        Context {
            limits: site.settings.limits,
            draining: self.phase.draining(),
            now: self.now,
            request_id_header: (site.settings.request_id != RequestIdMode::Off)
                .then(|| site.responses.request_id_header()),
        }
    }

    /// The writer of the answers of one connection on `socket` (none for a stream fed without
    /// one: an echo then shows no local address), which came in on a listener of `role`, with
    /// what its TLS handshake agreed (empty on a plain connection), in this pass.
    pub fn responder<'s>(
        &'s self,
        conn_id: u64,
        peer: SocketAddr,
        role: Role,
        socket: Option<&'s TcpStream>,
        tls: TlsValues<'s>,
    ) -> Responder<'s> {
        Responder {
            pass: self,
            conn_id,
            peer,
            role,
            socket,
            tls,
        }
    }

    /// What the probes answer now.
    fn probes(&self) -> Probes {
        Probes {
            shutting_down: !self.phase.ready(),
            health_enabled: self.switches.enabled(Probe::Health),
            ready_enabled: self.switches.enabled(Probe::Ready),
        }
    }
}

/// Writes, counts and logs the answers of one connection.
pub struct Responder<'a> {
    pass: &'a Pass<'a>,
    conn_id: u64,
    peer: SocketAddr,
    role: Role,
    /// Asked for its local address by an echo only.
    socket: Option<&'a TcpStream>,
    /// What the connection's TLS handshake agreed (empty on a plain connection), for the access
    /// log and the templates.
    tls: TlsValues<'a>,
}

impl Exchanges for Responder<'_> {
    type Choice = AnswerId;

    fn request(&mut self, request: &Request<'_>) {
        tracing::debug!(
            conn = self.conn_id,
            method = request.method,
            path = request.target,
            version = version_name(request.version),
            header_bytes = request.header_bytes,
            "request"
        );
    }

    // See `Responses::choose`.
    #[inline(always)]
    fn choose(&mut self, method: &str, target: Target<'_>, selectors: &Selectors<'_>) -> AnswerId {
        let responses = &self.pass.site.responses;
        responses.choose(method, target, self.pass.probes(), self.role, selectors)
    }

    fn body_kept(&self, choice: AnswerId) -> usize {
        match choice {
            AnswerId::Echo(_) => self.pass.site.settings.echo_max_body,
            _ => 0,
        }
    }

    fn write_answer(
        &mut self,
        exchange: &Exchange<'_, AnswerId>,
        out: &mut Vec<u8>,
    ) -> Option<Duration> {
        let Pass {
            site,
            phase,
            now,
            moment: _,
            stats,
            metrics,
            ids,
            switches,
        } = *self.pass;
        let settings = &site.settings;
        let mut made = [0u8; RequestIds::LEN];
        // With request ids off, the request stream took none.
        let request_id = match settings.request_id {
            RequestIdMode::Generate if exchange.client.request_id.is_empty() => {
                ids.make(&mut made);
                &made[..]
            }
            _ => exchange.client.request_id,
        };
        let responses = &site.responses;
        if let AnswerId::Switch { probe, enabled } = exchange.choice {
            switches.set(probe, enabled);
            let state = if enabled { "enabled" } else { "disabled" };
            tracing::info!(
                conn = self.conn_id,
                probe = probe.label(),
                state,
                remote_addr = %self.peer,
                "switch"
            );
        }
        let answer = responses.pick(exchange.choice, || ids.random());
        let framing = Framing {
            minor: exchange.version,
            keep_alive: exchange.keep_alive,
            head_only: exchange.head_only,
            request_id,
        };
        let Sent { status, bytes } = match responses.resolve(answer) {
            Resolved::Prebuilt(prebuilt) => responses.write(prebuilt, &framing, out),
            Resolved::Metrics => {
                let mut body = String::new();
                metrics.render(phase, switches, &mut body);
                responses.write_metrics(&body, &framing, out)
            }
            Resolved::Echo(fixed) => {
                let echoed = Echoed {
                    method: exchange.method,
                    target: exchange.target,
                    version: exchange.version,
                    head: exchange.headers,
                    host: exchange.client.host,
                    local: self.socket.and_then(|s| s.local_addr().ok()),
                    peer: self.peer,
                    body: exchange.body,
                    body_bytes: exchange.body_bytes,
                };
                responses.write_echo(fixed, &echoed, &framing, out)
            }
            Resolved::Rendered(page) => {
                let (path, query) = match exchange.target.split_once('?') {
                    Some((path, query)) => (path, query),
                    None => (exchange.target, ""),
                };
                let values = Values {
                    method: exchange.method,
                    path: path.as_bytes(),
                    query: query.as_bytes(),
                    host: exchange.client.host,
                    remote_addr: self.peer,
                    request_id,
                    headers: exchange.headers,
                    code: 0,
                    reason: "",
                    message: "",
                    lang: "",
                    tls: self.tls,
                };
                responses.write_rendered(&page, &values, &framing, out)
            }
        };
        // A request that came whole in this wake-up took none of the loop's time.
        let duration_us = if exchange.started == now {
            0
        } else {
            now.saturating_duration_since(exchange.started).as_micros() as u64
        };
        stats.response(status, bytes, duration_us);
        if settings.access_log && (settings.log_health_checks || !exchange.choice.is_builtin()) {
            let client = Client {
                request_id,
                ..*exchange.client
            };
            let requester = Requester {
                conn_id: self.conn_id,
                peer: self.peer,
                client: &client,
                tls: &self.tls,
            };
            let line = AnswerLine {
                exchange,
                status,
                bytes,
                duration_us,
                requester: &requester,
            };
            log::access("response", &line);
        }
        let delay = responses.delay(answer)?;
        let spread = delay.max.saturating_sub(delay.min).as_nanos() as u64;
        let extra = if spread == 0 {
            0
        } else {
            ids.random() % (spread + 1)
        };
        Some(delay.min + Duration::from_nanos(extra))
    }

    fn reject(&mut self, rejected: Rejected, client: &Client<'_>, out: &mut Vec<u8>) {
        let requester = Requester {
            conn_id: self.conn_id,
            peer: self.peer,
            client,
            tls: &self.tls,
        };
        reject(
            &self.pass.site.responses,
            self.pass.stats,
            &requester,
            rejected,
            out,
        );
    }
}

/// Rejects a connection before any request head was parsed (the 408 of a request cut by its
/// timeout, the 503 at the connection limit), as [`reject`] rejects a request.
pub fn reject_connection(
    responses: &Responses,
    stats: &WorkerStats,
    conn_id: u64,
    peer: SocketAddr,
    tls: &TlsValues<'_>,
    rejection: Rejection,
    out: &mut Vec<u8>,
) -> Sent {
    let requester = Requester {
        conn_id,
        peer,
        client: &Client::default(),
        tls,
    };
    reject(responses, stats, &requester, rejection.into(), out)
}

/// Appends the fixed answer to a rejected request (or connection) to `out`, counts it and logs
/// it. Every such answer says `Connection: close`.
fn reject(
    responses: &Responses,
    stats: &WorkerStats,
    requester: &Requester<'_>,
    rejected: Rejected,
    out: &mut Vec<u8>,
) -> Sent {
    let Rejected {
        rejection,
        minor,
        head_only,
    } = rejected;
    let framing = Framing::rejected(minor, head_only, requester.client.request_id);
    let sent = responses.write(responses.rejection(rejection), &framing, out);
    stats.response(sent.status, sent.bytes, 0);
    let line = RejectionLine {
        sent,
        rejection,
        requester,
    };
    log::access("request rejected", &line);
    sent
}

/// The access-log line of an answer.
struct AnswerLine<'a> {
    exchange: &'a Exchange<'a, AnswerId>,
    status: u16,
    bytes: usize,
    duration_us: u64,
    requester: &'a Requester<'a>,
}

impl Record for AnswerLine<'_> {
    fn write(&self, fields: &mut impl FieldWriter) {
        let exchange = self.exchange;
        fields.u64(key!("conn"), self.requester.conn_id);
        // A method is a token (httparse takes no other byte): no quote, backslash or control.
        fields.plain(key!("method"), exchange.method.as_bytes());
        fields.str(key!("path"), exchange.target);
        fields.plain(key!("version"), version_name(exchange.version).as_bytes());
        fields.u64(key!("status"), u64::from(self.status));
        fields.u64(key!("bytes"), self.bytes as u64);
        fields.u64(key!("duration_us"), self.duration_us);
        fields.bool(key!("keep_alive"), exchange.keep_alive);
        self.requester.write(fields);
    }
}

/// The access-log line of a rejection.
struct RejectionLine<'a> {
    sent: Sent,
    rejection: Rejection,
    requester: &'a Requester<'a>,
}

impl Record for RejectionLine<'_> {
    fn write(&self, fields: &mut impl FieldWriter) {
        fields.u64(key!("conn"), self.requester.conn_id);
        fields.u64(key!("status"), u64::from(self.sent.status));
        fields.u64(key!("bytes"), self.sent.bytes as u64);
        fields.debug(key!("rejection"), &self.rejection);
        self.requester.write(fields);
    }
}

/// Who sent a request: its connection, the peer's address, and what the request said of itself
/// (as far as its head was parsed). As a record, the fields of an access-log line that say who
/// asked: the peer's address and each value the request sent (absent when it did not), bounded
/// and escaped (see `log::Shown`); over TLS, what the handshake agreed and the client's
/// certificate.
struct Requester<'a> {
    conn_id: u64,
    peer: SocketAddr,
    client: &'a Client<'a>,
    tls: &'a TlsValues<'a>,
}

impl Record for Requester<'_> {
    fn write(&self, fields: &mut impl FieldWriter) {
        let client = self.client;
        fields.addr(key!("remote_addr"), self.peer);
        fields.shown(key!("host"), client.host);
        fields.shown(key!("user_agent"), client.user_agent);
        fields.shown(key!("referer"), client.referer);
        fields.shown(key!("x_forwarded_for"), client.x_forwarded_for);
        if !client.request_id.is_empty() {
            // Visible ASCII (checked when taken, or one of ours), logged as it is echoed so that
            // a search for the echoed id finds its line: `shown` would double a backslash.
            let id = std::str::from_utf8(client.request_id).unwrap_or_default();
            fields.str(key!("request_id"), id);
        }
        if let Some(trace) = TraceParent::parse(client.traceparent) {
            fields.plain(key!("trace_id"), trace.trace_id);
            fields.plain(key!("span_id"), trace.span_id);
        }
        let tls = self.tls;
        if tls.is_tls() {
            fields.plain(key!("tls_version"), tls.version.as_bytes());
            fields.plain(key!("tls_cipher"), tls.cipher.as_bytes());
            fields.shown(key!("sni"), tls.sni.as_bytes());
            fields.bool(key!("tls_resumed"), tls.resumed);
        }
        if !tls.client_fingerprint.is_empty() {
            fields.shown(key!("client_subject"), tls.client_subject.as_bytes());
            fields.shown(key!("client_san"), tls.client_san.as_bytes());
            fields.plain(
                key!("client_fingerprint"),
                tls.client_fingerprint.as_bytes(),
            );
            fields.plain(key!("client_not_after"), tls.client_not_after.as_bytes());
        }
    }
}

/// A W3C Trace Context `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
/// lowercase, with ids not all zero. Anything else is ignored, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TraceParent<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
}

impl<'a> TraceParent<'a> {
    fn parse(value: &'a [u8]) -> Option<TraceParent<'a>> {
        // `00-` 32 hex `-` 16 hex `-` 2 hex: 55 bytes, dashes at 2, 35 and 52.
        let value: &[u8; 55] = value.trim_ascii().try_into().ok()?;
        if !value.starts_with(b"00-") || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let (trace_id, span_id, flags) = (&value[3..35], &value[36..52], &value[53..]);
        // An id is nearly always told from zeros by its first digit.
        let nonzero = |id: &[u8]| id.iter().any(|&digit| digit != b'0');
        let valid = [trace_id, span_id, flags].into_iter().all(ascii::lower_hex);
        (valid && nonzero(trace_id) && nonzero(span_id))
            .then_some(TraceParent { trace_id, span_id })
    }
}

/// One worker's maker of request ids: 128 bits from a fast generator (`fastrand`'s wyrand,
/// seeded per worker), as 32 lowercase hex digits. Unique for practical purposes, not secret. The
/// same generator picks weighted statuses and delays.
pub struct RequestIds {
    rng: RefCell<fastrand::Rng>,
}

impl RequestIds {
    pub const LEN: usize = 32;

    pub fn new() -> RequestIds {
        RequestIds {
            rng: RefCell::new(fastrand::Rng::new()),
        }
    }

    /// 64 random bits, for request ids, weighted statuses and delays.
    pub fn random(&self) -> u64 {
        self.rng.borrow_mut().u64(..)
    }

    /// Writes a new id into `id`.
    fn make(&self, id: &mut [u8; RequestIds::LEN]) {
        let bits = (u128::from(self.random()) << 64) | u128::from(self.random());
        for (i, digit) in id.iter_mut().enumerate() {
            *digit = escape::HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
        }
    }
}

impl Default for RequestIds {
    fn default() -> RequestIds {
        RequestIds::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_taken_only_when_valid() {
        let valid = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(valid),
            Some(TraceParent {
                trace_id: b"4bf92f3577b34da6a3ce929d0e0e4736",
                span_id: b"00f067aa0ba902b7",
            })
        );
        for bad in [
            &b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            b"",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_differ() {
        let ids = RequestIds::new();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        ids.make(&mut a);
        ids.make(&mut b);
        assert!(a
            .iter()
            .all(|d| d.is_ascii_hexdigit() && !d.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
