//! TLS listeners over real sockets, with a rustls client and certificates made by `rcgen`: the
//! versions offered, SNI, client certificates, rotation on SIGHUP, the faults (a plain request,
//! a stalled handshake, a flood of half-finished ones, an old ClientHello), and the drain's
//! `close_notify`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::{cpu_ticks, field, read_to_close, rss_kib, ticks_per_second, Server, LIMIT};

/// A CA and what it signs.
struct Ca {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (the first is its common name) with `serial`: its PEM chain and key.
    fn leaf(&self, names: &[&str], serial: u64) -> (String, String, CertificateDer<'static>) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `ca`, speaks only `versions`, and presents `identity` when given.
fn client(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<(CertificateDer<'static>, String)>,
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(ca.roots());
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: &Arc<ClientConfig>, sni: &str) -> Tls {
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    socket.set_write_timeout(Some(LIMIT)).unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = ClientConnection::new(Arc::clone(config), name).unwrap();
    StreamOwned::new(conn, socket)
}

/// Sends one keep-alive request and reads its answer (head and `Content-Length` body).
fn request(tls: &mut Tls, path: &str) -> std::io::Result<String> {
    write!(tls, "GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n")?;
    tls.flush()?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    tls.read_exact(&mut body)?;
    Ok(head + &String::from_utf8_lossy(&body))
}

/// The serial number of the certificate the server presented.
fn serial(tls: &Tls) -> Vec<u8> {
    let certs = tls.conn.peer_certificates().expect("a certificate");
    let (_, parsed) = X509Certificate::from_der(&certs[0]).unwrap();
    parsed.raw_serial().to_vec()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The TLS address the server announced.
fn tls_addr(server: &Server) -> SocketAddr {
    let line = server.await_log(&["\"listening\""]);
    field(&line, "tls_addrs")
        .expect("a TLS address")
        .parse()
        .unwrap()
}

/// A server with one TLS listener serving `cert` and `key`, plus `args`.
fn serve(cert: &Path, key: &Path, args: &[&str]) -> (Server, SocketAddr) {
    let mut all = vec![
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--workers",
        "2",
    ];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    let addr = tls_addr(&server);
    (server, addr)
}

fn metrics(server: &Server) -> String {
    server.exchange(b"GET /metrics HTTP/1.0\r\n\r\n")
}

/// A metric's value in a scrape, 0 when absent.
fn metric(scrape: &str, series: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
    cert: PathBuf,
    key: PathBuf,
}

fn setup(names: &[&str], serial: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (cert, key, _) = ca.leaf(names, serial);
    let cert = write(dir.path(), "cert.pem", &cert);
    let key = write(dir.path(), "key.pem", &key);
    Setup { dir, ca, cert, key }
}

#[test]
fn requests_over_tls_1_3_and_1_2_are_answered_and_logged() {
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &[]);
    for (version, name) in [
        (&rustls::version::TLS13, "TLSv1.3"),
        (&rustls::version::TLS12, "TLSv1.2"),
    ] {
        let mut tls = connect(addr, &client(&s.ca, &[version], None), "a.example");
        let answer = request(&mut tls, "/").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("Hello, world!"), "{answer}");
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let line = server.await_log(&["\"response\"", &format!("\"tls_version\":\"{name}\"")]);
        assert_eq!(field(&line, "sni").as_deref(), Some("a.example"), "{line}");
        assert!(field(&line, "tls_cipher").is_some(), "{line}");
    }
    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshakes_total{result=\"ok\",version=\"TLSv1.2\",resumed=\"false\"}"
        ),
        1,
        "{scrape}"
    );
    assert!(
        scrape.contains("responder_tls_certificate_not_after_seconds{name=\"a.example\"}"),
        "{scrape}"
    );
}

#[test]
fn min_version_1_3_refuses_a_tls_1_2_client() {
    let s = setup(&["a.example"], 1);
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nmin_version = \"1.3\"\n",
        s.cert, s.key
    );
    let server = Server::with_config(&config, &["--tls-listen", "127.0.0.1:0"]);
    let addr = tls_addr(&server);
    let mut tls = connect(
        addr,
        &client(&s.ca, &[&rustls::version::TLS12], None),
        "a.example",
    );
    assert!(request(&mut tls, "/").is_err());
    let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
}

/// A route's delay holds the answer, then sends it through the session, and the connection
/// goes on serving.
#[test]
fn a_delayed_answer_goes_out_through_the_session() {
    let s = setup(&["a.example"], 1);
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n[[route]]\npath = \"/slow\"\ndelay = \"300ms\"\nbody = \"slow\"\n",
        s.cert, s.key
    );
    let server = Server::with_config(&config, &["--tls-listen", "127.0.0.1:0"]);
    let addr = tls_addr(&server);
    let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
    let started = Instant::now();
    let answer = request(&mut tls, "/slow").unwrap();
    let took = started.elapsed();
    assert!(answer.ends_with("slow"), "{answer}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    let next = request(&mut tls, "/slow").unwrap();
    assert!(next.ends_with("slow"), "{next}");
}

/// A TLS 1.0 ClientHello (no `supported_versions`), as an old client sends it: refused with an
/// alert, never a ServerHello.
#[test]
fn tls_1_0_and_1_1_hellos_are_refused() {
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &[]);
    for minor in [1u8, 2] {
        let mut body = vec![0x03, minor];
        body.extend_from_slice(&[7; 32]); // random
        body.push(0); // no session id
        body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0x00, 0x35]); // two RSA AES-CBC suites
        body.extend_from_slice(&[1, 0]); // null compression
        let mut handshake = vec![1, 0, 0, body.len() as u8];
        handshake.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
        record.extend_from_slice(&handshake);
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        socket.write_all(&record).unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        assert_eq!(answer.first(), Some(&0x15), "an alert record: {answer:?}");
    }
    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"incompatible\"}"
        ),
        2,
        "{scrape}"
    );
}

#[test]
fn sni_chooses_between_two_certificates() {
    let s = setup(&["a.example"], 1);
    let (b_cert, b_key, _) = s.ca.leaf(&["b.example"], 2);
    let b_cert = write(s.dir.path(), "b.pem", &b_cert);
    let b_key = write(s.dir.path(), "b.key", &b_key);
    let config = format!(
        "tls_listen = \"127.0.0.1:0\"\n[[tls.certificates]]\ncert = {:?}\nkey = {:?}\n\
         [[tls.certificates]]\ncert = {:?}\nkey = {:?}\n",
        s.cert, s.key, b_cert, b_key
    );
    let server = Server::with_config(&config, &[]);
    let addr = tls_addr(&server);
    let config = client(&s.ca, ALL, None);
    for (sni, serial_byte) in [("a.example", 1u8), ("b.example", 2)] {
        let mut tls = connect(addr, &config, sni);
        // The client checks the certificate against the name: a wrong choice fails here.
        assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
        assert_eq!(serial(&tls), vec![serial_byte]);
    }
    // A name no certificate has gets the first one (and this client refuses it).
    let mut tls = connect(addr, &config, "c.example");
    assert!(request(&mut tls, "/").is_err());
}

#[test]
fn a_required_client_certificate_is_checked_and_shown() {
    let s = setup(&["a.example"], 1);
    let client_ca = Ca::new("client CA");
    let ca_path = write(s.dir.path(), "client-ca.pem", &client_ca.pem());
    let config = format!(
        "tls_listen = \"127.0.0.1:0\"\n[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\
         client_auth = \"require\"\n\
         [[route]]\npath = \"/who\"\ntemplate = true\nbody = \"{{{{tls.client_subject}}}}|{{{{tls.version}}}}\"\n",
        s.cert, s.key, ca_path
    );
    let server = Server::with_config(&config, &[]);
    let addr = tls_addr(&server);

    let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
    assert!(request(&mut tls, "/").is_err(), "no certificate");

    let stranger = Ca::new("another CA");
    let (_, key, der) = stranger.leaf(&["mallory"], 9);
    let mut tls = connect(addr, &client(&s.ca, ALL, Some((der, key))), "a.example");
    assert!(
        request(&mut tls, "/").is_err(),
        "a certificate from another CA"
    );

    let (_, key, der) = client_ca.leaf(&["alice"], 5);
    let mut tls = connect(addr, &client(&s.ca, ALL, Some((der, key))), "a.example");
    let answer = request(&mut tls, "/who").unwrap();
    assert!(answer.ends_with("CN=alice|TLSv1.3"), "{answer}");
    let line = server.await_log(&["\"response\"", "\"client_subject\""]);
    assert_eq!(field(&line, "client_subject").as_deref(), Some("CN=alice"));
    assert_eq!(
        field(&line, "client_fingerprint").map(|f| f.len()),
        Some(64)
    );
    assert_eq!(field(&line, "client_san").as_deref(), Some("DNS:alice"));

    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"no_client_certificate\"}"
        ),
        1,
        "{scrape}"
    );
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"bad_client_certificate\"}"
        ),
        1,
        "{scrape}"
    );
}

#[test]
fn an_optional_client_certificate_may_be_left_out() {
    let s = setup(&["a.example"], 1);
    let client_ca = Ca::new("client CA");
    let ca_path = write(s.dir.path(), "client-ca.pem", &client_ca.pem());
    let (server, addr) = serve(
        &s.cert,
        &s.key,
        &[
            "--tls-client-ca",
            ca_path.to_str().unwrap(),
            "--tls-client-auth",
            "optional",
        ],
    );
    let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    let (_, key, der) = client_ca.leaf(&["bob"], 6);
    let mut tls = connect(addr, &client(&s.ca, ALL, Some((der, key))), "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    server.await_log(&["\"response\"", "\"client_subject\":\"CN=bob\""]);
}

#[test]
fn a_session_from_before_client_certificates_were_required_does_not_resume() {
    let s = setup(&["a.example"], 1);
    let client_ca = Ca::new("client CA");
    let ca_path = write(s.dir.path(), "client-ca.pem", &client_ca.pem());
    let tls_table = format!("[tls]\ncert = {:?}\nkey = {:?}\n", s.cert, s.key);
    let config_path = write(
        s.dir.path(),
        "responder.toml",
        &format!("tls_listen = \"127.0.0.1:0\"\n{tls_table}"),
    );
    let server = Server::start(&["--config", config_path.to_str().unwrap()]);
    let addr = tls_addr(&server);
    // One client, one session store: its ticket from before the reload is offered after it.
    let config = client(&s.ca, ALL, None);
    let mut tls = connect(addr, &config, "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    let mut tls = connect(addr, &config, "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    server.await_log(&["\"response\"", "\"tls_resumed\":true"]);

    write(
        s.dir.path(),
        "responder.toml",
        &format!(
            "tls_listen = \"127.0.0.1:0\"\n{tls_table}client_ca = {ca_path:?}\nclient_auth = \"require\"\n"
        ),
    );
    server.signal(libc::SIGHUP);
    server.await_log(&["configuration reloaded"]);
    server.await_log(&["client certificate checks changed"]);
    let mut tls = connect(addr, &config, "a.example");
    assert!(
        request(&mut tls, "/").is_err(),
        "a session resumed past the client certificate now required"
    );
    let (_, key, der) = client_ca.leaf(&["alice"], 5);
    let mut tls = connect(addr, &client(&s.ca, ALL, Some((der, key))), "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn sighup_rotates_the_certificate_for_new_connections_only() {
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &["--idle-timeout", "30"]);
    let config = client(&s.ca, ALL, None);
    let mut open: Vec<Tls> = (0..4)
        .map(|_| connect(addr, &config, "a.example"))
        .collect();
    for tls in &mut open {
        assert!(request(tls, "/").unwrap().starts_with("HTTP/1.1 200"));
        assert_eq!(serial(tls), vec![1]);
    }
    let (cert, key, _) = s.ca.leaf(&["a.example"], 2);
    write(s.dir.path(), "cert.pem", &cert);
    write(s.dir.path(), "key.pem", &key);
    server.signal(libc::SIGHUP);
    server.await_log(&["configuration reloaded"]);
    for tls in &mut open {
        assert!(request(tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    }
    for _ in 0..4 {
        // A new client: a resumed session would not show the server's certificate again.
        let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
        assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
        assert_eq!(serial(&tls), vec![2]);
    }
    // The ticket keys outlive the rotation: the first client's session resumes.
    let mut tls = connect(addr, &config, "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    server.await_log(&["\"response\"", "\"tls_resumed\":true"]);

    // A certificate that does not parse is refused, naming its file; the last good one stays.
    write(
        s.dir.path(),
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nnonsense\n",
    );
    server.signal(libc::SIGHUP);
    let line = server.await_log(&["configuration refused"]);
    assert!(line.contains(&*s.cert.to_string_lossy()), "{line}");
    let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
    assert!(request(&mut tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(serial(&tls), vec![2]);
    for tls in &mut open {
        assert!(request(tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    }
}

#[test]
fn a_plain_request_on_the_tls_port_gets_a_plain_400() {
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &[]);
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .unwrap();
    let answer = read_to_close(&mut socket);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("https://"), "{answer}");
    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"plain_http\"}"
        ),
        1
    );
}

#[test]
fn a_stalled_handshake_is_closed_at_the_read_timeout() {
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &["--read-timeout", "1"]);
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    // The start of a ClientHello record, and nothing more.
    socket
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"timeout\"}"
        ),
        1,
        "{scrape}"
    );
}

#[test]
fn a_drain_sends_close_notify_and_exits_0() {
    let s = setup(&["a.example"], 1);
    let (mut server, addr) = serve(
        &s.cert,
        &s.key,
        &["--idle-timeout", "30", "--log-level", "debug"],
    );
    let config = client(&s.ca, ALL, None);
    let mut open: Vec<Tls> = (0..3)
        .map(|_| connect(addr, &config, "a.example"))
        .collect();
    for tls in &mut open {
        assert!(request(tls, "/").unwrap().starts_with("HTTP/1.1 200"));
    }
    server.signal(libc::SIGTERM);
    for tls in &mut open {
        // A clean end: rustls reports `close_notify` as the end of the stream, and a close
        // without one as an error.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("close_notify");
        assert!(rest.is_empty());
    }
    let status = server.wait(LIMIT).expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn healthcheck_probes_a_server_whose_only_traffic_listener_is_tls() {
    let s = setup(&["a.example"], 1);
    let (_server, addr) = serve(&s.cert, &s.key, &[]);
    let out = crate::common::binary()
        .args(["healthcheck", "--tls-listen", &addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // A plain probe of the TLS port gets the plain 400, a failed probe.
    let out = crate::common::binary()
        .args(["healthcheck", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn check_reads_the_certificates_and_names_a_bad_one() {
    let s = setup(&["a.example"], 1);
    let (_, other_key, _) = s.ca.leaf(&["b.example"], 2);
    let other_key = write(s.dir.path(), "other.key", &other_key);
    let run = |key: &Path| {
        crate::common::binary()
            .args(["--check", "--tls-listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&s.cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap()
    };
    assert!(run(&s.key).status.success());
    let out = run(&other_key);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*s.cert.to_string_lossy()), "{stderr}");
}

#[test]
fn the_watch_rotates_the_certificate_without_a_signal() {
    let s = setup(&["a.example"], 1);
    let config = format!(
        "watch = true\nwatch_debounce = \"100ms\"\ntls_listen = \"127.0.0.1:0\"\n\
         [tls]\ncert = {:?}\nkey = {:?}\n",
        s.cert, s.key
    );
    let server = Server::with_config(&config, &[]);
    let addr = tls_addr(&server);
    let serial_now = || {
        let mut tls = connect(addr, &client(&s.ca, ALL, None), "a.example");
        request(&mut tls, "/").ok().map(|_| serial(&tls))
    };
    assert_eq!(serial_now(), Some(vec![1]));
    let (cert, key, _) = s.ca.leaf(&["a.example"], 2);
    write(s.dir.path(), "key.pem", &key);
    write(s.dir.path(), "cert.pem", &cert);
    let started = Instant::now();
    // The two files may be seen apart (a key without its certificate is refused): wait for both.
    while serial_now() != Some(vec![2]) {
        assert!(
            started.elapsed() < LIMIT,
            "no rotation: {:#?}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.await_log(&["configuration reloaded", "\"cause\":\"watch\""]);
}

#[test]
fn a_flood_of_half_finished_handshakes_costs_bounded_memory_and_cpu() {
    // Each flooding connection takes a descriptor here and one in the server.
    let fd_limit = responder::sys::raise_fd_limit().unwrap();
    let flood_size = 1000.min(fd_limit.saturating_sub(200) as usize);
    assert!(
        flood_size >= 500,
        "a descriptor limit too low for this test"
    );
    let s = setup(&["a.example"], 1);
    let (server, addr) = serve(&s.cert, &s.key, &["--read-timeout", "2"]);
    let config = client(&s.ca, ALL, None);
    let served = |label: &str| {
        let mut tls = connect(addr, &config, "a.example");
        let answer = request(&mut tls, "/").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{label}: {answer}");
    };
    served("before the flood");
    // The first half of a real ClientHello: a record the server must keep waiting for.
    let mut hello = Vec::new();
    let name = ServerName::try_from("a.example").unwrap();
    let mut conn = ClientConnection::new(Arc::clone(&config), name).unwrap();
    conn.write_tls(&mut hello).unwrap();
    let half = &hello[..hello.len() / 2];
    let baseline = rss_kib(server.pid());
    let ticks = cpu_ticks(server.pid());
    let mut flood: Vec<TcpStream> = (0..flood_size)
        .map(|_| {
            let mut socket = TcpStream::connect(addr).unwrap();
            socket.write_all(half).unwrap();
            socket
        })
        .collect();
    served("during the flood");
    std::thread::sleep(Duration::from_millis(300));
    let flooded = rss_kib(server.pid());
    let per_connection = flooded.saturating_sub(baseline) as f64 / flood_size as f64;
    eprintln!("RSS: {baseline} KiB before, {flooded} KiB with {flood_size} half handshakes");
    assert!(
        per_connection < 16.0,
        "{per_connection:.1} KiB per half-finished handshake"
    );
    // The read timeout cuts every one of them, with at most an alert record (`close_notify`).
    for socket in &mut flood {
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        assert!(rest.is_empty() || rest[0] == 0x15, "{rest:?}");
    }
    let used = cpu_ticks(server.pid()) - ticks;
    assert!(
        used < 2 * ticks_per_second(),
        "{used} ticks of CPU for {flood_size} half handshakes"
    );
    served("after the flood");
    let scrape = metrics(&server);
    assert_eq!(
        metric(
            &scrape,
            "responder_tls_handshake_failures_total{reason=\"timeout\"}"
        ),
        flood_size as u64,
        "{scrape}"
    );
}
