//! Configuration: the command line, the `RESPONDER_*` environment, the TOML file and the embedded
//! defaults, merged in that order of precedence into one validated [`Config`].
//!
//! Everything a peer never controls but an operator does is checked here, where it enters, at
//! start (or at a reload): a flag or variable by its `clap` value parser, a file value by its
//! `serde` type. A bad value is an error that names its source (the flag, the environment variable,
//! or the file with the line and the key), never a silent default. Each load reads the file once.
//! This module does not build response bytes (see `response`) and opens no socket.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::answers::template::{Format, Kind, Template};
use crate::ascii;

/// The body every request gets when no route is configured: the article's answer.
pub const DEFAULT_BODY: &str = "Hello, world!";
/// The article's port on every interface, IPv6 and IPv4 alike (one dual-stack socket), as a
/// container on an IPv6-only or dual-stack cluster expects.
pub const DEFAULT_LISTEN: &str = "[::]:8080";
/// Where the default falls back to on a host without IPv6.
pub const DEFAULT_LISTEN_V4: &str = "0.0.0.0:8080";
/// The article shows a backlog of 1 failing under `ab -c 100`; 1024 absorbs bursts of that size
/// many times over (the kernel caps it at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: u32 = 1024;
/// The C10K figure the article cites.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Request heads beyond this are refused with 431: real clients send well under 2 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;
/// Request bodies are read and discarded; beyond this they are refused with 413.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest accepted timeout: a typo such as `100000` should not park a connection for a day.
const MAX_SECONDS: f64 = 3600.0;

#[derive(Debug, Parser)]
#[command(
    name = "responder",
    version,
    about = "Answers HTTP requests with fixed, configured responses."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML configuration file (see config/responder.toml for every key).
    #[arg(long, global = true, env = "RESPONDER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on; give it again (or a comma-separated list in the environment) for
    /// several. Default: [::]:8080, which takes IPv6 and IPv4.
    #[arg(
        long,
        global = true,
        env = "RESPONDER_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,
    /// Address of the admin listener: when set, the probes and the metrics are served there (and
    /// nowhere else), and the traffic addresses route their paths like any other.
    #[arg(
        long,
        global = true,
        env = "RESPONDER_ADMIN_LISTEN",
        value_name = "ADDR:PORT"
    )]
    pub admin_listen: Option<SocketAddr>,
    /// Seconds a client has to send a complete request.
    #[arg(long, env = "RESPONDER_READ_TIMEOUT", value_name = "SECS")]
    pub read_timeout: Option<Seconds>,
    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(long, env = "RESPONDER_IDLE_TIMEOUT", value_name = "SECS")]
    pub idle_timeout: Option<Seconds>,
    /// Seconds a client that stops reading has before its connection is cut.
    #[arg(long, env = "RESPONDER_WRITE_TIMEOUT", value_name = "SECS")]
    pub write_timeout: Option<Seconds>,
    /// Seconds a drain may take after SIGTERM before the remaining connections are closed.
    #[arg(long, env = "RESPONDER_SHUTDOWN_TIMEOUT", value_name = "SECS")]
    pub shutdown_timeout: Option<Seconds>,
    /// Seconds to keep serving after SIGTERM while the readiness path answers 503, so that load
    /// balancers stop sending before the listener closes.
    #[arg(long, env = "RESPONDER_SHUTDOWN_DELAY", value_name = "SECS")]
    pub shutdown_delay: Option<Delay>,
    /// Most connections open at once; more get 503.
    #[arg(long, env = "RESPONDER_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<MaxConnections>,
    /// Largest request head (request line and headers) in bytes, 64 to 1048576; larger gets 431.
    #[arg(long, env = "RESPONDER_MAX_HEADER_BYTES", value_name = "N")]
    pub max_header_bytes: Option<HeaderBytes>,
    /// Event loops (1 to 1024), one per core by default; each has its own listener (SO_REUSEPORT).
    #[arg(long, env = "RESPONDER_WORKERS", value_name = "N")]
    pub workers: Option<Workers>,
    /// Log format: `json` for collectors, `text` for people.
    #[arg(long, env = "RESPONDER_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Which events to log; overrides RUST_LOG (which takes per-target directives).
    #[arg(long, env = "RESPONDER_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Request ids: `propagate` echoes a valid one the request carries, `generate` also makes one
    /// when it has none, `off` does neither.
    #[arg(long, env = "RESPONDER_REQUEST_ID", value_name = "MODE")]
    pub request_id: Option<RequestIdMode>,
    /// Error-page mode (ingress-nginx's custom error pages): a request with `X-Code: NNN`
    /// (400-599) is answered with that status and a page in the format it asks for.
    #[arg(long, env = "RESPONDER_ERROR_PAGES", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true")]
    pub error_pages: Option<bool>,
    /// Directory of error pages (`404.html`, `5xx.json`, ...), read at start and on SIGHUP.
    #[arg(long, env = "RESPONDER_ERROR_PAGES_DIR", value_name = "DIR")]
    pub error_pages_dir: Option<PathBuf>,
    /// Validate the configuration and exit: 0 when valid, 2 naming the fault otherwise.
    #[arg(long)]
    pub check: bool,
}

impl Cli {
    /// Parses the command line and the environment, exiting with status 2 and one line naming the
    /// flag or the environment variable at fault when a value is refused.
    pub fn parse_args() -> Cli {
        Cli::try_parse().unwrap_or_else(|e| match blame_environment(&e) {
            Some(message) => {
                eprintln!("responder: {message}");
                std::process::exit(2);
            }
            None => e.exit(),
        })
    }
}

/// clap names the flag even when the refused value came from its environment variable; this
/// names the variable instead, when the flag itself is not on the command line.
fn blame_environment(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let on_command_line =
        std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    if on_command_line {
        return None;
    }
    let command = Cli::command();
    let variable = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let value = std::env::var(&variable).ok()?;
    let reason = std::error::Error::source(e).map_or_else(String::new, |r| format!(": {r}"));
    Some(format!("{variable}={value}{reason}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// GET the health path on the configured address and exit 0 if it answers 200, else 1
    /// (for a container HEALTHCHECK in an image with no shell or curl).
    Healthcheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// What is done with request ids (the `request_id_header` of requests and answers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestIdMode {
    /// Echo a valid id the request carries, and log it.
    #[default]
    Propagate,
    /// Also make one (128 random bits, 32 hex digits) when the request has none.
    Generate,
    /// Neither echo nor log one.
    Off,
}

/// The header that carries request ids, unless `request_id_header` names another.
pub const DEFAULT_REQUEST_ID_HEADER: &str = "X-Request-Id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The `EnvFilter` directive for this level.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A duration written as decimal seconds (`2`, `0.5`), as on the command line and in the file.
/// Timeouts must be positive; a delay (`Delay`) may be zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds<const ZERO_OK: bool = false>(pub Duration);

/// Seconds that may be zero, for `shutdown_delay`.
pub type Delay = Seconds<true>;

impl<const ZERO_OK: bool> FromStr for Seconds<ZERO_OK> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let value: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number of seconds"))?;
        Seconds::try_from(value)
    }
}

impl<const ZERO_OK: bool> TryFrom<f64> for Seconds<ZERO_OK> {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, String> {
        let above_min = if ZERO_OK { value >= 0.0 } else { value > 0.0 };
        if value.is_finite() && above_min && value <= MAX_SECONDS {
            Ok(Seconds(Duration::from_secs_f64(value)))
        } else {
            let min = if ZERO_OK { "at least 0" } else { "more than 0" };
            Err(format!(
                "{value} seconds is out of range ({min}, at most {MAX_SECONDS})"
            ))
        }
    }
}

impl<'de, const ZERO_OK: bool> Deserialize<'de> for Seconds<ZERO_OK> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Seconds::try_from(f64::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// A whole number from `MIN` to `MAX`, checked where it enters: on the command line, in the
/// environment or in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

/// Event loops.
pub type Workers = Bounded<1, 1024>;
/// Connections open at once (the descriptor limit may lower it further).
pub type MaxConnections = Bounded<1, 10_000_000>;
/// A head must hold at least a request line such as `GET / HTTP/1.0\r\n\r\n`.
pub type HeaderBytes = Bounded<64, 1_048_576>;
/// The listen backlog (the kernel caps it at `net.core.somaxconn`).
pub type Backlog = Bounded<1, 2_147_483_647>;

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Bounded<MIN, MAX> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let value: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number"))?;
        Bounded::try_from(value)
    }
}

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Bounded(value))
        } else {
            Err(format!("{value} is out of range ({MIN} to {MAX})"))
        }
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Bounded::try_from(u64::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The file's schema. Every key is optional: what is absent falls back to the embedded default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Addresses>,
    admin_listen: Option<SocketAddr>,
    backlog: Option<Backlog>,
    tcp_nodelay: Option<bool>,
    tcp_cork: Option<bool>,
    reuse_address: Option<bool>,
    max_connections: Option<MaxConnections>,
    max_header_bytes: Option<HeaderBytes>,
    max_body_bytes: Option<u64>,
    read_timeout: Option<Seconds>,
    idle_timeout: Option<Seconds>,
    write_timeout: Option<Seconds>,
    shutdown_timeout: Option<Seconds>,
    shutdown_delay: Option<Delay>,
    health_path: Option<toml::Spanned<RoutePath>>,
    ready_path: Option<toml::Spanned<RoutePath>>,
    metrics_path: Option<toml::Spanned<RoutePath>>,
    log_health_checks: Option<bool>,
    workers: Option<Workers>,
    log_format: Option<LogFormat>,
    access_log: Option<bool>,
    request_id: Option<RequestIdMode>,
    request_id_header: Option<HeaderName>,
    error_pages: Option<ErrorPagesSpec>,
    #[serde(default)]
    route: Vec<toml::Spanned<RouteSpec>>,
}

/// `[error_pages]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorPagesSpec {
    enabled: Option<bool>,
    /// Relative to the file.
    dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    path: RoutePath,
    #[serde(default, rename = "match")]
    match_kind: MatchKind,
    #[serde(default = "default_methods")]
    methods: Vec<Method>,
    status: Option<Status>,
    /// Statuses picked at random by weight, instead of `status`.
    statuses: Option<BTreeMap<String, u32>>,
    reason: Option<HeaderValue>,
    #[serde(default)]
    headers: BTreeMap<HeaderName, HeaderValue>,
    body: Option<String>,
    body_file: Option<PathBuf>,
    #[serde(default)]
    template: bool,
    delay: Option<DelaySpec>,
}

/// `delay = "250ms"`, or `delay = { min = "100ms", max = "2s" }` for a uniform pick.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DelaySpec {
    Fixed(String),
    Range { min: String, max: String },
}

impl DelaySpec {
    fn delay(&self) -> Result<RouteDelay, String> {
        let (min, max) = match self {
            DelaySpec::Fixed(d) => (parse_duration(d)?, parse_duration(d)?),
            DelaySpec::Range { min, max } => (parse_duration(min)?, parse_duration(max)?),
        };
        if min > max {
            return Err(format!("delay: min {min:?} is above max {max:?}"));
        }
        Ok(RouteDelay { min, max })
    }
}

/// How long a route holds each answer: `min` when it equals `max`, else uniform between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDelay {
    pub min: Duration,
    pub max: Duration,
}

/// `250ms`, `2s`, `1.5s`: a number and a unit, at most an hour.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else {
        return Err(format!("delay `{text}` needs a unit: `250ms` or `2s`"));
    };
    let seconds = number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| s.is_finite() && (0.0..=MAX_SECONDS).contains(s))
        .ok_or_else(|| format!("delay `{text}` is not a duration from 0 to {MAX_SECONDS}s"))?;
    Ok(Duration::from_secs_f64(seconds))
}

/// How a route's path is compared with the request's path (the query string is never compared).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    #[default]
    Exact,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath(pub String);

impl<'de> Deserialize<'de> for RoutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = String::deserialize(d)?;
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(de::Error::custom(format!(
                "route path `{path}` must start with `/` and contain no spaces or control characters"
            )));
        }
        Ok(RoutePath(path))
    }
}

/// A request method: an HTTP token, compared case-sensitively as RFC 9110 says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method(pub String);

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let method = String::deserialize(d)?;
        if !ascii::is_token(method.as_bytes()) {
            return Err(de::Error::custom(format!(
                "`{method}` is not a valid HTTP method"
            )));
        }
        Ok(Method(method))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(d)?;
        // 1xx responses cannot carry the body and headers a route sends.
        if !(200..=599).contains(&code) {
            return Err(de::Error::custom(format!(
                "status {code} is not between 200 and 599"
            )));
        }
        Ok(Status(code))
    }
}

/// A header name a route may set. The framing and connection headers are the server's to write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeaderName(pub String);

/// Headers whose values the server computes; a route setting them would corrupt the framing.
const RESERVED_HEADERS: [&str; 7] = [
    "content-length",
    "connection",
    "date",
    "transfer-encoding",
    "keep-alive",
    "etag",
    "last-modified",
];

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if !ascii::is_token(name.as_bytes()) {
            return Err(de::Error::custom(format!(
                "`{name}` is not a valid header name"
            )));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(de::Error::custom(format!(
                "header `{name}` is set by the server and cannot be configured"
            )));
        }
        Ok(HeaderName(name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValue(pub String);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(de::Error::custom(format!(
                "header value `{}` contains a control character",
                value.escape_debug()
            )));
        }
        Ok(HeaderValue(value))
    }
}

fn default_methods() -> Vec<Method> {
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
    pub log: bool,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            health_path: DEFAULT_HEALTH_PATH.into(),
            ready_path: DEFAULT_READY_PATH.into(),
            metrics_path: DEFAULT_METRICS_PATH.into(),
            log: false,
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
    /// Statuses picked by weight (status, weight), when `statuses` is set; `status` is the
    /// first.
    pub statuses: Vec<(u16, u32)>,
    pub delay: Option<RouteDelay>,
    /// The body file's modification time, else the load's time: the `Last-Modified`.
    pub modified: SystemTime,
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
            statuses: Vec::new(),
            delay: None,
            modified: SystemTime::now(),
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

/// `listen` in the file: one address or a list of them, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Addresses(Vec<SocketAddr>);

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(SocketAddr),
            Many(Vec<SocketAddr>),
        }
        let addresses = match OneOrMany::deserialize(d).map_err(|_| {
            de::Error::custom("expected an address such as \"[::]:8080\", or a list of them")
        })? {
            OneOrMany::One(addr) => vec![addr],
            OneOrMany::Many(addrs) => addrs,
        };
        if addresses.is_empty() {
            return Err(de::Error::custom("the list of addresses is empty"));
        }
        Ok(Addresses(addresses))
    }
}

/// Everything the server needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// At least one address.
    pub listen: Vec<SocketAddr>,
    /// Whether `listen` was given (flag, environment or file) rather than the default, which
    /// alone falls back to IPv4 where IPv6 is missing.
    pub listen_given: bool,
    /// Where the probes and the metrics are served, when not on the traffic addresses.
    pub admin_listen: Option<SocketAddr>,
    pub backlog: u32,
    pub tcp_nodelay: bool,
    pub tcp_cork: bool,
    pub reuse_address: bool,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub shutdown_delay: Duration,
    pub endpoints: Endpoints,
    pub workers: usize,
    pub log_format: Option<LogFormat>,
    pub access_log: bool,
    pub request_id: RequestIdMode,
    pub request_id_header: String,
    pub error_pages: ErrorPages,
    pub routes: Vec<Route>,
}

/// Error-page mode: whether it is on, and the pages read from its directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorPages {
    pub enabled: bool,
    pub dir: Option<PathBuf>,
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
    fn from_stem(stem: &str) -> Option<PageKey> {
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
    fn read_dir(&mut self) -> Result<(), ConfigError> {
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
            let text = std::fs::read_to_string(&path)
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

/// The embedded defaults: what `cargo run --release` serves.
impl Default for Config {
    fn default() -> Config {
        Config {
            listen: vec![default_listen()],
            listen_given: false,
            admin_listen: None,
            backlog: DEFAULT_BACKLOG,
            tcp_nodelay: true,
            tcp_cork: false,
            reuse_address: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            shutdown_delay: Duration::ZERO,
            endpoints: Endpoints::default(),
            workers: default_workers(),
            log_format: None,
            access_log: true,
            request_id: RequestIdMode::default(),
            request_id_header: DEFAULT_REQUEST_ID_HEADER.into(),
            error_pages: ErrorPages::default(),
            routes: vec![Route::default_hello()],
        }
    }
}

/// A configuration that cannot be used, said as one sentence naming the file and place at fault.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The embedded defaults, overlaid by the file named by `cli.config` (read once), overlaid by
    /// the flags and environment (already checked in `cli`).
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            config.apply_file(path, cli.admin_listen.is_some())?;
        }
        config.apply_command_line(cli);
        config.check_admin_listen()?;
        config.error_pages.read_dir()?;
        Ok(config)
    }

    /// The admin listener needs a port of its own: sharing one with a traffic address (every
    /// listener has `SO_REUSEPORT`) would let the kernel spread each kind's connections over both.
    fn check_admin_listen(&self) -> Result<(), ConfigError> {
        let Some(admin) = self.admin_listen else {
            return Ok(());
        };
        match self.listen.iter().find(|&&addr| overlap(addr, admin)) {
            Some(addr) => Err(ConfigError(format!(
                "admin_listen {admin} overlaps listen {addr}: the admin listener needs a port of \
                 its own"
            ))),
            None => Ok(()),
        }
    }

    /// `admin_listen` says whether the command line sets an admin listener, which frees the
    /// probes' paths on the traffic ports for the routes.
    fn apply_file(&mut self, path: &Path, admin_listen: bool) -> Result<(), ConfigError> {
        let source = Source::read(path)?;
        let mut file: FileConfig = toml::from_str(&source.text).map_err(|e| {
            let message = e.message().trim_end();
            let Some(span) = e.span() else {
                return ConfigError(format!("{}: {message}", source.path.display()));
            };
            // A value's own check does not know its key: name it from the line.
            match source.key_at(span.start) {
                Some(key) if !message.contains(key) => {
                    ConfigError(format!("{}: {key}: {message}", source.at(span.start)))
                }
                _ => ConfigError(format!("{}: {message}", source.at(span.start))),
            }
        })?;
        if let Some(dir) = file.error_pages.as_mut().and_then(|p| p.dir.as_mut()) {
            *dir = source.relative(dir);
        }
        self.apply_values(&file);
        let paths = [
            (&mut self.endpoints.health_path, file.health_path),
            (&mut self.endpoints.ready_path, file.ready_path),
            (&mut self.endpoints.metrics_path, file.metrics_path),
        ];
        let mut set_at = [None; 3];
        for (i, (path, spanned)) in paths.into_iter().enumerate() {
            if let Some(spanned) = spanned {
                set_at[i] = Some(spanned.span().start);
                *path = spanned.into_inner().0;
            }
        }
        self.check_endpoint_paths(&source, set_at)?;
        if !file.route.is_empty() {
            let admin_listen = admin_listen || self.admin_listen.is_some();
            let reserved = (!admin_listen).then_some(&self.endpoints);
            self.routes = build_routes(file.route, &source, reserved)?;
        }
        Ok(())
    }

    /// The built-in endpoints need three different paths; `set_at` holds where the file set each.
    fn check_endpoint_paths(
        &self,
        source: &Source,
        set_at: [Option<usize>; 3],
    ) -> Result<(), ConfigError> {
        let paths = self.endpoints.paths();
        for (i, (key, path)) in paths.iter().enumerate() {
            for (j, (other, other_path)) in paths.iter().enumerate().skip(i + 1) {
                if path != other_path {
                    continue;
                }
                // Blame the key the file set (the later one when it set both).
                let offset = set_at[j].or(set_at[i]).unwrap_or(0);
                return Err(ConfigError(format!(
                    "{}: {key} and {other} are both `{path}`",
                    source.at(offset)
                )));
            }
        }
        Ok(())
    }

    /// The flags and environment take the same path as the file's values, so that each key is
    /// applied in one place.
    fn apply_command_line(&mut self, cli: &Cli) {
        self.apply_values(&FileConfig {
            listen: (!cli.listen.is_empty()).then(|| Addresses(cli.listen.clone())),
            admin_listen: cli.admin_listen,
            max_connections: cli.max_connections,
            max_header_bytes: cli.max_header_bytes,
            read_timeout: cli.read_timeout,
            idle_timeout: cli.idle_timeout,
            write_timeout: cli.write_timeout,
            shutdown_timeout: cli.shutdown_timeout,
            shutdown_delay: cli.shutdown_delay,
            workers: cli.workers,
            log_format: cli.log_format,
            request_id: cli.request_id,
            error_pages: Some(ErrorPagesSpec {
                enabled: cli.error_pages,
                dir: cli.error_pages_dir.clone(),
            }),
            ..FileConfig::default()
        });
    }

    /// Overrides every setting the file (or the command line, in the file's shape) gives.
    fn apply_values(&mut self, file: &FileConfig) {
        if let Some(addresses) = &file.listen {
            self.listen.clone_from(&addresses.0);
            self.listen_given = true;
        }
        self.admin_listen = file.admin_listen.or(self.admin_listen);
        set(&mut self.backlog, file.backlog.map(|b| b.0 as u32));
        set(&mut self.tcp_nodelay, file.tcp_nodelay);
        set(&mut self.tcp_cork, file.tcp_cork);
        set(&mut self.reuse_address, file.reuse_address);
        set(
            &mut self.max_connections,
            file.max_connections.map(Bounded::get),
        );
        set(
            &mut self.max_header_bytes,
            file.max_header_bytes.map(Bounded::get),
        );
        set(&mut self.max_body_bytes, file.max_body_bytes);
        set(&mut self.read_timeout, file.read_timeout.map(|s| s.0));
        set(&mut self.idle_timeout, file.idle_timeout.map(|s| s.0));
        set(&mut self.write_timeout, file.write_timeout.map(|s| s.0));
        set(
            &mut self.shutdown_timeout,
            file.shutdown_timeout.map(|s| s.0),
        );
        set(&mut self.shutdown_delay, file.shutdown_delay.map(|s| s.0));
        set(&mut self.workers, file.workers.map(Bounded::get));
        set(&mut self.access_log, file.access_log);
        set(&mut self.request_id, file.request_id);
        if let Some(name) = &file.request_id_header {
            self.request_id_header.clone_from(&name.0);
        }
        set(&mut self.endpoints.log, file.log_health_checks);
        if let Some(pages) = &file.error_pages {
            set(&mut self.error_pages.enabled, pages.enabled);
            if let Some(dir) = &pages.dir {
                self.error_pages.dir = Some(dir.clone());
            }
        }
        self.log_format = file.log_format.or(self.log_format);
    }
}

/// Overrides `field` with `value` when there is one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// Whether two addresses can take the same connections (port 0 picks a free port: never).
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn default_listen() -> SocketAddr {
    // A constant that parses; tested in `default_listen_parses`.
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([0u16; 8], 8080)))
}

/// The address the default falls back to on a host without IPv6.
pub fn default_listen_v4() -> SocketAddr {
    DEFAULT_LISTEN_V4
        .parse()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080)))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The configuration file as read once for a load: its path, for errors and relative body files,
/// and its text, for line numbers.
struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    fn read(path: &Path) -> Result<Source, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// `path at line N` for a byte offset into the text.
    fn at(&self, offset: usize) -> String {
        format!(
            "{} at line {}",
            self.path.display(),
            line_of(&self.text, offset)
        )
    }

    /// The key of the `key = value` line that holds `offset`, if it is one.
    fn key_at(&self, offset: usize) -> Option<&str> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.starts_with('[')).then_some(key)
    }

    /// A file named in the configuration, relative to the configuration file's directory.
    fn relative(&self, name: &Path) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| name.to_path_buf(), |dir| dir.join(name))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn build_routes(
    specs: Vec<toml::Spanned<RouteSpec>>,
    source: &Source,
    reserved: Option<&Endpoints>,
) -> Result<Vec<Route>, ConfigError> {
    specs
        .into_iter()
        .map(|spanned| {
            let at = source.at(spanned.span().start);
            build_route(spanned.into_inner(), source, reserved)
                .map_err(|message| ConfigError(format!("{at}: {message}")))
        })
        .collect()
}

/// `reserved`: the built-in endpoints, when they share the traffic ports with the routes.
fn build_route(
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
    let mut modified = SystemTime::now();
    let body = match (spec.body, spec.body_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "route `{path}` sets both `body` and `body_file`; keep one"
            ))
        }
        (Some(body), None) => body.into_bytes(),
        (None, Some(name)) => {
            let file = source.relative(&name);
            let fail = |e: std::io::Error| {
                format!("body_file `{}` of route `{path}`: {e}", file.display())
            };
            let body = std::fs::read(&file).map_err(fail)?;
            // Never later than now: a clock ahead on the file's side must not make it "newer".
            let mtime = std::fs::metadata(&file).and_then(|m| m.modified());
            modified = mtime.map_or(modified, |m| m.min(modified));
            body
        }
        (None, None) => Vec::new(),
    };
    let template = if spec.template {
        let text = std::str::from_utf8(&body)
            .map_err(|_| format!("route `{path}`: a template must be UTF-8 text"))?;
        let env = |name: &str| std::env::var(name).ok();
        let template = Template::parse(text, Kind::Route, &env)
            .map_err(|e| format!("route `{path}`: body: {e}"))?;
        Some(template)
    } else {
        None
    };
    let statuses = match (spec.status, spec.statuses) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "route `{path}` sets both `status` and `statuses`; keep one"
            ))
        }
        (_, Some(weights)) => weighted_statuses(&path, weights)?,
        (_, None) => Vec::new(),
    };
    let status = statuses
        .first()
        .map_or(spec.status.map_or(200, |s| s.0), |&(status, _)| status);
    let delay = spec.delay.as_ref().map(DelaySpec::delay).transpose()?;
    if spec.methods.is_empty() {
        return Err(format!("route `{path}` allows no method"));
    }
    let mut headers: Vec<(String, String)> =
        spec.headers.into_iter().map(|(n, v)| (n.0, v.0)).collect();
    if !headers
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
        statuses,
        delay,
        modified,
    })
}

/// `statuses = { "200" = 90, "503" = 10 }`: statuses from 200 to 599 with weights summing to more
/// than 0.
fn weighted_statuses(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_listen_parses() {
        assert_eq!(
            DEFAULT_LISTEN.parse::<SocketAddr>().ok(),
            Some(default_listen())
        );
        assert_eq!(
            DEFAULT_LISTEN_V4.parse::<SocketAddr>().ok(),
            Some(default_listen_v4())
        );
    }

    #[test]
    fn addresses_overlap_when_a_connection_could_reach_both() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(overlap(addr("[::]:8080"), addr("127.0.0.1:8080")));
        assert!(overlap(addr("10.0.0.1:9000"), addr("0.0.0.0:9000")));
        assert!(overlap(addr("[::1]:9000"), addr("[::1]:9000")));
        assert!(!overlap(addr("[::1]:9000"), addr("127.0.0.1:9000")));
        assert!(!overlap(addr("[::]:8080"), addr("[::]:9000")));
        assert!(!overlap(addr("127.0.0.1:0"), addr("127.0.0.1:0")));
    }

    #[test]
    fn seconds_accept_decimals_and_refuse_nonsense() {
        assert_eq!(
            "0.5".parse::<Seconds>(),
            Ok(Seconds(Duration::from_millis(500)))
        );
        assert_eq!("2".parse::<Seconds>(), Ok(Seconds(Duration::from_secs(2))));
        for bad in ["0", "-1", "NaN", "inf", "abc", "7200"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
