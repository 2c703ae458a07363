//! A request head: parsed with httparse, its fields read into the facts that decide framing,
//! persistence and the answer (RFC 9112 and RFC 9110), and checked. It keeps slices of the head
//! it was given and nothing else.

use std::mem::MaybeUninit;

use super::chunked::Chunked;
use super::request_line::{absolute_form, is_target, strip_query, valid_authority, RequestLine};
use super::status::Rejection;
use super::{
    Body, Client, Context, Limits, Rejected, Selectors, Target, HIGHEST_MINOR, MAX_HEADERS,
};
use crate::ascii;

/// A bit for each method RFC 9110 defines (and PATCH), so that a set of them is a mask; 0 for
/// any other method, in any case, which is not implemented, and for CONNECT: responder opens no
/// tunnels, whatever the target's form (a 2xx would say one is open, RFC 9110 9.3.6).
#[inline]
pub fn method_bit(method: &str) -> u16 {
    match method {
        "GET" => 1,
        "HEAD" => 1 << 1,
        "POST" => 1 << 2,
        "PUT" => 1 << 3,
        "DELETE" => 1 << 4,
        "OPTIONS" => 1 << 5,
        "TRACE" => 1 << 6,
        "PATCH" => 1 << 7,
        _ => 0,
    }
}

/// The fields a head's reading takes for itself ([`Head::add_field`]), in lowercase: framing,
/// persistence, `Host`, what is logged of the client, and the selectors. A request id carried in
/// one of them would be taken for the id and lost to the rest.
pub const FIELDS_READ: [&str; 15] = [
    "host",
    "user-agent",
    "referer",
    "x-forwarded-for",
    "traceparent",
    "connection",
    "content-length",
    "transfer-encoding",
    "expect",
    "if-none-match",
    "if-modified-since",
    "x-code",
    "x-format",
    "accept-language",
    "accept",
];

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

/// Parses a head whose end was found: a head httparse still calls partial is not well formed.
pub(super) fn parse_complete_head<'a, 's>(
    head: &'a [u8],
    cx: &Context<'_>,
    slot: &'s mut Option<Head<'a>>,
) -> Result<&'s Head<'a>, Rejected> {
    if head.len() > cx.limits.max_header_bytes {
        return Err(too_long(head, cx));
    }
    parse_head(head, cx.request_id_header, slot)?.ok_or(Rejection::BadRequest.into())
}

/// A head past the limit: 414 when its request line alone is (and starts as one should), 431
/// when it is a well-formed start, 400 when it is garbage, however long.
pub(super) fn too_long(head: &[u8], cx: &Context<'_>) -> Rejected {
    let line_len = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    if line_len > cx.limits.max_header_bytes {
        // A line that cannot be a request line (a byte no target may hold) is garbage: httparse,
        // which takes UTF-8 in a target, would wait for the rest of it and make it a 431.
        return if RequestLine::plausible_start(&head[..line_len]) {
            Rejection::UriTooLong.into()
        } else {
            Rejection::BadRequest.into()
        };
    }
    match parse_head(head, cx.request_id_header, &mut None) {
        Err(rejected) => rejected,
        Ok(_) => Rejection::HeadersTooLarge.into(),
    }
}

/// The facts of a request head that decide its answer.
#[derive(Debug)]
pub(super) struct Head<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 and later 1.x.
    pub(super) version: u8,
    pub(super) persistent: bool,
    /// A `close` option was sent, which no `keep-alive` beside it undoes (RFC 9112 9.3).
    close_asked: bool,
    content_length: Option<u64>,
    length_fields: usize,
    /// The codings of every `Transfer-Encoding` field line, in order.
    transfer_codings: Codings,
    host_fields: usize,
    /// Whether every `Host` value is a valid `uri-host [ ":" port ]`.
    host_valid: bool,
    pub(super) expects_continue: bool,
    pub(super) client: Client<'a>,
    pub(super) selectors: Selectors<'a>,
    /// The head as received: the header lines, after the request line (which no header name
    /// matches: it has a space before any colon).
    pub(super) headers: &'a [u8],
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
            if !ascii::is_token(coding) {
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

impl<'a> Head<'a> {
    /// Checks the head against the rules of RFC 9112 and 9110: the body to read and the target to
    /// answer for.
    pub(super) fn check(&self, limits: Limits) -> Result<(Target<'a>, Body), Rejection> {
        let body = self.framing(limits)?;
        let path = self.check_target()?;
        if method_bit(self.method) == 0 {
            return Err(Rejection::NotImplemented);
        }
        let target = match path {
            Some(path) => Target::Path(path),
            None if self.target == "*" && self.method == "OPTIONS" => Target::Asterisk,
            None => return Err(Rejection::BadRequest),
        };
        Ok((target, body))
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
            return Ok(Body::Chunked(Chunked::new()));
        }
        match self.content_length {
            Some(length) if length > limits.max_body_bytes => Err(Rejection::PayloadTooLarge),
            Some(length) if length > 0 => Ok(Body::Length(length)),
            _ => Ok(Body::None),
        }
    }

    /// RFC 9112 3.2: a target of visible ASCII, and an HTTP/1.1 request names its host once,
    /// validly, in `Host` (any request that names it does so once and validly), and an
    /// absolute-form target's authority is valid too. Returns the path to route by, if any.
    fn check_target(&self) -> Result<Option<&'a [u8]>, Rejection> {
        let target = self.target.as_bytes();
        // A URI is visible ASCII (RFC 9112 3.2, RFC 3986 2); httparse also takes UTF-8.
        if !is_target(target) {
            return Err(Rejection::BadRequest);
        }
        // The 400 is for any request, whatever its target's form; an absolute-form target's
        // authority replaces the value only (RFC 9112 3.2.2).
        let host_missing = self.version == 1 && self.host_fields == 0;
        if host_missing || self.host_fields > 1 || !self.host_valid {
            return Err(Rejection::BadRequest);
        }
        if let Some((authority, path)) = absolute_form(target) {
            if !valid_authority(authority) {
                return Err(Rejection::BadRequest);
            }
            return Ok(Some(strip_query(path)));
        }
        // Origin-form has a path; asterisk- and authority-form do not.
        Ok((target.first() == Some(&b'/')).then(|| strip_query(target)))
    }
}

/// Parses a head with httparse into `slot`: `Ok(None)` when it is incomplete but well formed so
/// far. `request_id_header` names the field whose value is the request's id, if one is taken.
/// The head is built in the caller's slot and lent back: returned by value, its few hundred
/// bytes would be copied at each of the calls it goes up through.
pub(super) fn parse_head<'a, 's>(
    buf: &'a [u8],
    request_id_header: Option<&[u8]>,
    slot: &'s mut Option<Head<'a>>,
) -> Result<Option<&'s Head<'a>>, Rejected> {
    // Left uninitialized: httparse writes only the fields it parses, and filling the array
    // first would cost more than parsing a short head.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, &mut fields);
    let minor = req.version.unwrap_or(HIGHEST_MINOR);
    match parsed {
        Ok(httparse::Status::Complete(len)) => {
            head_of(&req, &buf[..len], request_id_header, slot).map(Some)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err(Rejected::new(Rejection::HeadersTooLarge, minor))
        }
        Err(httparse::Error::Version) => parse_later_minor_version(buf, request_id_header, slot),
        Err(_) => Err(Rejected::new(Rejection::BadRequest, minor)),
    }
}

/// Parses the head at the start of `buf` if httparse finds all of it there, without searching
/// for its end first: `None` when httparse finds it incomplete or refuses it, for
/// [`find_head_end`] and [`parse_complete_head`] to decide as for a head that came in pieces.
/// `buf` must start with the request line, not with an empty line, which httparse would skip
/// and the search would not: then both end the head at its first empty line, which is the
/// search's first `\n\n` or `\n\r\n` (httparse takes no `\n` but at a line's end, and refuses
/// a `\r` that is not before one), so the head and every answer to it are the same.
pub(super) fn parse_whole_head<'a, 's>(
    buf: &'a [u8],
    request_id_header: Option<&[u8]>,
    slot: &'s mut Option<Head<'a>>,
) -> Option<Result<&'s Head<'a>, Rejected>> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(len)) = req.parse_with_uninit_headers(buf, &mut fields)
    else {
        return None;
    };
    debug_assert_eq!(find_head_end(buf, 0), Some(len), "{buf:?}");
    Some(head_of(&req, &buf[..len], request_id_header, slot))
}

/// The head httparse parsed completely from `head`, built in `slot`.
fn head_of<'a, 's>(
    req: &httparse::Request<'_, 'a>,
    head: &'a [u8],
    request_id_header: Option<&[u8]>,
    slot: &'s mut Option<Head<'a>>,
) -> Result<&'s Head<'a>, Rejected> {
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Rejection::BadRequest.into());
    };
    let parsed = slot.insert(Head::new(method, target, version, head));
    parsed
        .read_fields(req.headers, request_id_header)
        .map_err(|r| Rejected::new(r, version).of(method))?;
    Ok(parsed)
}

/// httparse refuses every version but 1.0 and 1.1. A well-formed `HTTP/1.x` line with a later
/// minor version is served as HTTP/1.1 (RFC 9110 2.5), its fields parsed by httparse after the
/// line; another major version is a 505; anything else is a malformed request line, a 400.
fn parse_later_minor_version<'a, 's>(
    buf: &'a [u8],
    request_id_header: Option<&[u8]>,
    slot: &'s mut Option<Head<'a>>,
) -> Result<Option<&'s Head<'a>>, Rejected> {
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
            let head = slot.insert(Head::new(line.method, line.target, 1, buf));
            head.read_fields(fields, request_id_header)
                .map_err(|r| Rejected::new(r, 1).of(line.method))?;
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Rejection::HeadersTooLarge.into()),
        Err(_) => Err(Rejection::BadRequest.into()),
    }
}

impl<'a> Head<'a> {
    /// A head with its request line, before its fields are read.
    fn new(method: &'a str, target: &'a str, version: u8, headers: &'a [u8]) -> Head<'a> {
        Head {
            method,
            target,
            version,
            // HTTP/1.0 closes unless asked to stay; HTTP/1.1 stays unless asked to close.
            persistent: version == 1,
            close_asked: false,
            content_length: None,
            length_fields: 0,
            transfer_codings: Codings::default(),
            host_fields: 0,
            host_valid: true,
            expects_continue: false,
            client: Client::default(),
            selectors: Selectors::default(),
            headers,
        }
    }

    fn read_fields(
        &mut self,
        fields: &[httparse::Header<'a>],
        request_id_header: Option<&[u8]>,
    ) -> Result<(), Rejection> {
        for field in fields {
            let name = field.name.as_bytes();
            if request_id_header.is_some_and(|id| name.eq_ignore_ascii_case(id)) {
                if valid_request_id(field.value) {
                    self.client.request_id = field.value;
                }
            } else {
                self.add_field(name, field.value)?;
            }
        }
        // RFC 9112 3.2.2: the host of an absolute-form target is the request's, not `Host`'s
        // (which is checked all the same).
        if let Some((authority, _)) = absolute_form(self.target.as_bytes()) {
            self.client.host = authority;
        }
        Ok(())
    }

    /// Reads one field into the head: a name read here is one of [`FIELDS_READ`].
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
                // Nearly every value is one option alone: compared whole, it need not be split.
                let value = value.trim_ascii();
                if value.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive();
                } else if value.eq_ignore_ascii_case(b"close") {
                    self.close();
                } else {
                    for token in value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            self.close();
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            self.keep_alive();
                        }
                    }
                }
            }
            14 if is(b"content-length") => {
                self.length_fields += 1;
                self.content_length = Some(parse_length(value).ok_or(Rejection::BadRequest)?);
            }
            17 if is(b"transfer-encoding") => self.transfer_codings.add(value),
            6 if is(b"expect") => {
                // RFC 9110 10.1.1: ignored in an HTTP/1.0 request, whose client may not know it.
                self.expects_continue =
                    self.version > 0 && value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            13 if is(b"if-none-match") => first(&mut self.selectors.if_none_match),
            17 if is(b"if-modified-since") => first(&mut self.selectors.if_modified_since),
            6 if is(b"x-code") => first(&mut self.selectors.x_code),
            8 if is(b"x-format") => first(&mut self.selectors.x_format),
            15 if is(b"accept-language") => first(&mut self.selectors.accept_language),
            6 if is(b"accept") => first(&mut self.selectors.accept),
            _ => {}
        }
        Ok(())
    }

    /// `Connection: keep-alive`: an HTTP/1.0 request asks to stay, unless it also asked to close;
    /// HTTP/1.1 stays anyway.
    fn keep_alive(&mut self) {
        if self.version == 0 && !self.close_asked {
            self.persistent = true;
        }
    }

    /// `Connection: close`, wherever it is among the options and field lines.
    fn close(&mut self) {
        self.close_asked = true;
        self.persistent = false;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_read_are_the_ones_a_head_takes() {
        let value = |name: &str| match name {
            "connection" => &b"close"[..],
            "expect" => b"100-continue",
            _ => b"1",
        };
        let read = |name: &str| {
            let mut head = Head::new("GET", "/", 1, b"");
            let before = format!("{head:?}");
            let value = value(&name.to_ascii_lowercase());
            head.add_field(name.as_bytes(), value).unwrap();
            format!("{head:?}") != before
        };
        for name in FIELDS_READ {
            assert!(read(name), "{name}");
            assert!(read(&name.to_ascii_uppercase()), "{name}");
        }
        for name in ["x-request-id", "x-other", "date", "cookie"] {
            assert!(!read(name), "{name}");
        }
    }

    #[test]
    fn head_ends_at_either_terminator() {
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nrest", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\n", 17), Some(18));
    }
}
