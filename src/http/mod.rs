//! The HTTP/1.x request stream of one connection, as a pure state machine: bytes in, the choice of
//! answer and its bytes out, and a verdict for the connection.
//!
//! [`RequestStream::advance`] finds the end of each request head (the article's `\n\n` and
//! `\n\r\n`), parses it with `httparse`, checks it against RFC 9112 and RFC 9110 (request line,
//! `Host`, framing, method), decides persistence, reads and discards any body (`Content-Length` or
//! chunked, decoded as it arrives), and has every complete request answered, in order, through the
//! caller's [`Exchanges`]. It owns the HTTP
//! semantics and every per-request limit; it owns no socket, no timer, no counter and no buffer
//! beyond its caller's, which is why tests and fuzzers can drive it byte by byte.

mod chunked;
mod head;
mod request_line;
pub mod status;

use std::time::{Duration, Instant};

use chunked::{Chunked, Decoded};
pub use head::{find_head_end, method_bit, FIELDS_READ};
use head::{parse_complete_head, parse_head, parse_whole_head, too_long};
use status::Rejection;

/// Headers beyond this count get 431: real clients send a dozen or two.
pub const MAX_HEADERS: usize = 64;
/// Responses for a pipelined batch accumulate up to this many bytes before they are flushed, so
/// that a client that pipelines without reading cannot make the server buffer without bound.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// What the caller must do once the output appended by `advance` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every complete request is answered; what was not consumed is the start of the next one.
    Wait,
    /// The output reached [`OUTPUT_HIGH_WATER`]: write it, then call `advance` again with what was
    /// not consumed.
    Flush,
    /// Close the connection. `linger` is set when the peer may still be sending (an error, or
    /// bytes after the last answered request): the close must then be graceful, because closing
    /// a socket with unread input sends a reset that can destroy the response in flight.
    Close { linger: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that are done with; the caller keeps the rest for the next call.
    pub consumed: usize,
    pub verdict: Verdict,
    /// The last answer is held before it is sent (a route's `delay`). The stream then stops
    /// after it: `Flush` (call again once it is sent) or `Close`.
    pub hold: Option<Hold>,
}

/// The output from `from` on is sent `delay` from now; what comes before it, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub from: usize,
    pub delay: Duration,
}

/// The per-request limits the request stream enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

/// What the request stream reads by: the limits, whether the server drains, the clock.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub limits: Limits,
    /// From the drain on, no request is kept alive.
    pub draining: bool,
    /// When the bytes being fed were read (the event loop's clock, taken once per wake-up).
    pub now: Instant,
    /// The field that carries request ids; none when request ids are off, so that one is
    /// neither echoed nor logged.
    pub request_id_header: Option<&'a [u8]>,
}

/// What a request asks for: a path to route by (its query and fragment removed), or the server
/// as a whole (`OPTIONS *`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Path(&'a [u8]),
    Asterisk,
}

/// The request fields that select among the answers of one path: the error-page mode's and the
/// validators of a conditional request. Empty: absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selectors<'a> {
    pub x_code: &'a [u8],
    pub x_format: &'a [u8],
    pub accept: &'a [u8],
    pub accept_language: &'a [u8],
    pub if_none_match: &'a [u8],
    pub if_modified_since: &'a [u8],
}

impl<'a> Selectors<'a> {
    const FIELDS: usize = 6;

    fn parts(&self) -> [&'a [u8]; Selectors::FIELDS] {
        [
            self.x_code,
            self.x_format,
            self.accept,
            self.accept_language,
            self.if_none_match,
            self.if_modified_since,
        ]
    }

    fn from_parts(parts: [&'a [u8]; Selectors::FIELDS]) -> Selectors<'a> {
        let [x_code, x_format, accept, accept_language, if_none_match, if_modified_since] = parts;
        Selectors {
            x_code,
            x_format,
            accept,
            accept_language,
            if_none_match,
            if_modified_since,
        }
    }
}

/// Where the request stream hands what it decided: the layer above writes each answer's bytes
/// (rendering the ones that are not prebuilt), counts it and logs it.
pub trait Exchanges {
    /// Which answer a request gets, as the layer above names it: chosen when its head is
    /// parsed, and for a request with a body chosen again once the body is read (a reload may
    /// have replaced the answers the first choice named).
    type Choice: Copy + std::fmt::Debug;
    /// A request head was parsed; its answer comes once its body is read.
    fn request(&mut self, request: &Request<'_>);
    /// Chooses the answer to a checked request.
    fn choose(
        &mut self,
        method: &str,
        target: Target<'_>,
        selectors: &Selectors<'_>,
    ) -> Self::Choice;
    /// How many bytes of a request's body its answer shows (the start of it; the rest is read and
    /// discarded as any body is). Zero, the default, keeps none and allocates nothing.
    fn body_kept(&self, _choice: Self::Choice) -> usize {
        0
    }
    /// Appends the answer to `exchange` to `out`; returns how long to hold it, if at all.
    fn write_answer(
        &mut self,
        exchange: &Exchange<'_, Self::Choice>,
        out: &mut Vec<u8>,
    ) -> Option<Duration>;
    /// Appends the rejection to `out`; the connection closes after it. `client` holds what the
    /// request said of itself, as far as its head was parsed.
    fn reject(&mut self, rejected: Rejected, client: &Client<'_>, out: &mut Vec<u8>);
}

/// A parsed request line, for the debug log.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x, served as 1.1).
    pub version: u8,
    pub header_bytes: usize,
}

/// What a request says of who sent it, for the access log, as sent (an empty value: absent).
/// `request_id` holds only a valid id: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Client<'a> {
    pub host: &'a [u8],
    pub user_agent: &'a [u8],
    pub referer: &'a [u8],
    pub x_forwarded_for: &'a [u8],
    pub request_id: &'a [u8],
    pub traceparent: &'a [u8],
}

impl<'a> Client<'a> {
    const FIELDS: usize = 6;

    fn parts(&self) -> [&'a [u8]; Client::FIELDS] {
        [
            self.host,
            self.user_agent,
            self.referer,
            self.x_forwarded_for,
            self.request_id,
            self.traceparent,
        ]
    }

    fn from_parts(parts: [&'a [u8]; Client::FIELDS]) -> Client<'a> {
        let [host, user_agent, referer, x_forwarded_for, request_id, traceparent] = parts;
        Client {
            host,
            user_agent,
            referer,
            x_forwarded_for,
            request_id,
            traceparent,
        }
    }
}

/// One request's decided answer, ready to be written.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a, C> {
    pub choice: C,
    pub keep_alive: bool,
    pub head_only: bool,
    pub method: &'a str,
    pub target: &'a str,
    pub version: u8,
    /// When the request's first byte was read.
    pub started: Instant,
    pub client: &'a Client<'a>,
    /// The head as received, for templates' `{{header.NAME}}`: the request line, then the
    /// header lines.
    pub headers: &'a [u8],
    /// The start of the body, as much of it as [`Exchanges::body_kept`] asked for (decoded, for a
    /// chunked body).
    pub body: &'a [u8],
    /// The whole body's length, of which `body` is the start.
    pub body_bytes: u64,
}

/// A kept body's buffer up to this size stays with its connection for the next body; a larger one
/// is released after its answer.
const KEPT_BODY_CAPACITY: usize = 4 * 1024;

/// What a request's answer is chosen by, besides its method.
#[derive(Debug, Clone, Copy)]
struct Chosen<'a> {
    target: Target<'a>,
    selectors: &'a Selectors<'a>,
}

/// The parts of a pending request's text: method, target, header lines, the path routed by, the
/// client fields, the selectors.
const PENDING_PARTS: usize = 4 + Client::FIELDS + Selectors::FIELDS;

/// An exchange waiting for its request's body: copies of what its answer is chosen and written
/// by (method, target, header lines, the path routed by, client fields and selectors, one after
/// another in one buffer that is reused). The choice made when its head came is not kept: the
/// answer is chosen again once the body is in, by the configuration then in force.
#[derive(Debug)]
struct Pending {
    /// The request is `OPTIONS *`, routed by no path.
    asterisk: bool,
    keep_alive: bool,
    head_only: bool,
    version: u8,
    started: Instant,
    text: Vec<u8>,
    /// Where each part ends in `text`, in the order of [`PENDING_PARTS`].
    ends: [usize; PENDING_PARTS],
    /// The start of the body, up to `keep` bytes; allocated only when `keep` is above zero.
    body: Vec<u8>,
    keep: usize,
    body_bytes: u64,
}

impl Pending {
    fn new<C>(exchange: &Exchange<'_, C>, by: Chosen<'_>, keep: usize) -> Pending {
        let mut pending = Pending {
            asterisk: false,
            keep_alive: exchange.keep_alive,
            head_only: exchange.head_only,
            version: exchange.version,
            started: exchange.started,
            text: Vec::new(),
            ends: [0; PENDING_PARTS],
            body: Vec::new(),
            keep: 0,
            body_bytes: 0,
        };
        pending.keep(exchange, by, keep);
        pending
    }

    /// Takes `exchange`, chosen `by` its target and selectors, in, reusing the buffers; `keep`
    /// bytes of its body will be kept.
    fn keep<C>(&mut self, exchange: &Exchange<'_, C>, by: Chosen<'_>, keep: usize) {
        self.body.clear();
        self.keep = keep;
        self.body_bytes = 0;
        self.asterisk = by.target == Target::Asterisk;
        self.keep_alive = exchange.keep_alive;
        self.head_only = exchange.head_only;
        self.version = exchange.version;
        self.started = exchange.started;
        self.text.clear();
        let path = match by.target {
            Target::Path(path) => path,
            Target::Asterisk => &[],
        };
        let parts = [
            exchange.method.as_bytes(),
            exchange.target.as_bytes(),
            exchange.headers,
            path,
        ]
        .into_iter()
        .chain(exchange.client.parts())
        .chain(by.selectors.parts());
        for (end, part) in self.ends.iter_mut().zip(parts) {
            self.text.extend_from_slice(part);
            *end = self.text.len();
        }
    }

    /// Gives back a kept body's buffer once answered if it is large, so that connections which
    /// once sent a large body to an echo do not each hold one while idle.
    fn release_large_body(&mut self) {
        if self.body.capacity() > KEPT_BODY_CAPACITY {
            self.body = Vec::new();
        }
    }

    /// `data`, the next bytes of the body: counted, and kept as far as asked.
    fn body_data(&mut self, data: &[u8]) {
        self.body_bytes += data.len() as u64;
        let room = self.keep.saturating_sub(self.body.len()).min(data.len());
        self.body.extend_from_slice(&data[..room]);
    }

    fn parts(&self) -> [&[u8]; PENDING_PARTS] {
        let mut start = 0;
        std::array::from_fn(|i| {
            let part = &self.text[start..self.ends[i]];
            start = self.ends[i];
            part
        })
    }

    /// What the request said of itself.
    fn client(&self) -> Client<'_> {
        let [_, _, _, _, rest @ ..] = self.parts();
        let (client, _) = rest.split_at(Client::FIELDS);
        Client::from_parts(std::array::from_fn(|i| client[i]))
    }

    /// The exchange of `client` (this one's [`Pending::client`]), its answer chosen by
    /// `exchanges` now.
    fn exchange<'p, C: Copy>(
        &'p self,
        client: &'p Client<'p>,
        exchanges: &mut impl Exchanges<Choice = C>,
    ) -> Exchange<'p, C> {
        let [method, target, headers, path, rest @ ..] = self.parts();
        let (_, selectors) = rest.split_at(Client::FIELDS);
        let method = std::str::from_utf8(method).unwrap_or_default();
        let routed_by = if self.asterisk {
            Target::Asterisk
        } else {
            Target::Path(path)
        };
        let selectors = Selectors::from_parts(std::array::from_fn(|i| selectors[i]));
        Exchange {
            choice: exchanges.choose(method, routed_by, &selectors),
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            // Copied from `str`s whole.
            method,
            target: std::str::from_utf8(target).unwrap_or_default(),
            version: self.version,
            started: self.started,
            client,
            headers,
            body: &self.body,
            body_bytes: self.body_bytes,
        }
    }
}

/// `HTTP/1.0` or `HTTP/1.1`, for logs.
pub fn version_name(version: u8) -> &'static str {
    if version == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

/// When the version is unknown (the request line was not understood), the answer is in the
/// highest version the server conforms to (RFC 9110 6.2).
pub(super) const HIGHEST_MINOR: u8 = 1;

#[derive(Debug)]
pub struct RequestStream {
    /// What is left of the current request's body, to be read and discarded.
    body: Body,
    /// The answer to the current request, sent once its body has been read. Boxed, since only
    /// requests with a body need one and an idle connection should stay small; kept once made,
    /// with its buffer, so that a connection sending bodies allocates once.
    pending: Option<Box<Pending>>,
    /// How much of the unconsumed input has already been searched for the end of the head, so
    /// that a head arriving a byte at a time is searched once, not once per byte.
    scanned: usize,
    /// When the current request's first byte was read.
    started: Option<Instant>,
}

/// The body still to come.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Body {
    #[default]
    None,
    /// This many `Content-Length` bytes.
    Length(u64),
    Chunked(Chunked),
}

/// What one step of `advance` leads to.
enum Step {
    /// Go on with the next request at this position.
    Next(usize),
    /// Return this to the caller.
    Stop(Progress),
}

impl Default for RequestStream {
    fn default() -> RequestStream {
        RequestStream {
            body: Body::None,
            pending: None,
            scanned: 0,
            started: None,
        }
    }
}

impl RequestStream {
    /// True while a request has begun but is not complete: `unconsumed` is the length of the
    /// input the caller kept from the last call.
    pub fn mid_request(&self, unconsumed: usize) -> bool {
        self.body != Body::None || unconsumed > 0
    }

    /// Answers every complete request at the front of `input`, appending the responses to `out`.
    pub fn advance<C: Copy>(
        &mut self,
        input: &[u8],
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Progress {
        let mut pos = 0;
        loop {
            if out.len() >= OUTPUT_HIGH_WATER {
                return progress(pos, Verdict::Flush);
            }
            let step = match self.body {
                Body::None => {
                    let start = skip_blank_lines(input, pos, self.scanned);
                    self.next_request(input, start, cx, exchanges, out)
                }
                Body::Length(left) => self.skip_length(left, input, pos, exchanges, out),
                Body::Chunked(chunked) => {
                    self.skip_chunked(chunked, input, pos, cx.limits, exchanges, out)
                }
            };
            match step {
                Step::Next(next) => pos = next,
                Step::Stop(progress) => return progress,
            }
        }
    }

    /// Discards `Content-Length` body bytes from `pos`; once the body is complete, answers.
    fn skip_length<C: Copy>(
        &mut self,
        left: u64,
        input: &[u8],
        pos: usize,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Step {
        let take = left.min((input.len() - pos) as u64);
        self.body_data(&input[pos..pos + take as usize]);
        let pos = pos + take as usize;
        if take < left {
            self.body = Body::Length(left - take);
            return Step::Stop(progress(pos, Verdict::Wait));
        }
        self.body_done(input, pos, exchanges, out)
    }

    /// Decodes and discards a chunked body from `pos`: chunk-size lines, data, the CRLF after it,
    /// and the trailer section after the last chunk; then answers. What cannot be decoded yet (a
    /// partial size line or trailer section) is left unconsumed for the next call.
    fn skip_chunked<C: Copy>(
        &mut self,
        mut chunked: Chunked,
        input: &[u8],
        mut pos: usize,
        limits: Limits,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Step {
        loop {
            match chunked.step(&input[pos..], limits) {
                Err(rejection) => return self.reject_body(rejection, pos, exchanges, out),
                Ok(Decoded::Incomplete) => {
                    self.body = Body::Chunked(chunked);
                    return Step::Stop(progress(pos, Verdict::Wait));
                }
                Ok(Decoded::Took(len)) => pos += len,
                Ok(Decoded::Data(len)) => {
                    self.body_data(&input[pos..pos + len]);
                    pos += len;
                }
                Ok(Decoded::End(len)) => return self.body_done(input, pos + len, exchanges, out),
            }
        }
    }

    /// Refuses the body of the pending request, in its version and with what it said of itself.
    fn reject_body<C: Copy>(
        &self,
        rejection: Rejection,
        pos: usize,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Step {
        let pending = self.pending.as_deref();
        let minor = pending.map_or(HIGHEST_MINOR, |p| p.version);
        let client = pending.map(Pending::client).unwrap_or_default();
        let head_only = pending.is_some_and(|p| p.head_only);
        let rejected = Rejected {
            head_only,
            ..Rejected::new(rejection, minor)
        };
        Step::Stop(reject(rejected, &client, pos, exchanges, out))
    }

    /// The body ended at `pos`: answer the request it belonged to.
    fn body_done<C: Copy>(
        &mut self,
        input: &[u8],
        pos: usize,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Step {
        self.body = Body::None;
        let Some(pending) = self.pending.as_deref_mut() else {
            return Step::Next(pos);
        };
        let client = pending.client();
        let exchange = pending.exchange(&client, exchanges);
        let step = answer_then_go_on(&exchange, input, pos, exchanges, out);
        pending.release_large_body();
        step
    }

    /// Keeps `exchange` until its body is read, with `keep` bytes of the body, reusing the box it
    /// had.
    fn keep_pending<C: Copy>(&mut self, exchange: &Exchange<'_, C>, by: Chosen<'_>, keep: usize) {
        match self.pending.as_deref_mut() {
            Some(pending) => pending.keep(exchange, by, keep),
            None => self.pending = Some(Box::new(Pending::new(exchange, by, keep))),
        }
    }

    /// Body bytes of the pending request.
    fn body_data(&mut self, data: &[u8]) {
        if let Some(pending) = self.pending.as_deref_mut() {
            pending.body_data(data);
        }
    }

    /// Reads the request head starting at `pos` and answers it, or waits for the rest of it.
    fn next_request<C: Copy>(
        &mut self,
        input: &[u8],
        pos: usize,
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Step {
        let rest = &input[pos..];
        if rest.is_empty() {
            return Step::Stop(progress(pos, Verdict::Wait));
        }
        let started = *self.started.get_or_insert(cx.now);
        // A head that arrived whole (in one read, within the limit) is parsed at once, which
        // finds its end; searching for the end first would read every byte twice. A head that
        // came in pieces was searched as they came, and one httparse does not take is decided
        // as before.
        let mut slot = None;
        let whole = (self.scanned == 0 && rest.len() <= cx.limits.max_header_bytes)
            .then(|| parse_whole_head(rest, cx.request_id_header, &mut slot))
            .flatten();
        let parsed = match whole {
            Some(parsed) => parsed,
            None => {
                let Some(head_len) = find_head_end(rest, self.scanned) else {
                    return Step::Stop(self.incomplete_head(rest, pos, cx, exchanges, out));
                };
                parse_complete_head(&rest[..head_len], cx, &mut slot)
            }
        };
        self.scanned = 0;
        self.started = None;
        let head = match parsed {
            Ok(head) => head,
            Err(rejected) => {
                return Step::Stop(reject(rejected, &Client::default(), pos, exchanges, out))
            }
        };
        // The head is all of its bytes, through its empty line.
        let head_len = head.headers.len();
        let pos = pos + head_len;
        exchanges.request(&Request {
            method: head.method,
            target: head.target,
            version: head.version,
            header_bytes: head_len,
        });
        let (target, body) = match head.check(cx.limits) {
            Ok(decided) => decided,
            Err(rejection) => {
                let rejected = Rejected::new(rejection, head.version).of(head.method);
                return Step::Stop(reject(rejected, &head.client, pos, exchanges, out));
            }
        };
        // Expect: 100-continue with a body is answered at once, without waiting for (or reading)
        // the body, and the connection closes gracefully after the answer: the client may send
        // the body anyway, and it must not be taken for a request.
        let early = head.expects_continue && body != Body::None;
        let exchange = Exchange {
            choice: exchanges.choose(head.method, target, &head.selectors),
            keep_alive: head.persistent && !cx.draining && !early,
            head_only: head.method == "HEAD",
            method: head.method,
            target: head.target,
            version: head.version,
            started,
            client: &head.client,
            headers: head.headers,
            body: &[],
            body_bytes: 0,
        };
        if early {
            // The body the client may send must not wait behind a delay: answered at once.
            let _ = exchanges.write_answer(&exchange, out);
            return Step::Stop(progress(pos, Verdict::Close { linger: true }));
        }
        if body == Body::None {
            return answer_then_go_on(&exchange, input, pos, exchanges, out);
        }
        self.body = body;
        let by = Chosen {
            target,
            selectors: &head.selectors,
        };
        self.keep_pending(&exchange, by, exchanges.body_kept(exchange.choice));
        Step::Next(pos)
    }

    /// No end of head in `rest` yet: refuse it now if it can already be told bad or too long,
    /// otherwise wait for more.
    fn incomplete_head<C: Copy>(
        &mut self,
        rest: &[u8],
        pos: usize,
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges<Choice = C>,
        out: &mut Vec<u8>,
    ) -> Progress {
        let first_look = self.scanned == 0;
        self.scanned = rest.len();
        if rest.len() > cx.limits.max_header_bytes {
            let rejected = too_long(rest, cx);
            return reject(rejected, &Client::default(), pos, exchanges, out);
        }
        // Checking the first bytes of a request at once answers a TLS handshake or a binary
        // probe with 400 now, instead of after the read timeout.
        if first_look {
            if let Err(rejected) = parse_head(rest, cx.request_id_header, &mut None) {
                return reject(rejected, &Client::default(), pos, exchanges, out);
            }
        }
        progress(pos, Verdict::Wait)
    }
}

/// RFC 9112 2.2: empty lines (CRLF, or a bare LF) before a request line are ignored (some clients
/// send a CRLF after a body); without this they would start a "request" that never completes. A
/// bare CR is no line end: it is left to the request line, which refuses it. Only at the start of
/// a head: `scanned` is zero there.
fn skip_blank_lines(input: &[u8], mut pos: usize, scanned: usize) -> usize {
    if scanned == 0 {
        loop {
            match input.get(pos..) {
                Some([b'\n', ..]) => pos += 1,
                Some([b'\r', b'\n', ..]) => pos += 2,
                _ => break,
            }
        }
    }
    pos
}

/// Has `exchange` answered; the connection closes after it unless it is kept alive.
fn answer_then_go_on<C: Copy>(
    exchange: &Exchange<'_, C>,
    input: &[u8],
    pos: usize,
    exchanges: &mut impl Exchanges<Choice = C>,
    out: &mut Vec<u8>,
) -> Step {
    let from = out.len();
    let hold = exchanges
        .write_answer(exchange, out)
        .map(|delay| Hold { from, delay });
    let verdict = if exchange.keep_alive {
        if hold.is_none() {
            return Step::Next(pos);
        }
        Verdict::Flush
    } else {
        Verdict::Close {
            linger: pos < input.len(),
        }
    };
    Step::Stop(Progress {
        consumed: pos,
        verdict,
        hold,
    })
}

/// Has the rejection written; the connection closes after it, gracefully, since the peer may still
/// be sending the rest of what was refused.
fn reject<C>(
    rejected: Rejected,
    client: &Client<'_>,
    consumed: usize,
    exchanges: &mut impl Exchanges<Choice = C>,
    out: &mut Vec<u8>,
) -> Progress {
    exchanges.reject(rejected, client, out);
    progress(consumed, Verdict::Close { linger: true })
}

fn progress(consumed: usize, verdict: Verdict) -> Progress {
    Progress {
        consumed,
        verdict,
        hold: None,
    }
}

/// A rejected, with the version to say it in: the request's, or HTTP/1.1 when the request line was
/// not understood (or never came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub rejection: Rejection,
    pub minor: u8,
    /// The request was a HEAD: the answer has no content (RFC 9110 9.3.2).
    pub head_only: bool,
}

impl Rejected {
    pub(super) fn new(rejection: Rejection, minor: u8) -> Rejected {
        Rejected {
            rejection,
            minor,
            head_only: false,
        }
    }

    /// The same, refusing a request of `method`, when its request line was understood.
    pub(super) fn of(self, method: &str) -> Rejected {
        Rejected {
            head_only: method == "HEAD",
            ..self
        }
    }
}

impl From<Rejection> for Rejected {
    fn from(rejection: Rejection) -> Rejected {
        Rejected::new(rejection, HIGHEST_MINOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `200 METHOD TARGET` and refuses with the rejection's status, one line each: what
    /// the stream decided, without the answers of any configuration.
    struct Lines;

    impl Exchanges for Lines {
        type Choice = ();

        fn request(&mut self, _: &Request<'_>) {}

        fn choose(&mut self, _: &str, _: Target<'_>, _: &Selectors<'_>) {}

        fn write_answer(&mut self, e: &Exchange<'_, ()>, out: &mut Vec<u8>) -> Option<Duration> {
            let persistence = if e.keep_alive { "keep-alive" } else { "close" };
            let line = format!("200 {} {} {persistence}\n", e.method, e.target);
            out.extend_from_slice(line.as_bytes());
            None
        }

        fn reject(&mut self, rejected: Rejected, _: &Client<'_>, out: &mut Vec<u8>) {
            let line = format!("{} 1.{}\n", rejected.rejection.status(), rejected.minor);
            out.extend_from_slice(line.as_bytes());
        }
    }

    fn run(input: &[u8]) -> (String, Progress) {
        let cx = Context {
            limits: Limits {
                max_header_bytes: 8192,
                max_body_bytes: 100,
            },
            draining: false,
            now: Instant::now(),
            request_id_header: None,
        };
        let mut out = Vec::new();
        let p = RequestStream::default().advance(input, &cx, &mut Lines, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), p)
    }

    #[test]
    fn http10_closes_and_http11_stays() {
        let (out, p) = run(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(out, "200 GET / close\n");
        assert_eq!(p.verdict, Verdict::Close { linger: false });
        let (out, p) = run(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(out, "200 GET /a?b keep-alive\n");
        assert_eq!(p.verdict, Verdict::Wait);
    }

    #[test]
    fn connection_options_decide_persistence_whole_or_in_a_list() {
        let cases: [(&str, &str, &str); 7] = [
            ("1.0", " Keep-Alive ", "keep-alive"),
            ("1.0", "CLOSE", "close"),
            ("1.0", "close, keep-alive", "close"),
            ("1.0", "keep-alive, close", "close"),
            ("1.0", "upgrade,keep-alive", "keep-alive"),
            ("1.1", "keep-alive", "keep-alive"),
            ("1.1", "te, close", "close"),
        ];
        for (version, value, persistence) in cases {
            let head = format!("GET / HTTP/{version}\r\nHost: x\r\nConnection: {value}\r\n\r\n");
            let (out, _) = run(head.as_bytes());
            assert_eq!(
                out,
                format!("200 GET / {persistence}\n"),
                "{version} {value:?}"
            );
        }
    }

    #[test]
    fn statuses_for_bad_heads() {
        let cases: [(&[u8], &str); 10] = [
            (b"GET / HTTP/2.0\r\n\r\n", "505 1.1"),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", "400 1.1"),
            (b"GET / FOO\r\n\r\n", "400 1.1"),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "400 1.1"),
            (b"\x16\x03\x01\x02\x00\x01", "400 1.1"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                "400 1.1",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "400 1.1",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "501 1.1",
            ),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", "413 1.1"),
            (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400 1.0"),
        ];
        for (input, status) in cases {
            let (out, _) = run(input);
            assert_eq!(out, format!("{status}\n"), "{input:?}");
        }
    }

    /// Keeps its number of bytes of every body and answers with what it kept and the body's length.
    struct Kept(usize);

    impl Exchanges for Kept {
        type Choice = ();

        fn request(&mut self, _: &Request<'_>) {}

        fn choose(&mut self, _: &str, _: Target<'_>, _: &Selectors<'_>) {}

        fn body_kept(&self, _: ()) -> usize {
            self.0
        }

        fn write_answer(&mut self, e: &Exchange<'_, ()>, out: &mut Vec<u8>) -> Option<Duration> {
            out.extend_from_slice(e.body);
            out.extend_from_slice(format!(" of {}\n", e.body_bytes).as_bytes());
            None
        }

        fn reject(&mut self, _: Rejected, _: &Client<'_>, _: &mut Vec<u8>) {}
    }

    #[test]
    fn a_kept_body_is_cut_and_a_large_buffer_released_after_its_answer() {
        let cx = Context {
            limits: Limits {
                max_header_bytes: 8192,
                max_body_bytes: 1 << 20,
            },
            draining: false,
            now: Instant::now(),
            request_id_header: None,
        };
        let mut stream = RequestStream::default();
        let mut out = Vec::new();
        let post = |body: &[u8]| {
            let mut request = format!(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(body);
            request
        };
        stream.advance(&post(b"hello"), &cx, &mut Kept(3), &mut out);
        assert_eq!(out, b"hel of 5\n");
        let capacity = |s: &RequestStream| s.pending.as_ref().map(|p| p.body.capacity());
        assert!(
            capacity(&stream).is_some_and(|c| c > 0),
            "a small buffer stays"
        );
        out.clear();
        stream.advance(&post(&[b'x'; 10_000]), &cx, &mut Kept(8192), &mut out);
        assert!(out.ends_with(b" of 10000\n") && out.len() == 8192 + 10);
        assert_eq!(capacity(&stream), Some(0), "a large buffer is released");
    }

    #[test]
    fn a_chunked_body_is_read_to_its_end_before_the_answer() {
        let (out, p) = run(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(out, "200 POST /c keep-alive\n200 GET /n keep-alive\n");
        assert_eq!(p.verdict, Verdict::Wait);
    }
}
