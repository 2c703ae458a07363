//! Echo routes over a socket: the request as it arrived, in text (whoami's layout) or JSON, its
//! fields in order with duplicates and names' case kept, its body shown up to `echo_max_body`
//! and cut past it (with a length or chunked), and hostile bytes that leave valid JSON and a text
//! answer framed as one response.

use std::io::{Read, Write};

use crate::common::{body_of, check, header, read_response, rss_kib, status_of, Server};

/// An echo under `/echo`, a 64-byte body limit, and room for a 10 KB header value.
const CONFIG: &str = r#"
max_header_bytes = 16384
echo_max_body = 64

[[route]]
path = "/echo"
match = "prefix"
methods = ["GET", "HEAD", "POST", "PUT"]
echo = true

[[route]]
path = "/"
match = "prefix"
body = "Hello, world!"
"#;

/// Sends `request` on a new connection and reads every byte until the close.
fn raw_exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    s.write_all(request).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    all
}

/// The head (through its blank line) and the body of one answer that is all of `raw`, checked
/// to be framed as one response: nothing follows the `Content-Length` bytes.
fn one_response(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8(raw[..end].to_vec()).expect("an ASCII head");
    let length: usize = header(&head, "Content-Length").unwrap().parse().unwrap();
    assert_eq!(raw.len(), end + length, "one response, whole: {head}");
    (head, raw[end..].to_vec())
}

#[test]
fn text_shows_the_request_line_and_every_field_in_order_as_sent() {
    let server = Server::with_config(CONFIG, &[]);
    let answer = server.exchange(
        b"GET /echo/a?x=1 HTTP/1.1\r\nHost: example.test\r\nX-Dup: one\r\nx-dUP: two\r\n\
          X-Forwarded-For: 10.0.0.1\r\nuser-AGENT: odd\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(
        header(&answer, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&answer, "X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(header(&answer, "Vary"), Some("Accept"));
    let body = body_of(&answer);
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("Hostname: "), "{body}");
    assert_eq!(lines[1], "IP: 127.0.0.1", "{body}");
    assert!(lines[2].starts_with("RemoteAddr: 127.0.0.1:"), "{body}");
    assert_eq!(
        &lines[3..],
        [
            "GET /echo/a?x=1 HTTP/1.1",
            "Host: example.test",
            "X-Dup: one",
            "x-dUP: two",
            "X-Forwarded-For: 10.0.0.1",
            "user-AGENT: odd",
            "Connection: close",
        ],
        "{body}"
    );
    // Other routes are not echoes.
    let hello = server.exchange(b"GET /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(body_of(&hello), "Hello, world!");
}

#[test]
fn an_absolute_form_targets_authority_is_the_host_echoed() {
    // RFC 9112 3.2.2: the target's host, not Host's (which must be there all the same).
    let server = Server::with_config(CONFIG, &[]);
    let request = b"GET http://a.example:8080/echo?format=json HTTP/1.1\r\nHost: other.example\r\n\
                    Connection: close\r\n\r\n";
    let (head, body) = one_response(&raw_exchange(&server, request));
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
    assert_eq!(json["host"], "a.example:8080");
}

#[test]
fn json_is_chosen_by_accept_or_by_format_json() {
    let server = Server::with_config(CONFIG, &[]);
    for (target, accept) in [
        ("/echo", "application/json"),
        ("/echo?format=json", "*/*"),
        ("/echo?a=1&format=json", "text/html"),
    ] {
        let request = format!(
            "PUT {target} HTTP/1.1\r\nHost: h.test\r\nAccept: {accept}\r\nX-A: 1\r\nx-a: 2\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        let (head, body) = one_response(&raw_exchange(&server, request.as_bytes()));
        assert_eq!(header(&head, "Content-Type"), Some("application/json"));
        assert_eq!(header(&head, "Vary"), Some("Accept"));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(json["host"], "h.test");
        assert_eq!(json["method"], "PUT");
        assert_eq!(json["target"], target);
        assert_eq!(json["version"], "HTTP/1.1");
        assert_eq!(json["body"], "hello");
        assert!(json["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        assert_eq!(json["headers"][0], serde_json::json!(["Host", "h.test"]));
        assert_eq!(json["headers"][2], serde_json::json!(["X-A", "1"]));
        assert_eq!(json["headers"][3], serde_json::json!(["x-a", "2"]));
    }
    // Text stays the default when Accept prefers it.
    let answer = server.exchange(
        b"GET /echo HTTP/1.1\r\nHost: a\r\nAccept: text/plain, application/json;q=0.5\r\n\
          Connection: close\r\n\r\n",
    );
    assert!(body_of(&answer).starts_with("Hostname: "), "{answer}");
}

#[test]
fn bodies_are_echoed_and_cut_at_the_limit_then_read_to_their_end() {
    let server = Server::with_config(CONFIG, &[]);
    let mut s = server.connect();
    let long: String = (0..200)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let chunked_long = format!("{:x}\r\n{long}\r\n0\r\n\r\n", long.len());
    let cases = [
        (
            "Content-Length: 11",
            "hello world".to_string(),
            "hello world".to_string(),
        ),
        (
            "Transfer-Encoding: chunked",
            "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n".to_string(),
            "hello world".to_string(),
        ),
        (
            "Content-Length: 200",
            long.clone(),
            format!("{}\u{2026}[cut]", &long[..64]),
        ),
        (
            "Transfer-Encoding: chunked",
            chunked_long,
            format!("{}\u{2026}[cut]", &long[..64]),
        ),
    ];
    for (framing, sent, shown) in &cases {
        let request = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n{framing}\r\n\r\n{sent}"
        );
        s.write_all(request.as_bytes()).unwrap();
        let answer = read_response(&mut s);
        let json: serde_json::Value = serde_json::from_str(body_of(&answer)).unwrap();
        assert_eq!(json["body"], shown.as_str(), "{framing}");
        let whole = if shown.ends_with("[cut]") { 200 } else { 11 };
        assert_eq!(json["body_bytes"], whole, "{framing}");
        // The same in text, on the same connection: the body was read to its end.
        let request = format!("POST /echo HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n{sent}");
        s.write_all(request.as_bytes()).unwrap();
        let answer = read_response(&mut s);
        assert!(
            body_of(&answer).ends_with(&format!("\n\n{shown}\n")),
            "{framing}: {answer}"
        );
    }
    s.write_all(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).ends_with("Hello, world!"));
}

#[test]
fn hostile_bytes_give_valid_json_and_a_text_answer_that_cannot_split() {
    let server = Server::with_config(CONFIG, &[]);
    let big = "v".repeat(10_000);
    let mut head = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nX-Quote: say \"hi\" \\ back\\slash\r\nX-Big: {big}\r\n"
    )
    .into_bytes();
    head.extend_from_slice(b"X-Latin: caf\xe9 \xff\xfe\r\n");
    let body: &[u8] = b"\x00nul\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: x=1\r\n\r\n\x1b[31m\xff\"\\";
    let request = |accept: &str| {
        let mut request = head.clone();
        request.extend_from_slice(
            format!(
                "Accept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body);
        request
    };

    let (_, json) = one_response(&raw_exchange(&server, &request("application/json")));
    let json: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    let headers = json["headers"].as_array().unwrap();
    assert_eq!(
        headers[1],
        serde_json::json!(["X-Quote", "say \"hi\" \\ back\\slash"])
    );
    assert_eq!(headers[2][1].as_str().map(str::len), Some(10_000));
    assert_eq!(headers[3][1], "caf\u{fffd} \u{fffd}\u{fffd}");
    let shown = json["body"].as_str().unwrap();
    assert!(
        shown.starts_with("\u{0}nul\r\n\r\nHTTP/1.1 200 OK"),
        "{shown:?}"
    );

    let (head, text) = one_response(&raw_exchange(&server, &request("text/plain")));
    assert_eq!(status_of(&head), 200);
    let text = String::from_utf8(text).expect("UTF-8 text");
    assert!(text.contains(&format!("X-Big: {big}\n")));
    assert!(text.contains("X-Quote: say \"hi\" \\ back\\slash\n"));
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')),
        "{text:?}"
    );
    assert!(
        text.contains("\u{fffd}nul\r\n\r\nHTTP/1.1 200 OK"),
        "{text:?}"
    );
}

#[test]
fn echo_with_a_body_is_a_configuration_error_naming_its_key() {
    for other in ["body = \"x\"", "template = true", "body_file = \"x.html\""] {
        let (ok, out) = check(&format!(
            "[[route]]\npath = \"/\"\n\n[[route]]\npath = \"/e\"\necho = true\n{other}\n"
        ));
        assert!(!ok, "{other}: {out}");
        assert!(
            out.contains("FILE at line 6: echo: route `/e`"),
            "{other}: {out}"
        );
    }
    let (ok, out) = check("echo_max_body = \"64kb\"\n");
    assert!(!ok && out.contains("echo_max_body"), "{out}");
    let (ok, out) = check("echo_max_body = \"1MiB\"\n[[route]]\npath = \"/e\"\necho = true\n");
    assert!(ok, "{out}");
}

#[test]
fn a_large_echo_gives_its_buffers_back_after_its_answer() {
    let server = Server::with_config(
        "echo_max_body = \"4MiB\"\n[[route]]\npath = \"/e\"\nmethods = [\"POST\"]\necho = true\n",
        &["--workers", "1"],
    );
    let small = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
    assert_eq!(status_of(&server.exchange(small)), 200);
    let before = rss_kib(server.pid());
    // 1 MiB of control bytes, six bytes each in JSON: an answer of over 6 MiB, rendered, written
    // and sent from the worker's buffers.
    let body = vec![1u8; 1 << 20];
    let mut request = format!(
        "POST /e?format=json HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let answer = raw_exchange(&server, &request);
    assert!(answer.len() > 6 << 20, "{} bytes", answer.len());
    // Measured once the worker has dropped the connection, which the close only just preceded.
    let start = std::time::Instant::now();
    let mut after = rss_kib(server.pid());
    while after > before + 2048 && start.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = rss_kib(server.pid());
    }
    assert!(
        after <= before + 2048,
        "{before} KiB before, {after} KiB after"
    );
}
