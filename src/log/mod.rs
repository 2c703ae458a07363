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
//! format, as JSON members the JSON layer copies whole (`json::FIELDS`) or as the text
//! format's `name=value` pairs, and emits that through `tracing` as one value.

pub mod json;

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::ascii;
use crate::config::LogFormat;
use crate::net::AddrText;
use crate::sys;
use json::{JsonLines, WriteLine};

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

/// Room a batch keeps for a JSON line, which is formatted straight into it: a batch with less
/// left is handed over first. (An access line is under 1 KiB, and under 10 KiB at worst; a longer
/// line grows the batch, which is then freed rather than kept for reuse.)
const LINE_ROOM: usize = 16 * 1024;

/// Calls `write` with the buffer a line goes onto: this thread's batch when it batches (handed
/// over first if less than `room` is left), else a batch of its own, queued at once. A line
/// written while another one is being written (an event emitted by its formatting) is dropped.
fn append_line(room: usize, write: &mut WriteLine<'_>) {
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
fn append_json_line(write: &mut WriteLine<'_>) {
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

/// A pipe's capacity asked for when stdout is one (a container runtime's log pipe): several
/// batches, so that a batch goes in one `write` and the reader wakes once per batch, where the
/// kernel's default 64 KiB took half a batch per wake-up of either side. Above the system's
/// `fs.pipe-max-size` (1 MiB by default) the pipe stays as it is.
const PIPE_BYTES: usize = 1024 * 1024;

/// The writer thread: each batch in one `write` to stdout, then back to the spares.
fn write_batches(batches: Receiver<Vec<u8>>) {
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

/// The target of the access log's events: `response` and `request rejected`.
pub const ACCESS: &str = "responder::access";

/// Whether [`init`] chose the text format (else lines are JSON, as they are for a subscriber a
/// test installs with the JSON layer).
static TEXT: AtomicBool = AtomicBool::new(false);

/// A field's name as a JSON line writes it, `,"name":`, an array of known length, which the
/// compiler copies in a few moves rather than a call to `memcpy`; and as the text format writes
/// it, ` name=`. Made by [`key!`].
#[derive(Debug, Clone, Copy)]
pub struct Key<const N: usize> {
    pub json: &'static [u8; N],
    pub text: &'static str,
}

/// The bytes of `text`, as an array of its length (for [`key!`]).
pub const fn key_bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut bytes = [0; N];
    let mut at = 0;
    while at < N {
        bytes[at] = text.as_bytes()[at];
        at += 1;
    }
    bytes
}

/// The [`Key`] of a field name.
macro_rules! key {
    ($name:literal) => {{
        const TEXT: &str = concat!(",\"", $name, "\":");
        const BYTES: [u8; TEXT.len()] = $crate::log::key_bytes(TEXT);
        $crate::log::Key {
            json: &BYTES,
            text: concat!(" ", $name, "="),
        }
    }};
}
pub(crate) use key;

/// Where a [`Record`] writes its fields: a JSON line's members, or the text format's pairs.
pub trait FieldWriter {
    /// Text that may need escaping: a request's target (which the parser bounded).
    fn str<const N: usize>(&mut self, key: Key<N>, value: &str);
    /// Text of ours, or checked, that needs no escaping: printable ASCII without quotes or
    /// backslashes.
    fn plain<const N: usize>(&mut self, key: Key<N>, value: &[u8]);
    /// A value a peer sent, [`Shown`]; nothing when it is empty (the request did not send it).
    fn shown<const N: usize>(&mut self, key: Key<N>, value: &[u8]);
    fn u64<const N: usize>(&mut self, key: Key<N>, value: u64);
    fn bool<const N: usize>(&mut self, key: Key<N>, value: bool);
    fn addr<const N: usize>(&mut self, key: Key<N>, value: SocketAddr);
    fn debug<const N: usize>(&mut self, key: Key<N>, value: &dyn fmt::Debug);
}

/// An access-log line's fields, written in order.
pub trait Record {
    fn write(&self, fields: &mut impl FieldWriter);
}

thread_local! {
    /// The JSON members of this thread's access line: it keeps its capacity.
    static MEMBERS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Emits an access-log event (target [`ACCESS`], level INFO) with `message` and the record's
/// fields. They are written only when the event is enabled.
pub fn access(message: &'static str, record: &impl Record) {
    if TEXT.load(Ordering::Relaxed) {
        tracing::info!(target: ACCESS, "{}", Pairs { message, record });
        return;
    }
    MEMBERS.with(|members| {
        // Borrowed already: an access line emitted while writing one, which cannot happen.
        let Ok(mut members) = members.try_borrow_mut() else {
            return;
        };
        // `fields` is `json::FIELDS`: the layer copies its bytes into the line.
        tracing::info!(
            target: ACCESS,
            fields = {
                members.clear();
                let mut json = JsonFields(&mut members);
                json.plain(key!("message"), message.as_bytes());
                record.write(&mut json);
                members.as_slice()
            }
        );
    });
}

/// Writes fields as JSON members.
struct JsonFields<'a>(&'a mut Vec<u8>);

impl FieldWriter for JsonFields<'_> {
    fn str<const N: usize>(&mut self, key: Key<N>, value: &str) {
        self.0.extend_from_slice(key.json);
        json::write_string(self.0, value);
    }

    #[inline]
    fn plain<const N: usize>(&mut self, key: Key<N>, value: &[u8]) {
        debug_assert!(ascii::printable(value), "{value:?}");
        self.0.extend_from_slice(key.json);
        self.0.push(b'"');
        self.0.extend_from_slice(value);
        self.0.push(b'"');
    }

    #[inline]
    fn shown<const N: usize>(&mut self, key: Key<N>, value: &[u8]) {
        if value.is_empty() {
            return;
        }
        if Shown::is_as_is(value) {
            self.plain(key, value);
        } else {
            self.0.extend_from_slice(key.json);
            json::write_formatted(self.0, format_args!("{}", Shown(value)));
        }
    }

    #[inline]
    fn u64<const N: usize>(&mut self, key: Key<N>, value: u64) {
        self.0.extend_from_slice(key.json);
        json::write_u64(self.0, value);
    }

    fn bool<const N: usize>(&mut self, key: Key<N>, value: bool) {
        self.0.extend_from_slice(key.json);
        json::write_bool(self.0, value);
    }

    fn addr<const N: usize>(&mut self, key: Key<N>, value: SocketAddr) {
        // Digits, dots, colons, brackets and a scope's name: nothing a JSON string escapes.
        self.plain(key, AddrText::of(value).as_bytes());
    }

    fn debug<const N: usize>(&mut self, key: Key<N>, value: &dyn fmt::Debug) {
        self.0.extend_from_slice(key.json);
        json::write_formatted(self.0, format_args!("{value:?}"));
    }
}

/// An access line in the text format: the message, then ` name=value` for each field, strings
/// quoted and escaped as `Debug` writes them (as the text format writes any other event's).
struct Pairs<'r, R> {
    message: &'static str,
    record: &'r R,
}

impl<R: Record> fmt::Display for Pairs<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)?;
        let mut text = TextFields { f, result: Ok(()) };
        self.record.write(&mut text);
        text.result
    }
}

/// Writes fields as the text format's pairs, keeping the first error.
struct TextFields<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    fn write(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = self.f.write_str(text);
        }
    }

    fn key<const N: usize>(&mut self, key: Key<N>) {
        self.write(key.text);
    }

    /// `value` quoted: printable ASCII without quotes or backslashes as it is, anything else
    /// shown and escaped as `Debug` escapes a string.
    fn quoted(&mut self, value: &[u8]) {
        self.write("\"");
        match std::str::from_utf8(value) {
            Ok(text) if Shown::is_as_is(value) => self.write(text),
            _ => {
                if self.result.is_ok() {
                    self.result = write!(DebugEscaping(self.f), "{}", Shown(value));
                }
            }
        }
        self.write("\"");
    }

    fn display<const N: usize>(&mut self, key: Key<N>, value: impl fmt::Display) {
        self.key(key);
        if self.result.is_ok() {
            self.result = write!(self.f, "{value}");
        }
    }
}

impl FieldWriter for TextFields<'_, '_> {
    fn str<const N: usize>(&mut self, key: Key<N>, value: &str) {
        self.plain(key, value.as_bytes());
    }

    fn plain<const N: usize>(&mut self, key: Key<N>, value: &[u8]) {
        self.key(key);
        self.quoted(value);
    }

    fn shown<const N: usize>(&mut self, key: Key<N>, value: &[u8]) {
        if !value.is_empty() {
            self.plain(key, value);
        }
    }

    fn u64<const N: usize>(&mut self, key: Key<N>, value: u64) {
        self.key(key);
        self.write(itoa::Buffer::new().format(value));
    }

    fn bool<const N: usize>(&mut self, key: Key<N>, value: bool) {
        self.key(key);
        self.write(if value { "true" } else { "false" });
    }

    fn addr<const N: usize>(&mut self, key: Key<N>, value: SocketAddr) {
        self.display(key, format_args!("\"{value}\""));
    }

    fn debug<const N: usize>(&mut self, key: Key<N>, value: &dyn fmt::Debug) {
        self.display(key, format_args!("{value:?}"));
    }
}

/// Escapes what passes through it as `Debug` escapes a string's characters (quotes, backslashes,
/// control and unprintable characters; not `'`), without allocating the string.
struct DebugEscaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for DebugEscaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean_from = 0;
        for (i, c) in text.char_indices() {
            if c == '\'' || c.escape_debug().len() == 1 {
                continue;
            }
            self.0.write_str(&text[clean_from..i])?;
            write!(self.0, "{}", c.escape_debug())?;
            clean_from = i + c.len_utf8();
        }
        self.0.write_str(&text[clean_from..])
    }
}

/// A value a peer sent, shown in a log line: at most [`Shown::MAX_BYTES`] of it (a cut is marked
/// `…[cut]`), with control characters, backslashes and bytes that are not UTF-8 written as
/// escapes (`\n`, `\\`, `\x00`), so that a hostile value can neither break a JSON line nor forge a
/// second line in the text format. Nothing is allocated: it writes straight into the line.
pub struct Shown<'a>(pub &'a [u8]);

impl Shown<'_> {
    pub const MAX_BYTES: usize = 256;

    /// Whether `value` is shown as it is, and needs no escaping in a JSON string either: printable
    /// ASCII without a backslash or a quote, within the bound (what nearly every client sends).
    pub fn is_as_is(value: &[u8]) -> bool {
        value.len() <= Shown::MAX_BYTES && ascii::printable(value)
    }
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = self.0.len() > Shown::MAX_BYTES;
        let value = &self.0[..self.0.len().min(Shown::MAX_BYTES)];
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
    use super::{FieldWriter, JsonFields, Pairs, Record, Shown};

    /// One field of each kind, with values that need escaping and values that do not.
    struct Sample;

    impl Record for Sample {
        fn write(&self, fields: &mut impl FieldWriter) {
            fields.u64(key!("conn"), 7);
            fields.plain(key!("method"), b"GET");
            fields.str(key!("path"), "/a\"b'c");
            fields.bool(key!("keep_alive"), true);
            fields.addr(key!("remote_addr"), "10.0.0.1:80".parse().unwrap());
            fields.shown(key!("host"), b"example.com");
            fields.shown(key!("referer"), b"");
            fields.shown(key!("user_agent"), b"it's \"x\"\n\xff");
            fields.debug(key!("rejection"), &Some(1));
        }
    }

    #[test]
    fn a_record_is_written_as_json_members_and_as_text_pairs() {
        let mut json = Vec::new();
        Sample.write(&mut JsonFields(&mut json));
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#","conn":7,"method":"GET","path":"/a\"b'c","keep_alive":true,"remote_addr":"10.0.0.1:80","host":"example.com","user_agent":"it's \"x\"\\n\\xff","rejection":"Some(1)""#
        );
        let text = Pairs {
            message: "response",
            record: &Sample,
        }
        .to_string();
        assert_eq!(
            text,
            r#"response conn=7 method="GET" path="/a\"b'c" keep_alive=true remote_addr="10.0.0.1:80" host="example.com" user_agent="it's \"x\"\\n\\xff" rejection=Some(1)"#
        );
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
