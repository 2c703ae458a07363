//! HTTP/1.1 conformance, by RFC section: each case sends raw bytes over a real socket and checks
//! the status, the `Connection` header, and whether the server closed the connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{read_response, read_to_close, status_of, Server};

/// Sends `request` and returns the first answer and whether the server then closed the
/// connection (a follow-up request gets no answer).
fn ask(server: &Server, request: &[u8]) -> (String, bool) {
    let mut s = server.connect();
    s.write_all(request).unwrap();
    let first = read_response(&mut s);
    (first, closed_after(&mut s))
}

/// Whether the server closes `s` instead of answering one more request.
fn closed_after(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
        return true;
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    !matches!(s.read(&mut byte), Ok(1))
}

/// One case: the request, the status it gets, and whether the connection closes after it.
fn check(server: &Server, section: &str, request: &[u8], status: u16, closes: bool) {
    let (answer, closed) = ask(server, request);
    let what = format!(
        "{section}: {:?} -> {answer}",
        String::from_utf8_lossy(request)
    );
    assert_eq!(status_of(&answer), status, "{what}");
    assert_eq!(closed, closes, "closed? {what}");
    assert_eq!(
        answer.contains("Connection: close\r\n"),
        closes,
        "Connection header: {what}"
    );
}

#[test]
fn rfc9112_3_2_host_is_required_once_and_valid_in_http11() {
    let server = Server::start(&[]);
    let s = "RFC 9112 3.2";
    check(&server, s, b"GET / HTTP/1.1\r\n\r\n", 400, true);
    check(
        &server,
        s,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        s,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
        true,
    );
    for bad in [
        "a, b",
        "example.com/path",
        "a b",
        "user@host",
        "a:80x",
        "",
        "a\x01b",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        check(&server, s, request.as_bytes(), 400, true);
    }
    for good in ["example.com", "example.com:8080", "[::1]:80", "127.0.0.1"] {
        let request = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
        check(&server, s, request.as_bytes(), 200, false);
    }
    // HTTP/1.0 clients (the article's) send no Host.
    check(&server, s, b"GET / HTTP/1.0\r\n\r\n", 200, true);
    // 3.2.2: an absolute-form target's authority wins; Host is ignored.
    check(
        &server,
        "RFC 9112 3.2.2",
        b"GET http://a.example/x HTTP/1.1\r\n\r\n",
        200,
        false,
    );
    check(
        &server,
        "RFC 9112 3.2.2",
        b"GET http://a.example/x HTTP/1.1\r\nHost: b, c\r\n\r\n",
        200,
        false,
    );
    check(
        &server,
        "RFC 9112 3.2.2",
        b"GET http://a b/ HTTP/1.1\r\n\r\n",
        400,
        true,
    );
}

#[test]
fn rfc9112_3_malformed_request_lines_are_400_and_only_other_majors_505() {
    let server = Server::start(&["--max-header-bytes", "1024"]);
    let s = "RFC 9112 3";
    for bad in [
        &b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\x01GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: t\r\n\r\n",
    ] {
        check(&server, s, bad, 400, true);
    }
    check(
        &server,
        "RFC 9112 2.3",
        b"GET / HTTP/2.0\r\n\r\n",
        505,
        true,
    );
    check(
        &server,
        "RFC 9112 2.3",
        b"GET / HTTP/3.0\r\n\r\n",
        505,
        true,
    );
    // RFC 9110 2.5: a later minor version is served as the highest 1.x the server speaks.
    let (answer, closed) = ask(&server, b"GET / HTTP/1.2\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(!closed);
    let (answer, _) = ask(
        &server,
        b"GET / HTTP/1.9\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // RFC 9112 3 (and 9110 15.5.15): a request line longer than the head limit is 414.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2000));
    check(&server, "RFC 9110 15.5.15", long.as_bytes(), 414, true);
}

#[test]
fn rfc9110_9_1_methods_are_case_sensitive_and_unknown_ones_501() {
    let server = Server::start(&[]);
    let s = "RFC 9110 9.1";
    check(&server, s, b"get / HTTP/1.1\r\nHost: t\r\n\r\n", 501, true);
    check(&server, s, b"FOO / HTTP/1.1\r\nHost: t\r\n\r\n", 501, true);
    let (answer, closed) = ask(&server, b"PUT / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status_of(&answer), 405, "{answer}");
    assert!(answer.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{answer}");
    assert!(!closed, "a 405 keeps the connection");
    check(
        &server,
        s,
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        501,
        true,
    );
}

#[test]
fn rfc9110_9_3_7_options_lists_what_a_path_allows() {
    let server = Server::with_config(
        "[[route]]\npath = \"/form\"\nmethods = [\"POST\"]\n\n\
         [[route]]\npath = \"/own\"\nmethods = [\"OPTIONS\"]\nstatus = 200\nbody = \"mine\"\n",
        &[],
    );
    let (answer, closed) = ask(&server, b"OPTIONS /form HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 204 No Content\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Allow: POST, OPTIONS\r\n"), "{answer}");
    assert!(!answer.contains("Content-Length"), "RFC 9110 8.6: {answer}");
    assert!(!closed);
    let (answer, _) = ask(&server, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status_of(&answer), 204, "{answer}");
    assert!(
        answer.contains("Allow: GET, HEAD, POST, OPTIONS\r\n"),
        "{answer}"
    );
    let (answer, _) = ask(&server, b"OPTIONS /own HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.ends_with("\r\n\r\nmine"), "{answer}");
    let (answer, _) = ask(&server, b"OPTIONS /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{answer}");
    check(
        &server,
        "RFC 9112 3.2.4",
        b"GET * HTTP/1.1\r\nHost: t\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        "RFC 9112 3.2",
        b"OPTIONS * HTTP/1.1\r\n\r\n",
        400,
        true,
    );
}

#[test]
fn rfc9110_6_2_answers_come_in_the_requests_version() {
    let server = Server::start(&[]);
    let (answer, _) = ask(&server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Connection: keep-alive\r\n"), "{answer}");
    let got =
        server.exchange(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert_eq!(got.matches("HTTP/1.0 200 OK\r\n").count(), 2, "{got}");
    assert!(got.contains("Connection: keep-alive\r\n"), "{got}");
    let refused = server.exchange(b"GET / HTTP/1.0\r\nContent-Length: x\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.0 400 "), "{refused}");
    // A request line that was not understood is answered in the server's own version.
    let garbage = server.exchange(b"\x16\x03\x01\x00");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
}

const CHUNKED_POST: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

fn routes_post() -> Server {
    Server::with_config(
        "[[route]]\npath = \"/\"\nmatch = \"prefix\"\nmethods = [\"GET\", \"POST\"]\nbody = \"ok\"\n",
        &["--max-header-bytes", "1024"],
    )
}

fn chunked(body: &[u8]) -> Vec<u8> {
    [CHUNKED_POST, body].concat()
}

#[test]
fn rfc9112_7_1_chunked_bodies_are_decoded_and_discarded() {
    let server = routes_post();
    let s = "RFC 9112 7.1";
    check(&server, s, &chunked(b"5\r\nhello\r\n0\r\n\r\n"), 200, false);
    check(&server, s, &chunked(b"0\r\n\r\n"), 200, false);
    check(
        &server,
        "RFC 9112 7.1.1",
        &chunked(b"5;a=b;c\r\nhello\r\n0;x=\"y\"\r\n\r\n"),
        200,
        false,
    );
    check(
        &server,
        "RFC 9112 7.1.2",
        &chunked(b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n"),
        200,
        false,
    );
    check(
        &server,
        s,
        &chunked(b"A\r\n0123456789\r\n0\r\n\r\n"),
        200,
        false,
    );
    // Malformed framing: 400 and close.
    for bad in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"zz\r\n",
        b"\r\n",
        b";ext\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"-1\r\n",
        b"ffffffffffffffffff\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"0\r\nbad trailer\r\n\r\n",
    ] {
        check(&server, s, &chunked(bad), 400, true);
    }
    // The body is bounded by max_body_bytes (1 MiB): 413 and close.
    check(
        &server,
        "RFC 9110 15.5.14",
        &chunked(b"100001\r\n"),
        413,
        true,
    );
    // Two chunks that pass the limit only together.
    let mut big = chunked(b"80000\r\n");
    big.extend(vec![b'x'; 0x80000]);
    big.extend_from_slice(b"\r\n80001\r\n");
    check(&server, "RFC 9110 15.5.14", &big, 413, true);
    // A chunk-size line without end, and an endless trailer section, are bounded.
    check(&server, s, &chunked(&[b'1'; 2000]), 400, true);
    let trailers = format!("0\r\n{}", "X-T: y\r\n".repeat(200));
    check(
        &server,
        "RFC 9112 7.1.2",
        &chunked(trailers.as_bytes()),
        431,
        true,
    );
}

#[test]
fn rfc9112_7_1_a_chunked_body_cut_at_every_byte_is_answered_once() {
    let server = routes_post();
    let request = chunked(b"4;x=1\r\nwiki\r\n6\r\npedia \r\n0\r\nT: v\r\n\r\n");
    let follow = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n";
    for cut in 1..request.len() {
        let mut s = server.connect();
        s.set_nodelay(true).unwrap();
        s.write_all(&request[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        s.write_all(&request[cut..]).unwrap();
        s.write_all(follow).unwrap();
        let first = read_response(&mut s);
        let second = read_response(&mut s);
        assert_eq!(status_of(&first), 200, "cut at {cut}: {first}");
        assert!(second.ends_with("ok"), "cut at {cut}: {second}");
    }
}

#[test]
fn rfc9112_6_transfer_encoding_framing_and_smuggling_pairs() {
    let server = routes_post();
    let s = "RFC 9112 6.1";
    // Final coding not chunked: 400. Codings before chunked: 501.
    check(
        &server,
        "RFC 9112 6.3",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        "RFC 9112 6.3",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        true,
    );
    check(&server, s, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: x-foo\r\nTransfer-Encoding: chunked\r\n\r\n", 501, true);
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        400,
        true,
    );
    // HTTP/1.0 has no transfer codings: faulty framing.
    check(
        &server,
        s,
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        true,
    );
    // CL.TE and TE.CL: both framings at once.
    check(&server, "RFC 9112 6.3", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400, true);
    check(&server, "RFC 9112 6.3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400, true);
    // TE.TE obfuscations: a coding name it does not know is never taken for chunked.
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        400,
        true,
    );
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
        400,
        true,
    );
    // Coding names are case-insensitive and whitespace around them is not part of them.
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        200,
        false,
    );
    check(
        &server,
        s,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n",
        200,
        false,
    );
}

#[test]
fn rfc9112_9_3_pipelined_requests_after_a_chunked_body_are_answered_in_order() {
    let server = routes_post();
    let mut request = chunked(b"3\r\nabc\r\n0\r\n\r\n");
    request.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    request.extend_from_slice(&chunked(b"1\r\nz\r\n0\r\nT: 1\r\n\r\n"));
    request.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let got = server.exchange(&request);
    assert_eq!(got.matches("HTTP/1.1 200 OK\r\n").count(), 4, "{got}");
    assert!(got.ends_with("Connection: close\r\n\r\nok"), "{got}");
}

#[test]
fn rfc9110_10_1_1_expect_100_continue_gets_the_final_answer_at_once() {
    let server = routes_post();
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let answer = read_response(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    // The body the client may still send is read and dropped before the close.
    let _ = s.write_all(b"hello");
    assert_eq!(read_to_close(&mut s), "");
    // Without a body there is nothing to skip: the connection stays.
    check(
        &server,
        "RFC 9110 10.1.1",
        b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n",
        200,
        false,
    );
}
