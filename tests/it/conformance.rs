//! HTTP/1.1 conformance, by RFC section: each case sends raw bytes over a real socket and checks
//! the status, the `Connection` header, and whether the server closed the connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{self, body_of, header, read_response, read_to_close, status_of, Server};

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
/// Returns the answer.
fn check(server: &Server, section: &str, request: &[u8], status: u16, closes: bool) -> String {
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
    answer
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
    // 3.2.2: an absolute-form target's authority wins over Host's value, but 3.2's 400 is for
    // any request: Host is still required once, and valid.
    check(
        &server,
        "RFC 9112 3.2.2",
        b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n",
        200,
        false,
    );
    for bad in [
        &b"GET http://a.example/x HTTP/1.1\r\n\r\n"[..],
        b"GET http://a.example/x HTTP/1.1\r\nHost: b, c\r\n\r\n",
        b"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
        b"GET http://a.example/x HTTP/1.0\r\nHost: a b\r\n\r\n",
    ] {
        check(&server, "RFC 9112 3.2", bad, 400, true);
    }
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
    // One that could never be a request line is malformed, however long: a byte no target
    // may hold, whole or in pieces.
    let mut garbage = b"GET /caf\xc3\xa9".to_vec();
    garbage.extend_from_slice(&[b'a'; 2000]);
    garbage.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
    check(&server, s, &garbage, 400, true);
    let mut s2 = server.connect();
    s2.write_all(&garbage[..1500]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let _ = s2.write_all(&garbage[1500..]);
    assert_eq!(status_of(&read_to_close(&mut s2)), 400);
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
    // No tunnels, whatever the target's form: a 2xx to CONNECT would say one is open.
    for connect in [
        &b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"[..],
        b"CONNECT / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"CONNECT http://a.example:443/ HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    ] {
        check(&server, "RFC 9110 9.3.6", connect, 501, true);
    }
}

#[test]
fn rfc9110_9_3_2_a_refused_head_request_gets_no_content() {
    let server = Server::with_config("max_body_bytes = 1000\n", &[]);
    for (request, status) in [
        (
            &b"HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"[..],
            413,
        ),
        (b"HEAD / HTTP/1.1\r\n\r\n", 400),
        (
            b"HEAD / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
    ] {
        let mut s = server.connect();
        s.write_all(request).unwrap();
        let answer = read_to_close(&mut s);
        assert_eq!(status_of(&answer), status, "{answer}");
        // The length a GET would have had, and nothing after the head.
        assert!(header(&answer, "content-length").is_some(), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "{answer:?}");
    }
    // The same refusals to a GET carry their text.
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(!body_of(&read_to_close(&mut s)).is_empty());
}

#[test]
fn rfc9112_9_3_close_wins_over_keep_alive_in_http10() {
    let server = Server::start(&[]);
    let s = "RFC 9112 9.3";
    for request in [
        &b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
    ] {
        check(&server, s, request, 200, true);
    }
    check(
        &server,
        s,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        200,
        false,
    );
}

#[test]
fn rfc9112_2_2_empty_lines_before_a_request_are_crlf_or_lf_never_a_bare_cr() {
    let server = Server::start(&[]);
    let s = "RFC 9112 2.2";
    for good in [
        &b"\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"\n\r\n\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        check(&server, s, good, 200, false);
    }
    for bad in [
        &b"\rGET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"\r\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\r\n\rGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        check(&server, s, bad, 400, true);
    }
    // A line's CR and LF in two reads are still one empty line.
    let mut c = server.connect();
    c.write_all(b"\r").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(b"\nGET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_response(&mut c)), 200);
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
    // An HTTP/1.0 request's expectation is ignored: its body is read and the next request
    // answered.
    let mut s = server.connect();
    s.write_all(
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n",
    )
    .unwrap();
    let answer = read_response(&mut s);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains("Connection: keep-alive\r\n"), "{answer}");
    let next = read_to_close(&mut s);
    assert_eq!(status_of(&next), 200, "{next}");
}

#[test]
fn rfc9112_7_1_1_chunk_lines_follow_the_grammar() {
    let server = routes_post();
    let s = "RFC 9112 7.1.1";
    // Each a framing a proxy in front may read another way: 400 and close.
    for bad in [
        &b"5;\r\nhello\r\n0\r\n\r\n"[..],
        b"5;a b\r\nhello\r\n0\r\n\r\n",
        b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
        b"5;a=(b)\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"5\t\r\nhello\r\n0\r\n\r\n",
        b"5;a \r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0 \r\n\r\n",
        b"5;a=caf\xc3\xa9\r\nhello\r\n0\r\n\r\n",
    ] {
        check(&server, s, &chunked(bad), 400, true);
    }
    // Their neighbours that the grammar allows, BWS included.
    for good in [
        &b"5;a=b\r\nhello\r\n0\r\n\r\n"[..],
        b"5;a=\"b c\"\r\nhello\r\n0\r\n\r\n",
        b"5 ;a\r\nhello\r\n0\r\n\r\n",
        b"5\t; a = \"q\\\"\" ;b=c\r\nhello\r\n0;z\r\n\r\n",
        // obs-text, which a quoted string may hold.
        b"5;a=\"caf\xc3\xa9\"\r\nhello\r\n0\r\n\r\n",
    ] {
        check(&server, s, &chunked(good), 200, false);
    }
}

#[test]
fn rfc9112_3_2_targets_are_visible_ascii() {
    // A route for every path: the refusal comes before routing.
    let server = Server::start(&[]);
    let s = "RFC 9112 3.2, RFC 3986 2";
    for bad in [
        &b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /\x80 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a\x7f HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET http://t/caf\xc3\xa9 HTTP/1.1\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.2\r\nHost: t\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.0\r\n\r\n",
    ] {
        check(&server, s, bad, 400, true);
    }
    check(
        &server,
        s,
        b"GET /caf%C3%A9?q=%E2%82%AC HTTP/1.1\r\nHost: t\r\n\r\n",
        200,
        false,
    );
}

#[test]
fn rfc9112_4_reason_phrases_are_the_registrys_or_empty() {
    let mut toml = String::new();
    for status in [409, 422, 451, 507, 599] {
        toml += &format!("[[route]]\npath = \"/{status}\"\nstatus = {status}\n\n");
    }
    let server = Server::with_config(&toml, &["--error-pages"]);
    let s = "RFC 9110 15, RFC 9112 4";
    for (status, line) in [
        (409, "HTTP/1.1 409 Conflict\r\n"),
        (422, "HTTP/1.1 422 Unprocessable Content\r\n"),
        (451, "HTTP/1.1 451 Unavailable For Legal Reasons\r\n"),
        (507, "HTTP/1.1 507 Insufficient Storage\r\n"),
        // An unregistered status has the empty phrase, never "Unknown".
        (599, "HTTP/1.1 599 \r\n"),
    ] {
        let request = format!("GET /{status} HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = check(&server, s, request.as_bytes(), status, false);
        assert!(answer.starts_with(line), "{answer}");
    }
    // Error pages say the same phrase, in every format.
    let ask_page = |code: u16, accept: &str| {
        let request =
            format!("GET / HTTP/1.1\r\nHost: t\r\nX-Code: {code}\r\nAccept: {accept}\r\n\r\n");
        check(&server, s, request.as_bytes(), code, false)
    };
    let html = ask_page(422, "text/html");
    assert!(
        html.starts_with("HTTP/1.1 422 Unprocessable Content\r\n"),
        "{html}"
    );
    assert!(
        body_of(&html).contains("<title>422 Unprocessable Content</title>"),
        "{html}"
    );
    let json = ask_page(451, "application/json");
    assert!(
        body_of(&json).starts_with("{\"code\":451,\"reason\":\"Unavailable For Legal Reasons\","),
        "{json}"
    );
    let text = ask_page(599, "text/plain");
    assert!(text.starts_with("HTTP/1.1 599 \r\n"), "{text}");
    assert!(body_of(&text).starts_with("599 \n"), "{text}");
    assert!(!html.contains("Unknown") && !json.contains("Unknown") && !text.contains("Unknown"));
}

#[test]
fn rfc9110_15_3_6_a_205_has_no_content_and_no_validators() {
    let server = Server::with_config(
        "[[route]]\npath = \"/reset\"\nmethods = [\"GET\", \"HEAD\", \"POST\"]\nstatus = 205\n",
        &[],
    );
    let s = "RFC 9110 15.3.6";
    for request in [
        &b"POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"[..],
        b"GET /reset HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD /reset HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let answer = check(&server, s, request, 205, false);
        assert!(
            answer.starts_with("HTTP/1.1 205 Reset Content\r\n"),
            "{answer}"
        );
        assert_eq!(header(&answer, "Content-Length"), Some("0"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "no content: {answer}");
        for absent in ["ETag", "Last-Modified", "Content-Type"] {
            assert_eq!(header(&answer, absent), None, "{absent}: {answer}");
        }
    }
    // Validators would make a 304 of it: a conditional request gets the 205 too.
    check(
        &server,
        s,
        b"GET /reset HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n",
        205,
        false,
    );
    // Content for a 205 is a configuration error naming the file, the line and the key.
    for (toml, key, line) in [
        ("status = 205\nbody = \"x\"\n", "body", 4),
        ("status = 205\nbody_file = \"page.html\"\n", "body_file", 4),
        ("status = 205\ntemplate = true\n", "template", 4),
        ("status = 205\necho = true\n", "echo", 4),
        ("body = \"\"\nstatus = 205\n", "body", 3),
        (
            "body = \"x\"\nstatuses = { \"200\" = 1, \"205\" = 1 }\n",
            "body",
            3,
        ),
    ] {
        let (ok, out) = common::check(&format!("[[route]]\npath = \"/r\"\n{toml}"));
        assert!(!ok, "{toml}: {out}");
        assert!(
            out.contains(&format!(
                "FILE at line {line}: {key}: route `/r` answers 205"
            )),
            "{toml}: {out}"
        );
        assert!(out.contains("RFC 9110 15.3.6"), "{out}");
    }
}

#[test]
fn rfc9110_15_4_5_only_the_server_sends_304() {
    for (toml, key) in [
        ("status = 304\n", "status"),
        ("statuses = { \"200\" = 1, \"304\" = 1 }\n", "statuses"),
    ] {
        let (ok, out) = common::check(&format!("[[route]]\npath = \"/r\"\n\n{toml}"));
        assert!(!ok, "{toml}: {out}");
        assert!(
            out.contains(&format!("FILE at line 4: {key}: route `/r` answers 304")),
            "{toml}: {out}"
        );
    }
    // The 304 it sends itself, to a conditional request: no content, no `Content-Type`.
    let server = Server::start(&[]);
    let answer = check(
        &server,
        "RFC 9110 15.4.5",
        b"GET / HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n",
        304,
        false,
    );
    assert!(
        answer.starts_with("HTTP/1.1 304 Not Modified\r\n"),
        "{answer}"
    );
    assert!(header(&answer, "ETag").is_some(), "{answer}");
    for absent in ["Content-Type", "Content-Length"] {
        assert_eq!(header(&answer, absent), None, "{absent}: {answer}");
    }
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
}

/// Each request gets its status, keeps its connection, and has `field` set to `value` (`None`:
/// absent).
fn each_says(
    server: &Server,
    section: &str,
    cases: &[(&[u8], u16)],
    field: &str,
    value: Option<&str>,
) {
    for &(request, status) in cases {
        let answer = check(server, section, request, status, false);
        assert_eq!(header(&answer, field), value, "{field}: {answer}");
    }
}

#[test]
fn rfc9110_12_5_5_error_pages_vary_by_the_fields_that_chose_them() {
    let server = Server::start(&["--error-pages"]);
    let s = "RFC 9110 12.5.5";
    let pages: [(&[u8], u16); 3] = [
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Code: 503\r\n\r\n", 503),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Code: 404\r\nAccept: application/json\r\n\r\n",
            404,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Code: 500\r\nX-Format: text/plain\r\n\r\n",
            500,
        ),
    ];
    let chosen_by = "X-Code, X-Format, Accept, Accept-Language";
    each_says(&server, s, &pages, "Vary", Some(chosen_by));
    // Accept chooses a format nowhere else: a route's own answer varies by nothing.
    let route: [(&[u8], u16); 1] = [(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 200)];
    each_says(&server, s, &route, "Vary", None);
    // A pinned language is chosen by no field.
    let pinned = Server::with_config("[error_pages]\nenabled = true\nlanguage = \"de\"\n", &[]);
    each_says(&pinned, s, &pages, "Vary", Some("X-Code, X-Format, Accept"));
}

#[test]
fn rfc9111_5_2_2_5_probes_and_metrics_are_not_stored() {
    let server = Server::start(&[]);
    let s = "RFC 9111 5.2.2.5";
    let probes: [(&[u8], u16); 5] = [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        (b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        (b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        (b"POST /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 405),
        (b"OPTIONS /readyz HTTP/1.1\r\nHost: t\r\n\r\n", 204),
    ];
    each_says(&server, s, &probes, "Cache-Control", Some("no-store"));
    // The routes' answers keep their own caching, which is none unless configured.
    let route: [(&[u8], u16); 1] = [(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 200)];
    each_says(&server, s, &route, "Cache-Control", None);
}
