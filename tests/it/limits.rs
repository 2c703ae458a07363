//! Timeouts and the connection limit, over real sockets.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use crate::common::{read_response, read_to_close, status_of, Server};

#[test]
fn a_request_still_incomplete_at_the_read_timeout_gets_408() {
    let server = Server::start(&["--read-timeout", "0.3"]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let got = read_to_close(&mut s);
    assert_eq!(status_of(&got), 408, "{got}");
    assert_about(start.elapsed(), Duration::from_millis(300));
    // Logged as every other rejection is.
    let line = server.await_log(&["request rejected", "\"status\":408"]);
    assert!(
        line.contains("\"rejection\":\"RequestTimeout\"")
            && line.contains("\"bytes\":")
            && line.contains("\"target\":\"responder::access\""),
        "{line}"
    );
}

/// Closed no sooner than the timeout less scheduling slack, and well before a test's patience.
fn assert_about(waited: Duration, timeout: Duration) {
    assert!(
        waited >= timeout.mul_f64(0.8) && waited < timeout + Duration::from_secs(3),
        "{waited:?} for a timeout of {timeout:?}"
    );
}

#[test]
fn a_connection_that_never_sends_is_closed_at_the_read_timeout_without_an_answer() {
    let server = Server::start(&["--read-timeout", "300ms"]);
    let mut s = server.connect();
    let start = Instant::now();
    let got = read_to_close(&mut s);
    assert_eq!(got, "");
    assert_about(start.elapsed(), Duration::from_millis(300));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "0.3", "--read-timeout", "5"]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_response(&mut s)), 200);
    let start = Instant::now();
    assert_eq!(read_to_close(&mut s), "");
    assert_about(start.elapsed(), Duration::from_millis(300));
}

#[test]
fn a_request_begun_after_an_answer_has_its_own_read_timeout() {
    // Each write ends one request and begins the next: each has the whole timeout from its own
    // first byte, not from the first byte of the one before it.
    let server = Server::start(&["--read-timeout", "1", "--idle-timeout", "5"]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(600));
        s.write_all(b"st: t\r\n\r\nGET / HTTP/1.1\r\nHo").unwrap();
        let answer = read_response(&mut s);
        assert_eq!(status_of(&answer), 200, "{answer}");
    }
}

/// Writes a line end every 100 ms until the server closes the connection (at most 4 s): how
/// long it took, or `None` if it never closed. An answer to line ends alone fails the test.
fn line_ends_until_closed(s: &mut std::net::TcpStream) -> Option<Duration> {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(4) {
        if s.write_all(b"\r\n").is_err() {
            return Some(start.elapsed());
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(n) => panic!(
                "answered line ends: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Reset: a line end written after the close.
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn empty_lines_between_requests_do_not_hold_an_idle_connection_open() {
    let server = Server::start(&["--idle-timeout", "0.5", "--read-timeout", "30"]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_response(&mut s)), 200);
    let waited = line_ends_until_closed(&mut s).expect("held open by line ends");
    assert_about(waited, Duration::from_millis(500));
    // A request after them is still a request.
    let mut s = server.connect();
    s.write_all(b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&read_response(&mut s)), 200);
}

#[test]
fn empty_lines_before_a_first_request_wait_no_longer_than_the_read_timeout() {
    let server = Server::start(&["--read-timeout", "0.5", "--idle-timeout", "30"]);
    let mut s = server.connect();
    let waited = line_ends_until_closed(&mut s).expect("held open by line ends");
    assert_about(waited, Duration::from_millis(500));
}

#[test]
fn a_client_that_stops_reading_is_cut_at_the_write_timeout() {
    let server = Server::start_with_env(
        &["--write-timeout", "0.5", "--workers", "1"],
        &[("RUST_LOG", "debug")],
    );
    let mut s = server.connect();
    // Pipelined requests whose answers the client never reads fill both socket buffers.
    let batch = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1000);
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if s.write_all(&batch).is_err() {
            break;
        }
    }
    let line = server.await_log(&["\"close\"", "\"reason\":\"write_timeout\""]);
    assert!(line.contains("\"conn\":"), "{line}");
    // The writes stalled after the socket buffers filled; the cut came at least a timeout later.
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn past_max_connections_new_clients_get_503_and_service_resumes() {
    let server = Server::start(&["--max-connections", "2", "--workers", "1"]);
    let held: Vec<_> = (0..2).map(|_| server.connect()).collect();
    // Make sure both are accepted before the third arrives.
    std::thread::sleep(Duration::from_millis(200));
    let mut third = server.connect();
    let got = read_to_close(&mut third);
    assert_eq!(status_of(&got), 503, "{got}");
    let line = server.await_log(&["request rejected", "\"status\":503"]);
    assert!(
        line.contains("\"rejection\":\"ServiceUnavailable\""),
        "{line}"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let got = server.exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&got), 200);
}

#[test]
fn a_half_closed_client_still_gets_its_answer() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(status_of(&got), 200);
    assert!(got.ends_with("Hello, world!"));
}

#[test]
fn the_descriptor_limit_is_raised_to_the_hard_limit() {
    // The hard limit this test already has: raising a hard limit would need privileges.
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) }, 0);
    let hard = own.rlim_max.min(1 << 20);
    assert!(
        hard > 256,
        "this machine's hard limit is too low for the test"
    );
    let server = Server::start_with_fd_limit(&[], 256, hard);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = open_files
        .split_whitespace()
        .filter(|w| w.parse::<u64>().is_ok())
        .collect();
    assert_eq!(
        numbers,
        [hard.to_string(), hard.to_string()],
        "{open_files}"
    );
}

#[test]
fn a_descriptor_limit_below_max_connections_is_said_and_obeyed() {
    let args = ["--max-connections", "10000", "--workers", "1"];
    let server = Server::start_with_fd_limit(&args, 200, 200);
    let line = server.await_log(&["RLIMIT_NOFILE cannot cover"]);
    assert!(line.contains("\"configured\":10000"), "{line}");
    let listening = server.await_log(&["\"listening\""]);
    let budget: usize = crate::common::field_number(&listening, "max_connections");
    // 200 less what is open at start, the worker's own three, and a margin of 16.
    assert!((150..=180).contains(&budget), "{listening}");
    assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
}
