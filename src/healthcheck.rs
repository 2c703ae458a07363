//! The `responder healthcheck` subcommand: one GET of the health path on the admin address when
//! one is configured (the probes are served only there), else on the first traffic address, for a
//! container `HEALTHCHECK` in an image that has no shell and no curl.
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
    let Some(listen) = config.admin_listen.or(config.listen.first().copied()) else {
        return Err("no address to check".into());
    };
    let addr = reachable(listen);
    let path = &config.endpoints.health_path;
    let fail = |e: std::io::Error| format!("http://{addr}{path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(fail)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
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
        Err(format!(
            "http://{addr}{path}: answered {:?}",
            status_line.trim_end()
        ))
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
