//! The `responder healthcheck` subcommand: one GET of the health path on the admin address when
//! one is configured (the probes are served only there), else on the first traffic address (over
//! TLS when the only traffic listeners are TLS ones, taking the server's certificate as it is: the
//! probe asks whether it serves, not who it is), for a container `HEALTHCHECK` in an image that
//! has no shell and no curl.
//!
//! It is a client, not part of the server: blocking sockets, a short timeout, an exit status.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::Config;

/// A probe that takes longer than this is a failed probe.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Returns `Ok(())` when the health path answers 200, or the reason it did not.
pub fn check(config: &Config) -> Result<(), String> {
    let plain = config.admin_listen.or(config.listen.first().copied());
    let (listen, scheme) = match (plain, config.tls_listen.first()) {
        (Some(listen), _) => (listen, "http"),
        (None, Some(&listen)) => (listen, "https"),
        (None, None) => return Err("no address to check".into()),
    };
    let addr = reachable(listen);
    let path = &config.endpoints.health_path;
    let fail = |e: std::io::Error| format!("{scheme}://{addr}{path}: {e}");
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(fail)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
    if scheme == "http" {
        return probe(stream, addr, path).map_err(|e| format!("http://{addr}{path}: {e}"));
    }
    #[cfg(feature = "tls")]
    return tls::client(stream, addr)
        .and_then(|stream| probe(stream, addr, path))
        .map_err(|e| format!("https://{addr}{path}: {e}"));
    #[cfg(not(feature = "tls"))]
    Err(format!("https://{addr}{path}: this build has no TLS"))
}

/// GETs `path` over `stream`: `Ok` on a 200.
fn probe(mut stream: impl Read + Write, addr: SocketAddr, path: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| e.to_string();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: responder-healthcheck\r\n\r\n"
    )
    .map_err(fail)?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]).map_err(fail)? {
            0 => break,
            n => got += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..got]);
    if status_line.starts_with("HTTP/1.0 200 ") || status_line.starts_with("HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(format!("answered {:?}", status_line.trim_end()))
    }
}

#[cfg(feature = "tls")]
mod tls {
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

    /// A TLS client over `stream` that takes any certificate the server shows (a self-signed one
    /// included); its signatures are still checked, so the handshake is a real one.
    pub fn client(
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<rustls::StreamOwned<ClientConnection, TcpStream>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        Ok(rustls::StreamOwned::new(conn, stream))
    }

    #[derive(Debug)]
    struct AnyCertificate(WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }
}

/// A listener on every interface is reached through IPv4 loopback: `[::]` is dual-stack, and on
/// a host without IPv6 the default falls back to `0.0.0.0`, which only IPv4 reaches.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    SocketAddr::new(ip, listen.port())
}
