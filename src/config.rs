//! Configuration: the command line, the `RESPONDER_*` environment, the TOML file and the embedded
//! defaults, merged in that order of precedence into one validated [`Config`].
//!
//! Everything a peer never controls but an operator does is checked here, once, at start (or at a
//! reload): a bad value is an error that names the file, the line and the key, never a silent
//! default. This module does not build response bytes (see `response`) and opens no socket.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// The body every request gets when no route is configured: the article's answer.
pub const DEFAULT_BODY: &str = "Hello, world!";
/// The article's port, on every interface, as a container expects.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
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
    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "RESPONDER_LISTEN",
        value_name = "ADDR:PORT"
    )]
    pub listen: Option<SocketAddr>,
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
    pub max_connections: Option<usize>,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "RESPONDER_MAX_HEADER_BYTES", value_name = "N")]
    pub max_header_bytes: Option<usize>,
    /// Event loops, one per core by default; each has its own listener (SO_REUSEPORT).
    #[arg(long, env = "RESPONDER_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Log format: `json` for collectors, `text` for people.
    #[arg(long, env = "RESPONDER_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Which events to log; overrides RUST_LOG (which takes per-target directives).
    #[arg(long, env = "RESPONDER_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Validate the configuration and exit: 0 when valid, 2 naming the fault otherwise.
    #[arg(long)]
    pub check: bool,
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

/// The file's schema. Every key is optional: what is absent falls back to the embedded default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    backlog: Option<u32>,
    tcp_nodelay: Option<bool>,
    tcp_cork: Option<bool>,
    reuse_address: Option<bool>,
    max_connections: Option<usize>,
    max_header_bytes: Option<usize>,
    max_body_bytes: Option<u64>,
    read_timeout: Option<Seconds>,
    idle_timeout: Option<Seconds>,
    write_timeout: Option<Seconds>,
    shutdown_timeout: Option<Seconds>,
    shutdown_delay: Option<Delay>,
    health_path: Option<RoutePath>,
    ready_path: Option<RoutePath>,
    metrics_path: Option<RoutePath>,
    log_health_checks: Option<bool>,
    workers: Option<usize>,
    log_format: Option<LogFormat>,
    access_log: Option<bool>,
    #[serde(default)]
    route: Vec<toml::Spanned<RouteSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    path: RoutePath,
    #[serde(default, rename = "match")]
    match_kind: MatchKind,
    #[serde(default = "default_methods")]
    methods: Vec<Method>,
    #[serde(default = "default_status")]
    status: Status,
    reason: Option<HeaderValue>,
    #[serde(default)]
    headers: BTreeMap<HeaderName, HeaderValue>,
    body: Option<String>,
    body_file: Option<PathBuf>,
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
        if !is_token(&method) {
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
const RESERVED_HEADERS: [&str; 5] = [
    "content-length",
    "connection",
    "date",
    "transfer-encoding",
    "keep-alive",
];

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if !is_token(&name) {
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

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn default_methods() -> Vec<Method> {
    vec![Method("GET".into()), Method("HEAD".into())]
}

fn default_status() -> Status {
    Status(200)
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
        }
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        let own = self.path.as_bytes();
        match self.match_kind {
            MatchKind::Exact => path == own,
            MatchKind::Prefix => path.starts_with(own),
        }
    }
}

/// Everything the server needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
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
    pub routes: Vec<Route>,
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
    /// Merges flags and environment (already in `cli`) over the file named by `cli.config`, over
    /// the embedded defaults.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let defaults_dir = cli.config.as_deref().and_then(Path::parent);
        let default = Endpoints::default();
        let endpoints = Endpoints {
            health_path: file.health_path.map_or(default.health_path, |p| p.0),
            ready_path: file.ready_path.map_or(default.ready_path, |p| p.0),
            metrics_path: file.metrics_path.map_or(default.metrics_path, |p| p.0),
            log: file.log_health_checks.unwrap_or(default.log),
        };
        let routes = build_routes(file.route, cli.config.as_deref(), defaults_dir, &endpoints)?;
        let config = Config {
            listen: cli.listen.or(file.listen).unwrap_or_else(default_listen),
            backlog: file.backlog.unwrap_or(DEFAULT_BACKLOG),
            tcp_nodelay: file.tcp_nodelay.unwrap_or(true),
            tcp_cork: file.tcp_cork.unwrap_or(false),
            reuse_address: file.reuse_address.unwrap_or(true),
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
            max_header_bytes: cli
                .max_header_bytes
                .or(file.max_header_bytes)
                .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            max_body_bytes: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            read_timeout: seconds(cli.read_timeout, file.read_timeout, DEFAULT_READ_TIMEOUT),
            idle_timeout: seconds(cli.idle_timeout, file.idle_timeout, DEFAULT_IDLE_TIMEOUT),
            write_timeout: seconds(cli.write_timeout, file.write_timeout, DEFAULT_WRITE_TIMEOUT),
            shutdown_timeout: seconds(
                cli.shutdown_timeout,
                file.shutdown_timeout,
                DEFAULT_SHUTDOWN_TIMEOUT,
            ),
            shutdown_delay: seconds(cli.shutdown_delay, file.shutdown_delay, Duration::ZERO),
            endpoints,
            workers: cli.workers.or(file.workers).unwrap_or_else(default_workers),
            log_format: cli.log_format.or(file.log_format),
            access_log: file.access_log.unwrap_or(true),
            routes,
        };
        config.validate(cli.config.as_deref())?;
        Ok(config)
    }

    fn validate(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        let origin = file.map_or_else(
            || "the command line".to_string(),
            |p| p.display().to_string(),
        );
        let fail = |msg: String| Err(ConfigError(format!("{origin}: {msg}")));
        if self.max_connections == 0 {
            return fail("max_connections must be at least 1".into());
        }
        // A head must hold at least a request line such as `GET / HTTP/1.0\r\n\r\n`.
        if !(64..=1024 * 1024).contains(&self.max_header_bytes) {
            return fail(format!(
                "max_header_bytes {} is out of range (64 to 1048576)",
                self.max_header_bytes
            ));
        }
        if !(1..=1024).contains(&self.workers) {
            return fail(format!(
                "workers {} is out of range (1 to 1024)",
                self.workers
            ));
        }
        let paths = self.endpoints.paths();
        for (i, (key, path)) in paths.iter().enumerate() {
            if let Some((other, _)) = paths[i + 1..].iter().find(|(_, p)| p == path) {
                return fail(format!("{key} and {other} are both `{path}`"));
            }
        }
        if self.backlog == 0 {
            return fail("backlog must be at least 1".into());
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    // A constant that parses; tested in `default_listen_parses`.
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080)))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn seconds<const Z: bool>(
    flag: Option<Seconds<Z>>,
    file: Option<Seconds<Z>>,
    default: Duration,
) -> Duration {
    flag.or(file).map_or(default, |s| s.0)
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|span| format!(" at line {}", line_of(&text, span.start)))
            .unwrap_or_default();
        ConfigError(format!(
            "{}{place}: {}",
            path.display(),
            e.message().trim_end()
        ))
    })
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
    file: Option<&Path>,
    base_dir: Option<&Path>,
    endpoints: &Endpoints,
) -> Result<Vec<Route>, ConfigError> {
    if specs.is_empty() {
        return Ok(vec![Route::default_hello()]);
    }
    let text = file
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let origin = file.map_or_else(String::new, |p| p.display().to_string());
    specs
        .into_iter()
        .map(|spanned| {
            let at = format!("{origin} at line {}", line_of(&text, spanned.span().start));
            let spec = spanned.into_inner();
            for (key, probe) in endpoints.paths() {
                if spec.match_kind == MatchKind::Exact && spec.path.0 == *probe {
                    return Err(ConfigError(format!(
                        "{at}: route `{probe}` is a built-in endpoint's path; set {key} to another path to use it"
                    )));
                }
            }
            let body = match (spec.body, spec.body_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError(format!(
                        "{at}: route `{}` sets both `body` and `body_file`; keep one",
                        spec.path.0
                    )))
                }
                (Some(body), None) => body.into_bytes(),
                (None, Some(rel)) => {
                    let path = base_dir.map_or_else(|| rel.clone(), |dir| dir.join(&rel));
                    std::fs::read(&path).map_err(|e| {
                        ConfigError(format!(
                            "{at}: body_file `{}` of route `{}`: {e}",
                            path.display(),
                            spec.path.0
                        ))
                    })?
                }
                (None, None) => Vec::new(),
            };
            if spec.methods.is_empty() {
                return Err(ConfigError(format!(
                    "{at}: route `{}` allows no method",
                    spec.path.0
                )));
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
                path: spec.path.0,
                match_kind: spec.match_kind,
                methods: spec.methods.into_iter().map(|m| m.0).collect(),
                status: spec.status.0,
                reason: spec.reason.map(|r| r.0),
                headers,
                body,
            })
        })
        .collect()
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
