//! Listening: one dual-stack socket for `[::]`, several addresses at once, each served by every
//! worker and all closed by a drain, an address in use named, and the admin listener (probes and
//! metrics only, drained last).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{
    admin_addr, binary, field, read_to_close, status_of, temp_file, Killed, Server, LIMIT,
};

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
    get_path(addr, "/")
}

fn get_path(addr: SocketAddr, path: &str) -> String {
    get_path_with(addr, &format!("GET {path} HTTP/1.0"))
}

/// Sends `head` (a request line and any header lines) and reads until the server closes.
fn get_path_with(addr: SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    // One write: a server at its connection limit answers 503 and closes without waiting for the
    // request, so a second write (as `write!` makes, one per piece) could meet its reset.
    s.write_all(format!("{head}\r\n\r\n").as_bytes()).unwrap();
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

#[test]
fn the_admin_port_serves_the_probes_and_the_traffic_port_routes_their_paths() {
    let server = Server::with_config(
        "[[route]]\npath = \"/metrics\"\nbody = \"the application's own metrics\"\n",
        &["--admin-listen", "127.0.0.1:0", "--workers", "2"],
    );
    let admin = admin_addr(&server);
    let traffic = server.addr;
    let routed = get_path(traffic, "/metrics");
    assert_eq!(status_of(&routed), 200, "{routed}");
    assert!(
        routed.ends_with("the application's own metrics"),
        "{routed}"
    );
    assert_eq!(status_of(&get_path(traffic, "/healthz")), 404);
    assert_eq!(status_of(&get_path(traffic, "/readyz")), 404);

    assert!(get_path(admin, "/healthz").ends_with("\r\n\r\nok\n"));
    assert_eq!(status_of(&get_path(admin, "/readyz")), 200);
    let metrics = get_path(admin, "/metrics");
    assert_eq!(status_of(&metrics), 200);
    assert!(metrics.contains("responder_requests_total"), "{metrics}");
    assert_eq!(status_of(&get_path(admin, "/")), 404);
    let options = get_path_with(admin, "OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close");
    assert!(options.contains("Allow: GET, HEAD, OPTIONS"), "{options}");
}

#[test]
fn the_admin_port_says_not_ready_through_the_delay_and_closes_after_the_traffic() {
    let mut server = Server::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--shutdown-delay",
        "0.5",
    ]);
    let admin = admin_addr(&server);
    // A request in flight on the traffic port holds the drain open.
    let mut in_flight = server.connect();
    in_flight
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    server.signal(libc::SIGTERM);
    server.await_log(&["readiness now fails"]);
    assert_eq!(status_of(&get_path(admin, "/readyz")), 503);
    server.await_log(&["listener closed; draining"]);
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "the traffic port is closed"
    );
    assert_eq!(status_of(&get_path(admin, "/readyz")), 503);
    assert_eq!(status_of(&get_path(admin, "/healthz")), 200);
    in_flight.write_all(b"\r\n").unwrap();
    let answer = read_to_close(&mut in_flight);
    assert_eq!(status_of(&answer), 200, "{answer}");
    let status = server.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
    server.await_log(&["admin listener closed"]);
    assert!(
        TcpStream::connect(admin).is_err(),
        "the admin port is closed"
    );
}

#[test]
fn healthcheck_asks_the_admin_port_when_there_is_one() {
    let server = Server::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = admin_addr(&server).to_string();
    let traffic = server.addr.to_string();
    let ok = binary()
        .args([
            "healthcheck",
            "--listen",
            &traffic,
            "--admin-listen",
            &admin,
        ])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    // With an admin address configured, the traffic port (which serves) is not what is asked.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let failed = binary()
        .args(["healthcheck", "--listen", &traffic, "--admin-listen"])
        .arg(closed.to_string())
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains(&closed.to_string()), "{err}");
}

#[test]
fn an_admin_port_that_overlaps_a_traffic_port_is_refused() {
    let out = binary()
        .args([
            "--check",
            "--listen",
            "[::]:8080",
            "--admin-listen",
            "127.0.0.1:8080",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin_listen 127.0.0.1:8080 overlaps listen [::]:8080"),
        "{err}"
    );
}

#[test]
fn probes_get_in_while_the_traffic_fills_the_connection_limit() {
    let server = Server::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--max-connections",
        "1",
    ]);
    let admin = admin_addr(&server);
    // The one connection the limit allows, held open mid-request.
    let mut held = server.connect();
    held.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    // Accepted first: the kernel queues connections in order, and the worker takes them so.
    let refused = get(server.addr);
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert_eq!(status_of(&get_path(admin, "/healthz")), 200);
    assert_eq!(status_of(&get_path(admin, "/readyz")), 200);
    held.write_all(b"\r\n").unwrap();
    assert_eq!(status_of(&crate::common::read_response(&mut held)), 200);
}
