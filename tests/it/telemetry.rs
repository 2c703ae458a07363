//! What operators watch: JSON log lines that follow a connection by its id, `/metrics` in the
//! Prometheus text format, and a log output that can stall without stalling the server.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::{read_response, read_to_close, status_of, Server};
use serde_json::Value;

fn json_lines(server: &Server) -> Vec<Value> {
    server
        .logs()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_lines_follow_one_connection_from_accept_to_close() {
    let server = Server::start_with_env(&["--workers", "2"], &[("RUST_LOG", "debug")]);
    let mut s = server.connect();
    s.write_all(b"GET /one?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_response(&mut s);
    s.write_all(b"GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_to_close(&mut s);
    server.await_log(&["\"close\"", "\"reason\":\"done\""]);

    let lines = json_lines(&server);
    for line in &lines {
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(
            timestamp.len() >= 20 && timestamp.as_bytes()[10] == b'T' && timestamp.ends_with('Z'),
            "RFC 3339: {timestamp}"
        );
        for key in ["level", "target", "message"] {
            assert!(line[key].is_string(), "{key} missing: {line}");
        }
    }
    let port = s.local_addr().unwrap().port();
    let accept = lines
        .iter()
        .find(|l| {
            l["message"] == "accept"
                && l["remote_addr"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!(":{port}")))
        })
        .expect("an accept event with the peer address");
    let conn = accept["conn"].as_u64().expect("a connection id");
    let mine: Vec<&Value> = lines
        .iter()
        .filter(|l| l["conn"].as_u64() == Some(conn))
        .collect();
    let messages: Vec<&str> = mine
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["accept", "request", "response", "request", "response", "close"],
        "{mine:#?}"
    );
    let request = mine[1];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/one?x=1");
    assert_eq!(request["version"], "HTTP/1.1");
    assert!(request["header_bytes"].as_u64().unwrap() > 20);
    let response = mine[2];
    assert_eq!(response["target"], "responder::access");
    assert_eq!(response["level"], "INFO");
    assert_eq!(response["status"], 200);
    assert!(response["bytes"].as_u64().unwrap() > 13);
    assert!(response["duration_us"].is_u64());
    assert_eq!(mine[5]["reason"], "done");
}

#[test]
fn the_access_log_can_be_switched_off_and_levels_filter() {
    let off = Server::with_config("access_log = false\n", &[]);
    assert_eq!(
        status_of(&off.exchange(b"GET /quiet HTTP/1.0\r\n\r\n")),
        200
    );
    // RUST_LOG filters by level and target: the server's own info lines stay, the access log goes.
    let filtered = Server::start_with_env(
        &[],
        &[("RUST_LOG", "warn,responder::serve::supervisor=info")],
    );
    assert_eq!(
        status_of(&filtered.exchange(b"GET /quiet HTTP/1.0\r\n\r\n")),
        200
    );
    // --log-level overrides RUST_LOG (the helper finds the address through an info line).
    let flagged = Server::start_with_env(&["--log-level", "info"], &[("RUST_LOG", "error")]);
    assert_eq!(
        status_of(&flagged.exchange(b"GET /loud HTTP/1.0\r\n\r\n")),
        200
    );
    flagged.await_log(&["\"path\":\"/loud\""]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!off.logs().iter().any(|l| l.contains("/quiet")));
    assert!(!filtered.logs().iter().any(|l| l.contains("/quiet")));
}

/// Parses the Prometheus text format strictly enough to reject malformed output: every line is a
/// comment (`# HELP name text`, `# TYPE name type`) or `name{labels} value`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap();
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                words.next().expect("a metric name");
                let t = words.next().expect("a type");
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

fn scrape(server: &Server) -> HashMap<String, f64> {
    let got = server.exchange(b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&got), 200);
    assert!(
        got.contains("Content-Type: text/plain; version=0.0.4"),
        "{got}"
    );
    let (_, body) = got.split_once("\r\n\r\n").unwrap();
    parse_metrics(body)
}

#[test]
fn metrics_parse_and_move_with_the_traffic() {
    let server = Server::start(&["--workers", "2"]);
    let before = scrape(&server);
    for _ in 0..20 {
        assert_eq!(status_of(&server.exchange(b"GET / HTTP/1.0\r\n\r\n")), 200);
    }
    assert_eq!(status_of(&server.exchange(b"POST / HTTP/1.0\r\n\r\n")), 405);
    assert_eq!(status_of(&server.exchange(b"GET / HTTP/9.9\r\n\r\n")), 505);
    // The 505's connection lingers until the server has read this client's close: give it the
    // moment that takes.
    std::thread::sleep(Duration::from_millis(200));
    let after = scrape(&server);
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    // The first scrape's own answer and close are counted after it rendered, so they show here.
    let ok = moved("responder_requests_total{status=\"200\"}");
    assert_eq!(ok, 21.0, "{after:#?}");
    assert_eq!(moved("responder_requests_total{status=\"405\"}"), 1.0);
    assert_eq!(moved("responder_requests_total{status=\"505\"}"), 1.0);
    // 22 requests and the second scrape's own connection.
    assert_eq!(moved("responder_connections_accepted_total"), 23.0);
    // The first scrape, the 20 and the 405 closed after their answers; the 505 lingered and
    // closed when the client did.
    let done = moved("responder_connections_closed_total{reason=\"done\"}");
    assert_eq!(done, 22.0);
    let lingered = moved("responder_connections_closed_total{reason=\"client_closed\"}");
    assert_eq!(lingered, 1.0);
    assert!(moved("responder_received_bytes_total") >= 22.0 * 16.0);
    assert!(moved("responder_sent_bytes_total") >= 20.0 * 100.0);
    assert!(moved("responder_request_duration_seconds_count") >= 22.0);
    assert_eq!(
        after["responder_request_duration_seconds_bucket{le=\"+Inf\"}"],
        after["responder_request_duration_seconds_count"]
    );
    assert_eq!(after["responder_shutdown_phase"], 0.0);
    assert!(after.contains_key("responder_connections_active"));
    assert!(after.contains_key("responder_log_lines_dropped_total"));
    assert!(after.contains_key("responder_errors_total{kind=\"connection_reset\"}"));
}

#[test]
fn a_stalled_log_output_never_stalls_the_server() {
    // Trace level: four lines per request (read, request, write, response), so 30,000 requests
    // (about 24 MiB of lines) overflow the log queue (128 batches of at most 120 KiB) and the
    // pipe (widened to 1 MiB).
    let server = Server::start_stalled(&["--workers", "2"], &[("RUST_LOG", "trace")]);
    let start = Instant::now();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for _ in 0..3000 {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                    assert_eq!(status_of(&read_response(&mut s)), 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("every one of 30,000 requests answered");
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "{took:?}");
    let metrics = scrape(&server);
    let dropped = metrics["responder_log_lines_dropped_total"];
    assert!(
        dropped > 0.0,
        "the log queue never overflowed, so nothing was shown"
    );
}

#[test]
fn a_log_pipe_is_widened_so_that_a_batch_goes_in_one_write() {
    let server = Server::start(&[]);
    // The writer thread widens the pipe before it writes the first line, `listening`, which
    // `start` has read. The pipe is looked at through the server's own descriptor 1.
    let path = std::ffi::CString::new(format!("/proc/{}/fd/1", server.pid())).unwrap();
    // SAFETY: open(2) of a path we own the string of; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: fcntl(2) on the descriptor just opened, then close(2) of it.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    unsafe { libc::close(fd) };
    let max: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    assert_eq!(size, max.min(1 << 20), "the pipe's capacity");
}

#[test]
fn the_log_writer_does_not_preempt_the_event_loops() {
    let server = Server::start(&[]);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    let policies: Vec<(String, String)> = tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // The fields after the command's closing parenthesis: state is the first (field 3),
            // policy the 39th (field 41).
            let (_, after) = stat.rsplit_once(')')?;
            let policy = after.split_whitespace().nth(38)?.to_string();
            Some((name.trim().to_string(), policy))
        })
        .collect();
    let policy_of = |name: &str| {
        policies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("no thread {name} in {policies:?}"))
    };
    // SCHED_BATCH is 3, SCHED_OTHER 0.
    assert_eq!(policy_of("log-writer"), "3", "{policies:?}");
    assert_eq!(policy_of("worker-0"), "0", "{policies:?}");
}
