//! SIGTERM and SIGINT: the drain serves what was accepted, refuses what comes after, and exits
//! within its deadline with the documented status.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{read_response, read_to_close, status_of, Server};

const EXIT_FORCED: i32 = 3;

#[test]
fn a_request_in_flight_at_sigterm_is_answered_and_the_exit_is_clean() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // One worker, so that its "listener closed" says the drain reached this connection's loop.
        let mut server = Server::start(&["--workers", "1"]);
        let mut s = server.connect();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        server.signal(signal);
        server.await_log(&["listener closed"]);
        s.write_all(b"\r\n").unwrap();
        let got = read_to_close(&mut s);
        assert_eq!(status_of(&got), 200, "{got}");
        // Keep-alive was asked for (HTTP/1.1), but the drain closes after this answer.
        assert!(got.contains("Connection: close\r\n"), "{got}");
        let status = server
            .wait(Duration::from_secs(5))
            .expect("exits after the drain");
        assert_eq!(status.code(), Some(0));
    }
}

#[test]
fn idle_keep_alive_connections_do_not_hold_the_exit() {
    let mut server = Server::start(&["--idle-timeout", "60"]);
    let mut idle = server.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_response(&mut idle);
    let _silent = server.connect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(read_to_close(&mut idle), "");
}

#[test]
fn a_request_waiting_in_an_idle_connection_is_served_not_dropped() {
    // The request arrives just before the signal, possibly before the loop has seen its edge:
    // the drain's last read must find it.
    let mut server = Server::start(&["--workers", "1"]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    read_response(&mut s);
    s.write_all(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    server.signal(libc::SIGTERM);
    let got = read_to_close(&mut s);
    assert_eq!(status_of(&got), 200, "{got:?}");
    assert_eq!(
        server.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn new_connections_are_refused_once_the_drain_starts() {
    let mut server = Server::start(&["--shutdown-timeout", "5"]);
    let mut stuck = server.connect();
    stuck.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    server.await_log(&["listener closed"]);
    std::thread::sleep(Duration::from_millis(100));
    let refused = TcpStream::connect(server.addr);
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
    // The stuck client still gets its answer when it finishes.
    stuck.write_all(b"\r\n").unwrap();
    assert_eq!(status_of(&read_to_close(&mut stuck)), 200);
    assert_eq!(
        server.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn a_stuck_client_is_cut_at_the_shutdown_timeout() {
    let mut server = Server::start(&["--shutdown-timeout", "0.5"]);
    let mut stuck = server.connect();
    stuck.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait(Duration::from_secs(5))
        .expect("exits at the deadline");
    let waited = start.elapsed();
    assert_eq!(status.code(), Some(EXIT_FORCED));
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    let line = server.await_log(&["shutdown forced"]);
    assert!(line.contains("\"connections\":1"), "{line}");
    assert_eq!(read_to_close(&mut stuck), "");
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = Server::start(&["--shutdown-timeout", "30"]);
    let mut stuck = server.connect();
    stuck.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    server.await_log(&["draining"]);
    let start = Instant::now();
    server.signal(libc::SIGINT);
    let status = server.wait(Duration::from_secs(5)).expect("exits");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(status.code(), Some(EXIT_FORCED));
}

/// One connection a client made: its port, whether any byte came back (so the server accepted
/// it), and the request that got no complete answer, if one did not.
struct Connection {
    port: u16,
    answered: bool,
    lost: Option<String>,
}

/// A drain gives a connection that has sent nothing this long from its accept (the server's
/// `DRAIN_FIRST_REQUEST_GRACE`) before closing it: a client whose own thread was kept from
/// writing that long after its connect was refused by design, not lost.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// One client's loop: requests until told to stop. Returns the answers and its connections.
fn client(
    addr: std::net::SocketAddr,
    keep_alive: bool,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
) -> (usize, Vec<Connection>) {
    let mut answers = 0;
    let mut connections = Vec::new();
    let request: &[u8] = if keep_alive {
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    } else {
        b"GET / HTTP/1.0\r\n\r\n"
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            refused.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let port = s.local_addr().unwrap().port();
        let connected = Instant::now();
        let mut connection = Connection {
            port,
            answered: false,
            lost: None,
        };
        for n in 0.. {
            let mut got = Vec::new();
            let written = s.write_all(request);
            let late = n == 0 && connected.elapsed() >= FIRST_REQUEST_GRACE;
            let ending = match written {
                Ok(()) => read_answer(&mut s, &mut got),
                Err(e) => format!("write: {:?}", e.kind()),
            };
            let complete = got.ends_with(b"Hello, world!");
            connection.answered |= !got.is_empty();
            if complete {
                answers += 1;
            } else if (n == 0 && !late) || !got.is_empty() {
                // A fresh connection, or an answer cut in the middle, is a lost request. A
                // reused keep-alive connection closed before any byte was sent back is the
                // ordinary keep-alive race, which a client retries.
                connection.lost = Some(format!(
                    "request {n} ({ending}): {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            let closing = String::from_utf8_lossy(&got).contains("Connection: close");
            if !keep_alive || !complete || closing || stop.load(Ordering::Relaxed) {
                break;
            }
        }
        connections.push(connection);
    }
    (answers, connections)
}

/// Reads one answer into `got`; returns how the reading ended.
fn read_answer(s: &mut TcpStream, got: &mut Vec<u8>) -> String {
    let mut buf = [0u8; 512];
    while !got.ends_with(b"Hello, world!") {
        match s.read(&mut buf) {
            Ok(0) => return "eof".into(),
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => return format!("{:?}", e.kind()),
        }
    }
    "complete".into()
}

#[test]
fn sigterm_under_load_loses_no_accepted_request() {
    // Debug logs carry an `accept` event per connection, with the client's address.
    let mut server = Server::start_with_env(&["--workers", "2"], &[("RUST_LOG", "debug")]);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (stop, refused, addr) = (Arc::clone(&stop), Arc::clone(&refused), server.addr);
            std::thread::spawn(move || client(addr, i % 2 == 0, stop, refused))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(10)).expect("exits");
    let drain_took = signalled.elapsed();
    // Let the clients see the refusals, then stop them.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut answers = 0;
    let mut connections = Vec::new();
    for c in clients {
        let (n, made) = c.join().unwrap();
        answers += n;
        connections.extend(made);
    }
    assert_eq!(status.code(), Some(0));
    assert!(answers > 100, "only {answers} answers before the signal");
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "no connection was refused after the drain"
    );
    // A connection the kernel completed in the microseconds between the last accept and the
    // listener's close is reset by the kernel, never seen by the server: that is a rejected. Every
    // connection the server accepted must have had its requests answered. A client port is used
    // again once its connection is closed, so a port's accept events are set against its
    // connections that got an answer (each of them accepted) and those that sent too late (which
    // may or may not have been): any accept beyond those is a connection lost after its accept.
    let logs = server.logs();
    let accepts = |port: u16| {
        let peer = format!("\"remote_addr\":\"127.0.0.1:{port}\"");
        logs.iter()
            .filter(|l| l.contains("\"message\":\"accept\"") && l.contains(&peer))
            .count()
    };
    assert!(
        logs.iter()
            .filter(|l| l.contains("\"message\":\"accept\""))
            .count()
            >= answers / 10,
        "accept events missing from the log"
    );
    let mut lost_after_accept = Vec::new();
    for lost in connections.iter().filter(|c| c.lost.is_some()) {
        let from_port = connections.iter().filter(|c| c.port == lost.port);
        let answered = from_port.clone().filter(|c| c.answered).count();
        let late = from_port
            .filter(|c| !c.answered && c.lost.is_none())
            .count();
        // An answer cut in the middle was accepted; a connection that got nothing was, if its
        // port saw more accepts than connections known to be accepted or possibly so.
        if lost.answered || accepts(lost.port) > answered + late {
            lost_after_accept.push((lost.port, lost.lost.clone()));
        }
    }
    assert!(lost_after_accept.is_empty(), "{lost_after_accept:?}");
    // The figures, for whoever runs this with --nocapture.
    eprintln!(
        "drain under load: {answers} answers, SIGTERM to exit {drain_took:?}, {} connects refused \
         after the drain, {} reset by the kernel at the listener's close, 0 accepted requests lost",
        refused.load(Ordering::Relaxed),
        connections.iter().filter(|c| c.lost.is_some()).count()
    );
}
