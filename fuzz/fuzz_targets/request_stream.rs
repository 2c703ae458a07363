//! Drives the request path (`http::RequestStream`) as a connection does: the input's first byte
//! chooses how to cut the rest into reads, each read is appended to what the stream left
//! unconsumed, and the answers are collected. Checks the invariants a peer must never break:
//! no panic, never more kept than the head limit, every output a well-formed response, and a
//! close is final.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use responder::config::Config;
use responder::http::{RequestStream, Verdict};
use responder::metrics::{Metrics, WorkerStats};
use responder::serve::exchange::{Pass, RequestIds};
use responder::serve::timer::Moment;
use responder::answers::Role;
use responder::serve::control::Phase;
use responder::site::Site;

const MAX_HEADER_BYTES: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    // Reads of 1 to 64 bytes, the size cycling with the cut byte's bits.
    let sizes = [usize::from(cut % 64) + 1, usize::from(cut / 64) + 1, 7, 1];
    let site = Site::new(&Config {
        max_header_bytes: MAX_HEADER_BYTES,
        max_body_bytes: 4096,
        access_log: false,
        ..Config::default()
    });
    let stats = WorkerStats::default();
    let metrics = Metrics::new(vec![], Default::default());
    let ids = RequestIds::new();
    let now = Instant::now();
    let pass = Pass {
        site: &site,
        phase: if cut & 1 == 1 {
            Phase::Draining
        } else {
            Phase::Serving
        },
        now,
        moment: Moment::of(now),
        stats: &stats,
        metrics: &metrics,
        ids: &ids,
        switches: &Default::default(),
    };
    let cx = pass.context();
    let mut responder = pass.responder(1, ([127, 0, 0, 1], 1).into(), Role::Traffic, None, Default::default());
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
            let progress = stream.advance(&kept, &cx, &mut responder, &mut out);
            assert!(progress.consumed <= kept.len());
            assert!(out.is_empty() || out.starts_with(b"HTTP/1."), "{out:?}");
            kept.drain(..progress.consumed);
            match progress.verdict {
                Verdict::Flush => continue,
                Verdict::Close { .. } => return,
                Verdict::Wait => break,
            }
        }
        assert!(kept.len() <= MAX_HEADER_BYTES, "kept {} bytes", kept.len());
    }
});
