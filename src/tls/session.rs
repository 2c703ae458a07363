//! One TLS connection's state, driven by the connection's readiness events: ciphertext read from
//! the socket into rustls, plaintext handed up, answers encrypted and written as far as the
//! socket takes them, the rest kept for the next writable edge.
//!
//! The socket, the deadlines and the HTTP are the connection's (`serve::connection`); this
//! module only turns bytes one way and the other, and says when the handshake ended and how. It
//! keeps the ciphertext waiting on either side itself (rustls's unbuffered connection), so that
//! an idle session holds no buffer.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, ReadTraffic,
    UnbufferedStatus, WriteTraffic,
};
use rustls::ServerConfig;

use super::facts::Facts;
use super::resolve;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// The most plaintext one record carries.
const MAX_FRAGMENT: usize = 16 * 1024;

/// A record's header, and the most its protection adds (a tag, TLS 1.3's content type, TLS
/// 1.2's explicit nonce).
const RECORD_OVERHEAD: usize = 5 + 32;

/// The most ciphertext kept unprocessed: a handshake message as long as rustls takes one
/// (64 KiB, as it bounds its own buffer), and the largest record TLS allows after it.
const MAX_INCOMING: usize = 0xffff + 5 + MAX_FRAGMENT + 2048;

/// What a TLS listener answers a plain HTTP request with, as nginx does, before it closes.
pub const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 45\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use https:// for it.\n";

/// Why a handshake failed, as counted (`responder_tls_handshake_failures_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The first bytes were a plain HTTP request.
    PlainHttp,
    /// Records that are not TLS, or malformed ones.
    BadRecord,
    /// Nothing in common: an old version (TLS 1.1 and before), no shared cipher suite, group or
    /// application protocol.
    Incompatible,
    /// `client_auth = "require"` and the client sent no certificate.
    NoClientCertificate,
    /// A client certificate the CA did not sign, expired, or unusable.
    BadClientCertificate,
    /// The client refused the handshake (e.g. it does not trust the server's certificate).
    AlertReceived,
    /// The client closed before the handshake ended.
    Closed,
    /// It did not end within the read timeout.
    Timeout,
    Other,
}

impl Failure {
    pub const ALL: [Failure; 9] = [
        Failure::PlainHttp,
        Failure::BadRecord,
        Failure::Incompatible,
        Failure::NoClientCertificate,
        Failure::BadClientCertificate,
        Failure::AlertReceived,
        Failure::Closed,
        Failure::Timeout,
        Failure::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Failure::PlainHttp => "plain_http",
            Failure::BadRecord => "bad_record",
            Failure::Incompatible => "incompatible",
            Failure::NoClientCertificate => "no_client_certificate",
            Failure::BadClientCertificate => "bad_client_certificate",
            Failure::AlertReceived => "alert_received",
            Failure::Closed => "closed",
            Failure::Timeout => "timeout",
            Failure::Other => "other",
        }
    }

    fn of(e: &rustls::Error) -> Failure {
        use rustls::Error as E;
        match e {
            E::InvalidMessage(_) | E::DecryptError | E::InappropriateMessage { .. } => {
                Failure::BadRecord
            }
            E::InappropriateHandshakeMessage { .. } | E::PeerMisbehaved(_) => Failure::BadRecord,
            E::PeerIncompatible(_) | E::NoApplicationProtocol => Failure::Incompatible,
            E::NoCertificatesPresented => Failure::NoClientCertificate,
            E::InvalidCertificate(_) => Failure::BadClientCertificate,
            E::AlertReceived(_) => Failure::AlertReceived,
            _ => Failure::Other,
        }
    }
}

/// What a read gave.
#[derive(Debug)]
pub enum Input {
    /// This many bytes of plaintext are at the start of the buffer.
    Plain(usize),
    /// The handshake just ended: [`Session::facts`] has what it agreed. Read on.
    Handshaken,
    /// Nothing more until the next readable edge.
    Blocked,
    /// The peer closed (with `close_notify` or without).
    Closed,
    /// The peer's bytes are not acceptable TLS; an alert saying why is queued (for a plain HTTP
    /// request: nothing, the caller answers it in plain).
    Failed {
        failure: Failure,
        error: Option<rustls::Error>,
    },
}

/// A TLS connection's state, boxed on the connection that has one (never on a plain one).
///
/// rustls's unbuffered connection keeps the keys and the protocol state; the ciphertext on
/// either side is kept here, and only while there is some: an idle connection holds no buffer.
/// (rustls's buffered connection keeps a read buffer of a page or more for its whole life,
/// more than everything else an idle connection holds.)
pub struct Session {
    tls: UnbufferedServerConnection,
    /// Ciphertext read and not processed yet: a record's start. Unallocated when empty.
    incoming: Vec<u8>,
    /// Records the socket did not take yet. Unallocated when empty.
    outgoing: Vec<u8>,
    /// Plaintext decrypted but not handed up yet (more than the caller's buffer took, or what
    /// came with the end of the handshake). Unallocated when empty.
    plain: Vec<u8>,
    /// The name the client asked for, caught while its handshake chose a certificate (the
    /// unbuffered connection does not say it): until the handshake ends.
    sni: Option<String>,
    /// Taken when the handshake ends.
    facts: Option<Facts>,
    /// The peer sent `close_notify`: nothing more comes.
    peer_closed: bool,
    /// No byte came in yet: the first one tells TLS from plain HTTP.
    fresh: bool,
    /// It failed: its alert is queued, and nothing more is read or sealed.
    broken: bool,
}

/// How far processing the ciphertext got.
enum Step {
    /// This many bytes of plaintext are at the start of the caller's buffer (perhaps none).
    Plain(usize),
    /// The peer sent `close_notify`.
    PeerClosed,
    Failed(rustls::Error),
}

/// What is sealed into records.
#[derive(Clone, Copy)]
enum Seal<'a> {
    Data(&'a [u8]),
    CloseNotify,
}

impl Session {
    pub fn new(config: Arc<ServerConfig>) -> Result<Session, rustls::Error> {
        Ok(Session {
            tls: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            plain: Vec::new(),
            sni: None,
            facts: None,
            peer_closed: false,
            fresh: true,
            broken: false,
        })
    }

    /// What the handshake agreed, once it ended.
    pub fn facts(&self) -> Option<&Facts> {
        self.facts.as_ref()
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Reads what the socket holds, answers the handshake, and copies plaintext into `buf`.
    pub fn read<S: Read + Write>(&mut self, socket: &mut S, buf: &mut [u8]) -> io::Result<Input> {
        loop {
            if self.facts.is_none() && !self.tls.is_handshaking() {
                self.facts = Some(Facts::of(&self.tls, self.sni.take()));
                return Ok(Input::Handshaken);
            }
            if !self.plain.is_empty() {
                let n = self.plain.len().min(buf.len());
                buf[..n].copy_from_slice(&self.plain[..n]);
                self.plain.drain(..n);
                release_if_empty(&mut self.plain);
                return Ok(Input::Plain(n));
            }
            if self.peer_closed {
                return Ok(Input::Closed);
            }
            if self.broken {
                return Err(broken());
            }
            match self.process(buf) {
                // The handshake may have ended with plaintext behind it: report both first.
                Step::Plain(0)
                    if !self.plain.is_empty()
                        || (self.facts.is_none() && !self.tls.is_handshaking()) =>
                {
                    self.flush(socket)?;
                    continue;
                }
                Step::Plain(0) => {}
                Step::Plain(n) => {
                    self.flush(socket)?;
                    return Ok(Input::Plain(n));
                }
                Step::PeerClosed => {
                    self.peer_closed = true;
                    continue;
                }
                Step::Failed(error) => {
                    // The alert rustls queued tells the client why; best effort, the close follows.
                    self.queue_alerts();
                    let _ = self.flush(socket);
                    return Ok(Input::Failed {
                        failure: Failure::of(&error),
                        error: Some(error),
                    });
                }
            }
            self.flush(socket)?;
            if self.incoming.len() >= MAX_INCOMING {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    "TLS message buffer full",
                ));
            }
            // The caller's buffer is free: the ciphertext goes there first, and only what is
            // read is kept.
            let room = buf.len().min(MAX_INCOMING - self.incoming.len());
            let n = match socket.read(&mut buf[..room]) {
                Ok(0) => return Ok(Input::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Waiting: keep no more than the record's start.
                    self.incoming.shrink_to_fit();
                    return Ok(Input::Blocked);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if std::mem::take(&mut self.fresh)
                && buf[0] != HANDSHAKE_RECORD
                && buf[0].is_ascii_uppercase()
            {
                return Ok(Input::Failed {
                    failure: Failure::PlainHttp,
                    error: None,
                });
            }
            self.incoming.extend_from_slice(&buf[..n]);
        }
    }

    /// Processes every whole record `incoming` holds: handshake messages are answered into
    /// `outgoing`, plaintext is copied into `buf` (into `plain` once `buf` is full, or while the
    /// end of the handshake is still to be reported).
    fn process(&mut self, buf: &mut [u8]) -> Step {
        let mut filled = 0;
        loop {
            let handshaking = self.tls.is_handshaking();
            if handshaking {
                resolve::take_requested_name();
            }
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(&mut self.incoming);
            if handshaking {
                if let Some(name) = resolve::take_requested_name() {
                    self.sni = Some(name);
                }
            }
            let step = match state {
                Err(error) => Some(Step::Failed(error)),
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    let direct = self.facts.is_some();
                    take_records(&mut records, direct, buf, &mut filled, &mut self.plain)
                        .err()
                        .map(Step::Failed)
                }
                // Early data is never accepted (the configuration allows none): dropped.
                Ok(ConnectionState::ReadEarlyData(mut records)) => {
                    while records.next_record().is_some() {}
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut data, &mut self.outgoing)
                        .err()
                        .map(Step::Failed)
                }
                // What was encoded is in `outgoing`, which the caller writes in order.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    None
                }
                Ok(ConnectionState::PeerClosed) if filled == 0 => Some(Step::PeerClosed),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Some(Step::Plain(filled))
                }
                // Waiting for the peer's next record.
                Ok(_) => Some(Step::Plain(filled)),
            };
            self.incoming.drain(..discard);
            release_if_empty(&mut self.incoming);
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// After an error: encodes the alert rustls queued for the peer, and nothing more (the
    /// session is done: the bytes that failed are never processed again).
    fn queue_alerts(&mut self) {
        self.broken = true;
        while self.tls.wants_write() {
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(&mut self.incoming);
            let encoded = match state {
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut data, &mut self.outgoing).is_ok()
                }
                _ => false,
            };
            self.incoming.drain(..discard);
            if !encoded {
                return;
            }
        }
    }

    /// Seals `what` into records at the end of `outgoing`, once the handshake is done; records
    /// that come in meanwhile are processed, their plaintext kept for the next read.
    fn seal(&mut self, what: Seal<'_>) -> io::Result<()> {
        if self.broken {
            return Err(broken());
        }
        loop {
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(&mut self.incoming);
            let outcome: Option<io::Result<()>> = match state {
                Err(error) => Some(Err(io::Error::new(ErrorKind::InvalidData, error))),
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    take_records(&mut records, false, &mut [], &mut 0, &mut self.plain)
                        .err()
                        .map(|e| Err(io::Error::new(ErrorKind::InvalidData, e)))
                }
                Ok(ConnectionState::ReadEarlyData(mut records)) => {
                    while records.next_record().is_some() {}
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut data, &mut self.outgoing)
                        .err()
                        .map(|e| Err(io::Error::new(ErrorKind::InvalidData, e)))
                }
                Ok(ConnectionState::TransmitTlsData(mut transmit)) => {
                    let sealed = transmit
                        .may_encrypt_app_data()
                        .map(|mut traffic| seal_into(&mut traffic, what, &mut self.outgoing));
                    transmit.done();
                    sealed
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    Some(seal_into(&mut traffic, what, &mut self.outgoing))
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                // Both sides closed already: a `close_notify` went out before.
                Ok(ConnectionState::Closed) if matches!(what, Seal::CloseNotify) => Some(Ok(())),
                // During the handshake nothing is sealed: a close before its end is the TCP
                // close alone.
                Ok(ConnectionState::BlockedHandshake) if matches!(what, Seal::CloseNotify) => {
                    Some(Ok(()))
                }
                Ok(_) => Some(Err(io::Error::new(
                    ErrorKind::NotConnected,
                    "no TLS application data can be sent now",
                ))),
            };
            self.incoming.drain(..discard);
            release_if_empty(&mut self.incoming);
            if let Some(outcome) = outcome {
                if outcome.is_err() {
                    self.queue_alerts();
                }
                return outcome;
            }
        }
    }

    /// Encrypts `data` and writes what the socket takes; the rest waits for [`Session::flush`].
    pub fn write<S: Write>(&mut self, socket: &mut S, data: &[u8]) -> io::Result<usize> {
        if !data.is_empty() {
            self.seal(Seal::Data(data))?;
        }
        self.flush(socket)
    }

    /// Writes pending records until the socket would block; returns the bytes written.
    pub fn flush<S: Write>(&mut self, socket: &mut S) -> io::Result<usize> {
        let mut total = 0;
        while total < self.outgoing.len() {
            match socket.write(&self.outgoing[total..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing.drain(..total);
        release_if_empty(&mut self.outgoing);
        Ok(total)
    }

    /// Whether records wait for the socket.
    pub fn has_pending_output(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Queues `close_notify` and writes it with what is pending, as far as the socket takes.
    pub fn close_notify<S: Write>(&mut self, socket: &mut S) -> io::Result<usize> {
        // A session that failed already sent its alert: nothing more is sealed.
        let _ = self.seal(Seal::CloseNotify);
        self.flush(socket)
    }
}

fn broken() -> io::Error {
    io::Error::new(ErrorKind::InvalidData, "the TLS session failed")
}

/// Frees a buffer that holds nothing, so that a waiting connection holds none.
fn release_if_empty(buffer: &mut Vec<u8>) {
    if buffer.is_empty() && buffer.capacity() > 0 {
        *buffer = Vec::new();
    }
}

/// Takes every decrypted record `records` holds, in order: into `buf` after its first `filled`
/// bytes while `direct` and nothing waits in `plain` ahead of them, the rest onto `plain`.
fn take_records(
    records: &mut ReadTraffic<'_, '_, ServerConnectionData>,
    direct: bool,
    buf: &mut [u8],
    filled: &mut usize,
    plain: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    while let Some(record) = records.next_record() {
        let payload = record?.payload;
        let n = if direct && plain.is_empty() {
            payload.len().min(buf.len() - *filled)
        } else {
            0
        };
        buf[*filled..*filled + n].copy_from_slice(&payload[..n]);
        *filled += n;
        plain.extend_from_slice(&payload[n..]);
    }
    Ok(())
}

/// Appends the handshake records rustls has ready to `out`.
fn encode(
    data: &mut EncodeTlsData<'_, ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    // Asked with no room, rustls says how much the records take.
    append_grown(
        out,
        0,
        |room| data.encode(room),
        |e| match e {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        },
    )
    .map_err(|e| rustls::Error::General(e.to_string()))
}

/// Appends `what`, sealed into records, to `out`.
fn seal_into(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    what: Seal<'_>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let room = match what {
        Seal::Data(data) => data.len() + (data.len() / MAX_FRAGMENT + 1) * RECORD_OVERHEAD,
        Seal::CloseNotify => RECORD_OVERHEAD,
    };
    append_grown(
        out,
        room,
        |room| match what {
            Seal::Data(data) => traffic.encrypt(data, room),
            Seal::CloseNotify => traffic.queue_close_notify(room),
        },
        |e| match e {
            // Handshake records (session tickets) go out first, and take room too.
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        },
    )
    .map_err(io::Error::other)
}

/// Appends to `out` what `write` puts into the room it is given: `room` bytes at first, then as
/// many as `needs` reads from an error that says the room was too small. On any other error
/// `out` is as it was.
fn append_grown<E>(
    out: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needs(&e) {
                Some(required) if required > room => room = required,
                _ => {
                    out.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A socket that gives `input` in reads of at most `chunk` bytes, then would block, and
    /// takes every write.
    struct Scripted {
        input: Vec<u8>,
        chunk: usize,
        written: usize,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn server() -> Session {
        let shared = crate::tls::Shared::new().expect("shared");
        let tls = crate::tls::Tls::load(&crate::config::TlsConfig::default(), &shared)
            .expect("self-signed");
        Session::new(tls.config).expect("session")
    }

    /// A real ClientHello, as a rustls client writes it.
    fn client_hello() -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut hello = Vec::new();
        client.write_tls(&mut hello).expect("hello");
        hello
    }

    /// Drives the session over the input: it must end blocked, closed or failed, never hand
    /// plaintext up before a handshake, never spin, never panic.
    fn drive(input: Vec<u8>, chunk: usize) {
        let mut session = server();
        let mut socket = Scripted {
            input,
            chunk,
            written: 0,
        };
        let mut buf = vec![0; 4096];
        // One read takes in all the input it can (a bounded loop inside).
        match session.read(&mut socket, &mut buf).expect("no I/O error") {
            Input::Plain(n) => panic!("{n} bytes of plaintext without a handshake"),
            Input::Handshaken => panic!("a handshake from random bytes"),
            Input::Blocked | Input::Closed | Input::Failed { .. } => {}
        }
    }

    /// A handshake and a request over loopback, then nothing: the session keeps no buffer.
    #[test]
    fn an_idle_session_holds_no_buffer() {
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};

        let shared = crate::tls::Shared::new().expect("shared");
        let tls = crate::tls::Tls::load(&crate::config::TlsConfig::default(), &shared)
            .expect("self-signed");
        let mut roots = rustls::RootCertStore::empty();
        let leaf = shared.self_signed().expect("self-signed").key.cert[0].clone();
        roots.add(leaf).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bound");
        let socket = TcpStream::connect(listener.local_addr().expect("addr")).expect("conn");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let peer = std::thread::spawn(move || {
            let mut tls = rustls::StreamOwned::new(client, socket);
            tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("request");
            let mut answer = [0; 5];
            tls.read_exact(&mut answer).expect("answer");
            // Kept open until the server has looked at its idle session.
            let mut rest = Vec::new();
            let _ = tls.sock.read_to_end(&mut rest);
            answer
        });
        let (mut server_socket, _) = listener.accept().expect("accepted");
        server_socket.set_nonblocking(true).expect("nonblocking");
        let mut session = Session::new(tls.config).expect("session");
        let mut buf = vec![0; 4096];
        let mut request = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !request.ends_with(b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no request");
            match session.read(&mut server_socket, &mut buf).expect("read") {
                Input::Plain(n) => request.extend_from_slice(&buf[..n]),
                Input::Handshaken | Input::Blocked => std::thread::sleep(Duration::from_millis(1)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(session.facts().map(|f| f.sni.as_str()), Some("localhost"));
        session
            .write(&mut server_socket, b"HTTP/1.1 200 OK\r\n\r\n")
            .expect("written");
        assert!(!session.has_pending_output());
        assert!(matches!(
            session.read(&mut server_socket, &mut buf).expect("read"),
            Input::Blocked
        ));
        let held = [&session.incoming, &session.outgoing, &session.plain];
        assert!(
            held.iter().all(|b| b.capacity() == 0),
            "{:?}",
            held.map(Vec::capacity)
        );
        drop(server_socket);
        assert_eq!(&peer.join().expect("client"), b"HTTP/");
    }

    /// Reads and writes in memory: what the client sent, and what the server wrote.
    struct Pipe {
        input: Vec<u8>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A client's last handshake flight and its request in one read: the end of the handshake
    /// and the request both come out of that read, with no edge to wait for.
    #[test]
    fn a_request_behind_the_clients_finished_is_read_at_once() {
        let shared = crate::tls::Shared::new().expect("shared");
        let tls = crate::tls::Tls::load(&crate::config::TlsConfig::default(), &shared)
            .expect("self-signed");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(shared.self_signed().expect("self-signed").key.cert[0].clone())
            .expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut session = Session::new(tls.config).expect("session");
        let mut pipe = Pipe {
            input: Vec::new(),
            output: Vec::new(),
        };
        let mut buf = vec![0; 4096];
        client.write_tls(&mut pipe.input).expect("hello");
        assert!(matches!(
            session.read(&mut pipe, &mut buf).expect("read"),
            Input::Blocked
        ));
        let mut flight = &pipe.output[..];
        while !flight.is_empty() {
            client.read_tls(&mut flight).expect("flight");
        }
        client.process_new_packets().expect("accepted");
        pipe.output.clear();
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .expect("request");
        while client.wants_write() {
            client
                .write_tls(&mut pipe.input)
                .expect("finished and request");
        }
        assert!(matches!(
            session.read(&mut pipe, &mut buf).expect("read"),
            Input::Handshaken
        ));
        match session.read(&mut pipe, &mut buf).expect("read") {
            Input::Plain(n) => assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n"),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn random_bytes_end_in_a_failure_or_a_wait(
            input in proptest::collection::vec(any::<u8>(), 0..2048),
            chunk in 1usize..512,
        ) {
            drive(input, chunk);
        }

        #[test]
        fn a_truncated_or_damaged_hello_ends_in_a_failure_or_a_wait(
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bits in any::<u8>(),
            chunk in 1usize..512,
        ) {
            let mut hello = client_hello();
            let at = flip.index(hello.len());
            hello[at] ^= bits;
            hello.truncate(cut.index(hello.len()));
            drive(hello, chunk);
        }
    }
}
