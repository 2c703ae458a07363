//! One TLS connection's state, driven by the connection's readiness events: ciphertext read from
//! the socket into rustls, plaintext handed up, answers encrypted and written as far as the
//! socket takes them, the rest kept for the next writable edge.
//!
//! The socket, the deadlines and the HTTP are the connection's (`serve::connection`); this
//! module only turns bytes one way and the other, and says when the handshake ended and how.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::facts::Facts;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

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
pub struct Session {
    tls: ServerConnection,
    /// Taken when the handshake ends.
    facts: Option<Facts>,
    /// No byte came in yet: the first one tells TLS from plain HTTP.
    fresh: bool,
}

impl Session {
    pub fn new(config: Arc<ServerConfig>) -> Result<Session, rustls::Error> {
        let mut tls = ServerConnection::new(config)?;
        // The connection stops parsing while output waits (`has_pending_output`), which bounds
        // what is buffered here.
        tls.set_buffer_limit(None);
        Ok(Session {
            tls,
            facts: None,
            fresh: true,
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
                self.facts = Some(Facts::of(&self.tls));
                return Ok(Input::Handshaken);
            }
            match self.tls.reader().read(buf) {
                Ok(0) => return Ok(Input::Closed),
                Ok(n) => return Ok(Input::Plain(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(Input::Closed),
                Err(e) => return Err(e),
            }
            let mut sniff = Sniff {
                socket: &mut *socket,
                first: None,
            };
            match self.tls.read_tls(&mut sniff) {
                Ok(0) => return Ok(Input::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Input::Blocked),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if std::mem::take(&mut self.fresh)
                && sniff
                    .first
                    .is_some_and(|b| b != HANDSHAKE_RECORD && b.is_ascii_uppercase())
            {
                return Ok(Input::Failed {
                    failure: Failure::PlainHttp,
                    error: None,
                });
            }
            if let Err(error) = self.tls.process_new_packets() {
                // The alert rustls queued tells the client why; best effort, the close follows.
                let _ = self.flush(socket);
                return Ok(Input::Failed {
                    failure: Failure::of(&error),
                    error: Some(error),
                });
            }
            self.flush(socket)?;
        }
    }

    /// Encrypts `data` and writes what the socket takes; the rest waits for [`Session::flush`].
    pub fn write<S: Write>(&mut self, socket: &mut S, data: &[u8]) -> io::Result<usize> {
        self.tls.writer().write_all(data)?;
        self.flush(socket)
    }

    /// Writes pending records until the socket would block; returns the bytes written.
    pub fn flush<S: Write>(&mut self, socket: &mut S) -> io::Result<usize> {
        let mut total = 0;
        while self.tls.wants_write() {
            match self.tls.write_tls(socket) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Whether records wait for the socket.
    pub fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Queues `close_notify` and writes it with what is pending, as far as the socket takes.
    pub fn close_notify<S: Write>(&mut self, socket: &mut S) -> io::Result<usize> {
        self.tls.send_close_notify();
        self.flush(socket)
    }
}

/// The socket as rustls reads it, remembering the first byte of the first read.
struct Sniff<'a, S> {
    socket: &'a mut S,
    first: Option<u8>,
}

impl<S: Read> Read for Sniff<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        if self.first.is_none() && n > 0 {
            self.first = Some(buf[0]);
        }
        Ok(n)
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
