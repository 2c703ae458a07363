//! The configuration's value types, each checked where it enters (a flag, a variable, a file
//! value): durations in one syntax (`"10s"`, `"250ms"`, `"1m"`; a bare number is seconds), bounded
//! whole numbers, a route's path, method, status and headers, the log and request-id modes, and
//! the error pages' theme and language.
//! A bad value is an error naming what was wrong; where it came from is the caller's to add.

use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::*;
use crate::answers::pages::language::Language;
use crate::answers::pages::themes::Theme;
use crate::ascii;
use crate::http;

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

/// A duration, in the one syntax of every duration the configuration takes: a number and a unit
/// (`"250ms"`, `"10s"`, `"1m"`), or a bare number of seconds (`10`, `0.5`), on the command line,
/// in the environment and in the file alike. At least `MIN_MS` milliseconds: a timeout at least
/// one (a shorter one would round to nothing, and a loop waiting on it would spin), a delay
/// (`Delay`) may be zero, a polling interval (`PollInterval`) is at least 100. At most an hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds<const MIN_MS: u64 = 1>(pub Duration);

/// Seconds that may be zero, for `shutdown_delay`.
pub type Delay = Seconds<0>;

/// How often files are compared when they are polled (`watch_interval`): each time reads and
/// hashes every one of them.
pub type PollInterval = Seconds<100>;

impl<const MIN_MS: u64> FromStr for Seconds<MIN_MS> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Seconds::try_from(seconds_of(s)?)
    }
}

impl<const MIN_MS: u64> TryFrom<f64> for Seconds<MIN_MS> {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, String> {
        let min = MIN_MS as f64 / 1000.0;
        if value.is_finite() && value >= min && value <= MAX_SECONDS {
            Ok(Seconds(Duration::from_secs_f64(value)))
        } else {
            Err(format!(
                "{value} seconds is out of range (at least {MIN_MS}ms, at most {MAX_SECONDS})"
            ))
        }
    }
}

impl<'de, const MIN_MS: u64> Deserialize<'de> for Seconds<MIN_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }
        let seconds = match Written::deserialize(d)? {
            Written::Number(n) => n,
            Written::Text(text) => seconds_of(&text).map_err(de::Error::custom)?,
        };
        Seconds::try_from(seconds).map_err(de::Error::custom)
    }
}

/// The seconds `text` says: a bare number, or a number with `ms`, `s` or `m`.
fn seconds_of(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = t.strip_suffix('m') {
        (m, 60.0)
    } else {
        (t, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * scale)
        .ok_or_else(|| format!("`{text}` is not a duration such as `250ms`, `10s`, `1m` or `10`"))
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

/// A route's `delay` or one end of its range, in the one duration syntax; it may be zero.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    Delay::from_str(text)
        .map(|d| d.0)
        .map_err(|e| format!("delay: {e}"))
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
        if method == "CONNECT" {
            return Err(de::Error::custom(
                "`CONNECT` asks for a tunnel, which responder does not open: every CONNECT gets 501",
            ));
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
pub(super) const RESERVED_HEADERS: [&str; 7] = [
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

/// `request_id_header`: a header name, and not one of the fields a request's head is read for
/// (`Host`, the framing, the selectors, the client's logged fields), which the id would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIdHeader(pub String);

impl<'de> Deserialize<'de> for RequestIdHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let HeaderName(name) = HeaderName::deserialize(d)?;
        if http::FIELDS_READ.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(de::Error::custom(format!(
                "`{name}` is a field the server reads for itself; request ids need one of their own"
            )));
        }
        Ok(RequestIdHeader(name))
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

/// `[error_pages] theme`, `--error-pages-theme`: the name of a built-in theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTheme(pub Theme);

impl FromStr for PageTheme {
    type Err = String;

    fn from_str(name: &str) -> Result<PageTheme, String> {
        Theme::from_name(name).map(PageTheme).ok_or_else(|| {
            let names: Vec<&str> = Theme::ALL.iter().map(|t| t.name()).collect();
            format!(
                "`{name}` is not a theme of the error pages; expected one of `{}`",
                names.join("`, `")
            )
        })
    }
}

impl<'de> Deserialize<'de> for PageTheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// `[error_pages] language`: a language of the built-in pages, by its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLanguage(pub Language);

impl<'de> Deserialize<'de> for PageLanguage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tag = String::deserialize(d)?;
        Language::from_tag(tag.as_bytes())
            .map(PageLanguage)
            .ok_or_else(|| {
                let tags: Vec<&str> = Language::ALL.iter().map(|l| l.tag()).collect();
                de::Error::custom(format!(
                    "`{tag}` is not a language of the error pages; expected one of `{}`",
                    tags.join("`, `")
                ))
            })
    }
}
