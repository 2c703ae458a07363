//! The command line and its `RESPONDER_*` environment variables (`clap`), and the naming of the
//! variable at fault when a value from the environment is refused. Merging it with the file and
//! the defaults is `config`'s.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use super::*;

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
    /// Address of a TLS listener (HTTPS); give it again (or a comma-separated list in the
    /// environment) for several.
    #[arg(
        long,
        global = true,
        env = "RESPONDER_TLS_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for the TLS listeners (with --tls-key); none: a self-signed one.
    #[arg(long, env = "RESPONDER_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, env = "RESPONDER_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs whose client certificates are accepted.
    #[arg(long, env = "RESPONDER_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificates: `off`, `optional` (checked when sent) or `require`.
    #[arg(long, env = "RESPONDER_TLS_CLIENT_AUTH", value_name = "MODE")]
    pub tls_client_auth: Option<ClientAuth>,
    /// Seconds a client has to send a complete request.
    #[arg(long, env = "RESPONDER_READ_TIMEOUT", value_name = "DURATION")]
    pub read_timeout: Option<Seconds>,
    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(long, env = "RESPONDER_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<Seconds>,
    /// Seconds a client that stops reading has before its connection is cut.
    #[arg(long, env = "RESPONDER_WRITE_TIMEOUT", value_name = "DURATION")]
    pub write_timeout: Option<Seconds>,
    /// Seconds a drain may take after SIGTERM before the remaining connections are closed.
    #[arg(long, env = "RESPONDER_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<Seconds>,
    /// Seconds to keep serving after SIGTERM while the readiness path answers 503, so that load
    /// balancers stop sending before the listener closes.
    #[arg(long, env = "RESPONDER_SHUTDOWN_DELAY", value_name = "DURATION")]
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
    /// Switches on the admin listener: `POST /readyz/disable` (and `enable`, and the same for
    /// `/healthz`) turn a probe's answer to 503 and back while the traffic is served.
    #[arg(long, env = "RESPONDER_ADMIN_SWITCHES", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true")]
    pub admin_switches: Option<bool>,
    /// Directory of error pages (`404.html`, `5xx.json`, ...), read at start and on SIGHUP.
    #[arg(long, env = "RESPONDER_ERROR_PAGES_DIR", value_name = "DIR")]
    pub error_pages_dir: Option<PathBuf>,
    /// The look of the built-in error pages: `card` (the default), `plain` or `mono`.
    #[arg(long, env = "RESPONDER_ERROR_PAGES_THEME", value_name = "THEME")]
    pub error_pages_theme: Option<PageTheme>,
    /// Follow the configuration file and the files it names: a change is applied as SIGHUP
    /// applies it, after `watch_debounce`.
    #[arg(long, env = "RESPONDER_WATCH", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true")]
    pub watch: Option<bool>,
    /// With --watch: compare the files every `watch_interval` instead of using inotify (for file
    /// systems whose changes inotify does not see, such as network mounts).
    #[arg(long, env = "RESPONDER_WATCH_POLL", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true")]
    pub watch_poll: Option<bool>,
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
pub(super) fn blame_environment(e: &clap::Error) -> Option<String> {
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
