//! Every answer the server can send, prepared once per configuration from it: the routes' (one
//! [`route::Prepared`] each), the built-in endpoints', the error pages' and the rejections'.
//!
//! Most answers are prebuilt ([`prebuilt::Answer`]) and copied per request; the only parts that
//! change are the `Date` header, patched in place once a second by [`Responses::stamp`], the
//! status line's minor version and the connection's framing. Templated routes, error pages,
//! echoes ([`echo`]) and the metrics are written per request by the same head writer ([`head`])
//! into the caller's buffer. [`Responses::resolve`] says which of the four an answer is, so that
//! the caller must write each the way it is written. Choosing the answer is the router's ([`router`]); parsing
//! the request is `http`'s. It does no I/O.

mod conditional;
mod echo;
mod error_pages;
mod head;
pub mod pages;
mod prebuilt;
mod route;
mod router;
pub mod template;

use std::cell::RefCell;
use std::time::SystemTime;

pub(crate) use echo::Echoed;
pub use head::Framing;
pub use prebuilt::{Answer, Sent};
pub use router::{AnswerId, Probe, Probes, Role};

use crate::config::{Config, Endpoints};
use crate::http::status::{reason_phrase, Rejection};
use crate::sys;
use error_pages::ErrorPages;
use head::DATE_LEN;
use pages::Words;
use route::Prepared;
use template::{Escape, Template, Values};

thread_local! {
    /// A rendered body, before its length goes into the head: it keeps its capacity, up to
    /// [`BODY_KEPT`].
    static BODY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What the rendered body keeps between answers: every page and a default echo fit; a larger
/// echo's buffer is given back after its answer rather than held by the worker for good.
const BODY_KEPT: usize = 256 * 1024;

/// Lends the worker's body buffer, empty, to `render`.
fn with_body<R>(render: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    BODY.with(|body| {
        let mut body = body.borrow_mut();
        body.clear();
        let result = render(&mut body);
        body.clear();
        body.shrink_to(BODY_KEPT);
        result
    })
}

/// Every answer of one configuration, and the routes that choose among them.
#[derive(Debug, Clone)]
pub struct Responses {
    routes: Vec<Prepared>,
    error_pages: ErrorPages,
    /// Error-page mode: an `X-Code` chooses a page before the routes.
    error_pages_on: bool,
    /// The current `Date`, for the answers written rather than copied.
    date: [u8; DATE_LEN],
    endpoints: Endpoints,
    /// The probes and metrics are served on the admin listener, not on the traffic listeners.
    admin_listener: bool,
    /// The probes' switches are served on the admin listener.
    switches_on: bool,
    /// This machine's name, for echoes.
    hostname: String,
    health: Answer,
    ready: Answer,
    not_ready: Answer,
    /// A probe switched off, in the order of `Probe::ALL`.
    disabled: [Answer; 2],
    /// A switch's answer: for each probe in the order of `Probe::ALL`, disabled then enabled.
    switched: [[Answer; 2]; 2],
    switch_not_allowed: Answer,
    switch_options: Answer,
    probe_not_allowed: Answer,
    probe_options: Answer,
    options_any: Answer,
    not_found: Answer,
    /// In the order of `Rejection::ALL`.
    rejected: Vec<Answer>,
    /// The metrics' header lines.
    metrics_headers: Vec<u8>,
    /// `X-Request-Id: ` (or the configured `request_id_header`), for an echoed request id.
    request_id_prefix: Vec<u8>,
    stamped_second: u64,
}

/// On the probes' and metrics' answers (RFC 9111 5.2.2.5): each says how the process is at this
/// moment, so no cache may keep one and answer a later probe with it, by heuristic or otherwise.
fn not_stored() -> (String, String) {
    ("Cache-Control".to_string(), "no-store".to_string())
}

/// How an answer is written: copied, rendered from a page, an echo of the request, or the
/// metrics.
pub enum Resolved<'a> {
    Prebuilt(&'a Answer),
    Rendered(Page<'a>),
    /// Written by [`Responses::write_echo`] for the request the caller holds.
    Echo(&'a echo::Fixed),
    /// Rendered at each scrape by the caller, which holds the counters
    /// ([`Responses::write_metrics`]).
    Metrics,
}

/// An answer rendered per request: its head (headers with `Content-Type` first) and body
/// template.
pub struct Page<'a> {
    status: u16,
    /// The status line's.
    reason: &'a str,
    /// The body's `{{reason}}`, `{{message}}` and `{{lang}}`: an error page's, in its language.
    says: Says<'a>,
    /// `Name: value\r\n` lines.
    headers: &'a [u8],
    template: &'a Template,
    escape: Escape,
}

/// What a page's body says besides the request's values.
#[derive(Clone, Copy)]
struct Says<'a> {
    reason: &'a str,
    message: &'a str,
    lang: &'a str,
}

impl Responses {
    pub fn new(config: &Config) -> Responses {
        let routes = &config.routes;
        let mut probe_allows = route::allow(["GET", "HEAD"]);
        probe_allows.push(not_stored());
        let switch_allows = route::allow(["POST"]);
        let any_allows = route::allow(
            ["GET", "HEAD"].into_iter().chain(
                routes
                    .iter()
                    .flat_map(|r| r.methods.iter().map(String::as_str)),
            ),
        );
        let probe = |status: u16, body: &str| {
            let headers = [
                ("Content-Type".to_string(), "text/plain".to_string()),
                not_stored(),
            ];
            Answer::new(
                status,
                reason_phrase(status),
                &headers,
                body.as_bytes().to_vec(),
            )
        };
        let mut responses = Responses {
            routes: routes.iter().map(Prepared::new).collect(),
            error_pages: ErrorPages::new(&config.error_pages),
            error_pages_on: config.error_pages.enabled,
            date: [b' '; DATE_LEN],
            endpoints: config.endpoints.clone(),
            admin_listener: config.admin_listen.is_some(),
            health: probe(200, "ok\n"),
            ready: probe(200, "ready\n"),
            not_ready: probe(503, "shutting down\n"),
            switches_on: config.admin_switches && config.admin_listen.is_some(),
            hostname: sys::hostname(),
            disabled: Probe::ALL.map(|p| probe(503, &format!("{} disabled\n", p.label()))),
            switched: Probe::ALL.map(|p| {
                ["disabled", "enabled"].map(|state| probe(200, &format!("{} {state}\n", p.label())))
            }),
            switch_not_allowed: Answer::plain(405, &switch_allows),
            switch_options: route::no_content(&switch_allows),
            probe_not_allowed: Answer::plain(405, &probe_allows),
            probe_options: route::no_content(&probe_allows),
            options_any: route::no_content(&any_allows),
            not_found: Answer::plain(404, &[]),
            rejected: Rejection::ALL
                .iter()
                .map(|r| Answer::plain(r.status(), &[]))
                .collect(),
            metrics_headers: head::lines(&[
                (
                    "Content-Type".to_string(),
                    "text/plain; version=0.0.4; charset=utf-8".to_string(),
                ),
                not_stored(),
            ]),
            request_id_prefix: format!("{}: ", config.request_id_header).into_bytes(),
            stamped_second: u64::MAX,
        };
        responses.stamp(SystemTime::now());
        responses
    }

    /// How the answer `id` is written.
    pub fn resolve(&self, id: AnswerId) -> Resolved<'_> {
        let prebuilt = match id {
            AnswerId::Route(i) => {
                let prepared = &self.routes[i];
                match &prepared.rendered {
                    Some(r) => {
                        return Resolved::Rendered(Page {
                            status: r.status,
                            reason: &r.reason,
                            says: Says {
                                reason: &r.reason,
                                message: "",
                                lang: "",
                            },
                            headers: &r.headers,
                            template: &r.template,
                            escape: r.escape,
                        })
                    }
                    None => &prepared.answer,
                }
            }
            AnswerId::ErrorPage {
                code,
                format,
                language,
            } => {
                let page = self.error_pages.page(code, format, language);
                let words = Words::of(language);
                let reason = reason_phrase(code);
                return Resolved::Rendered(Page {
                    status: code,
                    reason,
                    says: Says {
                        reason: words
                            .reason(code)
                            .filter(|_| page.builtin)
                            .unwrap_or(reason),
                        message: words.sentence(code),
                        lang: language.tag(),
                    },
                    headers: page.headers,
                    template: page.template,
                    escape: format.escape(),
                });
            }
            AnswerId::Metrics => return Resolved::Metrics,
            AnswerId::Echo(i) => match &self.routes[i].echo {
                Some(fixed) => return Resolved::Echo(fixed),
                // Chosen only for an echo route.
                None => &self.routes[i].answer,
            },
            AnswerId::Weighted { route, index } => &self.routes[route].weighted[index].1,
            // Chosen only for a route with validators; without them, the route's own answer.
            AnswerId::NotModified(i) => match &self.routes[i].validators {
                Some(v) => &v.not_modified,
                None => &self.routes[i].answer,
            },
            AnswerId::MethodNotAllowed(i) => &self.routes[i].not_allowed,
            AnswerId::Options(i) => &self.routes[i].options,
            AnswerId::OptionsAny => &self.options_any,
            AnswerId::NotFound => &self.not_found,
            AnswerId::Health => &self.health,
            AnswerId::Ready { ready: true } => &self.ready,
            AnswerId::Ready { ready: false } => &self.not_ready,
            AnswerId::Disabled(probe) => &self.disabled[probe as usize],
            AnswerId::Switch { probe, enabled } => &self.switched[probe as usize][enabled as usize],
            AnswerId::SwitchMethodNotAllowed => &self.switch_not_allowed,
            AnswerId::SwitchOptions => &self.switch_options,
            AnswerId::ProbeMethodNotAllowed => &self.probe_not_allowed,
            AnswerId::ProbeOptions => &self.probe_options,
        };
        Resolved::Prebuilt(prebuilt)
    }

    /// The fixed answer to a rejected request.
    pub fn rejection(&self, rejection: Rejection) -> &Answer {
        &self.rejected[rejection as usize]
    }

    /// The header request ids travel in.
    pub fn request_id_header(&self) -> &[u8] {
        let prefix = &self.request_id_prefix;
        &prefix[..prefix.len().saturating_sub(2)]
    }

    /// Appends a prebuilt answer to `out`, framed as `framing` says.
    pub fn write(&self, answer: &Answer, framing: &Framing<'_>, out: &mut Vec<u8>) -> Sent {
        answer.write(framing, &self.request_id_prefix, out)
    }

    /// Appends a metrics answer with `body` (its body changes with every scrape).
    pub fn write_metrics(&self, body: &str, framing: &Framing<'_>, out: &mut Vec<u8>) -> Sent {
        let headers = &self.metrics_headers;
        self.write_written(200, "OK", headers, body.as_bytes(), framing, out)
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
            code: page.status,
            reason: page.says.reason,
            message: page.says.message,
            lang: page.says.lang,
            ..*values
        };
        with_body(|body| {
            page.template.render(&values, page.escape, body);
            self.write_written(page.status, page.reason, page.headers, body, framing, out)
        })
    }

    /// Appends the echo of `echoed` (in the form it asks for) with an echo route's status and
    /// headers.
    pub(crate) fn write_echo(
        &self,
        fixed: &echo::Fixed,
        echoed: &Echoed<'_>,
        framing: &Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let form = echo::Form::of(echoed);
        with_body(|body| {
            echo::render(echoed, &self.hostname, form, body);
            let headers = fixed.headers(form);
            self.write_written(fixed.status, &fixed.reason, headers, body, framing, out)
        })
    }

    /// Appends an answer that is not prebuilt, through the head writer prebuilt answers are
    /// made with.
    fn write_written(
        &self,
        status: u16,
        reason: &str,
        headers: &[u8],
        body: &[u8],
        framing: &Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let begin = out.len();
        head::start(out, status, reason, &self.date, headers, body.len());
        head::end(out, begin, framing, &self.request_id_prefix);
        if !framing.head_only && !head::without_content(status) {
            out.extend_from_slice(body);
        }
        Sent {
            status,
            bytes: out.len() - begin,
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
        for prepared in &mut self.routes {
            prepared.stamp(&date);
        }
        let answers = self.rejected.iter_mut().chain([
            &mut self.options_any,
            &mut self.probe_options,
            &mut self.not_found,
            &mut self.health,
            &mut self.ready,
            &mut self.not_ready,
            &mut self.probe_not_allowed,
            &mut self.switch_not_allowed,
            &mut self.switch_options,
        ]);
        let switches = self.switched.iter_mut().flatten();
        for answer in answers.chain(&mut self.disabled).chain(switches) {
            answer.stamp(&date);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::head::SERVER;
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
        let Resolved::Prebuilt(answer) = r.resolve(id) else {
            panic!("{id:?} is not prebuilt");
        };
        r.write(answer, &framing, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn default_route_is_hello_world_with_a_fresh_date() {
        let mut config = Config::default();
        config.routes[0].modified = SystemTime::UNIX_EPOCH + Duration::from_secs(784111000);
        let mut r = Responses::new(&config);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        r.stamp(at);
        let got = text(AnswerId::Route(0), false, false, &r);
        let etag = r.routes[0]
            .validators
            .as_ref()
            .map(|v| v.etag.clone())
            .unwrap();
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
            let mut out = Vec::new();
            r.write(
                r.rejection(rejection),
                &Framing::rejected(0, false, b""),
                &mut out,
            );
            let got = String::from_utf8_lossy(&out);
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
        let Resolved::Prebuilt(hello) = r.resolve(AnswerId::Route(0)) else {
            panic!("the default route is prebuilt");
        };
        r.write(hello, &framing(1, b"abc-1"), &mut out);
        r.write(hello, &framing(0, b""), &mut out);
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
