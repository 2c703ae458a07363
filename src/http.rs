//! The HTTP/1.x request stream of one connection, as a pure state machine: bytes in, response bytes
//! and a verdict out.
//!
//! [`RequestStream::advance`] finds the end of each request head (the article's `\n\n` and
//! `\n\r\n`), parses it with `httparse`, decides persistence, reads and discards any body, and
//! appends the prebuilt answer for every complete request, in order. It owns the HTTP semantics and
//! every per-request limit; it owns no socket, no timer and no buffer beyond its caller's, which is
//! why it can be driven byte by byte from tests and fuzzers.

use std::time::Instant;

use crate::control::Phase;
use crate::metrics::{Metrics, WorkerStats};
use crate::response::{AnswerId, Rejection, Responses, Sent};

/// Headers beyond this count get 431: real clients send a dozen or two.
pub const MAX_HEADERS: usize = 64;
/// Responses for a pipelined batch accumulate up to this many bytes before they are flushed, so
/// that a client that pipelines without reading cannot make the server buffer without bound.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

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

/// The per-call context: the answers to pick from and the connection they are for.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub responses: &'a Responses,
    pub limits: Limits,
    /// Set while the server drains: every answer says `Connection: close`.
    pub draining: bool,
    /// Cleared once a shutdown has begun: the readiness probe answers 503.
    pub ready: bool,
    pub conn_id: u64,
    pub access_log: bool,
    /// Whether requests to the built-in endpoints are logged too.
    pub log_builtins: bool,
    /// When the bytes being fed were read (the event loop's clock, taken once per wake-up).
    pub now: Instant,
    /// This worker's counters.
    pub stats: &'a WorkerStats,
    /// Every worker's counters, for a `/metrics` request.
    pub metrics: &'a Metrics,
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

impl RequestStream {
    /// True while a request has begun but is not complete: `unconsumed` is the length of the
    /// input the caller kept from the last call.
    pub fn mid_request(&self, unconsumed: usize) -> bool {
        self.body_left > 0 || unconsumed > 0
    }

    /// Answers every complete request at the front of `input`, appending the responses to `out`.
    pub fn advance(&mut self, input: &[u8], cx: &Context<'_>, out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        loop {
            if out.len() >= OUTPUT_HIGH_WATER {
                return progress(pos, Verdict::Flush);
            }
            if self.body_left > 0 {
                let take = self.body_left.min((input.len() - pos) as u64);
                pos += take as usize;
                self.body_left -= take;
                if self.body_left > 0 {
                    return progress(pos, Verdict::Wait);
                }
                if let Some(p) = self.pending.take() {
                    p.respond(cx, out);
                    if !p.keep_alive {
                        return progress(
                            pos,
                            Verdict::Close {
                                linger: pos < input.len(),
                            },
                        );
                    }
                }
                continue;
            }
            // RFC 9112 2.2: ignore empty lines before a request line (some clients send a CRLF
            // after a body); without this they would start a "request" that never completes.
            if self.scanned == 0 {
                while pos < input.len() && matches!(input[pos], b'\r' | b'\n') {
                    pos += 1;
                }
            }
            let rest = &input[pos..];
            if rest.is_empty() {
                return progress(pos, Verdict::Wait);
            }
            let started = *self.started.get_or_insert(cx.now);
            let Some(head_len) = find_head_end(rest, self.scanned) else {
                let first_look = self.scanned == 0;
                self.scanned = rest.len();
                if rest.len() > cx.limits.max_header_bytes {
                    // Garbage is a 400 even when it is long; only a well-formed start is a 431.
                    let rejection = match parse_head(rest) {
                        Err(r) => r,
                        Ok(_) => Rejection::HeadersTooLarge,
                    };
                    return reject(cx, out, pos, rejection);
                }
                // Checking the first bytes of a request at once answers a TLS handshake or a
                // binary probe with 400 now, instead of after the read timeout.
                if first_look {
                    if let Err(rejection) = parse_head(rest) {
                        return reject(cx, out, pos, rejection);
                    }
                }
                return progress(pos, Verdict::Wait);
            };
            self.scanned = 0;
            self.started = None;
            if head_len > cx.limits.max_header_bytes {
                return reject(cx, out, pos, Rejection::HeadersTooLarge);
            }
            let head = match parse_head(&rest[..head_len]) {
                Ok(Some(head)) => head,
                // A head whose end was found but that httparse calls partial is not well formed.
                Ok(None) => return reject(cx, out, pos, Rejection::BadRequest),
                Err(rejection) => return reject(cx, out, pos, rejection),
            };
            pos += head_len;
            tracing::debug!(
                conn = cx.conn_id,
                method = head.method,
                path = head.target,
                version = version_name(head.version),
                header_bytes = head_len,
                "request"
            );
            if let Some(rejection) = head.rejection(cx.limits) {
                return reject(cx, out, pos, rejection);
            }
            let answer = match target_path(head.target) {
                Some(path) => cx.responses.choose(head.method, path, cx.ready),
                None => return reject(cx, out, pos, Rejection::BadRequest),
            };
            let keep_alive = head.persistent && !cx.draining;
            let head_only = head.method == "HEAD";
            let exchange = Exchange {
                answer,
                keep_alive,
                head_only,
                method: head.method,
                target: head.target,
                version: head.version,
                started,
            };
            if head.content_length > 0 {
                // Answered once the body is read: keep the decision, with owned strings.
                self.body_left = head.content_length;
                self.pending = Some(Box::new(exchange.to_owned()));
                continue;
            }
            exchange.respond(cx, out);
            if !keep_alive {
                return progress(
                    pos,
                    Verdict::Close {
                        linger: pos < input.len(),
                    },
                );
            }
        }
    }
}

fn progress(consumed: usize, verdict: Verdict) -> Progress {
    Progress { consumed, verdict }
}

/// One request's decided answer, ready to be written: borrowing the request's bytes, or owning
/// copies while it waits for the body.
#[derive(Debug, Clone)]
struct Exchange<S> {
    answer: AnswerId,
    keep_alive: bool,
    head_only: bool,
    method: S,
    target: S,
    version: u8,
    started: Instant,
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

impl<S: AsRef<str>> Exchange<S> {
    fn respond(&self, cx: &Context<'_>, out: &mut Vec<u8>) {
        let Sent { status, bytes } = if self.answer == AnswerId::Metrics {
            let mut body = String::new();
            let phase = if cx.draining {
                Phase::Draining
            } else if cx.ready {
                Phase::Serving
            } else {
                Phase::Unready
            };
            cx.metrics.render(phase, &mut body);
            cx.responses
                .write_metrics(&body, self.keep_alive, self.head_only, out)
        } else {
            cx.responses
                .write(self.answer, self.keep_alive, self.head_only, out)
        };
        let duration_us = cx.now.saturating_duration_since(self.started).as_micros() as u64;
        cx.stats.response(status, bytes, duration_us);
        if cx.access_log && (cx.log_builtins || !self.answer.is_builtin()) {
            tracing::info!(
                target: "responder::access",
                conn = cx.conn_id,
                method = self.method.as_ref(),
                path = self.target.as_ref(),
                version = version_name(self.version),
                status,
                bytes,
                duration_us,
                keep_alive = self.keep_alive,
                "response"
            );
        }
    }
}

fn version_name(version: u8) -> &'static str {
    if version == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

/// Writes the fixed answer for a refused request; the connection closes after it, gracefully,
/// since the peer may still be sending the rest of what was refused.
fn reject(cx: &Context<'_>, out: &mut Vec<u8>, consumed: usize, rejection: Rejection) -> Progress {
    let Sent { status, bytes } =
        cx.responses
            .write(AnswerId::Rejected(rejection), false, false, out);
    cx.stats.response(status, bytes, 0);
    tracing::info!(
        target: "responder::access",
        conn = cx.conn_id,
        status,
        bytes,
        rejection = ?rejection,
        "request rejected"
    );
    progress(consumed, Verdict::Close { linger: true })
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
    use crate::config::{Endpoints, Route};

    fn run(input: &[u8]) -> (String, Progress) {
        let responses = Responses::new(&[Route::default_hello()], &Endpoints::default());
        let limits = Limits {
            max_header_bytes: 8192,
            max_body_bytes: 100,
        };
        let stats = WorkerStats::default();
        let metrics = Metrics::new(vec![], Default::default());
        let cx = Context {
            responses: &responses,
            limits,
            draining: false,
            ready: true,
            conn_id: 1,
            access_log: false,
            log_builtins: false,
            now: Instant::now(),
            stats: &stats,
            metrics: &metrics,
        };
        let mut out = Vec::new();
        let p = RequestStream::default().advance(input, &cx, &mut out);
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
