//! TLS for the TLS listeners, with rustls and its `ring` provider: the `ServerConfig` built from
//! the configuration's `[tls]` settings at start and at each reload ([`Tls::load`]), and each
//! connection's [`Session`].
//!
//! One ticketer and one session cache ([`Shared`]) serve every worker and outlive a rotation, so
//! a session resumes on any worker and across a reload, unless the reload changed how clients
//! are checked: rustls carries a resumed session's client certificate over without checking it
//! again, so then both are made anew. ALPN offers `http/1.1` and `http/1.0`;
//! nothing older than TLS 1.2 is ever offered. Sockets, deadlines and HTTP are the connection's
//! (`serve::connection`); counting and logging the handshakes is the connection's too.

mod certs;
mod facts;
mod resolve;
mod session;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use crate::config::{ClientAuth, MinVersion, TlsConfig};
pub use certs::Loaded;
pub use facts::{ClientCertificate, Facts};
pub use session::{Failure, Input, Session, PLAIN_HTTP_ANSWER};

/// Sessions the shared cache keeps for TLS 1.2 resumption by id (TLS 1.3 and TLS 1.2 tickets
/// need none): a few hundred bytes each.
const CACHED_SESSIONS: usize = 10_000;

/// A TLS setting that cannot be used, naming the file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl TlsError {
    fn at(path: &Path, what: String) -> TlsError {
        TlsError(format!("{}: {what}", path.display()))
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// What every load shares: the provider, what sessions resume by, and the self-signed
/// certificate once one was made (a reload without certificates keeps serving the same one).
pub struct Shared {
    provider: Arc<CryptoProvider>,
    resumption: Mutex<Resumption>,
    self_signed: Mutex<Option<Loaded>>,
}

/// How a client was checked: a digest of the client-certificate mode and the CAs.
type ClientCheck = [u8; 32];

/// The ticket keys and the session cache, and the client check of the loads that use them.
#[derive(Clone)]
struct Resumption {
    check: Option<ClientCheck>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

fn ticketer() -> Result<Arc<dyn ProducesTickets>, TlsError> {
    rustls::crypto::ring::Ticketer::new()
        .map_err(|e| TlsError(format!("cannot make session ticket keys: {e}")))
}

impl Shared {
    pub fn new() -> Result<Shared, TlsError> {
        Ok(Shared {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            resumption: Mutex::new(Resumption {
                check: None,
                ticketer: ticketer()?,
                sessions: ServerSessionMemoryCache::new(CACHED_SESSIONS),
            }),
            self_signed: Mutex::new(None),
        })
    }

    /// The ticket keys and session cache for a load whose clients are checked by `check`: the
    /// ones before while the check is the same, new ones once it changed, so that no session
    /// resumes past a check its client never passed.
    fn resumption(&self, check: ClientCheck) -> Result<Resumption, TlsError> {
        // Each field is set whole: a panic elsewhere cannot leave it half-set.
        let mut kept = self
            .resumption
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.check.is_some_and(|before| before != check) {
            kept.ticketer = ticketer()?;
            kept.sessions = ServerSessionMemoryCache::new(CACHED_SESSIONS);
            tracing::info!("client certificate checks changed; sessions from before do not resume");
        }
        kept.check = Some(check);
        Ok(kept.clone())
    }

    fn self_signed(&self) -> Result<Loaded, TlsError> {
        // A panic elsewhere cannot leave the value half-set (it is set whole): keep using it.
        let mut made = self
            .self_signed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(loaded) = made.as_ref() {
            return Ok(loaded.clone());
        }
        let loaded = certs::self_signed(&self.provider)?;
        tracing::warn!(
            names = loaded.names.join(", "),
            fingerprint = facts::ClientCertificate::of(&loaded.key.cert[0]).fingerprint,
            "no TLS certificate configured; serving a self-signed certificate"
        );
        *made = Some(loaded.clone());
        Ok(loaded)
    }
}

/// A certificate being served, for `responder_tls_certificate_not_after_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub name: String,
    pub not_after: i64,
}

/// One load of the TLS settings.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub served: Vec<Served>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("served", &self.served).finish()
    }
}

impl Tls {
    /// Reads every certificate, key and CA file `settings` names (each once) and builds the
    /// server's configuration; the first error names its file, and nothing is served from a
    /// load that failed.
    pub fn load(settings: &TlsConfig, shared: &Shared) -> Result<Tls, TlsError> {
        let provider = &shared.provider;
        let mut loaded = settings
            .certificates
            .iter()
            .map(|paths| certs::load_pair(&paths.cert, &paths.key, provider))
            .collect::<Result<Vec<_>, _>>()?;
        if loaded.is_empty() {
            loaded.push(shared.self_signed()?);
        }
        let served = loaded
            .iter()
            .map(|l| Served {
                name: l.label.clone(),
                not_after: l.not_after,
            })
            .collect();
        let (verifier, check) = client_verifier(settings, provider)?;
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let resolver = resolve::ByName::new(loaded)
            .ok_or_else(|| TlsError("no TLS certificate to serve".into()))?;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
            .with_protocol_versions(versions)
            .map_err(|e| TlsError(format!("tls min_version: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
        // Last: a load refused above leaves the sessions as they were.
        let resumption = shared.resumption(check)?;
        config.ticketer = resumption.ticketer;
        config.session_storage = resumption.sessions;
        Ok(Tls {
            config: Arc::new(config),
            served,
        })
    }
}

/// The check of client certificates `settings` ask for, and its digest.
fn client_verifier(
    settings: &TlsConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<(Arc<dyn ClientCertVerifier>, ClientCheck), TlsError> {
    let mut check = Sha256::new();
    let ca = match (settings.client_auth, &settings.client_ca) {
        (ClientAuth::Off, _) | (_, None) => {
            return Ok((Arc::new(NoClientAuth), check.finalize().into()))
        }
        (_, Some(ca)) => ca,
    };
    let roots = certs::load_roots(ca)?;
    check.update(format!("{:?}", settings.client_auth));
    for root in &roots.roots {
        let constraints = root.name_constraints.as_deref();
        check.update([u8::from(constraints.is_some())]);
        let parts = [
            &root.subject[..],
            &root.subject_public_key_info[..],
            constraints.unwrap_or_default(),
        ];
        for part in parts {
            check.update((part.len() as u64).to_le_bytes());
            check.update(part);
        }
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = match settings.client_auth {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    let verifier = builder
        .build()
        .map_err(|e| TlsError::at(ca, format!("cannot check client certificates: {e}")))?;
    Ok((verifier, check.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CertificatePaths;

    fn pair(dir: &Path, name: &str) -> CertificatePaths {
        let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("made");
        let paths = CertificatePaths {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&paths.cert, made.cert.pem()).expect("written");
        std::fs::write(&paths.key, made.signing_key.serialize_pem()).expect("written");
        paths
    }

    #[test]
    fn certificates_load_and_each_fault_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = Shared::new().expect("shared");
        let a = pair(dir.path(), "a.example");
        let b = pair(dir.path(), "b.example");
        let settings = TlsConfig {
            certificates: vec![a.clone(), b.clone()],
            ..TlsConfig::default()
        };
        let tls = Tls::load(&settings, &shared).expect("loads");
        assert_eq!(tls.served.len(), 2);
        assert_eq!(tls.served[0].name, "a.example");

        let mismatched = TlsConfig {
            certificates: vec![CertificatePaths {
                cert: a.cert.clone(),
                key: b.key.clone(),
            }],
            ..TlsConfig::default()
        };
        let e = Tls::load(&mismatched, &shared).expect_err("refused");
        assert!(e.0.contains(&*a.cert.to_string_lossy()), "{e}");

        std::fs::write(&b.cert, "not a certificate").expect("written");
        let e = Tls::load(&settings, &shared).expect_err("refused");
        assert!(e.0.contains(&*b.cert.to_string_lossy()), "{e}");

        let missing = TlsConfig {
            client_auth: ClientAuth::Require,
            client_ca: Some(dir.path().join("absent.pem")),
            ..TlsConfig::default()
        };
        let e = Tls::load(&missing, &shared).expect_err("refused");
        assert!(
            e.0.contains("absent.pem") && e.0.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn without_certificates_one_self_signed_certificate_is_kept_across_loads() {
        let shared = Shared::new().expect("shared");
        let first = Tls::load(&TlsConfig::default(), &shared).expect("loads");
        let second = Tls::load(&TlsConfig::default(), &shared).expect("loads");
        assert_eq!(first.served, second.served);
        assert_eq!(first.served[0].name, "localhost");
    }
}
