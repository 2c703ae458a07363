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

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::json_lines::JsonLines;

/// Batches held for the writer thread before new ones are dropped: a bounded amount of memory
/// when stdout stalls (at most this many times [`BATCH_BYTES`], 15 MiB).
const BUFFERED_BATCHES: usize = 128;
/// Emptied batches kept for reuse: enough for a few event loops to swap a full batch for an
/// empty one without allocating, few enough that a burst that filled the queue leaves at most
/// 480 KiB behind (the rest are freed, and `malloc_trim` returns them).
const SPARE_BATCHES: usize = 4;
/// A thread's batch is handed over when it reaches this size... Each hand-over wakes the writer
/// thread, which on a busy core takes turns with the event loop (with 470-byte access lines at
/// 120,000 a second, 64 KiB batches woke it 850 times a second and it took 5% of the core's
/// samples; 120 KiB halves both). It stays below glibc's 128 KiB mmap threshold, so a batch comes
/// from the heap, not a fresh mapping.
const BATCH_BYTES: usize = 120 * 1024;
/// ...or when its oldest line is this old: short for a reader of the logs, long enough that a
/// loop serving 100,000 requests a second wakes the writer thread 50 times a second, not 100,000.
pub const BATCH_MAX_AGE: Duration = Duration::from_millis(20);

/// How many log lines were dropped because the output did not keep up.
#[derive(Debug, Clone, Default)]
pub struct DroppedLines(Arc<AtomicU64>);

impl DroppedLines {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The queue to the writer thread: batches of whole lines go one way, and come back emptied to
/// be filled again, so that a batch is neither copied nor allocated per hand-over.
struct Output {
    queue: SyncSender<Vec<u8>>,
    spare: Mutex<Vec<Vec<u8>>>,
    dropped: DroppedLines,
}

impl Output {
    /// An empty batch: a spare one, or a new one.
    fn empty_batch(&self) -> Vec<u8> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES))
    }

    fn recycle(&self, mut batch: Vec<u8>) {
        batch.clear();
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_BATCHES && batch.capacity() == BATCH_BYTES {
            spare.push(batch);
        }
    }

    /// Queues `batch` for the writer thread; when the queue is full (stdout is not keeping up),
    /// its lines are dropped and counted instead of blocking the caller.
    fn send(&self, batch: Vec<u8>) {
        match self.queue.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                let lines = batch.iter().filter(|&&b| b == b'\n').count() as u64;
                self.dropped.0.fetch_add(lines, Ordering::Relaxed);
                self.recycle(batch);
            }
        }
    }
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

/// Lines of one thread waiting for the writer thread.
struct Batch {
    lines: Vec<u8>,
    /// When the oldest waiting line was written.
    since: Option<Instant>,
}

impl Batch {
    fn hand_over(&mut self) {
        self.since = None;
        if self.lines.is_empty() {
            return;
        }
        let Some(output) = OUTPUT.get() else {
            self.lines.clear();
            return;
        };
        let full = std::mem::replace(&mut self.lines, output.empty_batch());
        output.send(full);
    }
}

thread_local! {
    /// This thread's batch, when the thread batches.
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// Makes this thread keep its log lines in a batch: an event loop, which calls
/// [`flush_batch_if_due`] before every wait and [`flush_batch`] when it ends.
pub fn batch_this_thread() {
    let batch = Batch {
        lines: Vec::with_capacity(BATCH_BYTES),
        since: None,
    };
    BATCH.with(|b| *b.borrow_mut() = Some(batch));
}

/// Hands this thread's batch to the writer thread if its oldest line is old enough. Returns when
/// the lines still waiting will be due, for the caller's poll timeout.
pub fn flush_batch_if_due(now: Instant) -> Option<Instant> {
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let batch = b.as_mut()?;
        let due = batch.since? + BATCH_MAX_AGE;
        if due <= now {
            batch.hand_over();
            return None;
        }
        Some(due)
    })
}

/// Hands this thread's waiting lines to the writer thread now.
pub fn flush_batch() {
    BATCH.with(|b| {
        if let Some(batch) = b.borrow_mut().as_mut() {
            batch.hand_over();
        }
    });
}

/// The subscriber's writer: into this thread's batch when it batches, else straight to the queue
/// as a batch of its own.
#[derive(Debug, Clone, Copy)]
struct Batching;

impl<'a> MakeWriter<'a> for Batching {
    type Writer = Batching;

    fn make_writer(&'a self) -> Batching {
        *self
    }
}

/// Where finished lines go: this thread's batch, or the queue.
fn write_line(line: &[u8]) {
    let _ = Batching.write(line);
}

impl Write for Batching {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let batched = BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(batch) => {
                // Handed over before it would grow: the batch keeps the one buffer it started
                // with, instead of doubling it for a line that does not fit and keeping that.
                if batch.lines.len() + buf.len() > batch.lines.capacity() {
                    batch.hand_over();
                }
                batch.since.get_or_insert_with(Instant::now);
                batch.lines.extend_from_slice(buf);
                true
            }
            None => false,
        });
        if !batched {
            if let Some(output) = OUTPUT.get() {
                let mut batch = output.empty_batch();
                batch.extend_from_slice(buf);
                output.send(batch);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps the writer thread: dropping it writes out what is queued, then ends the thread.
pub struct LogGuard {
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush_batch();
        if let Some(output) = OUTPUT.get() {
            // An empty batch is the end: everything queued before it is written first.
            let _ = output.queue.send(Vec::new());
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: each batch in one `write` to stdout, then back to the spares.
fn write_batches(batches: Receiver<Vec<u8>>) {
    let stdout = std::io::stdout();
    let mut out: Box<dyn Write> = match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(File::from(fd)),
        // Without a descriptor to share (it cannot happen for a live stdout), stay correct.
        Err(_) => Box::new(stdout),
    };
    while let Ok(batch) = batches.recv() {
        if batch.is_empty() {
            break;
        }
        // A stdout that is gone loses the lines; the server goes on.
        let _ = out.write_all(&batch);
        if let Some(output) = OUTPUT.get() {
            output.recycle(batch);
        }
    }
    let _ = out.flush();
}

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
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry.with(JsonLines { sink: write_line }).try_init(),
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

/// A value a peer sent, shown in a log line: at most [`Shown::MAX_BYTES`] of it (a cut is marked
/// `…[cut]`), with control characters, backslashes and bytes that are not UTF-8 written as
/// escapes (`\n`, `\\`, `\x00`), so that a hostile value can neither break a JSON line nor forge a
/// second line in the text format. Nothing is allocated: it writes straight into the line.
pub struct Shown<'a>(pub &'a [u8]);

impl Shown<'_> {
    pub const MAX_BYTES: usize = 256;

    /// `value` as it would be shown, when that is the value itself: printable ASCII without a
    /// backslash, within the bound (what nearly every client sends).
    pub fn as_is(value: &[u8]) -> Option<&str> {
        (value.len() <= Shown::MAX_BYTES)
            .then(|| printable(value))
            .flatten()
    }
}

/// Printable ASCII without a backslash: written as it is. Eight bytes at a time, as nearly every
/// value a client sends is such text.
fn printable(bytes: &[u8]) -> Option<&str> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let plain_byte = |b: &u8| (b' '..=b'~').contains(b) && *b != b'\\';
    let mut words = bytes.chunks_exact(8);
    let plain_words = words.by_ref().all(|chunk| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        // 0x7f and above: the high bit set, or set by adding one.
        let high = x | x.wrapping_add(ONES);
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let has_backslash = backslash.wrapping_sub(ONES) & !backslash;
        (control | high | has_backslash) & HIGH == 0
    });
    let plain = plain_words && words.remainder().iter().all(plain_byte);
    // ASCII is UTF-8.
    plain.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = self.0.len() > Shown::MAX_BYTES;
        let value = &self.0[..self.0.len().min(Shown::MAX_BYTES)];
        if let Some(text) = printable(value) {
            f.write_str(text)?;
            return if cut { f.write_str("…[cut]") } else { Ok(()) };
        }
        for chunk in value.utf8_chunks() {
            let text = chunk.valid();
            let mut clean_from = 0;
            for (i, c) in text.char_indices() {
                if !(c.is_control() || c == '\\') {
                    continue;
                }
                f.write_str(&text[clean_from..i])?;
                match c {
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    '\\' => f.write_str("\\\\")?,
                    c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                }
                clean_from = i + c.len_utf8();
            }
            f.write_str(&text[clean_from..])?;
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        if cut {
            f.write_str("…[cut]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{printable, Shown};

    #[test]
    fn printable_finds_any_byte_that_is_not_wherever_it_falls() {
        let text: Vec<u8> = (b' '..=b'~').filter(|&b| b != b'\\').collect();
        assert_eq!(printable(&text).map(str::len), Some(text.len()));
        for at in 0..20 {
            for bad in [0x00, 0x1f, b'\\', 0x7f, 0x80, 0xc3, 0xff] {
                let mut value = vec![b'~'; 20];
                value[at] = bad;
                assert_eq!(printable(&value), None, "{bad:#x} at {at}");
            }
        }
    }

    #[test]
    fn shown_values_are_bounded_and_escaped() {
        assert_eq!(Shown(b"curl/8.5").to_string(), "curl/8.5");
        assert_eq!(
            Shown(b"a\r\nb\\c\x00\xff\"d").to_string(),
            "a\\r\\nb\\\\c\\u{0}\\xff\"d"
        );
        let long = vec![b'x'; 1000];
        let shown = Shown(&long).to_string();
        assert_eq!(shown, format!("{}…[cut]", "x".repeat(256)));
    }
}
