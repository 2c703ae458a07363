//! Drives the request path (`http::RequestStream`) as a connection does: the input's first byte
//! chooses how to cut the rest into reads, each read is appended to what the stream left
//! unconsumed, and the answers are collected. Checks the invariants a peer must never break:
//! no panic, never more kept than the head limit, every output a well-formed response, and a
//! close is final.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use responder::config::{Endpoints, Route};
use responder::http::{Context, Limits, RequestStream, Verdict};
use responder::metrics::{Metrics, WorkerStats};
use responder::response::Responses;

const LIMITS: Limits = Limits {
    max_header_bytes: 1024,
    max_body_bytes: 4096,
};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    // Reads of 1 to 64 bytes, the size cycling with the cut byte's bits.
    let sizes = [usize::from(cut % 64) + 1, usize::from(cut / 64) + 1, 7, 1];
    let responses = Responses::new(&[Route::default_hello()], &Endpoints::default());
    let stats = WorkerStats::default();
    let metrics = Metrics::new(vec![], Default::default());
    let cx = Context {
        responses: &responses,
        limits: LIMITS,
        draining: cut & 1 == 1,
        ready: true,
        conn_id: 1,
        access_log: false,
        log_builtins: false,
        now: Instant::now(),
        stats: &stats,
        metrics: &metrics,
    };
    let mut stream = RequestStream::default();
    let mut kept: Vec<u8> = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        kept.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let mut out = Vec::new();
            let progress = stream.advance(&kept, &cx, &mut out);
            assert!(progress.consumed <= kept.len());
            assert!(out.is_empty() || out.starts_with(b"HTTP/1.0 "), "{out:?}");
            kept.drain(..progress.consumed);
            match progress.verdict {
                Verdict::Flush => continue,
                Verdict::Close { .. } => return,
                Verdict::Wait => break,
            }
        }
        assert!(kept.len() <= LIMITS.max_header_bytes, "kept {} bytes", kept.len());
    }
});
