//! What a finished handshake tells of a connection, for the access log and templates: the
//! version, the cipher suite, the SNI name, whether the session was resumed, and the client's
//! certificate (its subject, subject alternative names, SHA-256 fingerprint and expiry).
//!
//! Taken once per connection when its handshake ends. The subject and the names come from the
//! peer: they are bounded here, and escaped where they are written (the log's `Shown`, the
//! templates' escaping), never here.

use rustls::pki_types::CertificateDer;
use rustls::{CommonState, HandshakeKind, ProtocolVersion};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::answers::template::TlsValues;
use crate::clock;

/// The longest subject or name list kept: a certificate's fields can be kilobytes long.
const MAX_TEXT: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// As rustls names it, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: &'static str,
    /// The name the client asked for; empty when it sent none.
    pub sni: String,
    pub resumed: bool,
    pub client: Option<ClientCertificate>,
}

/// The leaf of the certificate a client presented (and the verifier accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertificate {
    /// RFC 4514-like, e.g. `CN=client, O=Example`.
    pub subject: String,
    /// DNS names, e-mail addresses, URIs and IP addresses, comma-separated.
    pub san: String,
    /// The SHA-256 of the DER leaf, 64 lowercase hex digits.
    pub fingerprint: String,
    /// RFC 3339, UTC, e.g. `2027-01-01T00:00:00Z`.
    pub not_after: String,
}

impl Facts {
    /// `sni` is the name the client asked for, as rustls took it.
    pub fn of(conn: &CommonState, sni: Option<String>) -> Facts {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or("");
        Facts {
            version,
            cipher,
            sni: sni.as_deref().map(bounded).unwrap_or_default(),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            client: conn
                .peer_certificates()
                .and_then(<[_]>::first)
                .map(ClientCertificate::of),
        }
    }
}

impl Facts {
    /// As the access log and the templates take them.
    pub fn values(&self) -> TlsValues<'_> {
        let client = self.client.as_ref();
        let field = |f: fn(&ClientCertificate) -> &str| client.map_or("", f);
        TlsValues {
            version: self.version,
            cipher: self.cipher,
            sni: &self.sni,
            resumed: self.resumed,
            client_subject: field(|c| &c.subject),
            client_san: field(|c| &c.san),
            client_fingerprint: field(|c| &c.fingerprint),
            client_not_after: field(|c| &c.not_after),
        }
    }
}

impl ClientCertificate {
    pub fn of(leaf: &CertificateDer<'_>) -> ClientCertificate {
        let fingerprint = fingerprint(leaf);
        let Ok((_, parsed)) = X509Certificate::from_der(leaf) else {
            // The verifier parsed it already; an unparsable leaf only loses its fields.
            return ClientCertificate {
                fingerprint,
                ..ClientCertificate::default()
            };
        };
        let san = match parsed.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(s) => Some(format!("DNS:{s}")),
                    GeneralName::RFC822Name(s) => Some(format!("email:{s}")),
                    GeneralName::URI(s) => Some(format!("URI:{s}")),
                    GeneralName::IPAddress(ip) => ip_text(ip).map(|ip| format!("IP:{ip}")),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        let not_after = u64::try_from(parsed.validity().not_after.timestamp())
            .map(|secs| {
                let text = clock::rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
                );
                String::from_utf8_lossy(&text).into_owned()
            })
            .unwrap_or_default();
        ClientCertificate {
            subject: bounded(&parsed.subject().to_string()),
            san: bounded(&san),
            fingerprint,
            not_after,
        }
    }
}

fn fingerprint(der: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        // Writing into a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// At most [`MAX_TEXT`] bytes, cut at a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
