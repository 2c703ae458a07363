//! The TLS settings: the `[tls]` table of the file and its `[[tls.certificates]]`, the
//! `--tls-*` flags and `RESPONDER_TLS_*` variables, merged into one [`TlsConfig`].
//!
//! Only paths and choices are checked here; the files they name are read, parsed and matched
//! against their keys by `tls`, at start and at each reload, so that a rotation reads them anew.
//! The TLS listeners' addresses (`tls_listen`) are in `Config` beside the plain ones.

use std::path::PathBuf;

use clap::ValueEnum;
use serde::Deserialize;

/// The oldest protocol version offered; nothing older than TLS 1.2 ever is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum MinVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// Whether clients are asked for a certificate, and whether one is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No certificate is asked for.
    #[default]
    Off,
    /// One is asked for and checked against `client_ca` when sent; a client may send none.
    Optional,
    /// A client without a certificate that `client_ca` signed is refused in the handshake.
    Require,
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatePaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[tls]` in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSpec {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub certificates: Vec<CertificatePaths>,
    pub min_version: Option<MinVersion>,
    pub client_ca: Option<PathBuf>,
    pub client_auth: Option<ClientAuth>,
}

/// The TLS settings, their paths relative to the working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Chosen by SNI against their names; the first is served to a client whose name none
    /// has. Empty: a self-signed certificate made at start.
    pub certificates: Vec<CertificatePaths>,
    pub min_version: MinVersion,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

impl TlsConfig {
    /// Overrides what `spec` gives. `cert` and `key` (the flags', or the table's own) are the
    /// first certificate, before the table's list; `relative` places the file's paths.
    pub(super) fn apply(
        &mut self,
        spec: &TlsSpec,
        relative: &dyn Fn(&PathBuf) -> PathBuf,
    ) -> Result<(), String> {
        let single = match (&spec.cert, &spec.key) {
            (Some(cert), Some(key)) => Some(CertificatePaths {
                cert: relative(cert),
                key: relative(key),
            }),
            (None, None) => None,
            (Some(_), None) => return Err("tls cert is set without its key".into()),
            (None, Some(_)) => return Err("tls key is set without its cert".into()),
        };
        let listed = spec.certificates.iter().map(|c| CertificatePaths {
            cert: relative(&c.cert),
            key: relative(&c.key),
        });
        let given: Vec<CertificatePaths> = single.into_iter().chain(listed).collect();
        if !given.is_empty() {
            self.certificates = given;
        }
        if let Some(version) = spec.min_version {
            self.min_version = version;
        }
        if let Some(ca) = &spec.client_ca {
            self.client_ca = Some(relative(ca));
        }
        if let Some(auth) = spec.client_auth {
            self.client_auth = auth;
        }
        Ok(())
    }

    /// A client certificate can only be checked against a CA.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.client_auth != ClientAuth::Off && self.client_ca.is_none() {
            return Err(format!(
                "tls client_auth = \"{}\" needs client_ca, the CA that signs the clients' \
                 certificates",
                self.client_auth.name()
            ));
        }
        Ok(())
    }
}

impl ClientAuth {
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Off => "off",
            ClientAuth::Optional => "optional",
            ClientAuth::Require => "require",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_certificate_comes_first_and_paths_are_placed() {
        let spec: TlsSpec = toml::from_str(
            "cert = 'a.pem'\nkey = 'a.key'\nmin_version = '1.3'\nclient_auth = 'optional'\n\
             client_ca = 'ca.pem'\n[[certificates]]\ncert = 'b.pem'\nkey = 'b.key'\n",
        )
        .expect("valid");
        let mut tls = TlsConfig::default();
        tls.apply(&spec, &|p| PathBuf::from("/etc").join(p))
            .expect("applies");
        assert_eq!(tls.certificates.len(), 2);
        assert_eq!(tls.certificates[0].cert, PathBuf::from("/etc/a.pem"));
        assert_eq!(tls.certificates[1].key, PathBuf::from("/etc/b.key"));
        assert_eq!(tls.min_version, MinVersion::Tls13);
        assert_eq!(tls.client_ca, Some(PathBuf::from("/etc/ca.pem")));
        assert!(tls.check().is_ok());
    }

    #[test]
    fn a_cert_without_its_key_and_auth_without_a_ca_are_refused() {
        let spec: TlsSpec = toml::from_str("cert = 'a.pem'").expect("valid");
        let mut tls = TlsConfig::default();
        assert!(tls.apply(&spec, &|p| p.clone()).is_err());
        tls.client_auth = ClientAuth::Require;
        assert!(tls.check().unwrap_err().contains("client_ca"));
        assert!(toml::from_str::<TlsSpec>("min_version = '1.1'").is_err());
    }
}
