//! Body templates: `{{name}}` placeholders in a route's body or an error page, parsed once at load
//! into text and variables, and rendered per request into a buffer the caller keeps.
//!
//! `{{hostname}}` and `{{env.NAME}}` are resolved at load (they become text); the others are the
//! request's: `{{method}}`, `{{path}}`, `{{query}}`, `{{host}}`, `{{remote_addr}}`,
//! `{{request_id}}`, `{{time}}` (RFC 3339, UTC), `{{header.NAME}}` (any request header, its name
//! in any case), and in error pages `{{code}}`, `{{reason}}`, `{{message}}` (the built-in page's
//! sentence) and `{{lang}}` (its language's tag). A value the request controls is
//! escaped for the body's media type ([`Escape`]), so that a reflected header can inject neither
//! markup nor a second document. Where a template comes from and which answer uses it is the
//! business of `config` and of the rest of `answers`.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::net::AddrText;
use crate::{ascii, clock, escape, sys};

/// How request-controlled values are written into a body, chosen by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML and XML (SVG too): `& < > " '` as character references.
    Html,
    /// JSON: the inside of a JSON string.
    Json,
    /// JavaScript: the inside of a JSON string, and the quote, backtick and markup characters
    /// (`' ` < > &`) as `\u00XX`, so that a string in either quote, a template literal or a
    /// script in a page is not left.
    Script,
    /// Anything else (text, CSS, CSV...): control characters dropped.
    Plain,
}

impl Escape {
    pub fn for_content_type(content_type: &str) -> Escape {
        let media = essence(content_type.as_bytes()).to_ascii_lowercase();
        match &media[..] {
            b"text/html" | b"text/xml" | b"application/xml" => Escape::Html,
            b"application/json" | b"text/json" => Escape::Json,
            b"text/javascript"
            | b"application/javascript"
            | b"application/ecmascript"
            | b"text/ecmascript" => Escape::Script,
            _ if media.ends_with(b"+xml") => Escape::Html,
            _ if media.ends_with(b"+json") => Escape::Json,
            _ => Escape::Plain,
        }
    }
}

/// A media type without its parameters: `text/html` of `text/html; charset=utf-8`.
fn essence(media: &[u8]) -> &[u8] {
    media
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// The formats an error page comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    Json,
    Text,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Html, Format::Json, Format::Text];

    /// The file name extension of a page in this format.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Json => "json",
            Format::Text => "txt",
        }
    }

    /// The media type, without parameters.
    fn media_type(self) -> &'static [u8] {
        essence(&self.content_type_line()[b"Content-Type:".len()..])
    }

    /// The `Content-Type` header line of a page in this format, as its head carries it.
    pub fn content_type_line(self) -> &'static [u8] {
        match self {
            Format::Html => b"Content-Type: text/html; charset=utf-8\r\n",
            Format::Json => b"Content-Type: application/json\r\n",
            Format::Text => b"Content-Type: text/plain; charset=utf-8\r\n",
        }
    }

    pub fn escape(self) -> Escape {
        match self {
            Format::Html => Escape::Html,
            Format::Json => Escape::Json,
            Format::Text => Escape::Plain,
        }
    }

    /// The format a media type names (`text/html`, `application/json`, `text/plain`, with any
    /// parameters), if it is one of these.
    pub fn from_media_type(media: &[u8]) -> Option<Format> {
        let asked = essence(media);
        Format::ALL
            .into_iter()
            .find(|f| asked.eq_ignore_ascii_case(f.media_type()))
    }

    /// The first of `text/html`, `application/json`, `text/plain` (in that order) that an
    /// `Accept` value accepts: named, or through `type/*` or `*/*`, with a quality above 0.
    pub fn from_accept(accept: &[u8]) -> Option<Format> {
        let accepts = |f: Format| {
            let own = f.media_type();
            let slash = own.iter().position(|&b| b == b'/').unwrap_or(own.len());
            accept.split(|&b| b == b',').any(|range| {
                let media = essence(range);
                let mut params = range.split(|&b| b == b';').skip(1);
                let refused = params.any(|p| {
                    let p = p.trim_ascii();
                    p.len() >= 2
                        && p[..2].eq_ignore_ascii_case(b"q=")
                        && p[2..].iter().all(|&b| b == b'0' || b == b'.')
                });
                let matches = media.eq_ignore_ascii_case(own)
                    || media == b"*/*"
                    || (media.len() == slash + 2
                        && media[..slash].eq_ignore_ascii_case(&own[..slash])
                        && media.ends_with(b"/*"));
                matches && !refused
            })
        };
        Format::ALL.into_iter().find(|&f| accepts(f))
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Vec<u8>),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    Method,
    Path,
    Query,
    Host,
    RemoteAddr,
    RequestId,
    Time,
    /// A request header, its name lowercased.
    Header(Vec<u8>),
    Code,
    Reason,
    Message,
    Lang,
    Tls(TlsVar),
}

/// `{{tls.NAME}}`: what the connection's TLS handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsVar {
    Version,
    Cipher,
    Sni,
    Resumed,
    ClientSubject,
    ClientSan,
    ClientFingerprint,
    ClientNotAfter,
}

impl TlsVar {
    fn named(name: &str) -> Option<TlsVar> {
        Some(match name {
            "version" => TlsVar::Version,
            "cipher" => TlsVar::Cipher,
            "sni" => TlsVar::Sni,
            "resumed" => TlsVar::Resumed,
            "client_subject" => TlsVar::ClientSubject,
            "client_san" => TlsVar::ClientSan,
            "client_fingerprint" => TlsVar::ClientFingerprint,
            "client_not_after" => TlsVar::ClientNotAfter,
            _ => return None,
        })
    }
}

/// What a TLS connection's handshake agreed, as text; every field is empty on a plain connection
/// (and the client's on a TLS connection without a client certificate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsValues<'a> {
    /// `TLSv1.2` or `TLSv1.3`; empty on a plain connection.
    pub version: &'a str,
    pub cipher: &'a str,
    pub sni: &'a str,
    pub resumed: bool,
    pub client_subject: &'a str,
    pub client_san: &'a str,
    pub client_fingerprint: &'a str,
    pub client_not_after: &'a str,
}

impl TlsValues<'_> {
    pub fn is_tls(&self) -> bool {
        !self.version.is_empty()
    }

    /// `true` or `false` on a TLS connection, empty on a plain one.
    pub fn resumed_text(&self) -> &'static str {
        match (self.is_tls(), self.resumed) {
            (false, _) => "",
            (true, true) => "true",
            (true, false) => "false",
        }
    }
}

/// What a template may use besides the request: `{{code}}`, `{{reason}}`, `{{message}}` and
/// `{{lang}}` exist only in error pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Route,
    ErrorPage,
}

/// The request a template is rendered for.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub method: &'a str,
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub host: &'a [u8],
    pub remote_addr: SocketAddr,
    pub request_id: &'a [u8],
    /// The request's head as received: its request line, then `Name: value` lines ending in
    /// CRLF or LF. (A request line never passes for a header: its name would hold a space.)
    pub headers: &'a [u8],
    pub code: u16,
    pub reason: &'a str,
    /// An error page's sentence, in the language of `lang`.
    pub message: &'a str,
    pub lang: &'a str,
    pub tls: TlsValues<'a>,
}

impl Template {
    /// `text` as it is, with no variables.
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Text(text.as_bytes().to_vec())],
        }
    }

    /// Parses `text`. `env` resolves `{{env.NAME}}` (an unset variable is empty text). An
    /// unknown variable, or `{{` without its `}}`, is an error naming it and its line in `text`.
    pub fn parse(
        text: &str,
        kind: Kind,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut text_so_far = Vec::new();
        while let Some(open) = rest.find("{{") {
            text_so_far.extend_from_slice(&rest.as_bytes()[..open]);
            let after = &rest[open + 2..];
            let line = || 1 + text[..text.len() - rest.len() + open].matches('\n').count();
            let Some(close) = after.find("}}") else {
                return Err(format!(
                    "`{{{{` without `}}}}` at line {} of the template",
                    line()
                ));
            };
            let name = after[..close].trim();
            let var = match name {
                "hostname" => {
                    text_so_far.extend_from_slice(sys::hostname().as_bytes());
                    None
                }
                "method" => Some(Var::Method),
                "path" => Some(Var::Path),
                "query" => Some(Var::Query),
                "host" => Some(Var::Host),
                "remote_addr" => Some(Var::RemoteAddr),
                "request_id" => Some(Var::RequestId),
                "time" => Some(Var::Time),
                "code" if kind == Kind::ErrorPage => Some(Var::Code),
                "reason" if kind == Kind::ErrorPage => Some(Var::Reason),
                "message" if kind == Kind::ErrorPage => Some(Var::Message),
                "lang" if kind == Kind::ErrorPage => Some(Var::Lang),
                _ => {
                    if let Some(variable) = name.strip_prefix("env.").filter(|n| !n.is_empty()) {
                        text_so_far.extend_from_slice(env(variable).unwrap_or_default().as_bytes());
                        None
                    } else if let Some(tls) = name.strip_prefix("tls.").and_then(TlsVar::named) {
                        Some(Var::Tls(tls))
                    } else if let Some(header) = name
                        .strip_prefix("header.")
                        .filter(|n| !n.is_empty() && n.bytes().all(ascii::is_token_byte))
                    {
                        Some(Var::Header(header.to_ascii_lowercase().into_bytes()))
                    } else {
                        return Err(format!(
                            "unknown template variable `{{{{{name}}}}}` at line {} of the template",
                            line()
                        ));
                    }
                }
            };
            if let Some(var) = var {
                if !text_so_far.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text_so_far)));
                }
                parts.push(Part::Var(var));
            }
            rest = &after[close + 2..];
        }
        text_so_far.extend_from_slice(rest.as_bytes());
        if !text_so_far.is_empty() {
            parts.push(Part::Text(text_so_far));
        }
        Ok(Template { parts })
    }

    /// Appends the body for `values` to `out`, request-controlled values escaped by `escape`.
    pub fn render(&self, values: &Values<'_>, escape: Escape, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text),
                Part::Var(var) => render_var(var, values, escape, out),
            }
        }
    }
}

fn render_var(var: &Var, values: &Values<'_>, escape: Escape, out: &mut Vec<u8>) {
    match var {
        Var::Method => escaped(values.method.as_bytes(), escape, out),
        Var::Path => escaped(values.path, escape, out),
        Var::Query => escaped(values.query, escape, out),
        Var::Host => escaped(values.host, escape, out),
        Var::RemoteAddr => {
            escaped(AddrText::of(values.remote_addr).as_bytes(), escape, out);
        }
        Var::RequestId => escaped(values.request_id, escape, out),
        Var::Time => out.extend_from_slice(&clock::rfc3339_seconds(SystemTime::now())),
        Var::Header(name) => escaped(header(values.headers, name), escape, out),
        Var::Code => out.extend_from_slice(itoa::Buffer::new().format(values.code).as_bytes()),
        Var::Reason => escaped(values.reason.as_bytes(), escape, out),
        Var::Message => escaped(values.message.as_bytes(), escape, out),
        Var::Lang => escaped(values.lang.as_bytes(), escape, out),
        Var::Tls(var) => {
            let tls = &values.tls;
            let text = match var {
                TlsVar::Version => tls.version,
                TlsVar::Cipher => tls.cipher,
                TlsVar::Sni => tls.sni,
                TlsVar::Resumed => tls.resumed_text(),
                TlsVar::ClientSubject => tls.client_subject,
                TlsVar::ClientSan => tls.client_san,
                TlsVar::ClientFingerprint => tls.client_fingerprint,
                TlsVar::ClientNotAfter => tls.client_not_after,
            };
            // The SNI name and the client certificate's fields come from the peer.
            escaped(text.as_bytes(), escape, out)
        }
    }
}

/// The value of the first header line named `name` (lowercase), trimmed; empty when absent.
pub(super) fn header<'a>(headers: &'a [u8], name: &[u8]) -> &'a [u8] {
    headers
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name)
                .then(|| line[colon + 1..].trim_ascii())
        })
        .unwrap_or_default()
}

/// Appends `value` escaped for `escape`. Bytes that are not UTF-8 become U+FFFD in HTML and JSON
/// (both must stay valid text) and are kept otherwise.
fn escaped(value: &[u8], escape: Escape, out: &mut Vec<u8>) {
    match escape {
        Escape::Json => return escape::json_bytes(out, value),
        Escape::Script => return script(value, out),
        Escape::Html | Escape::Plain => {}
    }
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            escape_char(c, escape, out);
        }
        if !chunk.invalid().is_empty() {
            match escape {
                Escape::Plain => out.extend_from_slice(chunk.invalid()),
                _ => out.extend_from_slice("\u{fffd}".as_bytes()),
            }
        }
    }
}

/// Appends `value` as the inside of a JavaScript string: JSON's escapes, and the characters that
/// would end a string in the other quote, a template literal or a script element as `\u00XX`.
fn script(value: &[u8], out: &mut Vec<u8>) {
    // The characters are ASCII: cutting there leaves every other byte to `json_bytes` as a whole
    // value would.
    let mut from = 0;
    for (i, &b) in value.iter().enumerate() {
        if matches!(b, b'\'' | b'`' | b'<' | b'>' | b'&') {
            escape::json_bytes(out, &value[from..i]);
            escape::unicode_escape(out, b);
            from = i + 1;
        }
    }
    escape::json_bytes(out, &value[from..]);
}

fn escape_char(c: char, escape: Escape, out: &mut Vec<u8>) {
    let replacement: Option<&[u8]> = match (escape, c) {
        (Escape::Html, '&') => Some(b"&amp;"),
        (Escape::Html, '<') => Some(b"&lt;"),
        (Escape::Html, '>') => Some(b"&gt;"),
        (Escape::Html, '"') => Some(b"&quot;"),
        (Escape::Html, '\'') => Some(b"&#39;"),
        // Dropped: a control character has no place in a page, and CR/LF none in a line.
        (_, c) if c.is_control() => Some(b""),
        _ => None,
    };
    match replacement {
        Some(bytes) => out.extend_from_slice(bytes),
        None => {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(headers: &'a [u8], path: &'a [u8]) -> Values<'a> {
        Values {
            method: "GET",
            path,
            query: b"a=1",
            host: b"example.test",
            remote_addr: "127.0.0.1:4000".parse().unwrap(),
            request_id: b"abc",
            headers,
            code: 503,
            reason: "Service Unavailable",
            message: "Try \"later\".",
            lang: "en",
            tls: TlsValues::default(),
        }
    }

    #[test]
    fn tls_variables_are_empty_on_a_plain_connection_and_escaped_on_a_tls_one() {
        let text = "[{{tls.version}}|{{tls.resumed}}|{{tls.client_subject}}|{{tls.sni}}]";
        let plain = values(b"GET / HTTP/1.1\r\n", b"/");
        assert_eq!(render(text, Kind::Route, Escape::Html, &plain), "[|||]");
        let secure = Values {
            tls: TlsValues {
                version: "TLSv1.3",
                client_subject: "CN=<a>",
                sni: "a.example",
                ..TlsValues::default()
            },
            ..plain
        };
        assert_eq!(
            render(text, Kind::Route, Escape::Html, &secure),
            "[TLSv1.3|false|CN=&lt;a&gt;|a.example]"
        );
        let env = |_: &str| None;
        assert!(Template::parse("{{tls.nonsense}}", Kind::Route, &env).is_err());
    }

    fn render(text: &str, kind: Kind, escape: Escape, values: &Values<'_>) -> String {
        let env = |name: &str| (name == "ZONE").then(|| "eu-1".to_string());
        let template = Template::parse(text, kind, &env).unwrap();
        let mut out = Vec::new();
        template.render(values, escape, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn variables_are_replaced() {
        let v = values(b"X-Thing: one\r\nx-other:  two \r\n", b"/p");
        let text = "{{method}} {{path}}?{{query}} {{host}} {{remote_addr}} {{request_id}} \
                    {{header.x-thing}} {{ header.X-Other }} [{{header.absent}}] {{env.ZONE}} \
                    [{{env.UNSET}}] {{code}} {{reason}} {{message}} {{lang}}";
        assert_eq!(
            render(text, Kind::ErrorPage, Escape::Plain, &v),
            "GET /p?a=1 example.test 127.0.0.1:4000 abc one two [] eu-1 [] 503 Service Unavailable \
             Try \"later\". en"
        );
        assert_eq!(
            render("{{hostname}}", Kind::Route, Escape::Plain, &v),
            sys::hostname()
        );
        let time = render("{{time}}", Kind::Route, Escape::Plain, &v);
        assert_eq!(time.len(), 20, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    }

    #[test]
    fn unknown_variables_are_errors_with_their_line() {
        let env = |_: &str| None;
        let e = Template::parse("a\n{{nope}}", Kind::Route, &env).unwrap_err();
        assert!(e.contains("`{{nope}}`") && e.contains("line 2"), "{e}");
        for error_page_only in ["code", "reason", "message", "lang"] {
            let text = format!("{{{{{error_page_only}}}}}");
            let e = Template::parse(&text, Kind::Route, &env).unwrap_err();
            assert!(e.contains(&format!("`{text}`")), "{e}");
        }
        let e = Template::parse("x {{path", Kind::Route, &env).unwrap_err();
        assert!(e.contains("without"), "{e}");
        assert!(Template::parse("{{header.}}", Kind::Route, &env).is_err());
    }

    #[test]
    fn hostile_values_are_escaped_for_the_media_type() {
        let hostile = b"X-Evil: <script>alert(\"x\")</script>'&\\\x01\xff\r\n";
        let v = values(hostile, b"/");
        let html = render("{{header.x-evil}}", Kind::Route, Escape::Html, &v);
        assert_eq!(
            html,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;\\\u{fffd}"
        );
        let json = render(
            "{\"v\":\"{{header.x-evil}}\"}",
            Kind::Route,
            Escape::Json,
            &v,
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed["v"],
            "<script>alert(\"x\")</script>'&\\\u{1}\u{fffd}"
        );
        let v = values(b"", b"/a\r\nSet-Cookie: x");
        assert_eq!(
            render("{{path}}", Kind::Route, Escape::Plain, &v),
            "/aSet-Cookie: x"
        );
    }

    #[test]
    fn escape_follows_the_content_type() {
        assert_eq!(
            Escape::for_content_type("text/html; charset=utf-8"),
            Escape::Html
        );
        assert_eq!(Escape::for_content_type("Application/JSON"), Escape::Json);
        assert_eq!(
            Escape::for_content_type("application/problem+json"),
            Escape::Json
        );
        assert_eq!(Escape::for_content_type("text/plain"), Escape::Plain);
        for (media, escape) in [
            ("application/xhtml+xml", Escape::Html),
            ("image/svg+xml", Escape::Html),
            ("text/xml; charset=utf-8", Escape::Html),
            ("Application/XML", Escape::Html),
            ("text/json", Escape::Json),
            ("text/javascript", Escape::Script),
            ("application/javascript; charset=utf-8", Escape::Script),
            ("text/css", Escape::Plain),
        ] {
            assert_eq!(Escape::for_content_type(media), escape, "{media}");
        }
    }
}
