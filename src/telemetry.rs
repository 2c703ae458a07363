//! Where events go: a `tracing` subscriber writing JSON lines (for collectors) or readable text
//! (for people) to stdout, filtered by `RUST_LOG`, through a bounded non-blocking writer.
//!
//! The event loops never wait on stdout: lines go to a bounded queue drained by a writer thread,
//! and when the queue is full they are dropped rather than stalling a request. This module
//! decides formats and the writer; the events themselves are emitted where they happen.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines held for the writer thread before new ones are dropped: about a second of access log at
/// full speed, a bounded amount of memory when stdout stalls.
const BUFFERED_LINES: usize = 64 * 1024;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the queue.
/// The counter tells how many lines were dropped because the output did not keep up.
/// `level`, when given, overrides `RUST_LOG`.
pub fn init(format: Option<LogFormat>, level: Option<&str>) -> (WorkerGuard, ErrorCounter) {
    let terminal = std::io::stdout().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(std::io::stdout());
    let dropped = writer.error_counter();
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_thread_names(false);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(terminal).try_init(),
    };
    if let Err(e) = installed {
        eprintln!("responder: cannot install the log subscriber: {e}");
    }
    (guard, dropped)
}
