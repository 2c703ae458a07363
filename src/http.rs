//! The HTTP/1.x request stream of one connection, as a pure state machine: bytes in, the choice of
//! answer and its bytes out, and a verdict for the connection.
//!
//! [`RequestStream::advance`] finds the end of each request head (the article's `\n\n` and
//! `\n\r\n`), parses it with `httparse`, decides persistence, reads and discards any body, and has
//! every complete request answered, in order, through the caller's [`Exchanges`]. It owns the HTTP
//! semantics and every per-request limit; it owns no socket, no timer, no counter and no buffer
//! beyond its caller's, which is why tests and fuzzers can drive it byte by byte.

use std::time::Instant;

use crate::response::{AnswerId, Rejection, Responses};
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
}

/// What the request stream decides from: the answers, the limits, the server's phase, the clock.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    responses: &'a Responses,
    limits: Limits,
    phase: Phase,
    /// When the bytes being fed were read (the event loop's clock, taken once per wake-up).
    now: Instant,
}

impl<'a> Context<'a> {
    pub fn new(site: &'a Site, phase: Phase, now: Instant) -> Context<'a> {
        Context {
            responses: &site.responses,
            limits: site.settings.limits,
            phase,
            now,
        }
    }
}

/// Where the request stream hands what it decided: the layer above writes each answer's bytes
/// (rendering the ones that are not prebuilt), counts it and logs it.
pub trait Exchanges {
    /// A request head was parsed; its answer comes once its body is read.
    fn request(&mut self, request: &Request<'_>);
    /// Appends the answer to `exchange` to `out`.
    fn answer(&mut self, exchange: &Exchange<&str>, out: &mut Vec<u8>);
    /// Appends the refusal to `out`; the connection closes after it.
    fn reject(&mut self, rejection: Rejection, out: &mut Vec<u8>);
}

/// A parsed request line, for the debug log.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: u8,
    pub header_bytes: usize,
}

/// One request's decided answer, ready to be written: borrowing the request's bytes, or owning
/// copies while it waits for the body.
#[derive(Debug, Clone)]
pub struct Exchange<S> {
    pub answer: AnswerId,
    pub keep_alive: bool,
    pub head_only: bool,
    pub method: S,
    pub target: S,
    pub version: u8,
    /// When the request's first byte was read.
    pub started: Instant,
}

impl Exchange<&str> {
    fn to_owned(&self) -> Exchange<String> {
        Exchange {
            answer: self.answer,
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            method: self.method.to_string(),
            target: self.target.to_string(),
            version: self.version,
            started: self.started,
        }
    }
}

impl Exchange<String> {
    fn borrowed(&self) -> Exchange<&str> {
        Exchange {
            answer: self.answer,
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            method: &self.method,
            target: &self.target,
            version: self.version,
            started: self.started,
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

#[derive(Debug, Default)]
pub struct RequestStream {
    /// Body bytes of the current request still to be read and discarded.
    body_left: u64,
    /// The answer to the current request, sent once its body has been read.
    /// Boxed: only requests with a body have one, and an idle connection should stay small.
    pending: Option<Box<Exchange<String>>>,
    /// How much of the unconsumed input has already been searched for the end of the head, so
    /// that a head arriving a byte at a time is searched once, not once per byte.
    scanned: usize,
    /// When the current request's first byte was read.
    started: Option<Instant>,
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
        self.body_left > 0 || unconsumed > 0
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
            let step = if self.body_left > 0 {
                self.skip_body(input, pos, exchanges, out)
            } else {
                self.next_request(
                    input,
                    skip_blank_lines(input, pos, self.scanned),
                    cx,
                    exchanges,
                    out,
                )
            };
            match step {
                Step::Next(next) => pos = next,
                Step::Stop(progress) => return progress,
            }
        }
    }

    /// Discards body bytes from `pos`; once the body is complete, answers its request.
    fn skip_body(
        &mut self,
        input: &[u8],
        pos: usize,
        exchanges: &mut impl Exchanges,
        out: &mut Vec<u8>,
    ) -> Step {
        let take = self.body_left.min((input.len() - pos) as u64);
        let pos = pos + take as usize;
        self.body_left -= take;
        if self.body_left > 0 {
            return Step::Stop(progress(pos, Verdict::Wait));
        }
        match self.pending.take() {
            Some(exchange) => answer(&exchange.borrowed(), input, pos, exchanges, out),
            None => Step::Next(pos),
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
        let head = match parse_complete_head(&rest[..head_len], cx.limits) {
            Ok(head) => head,
            Err(rejection) => return Step::Stop(reject(rejection, pos, exchanges, out)),
        };
        let pos = pos + head_len;
        exchanges.request(&Request {
            method: head.method,
            target: head.target,
            version: head.version,
            header_bytes: head_len,
        });
        let answer_id = match head.rejection(cx.limits) {
            Some(rejection) => return Step::Stop(reject(rejection, pos, exchanges, out)),
            None => match target_path(head.target) {
                Some(path) => cx.responses.choose(head.method, path, cx.phase.ready()),
                None => return Step::Stop(reject(Rejection::BadRequest, pos, exchanges, out)),
            },
        };
        let exchange = Exchange {
            answer: answer_id,
            keep_alive: head.persistent && !cx.phase.draining(),
            head_only: head.method == "HEAD",
            method: head.method,
            target: head.target,
            version: head.version,
            started,
        };
        if head.content_length > 0 {
            // Answered once the body is read: keep the decision, with owned strings.
            self.body_left = head.content_length;
            self.pending = Some(Box::new(exchange.to_owned()));
            return Step::Next(pos);
        }
        answer(&exchange, input, pos, exchanges, out)
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
            // Garbage is a 400 even when it is long; only a well-formed start is a 431.
            let rejection = match parse_head(rest) {
                Err(r) => r,
                Ok(_) => Rejection::HeadersTooLarge,
            };
            return reject(rejection, pos, exchanges, out);
        }
        // Checking the first bytes of a request at once answers a TLS handshake or a binary
        // probe with 400 now, instead of after the read timeout.
        if first_look {
            if let Err(rejection) = parse_head(rest) {
                return reject(rejection, pos, exchanges, out);
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
    exchange: &Exchange<&str>,
    input: &[u8],
    pos: usize,
    exchanges: &mut impl Exchanges,
    out: &mut Vec<u8>,
) -> Step {
    exchanges.answer(exchange, out);
    if exchange.keep_alive {
        return Step::Next(pos);
    }
    Step::Stop(progress(
        pos,
        Verdict::Close {
            linger: pos < input.len(),
        },
    ))
}

/// Has the refusal written; the connection closes after it, gracefully, since the peer may still
/// be sending the rest of what was refused.
fn reject(
    rejection: Rejection,
    consumed: usize,
    exchanges: &mut impl Exchanges,
    out: &mut Vec<u8>,
) -> Progress {
    exchanges.reject(rejection, out);
    progress(consumed, Verdict::Close { linger: true })
}

fn progress(consumed: usize, verdict: Verdict) -> Progress {
    Progress { consumed, verdict }
}

/// Parses a head whose end was found: too long is a 431, and a head httparse still calls partial
/// is not well formed.
fn parse_complete_head(head: &[u8], limits: Limits) -> Result<Head<'_>, Rejection> {
    if head.len() > limits.max_header_bytes {
        return Err(Rejection::HeadersTooLarge);
    }
    parse_head(head)?.ok_or(Rejection::BadRequest)
}

/// Returns the length of the head (through its blank line) if `buf` holds one. Heads end at
/// `\n\n` or `\n\r\n`, as in the article, so that bare-LF clients are served too. The search
/// starts two bytes before `from` because a terminator may straddle two reads.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(2);
    let mut i = start;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
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
    version: u8,
    persistent: bool,
    content_length: u64,
    length_headers: usize,
    transfer_encoding: Option<&'a [u8]>,
}

impl Head<'_> {
    fn rejection(&self, limits: Limits) -> Option<Rejection> {
        if self.length_headers > 1 {
            // Two lengths are the start of request smuggling: refuse rather than pick one.
            return Some(Rejection::BadRequest);
        }
        if let Some(coding) = self.transfer_encoding {
            if self.length_headers > 0 {
                return Some(Rejection::BadRequest);
            }
            // Chunked bodies are not read: ask for a length. Anything else is not understood.
            return Some(if coding.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                Rejection::LengthRequired
            } else {
                Rejection::NotImplemented
            });
        }
        if self.content_length > limits.max_body_bytes {
            return Some(Rejection::PayloadTooLarge);
        }
        None
    }
}

/// Parses a head with httparse: `Ok(None)` when it is incomplete but well formed so far.
fn parse_head(buf: &[u8]) -> Result<Option<Head<'_>>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(version_rejection(buf)),
        Err(_) => return Err(Rejection::BadRequest),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Rejection::BadRequest);
    };
    // HTTP/1.0 closes unless asked to stay; HTTP/1.1 stays unless asked to close.
    let mut persistent = version == 1;
    let mut content_length = 0;
    let mut length_headers = 0;
    let mut transfer_encoding = None;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    persistent = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    persistent = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            length_headers += 1;
            content_length = parse_length(header.value).ok_or(Rejection::BadRequest)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = Some(header.value);
        }
    }
    Ok(Some(Head {
        method,
        target,
        version,
        persistent,
        content_length,
        length_headers,
        transfer_encoding,
    }))
}

/// A version httparse refuses is a 505 when it looks like `HTTP/x.y`, and a 400 otherwise.
fn version_rejection(buf: &[u8]) -> Rejection {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf[..line_end].trim_ascii_end();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version.strip_prefix(b"HTTP/") {
        Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
            Rejection::VersionNotSupported
        }
        _ => Rejection::BadRequest,
    }
}

/// Content-Length is 1*DIGIT: no sign, no spaces inside, no list.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The path a route is matched against: origin-form (`/a?b`) or absolute-form
/// (`http://host/a?b`), without its query. Other forms (`*`, authority-form) have no path.
fn target_path(target: &str) -> Option<&[u8]> {
    let bytes = target.as_bytes();
    let path = if bytes.first() == Some(&b'/') {
        bytes
    } else {
        let lower_scheme = bytes.get(..8).map(|s| s.to_ascii_lowercase());
        let after_scheme = match lower_scheme.as_deref() {
            Some(s) if s.starts_with(b"http://") => &bytes[7..],
            Some(s) if s.starts_with(b"https://") => &bytes[8..],
            _ => return None,
        };
        match after_scheme.iter().position(|&b| b == b'/') {
            Some(slash) => &after_scheme[slash..],
            None => b"/",
        }
    };
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    Some(&path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Writes the prebuilt answers, as the layer above does for everything but the metrics.
    struct Prebuilt<'a>(&'a Responses);

    impl Exchanges for Prebuilt<'_> {
        fn request(&mut self, _: &Request<'_>) {}

        fn answer(&mut self, e: &Exchange<&str>, out: &mut Vec<u8>) {
            self.0.write(e.answer, e.keep_alive, e.head_only, out);
        }

        fn reject(&mut self, rejection: Rejection, out: &mut Vec<u8>) {
            self.0
                .write(AnswerId::Rejected(rejection), false, false, out);
        }
    }

    fn run(input: &[u8]) -> (String, Progress) {
        let mut site = Site::new(&Config::default());
        site.settings.limits.max_body_bytes = 100;
        let cx = Context::new(&site, Phase::Serving, Instant::now());
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
        let cases: [(&[u8], &str); 8] = [
            (b"GET / HTTP/2.0\r\n\r\n", "505"),
            (b"GET / FOO\r\n\r\n", "400"),
            (b"\x16\x03\x01\x02\x00\x01", "400"),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "411",
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", "413"),
            (b"POST / HTTP/1.1\r\n\r\n", "405"),
        ];
        for (input, status) in cases {
            let (out, _) = run(input);
            assert!(
                out.starts_with(&format!("HTTP/1.0 {status} ")),
                "{input:?} got {out}"
            );
        }
    }

    #[test]
    fn targets_lose_their_query_and_authority() {
        assert_eq!(target_path("/a?b=c"), Some(&b"/a"[..]));
        assert_eq!(target_path("http://host:1/x/y?z"), Some(&b"/x/y"[..]));
        assert_eq!(target_path("HTTPS://host"), Some(&b"/"[..]));
        assert_eq!(target_path("*"), None);
        assert_eq!(target_path("host:443"), None);
    }
}
