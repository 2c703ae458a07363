//! Routing: which answer a checked request gets, from its method, its target, the fields that
//! select among answers, the probes' states and the role of the listener it came in on. The
//! probes and metrics (on the admin listener when there is one, else before the routes), the
//! probes' switches (on the admin listener, with `admin_switches`), in error-page mode an `X-Code`
//! or a `/{code}.{ext}` path before the routes, then the first route whose path matches: its
//! answer (or its echo), a 304 when the request's validators match, its 405, its answer to
//! `OPTIONS`; else 404. It writes nothing, and switches nothing: a switch's answer says which.

use super::pages::Language;
use super::template::Format;
use super::Responses;
use crate::config::RouteDelay;
use crate::http::{method_bit, Selectors, Target};

/// The role of the listener a connection came in on, which decides what its paths reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A `listen` address: the routes, and the probes and metrics unless an admin listener is
    /// set.
    #[default]
    Traffic,
    /// The `admin_listen` address: the probes and metrics only.
    Admin,
}

/// A probe the admin listener's switches turn off and on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Health,
    Ready,
}

impl Probe {
    pub const ALL: [Probe; 2] = [Probe::Health, Probe::Ready];

    /// Its name in logs and in `responder_probe_enabled{probe}`.
    pub fn label(self) -> &'static str {
        match self {
            Probe::Health => "health",
            Probe::Ready => "ready",
        }
    }
}

/// What the probes answer now: a shutdown makes readiness 503 whatever its switch says; a switch
/// turned off makes its probe 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probes {
    pub shutting_down: bool,
    pub health_enabled: bool,
    pub ready_enabled: bool,
}

/// Which answer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerId {
    /// The route at this index, which allows the request's method.
    Route(usize),
    /// The echo route at this index, which allows the request's method.
    Echo(usize),
    /// The route at `route`, with the status at `index` of its `statuses`, picked by weight
    /// ([`Responses::pick`]).
    Weighted {
        route: usize,
        index: usize,
    },
    /// 304 for the route at this index: the request's validators match its answer.
    NotModified(usize),
    /// Error-page mode: the status an `X-Code` asked for, in a format and, for the built-in
    /// page's words, a language.
    ErrorPage {
        code: u16,
        format: Format,
        language: Language,
    },
    /// 405 for the route at this index, with its `Allow` header.
    MethodNotAllowed(usize),
    /// 204 to `OPTIONS` on the route at this index, with its `Allow` header.
    Options(usize),
    /// 204 to `OPTIONS *`, allowing every method of any route.
    OptionsAny,
    NotFound,
    /// The liveness probe: 200 while the process serves.
    Health,
    /// The readiness probe: 200, or 503 once a shutdown has begun.
    Ready {
        ready: bool,
    },
    /// A probe its switch turned off: 503.
    Disabled(Probe),
    /// `POST` to a switch: 200 with the probe's new state (the caller sets it).
    Switch {
        probe: Probe,
        enabled: bool,
    },
    /// 405 for a switch's path (`Allow: POST, OPTIONS`).
    SwitchMethodNotAllowed,
    /// 204 to `OPTIONS` on a switch's path.
    SwitchOptions,
    /// 405 for a built-in endpoint's path (`Allow: GET, HEAD, OPTIONS`).
    ProbeMethodNotAllowed,
    /// 204 to `OPTIONS` on a built-in endpoint's path.
    ProbeOptions,
    /// The Prometheus metrics, rendered at each request.
    Metrics,
}

impl AnswerId {
    /// Answers of the built-in endpoints stay out of the access log unless asked for.
    pub fn is_builtin(self) -> bool {
        matches!(
            self,
            AnswerId::Health
                | AnswerId::Ready { .. }
                | AnswerId::Disabled(_)
                | AnswerId::Switch { .. }
                | AnswerId::SwitchMethodNotAllowed
                | AnswerId::SwitchOptions
                | AnswerId::ProbeMethodNotAllowed
                | AnswerId::ProbeOptions
                | AnswerId::Metrics
        )
    }
}

impl Responses {
    /// Picks the answer for a request that came in on a listener of `role`, the probes being as
    /// `probes` says. `OPTIONS` is answered for every path that has an answer, unless its route
    /// lists `OPTIONS` itself.
    // Inlined where the request stream decides, as `Responder::choose` is: a request with a body
    // is chosen for a second time in another place, and a call of its own on every request's
    // path would cost more than the copy.
    #[inline(always)]
    pub fn choose(
        &self,
        method: &str,
        target: Target<'_>,
        probes: Probes,
        role: Role,
        selectors: &Selectors<'_>,
    ) -> AnswerId {
        let path = match target {
            Target::Path(path) => path,
            Target::Asterisk => {
                return match role {
                    Role::Traffic => AnswerId::OptionsAny,
                    Role::Admin => AnswerId::ProbeOptions,
                }
            }
        };
        if let Some(probe) = self.probe(path, probes, role) {
            return match method {
                "GET" | "HEAD" => probe,
                "OPTIONS" => AnswerId::ProbeOptions,
                _ => AnswerId::ProbeMethodNotAllowed,
            };
        }
        if role == Role::Admin {
            return match self.switch(path) {
                Some(switch) => match method {
                    "POST" => switch,
                    "OPTIONS" => AnswerId::SwitchOptions,
                    _ => AnswerId::SwitchMethodNotAllowed,
                },
                None => AnswerId::NotFound,
            };
        }
        // Checked here: the page's search, even one that returns at once, costs a call.
        let page = self
            .error_pages_on
            .then(|| self.error_page(path, selectors));
        if let Some(page) = page.flatten() {
            return page;
        }
        let Some(i) = self.routes.iter().position(|r| r.route.matches(path)) else {
            return AnswerId::NotFound;
        };
        let prepared = &self.routes[i];
        if prepared.methods & method_bit(method) != 0 {
            match &prepared.validators {
                Some(v) if matches!(method, "GET" | "HEAD") && v.fresh(selectors) => {
                    AnswerId::NotModified(i)
                }
                _ if prepared.echo.is_some() => AnswerId::Echo(i),
                _ => AnswerId::Route(i),
            }
        } else if method == "OPTIONS" {
            AnswerId::Options(i)
        } else {
            AnswerId::MethodNotAllowed(i)
        }
    }

    /// The built-in endpoint at `path`, where the listener's role reaches them.
    fn probe(&self, path: &[u8], probes: Probes, role: Role) -> Option<AnswerId> {
        if role == Role::Traffic && self.admin_listener {
            return None;
        }
        let endpoints = &self.endpoints;
        if path == endpoints.health_path.as_bytes() {
            Some(if probes.health_enabled {
                AnswerId::Health
            } else {
                AnswerId::Disabled(Probe::Health)
            })
        } else if path == endpoints.ready_path.as_bytes() {
            Some(match probes {
                Probes {
                    shutting_down: true,
                    ..
                } => AnswerId::Ready { ready: false },
                Probes {
                    ready_enabled: false,
                    ..
                } => AnswerId::Disabled(Probe::Ready),
                _ => AnswerId::Ready { ready: true },
            })
        } else if path == endpoints.metrics_path.as_bytes() {
            Some(AnswerId::Metrics)
        } else {
            None
        }
    }

    /// On the admin listener with `admin_switches`: the switch at `path`
    /// (`{health_path}/disable`, `{ready_path}/enable`, ...).
    fn switch(&self, path: &[u8]) -> Option<AnswerId> {
        if !self.switches_on {
            return None;
        }
        let endpoints = &self.endpoints;
        let probes = [
            (Probe::Health, endpoints.health_path.as_bytes()),
            (Probe::Ready, endpoints.ready_path.as_bytes()),
        ];
        probes.into_iter().find_map(|(probe, probe_path)| {
            let enabled = match path.strip_prefix(probe_path)? {
                b"/enable" => true,
                b"/disable" => false,
                _ => return None,
            };
            Some(AnswerId::Switch { probe, enabled })
        })
    }

    /// The page an `X-Code` from 400 to 599 asks for (in the format of
    /// `X-Format`, else the first `Accept` takes of HTML, JSON and text, else HTML), or without
    /// one, the page a path `/{code}` or `/{code}.{ext}` names (`/503`, `/404.json`: in the
    /// extension's format, else as for `X-Code`); in the pinned language, else the one
    /// `Accept-Language` prefers, else English.
    fn error_page(&self, path: &[u8], selectors: &Selectors<'_>) -> Option<AnswerId> {
        // The code first: nearly every path names none, and then nothing is negotiated.
        let (code, format) = if selectors.x_code.is_empty() {
            let name = path.strip_prefix(b"/")?;
            let (digits, format) = match name.iter().position(|&b| b == b'.') {
                Some(dot) => {
                    let ext = &name[dot + 1..];
                    let format = Format::ALL
                        .into_iter()
                        .find(|f| f.ext().as_bytes() == ext)?;
                    (&name[..dot], Some(format))
                }
                None => (name, None),
            };
            (error_code(digits)?, format)
        } else {
            (error_code(selectors.x_code.trim_ascii())?, None)
        };
        let format = format.unwrap_or_else(|| {
            Format::from_media_type(selectors.x_format)
                .or_else(|| Format::from_accept(selectors.accept))
                .unwrap_or(Format::Html)
        });
        let language = self
            .error_pages
            .language()
            .or_else(|| Language::from_accept_language(selectors.accept_language))
            .unwrap_or(Language::En);
        Some(AnswerId::ErrorPage {
            code,
            format,
            language,
        })
    }

    /// For a route that picks its status by weight, the status `random` picks; any other answer
    /// as it is.
    pub fn pick(&self, id: AnswerId, random: impl FnOnce() -> u64) -> AnswerId {
        let AnswerId::Route(route) = id else {
            return id;
        };
        match self.routes[route].pick(random) {
            Some(index) => AnswerId::Weighted { route, index },
            None => id,
        }
    }

    /// How long the answer is held, when its route has a `delay`.
    pub fn delay(&self, id: AnswerId) -> Option<RouteDelay> {
        match id {
            AnswerId::Route(i)
            | AnswerId::Echo(i)
            | AnswerId::NotModified(i)
            | AnswerId::Weighted { route: i, .. } => self.routes[i].route.delay,
            _ => None,
        }
    }
}

/// A status from 400 to 599, in three digits and nothing else (`+503` and `0503` are no code).
fn error_code(digits: &[u8]) -> Option<u16> {
    let &[a, b, c] = digits else {
        return None;
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = [a, b, c]
        .into_iter()
        .fold(0, |code, digit| code * 10 + u16::from(digit - b'0'));
    (400..=599).contains(&code).then_some(code)
}
