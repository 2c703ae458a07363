//! Prebuilt responses: every byte the server can send, serialized once from the configuration.
//!
//! A request never formats anything: it picks an [`Answer`] and copies its bytes. The only parts
//! that change are the `Date` header, patched in place once a second by [`Responses::stamp`], and
//! the status line's minor version, patched as the bytes are copied: HTTP/1.0 requests are
//! answered `HTTP/1.0`, all others `HTTP/1.1`. Templated routes and error pages keep their head's
//! fixed parts and a parsed template, and are rendered into the caller's buffer
//! ([`Responses::write_rendered`]), as the metrics are.
//! This module maps a request's method, path and validators to an answer ([`Responses::choose`]);
//! the checks of the request itself are `http`'s. It does no I/O.

pub mod template;

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::answers::template::{Escape, Format, Kind, Template, Values};
use crate::config::{Config, Endpoints, PageKey, Route, RouteDelay};

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
    /// The route at `route`, with the status at `index` of its `statuses`, picked by weight
    /// ([`Responses::pick`]).
    Weighted {
        route: usize,
        index: usize,
    },
    /// 304 for the route at this index: the request's validators match its answer.
    NotModified(usize),
    /// Error-page mode: the status an `X-Code` asked for, in a format.
    ErrorPage {
        code: u16,
        format: Format,
    },
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

/// The request headers that change which answer a request gets: the error-page mode's, and the
/// validators of a conditional request. Empty: absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asks<'a> {
    pub x_code: &'a [u8],
    pub x_format: &'a [u8],
    pub accept: &'a [u8],
    pub if_none_match: &'a [u8],
    pub if_modified_since: &'a [u8],
}

/// What a route's 2xx answer is validated by, and its 304.
#[derive(Debug, Clone)]
struct Validators {
    /// A strong entity tag, quotes included.
    etag: String,
    /// Seconds since the epoch.
    modified: u64,
    not_modified: Answer,
}

/// A templated answer's fixed parts.
#[derive(Debug, Clone)]
struct Rendered {
    status: u16,
    reason: String,
    /// `Name: value\r\n` lines, `Content-Type` first.
    headers: Vec<u8>,
    template: Template,
    escape: Escape,
}

/// Error-page mode's pages: for each status from 400 to 599 and each format, which template.
#[derive(Debug, Clone)]
struct ErrorPages {
    templates: Vec<Template>,
    /// Index into `templates` of the page for `(status - 400) * 3 + format`.
    chosen: Vec<u16>,
}

/// The built-in pages, used where the directory has neither `NNN.ext` nor `Nxx.ext`.
const BUILTIN_PAGES: [(Format, &str); 3] = [
    (
        Format::Html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{{code}} {{reason}}</title></head>\n<body><h1>{{code}} {{reason}}</h1></body>\n</html>\n",
    ),
    (
        Format::Json,
        "{\"code\":{{code}},\"message\":\"{{reason}}\"}\n",
    ),
    (Format::Text, "{{code}} {{reason}}\n"),
];

impl ErrorPages {
    fn new(files: &[crate::config::PageFile]) -> ErrorPages {
        let no_env = |_: &str| None;
        // The built-in pages, then each file's page once: `chosen` points into them.
        let templates: Vec<Template> = BUILTIN_PAGES
            .iter()
            .map(|(_, text)| {
                // They parse (tested in `builtin_pages_parse`); as text they would still serve.
                Template::parse(text, Kind::ErrorPage, &no_env)
                    .unwrap_or_else(|_| Template::literal(text))
            })
            .chain(files.iter().map(|p| p.template.clone()))
            .collect();
        let mut chosen = Vec::with_capacity(200 * Format::ALL.len());
        for code in 400..=599u16 {
            for (f, format) in Format::ALL.into_iter().enumerate() {
                let file = |key: PageKey| {
                    files
                        .iter()
                        .position(|p| p.key == key && p.format == format)
                };
                let index = match file(PageKey::Status(code))
                    .or_else(|| file(PageKey::Class(code / 100)))
                {
                    Some(i) => BUILTIN_PAGES.len() + i,
                    None => f,
                };
                chosen.push(index as u16);
            }
        }
        ErrorPages { templates, chosen }
    }

    fn page(&self, code: u16, format: Format) -> Option<&Template> {
        let f = Format::ALL.iter().position(|&x| x == format)?;
        let at = usize::from(code.checked_sub(400)?) * Format::ALL.len() + f;
        self.templates.get(usize::from(*self.chosen.get(at)?))
    }
}

thread_local! {
    /// A rendered body, before its length goes into the head: it keeps its capacity.
    static BODY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Every answer of one configuration, and the routes that choose among them.
#[derive(Debug, Clone)]
pub struct Responses {
    routes: Vec<Route>,
    /// For each route that picks its status by weight: (the cumulative weight up to and
    /// including this status, its answer).
    weighted: Vec<Vec<(u32, Answer)>>,
    /// For each route whose answer has validators (a 2xx that is not templated or weighted).
    validators: Vec<Option<Validators>>,
    /// For each templated route.
    rendered: Vec<Option<Rendered>>,
    /// When error-page mode is on.
    error_pages: Option<ErrorPages>,
    /// The current `Date`, for the answers written rather than copied.
    date: [u8; DATE_LEN],
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
    /// A refusal's: whole, then the connection closes.
    pub fn refusal(minor: u8, request_id: &[u8]) -> Framing<'_> {
        Framing {
            minor,
            keep_alive: false,
            head_only: false,
            request_id,
        }
    }
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
        let reason_of =
            |r: &Route, status: u16| match r.reason.as_deref().filter(|_| status == r.status) {
                Some(reason) => reason.to_string(),
                None => reason_phrase(status).to_string(),
            };
        let validators: Vec<Option<Validators>> = routes.iter().map(Validators::of).collect();
        let ok = routes
            .iter()
            .zip(&validators)
            .map(|(r, v)| {
                let mut headers = r.headers.clone();
                if let Some(v) = v {
                    headers.extend(v.headers());
                }
                Answer::new(r.status, &reason_of(r, r.status), &headers, r.body.clone())
            })
            .collect();
        let weighted = routes
            .iter()
            .map(|r| {
                let mut total = 0;
                r.statuses
                    .iter()
                    .map(|&(status, weight)| {
                        total += weight;
                        let answer =
                            Answer::new(status, &reason_of(r, status), &r.headers, r.body.clone());
                        (total, answer)
                    })
                    .collect()
            })
            .collect();
        let rendered = routes
            .iter()
            .map(|r| {
                let template = r.template.clone()?;
                Some(Rendered {
                    status: r.status,
                    reason: reason_of(r, r.status),
                    headers: header_lines(&r.headers),
                    template,
                    escape: Escape::for_content_type(r.content_type()),
                })
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
            weighted,
            validators,
            rendered,
            error_pages: config
                .error_pages
                .enabled
                .then(|| ErrorPages::new(&config.error_pages.files)),
            date: [b' '; DATE_LEN],
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
    pub fn choose(
        &self,
        method: &str,
        path: &[u8],
        ready: bool,
        port: Port,
        asks: &Asks<'_>,
    ) -> AnswerId {
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
        if let Some(page) = self.error_page(asks) {
            return page;
        }
        match self.routes.iter().position(|r| r.matches(path)) {
            Some(i) if self.routes[i].methods.iter().any(|m| m == method) => {
                match &self.validators[i] {
                    Some(v) if matches!(method, "GET" | "HEAD") && v.fresh(asks) => {
                        AnswerId::NotModified(i)
                    }
                    _ => AnswerId::Route(i),
                }
            }
            Some(i) if method == "OPTIONS" => AnswerId::Options(i),
            Some(i) => AnswerId::MethodNotAllowed(i),
            None => AnswerId::NotFound,
        }
    }

    /// In error-page mode, the page an `X-Code` from 400 to 599 asks for: in the format of
    /// `X-Format`, else the first `Accept` takes of HTML, JSON and text, else HTML.
    fn error_page(&self, asks: &Asks<'_>) -> Option<AnswerId> {
        self.error_pages.as_ref()?;
        let code = std::str::from_utf8(asks.x_code.trim_ascii())
            .ok()?
            .parse::<u16>()
            .ok()
            .filter(|c| (400..=599).contains(c))?;
        let format = Format::from_media_type(asks.x_format)
            .or_else(|| Format::from_accept(asks.accept))
            .unwrap_or(Format::Html);
        Some(AnswerId::ErrorPage { code, format })
    }

    /// For a route that picks its status by weight, the status `random` picks; any other answer
    /// as it is.
    pub fn pick(&self, id: AnswerId, random: impl FnOnce() -> u64) -> AnswerId {
        let AnswerId::Route(route) = id else {
            return id;
        };
        let Some(&(total, _)) = self.weighted[route].last() else {
            return id;
        };
        let point = (random() % u64::from(total)) as u32;
        let index = self.weighted[route]
            .iter()
            .position(|&(end, _)| point < end)
            .unwrap_or(0);
        AnswerId::Weighted { route, index }
    }

    /// How long the answer is held, when its route has a `delay`.
    pub fn delay(&self, id: AnswerId) -> Option<RouteDelay> {
        match id {
            AnswerId::Route(i) | AnswerId::NotModified(i) | AnswerId::Weighted { route: i, .. } => {
                self.routes[i].delay
            }
            _ => None,
        }
    }

    /// The page of an answer rendered per request (a templated route, an error page), for
    /// [`Responses::write_rendered`]; none for an answer that is copied.
    pub fn page(&self, id: AnswerId) -> Option<Page<'_>> {
        match id {
            AnswerId::Route(i) => {
                let r = self.rendered[i].as_ref()?;
                Some(Page {
                    head: Head {
                        status: r.status,
                        reason: &r.reason,
                        headers: &r.headers,
                    },
                    template: &r.template,
                    escape: r.escape,
                })
            }
            AnswerId::ErrorPage { code, format } => {
                let template = self.error_pages.as_ref()?.page(code, format)?;
                Some(Page {
                    head: Head {
                        status: code,
                        reason: reason_phrase(code),
                        headers: format.content_type_line(),
                    },
                    template,
                    escape: format.escape(),
                })
            }
            _ => None,
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
            AnswerId::Weighted { route, index } => &self.weighted[route][index].1,
            AnswerId::NotModified(i) => match &self.validators[i] {
                Some(v) => &v.not_modified,
                None => &self.ok[i],
            },
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
            // Written by `write_metrics` and `write_rendered`, which `respond` calls instead.
            AnswerId::Metrics | AnswerId::ErrorPage { .. } => &self.not_found,
        }
    }

    /// The header request ids travel in.
    pub fn request_id_header(&self) -> &[u8] {
        let prefix = &self.request_id_prefix;
        &prefix[..prefix.len().saturating_sub(2)]
    }

    /// Appends the answer to `out`, framed as `framing` says.
    pub fn write(&self, id: AnswerId, framing: &Framing<'_>, out: &mut Vec<u8>) -> Sent {
        let Framing {
            minor,
            keep_alive,
            head_only,
            request_id,
        } = *framing;
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
    pub fn write_metrics(&self, body: &str, framing: &Framing<'_>, out: &mut Vec<u8>) -> Sent {
        let head = Head {
            status: 200,
            reason: "OK",
            headers: b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
        };
        self.write_written(&head, body.as_bytes(), framing, out)
    }

    /// Appends a page (a templated route's answer or an error page) rendered for `values` (its
    /// `code` and `reason` are the page's), with the same head as a prebuilt answer would have.
    pub fn write_rendered(
        &self,
        page: &Page<'_>,
        values: &Values<'_>,
        framing: &Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let values = Values {
            code: page.head.status,
            reason: page.head.reason,
            ..*values
        };
        BODY.with(|body| {
            let mut body = body.borrow_mut();
            body.clear();
            page.template.render(&values, page.escape, &mut body);
            self.write_written(&page.head, &body, framing, out)
        })
    }

    /// Appends an answer that is not prebuilt: its head, laid out as a prebuilt one is, and
    /// `body` (unless the framing says the head only).
    fn write_written(
        &self,
        head: &Head<'_>,
        body: &[u8],
        framing: &Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let start = out.len();
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(digits.format(head.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(head.reason.as_bytes());
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(&self.date);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(head.headers);
        if !matches!(head.status, 204 | 304) {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(digits.format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(if framing.keep_alive {
            b"Connection: keep-alive\r\n"
        } else {
            b"Connection: close\r\n"
        });
        if !framing.request_id.is_empty() {
            out.extend_from_slice(&self.request_id_prefix);
            out.extend_from_slice(framing.request_id);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        set_minor_version(out, start, framing.minor);
        if !framing.head_only && !matches!(head.status, 204 | 304) {
            out.extend_from_slice(body);
        }
        Sent {
            status: head.status,
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
        self.date = date;
        let answers = self
            .ok
            .iter_mut()
            .chain(self.weighted.iter_mut().flatten().map(|(_, a)| a))
            .chain(
                self.validators
                    .iter_mut()
                    .flatten()
                    .map(|v| &mut v.not_modified),
            )
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

/// An answer rendered per request: its head (headers with `Content-Type` first) and body
/// template.
pub struct Page<'a> {
    head: Head<'a>,
    template: &'a Template,
    escape: Escape,
}

/// The parts of a head that is written rather than copied.
struct Head<'a> {
    status: u16,
    reason: &'a str,
    /// `Name: value\r\n` lines.
    headers: &'a [u8],
}

/// `Name: value\r\n` for each header.
fn header_lines(headers: &[(String, String)]) -> Vec<u8> {
    let mut lines = Vec::new();
    for (name, value) in headers {
        lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    lines
}

impl Validators {
    /// A route's validators, if its answer has them: a 2xx that is neither templated nor
    /// weighted. The entity tag hashes the status, headers and body, so that it changes with
    /// any of them.
    fn of(route: &Route) -> Option<Validators> {
        if route.template.is_some() || !route.statuses.is_empty() || route.status / 100 != 2 {
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (route.status, &route.reason, &route.headers, &route.body).hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let modified = route
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut validators = Validators {
            etag,
            modified,
            not_modified: Answer::new(304, "Not Modified", &[], Vec::new()),
        };
        // RFC 9110 15.4.5: a 304 carries the validators and the caching headers a 200 would.
        let mut headers: Vec<(String, String)> = route
            .headers
            .iter()
            .filter(|(n, _)| {
                ["cache-control", "content-location", "expires", "vary"]
                    .iter()
                    .any(|c| n.eq_ignore_ascii_case(c))
            })
            .cloned()
            .collect();
        headers.extend(validators.headers());
        validators.not_modified = Answer::new(304, "Not Modified", &headers, Vec::new());
        Some(validators)
    }

    fn headers(&self) -> [(String, String); 2] {
        let modified = UNIX_EPOCH + std::time::Duration::from_secs(self.modified);
        [
            ("ETag".to_string(), self.etag.clone()),
            (
                "Last-Modified".to_string(),
                httpdate::fmt_http_date(modified),
            ),
        ]
    }

    /// RFC 9110 13.1.2 and 13.1.3: `If-None-Match` listing this tag (weakly compared) or `*`;
    /// without it, `If-Modified-Since` not older than the last modification.
    fn fresh(&self, asks: &Asks<'_>) -> bool {
        if asks.if_none_match.is_empty() && asks.if_modified_since.is_empty() {
            return false;
        }
        let if_none_match = asks.if_none_match.trim_ascii();
        if !if_none_match.is_empty() {
            return if_none_match == b"*"
                || if_none_match.split(|&b| b == b',').any(|tag| {
                    let tag = tag.trim_ascii();
                    let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
                    tag == self.etag.as_bytes()
                });
        }
        std::str::from_utf8(asks.if_modified_since)
            .ok()
            .and_then(|text| httpdate::parse_http_date(text.trim()).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| self.modified <= since.as_secs())
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
        let framing = Framing {
            minor: 0,
            keep_alive,
            head_only,
            request_id: b"",
        };
        r.write(id, &framing, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn builtin_pages_parse() {
        for (_, text) in BUILTIN_PAGES {
            let no_env = |_: &str| None;
            assert!(
                Template::parse(text, Kind::ErrorPage, &no_env).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn default_route_is_hello_world_with_a_fresh_date() {
        let mut config = Config::default();
        config.routes[0].modified = SystemTime::UNIX_EPOCH + Duration::from_secs(784111000);
        let mut r = Responses::new(&config);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        r.stamp(at);
        let got = text(AnswerId::Route(0), false, false, &r);
        let etag = r.validators[0].as_ref().map(|v| v.etag.clone()).unwrap();
        assert_eq!(
            got,
            format!(
                "HTTP/1.0 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Content-Type: text/plain\r\nETag: {etag}\r\n\
                 Last-Modified: Sun, 06 Nov 1994 08:36:40 GMT\r\n\
                 Content-Length: 13\r\nConnection: close\r\n\r\nHello, world!"
            )
        );
        assert!(etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'));
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
        let framing = |minor, request_id| Framing {
            minor,
            keep_alive: true,
            head_only: false,
            request_id,
        };
        r.write(AnswerId::Route(0), &framing(1, b"abc-1"), &mut out);
        r.write(AnswerId::Route(0), &framing(0, b""), &mut out);
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
