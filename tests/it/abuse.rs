//! Clients that misbehave the way the article's servers cannot survive: closing without a
//! request (Example 4 hangs at 100% CPU, Example 3 spins), resetting mid-request, half-closing.
//! The server must close each, spend no CPU on them afterwards, and keep serving.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{cpu_ticks, rss_kib, status_of, ticks_per_second, Server};

/// Closes with a reset (SO_LINGER 0) instead of a FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[test]
fn clients_that_leave_without_a_request_cost_nothing_afterwards() {
    let server = Server::start(&["--workers", "1"]);
    for i in 0..300 {
        let mut s = server.connect();
        match i % 4 {
            0 => drop(s),
            1 => reset(s),
            2 => s.shutdown(std::net::Shutdown::Write).unwrap(),
            _ => {
                s.write_all(b"GET / HT").unwrap();
                reset(s);
            }
        }
    }
    // Give the server the moment it takes to see every close, then watch it for a second.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(server.pid()) - before;
    assert!(
        spent * 10 < ticks_per_second(),
        "{spent} ticks of CPU in a second with no live client: spinning"
    );
    // It serves as before, and holds no connection from the ones that left.
    assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
    let metrics = server.exchange(b"GET /metrics HTTP/1.0\r\n\r\n");
    let active = metrics
        .lines()
        .find_map(|l| l.strip_prefix("responder_connections_active "))
        .expect("an active-connections gauge");
    // Only the scrape's own connection is open.
    assert_eq!(active.trim(), "1", "{metrics}");
}

#[test]
fn a_reset_in_the_middle_of_a_response_harms_no_one_else() {
    let server = Server::start(&["--workers", "1"]);
    for _ in 0..50 {
        let mut s = server.connect();
        // Many pipelined requests, then a reset while the answers are being written.
        s.write_all(&b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2000))
            .unwrap();
        reset(s);
    }
    assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
}

/// Open descriptors of the server process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn out_of_descriptors_it_neither_exits_nor_spins_and_recovers() {
    let server = Server::start_with_fd_limit(&["--workers", "1"], 64, 64);
    let baseline = open_fds(server.pid());
    // 150 clients against a 64-descriptor process: most get 503 at once, none is left hanging.
    let clients: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(server.pid()) - before;
    assert!(
        spent * 2 < ticks_per_second(),
        "{spent} ticks in a second: spinning"
    );
    drop(clients);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
    }
    // Everything the attack opened is closed again.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(open_fds(server.pid()), baseline);
}

#[test]
fn slowloris_connections_are_cut_by_the_read_timeout_while_others_are_served() {
    let server = Server::start(&["--read-timeout", "1", "--workers", "1"]);
    let baseline = open_fds(server.pid());
    let mut slow: Vec<TcpStream> = (0..300).map(|_| server.connect()).collect();
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
    let start = std::time::Instant::now();
    let mut latencies = Vec::new();
    // A byte a second from each slow client; a normal client asks in between.
    for second in 0..3 {
        for s in &mut slow {
            let _ = s.write_all(&head[second..second + 1]);
        }
        for _ in 0..20 {
            let asked = std::time::Instant::now();
            assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
            latencies.push(asked.elapsed());
        }
        let next_second = start + Duration::from_secs(second as u64 + 1);
        std::thread::sleep(next_second.saturating_duration_since(std::time::Instant::now()));
    }
    // Every slow client was cut: a 408 (part of a request had come) or a plain close.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let got = crate::common::read_to_close(s);
        assert!(got.is_empty() || status_of(&got) == 408, "{got}");
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    eprintln!(
        "slowloris, 300 connections: normal client p99 {p99:?} over {} requests",
        latencies.len()
    );
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
    drop(slow);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(open_fds(server.pid()), baseline);
}

#[test]
fn a_flood_of_connections_gives_its_memory_back_once_cut() {
    // Each flooding connection takes a descriptor here and one in the server.
    let fd_limit = responder::sys::raise_fd_limit().unwrap();
    let flood_size = 3000.min(fd_limit.saturating_sub(200) as usize);
    assert!(
        flood_size >= 1000,
        "a descriptor limit too low for this test"
    );
    // Quiet logs (the address and the release): this is about what connections cost, not the
    // log buffers, which are fixed in size.
    let server = Server::start_with_env(
        &[
            "--read-timeout",
            "1",
            "--idle-timeout",
            "4",
            "--workers",
            "1",
        ],
        &[(
            "RUST_LOG",
            "warn,responder::serve::supervisor=info,responder::serve::worker=info",
        )],
    );
    for _ in 0..20 {
        assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
    }
    let baseline = rss_kib(server.pid());
    // Each flooding connection holds part of a request: a Slab entry, a deadline and a buffer.
    let mut flood: Vec<TcpStream> = (0..flood_size).map(|_| server.connect()).collect();
    for s in &mut flood {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Flood: a")
            .unwrap();
    }
    // Two keep-alive clients that come after the flood, so at the top of the Slab: the release
    // moves them down, and they must not notice.
    let mut late: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
    for s in &mut late {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(status_of(&crate::common::read_response(s)), 200);
    }
    let flooded = rss_kib(server.pid());
    // The read timeout cuts the flood; a second later the loop releases what it grew.
    for s in &mut flood {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let got = crate::common::read_to_close(s);
        assert!(got.is_empty() || status_of(&got) == 408, "{got}");
    }
    drop(flood);
    let released = server.await_log(&["flood over; memory released"]);
    let after = rss_kib(server.pid());
    eprintln!(
        "RSS: {baseline} KiB before, {flooded} KiB with {flood_size} connections, {after} KiB after"
    );
    assert_eq!(
        crate::common::field_number(&released, "connections"),
        2,
        "{released}"
    );
    assert_eq!(
        crate::common::field_number(&released, "slab_capacity_now"),
        2,
        "{released}"
    );
    assert!(
        flooded >= baseline + 300,
        "the flood should have cost memory: {baseline} -> {flooded} KiB"
    );
    // Most of it goes back. What stays is the pages that still hold a block in use (glibc's
    // per-thread cache keeps a few freed blocks of each size as in use), and how many depends on
    // the order the flood's blocks were freed in, which load changes. Without the release all
    // of the flood's memory stays.
    assert!(
        after.saturating_sub(baseline) * 10 <= (flooded - baseline) * 6,
        "memory kept after the flood: {baseline} KiB before, {flooded} KiB with it, {after} KiB \
         after"
    );
    // A moved connection is still served under its new slot...
    late[0]
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&crate::common::read_response(&mut late[0])), 200);
    // ...and still has its deadline: the idle one is closed by the idle timeout.
    late[1]
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    assert_eq!(crate::common::read_to_close(&mut late[1]), "");
}
