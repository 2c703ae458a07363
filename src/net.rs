//! Sockets and descriptors at start: the listening sockets with the article's options (backlog,
//! `SO_REUSEADDR`, and `SO_REUSEPORT` so each worker has its own accept queue), the descriptors
//! kept out of the connection budget (`reserved_fds`), the accept errors that mean exhaustion,
//! and `AddrText`. Raising `RLIMIT_NOFILE` is `sys`'s; accepted sockets are
//! `serve::connection`'s.

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

/// Descriptors each worker holds besides its connections and listeners: epoll, waker.
const FDS_PER_WORKER: u64 = 2;
/// Room kept for the supervisor (epoll, waker, signal pipe), a refused connection's moment, and
/// reading the configuration on reload.
const FDS_MARGIN: u64 = 16;

/// Descriptors to keep out of the connection budget: those open now, each worker's own (and
/// `beside` more per worker: its listeners, and the admin connections it may hold), and a margin.
pub fn reserved_fds(workers: usize, beside: u64) -> u64 {
    let open_now = std::fs::read_dir("/proc/self/fd").map_or(16, |dir| dir.count() as u64);
    open_now + (FDS_PER_WORKER + beside) * workers as u64 + FDS_MARGIN
}

/// A listener that could not be set up, naming the address.
#[derive(Debug)]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for BindError {}

pub struct ListenOptions {
    pub addr: SocketAddr,
    pub backlog: u32,
    pub reuse_address: bool,
    /// Set on the listener, where Linux hands it on to every accepted socket: one `setsockopt`
    /// at start instead of one per connection.
    pub tcp_nodelay: bool,
}

/// Binds `count` listeners on one address. With more than one, each gets `SO_REUSEPORT` and the
/// kernel spreads new connections over their accept queues; the first one's port is reused by the
/// others so that port 0 works.
pub fn bind_listeners(
    options: &ListenOptions,
    count: usize,
) -> Result<Vec<TcpListener>, BindError> {
    let shared = count > 1;
    let first = bind_one(options.addr, options, shared)?;
    let addr = first.local_addr().map_err(|source| BindError {
        addr: options.addr,
        source,
    })?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_one(addr, options, shared)?);
    }
    Ok(listeners)
}

fn bind_one(
    addr: SocketAddr,
    options: &ListenOptions,
    shared: bool,
) -> Result<TcpListener, BindError> {
    let fail = |source| BindError { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    socket
        .set_reuse_address(options.reuse_address)
        .map_err(fail)?;
    if shared {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    if addr.is_ipv6() {
        // Explicitly dual-stack, whatever net.ipv6.bindv6only says: `[::]` takes IPv4 too.
        socket.set_only_v6(false).map_err(fail)?;
    }
    socket.set_nonblocking(true).map_err(fail)?;
    socket.set_nodelay(options.tcp_nodelay).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    let backlog = i32::try_from(options.backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).map_err(fail)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// True for accept errors that mean "out of descriptors or memory": retrying at once would spin,
/// and waiting for the next edge could wait forever, so the caller backs off on a timer.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A peer's address as `Display` writes it (`a.b.c.d:port`, `[v6]:port`), written into a
/// buffer of its own (or appended to a line): IPv4 from a table of octets' digits, as the peer's
/// address is on every access line; IPv6 through `fmt`. The one formatter of addresses for logs
/// and templates.
pub struct AddrText {
    text: [u8; AddrText::MAX],
    len: usize,
}

impl AddrText {
    /// `[` 45 characters of IPv6 with a scope `%` and ten digits `]:` five digits.
    const MAX: usize = 64;

    pub fn of(addr: SocketAddr) -> AddrText {
        let mut text = AddrText {
            text: [0; AddrText::MAX],
            len: 0,
        };
        match addr {
            SocketAddr::V4(v4) => {
                let (digits, len) = v4_text(v4);
                text.text[..len].copy_from_slice(&digits[..len]);
                text.len = len;
            }
            SocketAddr::V6(v6) => {
                let mut cursor = std::io::Cursor::new(&mut text.text[..]);
                // What does not fit is cut; the longest address fits.
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v6}"));
                text.len = cursor.position() as usize;
            }
        }
        text
    }

    /// Appends the text of `addr` to `out`: an IPv4 address (an access line's usual peer) without
    /// the buffer `of` fills and returns.
    pub fn append(addr: SocketAddr, out: &mut Vec<u8>) {
        match addr {
            SocketAddr::V4(v4) => {
                // All 21 bytes, then the length: a copy of known size, done in two moves, is
                // cheaper than a call to copy a variable length.
                let start = out.len();
                let (text, len) = v4_text(v4);
                out.extend_from_slice(&text);
                out.truncate(start + len);
            }
            SocketAddr::V6(_) => out.extend_from_slice(AddrText::of(addr).as_bytes()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// `a.b.c.d:port`, at most 21 bytes, and its length.
fn v4_text(v4: SocketAddrV4) -> ([u8; 21], usize) {
    let mut text = [0; 21];
    let mut len = 0;
    for octet in v4.ip().octets() {
        // Four bytes each, of which the octet's digits and its dot count: a lookup and one
        // store instead of a division and a store per digit.
        text[len..len + 4].copy_from_slice(&OCTETS[usize::from(octet)]);
        len += digits(u32::from(octet)) + 1;
    }
    // The last octet's dot.
    text[len - 1] = b':';
    let mut port = v4.port();
    let port_len = digits(u32::from(port));
    for at in (len..len + port_len).rev() {
        text[at] = b'0' + (port % 10) as u8;
        port /= 10;
    }
    (text, len + port_len)
}

/// How many decimal digits `n` (below 100 000) has.
fn digits(n: u32) -> usize {
    1 + usize::from(n >= 10)
        + usize::from(n >= 100)
        + usize::from(n >= 1000)
        + usize::from(n >= 10_000)
}

/// Each octet's decimal digits and a dot, padded to four bytes.
const OCTETS: [[u8; 4]; 256] = {
    let mut table = [[0; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let digits = [(n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8];
        let skip = if n >= 100 {
            0
        } else if n >= 10 {
            1
        } else {
            2
        };
        let mut at = 0;
        while skip + at < 3 {
            table[n][at] = b'0' + digits[skip + at];
            at += 1;
        }
        table[n][at] = b'.';
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-connection `setsockopt` is skipped on the strength of this inheritance.
    #[test]
    fn accepted_sockets_inherit_tcp_nodelay_from_the_listener() {
        for nodelay in [true, false] {
            let options = ListenOptions {
                addr: "127.0.0.1:0".parse().unwrap(),
                backlog: 16,
                reuse_address: true,
                tcp_nodelay: nodelay,
            };
            let listener = bind_listeners(&options, 1).unwrap().remove(0);
            let addr = listener.local_addr().unwrap();
            let _client = std::net::TcpStream::connect(addr).unwrap();
            let accepted = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(accepted.nodelay().unwrap(), nodelay);
        }
    }

    #[test]
    fn every_octet_and_port_length_is_written_as_display_writes_it() {
        for octet in 0..=255u8 {
            for port in [0, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 65_535] {
                let addr = SocketAddr::from(([octet, 255 - octet, octet / 3, 7], port));
                let mut appended = Vec::new();
                AddrText::append(addr, &mut appended);
                assert_eq!(appended, addr.to_string().as_bytes());
            }
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for addr in [
            "0.0.0.0:0",
            "127.0.0.1:8080",
            "10.20.100.255:65535",
            "9.99.199.200:1",
            "[::1]:8080",
            "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:65535",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(AddrText::of(addr).as_bytes(), addr.to_string().as_bytes());
            let mut appended = b"x".to_vec();
            AddrText::append(addr, &mut appended);
            assert_eq!(appended[1..], *addr.to_string().as_bytes());
        }
    }
}
