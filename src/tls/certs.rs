//! Certificates as files: a PEM chain and its private key read, parsed and matched, each error
//! naming the file at fault; the client CAs; and the self-signed certificate served when none is
//! configured.
//!
//! It builds no `ServerConfig` (see `tls`'s own module) and chooses no certificate per client
//! (see `resolve`).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;
use crate::config::files;

/// A certificate ready to serve, with what the SNI choice and the metrics need of its leaf.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// The leaf's DNS names (its subject alternative names, else its common name), lowercase;
    /// a wildcard keeps its `*.`.
    pub names: Vec<String>,
    /// The first name, or the file when it has none: the metrics' `name` label.
    pub label: String,
    /// The end of the leaf's validity, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// Reads `cert` (a PEM chain, leaf first) and `key` (PKCS#8, SEC1 or PKCS#1) and checks that the
/// key is the leaf's.
pub fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let chain = read_chain(cert)?;
    let key_text = read(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_text)
        .map_err(|e| TlsError::at(key, format!("no private key in the file ({e})")))?;
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        TlsError::at(
            cert,
            format!("does not go with the key {}: {e}", key.display()),
        )
    })?;
    describe(Arc::new(certified), cert)
}

/// The CAs whose client certificates are accepted.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_chain(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::at(path, format!("not a CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A certificate for `localhost` and this host's name, signed by its own new ECDSA P-256 key.
pub fn self_signed(provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let mut names = vec!["localhost".to_string()];
    if let Some(host) = host_name().filter(|h| h != "localhost") {
        names.push(host);
    }
    let fail = |e: rcgen::Error| TlsError(format!("cannot make a self-signed certificate: {e}"));
    let made = rcgen::generate_simple_self_signed(names).map_err(fail)?;
    let private = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| TlsError(format!("cannot make a self-signed certificate: {e}")))?;
    let certified = CertifiedKey::from_der(vec![made.cert.der().clone()], private, provider)
        .map_err(|e| TlsError(format!("cannot make a self-signed certificate: {e}")))?;
    describe(Arc::new(certified), Path::new("self-signed"))
}

/// The kernel's host name, when it is one a certificate can name.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(name)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    files::read(path).map_err(|e| TlsError::at(path, format!("cannot read: {e}")))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::at(path, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::at(path, "no certificate in the file".into()));
    }
    Ok(chain)
}

/// The names and expiry of a certificate's leaf.
fn describe(key: Arc<CertifiedKey>, file: &Path) -> Result<Loaded, TlsError> {
    let leaf = key
        .cert
        .first()
        .ok_or_else(|| TlsError::at(file, "no certificate in the file".into()))?;
    let (_, parsed) = X509Certificate::from_der(leaf)
        .map_err(|e| TlsError::at(file, format!("cannot parse the certificate: {e}")))?;
    let mut names: Vec<String> = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            parsed
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let label = names
        .first()
        .cloned()
        .unwrap_or_else(|| file.display().to_string());
    let not_after = parsed.validity().not_after.timestamp();
    Ok(Loaded {
        key,
        names,
        label,
        not_after,
    })
}
