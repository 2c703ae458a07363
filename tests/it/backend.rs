//! The default backend and the demo target: error pages chosen by `X-Code` and format, body
//! templates and their escaping, conditional requests (`ETag`, 304), and weighted statuses.

use std::io::Write;
use std::time::Duration;

use crate::common::{body_of, check, count_responses, header, read_response, status_of, Server};

fn get(server: &Server, headers: &str) -> String {
    get_path(server, "/", headers)
}

fn get_path(server: &Server, path: &str, headers: &str) -> String {
    server.exchange(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn error_pages_follow_x_code_x_format_and_accept() {
    let server = Server::start(&["--error-pages"]);
    let html = get(&server, "X-Code: 404\r\n");
    assert_eq!(status_of(&html), 404, "{html}");
    assert_eq!(
        header(&html, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        body_of(&html).contains("<title>404 Not Found</title>"),
        "{html}"
    );

    let json = get(
        &server,
        "X-Code: 503\r\nX-Format: application/json\r\nAccept: text/html\r\n",
    );
    assert_eq!(status_of(&json), 503);
    assert_eq!(header(&json, "content-type"), Some("application/json"));
    let page: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
    assert_eq!(page["code"], 503);
    assert_eq!(page["reason"], "Service Unavailable");

    let text = get(
        &server,
        "X-Code: 502\r\nAccept: text/plain;q=0.9, image/png\r\n",
    );
    assert_eq!(
        header(&text, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        body_of(&text),
        "502 Bad Gateway\nThe server behind this one gave an invalid answer; try again in a few minutes.\n"
    );
    // X-Format names none of the three: Accept decides; HTML before JSON when both are taken.
    let accept = get(
        &server,
        "X-Code: 500\r\nX-Format: application/xml\r\nAccept: application/json, text/html\r\n",
    );
    assert_eq!(
        header(&accept, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let refused = get(
        &server,
        "X-Code: 500\r\nAccept: text/html;q=0, application/json\r\n",
    );
    assert_eq!(header(&refused, "content-type"), Some("application/json"));

    // Not a code from 400 to 599, or none: routed as usual.
    for ask in [
        "X-Code: 399\r\n",
        "X-Code: 600\r\n",
        "X-Code: abc\r\n",
        "X-Code: +503\r\n",
        "X-Code: 0503\r\n",
        "",
    ] {
        let routed = get(&server, ask);
        assert_eq!(status_of(&routed), 200, "{ask:?}");
        assert_eq!(body_of(&routed), "Hello, world!");
    }
}

#[test]
fn error_pages_come_from_the_directory_then_the_class_then_the_built_in_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("404.html"),
        "<p>{{code}}: {{header.X-Original-URI}} in {{header.x-namespace}} ({{header.X-Ingress-Name}}/{{header.X-Service-Name}}:{{header.X-Service-Port}}) {{request_id}}</p>\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("5xx.json"),
        "{\"c\":{{code}},\"uri\":\"{{header.x-original-uri}}\"}",
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a page").unwrap();
    let toml = format!(
        "[error_pages]\nenabled = true\ndir = \"{}\"\n",
        dir.path().display()
    );
    let mut server = Server::with_config(&toml, &[]);
    let ingress = "X-Original-URI: /shop/<b>\r\nX-Namespace: shop\r\nX-Ingress-Name: web\r\n\
                   X-Service-Name: cart\r\nX-Service-Port: 80\r\nX-Request-ID: 0af7651916cd43dd\r\n";
    let page = get(&server, &format!("X-Code: 404\r\n{ingress}"));
    assert_eq!(
        body_of(&page),
        "<p>404: /shop/&lt;b&gt; in shop (web/cart:80) 0af7651916cd43dd</p>\n"
    );
    let class = get(
        &server,
        &format!("X-Code: 504\r\nAccept: application/json\r\n{ingress}"),
    );
    assert_eq!(status_of(&class), 504);
    assert_eq!(body_of(&class), "{\"c\":504,\"uri\":\"/shop/<b>\"}");
    // Neither 503.html nor 5xx.html: the built-in page.
    let builtin = get(&server, "X-Code: 503\r\n");
    assert!(
        body_of(&builtin).contains("<title>503 Service Unavailable</title>"),
        "{builtin}"
    );

    // Files are read at start and on SIGHUP, never per request.
    std::fs::write(dir.path().join("404.html"), "changed {{code}}\n").unwrap();
    assert!(body_of(&get(&server, "X-Code: 404\r\n")).starts_with("<p>404"));
    server.signal(libc::SIGHUP);
    server.await_log(&["configuration reloaded"]);
    assert_eq!(body_of(&get(&server, "X-Code: 404\r\n")), "changed 404\n");

    // A page with an unknown variable is refused at reload, and the pages in use stay.
    std::fs::write(dir.path().join("404.html"), "{{nonsense}}").unwrap();
    server.signal(libc::SIGHUP);
    let refused = server.await_log(&["configuration refused", "\"cause\":\"signal\""]);
    assert!(
        refused.contains("404.html") && refused.contains("nonsense"),
        "{refused}"
    );
    assert_eq!(body_of(&get(&server, "X-Code: 404\r\n")), "changed 404\n");
    server.signal(libc::SIGTERM);
    assert_eq!(
        server.wait(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn templates_say_who_answered_and_what_was_asked() {
    let server = Server::with_config(
        "[[route]]\npath = \"/who\"\ntemplate = true\n\
         body = \"{{method}} {{path}} {{query}} {{host}} {{remote_addr}} {{request_id}} {{header.x-thing}} {{env.RESPONDER_TEST_ZONE}} {{hostname}} {{time}}\"\n",
        &[],
    );
    let got = server.exchange(
        b"GET /who?a=1&b=2 HTTP/1.1\r\nHost: example.test\r\nX-Request-Id: req-1\r\nX-THING: thing one\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&got), 200, "{got}");
    let body = body_of(&got);
    assert_eq!(
        header(&got, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(
        header(&got, "etag").is_none(),
        "a templated answer has no validators"
    );
    let words: Vec<&str> = body.split(' ').collect();
    assert_eq!(
        &words[..4],
        ["GET", "/who", "a=1&b=2", "example.test"],
        "{body}"
    );
    assert!(words[4].starts_with("127.0.0.1:"), "{body}");
    assert_eq!(&words[5..8], ["req-1", "thing", "one"], "{body}");
    // The test runner's environment has no RESPONDER_TEST_ZONE: empty text.
    assert_eq!(words[8], "", "{body}");
    assert!(!words[9].is_empty(), "hostname: {body}");
    assert!(
        words[10].ends_with('Z') && words[10].len() == 20,
        "time: {body}"
    );
}

#[test]
fn reflected_values_cannot_inject_markup_a_header_or_a_second_response() {
    let server = Server::with_config(
        "[[route]]\npath = \"/html\"\ntemplate = true\nheaders = { \"Content-Type\" = \"text/html\" }\n\
         body = \"<p title='{{header.x-evil}}'>{{path}}</p>\"\n\
         [[route]]\npath = \"/json\"\ntemplate = true\nheaders = { \"Content-Type\" = \"application/json\" }\n\
         body = \"{\\\"evil\\\":\\\"{{header.x-evil}}\\\",\\\"q\\\":\\\"{{query}}\\\"}\"\n\
         [[route]]\npath = \"/text\"\ntemplate = true\nbody = \"[{{header.x-evil}}]\"\n",
        &["--max-header-bytes", "65536"],
    );
    // A tab is the one control character a field value may hold.
    let mut evil = b"X-Evil: <script>alert('x')</script>\"\\ \t\xff\xfe".to_vec();
    evil.extend_from_slice(&vec![b'a'; 10_000]);
    let ask = |path: &str| {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n").into_bytes();
        request.extend_from_slice(&evil);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let mut s = server.connect();
        s.write_all(&request).unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut all).unwrap();
        all
    };
    let html = String::from_utf8(ask("/html")).unwrap();
    assert_eq!(count_responses(&html), 1);
    let body = body_of(&html);
    assert!(
        body.starts_with(
            "<p title='&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;\\ \u{fffd}"
        ),
        "{body:.200}"
    );
    assert!(!body.contains("<script"), "{body:.200}");

    let json = String::from_utf8(ask("/json?%22%0d")).unwrap();
    let value: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
    let reflected = value["evil"].as_str().unwrap();
    assert!(
        reflected.starts_with("<script>alert('x')</script>\"\\ \t\u{fffd}"),
        "{reflected:.80}"
    );
    assert_eq!(value["q"], "%22%0d");

    let text = ask("/text");
    let (head, body) = text.split_at(text.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
    let head = String::from_utf8_lossy(head);
    assert_eq!(
        header(&head, "content-length"),
        Some(body.len().to_string().as_str())
    );
    // In text, the tab is dropped and the other bytes are kept as they came.
    assert!(
        body.starts_with(b"[<script>alert('x')</script>\"\\ \xff\xfe"),
        "{:?}",
        &body[..40]
    );
}

#[test]
fn xml_svg_and_script_templates_escape_what_they_reflect() {
    let server = Server::with_config(
        "[[route]]\npath = \"/svg\"\ntemplate = true\nheaders = { \"Content-Type\" = \"image/svg+xml\" }\n\
         body = \"<svg><text>{{header.x-evil}}</text></svg>\"\n\
         [[route]]\npath = \"/xml\"\ntemplate = true\nheaders = { \"Content-Type\" = \"application/xml\" }\n\
         body = \"<r>{{header.x-evil}}</r>\"\n\
         [[route]]\npath = \"/js\"\ntemplate = true\n\
         headers = { \"Content-Type\" = \"text/javascript; charset=utf-8\" }\n\
         body = \"var a = '{{header.x-evil}}'; var b = `{{header.x-evil}}`;\"\n\
         [[route]]\npath = \"/tj\"\ntemplate = true\nheaders = { \"Content-Type\" = \"text/json\" }\n\
         body = \"{\\\"a\\\":\\\"{{header.x-evil}}\\\"}\"\n",
        &[],
    );
    let evil = "</text><script>alert(1)</script>'`\"\\&";
    let ask =
        |path: &str| body_of(&get_path(&server, path, &format!("X-Evil: {evil}\r\n"))).to_string();
    let markup = "&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;`&quot;\\&amp;";
    assert_eq!(ask("/svg"), format!("<svg><text>{markup}</text></svg>"));
    assert_eq!(ask("/xml"), format!("<r>{markup}</r>"));
    let script = "\\u003c/text\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0027\\u0060\\\"\\\\\\u0026";
    assert_eq!(
        ask("/js"),
        format!("var a = '{script}'; var b = `{script}`;")
    );
    let json: serde_json::Value = serde_json::from_str(&ask("/tj")).unwrap();
    assert_eq!(json["a"], evil);
}

#[test]
fn a_template_with_an_unknown_variable_is_a_configuration_error() {
    let (ok, err) =
        check("[[route]]\npath = \"/\"\ntemplate = true\nbody = \"{{method}} {{nope}}\"\n");
    assert!(!ok);
    assert!(
        err.contains("FILE at line 1") && err.contains("body") && err.contains("{{nope}}"),
        "{err}"
    );
}

#[test]
fn validators_answer_conditional_requests_with_304() {
    let server = Server::start(&[]);
    let first = get(&server, "");
    let etag = header(&first, "etag").expect("an ETag").to_string();
    let modified = header(&first, "last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert_eq!(
        header(&get(&server, ""), "etag"),
        Some(etag.as_str()),
        "stable"
    );

    let not_modified = |asks: &str| {
        let got = get(&server, asks);
        match status_of(&got) {
            304 => {
                assert_eq!(header(&got, "etag"), Some(etag.as_str()), "{got}");
                assert!(header(&got, "content-length").is_none(), "{got}");
                assert!(body_of(&got).is_empty(), "{got}");
                true
            }
            200 => false,
            other => panic!("{other}: {got}"),
        }
    };
    assert!(not_modified(&format!("If-None-Match: {etag}\r\n")));
    assert!(not_modified(&format!(
        "If-None-Match: \"other\", W/{etag}\r\n"
    )));
    assert!(not_modified("If-None-Match: *\r\n"));
    assert!(!not_modified("If-None-Match: \"other\"\r\n"));
    assert!(not_modified(&format!("If-Modified-Since: {modified}\r\n")));
    assert!(not_modified(
        "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"
    ));
    assert!(!not_modified(
        "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
    ));
    assert!(!not_modified("If-Modified-Since: yesterday\r\n"));
    // With If-None-Match, If-Modified-Since is not looked at.
    assert!(!not_modified(&format!(
        "If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"
    )));
    let head = server.exchange(
        format!("HEAD / HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status_of(&head), 304);
    // A POST is not a conditional GET.
    let post = Server::with_config(
        "[[route]]\npath = \"/\"\nmethods = [\"GET\", \"POST\"]\nbody = \"x\"\n",
        &[],
    );
    let got = post.exchange(
        b"POST / HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&got), 200);
}

#[test]
fn the_body_file_s_modification_time_is_the_last_modified() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "from a file").unwrap();
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&body)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let server = Server::with_config(
        &format!(
            "[[route]]\npath = \"/\"\nbody_file = \"{}\"\n",
            body.display()
        ),
        &[],
    );
    let got = get(&server, "");
    assert_eq!(
        header(&got, "last-modified"),
        Some("Sun, 13 Sep 2020 12:26:40 GMT")
    );
}

#[test]
fn weighted_statuses_follow_their_weights() {
    let server = Server::with_config(
        "[[route]]\npath = \"/\"\nstatuses = { \"200\" = 90, \"503\" = 10 }\nbody = \"chaos\"\n",
        &["--workers", "1"],
    );
    const N: usize = 10_000;
    let mut s = server.connect();
    let request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut counts = std::collections::BTreeMap::new();
    // In batches of 100 pipelined requests.
    for _ in 0..N / 100 {
        s.write_all(&request.repeat(100)).unwrap();
        for _ in 0..100 {
            let response = read_response(&mut s);
            *counts.entry(status_of(&response)).or_insert(0usize) += 1;
        }
    }
    let unavailable = counts.get(&503).copied().unwrap_or(0);
    assert_eq!(
        counts.get(&200).copied().unwrap_or(0) + unavailable,
        N,
        "{counts:?}"
    );
    // Binomial, n = 10,000, p = 0.1: mean 1,000, standard deviation 30; five of them either way.
    assert!((850..=1150).contains(&unavailable), "{counts:?}");
}

#[test]
fn statuses_and_status_together_are_refused() {
    let (ok, err) = check("[[route]]\npath = \"/\"\nstatus = 200\nstatuses = { \"503\" = 1 }\n");
    assert!(!ok && err.contains("`status` and `statuses`"), "{err}");
    let (ok, err) = check("[[route]]\npath = \"/\"\nstatuses = { \"503\" = 0 }\n");
    assert!(!ok && err.contains("weights"), "{err}");
    // A weighted answer is prebuilt: a template's text would go out unrendered.
    let (ok, err) = check(
        "[[route]]\npath = \"/\"\ntemplate = true\nbody = \"{{method}}\"\nstatuses = { \"200\" = 1 }\n",
    );
    assert!(
        !ok && err.contains("`statuses` is for fixed bodies"),
        "{err}"
    );
}

#[test]
fn a_delay_holds_the_answer_on_the_timer_while_others_are_served() {
    let mut server = Server::with_config(
        "[[route]]\npath = \"/slow\"\ndelay = \"400ms\"\nbody = \"slow\"\n\
         [[route]]\npath = \"/range\"\ndelay = { min = \"100ms\", max = \"300ms\" }\nbody = \"range\"\n\
         [[route]]\npath = \"/fast\"\nbody = \"fast\"\n",
        &["--workers", "1"],
    );
    // Two pipelined requests behind the slow one: answered in order, after it.
    let mut slow = server.connect();
    let started = std::time::Instant::now();
    slow.write_all(
        b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\nGET /range HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    // Meanwhile, on the same (single) worker, another client is answered at once.
    let other_started = std::time::Instant::now();
    let other = get_path(&server, "/fast", "");
    let other_took = other_started.elapsed();
    assert_eq!(body_of(&other), "fast");
    assert!(other_took < Duration::from_millis(200), "{other_took:?}");

    let first = read_response(&mut slow);
    let first_took = started.elapsed();
    let second = read_response(&mut slow);
    let third = read_response(&mut slow);
    let third_took = started.elapsed();
    assert_eq!(
        [body_of(&first), body_of(&second), body_of(&third)],
        ["slow", "fast", "range"]
    );
    assert!(
        first_took >= Duration::from_millis(400) && first_took < Duration::from_millis(1500),
        "{first_took:?}"
    );
    assert!(
        third_took >= first_took + Duration::from_millis(100),
        "{first_took:?} then {third_took:?}"
    );

    // A drain waits for a held answer, and still ends by --shutdown-timeout.
    let mut held = server.connect();
    held.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    server.signal(libc::SIGTERM);
    let answer = read_response(&mut held);
    assert_eq!(body_of(&answer), "slow");
    assert_eq!(
        server.wait(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn a_delay_longer_than_the_shutdown_timeout_is_cut_by_it() {
    let mut server = Server::with_config(
        "[[route]]\npath = \"/\"\ndelay = \"30s\"\nbody = \"late\"\n",
        &["--workers", "1", "--shutdown-timeout", "0.5"],
    );
    let mut held = server.connect();
    held.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let signalled = std::time::Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(3), "forced");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
}

#[test]
fn delays_are_checked_at_load() {
    for (delay, fault) in [
        ("\"fast\"", "not a duration"),
        ("\"-1s\"", "out of range"),
        ("\"2h\"", "not a duration"),
        ("\"61m\"", "out of range"),
        ("{ min = \"2s\", max = \"1s\" }", "above max"),
    ] {
        let (ok, err) = check(&format!("[[route]]\npath = \"/\"\ndelay = {delay}\n"));
        assert!(!ok && err.contains(fault), "{delay}: {err}");
    }
}
