//! Listening: one dual-stack socket for `[::]`, several addresses at once, each served by every
//! worker and all closed by a drain, and an address in use named.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{binary, field, read_to_close, status_of, temp_file, Killed, Server};

/// Every address the `listening` line names.
fn listening_on(server: &Server) -> Vec<SocketAddr> {
    let line = server.await_log(&["\"listening\""]);
    field(&line, "addrs")
        .unwrap_or_else(|| panic!("no addrs in {line}"))
        .split(", ")
        .map(|a| a.parse().unwrap_or_else(|_| panic!("{a} in {line}")))
        .collect()
}

fn get(addr: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(crate::common::LIMIT)).unwrap();
    std::io::Write::write_all(&mut s, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    read_to_close(&mut s)
}

#[test]
fn the_unspecified_ipv6_address_takes_ipv6_and_ipv4() {
    let server = Server::start(&["--listen", "[::]:0", "--workers", "2"]);
    let addrs = listening_on(&server);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let port = addrs[1].port();
    assert!(
        addrs[1].ip().is_unspecified() && addrs[1].is_ipv6(),
        "{addrs:?}"
    );
    for client in ["[::1]", "127.0.0.1"] {
        let addr: SocketAddr = format!("{client}:{port}").parse().unwrap();
        assert_eq!(status_of(&get(addr)), 200, "{addr}");
    }
}

#[test]
fn several_listeners_all_serve_and_all_close_in_a_drain() {
    let mut server = Server::start(&[
        "--listen",
        "127.0.0.2:0",
        "--listen",
        "127.0.0.3:0",
        "--workers",
        "2",
    ]);
    let addrs = listening_on(&server);
    assert_eq!(addrs.len(), 3, "{addrs:?}");
    for &addr in &addrs {
        assert_eq!(status_of(&get(addr)), 200, "{addr}");
    }
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
    for addr in addrs {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still open"
        );
    }
}

#[test]
fn the_file_takes_a_list_of_addresses() {
    let config = temp_file(
        "toml",
        b"listen = [\"127.0.0.2:0\", \"[::1]:0\"]\nworkers = 1\n",
    );
    let mut child = Killed(
        binary()
            .args(["--config", config.to_str().unwrap(), "--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("\"listening\""))
        .unwrap_or_default();
    let addrs: Vec<SocketAddr> = field(&line, "addrs")
        .unwrap_or_default()
        .split(", ")
        .filter_map(|a| a.parse().ok())
        .collect();
    assert_eq!(addrs.len(), 2, "{line}");
    for addr in addrs {
        assert_eq!(status_of(&get(addr)), 200, "{addr}");
    }
    let empty = temp_file("toml", b"listen = []\n");
    let out = binary()
        .args(["--check", "--config", empty.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && err.contains("empty"), "{err}");
}

#[test]
fn the_environment_takes_a_comma_separated_list() {
    let server = Server::start_with_env(&[], &[("RESPONDER_LISTEN", "127.0.0.4:0,127.0.0.5:0")]);
    // The helper's --listen beats the environment, as flags do.
    assert_eq!(listening_on(&server).len(), 1);
    let out = binary()
        .args(["--check"])
        .env("RESPONDER_LISTEN", "127.0.0.4:0,nonsense")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RESPONDER_LISTEN"), "{err}");
}

#[test]
fn an_address_in_use_among_several_exits_1_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = binary()
        .args([
            "--listen",
            "127.0.0.6:0",
            "--listen",
            &addr,
            "--log-format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
}
