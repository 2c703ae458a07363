//! The one writer of a response head, used to prebuild answers at load and to write the answers
//! rendered per request, so that both look the same on the wire: the status line, `Server`,
//! `Date`, the answer's header lines, `Content-Length` where content is allowed, then the
//! connection's framing (`Connection`, an echoed request id) and the blank line. It knows nothing
//! of routes.

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;
/// Where the minor version digit sits in every status line (`HTTP/1.x`).
const MINOR_VERSION_AT: usize = 7;
pub(super) const SERVER: &str = concat!("responder/", env!("CARGO_PKG_VERSION"));

/// How an answer is put on the wire for one request.
#[derive(Debug, Clone, Copy)]
pub struct Framing<'a> {
    /// The status line says HTTP/1.`minor`.
    pub minor: u8,
    /// Otherwise the head says `Connection: close` (as every rejection's does).
    pub keep_alive: bool,
    /// A HEAD request: the body is left out, the headers stay the same.
    pub head_only: bool,
    /// Echoed as the last header when not empty.
    pub request_id: &'a [u8],
}

impl Framing<'_> {
    /// A rejected's: whole (but to a HEAD), then the connection closes.
    pub fn rejected(minor: u8, head_only: bool, request_id: &[u8]) -> Framing<'_> {
        Framing {
            minor,
            keep_alive: false,
            head_only,
            request_id,
        }
    }
}

/// RFC 9110 8.6, 15.3.5 and 15.4.5: a 204 and a 304 carry no content and no `Content-Length`.
pub(super) fn without_content(status: u16) -> bool {
    matches!(status, 204 | 304)
}

/// Appends a head's start to `out`: the status line (in HTTP/1.1, patched by [`end`]), `Server`,
/// `Date`, `headers` (`Name: value\r\n` lines) and, where the status allows content, the length
/// of `content_length` bytes. Returns where the date sits, counted from the head's start.
pub(super) fn start(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    date: &[u8; DATE_LEN],
    headers: &[u8],
    content_length: usize,
) -> usize {
    let begin = out.len();
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(digits.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    let date_at = out.len() - begin;
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(headers);
    if !without_content(status) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(digits.format(content_length).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    date_at
}

/// Appends the end of the head that starts at `begin` in `out`: `Connection`, the request id
/// behind `request_id_prefix` (`X-Request-Id: `), the blank line; and sets its status line's
/// version to the request's.
pub(super) fn end(
    out: &mut Vec<u8>,
    begin: usize,
    framing: &Framing<'_>,
    request_id_prefix: &[u8],
) {
    // The field and the blank line after it, copied at once when no request id goes between.
    let connection: &[u8] = if framing.keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    };
    if framing.request_id.is_empty() {
        out.extend_from_slice(connection);
    } else {
        out.extend_from_slice(&connection[..connection.len() - 2]);
        out.extend_from_slice(request_id_prefix);
        out.extend_from_slice(framing.request_id);
        out.extend_from_slice(b"\r\n\r\n");
    }
    out[begin + MINOR_VERSION_AT] = b'0' + framing.minor.min(1);
}

/// `Name: value\r\n` for each header.
pub(super) fn lines(headers: &[(String, String)]) -> Vec<u8> {
    let mut lines = Vec::new();
    for (name, value) in headers {
        lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    lines
}
