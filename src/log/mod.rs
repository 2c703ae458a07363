//! Where events go: a `tracing` subscriber writing JSON lines (for collectors) or readable text
//! (for people) to stdout, filtered by `RUST_LOG`, through a bounded non-blocking writer.
//!
//! The event loops never wait on stdout: lines go to a bounded queue drained by a writer thread,
//! and when the queue is full they are dropped rather than stalling a request. An event loop
//! collects its lines in a buffer of its own and hands them over when the buffer is full or its
//! oldest line is [`BATCH_MAX_AGE`] old ([`flush_batch_if_due`]), so a busy loop pays one queue
//! operation, and wakes the writer thread once, per batch rather than per line. The buffer itself
//! travels, and comes back emptied: no copy and no allocation per hand-over. This module
//! decides formats and the writer; the events themselves are emitted where they happen.
//!
//! The access log, one line per answer, is the one event emitted at the request rate, so its
//! fields are not visited one by one: [`access`] has a [`Record`] write them in the subscriber's
//! format, as JSON members the JSON layer copies whole (`json::stage_members`) or as the text
//! format's `name=value` pairs, and emits that through `tracing` as one value.

pub(crate) mod access;
pub mod json;
mod output;

pub(crate) use access::key;
use access::TEXT;
pub use access::{access, FieldWriter, Key, Record, Shown, ACCESS};
use output::*;
pub use output::{
    batch_this_thread, flush_batch, flush_batch_if_due, DroppedLines, LogGuard, BATCH_MAX_AGE,
};

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self};
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use json::JsonLines;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the queue.
/// `level`, when given, overrides `RUST_LOG`.
pub fn init(format: Option<LogFormat>, level: Option<&str>) -> (LogGuard, DroppedLines) {
    let terminal = std::io::stdout().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let (queue, batches) = mpsc::sync_channel(BUFFERED_BATCHES);
    let dropped = DroppedLines::default();
    let output = Output {
        queue,
        spare: Mutex::new(Vec::new()),
        dropped: dropped.clone(),
    };
    if OUTPUT.set(output).is_err() {
        eprintln!("responder: the log output was already set up");
    }
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_batches(batches))
        .map_err(|e| eprintln!("responder: cannot start the log writer: {e}"))
        .ok();
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    TEXT.store(format == LogFormat::Text, Ordering::Relaxed);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(JsonLines {
                append: append_json_line,
            })
            .try_init(),
        LogFormat::Text => {
            let text = tracing_subscriber::fmt::layer()
                .with_writer(Batching)
                .with_thread_names(false)
                .with_ansi(terminal);
            registry.with(text).try_init()
        }
    };
    if let Err(e) = installed {
        eprintln!("responder: cannot install the log subscriber: {e}");
    }
    (LogGuard { writer }, dropped)
}
