//! The configuration file: its schema (`serde`, `deny_unknown_fields`, every key optional), read
//! once per load, with the line of a key found for errors. What its values become is `config`'s
//! and `routes`'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::*;

/// The file's schema. Every key is optional: what is absent falls back to the embedded default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<Addresses>,
    pub(super) admin_listen: Option<SocketAddr>,
    pub(super) admin_switches: Option<bool>,
    pub(super) tls_listen: Option<Addresses>,
    pub(super) tls: Option<tls::TlsSpec>,
    pub(super) backlog: Option<Backlog>,
    pub(super) tcp_nodelay: Option<bool>,
    pub(super) tcp_cork: Option<bool>,
    pub(super) reuse_address: Option<bool>,
    pub(super) max_connections: Option<MaxConnections>,
    pub(super) max_header_bytes: Option<HeaderBytes>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) echo_max_body: Option<EchoMaxBody>,
    pub(super) read_timeout: Option<Seconds>,
    pub(super) idle_timeout: Option<Seconds>,
    pub(super) write_timeout: Option<Seconds>,
    pub(super) shutdown_timeout: Option<Seconds>,
    pub(super) shutdown_delay: Option<Delay>,
    pub(super) health_path: Option<toml::Spanned<RoutePath>>,
    pub(super) ready_path: Option<toml::Spanned<RoutePath>>,
    pub(super) metrics_path: Option<toml::Spanned<RoutePath>>,
    pub(super) log_health_checks: Option<bool>,
    pub(super) workers: Option<Workers>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) access_log: Option<bool>,
    pub(super) request_id: Option<RequestIdMode>,
    pub(super) request_id_header: Option<RequestIdHeader>,
    pub(super) error_pages: Option<ErrorPagesSpec>,
    pub(super) watch: Option<bool>,
    pub(super) watch_interval: Option<PollInterval>,
    pub(super) watch_debounce: Option<Seconds>,
    pub(super) watch_poll: Option<bool>,
    #[serde(default)]
    pub(super) route: Vec<toml::Spanned<RouteSpec>>,
}

/// `[error_pages]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ErrorPagesSpec {
    pub(super) enabled: Option<bool>,
    /// Relative to the file.
    pub(super) dir: Option<PathBuf>,
    pub(super) theme: Option<PageTheme>,
    /// Pins the built-in pages' language instead of `Accept-Language`'s choice.
    pub(super) language: Option<PageLanguage>,
    pub(super) show_details: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteSpec {
    pub(super) path: RoutePath,
    #[serde(default, rename = "match")]
    pub(super) match_kind: MatchKind,
    #[serde(default = "default_methods")]
    pub(super) methods: Vec<Method>,
    /// `status`, `statuses`, `body`, `body_file` and `template` keep where they were set, so
    /// that content a status forbids is blamed on its line (`routes::check_content_allowed`).
    pub(super) status: Option<toml::Spanned<Status>>,
    /// Statuses picked at random by weight, instead of `status`.
    pub(super) statuses: Option<toml::Spanned<BTreeMap<String, u32>>>,
    pub(super) reason: Option<HeaderValue>,
    #[serde(default)]
    pub(super) headers: BTreeMap<HeaderName, HeaderValue>,
    pub(super) body: Option<toml::Spanned<String>>,
    pub(super) body_file: Option<toml::Spanned<PathBuf>>,
    pub(super) template: Option<toml::Spanned<bool>>,
    /// The request as it arrived, instead of a body.
    pub(super) echo: Option<toml::Spanned<bool>>,
    pub(super) delay: Option<DelaySpec>,
}

/// `delay = "250ms"`, or `delay = { min = "100ms", max = "2s" }` for a uniform pick.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum DelaySpec {
    Fixed(String),
    Range { min: String, max: String },
}

impl DelaySpec {
    pub(super) fn delay(&self) -> Result<RouteDelay, String> {
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

/// `listen` in the file: one address or a list of them, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Addresses(pub(super) Vec<SocketAddr>);

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

/// The configuration file as read once for a load: its path, for errors and relative body files,
/// and its text, for line numbers.
pub(super) struct Source {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

impl Source {
    pub(super) fn read(path: &Path) -> Result<Source, ConfigError> {
        let text = super::files::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// `path at line N` for a byte offset into the text.
    pub(super) fn at(&self, offset: usize) -> String {
        format!(
            "{} at line {}",
            self.path.display(),
            line_of(&self.text, offset)
        )
    }

    /// The key of the `key = value` line that holds `offset`, if it is one.
    pub(super) fn key_at(&self, offset: usize) -> Option<&str> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.starts_with('[')).then_some(key)
    }

    /// A file named in the configuration, relative to the configuration file's directory.
    pub(super) fn relative(&self, name: &Path) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| name.to_path_buf(), |dir| dir.join(name))
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
