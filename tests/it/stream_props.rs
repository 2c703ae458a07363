//! Property tests of the request stream (`http::RequestStream`), fed as a connection feeds it:
//! arbitrary bytes split at arbitrary points never panic it, never make it keep more than the head
//! limit, and always end in answers, a close, or a wait for more bytes.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use std::time::Instant;

use responder::answers::Role;
use responder::config::Config;
use responder::http::{find_head_end, RequestStream, Verdict};
use responder::metrics::{Metrics, WorkerStats};
use responder::serve::control::Phase;
use responder::serve::exchange::{Pass, RequestIds};
use responder::serve::timer::Moment;
use responder::site::Site;

const MAX_HEADER_BYTES: usize = 512;

/// Feeds `chunks` one after another, keeping the unconsumed rest between calls as `conn` does.
/// Returns the output and the last verdict; stops at a close.
fn feed(chunks: &[Vec<u8>]) -> (Vec<u8>, Verdict) {
    let mut config = Config {
        max_header_bytes: MAX_HEADER_BYTES,
        max_body_bytes: 4096,
        access_log: false,
        ..Config::default()
    };
    // One fixed modification time and date, so that two feeds compare equal whatever the clock
    // does between them.
    config.routes[0].modified = std::time::SystemTime::UNIX_EPOCH;
    let mut site = Site::new(&config);
    site.responses.stamp(std::time::SystemTime::UNIX_EPOCH);
    let stats = WorkerStats::default();
    let metrics = Metrics::new(vec![], Default::default());
    let ids = RequestIds::new();
    let now = Instant::now();
    let pass = Pass {
        site: &site,
        phase: Phase::Serving,
        now,
        moment: Moment::of(now),
        stats: &stats,
        metrics: &metrics,
        ids: &ids,
        switches: &Default::default(),
    };
    let cx = pass.context();
    let mut responder = pass.responder(
        7,
        ([127, 0, 0, 1], 7).into(),
        Role::Traffic,
        None,
        Default::default(),
    );
    let mut stream = RequestStream::default();
    let mut kept: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut verdict = Verdict::Wait;
    for chunk in chunks {
        kept.extend_from_slice(chunk);
        loop {
            let mut batch = Vec::new();
            let progress = stream.advance(&kept, &cx, &mut responder, &mut batch);
            assert!(progress.consumed <= kept.len());
            kept.drain(..progress.consumed);
            out.extend_from_slice(&batch);
            verdict = progress.verdict;
            match verdict {
                Verdict::Flush => continue,
                Verdict::Close { .. } => return (out, verdict),
                Verdict::Wait => break,
            }
        }
        // What is kept between reads is the start of one head, never more than the limit.
        assert!(kept.len() <= MAX_HEADER_BYTES, "kept {} bytes", kept.len());
    }
    (out, verdict)
}

/// Splits `bytes` at the given cut points (taken modulo its length).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

fn well_formed(out: &[u8]) -> bool {
    out.is_empty() || out.starts_with(b"HTTP/1.")
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "HEAD", "POST", "DELETE"]);
    let version = prop::sample::select(vec!["HTTP/1.0", "HTTP/1.1"]);
    let eol = prop::sample::select(vec!["\r\n", "\n"]);
    let connection = prop::sample::select(vec!["", "Connection: keep-alive", "Connection: close"]);
    (
        method,
        "/[a-z0-9/]{0,12}",
        version,
        eol,
        connection,
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(method, path, version, eol, connection, body, chunked)| {
            let mut r = format!("{method} {path} {version}{eol}Host: t{eol}");
            if !connection.is_empty() {
                r.push_str(&format!("{connection}{eol}"));
            }
            // HTTP/1.1 bodies come chunked (in two chunks) or with a length.
            let chunked = chunked && version == "HTTP/1.1";
            if chunked {
                r.push_str(&format!("Transfer-Encoding: chunked{eol}"));
            } else if !body.is_empty() {
                r.push_str(&format!("Content-Length: {}{eol}", body.len()));
            }
            r.push_str(eol);
            let mut bytes = r.into_bytes();
            if chunked {
                let (first, second) = body.split_at(body.len() / 2);
                for chunk in [first, second] {
                    if !chunk.is_empty() {
                        bytes.extend_from_slice(format!("{:x};e=1\r\n", chunk.len()).as_bytes());
                        bytes.extend_from_slice(chunk);
                        bytes.extend_from_slice(b"\r\n");
                    }
                }
                bytes.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
            } else {
                bytes.extend_from_slice(&body);
            }
            bytes
        })
}

/// A head's end as the article finds it: the first `\n\n` or `\n\r\n`, a byte at a time, from two
/// bytes before `from`.
fn head_end_byte_by_byte(buf: &[u8], from: usize) -> Option<usize> {
    (from.saturating_sub(2)..buf.len()).find_map(|i| {
        match (buf[i], buf.get(i + 1), buf.get(i + 2)) {
            (b'\n', Some(b'\n'), _) => Some(i + 2),
            (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

/// The seeds of failures found before, named by path so that proptest reads them wherever it
/// looks by default.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/proptest-regressions/stream_props.txt"
);

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        .. ProptestConfig::default()
    })]

    #[test]
    fn a_head_ends_where_a_byte_by_byte_search_finds_its_end(
        // Line ends, and bytes one bit from a newline (a carry or a high bit could mistake them).
        bytes in prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'a', 0x0b, 0x8a, 0x09]), 0..80),
        from in 0usize..90,
    ) {
        prop_assert_eq!(find_head_end(&bytes, from), head_end_byte_by_byte(&bytes, from));
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_pieces_end_well(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let (out, _) = feed(&split(&bytes, &cuts));
        prop_assert!(well_formed(&out));
    }

    #[test]
    fn garbage_after_a_request_line_ends_well(
        line in "(GET|HEAD|POST) /[ -~]{0,40} HTTP/1\\.[01]\r?\n",
        tail in prop::collection::vec(any::<u8>(), 0..1024),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(&tail);
        let (out, _) = feed(&split(&bytes, &cuts));
        prop_assert!(well_formed(&out));
    }

    #[test]
    fn valid_requests_get_the_same_answers_however_they_are_split(
        requests in prop::collection::vec(request(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let bytes: Vec<u8> = requests.concat();
        let (whole, whole_verdict) = feed(std::slice::from_ref(&bytes));
        let (pieces, pieces_verdict) = feed(&split(&bytes, &cuts));
        // Whether a close lingers depends on whether bytes after the closing request were in the
        // same read, which the split decides; that it closes does not.
        let closes = |v: Verdict| matches!(v, Verdict::Close { .. });
        prop_assert_eq!(closes(whole_verdict), closes(pieces_verdict));
        prop_assert_eq!(String::from_utf8_lossy(&whole), String::from_utf8_lossy(&pieces));
        // Every request up to the first that closes is answered, in order.
        let answered = whole.windows(7).filter(|w| w == b"HTTP/1.").count();
        prop_assert!(answered >= 1);
    }
}
