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

use std::time::{Duration, Instant};

use crate::answers::{AnswerId, Asks, Port, Rejection, Responses};
use crate::ascii;
use crate::config::{is_token, RequestIdMode};
use crate::site::{Limits, Phase, Site};

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

/// What the request stream decides from: the answers, the limits, the server's phase, the clock.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    responses: &'a Responses,
    limits: Limits,
    phase: Phase,
    /// When the bytes being fed were read (the event loop's clock, taken once per wake-up).
    now: Instant,
    /// The field that carries request ids; none when request ids are off, so that one is
    /// neither echoed nor logged.
    request_id_header: Option<&'a [u8]>,
    /// The kind of listener the connection came in on.
    port: Port,
}

impl<'a> Context<'a> {
    pub fn new(site: &'a Site, phase: Phase, now: Instant, port: Port) -> Context<'a> {
        Context {
            port,
            responses: &site.responses,
            limits: site.settings.limits,
            phase,
            now,
            request_id_header: (site.settings.request_id != RequestIdMode::Off)
                .then(|| site.responses.request_id_header()),
        }
    }
}

/// Where the request stream hands what it decided: the layer above writes each answer's bytes
/// (rendering the ones that are not prebuilt), counts it and logs it.
pub trait Exchanges {
    /// A request head was parsed; its answer comes once its body is read.
    fn request(&mut self, request: &Request<'_>);
    /// Appends the answer to `exchange` to `out`; returns how long to hold it, if at all.
    fn answer(&mut self, exchange: &Exchange<'_>, out: &mut Vec<u8>) -> Option<Duration>;
    /// Appends the refusal to `out`; the connection closes after it. `client` holds what the
    /// request said of itself, as far as its head was parsed.
    fn reject(&mut self, refusal: Refusal, client: &Client<'_>, out: &mut Vec<u8>);
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
pub struct Exchange<'a> {
    pub answer: AnswerId,
    pub keep_alive: bool,
    pub head_only: bool,
    pub method: &'a str,
    pub target: &'a str,
    pub version: u8,
    /// When the request's first byte was read.
    pub started: Instant,
    pub client: Client<'a>,
    /// The head as received, for templates' `{{header.NAME}}`: the request line, then the
    /// header lines.
    pub headers: &'a [u8],
}

/// An exchange waiting for its request's body: the decision, with copies of the request's text
/// (method, target and client fields, one after another in one buffer that is reused).
#[derive(Debug)]
struct Pending {
    answer: AnswerId,
    keep_alive: bool,
    head_only: bool,
    version: u8,
    started: Instant,
    text: Vec<u8>,
    /// Where each part ends in `text`: method, target, header lines, then the client fields.
    ends: [usize; Pending::PARTS],
}

impl Pending {
    const PARTS: usize = 3 + Client::FIELDS;

    fn new(exchange: &Exchange<'_>) -> Pending {
        let mut pending = Pending {
            answer: exchange.answer,
            keep_alive: exchange.keep_alive,
            head_only: exchange.head_only,
            version: exchange.version,
            started: exchange.started,
            text: Vec::new(),
            ends: [0; Pending::PARTS],
        };
        pending.keep(exchange);
        pending
    }

    /// Takes `exchange` in, reusing the buffer.
    fn keep(&mut self, exchange: &Exchange<'_>) {
        self.answer = exchange.answer;
        self.keep_alive = exchange.keep_alive;
        self.head_only = exchange.head_only;
        self.version = exchange.version;
        self.started = exchange.started;
        self.text.clear();
        let parts = [
            exchange.method.as_bytes(),
            exchange.target.as_bytes(),
            exchange.headers,
        ]
        .into_iter()
        .chain(exchange.client.parts());
        for (end, part) in self.ends.iter_mut().zip(parts) {
            self.text.extend_from_slice(part);
            *end = self.text.len();
        }
    }

    fn exchange(&self) -> Exchange<'_> {
        let mut start = 0;
        let parts: [&[u8]; Pending::PARTS] = std::array::from_fn(|i| {
            let part = &self.text[start..self.ends[i]];
            start = self.ends[i];
            part
        });
        let [method, target, headers, client @ ..] = parts;
        Exchange {
            answer: self.answer,
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            // Copied from `str`s whole.
            method: std::str::from_utf8(method).unwrap_or_default(),
            target: std::str::from_utf8(target).unwrap_or_default(),
            version: self.version,
            started: self.started,
            client: Client::from_parts(client),
            headers,
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

/// The methods RFC 9110 defines (and PATCH): any other method, in any case, is not implemented.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// The longest chunk-size line (size, extensions, CRLF) accepted, or the head limit if smaller:
/// extensions are rare and short, and an endless line must not be buffered.
const MAX_CHUNK_LINE: usize = 1024;
/// When the version is unknown (the request line was not understood), the answer is in the
/// highest version the server conforms to (RFC 9110 6.2).
const HIGHEST_MINOR: u8 = 1;

#[derive(Debug, Default)]
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

/// Where a chunked body's decoding stands (RFC 9112 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunked {
    stage: ChunkStage,
    /// The sizes of the chunks so far, against `max_body_bytes`.
    total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkStage {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data to discard.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields up to an empty line, which ends the body.
    Trailers,
}

/// What one step of `advance` leads to.
enum Step {
    /// Go on with the next request at this position.
    Next(usize),
    /// Return this to the caller.
    Stop(Progress),
}

impl RequestStream {
    /// True while a request has begun but is not complete: `unconsumed` is the length of the
    /// input the caller kept from the last call.
    pub fn mid_request(&self, unconsumed: usize) -> bool {
        self.body != Body::None || unconsumed > 0
    }

    /// Answers every complete request at the front of `input`, appending the responses to `out`.
    pub fn advance(
        &mut self,
        input: &[u8],
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges,
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
    fn skip_length(
        &mut self,
        left: u64,
        input: &[u8],
        pos: usize,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        let take = left.min((input.len() - pos) as u64);
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
    fn skip_chunked(
        &mut self,
        mut chunked: Chunked,
        input: &[u8],
        mut pos: usize,
        limits: Limits,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        loop {
            let rest = &input[pos..];
            let decoded = match chunked.stage {
                ChunkStage::Size => chunk_size(rest, limits).map(|line| {
                    line.map(|(len, size)| {
                        chunked.total = chunked.total.saturating_add(size);
                        chunked.stage = if size == 0 {
                            ChunkStage::Trailers
                        } else {
                            ChunkStage::Data(size)
                        };
                        len
                    })
                }),
                ChunkStage::Data(left) => {
                    let take = left.min(rest.len() as u64);
                    chunked.stage = if take < left {
                        ChunkStage::Data(left - take)
                    } else {
                        ChunkStage::DataEnd
                    };
                    Ok((take > 0).then_some(take as usize))
                }
                ChunkStage::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        chunked.stage = ChunkStage::Size;
                        Ok(Some(2))
                    }
                    [] | [b'\r'] => Ok(None),
                    _ => Err(Rejection::BadRequest),
                },
                ChunkStage::Trailers => match trailer_section(rest, limits) {
                    Ok(Some(len)) => return self.body_done(input, pos + len, exchanges, out),
                    other => other,
                },
            };
            if chunked.total > limits.max_body_bytes {
                return self.reject_body(Rejection::PayloadTooLarge, pos, exchanges, out);
            }
            match decoded {
                Err(rejection) => return self.reject_body(rejection, pos, exchanges, out),
                Ok(None) => {
                    self.body = Body::Chunked(chunked);
                    return Step::Stop(progress(pos, Verdict::Wait));
                }
                Ok(Some(len)) => pos += len,
            }
        }
    }

    /// Refuses the body of the pending request, in its version and with what it said of itself.
    fn reject_body(
        &self,
        rejection: Rejection,
        pos: usize,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        let exchange = self.pending.as_deref().map(Pending::exchange);
        let minor = exchange.map_or(HIGHEST_MINOR, |e| e.version);
        let client = exchange.map(|e| e.client).unwrap_or_default();
        let refusal = Refusal::new(rejection, minor);
        Step::Stop(reject(refusal, &client, pos, exchanges, out))
    }

    /// The body ended at `pos`: answer the request it belonged to.
    fn body_done(
        &mut self,
        input: &[u8],
        pos: usize,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        self.body = Body::None;
        match self.pending.as_deref() {
            Some(pending) => answer(&pending.exchange(), input, pos, exchanges, out),
            None => Step::Next(pos),
        }
    }

    /// Keeps the decision for `exchange` until its body is read, reusing the box it had.
    fn hold(&mut self, exchange: &Exchange<'_>) {
        match self.pending.as_deref_mut() {
            Some(pending) => pending.keep(exchange),
            None => self.pending = Some(Box::new(Pending::new(exchange))),
        }
    }

    /// Reads the request head starting at `pos` and answers it, or waits for the rest of it.
    fn next_request(
        &mut self,
        input: &[u8],
        pos: usize,
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        let rest = &input[pos..];
        if rest.is_empty() {
            return Step::Stop(progress(pos, Verdict::Wait));
        }
        let started = *self.started.get_or_insert(cx.now);
        let Some(head_len) = find_head_end(rest, self.scanned) else {
            return Step::Stop(self.incomplete_head(rest, pos, cx, exchanges, out));
        };
        self.scanned = 0;
        self.started = None;
        let head = match parse_complete_head(&rest[..head_len], cx) {
            Ok(head) => head,
            Err(refusal) => {
                return Step::Stop(reject(refusal, &Client::default(), pos, exchanges, out))
            }
        };
        let pos = pos + head_len;
        exchanges.request(&Request {
            method: head.method,
            target: head.target,
            version: head.version,
            header_bytes: head_len,
        });
        let (answer_id, body) = match head.decide(cx) {
            Ok(decided) => decided,
            Err(rejection) => {
                let refusal = Refusal::new(rejection, head.version);
                return Step::Stop(reject(refusal, &head.client, pos, exchanges, out));
            }
        };
        // Expect: 100-continue with a body is answered at once, without waiting for (or reading)
        // the body, and the connection closes gracefully after the answer: the client may send
        // the body anyway, and it must not be taken for a request.
        let early = head.expects_continue && body != Body::None;
        let exchange = Exchange {
            answer: answer_id,
            keep_alive: head.persistent && !cx.phase.draining() && !early,
            head_only: head.method == "HEAD",
            method: head.method,
            target: head.target,
            version: head.version,
            started,
            client: head.client,
            headers: head.headers,
        };
        if early {
            // The body the client may send must not wait behind a delay: answered at once.
            let _ = exchanges.answer(&exchange, out);
            return Step::Stop(progress(pos, Verdict::Close { linger: true }));
        }
        if body == Body::None {
            return answer(&exchange, input, pos, exchanges, out);
        }
        self.body = body;
        self.hold(&exchange);
        Step::Next(pos)
    }

    /// No end of head in `rest` yet: refuse it now if it can already be told bad or too long,
    /// otherwise wait for more.
    fn incomplete_head(
        &mut self,
        rest: &[u8],
        pos: usize,
        cx: &Context<'_>,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Progress {
        let first_look = self.scanned == 0;
        self.scanned = rest.len();
        if rest.len() > cx.limits.max_header_bytes {
            let refusal = too_long(rest, cx);
            return reject(refusal, &Client::default(), pos, exchanges, out);
        }
        // Checking the first bytes of a request at once answers a TLS handshake or a binary
        // probe with 400 now, instead of after the read timeout.
        if first_look {
            if let Err(refusal) = parse_head(rest, cx.request_id_header) {
                return reject(refusal, &Client::default(), pos, exchanges, out);
            }
        }
        progress(pos, Verdict::Wait)
    }
}

/// RFC 9112 2.2: empty lines before a request line are ignored (some clients send a CRLF after a
/// body); without this they would start a "request" that never completes. Only at the start of a
/// head: `scanned` is zero there.
fn skip_blank_lines(input: &[u8], mut pos: usize, scanned: usize) -> usize {
    if scanned == 0 {
        while pos < input.len() && matches!(input[pos], b'\r' | b'\n') {
            pos += 1;
        }
    }
    pos
}

/// Has `exchange` answered; the connection closes after it unless it is kept alive.
fn answer(
    exchange: &Exchange<'_>,
    input: &[u8],
    pos: usize,
    exchanges: &mut impl Exchanges,
    out: &mut Vec<u8>,
) -> Step {
    let from = out.len();
    let hold = exchanges
        .answer(exchange, out)
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

/// Has the refusal written; the connection closes after it, gracefully, since the peer may still
/// be sending the rest of what was refused.
fn reject(
    refusal: Refusal,
    client: &Client<'_>,
    consumed: usize,
    exchanges: &mut impl Exchanges,
    out: &mut Vec<u8>,
) -> Progress {
    exchanges.reject(refusal, client, out);
    progress(consumed, Verdict::Close { linger: true })
}

fn progress(consumed: usize, verdict: Verdict) -> Progress {
    Progress {
        consumed,
        verdict,
        hold: None,
    }
}

/// A refusal, with the version to say it in: the request's, or HTTP/1.1 when the request line was
/// not understood (or never came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub rejection: Rejection,
    pub minor: u8,
}

impl Refusal {
    fn new(rejection: Rejection, minor: u8) -> Refusal {
        Refusal { rejection, minor }
    }
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Refusal {
        Refusal::new(rejection, HIGHEST_MINOR)
    }
}

/// Parses a head whose end was found: a head httparse still calls partial is not well formed.
fn parse_complete_head<'a>(head: &'a [u8], cx: &Context<'_>) -> Result<Head<'a>, Refusal> {
    if head.len() > cx.limits.max_header_bytes {
        return Err(too_long(head, cx));
    }
    parse_head(head, cx.request_id_header)?.ok_or(Rejection::BadRequest.into())
}

/// A head past the limit: 414 when its request line alone is (and starts as one should), 431
/// when it is a well-formed start, 400 when it is garbage, however long.
fn too_long(head: &[u8], cx: &Context<'_>) -> Refusal {
    let line_len = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    if line_len > cx.limits.max_header_bytes && RequestLine::plausible_start(&head[..line_len]) {
        return Rejection::UriTooLong.into();
    }
    match parse_head(head, cx.request_id_header) {
        Err(refusal) => refusal,
        Ok(_) => Rejection::HeadersTooLarge.into(),
    }
}

/// Returns the length of the head (through its blank line) if `buf` holds one. Heads end at
/// `\n\n` or `\n\r\n`, as in the article, so that bare-LF clients are served too. The search
/// starts two bytes before `from` because a terminator may straddle two reads.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(2);
    let mut i = start;
    while let Some(offset) = ascii::newline(buf.get(i..)?) {
        let nl = i + offset;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// The facts of a request head that decide its answer.
#[derive(Debug)]
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 and later 1.x.
    version: u8,
    persistent: bool,
    content_length: Option<u64>,
    length_fields: usize,
    /// The codings of every `Transfer-Encoding` field line, in order.
    transfer_codings: Codings,
    host_fields: usize,
    /// Whether every `Host` value is a valid `uri-host [ ":" port ]`.
    host_valid: bool,
    expects_continue: bool,
    client: Client<'a>,
    asks: Asks<'a>,
    /// The head as received: the header lines, after the request line (which no header name
    /// matches: it has a space before any colon).
    headers: &'a [u8],
}

/// What `Transfer-Encoding` field lines said, without keeping them.
#[derive(Debug, Default, Clone, Copy)]
struct Codings {
    present: bool,
    /// `chunked` codings seen.
    chunked: usize,
    /// Codings seen that are not `chunked`.
    others: usize,
    last_is_chunked: bool,
    malformed: bool,
}

impl Codings {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        let mut any = false;
        for coding in value.split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            // Empty list elements are allowed (RFC 9110 5.6.1) and mean nothing.
            if coding.is_empty() {
                continue;
            }
            any = true;
            // A coding with parameters is not one this server takes: `chunked` has none, and
            // `chunked;x` must not pass for it.
            if !is_token(coding) {
                self.malformed = true;
            }
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if self.last_is_chunked {
                self.chunked += 1;
            } else {
                self.others += 1;
            }
        }
        if !any {
            self.malformed = true;
        }
    }

    /// RFC 9112 6.1 and 6.3: the body is chunked only if `chunked` is the final coding, once.
    fn check(self) -> Result<(), Rejection> {
        if self.malformed || !self.last_is_chunked || self.chunked > 1 {
            return Err(Rejection::BadRequest);
        }
        if self.others > 0 {
            // Codings before `chunked` (gzip, or one it does not know) would have to be undone.
            return Err(Rejection::NotImplemented);
        }
        Ok(())
    }
}

impl Head<'_> {
    /// Checks the head against the rules of RFC 9112 and 9110 and picks its answer and the body
    /// to read.
    fn decide(&self, cx: &Context<'_>) -> Result<(AnswerId, Body), Rejection> {
        let body = self.framing(cx.limits)?;
        let path = self.check_target()?;
        if !KNOWN_METHODS.contains(&self.method) {
            return Err(Rejection::NotImplemented);
        }
        let answer = match path {
            Some(path) => {
                let ready = cx.phase.ready();
                cx.responses
                    .choose(self.method, path, ready, cx.port, &self.asks)
            }
            None if self.target == "*" && self.method == "OPTIONS" => {
                cx.responses.options_any(cx.port)
            }
            // Authority-form is for CONNECT, and responder opens no tunnels.
            None if self.method == "CONNECT" => return Err(Rejection::NotImplemented),
            None => return Err(Rejection::BadRequest),
        };
        Ok((answer, body))
    }

    /// RFC 9112 6: a length, chunked, or no body; conflicting framing is refused, since a proxy
    /// in front may have read it the other way (request smuggling).
    fn framing(&self, limits: Limits) -> Result<Body, Rejection> {
        if self.length_fields > 1 {
            return Err(Rejection::BadRequest);
        }
        if self.transfer_codings.present {
            // HTTP/1.0 has no transfer codings (RFC 9112 6.1): its framing is faulty.
            if self.length_fields > 0 || self.version == 0 {
                return Err(Rejection::BadRequest);
            }
            self.transfer_codings.check()?;
            return Ok(Body::Chunked(Chunked {
                stage: ChunkStage::Size,
                total: 0,
            }));
        }
        match self.content_length {
            Some(length) if length > limits.max_body_bytes => Err(Rejection::PayloadTooLarge),
            Some(length) if length > 0 => Ok(Body::Length(length)),
            _ => Ok(Body::None),
        }
    }

    /// RFC 9112 3.2: an HTTP/1.1 request names its host once, validly, in `Host`, unless its
    /// target is in absolute form, whose authority wins. Returns the path to route by, if any.
    fn check_target(&self) -> Result<Option<&[u8]>, Rejection> {
        let target = self.target.as_bytes();
        if let Some((authority, path)) = absolute_form(target) {
            if !valid_authority(authority) {
                return Err(Rejection::BadRequest);
            }
            return Ok(Some(strip_query(path)));
        }
        let host_missing = self.version == 1 && self.host_fields == 0;
        if host_missing || self.host_fields > 1 || !self.host_valid {
            return Err(Rejection::BadRequest);
        }
        // Origin-form has a path; asterisk- and authority-form do not.
        Ok((target.first() == Some(&b'/')).then(|| strip_query(target)))
    }
}

/// Parses a head with httparse: `Ok(None)` when it is incomplete but well formed so far.
/// `request_id_header` names the field whose value is the request's id, if one is taken.
fn parse_head<'a>(
    buf: &'a [u8],
    request_id_header: Option<&[u8]>,
) -> Result<Option<Head<'a>>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let parsed = req.parse(buf);
    let minor = req.version.unwrap_or(HIGHEST_MINOR);
    let (method, target, version, fields) = match parsed {
        Ok(httparse::Status::Complete(_)) => match (req.method, req.path, req.version) {
            (Some(method), Some(target), Some(version)) => (method, target, version, &*req.headers),
            _ => return Err(Rejection::BadRequest.into()),
        },
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(Rejection::HeadersTooLarge, minor))
        }
        Err(httparse::Error::Version) => return parse_later_minor_version(buf, request_id_header),
        Err(_) => return Err(Refusal::new(Rejection::BadRequest, minor)),
    };
    let head = Head::new(method, target, version, fields, buf, request_id_header)
        .map_err(|r| Refusal::new(r, version))?;
    Ok(Some(head))
}

/// httparse refuses every version but 1.0 and 1.1. A well-formed `HTTP/1.x` line with a later
/// minor version is served as HTTP/1.1 (RFC 9110 2.5), its fields parsed by httparse after the
/// line; another major version is a 505; anything else is a malformed request line, a 400.
fn parse_later_minor_version<'a>(
    buf: &'a [u8],
    request_id_header: Option<&[u8]>,
) -> Result<Option<Head<'a>>, Refusal> {
    let Some(line) = RequestLine::parse(buf) else {
        // The line's end has not come yet: wait for it (a 414 bounds the wait).
        if !buf.contains(&b'\n') && RequestLine::plausible_start(buf) {
            return Ok(None);
        }
        return Err(Rejection::BadRequest.into());
    };
    if line.major != b'1' {
        return Err(Rejection::VersionNotSupported.into());
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&buf[line.len..], &mut fields) {
        Ok(httparse::Status::Complete((_, fields))) => {
            let head = Head::new(line.method, line.target, 1, fields, buf, request_id_header)?;
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Rejection::HeadersTooLarge.into()),
        Err(_) => Err(Rejection::BadRequest.into()),
    }
}

impl<'a> Head<'a> {
    fn new(
        method: &'a str,
        target: &'a str,
        version: u8,
        fields: &[httparse::Header<'a>],
        headers: &'a [u8],
        request_id_header: Option<&[u8]>,
    ) -> Result<Head<'a>, Rejection> {
        let mut head = Head {
            method,
            target,
            version,
            // HTTP/1.0 closes unless asked to stay; HTTP/1.1 stays unless asked to close.
            persistent: version == 1,
            content_length: None,
            length_fields: 0,
            transfer_codings: Codings::default(),
            host_fields: 0,
            host_valid: true,
            expects_continue: false,
            client: Client::default(),
            asks: Asks::default(),
            headers,
        };
        for field in fields {
            let name = field.name.as_bytes();
            if request_id_header.is_some_and(|id| name.eq_ignore_ascii_case(id)) {
                if valid_request_id(field.value) {
                    head.client.request_id = field.value;
                }
            } else {
                head.add_field(name, field.value)?;
            }
        }
        Ok(head)
    }

    fn add_field(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), Rejection> {
        let first = |kept: &mut &'a [u8]| {
            if kept.is_empty() {
                *kept = value;
            }
        };
        // A name is a token (httparse takes no other byte).
        let is = |known: &[u8]| ascii::token_is(name, known);
        // By length first: a field is compared with the one or two names of its length only.
        match name.len() {
            4 if is(b"host") => {
                self.host_fields += 1;
                self.host_valid &= valid_authority(value.trim_ascii());
                self.client.host = value;
            }
            10 if is(b"user-agent") => first(&mut self.client.user_agent),
            7 if is(b"referer") => first(&mut self.client.referer),
            15 if is(b"x-forwarded-for") => first(&mut self.client.x_forwarded_for),
            11 if is(b"traceparent") => first(&mut self.client.traceparent),
            10 if is(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        self.persistent = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && self.version == 0 {
                        self.persistent = true;
                    }
                }
            }
            14 if is(b"content-length") => {
                self.length_fields += 1;
                self.content_length = Some(parse_length(value).ok_or(Rejection::BadRequest)?);
            }
            17 if is(b"transfer-encoding") => self.transfer_codings.add(value),
            6 if is(b"expect") => {
                self.expects_continue = value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            13 if is(b"if-none-match") => first(&mut self.asks.if_none_match),
            17 if is(b"if-modified-since") => first(&mut self.asks.if_modified_since),
            6 if is(b"x-code") => first(&mut self.asks.x_code),
            8 if is(b"x-format") => first(&mut self.asks.x_format),
            6 if is(b"accept") => first(&mut self.asks.accept),
            _ => {}
        }
        Ok(())
    }
}

/// A request line checked byte by byte (RFC 9112 3): `method SP target SP HTTP/d.d`, single
/// spaces, a token method and a target of visible characters.
struct RequestLine<'a> {
    method: &'a str,
    target: &'a str,
    major: u8,
    /// Through the line's end.
    len: usize,
}

impl<'a> RequestLine<'a> {
    fn parse(buf: &'a [u8]) -> Option<RequestLine<'a>> {
        let end = buf.iter().position(|&b| b == b'\n')?;
        let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
        let mut parts = line.split(|&b| b == b' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_token(method) || !is_target(target) {
            return None;
        }
        let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = *version else {
            return None;
        };
        if !major.is_ascii_digit() || !minor.is_ascii_digit() {
            return None;
        }
        Some(RequestLine {
            method: std::str::from_utf8(method).ok()?,
            target: std::str::from_utf8(target).ok()?,
            major,
            len: end + 1,
        })
    }

    /// Whether `buf`, with no line end yet, can still become a request line: a method, a space,
    /// and target characters.
    fn plausible_start(buf: &[u8]) -> bool {
        let Some(space) = buf.iter().position(|&b| b == b' ') else {
            return is_token(buf);
        };
        is_token(&buf[..space])
            && buf[space + 1..]
                .iter()
                .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r')
    }
}

fn is_target(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_graphic)
}

/// `uri-host [ ":" port ]` (RFC 3986 3.2.2): an IP literal in brackets or a reg-name (unreserved,
/// percent-encoded and sub-delimiter characters, without the comma that would make it a list),
/// then digits after a colon. Empty, userinfo (`@`), paths and spaces are refused.
fn valid_authority(authority: &[u8]) -> bool {
    let (host, port) = match authority.first() {
        Some(b'[') => match authority.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = &authority[1..close];
                let valid = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b":.".contains(&b));
                if !valid {
                    return false;
                }
                (&authority[..=close], &authority[close + 1..])
            }
            None => return false,
        },
        _ => match authority.iter().position(|&b| b == b':') {
            Some(colon) => (&authority[..colon], &authority[colon..]),
            None => (authority, &b""[..]),
        },
    };
    let host_ok = !host.is_empty()
        && (host.starts_with(b"[")
            || host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(&b)));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    host_ok && port_ok
}

/// A request id worth echoing and logging: 1 to 128 visible ASCII characters.
fn valid_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

/// Content-Length is 1*DIGIT: no sign, no spaces inside, no list.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The authority and path of an absolute-form target (`http://host/a?b`; the path is `/` when
/// absent), or `None` for any other form.
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme_len = if target.get(..7)?.eq_ignore_ascii_case(b"http://") {
        7
    } else if target.get(..8)?.eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return None;
    };
    let rest = &target[scheme_len..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let path = match rest.get(end) {
        Some(b'/') => &rest[end..],
        _ => b"/",
    };
    Some((&rest[..end], path))
}

/// The path a route is matched against: without its query or fragment.
fn strip_query(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    &path[..end]
}

/// A chunk-size line at the front of `rest` (RFC 9112 7.1): hex digits, optional extensions,
/// CRLF. `Ok(Some((line length, size)))`, `Ok(None)` while it is incomplete.
fn chunk_size(rest: &[u8], limits: Limits) -> Result<Option<(usize, u64)>, Rejection> {
    let max_line = MAX_CHUNK_LINE.min(limits.max_header_bytes);
    let line_end = rest.iter().position(|&b| b == b'\n');
    // httparse takes a size line without digits as zero and any byte in an extension; a
    // stricter front (a digit first, visible characters, CRLF) keeps both from meaning something
    // else to a proxy.
    let visible = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\t';
    let content = match line_end {
        Some(end) if end > 0 && rest[end - 1] == b'\r' => &rest[..end - 1],
        Some(_) => return Err(Rejection::BadRequest),
        None => rest.strip_suffix(b"\r").unwrap_or(rest),
    };
    let starts_with_digit = rest.first().is_none_or(u8::is_ascii_hexdigit);
    if !starts_with_digit || !content.iter().all(visible) {
        return Err(Rejection::BadRequest);
    }
    let Some(end) = line_end else {
        return if rest.len() >= max_line {
            Err(Rejection::BadRequest)
        } else {
            Ok(None)
        };
    };
    if end + 1 > max_line {
        return Err(Rejection::BadRequest);
    }
    match httparse::parse_chunk_size(&rest[..=end]) {
        Ok(httparse::Status::Complete(parsed)) => Ok(Some(parsed)),
        _ => Err(Rejection::BadRequest),
    }
}

/// The trailer section after the last chunk, through its empty line, bounded like a head.
fn trailer_section(rest: &[u8], limits: Limits) -> Result<Option<usize>, Rejection> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if len <= limits.max_header_bytes => Ok(Some(len)),
        Ok(httparse::Status::Partial) if rest.len() <= limits.max_header_bytes => Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Err(Rejection::HeadersTooLarge),
        Err(_) => Err(Rejection::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::Framing;
    use crate::config::Config;

    /// Writes the prebuilt answers, as the layer above does for everything but the metrics.
    struct Prebuilt<'a>(&'a Responses);

    impl Exchanges for Prebuilt<'_> {
        fn request(&mut self, _: &Request<'_>) {}

        fn answer(&mut self, e: &Exchange<'_>, out: &mut Vec<u8>) -> Option<Duration> {
            let framing = Framing {
                minor: e.version,
                keep_alive: e.keep_alive,
                head_only: e.head_only,
                request_id: b"",
            };
            self.0.write(e.answer, &framing, out);
            None
        }

        fn reject(&mut self, refusal: Refusal, _: &Client<'_>, out: &mut Vec<u8>) {
            let id = AnswerId::Rejected(refusal.rejection);
            self.0.write(id, &Framing::refusal(refusal.minor, b""), out);
        }
    }

    fn run(input: &[u8]) -> (String, Progress) {
        let mut site = Site::new(&Config::default());
        site.settings.limits.max_body_bytes = 100;
        let cx = Context::new(&site, Phase::Serving, Instant::now(), Port::Traffic);
        let mut out = Vec::new();
        let p =
            RequestStream::default().advance(input, &cx, &mut Prebuilt(&site.responses), &mut out);
        (String::from_utf8_lossy(&out).into_owned(), p)
    }

    #[test]
    fn head_ends_at_either_terminator() {
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nrest", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\n", 17), Some(18));
    }

    #[test]
    fn http10_closes_and_http11_stays() {
        let (out, p) = run(b"GET / HTTP/1.0\r\n\r\n");
        assert!(out.contains("Connection: close"));
        assert_eq!(p.verdict, Verdict::Close { linger: false });
        let (out, p) = run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.contains("Connection: keep-alive"));
        assert_eq!(p.verdict, Verdict::Wait);
    }

    #[test]
    fn statuses_for_bad_heads() {
        let cases: [(&[u8], &str); 9] = [
            (b"GET / HTTP/2.0\r\n\r\n", "505"),
            (b"GET / FOO\r\n\r\n", "400"),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
            (b"\x16\x03\x01\x02\x00\x01", "400"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "501",
            ),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", "413"),
            (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
        ];
        for (input, status) in cases {
            let (out, _) = run(input);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status} ")),
                "{input:?} got {out}"
            );
        }
    }

    #[test]
    fn absolute_targets_give_their_authority_and_path() {
        assert_eq!(
            absolute_form(b"http://host:1/x/y?z"),
            Some((&b"host:1"[..], &b"/x/y?z"[..]))
        );
        assert_eq!(
            absolute_form(b"HTTPS://host"),
            Some((&b"host"[..], &b"/"[..]))
        );
        assert_eq!(absolute_form(b"*"), None);
        assert_eq!(absolute_form(b"host:443"), None);
        assert_eq!(strip_query(b"/a?b=c"), b"/a");
    }

    #[test]
    fn authorities_are_host_and_optional_port() {
        for good in [
            "example.com",
            "a:80",
            "[::1]:8080",
            "10.0.0.1",
            "a-b_c~d.e",
            "x:",
        ] {
            assert!(valid_authority(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a, b",
            "example.com/path",
            "user@host",
            "a:8x",
            ":80",
            "[::1",
            "a\x01",
        ] {
            assert!(!valid_authority(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn chunk_size_lines_are_strict() {
        let limits = Limits {
            max_header_bytes: 8192,
            max_body_bytes: 100,
        };
        assert_eq!(chunk_size(b"1a\r\nrest", limits), Ok(Some((4, 26))));
        assert_eq!(chunk_size(b"5;name=value\r\n", limits), Ok(Some((14, 5))));
        assert_eq!(chunk_size(b"5", limits), Ok(None));
        for bad in [
            &b"\r\n"[..],
            b";x\r\n",
            b"5\n",
            b"-5\r\n",
            b"5\x00\r\n",
            b"0x5\r\n",
        ] {
            assert_eq!(
                chunk_size(bad, limits),
                Err(Rejection::BadRequest),
                "{bad:?}"
            );
        }
        assert_eq!(
            chunk_size(&[b'1'; 1100], limits),
            Err(Rejection::BadRequest),
            "an endless size line"
        );
    }
}
