//! The keep-alive hot path allocates nothing: the real worker loop runs in this test's process,
//! under a global allocator that counts, and serves keep-alive requests over real sockets, its
//! access log on and formatted by the JSON layer. (One test in this file: the count covers the
//! whole process, and the log subscriber is the process's.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use responder::serve::control::Phase;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

mod in_process;
use in_process::{in_process_worker, test_config, InProcess};
use responder::answers::template::{Kind, Template};
use responder::config::{MatchKind, Route};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A request carrying every field the access log reports, its request id echoed in the answer.
const REQUEST: &[u8] = b"GET /path?q=1 HTTP/1.1\r\nHost: test\r\nUser-Agent: hot-path\r\n\
    Referer: http://test/\r\nX-Forwarded-For: 192.0.2.1\r\nX-Request-Id: hot-1\r\n\
    traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
/// A chunked body with an extension and a trailer: decoded and discarded (the default route
/// answers POST with 405, after the body).
const CHUNKED: &[u8] = b"POST /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
    5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n";

/// A templated route, with every kind of request value.
const TEMPLATED: &[u8] = b"GET /t?q=1 HTTP/1.1\r\nHost: test\r\nUser-Agent: hot-path\r\n\
    X-Request-Id: hot-2\r\n\r\n";
const TEMPLATE: &str = "{{method}} {{path}} {{query}} {{host}} {{remote_addr}} {{request_id}} \
    {{header.user-agent}} {{time}} {{hostname}} end.";
/// An error page, as an ingress asks for it.
const ERROR_PAGE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nX-Code: 503\r\n\
    Accept: application/json\r\nX-Original-URI: /x\r\n\r\n";

/// The built-in HTML page, with its details, in each language.
const LANGUAGES: [&str; 7] = ["en", "de", "fr", "es", "pt", "ja", "zh"];

fn html_page(lang: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Code: 404\r\nAccept-Language: {lang}\r\n\
         X-Original-URI: /x\r\nX-Request-Id: hot-3\r\n\r\n"
    )
    .into_bytes()
}

/// Echoes: a body with a length, a chunked one, and JSON.
const ECHO: &[u8] = b"POST /e HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello";
const ECHO_CHUNKED: &[u8] = b"POST /e HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
    5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
const ECHO_JSON: &[u8] =
    b"GET /e?format=json HTTP/1.1\r\nHost: test\r\nUser-Agent: hot-path\r\n\r\n";

/// Sends `request` `n` times on a kept-alive connection, one at a time, and reads each answer
/// into a fixed buffer; each must end with `ending`.
fn ask(s: &mut TcpStream, request: &[u8], n: usize, answer_len: usize, ending: &[u8]) {
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        s.write_all(request).unwrap();
        s.read_exact(&mut buf[..answer_len]).unwrap();
        assert!(buf[..answer_len].ends_with(ending));
    }
}

/// Sends `request` once and reads its answer whole, up to `ending`: the answer (every answer to
/// it is as long).
fn first_answer(s: &mut TcpStream, request: &[u8], ending: &[u8]) -> String {
    s.write_all(request).unwrap();
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while !buf[..len].ends_with(ending) {
        let n = s.read(&mut buf[len..]).unwrap();
        assert!(n > 0, "closed after {len} bytes");
        len += n;
    }
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Access lines that named the trace of [`REQUEST`], as the JSON layer formatted them.
static TRACED_LINES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Where this thread's lines are formatted: it keeps its capacity.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The JSON layer's buffer: a line of its own, counted if it names the trace, then cleared.
fn count_traced_lines(write: &mut responder::log::json::WriteLine<'_>) {
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        write(&mut line);
        let trace =
            br#","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7""#;
        if line.windows(trace.len()).any(|w| w == trace) {
            TRACED_LINES.fetch_add(1, Ordering::Relaxed);
        }
    });
}

#[test]
fn keep_alive_requests_allocate_nothing() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(responder::log::json::JsonLines {
            append: count_traced_lines,
        });
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let InProcess {
        worker,
        control,
        addr,
        metrics,
    } = in_process_worker(&config(), 16);
    let server = std::thread::spawn(move || worker.run());

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = b"Hello, world!";
    let first = first_answer(&mut s, REQUEST, hello);
    assert!(first.contains("\r\nX-Request-Id: hot-1\r\n"), "{first}");
    let answer_len = first.len();
    // Warm up: the connection's first request, timers, and whatever the loop sets up once.
    ask(&mut s, REQUEST, 99, answer_len, hello);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let traced_before = TRACED_LINES.load(Ordering::Relaxed);
    ask(&mut s, REQUEST, 10_000, answer_len, hello);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let traced = TRACED_LINES.load(Ordering::Relaxed) - traced_before;

    // Chunked bodies: the first one makes the connection's pending answer; after it, nothing.
    let refused = b"405 Method Not Allowed\n";
    let chunked_len = first_answer(&mut s, CHUNKED, refused).len();
    ask(&mut s, CHUNKED, 99, chunked_len, refused);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    ask(&mut s, CHUNKED, 10_000, chunked_len, refused);
    let chunked_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    // A templated route, an error page and echoes render into the worker's buffers; an echo's
    // body is kept in the connection's pending answer, made by the first.
    let rendered = [
        (TEMPLATED, &b" end."[..]),
        (ERROR_PAGE, b"}\n"),
        (ECHO, b"\nhello\n"),
        (ECHO_CHUNKED, b"\nhello world\n"),
        (ECHO_JSON, b"}\n"),
    ]
    .map(|(request, ending)| {
        let len = first_answer(&mut s, request, ending).len();
        ask(&mut s, request, 99, len, ending);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        ask(&mut s, request, 10_000, len, ending);
        ALLOCATIONS.load(Ordering::Relaxed) - before
    });

    // The built-in HTML page in every language renders into them too.
    let languages = LANGUAGES.map(|lang| {
        let request = html_page(lang);
        let ending = b"</html>\n";
        let first = first_answer(&mut s, &request, ending);
        assert!(
            first.contains(&format!("\r\nContent-Language: {lang}\r\n")),
            "{first}"
        );
        ask(&mut s, &request, 99, first.len(), ending);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        ask(&mut s, &request, 1_000, first.len(), ending);
        (lang, ALLOCATIONS.load(Ordering::Relaxed) - before)
    });

    drop(s);
    control.advance(Phase::Draining);
    server.join().unwrap().unwrap();
    // The client side of this test allocates nothing per request either. The `Date` refresh
    // allocates its string once a second; anything per request would show as thousands.
    assert!(
        allocations < 10,
        "{allocations} allocations for 10,000 keep-alive requests"
    );
    assert!(
        chunked_allocations < 10,
        "{chunked_allocations} allocations for 10,000 chunked requests"
    );
    assert_eq!(traced, 10_000, "access lines with the request's trace");
    let [templated, error_page, echoes @ ..] = rendered;
    for (echo, name) in echoes.iter().zip(["length", "chunked", "JSON"]) {
        assert!(
            *echo < 10,
            "{echo} allocations for 10,000 echoes of a request ({name})"
        );
    }
    assert!(
        templated < 10,
        "{templated} allocations for 10,000 templated answers"
    );
    assert!(
        error_page < 10,
        "{error_page} allocations for 10,000 error pages"
    );
    for (lang, allocations) in languages {
        assert!(
            allocations < 10,
            "{allocations} allocations for 1,000 built-in pages in {lang}"
        );
    }
    // And every one of them went through the counted path.
    let mut text = String::new();
    metrics.render(Phase::Draining, control.switches(), &mut text);
    assert!(
        text.contains("responder_requests_total{status=\"200\"} 50500\n")
            && text.contains("responder_requests_total{status=\"405\"} 10100\n")
            && text.contains("responder_requests_total{status=\"503\"} 10100\n")
            && text.contains("responder_requests_total{status=\"404\"} 7700\n"),
        "{text}"
    );
}

/// The default answer, a templated route and an echo before it, and error pages with their
/// details, with the access log.
fn config() -> responder::config::Config {
    let mut config = test_config();
    config.access_log = true;
    let no_env = |_: &str| None;
    let templated = Route {
        path: "/t".into(),
        match_kind: MatchKind::Exact,
        body: TEMPLATE.into(),
        template: Template::parse(TEMPLATE, Kind::Route, &no_env).ok(),
        ..Route::default_hello()
    };
    config.routes.insert(0, templated);
    let echo = Route {
        path: "/e".into(),
        match_kind: MatchKind::Exact,
        methods: vec!["GET".into(), "POST".into()],
        body: Vec::new(),
        echo: true,
        ..Route::default_hello()
    };
    config.routes.insert(0, echo);
    config.error_pages.enabled = true;
    config.error_pages.show_details = true;
    config
}
