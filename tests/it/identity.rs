//! Who asked, and in which trace: the client fields of every access-log line, request ids echoed
//! and made, and W3C trace context, over real sockets with the real binary's JSON lines.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use serde_json::Value;

use crate::common::{check, header, read_response, read_to_close, Killed, Server};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The access-log lines of `server` (every line must be JSON), waiting for `count` of them.
fn access_lines(server: &Server, message: &str, count: usize) -> Vec<Value> {
    let needle = format!("\"message\":\"{message}\"");
    server.await_log(&[&needle]);
    let deadline = std::time::Instant::now() + crate::common::LIMIT;
    loop {
        let lines: Vec<Value> = server
            .logs()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .filter(|l: &Value| l["message"] == message)
            .collect();
        if lines.len() >= count || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn every_client_field_is_on_the_response_line() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let request = format!(
        "GET /who?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.5.0\r\n\
         Referer: https://ref.example/page\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n\
         X-Request-Id: req-42\r\ntraceparent: {TRACEPARENT}\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let answer = read_response(&mut s);
    assert_eq!(header(&answer, "X-Request-Id"), Some("req-42"), "{answer}");
    assert!(
        !answer.contains("traceparent"),
        "traceparent is not echoed: {answer}"
    );
    let line = &access_lines(&server, "response", 1)[0];
    let expected = [
        ("remote_addr", s.local_addr().unwrap().to_string()),
        ("host", "example.com:8080".into()),
        ("user_agent", "curl/8.5.0".into()),
        ("referer", "https://ref.example/page".into()),
        ("x_forwarded_for", "203.0.113.7, 10.0.0.1".into()),
        ("request_id", "req-42".into()),
        ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736".into()),
        ("span_id", "00f067aa0ba902b7".into()),
    ];
    for (key, value) in expected {
        assert_eq!(line[key].as_str(), Some(value.as_str()), "{key} in {line}");
    }
    // A request that says nothing of itself has none of them but its address.
    let mut s = server.connect();
    s.write_all(b"GET /bare HTTP/1.0\r\n\r\n").unwrap();
    read_to_close(&mut s);
    let lines = access_lines(&server, "response", 2);
    let bare = lines
        .iter()
        .find(|l| l["path"] == "/bare")
        .expect("the bare line");
    assert!(bare["remote_addr"].is_string(), "{bare}");
    for key in [
        "host",
        "user_agent",
        "referer",
        "x_forwarded_for",
        "request_id",
        "trace_id",
    ] {
        assert!(bare.get(key).is_none(), "{key} in {bare}");
    }
}

#[test]
fn a_request_id_is_logged_exactly_as_it_is_echoed() {
    // Visible ASCII takes quotes and backslashes: a search for the echoed id finds its line.
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: a\"b\\c\r\n\r\n")
        .unwrap();
    let answer = read_response(&mut s);
    assert_eq!(header(&answer, "X-Request-Id"), Some("a\"b\\c"), "{answer}");
    let line = &access_lines(&server, "response", 1)[0];
    assert_eq!(line["request_id"].as_str(), Some("a\"b\\c"), "{line}");
}

#[test]
fn hostile_values_leave_every_line_valid_json_cut_and_marked() {
    let server = Server::start(&["--max-header-bytes", "65536"]);
    let long = "x".repeat(10 * 1024);
    let mut request = b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: \"}\\\", \"forged\": \"".to_vec();
    request.extend_from_slice(b"\xff\xfe\tend\r\nReferer: ");
    request.extend_from_slice(long.as_bytes());
    request.extend_from_slice(b"\r\nX-Forwarded-For: a\\b\r\nConnection: close\r\n\r\n");
    let answer = server.exchange(&request);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let line = &access_lines(&server, "response", 1)[0];
    assert!(line.get("forged").is_none(), "{line}");
    let user_agent = line["user_agent"].as_str().unwrap();
    assert_eq!(
        user_agent, "\"}\\\\\", \"forged\": \"\\xff\\xfe\\tend",
        "{line}"
    );
    let referer = line["referer"].as_str().unwrap();
    assert!(referer.ends_with("…[cut]"), "{referer}");
    assert_eq!(referer.len(), 256 + "…[cut]".len(), "{referer}");
    assert_eq!(line["x_forwarded_for"], "a\\\\b", "{line}");
    // The refused request's line carries what its head said, escaped the same way.
    let refused =
        server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nUser-Agent: \"ua\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");
    let rejected = &access_lines(&server, "request rejected", 1)[0];
    assert_eq!(rejected["user_agent"], "\"ua", "{rejected}");
    assert_eq!(rejected["host"], "b", "{rejected}");
    assert!(rejected["remote_addr"].is_string(), "{rejected}");
}

#[test]
fn the_text_format_cannot_be_forged_either() {
    let mut child = Killed(
        crate::common::binary()
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "text",
                "--workers",
                "1",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    // The first line holding `word` (bounded: the server's stdout closes when it exits or is
    // killed, which `Killed` makes sure of if an assertion fails first).
    let mut line_with = |word: &str| {
        lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains(word))
            .unwrap_or_default()
    };
    let listening = line_with("listening");
    let addr = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.trim_matches('"').parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: a\xffb\\n INFO forged\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_to_close(&mut s);
    // SIGTERM drains, flushes the log and closes stdout, so the search below ends.
    // SAFETY: kill(2) on the PID of our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let line = line_with("response");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // Shown escapes the peer's bytes; the text format quotes (and escapes again) the string.
    assert!(
        line.contains("user_agent=\"a\\\\xffb\\\\\\\\n INFO forged\""),
        "{line}"
    );
}

/// Sends `n` pipelined keep-alive requests in batches and returns each answer's X-Request-Id.
fn echoed_ids(server: &Server, request: &[u8], n: usize) -> Vec<String> {
    let mut s = server.connect();
    let mut ids = Vec::with_capacity(n);
    let batch = 200;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut text = String::new();
    while ids.len() < n {
        let count = batch.min(n - ids.len());
        s.write_all(&request.repeat(count)).unwrap();
        let mut answered = 0;
        while answered < count {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "closed");
            pending.extend_from_slice(&buf[..k]);
            text.clear();
            text.push_str(&String::from_utf8_lossy(&pending));
            // Complete answers end with the body; keep a partial one for the next read.
            let complete = text
                .rfind("Hello, world!")
                .map_or(0, |i| i + "Hello, world!".len());
            for answer in text[..complete].split_inclusive("Hello, world!") {
                ids.push(
                    header(answer, "X-Request-Id")
                        .unwrap_or_default()
                        .to_string(),
                );
                answered += 1;
            }
            pending.drain(..complete);
        }
    }
    ids
}

#[test]
fn request_ids_are_made_unique_when_asked_and_bad_ones_are_refused() {
    let server = Server::with_config("access_log = false\n", &["--request-id", "generate"]);
    let ids = echoed_ids(&server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 100_000);
    assert!(ids
        .iter()
        .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 100_000);
    // A valid id is kept; an invalid one (too long, a space) is replaced by a new one.
    for (sent, kept) in [("ok-1", true), (&*"a".repeat(129), false), ("a b", false)] {
        let request = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: {sent}\r\n\r\n");
        let got = &echoed_ids(&server, request.as_bytes(), 1)[0];
        assert_eq!(got == sent, kept, "{sent:?} -> {got}");
        assert_eq!(got.len() == 32, !kept, "{got}");
    }
}

#[test]
fn request_id_modes_and_the_header_name() {
    let propagate = Server::start(&[]);
    let none = echoed_ids(&propagate, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    assert_eq!(none, [""], "propagate makes none");
    let off = Server::start_with_env(&[], &[("RESPONDER_REQUEST_ID", "off")]);
    let got = off.exchange(b"GET / HTTP/1.0\r\nX-Request-Id: abc\r\n\r\n");
    assert!(!got.contains("X-Request-Id"), "{got}");
    let line = &access_lines(&off, "response", 1)[0];
    assert!(line.get("request_id").is_none(), "{line}");
    // A refused request's id is neither echoed nor logged either.
    let refused = off.exchange(b"FOO / HTTP/1.0\r\nX-Request-Id: abc\r\n\r\n");
    assert!(
        refused.starts_with("HTTP/1.0 501 ") && !refused.contains("X-Request-Id"),
        "{refused}"
    );
    let line = &access_lines(&off, "request rejected", 1)[0];
    assert!(line.get("request_id").is_none(), "{line}");
    let named = Server::with_config("request_id_header = \"X-Correlation-Id\"\n", &[]);
    let got =
        named.exchange(b"GET / HTTP/1.0\r\nx-correlation-id: c-7\r\nX-Request-Id: no\r\n\r\n");
    assert!(got.contains("\r\nX-Correlation-Id: c-7\r\n"), "{got}");
    assert!(!got.contains("X-Request-Id"), "{got}");
}

#[test]
fn a_request_id_header_may_not_be_a_field_the_server_reads() {
    // `Host` as the id's field would take every request's `Host` away: each would be a 400.
    for name in ["Host", "expect", "Accept", "X-Code", "traceparent"] {
        let (ok, err) = check(&format!("request_id_header = \"{name}\"\n"));
        assert!(
            !ok && err.contains("FILE at line 1") && err.contains("reads for itself"),
            "{name}: {err}"
        );
    }
    let (ok, err) = check("request_id_header = \"X-Trace-Token\"\n");
    assert!(ok, "{err}");
}

#[test]
fn traceparent_gives_trace_and_span_only_when_valid() {
    let server = Server::start(&[]);
    let cases = [
        (TRACEPARENT.to_string(), true),
        (TRACEPARENT.replacen("00-", "01-", 1), false),
        (format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)), false),
        (
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", "0".repeat(16)),
            false,
        ),
        (TRACEPARENT.to_uppercase(), false),
        ("garbage".to_string(), false),
    ];
    for (i, (value, _)) in cases.iter().enumerate() {
        let request = format!("GET /t{i} HTTP/1.0\r\ntraceparent: {value}\r\n\r\n");
        let got = server.exchange(request.as_bytes());
        assert!(got.starts_with("HTTP/1.0 200"), "never an error: {got}");
    }
    let lines = access_lines(&server, "response", cases.len());
    for (i, (value, valid)) in cases.iter().enumerate() {
        let line = lines
            .iter()
            .find(|l| l["path"] == format!("/t{i}"))
            .expect("a line per request");
        assert_eq!(line.get("trace_id").is_some(), *valid, "{value}: {line}");
        assert_eq!(line.get("span_id").is_some(), *valid, "{value}: {line}");
    }
}
