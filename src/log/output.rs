//! Where the lines go: each event loop's batch of lines, handed over when it is full or its
//! oldest line is [`BATCH_MAX_AGE`] old, a bounded queue, and the writer thread that writes each
//! batch to stdout in one `write` (a pipe widened first) and sends the emptied buffer back. The
//! event loops never wait on stdout: when the queue is full a batch is dropped and counted
//! ([`DroppedLines`]). The lines' format is the layers'.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::sys;
use json::WriteLine;

use super::*;

/// Batches held for the writer thread before new ones are dropped: a bounded amount of memory
/// when stdout stalls (at most this many times [`BATCH_BYTES`], 15 MiB).
pub(super) const BUFFERED_BATCHES: usize = 128;
/// Emptied batches kept for reuse: enough for a few event loops to swap a full batch for an
/// empty one without allocating, few enough that a burst that filled the queue leaves at most
/// 480 KiB behind (the rest are freed, and `malloc_trim` returns them).
pub(super) const SPARE_BATCHES: usize = 4;
/// A thread's batch is handed over when it reaches this size... Each hand-over wakes the writer
/// thread, which on a busy core takes turns with the event loop, so fewer, larger batches cost
/// less (bench/RESULTS.md has the figures). It stays below glibc's 128 KiB mmap threshold, so a
/// batch comes from the heap, not a fresh mapping.
pub(super) const BATCH_BYTES: usize = 120 * 1024;
/// ...or when its oldest line is this old: short for a reader of the logs, long enough that a
/// loop serving 100,000 requests a second wakes the writer thread 50 times a second, not 100,000.
pub const BATCH_MAX_AGE: Duration = Duration::from_millis(20);

/// How many log lines were dropped because the output did not keep up.
#[derive(Debug, Clone, Default)]
pub struct DroppedLines(pub(super) Arc<AtomicU64>);

impl DroppedLines {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The queue to the writer thread: batches of whole lines go one way, and come back emptied to
/// be filled again, so that a batch is neither copied nor allocated per hand-over.
pub(super) struct Output {
    pub(super) queue: SyncSender<Vec<u8>>,
    pub(super) spare: Mutex<Vec<Vec<u8>>>,
    pub(super) dropped: DroppedLines,
}

impl Output {
    /// An empty batch: a spare one, or a new one.
    pub(super) fn empty_batch(&self) -> Vec<u8> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES))
    }

    pub(super) fn recycle(&self, mut batch: Vec<u8>) {
        batch.clear();
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_BATCHES && batch.capacity() == BATCH_BYTES {
            spare.push(batch);
        }
    }

    /// Queues `batch` for the writer thread; when the queue is full (stdout is not keeping up),
    /// its lines are dropped and counted instead of blocking the caller.
    pub(super) fn send(&self, batch: Vec<u8>) {
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

pub(super) static OUTPUT: OnceLock<Output> = OnceLock::new();

/// Lines of one thread waiting for the writer thread.
pub(super) struct Batch {
    pub(super) lines: Vec<u8>,
    /// When the oldest waiting line was written.
    pub(super) since: Option<Instant>,
}

impl Batch {
    pub(super) fn hand_over(&mut self) {
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
pub(super) struct Batching;

impl<'a> MakeWriter<'a> for Batching {
    type Writer = Batching;

    fn make_writer(&'a self) -> Batching {
        *self
    }
}

/// Room a batch keeps for a JSON line, which is formatted straight into it: a batch with less
/// left is handed over first. (An access line is under 1 KiB, and under 10 KiB at worst; a longer
/// line grows the batch, which is then freed rather than kept for reuse.)
pub(super) const LINE_ROOM: usize = 16 * 1024;

/// Calls `write` with the buffer a line goes onto: this thread's batch when it batches (handed
/// over first if less than `room` is left), else a batch of its own, queued at once. A line
/// written while another one is being written (an event emitted by its formatting) is dropped.
pub(super) fn append_line(room: usize, write: &mut WriteLine<'_>) {
    let batched = BATCH.with(|b| {
        let Ok(mut b) = b.try_borrow_mut() else {
            return true;
        };
        let Some(batch) = b.as_mut() else {
            return false;
        };
        // Handed over before it would grow: the batch keeps the one buffer it started with,
        // instead of doubling it for a line that does not fit and keeping that.
        if batch.lines.capacity() - batch.lines.len() < room {
            batch.hand_over();
        }
        batch.since.get_or_insert_with(Instant::now);
        write(&mut batch.lines);
        true
    });
    if !batched {
        if let Some(output) = OUTPUT.get() {
            let mut batch = output.empty_batch();
            write(&mut batch);
            output.send(batch);
        }
    }
}

/// The JSON layer's buffer: see [`append_line`].
pub(super) fn append_json_line(write: &mut WriteLine<'_>) {
    append_line(LINE_ROOM, write);
}

impl Write for Batching {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        append_line(buf.len(), &mut |lines| lines.extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps the writer thread: dropping it writes out what is queued, then ends the thread.
pub struct LogGuard {
    pub(super) writer: Option<JoinHandle<()>>,
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

/// A pipe's capacity asked for when stdout is one (a container runtime's log pipe): several
/// batches, so that a batch goes in one `write` and the reader wakes once per batch, where the
/// kernel's default 64 KiB took half a batch per wake-up of either side. Above the system's
/// `fs.pipe-max-size` (1 MiB by default) the pipe stays as it is.
pub(super) const PIPE_BYTES: usize = 1024 * 1024;

/// The writer thread: each batch in one `write` to stdout, then back to the spares.
pub(super) fn write_batches(batches: Receiver<Vec<u8>>) {
    // SCHED_BATCH keeps the writer its share of the CPU, but a batch that wakes it no longer
    // preempts the event loop that handed it over, which finishes its pass first.
    sys::schedule_as_batch();
    let stdout = std::io::stdout();
    let mut out: Box<dyn Write> = match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            let file = File::from(fd);
            if file.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
                sys::widen_pipe(&file, PIPE_BYTES);
            }
            Box::new(file)
        }
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
