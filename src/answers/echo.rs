//! The echo: a route with `echo = true` answers with the request as it arrived, as whoami does:
//! the host's name, the listener's and the peer's addresses, the request line, every header field
//! in order as received (duplicates and the names' case kept), then the start of the body. Plain
//! text by default; JSON when `Accept` prefers `application/json` or the query has
//! `format=json`. It writes the body only, into the caller's buffer; the head is the head
//! writer's, and how much of the body was kept is the request stream's.
//!
//! Nothing the peer sent reaches the text as it was sent where it could mislead a reader: control
//! bytes other than tab and newline (a CR before a newline excepted) and bytes that are not UTF-8
//! become U+FFFD, so an echo printed to a terminal cannot move its cursor or forge a line. JSON
//! values go through the one JSON escaper (`escape`).

use std::io::Write;
use std::net::SocketAddr;

use super::head;
use super::template;
use crate::config::Route;
use crate::escape;
use crate::http::version_name;
use crate::net::AddrText;

/// Put after a body cut at `echo_max_body`.
const CUT: &str = "\u{2026}[cut]";

/// An echo route's fixed parts: its status and the header lines of each form (the route's own,
/// without `Content-Type`, behind the form's).
#[derive(Debug, Clone)]
pub struct Fixed {
    pub(super) status: u16,
    pub(super) reason: String,
    text_headers: Vec<u8>,
    json_headers: Vec<u8>,
}

impl Fixed {
    pub(super) fn new(route: &Route, reason: String) -> Fixed {
        let own: Vec<(String, String)> = route
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
            .cloned()
            .collect();
        let with = |content_type: &str| {
            let mut lines = format!(
                "Content-Type: {content_type}\r\nX-Content-Type-Options: nosniff\r\nVary: Accept\r\n"
            )
            .into_bytes();
            lines.extend_from_slice(&head::lines(&own));
            lines
        };
        Fixed {
            status: route.status,
            reason,
            text_headers: with("text/plain; charset=utf-8"),
            json_headers: with("application/json"),
        }
    }

    /// The header lines of an echo in `form`.
    pub(super) fn headers(&self, form: Form) -> &[u8] {
        match form {
            Form::Text => &self.text_headers,
            Form::Json => &self.json_headers,
        }
    }
}

/// The request an echo shows, as the request stream and the connection know it.
#[derive(Debug, Clone, Copy)]
pub struct Echoed<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// The minor version.
    pub version: u8,
    /// The head as received: the request line, then the header lines.
    pub head: &'a [u8],
    /// The request's `Host` (or its absolute-form target's authority).
    pub host: &'a [u8],
    /// The listener's end of the connection, when the socket could say.
    pub local: Option<SocketAddr>,
    pub peer: SocketAddr,
    /// The start of the body, up to `echo_max_body`.
    pub body: &'a [u8],
    /// The whole body's length.
    pub body_bytes: u64,
}

/// The two forms an echo comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Text,
    Json,
}

impl Form {
    /// JSON when the query says `format=json` or `Accept` prefers `application/json` to
    /// `text/plain`; text otherwise.
    pub(super) fn of(echoed: &Echoed<'_>) -> Form {
        let query = echoed.target.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        if query.split('&').any(|pair| pair == "format=json") {
            return Form::Json;
        }
        let accept = template::header(echoed.head, b"accept");
        let json = preference(accept, b"application", b"json");
        let text = preference(accept, b"text", b"plain");
        if json > text {
            Form::Json
        } else {
            Form::Text
        }
    }
}

/// How much `accept` wants `kind/sub`: the quality of the most specific range that names it
/// (in thousandths), with that specificity to break ties (`application/json, */*` prefers JSON).
/// `(0, 0)` when nothing names it.
fn preference(accept: &[u8], kind: &[u8], sub: &[u8]) -> (u16, u8) {
    let mut best = (0u8, 0u16);
    for range in accept.split(|&b| b == b',') {
        let mut parts = range.split(|&b| b == b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let (range_kind, range_sub) = match media.iter().position(|&b| b == b'/') {
            Some(slash) => (&media[..slash], &media[slash + 1..]),
            None => continue,
        };
        let specific =
            if range_kind.eq_ignore_ascii_case(kind) && range_sub.eq_ignore_ascii_case(sub) {
                3
            } else if range_kind.eq_ignore_ascii_case(kind) && range_sub == b"*" {
                2
            } else if range_kind == b"*" && range_sub == b"*" {
                1
            } else {
                continue;
            };
        let quality = parts
            .map(|p| p.trim_ascii())
            .find(|p| p.len() >= 2 && p[..2].eq_ignore_ascii_case(b"q="))
            .map_or(1000, |p| quality(&p[2..]));
        if specific > best.0 {
            best = (specific, quality);
        }
    }
    let (specific, quality) = best;
    if quality == 0 {
        (0, 0)
    } else {
        (quality, specific)
    }
}

/// A `qvalue` (`0`, `0.5`, `1.000`) in thousandths; 0 for anything else.
fn quality(text: &[u8]) -> u16 {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        let digit = fraction.get(i).map_or(0, |d| u16::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match whole {
        b"1" => 1000,
        b"0" => thousandths,
        _ => 0,
    }
}

/// The header fields of `head` (after its request line), in order, as `(name, value)` with the
/// value's surrounding whitespace removed.
fn fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
}

/// The request line as received.
fn request_line(head: &[u8]) -> &[u8] {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Appends the echo of `echoed` in `form` to `out`; `hostname` is this machine's.
pub(super) fn render(echoed: &Echoed<'_>, hostname: &str, form: Form, out: &mut Vec<u8>) {
    match form {
        Form::Text => render_text(echoed, hostname, out),
        Form::Json => render_json(echoed, hostname, out),
    }
}

fn render_text(echoed: &Echoed<'_>, hostname: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Hostname: ");
    text(hostname.as_bytes(), out);
    out.extend_from_slice(b"\nIP: ");
    if let Some(local) = echoed.local {
        // An address is digits, dots, colons and letters: nothing to replace.
        let _ = write!(out, "{}", local.ip());
    }
    out.extend_from_slice(b"\nRemoteAddr: ");
    out.extend_from_slice(AddrText::of(echoed.peer).as_bytes());
    out.push(b'\n');
    text(request_line(echoed.head), out);
    out.push(b'\n');
    for (name, value) in fields(echoed.head) {
        text(name, out);
        out.extend_from_slice(b": ");
        text(value, out);
        out.push(b'\n');
    }
    if echoed.body_bytes > 0 {
        out.push(b'\n');
        text(echoed.body, out);
        if (echoed.body.len() as u64) < echoed.body_bytes {
            out.extend_from_slice(CUT.as_bytes());
        }
        out.push(b'\n');
    }
}

fn render_json(echoed: &Echoed<'_>, hostname: &str, out: &mut Vec<u8>) {
    let string = |out: &mut Vec<u8>, value: &[u8]| {
        out.push(b'"');
        escape::json_bytes(out, value);
        out.push(b'"');
    };
    out.extend_from_slice(b"{\"hostname\":");
    string(out, hostname.as_bytes());
    out.extend_from_slice(b",\"ip\":\"");
    if let Some(local) = echoed.local {
        let _ = write!(out, "{}", local.ip());
    }
    out.extend_from_slice(b"\",\"host\":");
    string(out, echoed.host);
    out.extend_from_slice(b",\"remote_addr\":\"");
    out.extend_from_slice(AddrText::of(echoed.peer).as_bytes());
    out.extend_from_slice(b"\",\"method\":");
    string(out, echoed.method.as_bytes());
    out.extend_from_slice(b",\"target\":");
    string(out, echoed.target.as_bytes());
    out.extend_from_slice(b",\"version\":\"");
    out.extend_from_slice(version_name(echoed.version).as_bytes());
    out.extend_from_slice(b"\",\"headers\":[");
    for (i, (name, value)) in fields(echoed.head).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        string(out, name);
        out.push(b',');
        string(out, value);
        out.push(b']');
    }
    out.extend_from_slice(b"],\"body\":\"");
    escape::json_bytes(out, echoed.body);
    if (echoed.body.len() as u64) < echoed.body_bytes {
        out.extend_from_slice(CUT.as_bytes());
    }
    out.extend_from_slice(b"\",\"body_bytes\":");
    out.extend_from_slice(itoa::Buffer::new().format(echoed.body_bytes).as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Appends `value` as text: valid UTF-8 stays, except control characters other than tab and
/// newline (and a CR right before a newline); they and bytes that are not UTF-8 become U+FFFD.
fn text(value: &[u8], out: &mut Vec<u8>) {
    const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();
    for chunk in value.utf8_chunks() {
        let valid = chunk.valid();
        let mut rest = valid;
        while let Some(at) = rest.find(|c: char| c.is_control() && c != '\t' && c != '\n') {
            out.extend_from_slice(&rest.as_bytes()[..at]);
            let c = rest[at..].chars().next().unwrap_or('\u{fffd}');
            let line_end = c == '\r' && rest[at + 1..].starts_with('\n');
            out.extend_from_slice(if line_end { b"\r" } else { REPLACEMENT });
            rest = &rest[at + c.len_utf8()..];
        }
        out.extend_from_slice(rest.as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echoed<'a>(head: &'a [u8], target: &'a str, body: &'a [u8], body_bytes: u64) -> Echoed<'a> {
        Echoed {
            method: "POST",
            target,
            version: 1,
            head,
            host: b"example.test",
            local: "127.0.0.1:8080".parse().ok(),
            peer: "127.0.0.1:4000".parse().unwrap(),
            body,
            body_bytes,
        }
    }

    #[test]
    fn json_is_chosen_by_accept_preference_or_the_query() {
        let form = |accept: &str, target: &str| {
            let head = format!("GET {target} HTTP/1.1\r\nAccept: {accept}\r\n\r\n");
            Form::of(&echoed(head.as_bytes(), target, b"", 0))
        };
        assert_eq!(form("application/json", "/"), Form::Json);
        assert_eq!(form("application/json, */*;q=0.8", "/"), Form::Json);
        assert_eq!(form("application/json, */*", "/"), Form::Json);
        assert_eq!(form("text/plain, application/json", "/"), Form::Text);
        assert_eq!(
            form("text/plain;q=0.5, application/json;q=0.9", "/"),
            Form::Json
        );
        assert_eq!(form("application/json;q=0", "/"), Form::Text);
        assert_eq!(form("*/*", "/"), Form::Text);
        assert_eq!(form("text/html,*/*;q=0.8", "/"), Form::Text);
        assert_eq!(form("*/*", "/e?a=1&format=json"), Form::Json);
        assert_eq!(form("*/*", "/e?format=jsonp"), Form::Text);
    }

    #[test]
    fn text_replaces_what_could_mislead_a_reader() {
        let mut out = Vec::new();
        text(b"a\tb\r\nc\rd\x00e\x1b[2Jf\xffg\n", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\tb\r\nc\u{fffd}d\u{fffd}e\u{fffd}[2Jf\u{fffd}g\n"
        );
    }

    #[test]
    fn both_forms_show_the_fields_in_order_and_the_body_cut() {
        let head = b"POST /e HTTP/1.1\r\nHost: example.test\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
        let mut out = Vec::new();
        render(&echoed(head, "/e", b"hel", 5), "box", Form::Text, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Hostname: box\nIP: 127.0.0.1\nRemoteAddr: 127.0.0.1:4000\nPOST /e HTTP/1.1\n\
             Host: example.test\nX-A: 1\nx-a: 2\n\nhel\u{2026}[cut]\n"
        );
        let mut out = Vec::new();
        render(&echoed(head, "/e", b"hel", 5), "box", Form::Json, &mut out);
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["headers"][2], serde_json::json!(["x-a", "2"]));
        assert_eq!(json["body"], "hel\u{2026}[cut]");
        assert_eq!(json["body_bytes"], 5);
        assert_eq!(json["version"], "HTTP/1.1");
    }
}
