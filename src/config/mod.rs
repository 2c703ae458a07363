//! Configuration: the command line, the `RESPONDER_*` environment, the TOML file and the embedded
//! defaults, merged in that order of precedence into one validated [`Config`].
//!
//! Everything a peer never controls but an operator does is checked here, where it enters, at
//! start (or at a reload): a flag or variable by its `clap` value parser, a file value by its
//! `serde` type. A bad value is an error that names its source (the flag, the environment variable,
//! or the file with the line and the key), never a silent default. Each load reads the file once.
//! This module does not build response bytes (see `answers`) and opens no socket.

mod cli;
mod file;
pub mod files;
mod routes;
mod size;
mod tls;
mod values;

pub use cli::*;
use file::*;
pub use routes::*;
use size::EchoMaxBody;
pub use tls::{CertificatePaths, ClientAuth, MinVersion, TlsConfig};
pub use values::*;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod watch;

use watch::WatchOptions;

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
/// What an echo shows of a body: a form or a JSON document whole, without holding much per
/// connection.
pub const DEFAULT_ECHO_MAX_BODY: usize = 64 * 1024;
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest accepted timeout: a typo such as `100000` should not park a connection for a day.
const MAX_SECONDS: f64 = 3600.0;

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
    /// The probes' switches are served on the admin listener.
    pub admin_switches: bool,
    /// The TLS listeners' addresses; none by default.
    pub tls_listen: Vec<SocketAddr>,
    pub tls: TlsConfig,
    pub backlog: u32,
    pub tcp_nodelay: bool,
    pub tcp_cork: bool,
    pub reuse_address: bool,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    /// How much of a body an echo shows.
    pub echo_max_body: usize,
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
    /// The configuration file, when there is one.
    pub file: Option<PathBuf>,
    pub watch: WatchOptions,
}

/// The embedded defaults: what `cargo run --release` serves.
impl Default for Config {
    fn default() -> Config {
        Config {
            listen: vec![default_listen()],
            listen_given: false,
            admin_listen: None,
            admin_switches: false,
            tls_listen: Vec::new(),
            tls: TlsConfig::default(),
            backlog: DEFAULT_BACKLOG,
            tcp_nodelay: true,
            tcp_cork: false,
            reuse_address: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            echo_max_body: DEFAULT_ECHO_MAX_BODY,
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
            file: None,
            watch: WatchOptions::default(),
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
            config.file = Some(path.clone());
        }
        config.apply_command_line(cli);
        config.apply_tls_flags(cli)?;
        if !config.listen_given && !config.tls_listen.is_empty() {
            // TLS listeners alone were asked for: the default plain one is not opened beside them.
            config.listen.clear();
        }
        config.check_admin_listen()?;
        config.check_tls_listen()?;
        config.error_pages.read_dir()?;
        Ok(config)
    }

    /// The configuration file and every file it names (each route's `body_file`, the error
    /// pages' directory when error-page mode is on, the TLS certificates, keys and client CAs
    /// when there are TLS listeners): what `--watch` follows and `responder_config_info` hashes.
    pub fn files(&self) -> Vec<PathBuf> {
        let pages = self
            .error_pages
            .dir
            .as_ref()
            .filter(|_| self.error_pages.enabled);
        let bodies = self.routes.iter().filter_map(|r| r.body_file.as_ref());
        let tls = &self.tls;
        let certificates = tls.certificates.iter().flat_map(|c| [&c.cert, &c.key]);
        let tls_files = certificates
            .chain(&tls.client_ca)
            .filter(|_| !self.tls_listen.is_empty());
        self.file
            .iter()
            .chain(bodies)
            .chain(pages)
            .chain(tls_files)
            .cloned()
            .collect()
    }

    /// The admin listener needs a port of its own: sharing one with a traffic address (every
    /// listener has `SO_REUSEPORT`) would let the kernel spread each kind's connections over both.
    fn check_admin_listen(&self) -> Result<(), ConfigError> {
        let Some(admin) = self.admin_listen else {
            if self.admin_switches {
                return Err(ConfigError(
                    "admin_switches needs admin_listen: the switches are served on the admin \
                     listener and never on a traffic listener"
                        .into(),
                ));
            }
            return Ok(());
        };
        match self.listen_addrs().find(|&addr| overlap(addr, admin)) {
            Some(addr) => Err(ConfigError(format!(
                "admin_listen {admin} overlaps listen {addr}: the admin listener needs a port of \
                 its own"
            ))),
            None => Ok(()),
        }
    }

    /// Every traffic address, plain then TLS.
    fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listen.iter().chain(&self.tls_listen).copied()
    }

    /// A TLS listener needs a port of its own, for the same reason as the admin listener.
    fn check_tls_listen(&self) -> Result<(), ConfigError> {
        for &tls in &self.tls_listen {
            if let Some(addr) = self.listen.iter().find(|&&addr| overlap(addr, tls)) {
                return Err(ConfigError(format!(
                    "tls_listen {tls} overlaps listen {addr}: a TLS listener needs a port of its \
                     own"
                )));
            }
        }
        Ok(())
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
        if let Some(spec) = &file.tls {
            // (A `Spanned` table cannot be written as `[[tls.certificates]]` alone.)
            let at = source.text.find("[tls").unwrap_or(0);
            self.tls
                .apply(spec, &|p| source.relative(p))
                .map_err(|e| ConfigError(format!("{}: {e}", source.at(at))))?;
        }
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
            admin_switches: cli.admin_switches,
            tls_listen: (!cli.tls_listen.is_empty()).then(|| Addresses(cli.tls_listen.clone())),
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
                theme: cli.error_pages_theme,
                ..ErrorPagesSpec::default()
            }),
            watch: cli.watch,
            watch_poll: cli.watch_poll,
            ..FileConfig::default()
        });
    }

    /// `--tls-cert`, `--tls-key`, `--tls-client-ca` and `--tls-client-auth` (or their variables)
    /// over the file's `[tls]`; a certificate given there replaces the file's list.
    fn apply_tls_flags(&mut self, cli: &Cli) -> Result<(), ConfigError> {
        let spec = tls::TlsSpec {
            cert: cli.tls_cert.clone(),
            key: cli.tls_key.clone(),
            client_ca: cli.tls_client_ca.clone(),
            client_auth: cli.tls_client_auth,
            ..tls::TlsSpec::default()
        };
        self.tls
            .apply(&spec, &PathBuf::clone)
            .map_err(|e| ConfigError(format!("--tls-cert, --tls-key: {e}")))?;
        self.tls.check().map_err(ConfigError)
    }

    /// Overrides every setting the file (or the command line, in the file's shape) gives.
    fn apply_values(&mut self, file: &FileConfig) {
        if let Some(addresses) = &file.listen {
            self.listen.clone_from(&addresses.0);
            self.listen_given = true;
        }
        self.admin_listen = file.admin_listen.or(self.admin_listen);
        set(&mut self.admin_switches, file.admin_switches);
        if let Some(addresses) = &file.tls_listen {
            self.tls_listen.clone_from(&addresses.0);
        }
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
        set(
            &mut self.echo_max_body,
            file.echo_max_body.map(|s| s.0 as usize),
        );
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
        set(
            &mut self.endpoints.log_health_checks,
            file.log_health_checks,
        );
        if let Some(pages) = &file.error_pages {
            set(&mut self.error_pages.enabled, pages.enabled);
            if let Some(dir) = &pages.dir {
                self.error_pages.dir = Some(dir.clone());
            }
            set(&mut self.error_pages.theme, pages.theme.map(|t| t.0));
            if let Some(language) = pages.language {
                self.error_pages.language = Some(language.0);
            }
            set(&mut self.error_pages.show_details, pages.show_details);
        }
        self.log_format = file.log_format.or(self.log_format);
        set(&mut self.watch.enabled, file.watch);
        set(&mut self.watch.interval, file.watch_interval.map(|s| s.0));
        set(&mut self.watch.debounce, file.watch_debounce.map(|s| s.0));
        set(&mut self.watch.poll, file.watch_poll);
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
    fn durations_take_one_syntax_and_refuse_nonsense() {
        assert_eq!(
            "0.5".parse::<Seconds>(),
            Ok(Seconds(Duration::from_millis(500)))
        );
        assert_eq!("2".parse::<Seconds>(), Ok(Seconds(Duration::from_secs(2))));
        let written = [
            ("250ms", 250),
            ("10s", 10_000),
            ("1m", 60_000),
            ("1.5s", 1500),
        ];
        for (text, ms) in written {
            assert_eq!(
                text.parse::<Seconds>(),
                Ok(Seconds(Duration::from_millis(ms))),
                "{text}"
            );
        }
        assert_eq!("0ms".parse::<Delay>(), Ok(Seconds(Duration::ZERO)));
        for bad in ["0", "-1", "NaN", "inf", "abc", "7200", "61m", "5 h", "ms"] {
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
