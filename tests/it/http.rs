//! HTTP/1.0 semantics over real sockets: the default answer, persistence, pipelining, bodies and
//! every error status.

use std::io::Write;
use std::time::Duration;

use crate::common::{count_responses, read_head, read_response, read_to_close, status_of, Server};

#[test]
fn default_answer_is_hello_world_over_http10() {
    let server = Server::start(&[]);
    let got = server.exchange(b"GET / HTTP/1.0\r\n\r\n");
    let (head, body) = got.split_once("\r\n\r\n").expect("a head and a body");
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "HTTP/1.0 200 OK");
    assert!(lines[1].starts_with("Server: responder/"), "{head}");
    let date = lines[2].strip_prefix("Date: ").expect("a Date header");
    assert!(
        httpdate::parse_http_date(date).is_ok(),
        "IMF-fixdate: {date}"
    );
    assert_eq!(lines[3], "Content-Type: text/plain");
    let etag = lines[4].strip_prefix("ETag: \"").expect("a strong ETag");
    assert!(etag.len() == 17 && etag.ends_with('"'), "{head}");
    let modified = lines[5]
        .strip_prefix("Last-Modified: ")
        .expect("Last-Modified");
    assert!(httpdate::parse_http_date(modified).is_ok(), "{modified}");
    assert_eq!(&lines[6..], ["Content-Length: 13", "Connection: close"]);
    assert_eq!(body, "Hello, world!");
}

#[test]
fn any_path_gets_the_default_answer() {
    let server = Server::start(&[]);
    let got = server.exchange(b"GET /some/where?x=1 HTTP/1.0\r\n\r\n");
    assert!(got.ends_with("\r\n\r\nHello, world!"), "{got}");
}

#[test]
fn head_gets_the_same_headers_and_no_body() {
    let server = Server::start(&[]);
    let got = server.exchange(b"HEAD / HTTP/1.0\r\n\r\n");
    assert!(got.starts_with("HTTP/1.0 200 OK\r\n"));
    assert!(got.contains("Content-Length: 13\r\n"));
    assert!(got.ends_with("Connection: close\r\n\r\n"), "{got}");
}

#[test]
fn a_request_sent_one_byte_at_a_time_is_answered() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.set_nodelay(true).unwrap();
    for byte in b"GET /slow HTTP/1.0\r\nUser-Agent: drip\r\n\r\n" {
        s.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = read_to_close(&mut s);
    assert_eq!(status_of(&got), 200);
    assert!(got.ends_with("Hello, world!"));
}

#[test]
fn bare_lf_heads_are_answered() {
    let server = Server::start(&[]);
    let got = server.exchange(b"GET / HTTP/1.0\nHost: x\n\n");
    assert_eq!(status_of(&got), 200);
    assert!(got.ends_with("Hello, world!"));
}

#[test]
fn http10_keep_alive_is_honoured_when_asked() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let got = read_response(&mut s);
        assert!(got.contains("Connection: keep-alive\r\n"), "{got}");
    }
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let last = read_to_close(&mut s);
    assert_eq!(count_responses(&last), 1);
    assert!(last.contains("Connection: close\r\n"));
}

#[test]
fn http11_stays_open_until_it_asks_to_close() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).contains("Connection: keep-alive\r\n"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_to_close(&mut s);
    assert_eq!(count_responses(&last), 1);
    assert!(last.contains("Connection: close\r\n"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let got = server.exchange(
        b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: t\r\n\r\nDELETE /3 HTTP/1.1\r\nHost: t\r\n\r\nGET /4 HTTP/1.0\r\n\r\n",
    );
    let statuses: Vec<u16> = got
        .split("HTTP/1.")
        .skip(1)
        .map(|r| r[2..5].parse().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 405, 200], "{got}");
    // The HEAD answer has no body, so the 405 follows its blank line directly.
    assert!(got.contains("keep-alive\r\n\r\nHTTP/1.1 405"), "{got}");
    assert!(got.ends_with("Connection: close\r\n\r\nHello, world!"));
}

#[test]
fn a_large_post_body_is_read_and_answered() {
    let server = Server::start(&[]);
    let body = vec![b'x'; 900 * 1024];
    let mut s = server.connect();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&body).unwrap();
            s.write_all(b"GET /next HTTP/1.0\r\n\r\n").unwrap();
        })
    };
    let got = read_to_close(&mut s);
    writer.join().unwrap();
    // POST is not among the default route's methods: 405 after the body, then the next request.
    assert_eq!(count_responses(&got), 2, "{got}");
    assert_eq!(status_of(&got), 405);
    assert!(got.contains("Allow: GET, HEAD, OPTIONS\r\n"));
    assert!(got.ends_with("Hello, world!"));
}

#[test]
fn a_body_is_never_taken_for_a_request() {
    let server = Server::start(&[]);
    let smuggled = b"GET /evil HTTP/1.0\r\n\r\n";
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    request.extend_from_slice(smuggled);
    request.extend_from_slice(b"GET /real HTTP/1.0\r\n\r\n");
    let got = server.exchange(&request);
    assert_eq!(count_responses(&got), 2, "{got}");
    let evil = server.logs().iter().any(|l| l.contains("/evil"));
    assert!(!evil, "the body was parsed as a request");
    server.await_log(&["\"path\":\"/real\""]);
}

#[test]
fn every_error_is_a_well_formed_response_that_closes() {
    let server = Server::start(&["--max-header-bytes", "1024"]);
    let many_headers: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
            400,
        ),
        (b"GET / FOO/1.0\r\n\r\n".to_vec(), 400),
        (b"GET\r\n\r\n".to_vec(), 400),
        (b"GET * HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n".to_vec(), 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
            413,
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2000)).into_bytes(),
            414,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (b"PUT / HTTP/1.0\r\n\r\n".to_vec(), 405),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n".to_vec(), 400),
        (b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  continued\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc".to_vec(),
            400,
        ),
        (
            format!("GET /{} HTTP/1.1", "a".repeat(5000)).into_bytes(),
            414,
        ),
        (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 505),
    ];
    for (request, status) in cases {
        let got = server.exchange(&request);
        assert_eq!(
            status_of(&got),
            status,
            "{:?} -> {got}",
            String::from_utf8_lossy(&request)
        );
        assert!(got.contains("Connection: close\r\n"), "{got}");
        let (_, body) = got.split_once("\r\n\r\n").unwrap();
        assert!(
            got.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{got}"
        );
    }
}

#[test]
fn method_not_allowed_names_the_allowed_methods() {
    let server = Server::start(&[]);
    let got = server.exchange(b"POST / HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&got), 405);
    assert!(got.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"), "{got}");
}

#[test]
fn an_error_response_survives_unread_input() {
    // The client keeps sending after its request was refused: a graceful close lets it read the
    // 413 instead of a reset.
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n")
        .unwrap();
    let _ = s.write_all(&vec![b'z'; 256 * 1024]);
    let got = read_head(&mut s);
    assert_eq!(status_of(&got), 413);
}

#[test]
fn tcp_cork_around_a_pipelined_batch_still_answers_every_request() {
    let server = Server::with_config("tcp_cork = true\n", &[]);
    let got = server.exchange(
        &b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
            .repeat(50)
            .into_iter()
            .chain(*b"GET / HTTP/1.0\r\n\r\n")
            .collect::<Vec<u8>>(),
    );
    assert_eq!(count_responses(&got), 51);
}
