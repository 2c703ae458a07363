//! The routes and the error pages, built from the file's specs: each route's body (or body file,
//! or template) loaded and checked, its methods, headers, weighted statuses and delay, and no
//! content where HTTP forbids it (a 205's, a configured 304); the built-in endpoints' paths; the
//! pages directory read. The bytes they answer with are `answers`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::*;
use crate::answers::pages::language::Language;
use crate::answers::pages::themes::Theme;
use crate::answers::template::{Format, Kind, Template};

/// How long a route holds each answer: `min` when it equals `max`, else uniform between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDelay {
    pub min: Duration,
    pub max: Duration,
}

pub(super) fn default_methods() -> Vec<Method> {
    vec![Method("GET".into()), Method("HEAD".into())]
}

pub const DEFAULT_HEALTH_PATH: &str = "/healthz";
pub const DEFAULT_READY_PATH: &str = "/readyz";
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The built-in endpoints, matched before the routes: liveness (200 while the process serves),
/// readiness (503 once a shutdown has begun), and the Prometheus metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub health_path: String,
    pub ready_path: String,
    pub metrics_path: String,
    /// Whether requests to these appear in the access log (off: probes and scrapes would be most
    /// of its volume).
    pub log_health_checks: bool,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            health_path: DEFAULT_HEALTH_PATH.into(),
            ready_path: DEFAULT_READY_PATH.into(),
            metrics_path: DEFAULT_METRICS_PATH.into(),
            log_health_checks: false,
        }
    }
}

impl Endpoints {
    /// Each endpoint's configuration key and path.
    pub fn paths(&self) -> [(&'static str, &str); 3] {
        [
            ("health_path", &self.health_path),
            ("ready_path", &self.ready_path),
            ("metrics_path", &self.metrics_path),
        ]
    }
}

/// One configured answer, with its body already loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub match_kind: MatchKind,
    pub methods: Vec<String>,
    pub status: u16,
    pub reason: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// With `template = true`: the body as a template, rendered per request.
    pub template: Option<Template>,
    /// With `echo = true`: the answer shows the request as it arrived, instead of a body.
    pub echo: bool,
    /// Statuses picked by weight (status, weight), when `statuses` is set; `status` is the
    /// first.
    pub statuses: Vec<(u16, u32)>,
    pub delay: Option<RouteDelay>,
    /// The body file's modification time, else the load's time: the `Last-Modified`.
    pub modified: SystemTime,
    /// The file the body was read from, for `--watch`.
    pub body_file: Option<PathBuf>,
}

impl Route {
    /// The route every request gets when none is configured: any path, `Hello, world!`.
    pub fn default_hello() -> Route {
        Route {
            path: "/".into(),
            match_kind: MatchKind::Prefix,
            methods: vec!["GET".into(), "HEAD".into()],
            status: 200,
            reason: None,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: DEFAULT_BODY.as_bytes().to_vec(),
            template: None,
            echo: false,
            statuses: Vec::new(),
            delay: None,
            modified: SystemTime::now(),
            body_file: None,
        }
    }

    /// The `Content-Type` it sends.
    pub fn content_type(&self) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map_or("text/plain", |(_, v)| v.as_str())
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        let own = self.path.as_bytes();
        match self.match_kind {
            MatchKind::Exact => path == own,
            MatchKind::Prefix => path.starts_with(own),
        }
    }
}

/// Error-page mode: whether it is on, how the built-in pages look and speak, and the pages read
/// from its directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorPages {
    pub enabled: bool,
    pub dir: Option<PathBuf>,
    pub theme: Theme,
    /// None: the language `Accept-Language` prefers.
    pub language: Option<Language>,
    /// The request id, the time and the ingress's headers on the built-in pages.
    pub show_details: bool,
    /// `NNN.ext` and `Nxx.ext` files of `dir`, read once per load.
    pub files: Vec<PageFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PageFile {
    pub key: PageKey,
    pub format: Format,
    pub template: Template,
}

/// Which statuses a page file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKey {
    /// `404.html`
    Status(u16),
    /// `5xx.json`: the hundreds digit.
    Class(u16),
}

impl PageKey {
    /// `404` or `5xx`, for a status from 400 to 599.
    pub(super) fn from_stem(stem: &str) -> Option<PageKey> {
        let key = match stem.as_bytes() {
            [class @ (b'4' | b'5'), b'x', b'x'] => PageKey::Class(u16::from(class - b'0')),
            _ => PageKey::Status(stem.parse().ok().filter(|s| (400..=599).contains(s))?),
        };
        (stem.len() == 3).then_some(key)
    }
}

impl ErrorPages {
    /// Reads the page files of `dir`. Names that are not a page's (`..data`, `README`) are
    /// left alone: a Kubernetes ConfigMap volume holds such entries.
    pub(super) fn read_dir(&mut self) -> Result<(), ConfigError> {
        self.files.clear();
        let Some(dir) = self.dir.as_ref().filter(|_| self.enabled) else {
            return Ok(());
        };
        let fail =
            |e: std::io::Error| ConfigError(format!("error_pages dir {}: {e}", dir.display()));
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(fail)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let env = |name: &str| std::env::var(name).ok();
        for path in names {
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|e| e.to_str()),
            ) else {
                continue;
            };
            let (Some(key), Some(format)) = (
                PageKey::from_stem(stem),
                Format::ALL.into_iter().find(|f| f.ext() == ext),
            ) else {
                continue;
            };
            let text = super::files::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            let template = Template::parse(&text, Kind::ErrorPage, &env)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            self.files.push(PageFile {
                key,
                format,
                template,
            });
        }
        Ok(())
    }
}

pub(super) fn build_routes(
    specs: Vec<toml::Spanned<RouteSpec>>,
    source: &Source,
    reserved: Option<&Endpoints>,
) -> Result<Vec<Route>, ConfigError> {
    specs
        .into_iter()
        .map(|spanned| {
            let at = source.at(spanned.span().start);
            let spec = spanned.into_inner();
            check_content_allowed(&spec, source)?;
            check_echo(&spec, source)?;
            build_route(spec, source, reserved)
                .map_err(|message| ConfigError(format!("{at}: {message}")))
        })
        .collect()
}

/// No content where HTTP forbids it, blamed on the key at fault: a 304 is refused (a configured
/// one has no validator to be "not modified" against; responder answers 304 itself, to
/// conditional requests on routes with validators, RFC 9110 15.4.5), and a 205 takes no `body`,
/// `body_file` or `template` (RFC 9110 15.3.6: a server MUST NOT send content in a 205).
fn check_content_allowed(spec: &RouteSpec, source: &Source) -> Result<(), ConfigError> {
    let fail = |key: &str, offset: usize, message: &str| {
        let (at, path) = (source.at(offset), &spec.path.0);
        Err(ConfigError(format!(
            "{at}: {key}: route `{path}` {message}"
        )))
    };
    let status = spec
        .status
        .iter()
        .map(|s| ("status", s.span().start, s.get_ref().0));
    let weighted = spec.statuses.iter().flat_map(|statuses| {
        let offset = statuses.span().start;
        let keys = statuses.get_ref().keys();
        keys.filter_map(move |key| Some(("statuses", offset, key.trim().parse().ok()?)))
    });
    let mut resets = false;
    for (key, offset, code) in status.chain(weighted) {
        if code == 304 {
            let message = "answers 304 Not Modified, which has nothing to be compared with; \
                           responder answers 304 itself to a conditional request on a route with \
                           validators (RFC 9110 15.4.5)";
            return fail(key, offset, message);
        }
        resets |= code == 205;
    }
    let content = [
        spec.body.as_ref().map(|b| ("body", b.span().start)),
        spec.body_file
            .as_ref()
            .map(|b| ("body_file", b.span().start)),
        spec.template
            .as_ref()
            .filter(|t| *t.get_ref())
            .map(|t| ("template", t.span().start)),
        spec.echo
            .as_ref()
            .filter(|e| *e.get_ref())
            .map(|e| ("echo", e.span().start)),
    ];
    match content.into_iter().flatten().next() {
        Some((key, offset)) if resets => fail(
            key,
            offset,
            "answers 205 Reset Content, which carries no content (RFC 9110 15.3.6); remove it",
        ),
        _ => Ok(()),
    }
}

/// An echo answers with the request: no `body`, `body_file` or `template` beside it, and one
/// `status`; blamed on the `echo` key.
fn check_echo(spec: &RouteSpec, source: &Source) -> Result<(), ConfigError> {
    let Some(echo) = spec.echo.as_ref().filter(|e| *e.get_ref()) else {
        return Ok(());
    };
    let template = spec.template.as_ref().is_some_and(|t| *t.get_ref());
    let message = if spec.body.is_some() || spec.body_file.is_some() || template {
        "answers with the request, in place of `body`, `body_file` and `template`; keep one"
    } else if spec.statuses.is_some() {
        "answers with one `status`, not `statuses`"
    } else {
        return Ok(());
    };
    let (at, path) = (source.at(echo.span().start), &spec.path.0);
    Err(ConfigError(format!("{at}: echo: route `{path}` {message}")))
}

/// `reserved`: the built-in endpoints, when they share the traffic ports with the routes.
pub(super) fn build_route(
    spec: RouteSpec,
    source: &Source,
    reserved: Option<&Endpoints>,
) -> Result<Route, String> {
    let path = spec.path.0;
    for (key, probe) in reserved.map(Endpoints::paths).into_iter().flatten() {
        if spec.match_kind == MatchKind::Exact && path == *probe {
            return Err(format!(
                "route `{probe}` is a built-in endpoint's path; set {key} to another path to use it"
            ));
        }
    }
    let echo = spec.echo.as_ref().is_some_and(|e| *e.get_ref());
    let mut modified = SystemTime::now();
    let mut body_file = None;
    let body = match (spec.body, spec.body_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "route `{path}` sets both `body` and `body_file`; keep one"
            ))
        }
        (Some(body), None) => body.into_inner().into_bytes(),
        (None, Some(name)) => {
            let file = source.relative(name.get_ref());
            let fail = |e: std::io::Error| {
                format!("body_file `{}` of route `{path}`: {e}", file.display())
            };
            let body = super::files::read(&file).map_err(fail)?;
            // Never later than now: a clock ahead on the file's side must not make it "newer".
            let mtime = std::fs::metadata(&file).and_then(|m| m.modified());
            modified = mtime.map_or(modified, |m| m.min(modified));
            body_file = Some(file);
            body
        }
        (None, None) => Vec::new(),
    };
    let template = if spec.template.is_some_and(|t| t.into_inner()) {
        let text = std::str::from_utf8(&body)
            .map_err(|_| format!("route `{path}`: a template must be UTF-8 text"))?;
        let env = |name: &str| std::env::var(name).ok();
        let template = Template::parse(text, Kind::Route, &env)
            .map_err(|e| format!("route `{path}`: body: {e}"))?;
        Some(template)
    } else {
        None
    };
    let statuses = match (&spec.status, spec.statuses) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "route `{path}` sets both `status` and `statuses`; keep one"
            ))
        }
        (_, Some(weights)) => weighted_statuses(&path, weights.into_inner())?,
        (_, None) => Vec::new(),
    };
    if template.is_some() && !statuses.is_empty() {
        return Err(format!(
            "route `{path}` renders its template with one `status`; `statuses` is for fixed bodies"
        ));
    }
    let status = statuses.first().map_or(
        spec.status.map_or(200, |s| s.into_inner().0),
        |&(status, _)| status,
    );
    let delay = spec.delay.as_ref().map(DelaySpec::delay).transpose()?;
    if spec.methods.is_empty() {
        return Err(format!("route `{path}` allows no method"));
    }
    let mut headers: Vec<(String, String)> =
        spec.headers.into_iter().map(|(n, v)| (n.0, v.0)).collect();
    // A route that only answers 205 has no content for a `Content-Type` to describe.
    let resets = statuses
        .iter()
        .map(|&(s, _)| s)
        .chain([status])
        .all(|s| s == 205);
    if !resets
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.insert(0, ("Content-Type".into(), "text/plain".into()));
    }
    Ok(Route {
        path,
        match_kind: spec.match_kind,
        methods: spec.methods.into_iter().map(|m| m.0).collect(),
        status,
        reason: spec.reason.map(|r| r.0),
        headers,
        body,
        template,
        echo,
        statuses,
        delay,
        modified,
        body_file,
    })
}

/// `statuses = { "200" = 90, "503" = 10 }`: statuses from 200 to 599 with weights summing to more
/// than 0.
pub(super) fn weighted_statuses(
    path: &str,
    weights: BTreeMap<String, u32>,
) -> Result<Vec<(u16, u32)>, String> {
    let mut statuses = Vec::with_capacity(weights.len());
    for (key, weight) in weights {
        let status = key
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|s| (200..=599).contains(s))
            .ok_or_else(|| {
                format!("route `{path}`: statuses: `{key}` is not a status between 200 and 599")
            })?;
        statuses.push((status, weight));
    }
    let total: u64 = statuses.iter().map(|&(_, w)| u64::from(w)).sum();
    if total == 0 || total > u64::from(u32::MAX) {
        return Err(format!(
            "route `{path}`: statuses: the weights must sum to between 1 and {}",
            u32::MAX
        ));
    }
    statuses.retain(|&(_, weight)| weight > 0);
    Ok(statuses)
}
