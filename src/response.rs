//! Prebuilt responses: every byte the server can send, serialized once from the configuration.
//!
//! A request never formats anything: it picks an [`Answer`] and copies its bytes. The only parts
//! that change are the `Date` header, patched in place once a second by [`Responses::stamp`], and
//! the status line's minor version, patched as the bytes are copied: HTTP/1.0 requests are
//! answered `HTTP/1.0`, all others `HTTP/1.1`.
//! This module decides nothing about which answer a request deserves (see `http`) and does no I/O.

use std::time::SystemTime;

use crate::config::{Config, Endpoints, Route};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;
/// Where the minor version digit sits in every status line (`HTTP/1.x`).
const MINOR_VERSION_AT: usize = 7;
const SERVER: &str = concat!("responder/", env!("CARGO_PKG_VERSION"));

/// Why a request gets a fixed error answer instead of a route's. Each one closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    BadRequest,
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    HeadersTooLarge,
    NotImplemented,
    ServiceUnavailable,
    VersionNotSupported,
}

impl Rejection {
    const ALL: [Rejection; 8] = [
        Rejection::BadRequest,
        Rejection::RequestTimeout,
        Rejection::PayloadTooLarge,
        Rejection::UriTooLong,
        Rejection::HeadersTooLarge,
        Rejection::NotImplemented,
        Rejection::ServiceUnavailable,
        Rejection::VersionNotSupported,
    ];

    pub fn status(self) -> u16 {
        match self {
            Rejection::BadRequest => 400,
            Rejection::RequestTimeout => 408,
            Rejection::PayloadTooLarge => 413,
            Rejection::UriTooLong => 414,
            Rejection::HeadersTooLarge => 431,
            Rejection::NotImplemented => 501,
            Rejection::ServiceUnavailable => 503,
            Rejection::VersionNotSupported => 505,
        }
    }
}

/// Which kind of listener a connection came in on, which decides what its paths reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Port {
    /// A `listen` address: the routes, and the probes and metrics unless an admin port is set.
    #[default]
    Traffic,
    /// The `admin_listen` address: the probes and metrics only.
    Admin,
}

/// Which prebuilt answer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerId {
    /// The route at this index, which allows the request's method.
    Route(usize),
    /// 405 for the route at this index, with its `Allow` header.
    MethodNotAllowed(usize),
    /// 204 to `OPTIONS` on the route at this index, with its `Allow` header.
    Options(usize),
    /// 204 to `OPTIONS *`, allowing every method of any route.
    OptionsAny,
    NotFound,
    Rejected(Rejection),
    /// The liveness probe: 200 while the process serves.
    Health,
    /// The readiness probe: 200, or 503 once a shutdown has begun.
    Ready {
        ready: bool,
    },
    /// 405 for a built-in endpoint's path (`Allow: GET, HEAD, OPTIONS`).
    ProbeMethodNotAllowed,
    /// 204 to `OPTIONS` on a built-in endpoint's path.
    ProbeOptions,
    /// The Prometheus metrics, rendered at each request (see [`Responses::write_metrics`]).
    Metrics,
}

impl AnswerId {
    /// Answers of the built-in endpoints stay out of the access log unless asked for.
    pub fn is_builtin(self) -> bool {
        matches!(
            self,
            AnswerId::Health
                | AnswerId::Ready { .. }
                | AnswerId::ProbeMethodNotAllowed
                | AnswerId::ProbeOptions
                | AnswerId::Metrics
        )
    }
}

/// One response in two framings: with `Connection: keep-alive` and with `Connection: close`.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    /// Where the date sits in both heads: the status line and `Server` come first.
    date_at: usize,
    keep_alive_head: Vec<u8>,
    close_head: Vec<u8>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, reason: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let before_date = format!("HTTP/1.1 {status} {reason}\r\nServer: {SERVER}\r\nDate: ");
        // RFC 9110 8.6 and 15.3.5: a 204 has no content and no Content-Length; a 304 has no
        // content either.
        let no_content = matches!(status, 204 | 304);
        let body = if no_content { Vec::new() } else { body };
        let head = |connection: &str| {
            let mut h = format!("{before_date}{}\r\n", "Thu, 01 Jan 1970 00:00:00 GMT");
            for (name, value) in headers {
                h.push_str(&format!("{name}: {value}\r\n"));
            }
            if !no_content {
                h.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            h.push_str(&format!("Connection: {connection}\r\n\r\n"));
            h.into_bytes()
        };
        Answer {
            status,
            date_at: before_date.len(),
            keep_alive_head: head("keep-alive"),
            close_head: head("close"),
            body,
        }
    }

    fn plain(status: u16, headers: &[(String, String)]) -> Answer {
        let reason = reason_phrase(status);
        let mut all = vec![("Content-Type".to_string(), "text/plain".to_string())];
        all.extend_from_slice(headers);
        Answer::new(
            status,
            reason,
            &all,
            format!("{status} {reason}\n").into_bytes(),
        )
    }

    fn stamp(&mut self, date: &[u8; DATE_LEN]) {
        let range = self.date_at..self.date_at + DATE_LEN;
        self.keep_alive_head[range.clone()].copy_from_slice(date);
        self.close_head[range].copy_from_slice(date);
    }
}

/// Every answer of one configuration, and the routes that choose among them.
#[derive(Debug, Clone)]
pub struct Responses {
    routes: Vec<Route>,
    endpoints: Endpoints,
    /// The probes and metrics are served on the admin port, not on the traffic ports.
    admin_port: bool,
    health: Answer,
    ready: Answer,
    not_ready: Answer,
    probe_not_allowed: Answer,
    ok: Vec<Answer>,
    not_allowed: Vec<Answer>,
    options: Vec<Answer>,
    options_any: Answer,
    probe_options: Answer,
    not_found: Answer,
    rejected: Vec<Answer>,
    /// `X-Request-Id: ` (or the configured `request_id_header`), for an echoed request id.
    request_id_prefix: Vec<u8>,
    stamped_second: u64,
}

/// What a request's answer costs on the wire, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub status: u16,
    pub bytes: usize,
}

impl Responses {
    pub fn new(config: &Config) -> Responses {
        let (routes, endpoints) = (&config.routes, &config.endpoints);
        let ok = routes
            .iter()
            .map(|r| {
                let reason = r
                    .reason
                    .as_deref()
                    .unwrap_or_else(|| reason_phrase(r.status));
                Answer::new(r.status, reason, &r.headers, r.body.clone())
            })
            .collect();
        let route_allows: Vec<Vec<(String, String)>> = routes
            .iter()
            .map(|r| allow(r.methods.iter().map(String::as_str)))
            .collect();
        let probe_allows = allow(["GET", "HEAD"]);
        let any_allows = allow(
            ["GET", "HEAD"].into_iter().chain(
                routes
                    .iter()
                    .flat_map(|r| r.methods.iter().map(String::as_str)),
            ),
        );
        let text = |status: u16, body: &str| {
            let headers = [("Content-Type".to_string(), "text/plain".to_string())];
            Answer::new(
                status,
                reason_phrase(status),
                &headers,
                body.as_bytes().to_vec(),
            )
        };
        let no_content =
            |headers: &[(String, String)]| Answer::new(204, "No Content", headers, Vec::new());
        let mut responses = Responses {
            routes: routes.to_vec(),
            endpoints: endpoints.clone(),
            admin_port: config.admin_listen.is_some(),
            health: text(200, "ok\n"),
            ready: text(200, "ready\n"),
            not_ready: text(503, "shutting down\n"),
            probe_not_allowed: Answer::plain(405, &probe_allows),
            probe_options: no_content(&probe_allows),
            ok,
            not_allowed: route_allows.iter().map(|a| Answer::plain(405, a)).collect(),
            options: route_allows.iter().map(|a| no_content(a)).collect(),
            options_any: no_content(&any_allows),
            not_found: Answer::plain(404, &[]),
            rejected: Rejection::ALL
                .iter()
                .map(|r| Answer::plain(r.status(), &[]))
                .collect(),
            request_id_prefix: format!("{}: ", config.request_id_header).into_bytes(),
            stamped_second: u64::MAX,
        };
        responses.stamp(SystemTime::now());
        responses
    }

    /// Picks the answer for a method and a path (the query already removed) that came in on
    /// `port`. `ready` is false once a shutdown has begun. `OPTIONS` is answered for every path
    /// that has an answer, unless its route lists `OPTIONS` itself.
    pub fn choose(&self, method: &str, path: &[u8], ready: bool, port: Port) -> AnswerId {
        let probe = if port == Port::Traffic && self.admin_port {
            None
        } else if path == self.endpoints.health_path.as_bytes() {
            Some(AnswerId::Health)
        } else if path == self.endpoints.ready_path.as_bytes() {
            Some(AnswerId::Ready { ready })
        } else if path == self.endpoints.metrics_path.as_bytes() {
            Some(AnswerId::Metrics)
        } else {
            None
        };
        if let Some(probe) = probe {
            return match method {
                "GET" | "HEAD" => probe,
                "OPTIONS" => AnswerId::ProbeOptions,
                _ => AnswerId::ProbeMethodNotAllowed,
            };
        }
        if port == Port::Admin {
            return AnswerId::NotFound;
        }
        match self.routes.iter().position(|r| r.matches(path)) {
            Some(i) if self.routes[i].methods.iter().any(|m| m == method) => AnswerId::Route(i),
            Some(i) if method == "OPTIONS" => AnswerId::Options(i),
            Some(i) => AnswerId::MethodNotAllowed(i),
            None => AnswerId::NotFound,
        }
    }

    /// The answer to `OPTIONS *` on `port`: every method the port's paths allow.
    pub fn options_any(&self, port: Port) -> AnswerId {
        match port {
            Port::Traffic => AnswerId::OptionsAny,
            Port::Admin => AnswerId::ProbeOptions,
        }
    }

    fn answer(&self, id: AnswerId) -> &Answer {
        match id {
            AnswerId::Route(i) => &self.ok[i],
            AnswerId::MethodNotAllowed(i) => &self.not_allowed[i],
            AnswerId::Options(i) => &self.options[i],
            AnswerId::OptionsAny => &self.options_any,
            AnswerId::NotFound => &self.not_found,
            AnswerId::Rejected(r) => &self.rejected[r as usize],
            AnswerId::Health => &self.health,
            AnswerId::Ready { ready: true } => &self.ready,
            AnswerId::Ready { ready: false } => &self.not_ready,
            AnswerId::ProbeMethodNotAllowed => &self.probe_not_allowed,
            AnswerId::ProbeOptions => &self.probe_options,
            // Metrics are written by `write_metrics`, which `respond` calls instead of `write`.
            AnswerId::Metrics => &self.not_found,
        }
    }

    /// The header request ids travel in.
    pub fn request_id_header(&self) -> &[u8] {
        let prefix = &self.request_id_prefix;
        &prefix[..prefix.len().saturating_sub(2)]
    }

    /// Appends the answer to `out`, its status line in HTTP/1.`minor`. Without `keep_alive` the
    /// head says `Connection: close`; with `head_only` (a HEAD request) the body is left out and
    /// the headers stay the same. A `request_id` that is not empty is echoed as the last header.
    pub fn write(
        &self,
        id: AnswerId,
        minor: u8,
        keep_alive: bool,
        head_only: bool,
        request_id: &[u8],
        out: &mut Vec<u8>,
    ) -> Sent {
        let answer = self.answer(id);
        let keep_alive = keep_alive && !matches!(id, AnswerId::Rejected(_));
        let head = if keep_alive {
            &answer.keep_alive_head
        } else {
            &answer.close_head
        };
        let start = out.len();
        if request_id.is_empty() {
            out.extend_from_slice(head);
        } else {
            // Before the head's final CRLF.
            out.extend_from_slice(&head[..head.len() - 2]);
            out.extend_from_slice(&self.request_id_prefix);
            out.extend_from_slice(request_id);
            out.extend_from_slice(b"\r\n\r\n");
        }
        set_minor_version(out, start, minor);
        if !head_only {
            out.extend_from_slice(&answer.body);
        }
        Sent {
            status: answer.status,
            bytes: out.len() - start,
        }
    }

    /// Appends a metrics answer with `body` (the one answer not prebuilt: its body changes with
    /// every scrape).
    pub fn write_metrics(
        &self,
        body: &str,
        minor: u8,
        keep_alive: bool,
        head_only: bool,
        out: &mut Vec<u8>,
    ) -> Sent {
        let date_at = self.health.date_at;
        let date = &self.health.close_head[date_at..date_at + DATE_LEN];
        let start = out.len();
        out.extend_from_slice(format!("HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: ").as_bytes());
        set_minor_version(out, start, minor);
        out.extend_from_slice(date);
        let connection = if keep_alive { "keep-alive" } else { "close" };
        out.extend_from_slice(
            format!(
                "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        if !head_only {
            out.extend_from_slice(body.as_bytes());
        }
        Sent {
            status: 200,
            bytes: out.len() - start,
        }
    }

    /// Refreshes the `Date` of every answer when the wall-clock second has changed since the last
    /// call; otherwise does nothing, so it is cheap to call on every wake-up of the event loop.
    pub fn stamp(&mut self, now: SystemTime) {
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second == self.stamped_second {
            return;
        }
        self.stamped_second = second;
        let text = httpdate::fmt_http_date(now);
        let mut date = [b' '; DATE_LEN];
        let len = text.len().min(DATE_LEN);
        date[..len].copy_from_slice(&text.as_bytes()[..len]);
        let answers = self
            .ok
            .iter_mut()
            .chain(self.not_allowed.iter_mut())
            .chain(self.options.iter_mut())
            .chain(self.rejected.iter_mut())
            .chain([
                &mut self.options_any,
                &mut self.probe_options,
                &mut self.not_found,
                &mut self.health,
                &mut self.ready,
                &mut self.not_ready,
                &mut self.probe_not_allowed,
            ]);
        for answer in answers {
            answer.stamp(&date);
        }
    }
}

/// The status line of the answer that starts at `start` in `out` says HTTP/1.`minor`.
fn set_minor_version(out: &mut [u8], start: usize, minor: u8) {
    out[start + MINOR_VERSION_AT] = b'0' + minor.min(1);
}

/// An `Allow` header listing `methods` once each, in order, with `OPTIONS` last.
fn allow<'a>(methods: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut listed: Vec<&str> = Vec::new();
    for method in methods.into_iter().chain(["OPTIONS"]) {
        if !listed.contains(&method) {
            listed.push(method);
        }
    }
    vec![("Allow".to_string(), listed.join(", "))]
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(id: AnswerId, keep_alive: bool, head_only: bool, r: &Responses) -> String {
        let mut out = Vec::new();
        r.write(id, 0, keep_alive, head_only, b"", &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn default_route_is_hello_world_with_a_fresh_date() {
        let mut r = Responses::new(&Config::default());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        r.stamp(at);
        let got = text(AnswerId::Route(0), false, false, &r);
        assert_eq!(
            got,
            format!(
                "HTTP/1.0 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, world!"
            )
        );
        let head = text(AnswerId::Route(0), true, true, &r);
        assert!(head.ends_with("Content-Length: 13\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn rejections_always_close_and_carry_their_status() {
        let r = Responses::new(&Config::default());
        for rejection in Rejection::ALL {
            let got = text(AnswerId::Rejected(rejection), true, false, &r);
            assert!(got.starts_with(&format!("HTTP/1.0 {} ", rejection.status())));
            assert!(got.contains("Connection: close\r\n"));
        }
    }

    #[test]
    fn stamping_patches_every_answer_in_place() {
        let mut r = Responses::new(&Config::default());
        r.stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(784111777));
        let got = text(AnswerId::MethodNotAllowed(0), false, false, &r);
        assert!(
            got.contains("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            "{got}"
        );
        assert!(got.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{got}");
    }

    #[test]
    fn the_status_line_says_the_requests_version_and_204_has_no_length() {
        let r = Responses::new(&Config::default());
        let mut out = Vec::new();
        r.write(AnswerId::Route(0), 1, true, false, b"abc-1", &mut out);
        r.write(AnswerId::Route(0), 0, true, false, b"", &mut out);
        let both = String::from_utf8_lossy(&out);
        assert!(both.starts_with("HTTP/1.1 200 OK\r\n"), "{both}");
        assert!(
            both.contains("Connection: keep-alive\r\nX-Request-Id: abc-1\r\n\r\nHello"),
            "{both}"
        );
        assert!(both.contains("Hello, world!HTTP/1.0 200 OK\r\n"), "{both}");
        let options = text(AnswerId::Options(0), true, false, &r);
        assert!(
            options.starts_with("HTTP/1.0 204 No Content\r\n"),
            "{options}"
        );
        assert!(
            options.contains("Allow: GET, HEAD, OPTIONS\r\n"),
            "{options}"
        );
        assert!(!options.contains("Content-Length"), "{options}");
    }
}
