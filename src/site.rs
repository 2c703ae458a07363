//! What is served and how, as inert facts every layer above may read: the prepared answers, the
//! per-connection settings and limits, and the TLS listeners' rustls configuration ([`Site`],
//! built from a [`Config`]). How a reload publishes a new one to the event loops is
//! `serve::control`'s.
//!
//! It decides nothing and does no I/O; of ours it imports only `config`, `answers` and `http`
//! (the limits), so that the request path, the connections and the counters can all share these
//! types without importing one another.

use std::time::Duration;

use crate::answers::Responses;
use crate::config::{Config, RequestIdMode};
use crate::http::Limits;

/// Per-connection settings taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub limits: Limits,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub tcp_cork: bool,
    pub access_log: bool,
    /// Whether requests to the built-in endpoints are logged too.
    pub log_health_checks: bool,
    /// How much of a body an echo shows.
    pub echo_max_body: usize,
    pub request_id: RequestIdMode,
}

/// Everything a reload can change: the answers and the per-connection settings.
#[derive(Debug, Clone)]
pub struct Site {
    pub responses: Responses,
    pub settings: Settings,
    /// What new TLS handshakes are served with (certificates, client verifier), when there are
    /// TLS listeners: loaded by the supervisor, since reading the files can fail.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Site {
    pub fn new(config: &Config) -> Site {
        Site {
            responses: Responses::new(config),
            settings: Settings {
                limits: Limits {
                    max_header_bytes: config.max_header_bytes,
                    max_body_bytes: config.max_body_bytes,
                },
                read_timeout: config.read_timeout,
                idle_timeout: config.idle_timeout,
                write_timeout: config.write_timeout,
                tcp_cork: config.tcp_cork,
                access_log: config.access_log,
                log_health_checks: config.endpoints.log_health_checks,
                echo_max_body: config.echo_max_body,
                request_id: config.request_id,
            },
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
