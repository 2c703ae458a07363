//! The JSON log line: one object per event, `{"timestamp":…,"level":…,"message":…,<fields>,
//! "target":…}`, with an RFC 3339 UTC timestamp in microseconds.
//!
//! It is a `tracing-subscriber` layer of its own, written for the access log's rate: each event is
//! formatted as bytes straight onto the end of the buffer its `append` function hands it (no
//! intermediate serializer, no `fmt` machinery for names, integers (`itoa`) and plain strings).
//! An event loop's pass lends its lines the time it read after its wait ([`PassTime`]), whose text
//! is then formatted once for all of them (its date part once a second per thread). Which buffer
//! that is, and where the lines go, is `output`'s business.
//!
//! The access line's members are formatted ahead by the code that had the values
//! (`log::access`) and staged on the thread ([`stage_members`]) for the one event being emitted:
//! the layer copies them into that event's line as they are, so a line of twenty fields costs one
//! copy instead of twenty visits. Only this module can stage members, so no other event, of any
//! crate, can have bytes copied into a line unescaped.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use crate::{clock, escape};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Formats one line onto the end of the buffer it is given.
pub type WriteLine<'a> = dyn FnMut(&mut Vec<u8>) + 'a;

/// The layer for `--log-format json`: formats every event it is given, with its newline, onto the
/// end of the buffer `append` calls its argument with (or nowhere, when `append` does not call it).
#[derive(Clone, Copy)]
pub struct JsonLines {
    pub append: fn(&mut WriteLine<'_>),
}

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        (self.append)(&mut |line| format_line(line, event));
    }
}

fn format_line(line: &mut Vec<u8>, event: &Event<'_>) {
    let meta = event.metadata();
    line.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(line, PASS_TIME.get().unwrap_or_else(SystemTime::now));
    line.extend_from_slice(b"\",\"level\":\"");
    line.extend_from_slice(meta.level().as_str().as_bytes());
    line.push(b'"');
    if !take_staged(line) {
        event.record(&mut Fields(line));
    }
    // A target is a module path or a name of ours: nothing in it needs escaping.
    line.extend_from_slice(b",\"target\":\"");
    line.extend_from_slice(meta.target().as_bytes());
    line.push(b'"');
    line.extend_from_slice(b"}\n");
}

thread_local! {
    /// The members staged for the event this thread is emitting; they keep their capacity.
    static STAGED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Set while members are staged and no line has taken them.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// Stages the members `write` appends (`,"name":value...`) for the next line this thread
/// formats, which copies them instead of its event's own fields. Call it as the value of the one
/// field of the event being emitted: `tracing` computes it only when the event is enabled, right
/// before the layer formats it. Returns true, the field's value.
pub fn stage_members(write: impl FnOnce(&mut Vec<u8>)) -> bool {
    STAGED.with(|staged| {
        // Borrowed already: members staged while writing members, which cannot happen.
        if let Ok(mut staged) = staged.try_borrow_mut() {
            staged.clear();
            write(&mut staged);
            ARMED.set(true);
        }
    });
    true
}

/// Spends staged members that no line took.
pub fn unstage() {
    ARMED.set(false);
}

/// Copies the staged members into `line`, if any are staged; they are then spent.
fn take_staged(line: &mut Vec<u8>) -> bool {
    if !ARMED.replace(false) {
        return false;
    }
    STAGED.with(|staged| match staged.try_borrow() {
        Ok(staged) => {
            line.extend_from_slice(&staged);
            true
        }
        Err(_) => false,
    })
}

/// Writes each field as `,"name":value`.
struct Fields<'a>(&'a mut Vec<u8>);

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(field.name().as_bytes());
        self.0.extend_from_slice(b"\":");
    }
}

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        write_u64(self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        if value < 0 {
            self.0.push(b'-');
        }
        write_u64(self.0, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        write_bool(self.0, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        let quote = !value.is_finite();
        let mut text = Escaped(self.0);
        let _ = if quote {
            write!(text, "\"{value}\"")
        } else {
            write!(text, "{value}")
        };
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        write_string(self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        write_formatted(self.0, format_args!("{value:?}"));
    }
}

pub fn write_string(line: &mut Vec<u8>, s: &str) {
    line.push(b'"');
    escape::json(line, s);
    line.push(b'"');
}

/// Appends `text`, formatted, as a JSON string.
pub fn write_formatted(line: &mut Vec<u8>, text: fmt::Arguments<'_>) {
    line.push(b'"');
    // Writing into a Vec cannot fail; a value's own formatting error leaves what it wrote.
    let _ = Escaped(line).write_fmt(text);
    line.push(b'"');
}

pub fn write_bool(line: &mut Vec<u8>, value: bool) {
    line.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Appends the decimal digits of `value`.
pub fn write_u64(line: &mut Vec<u8>, value: u64) {
    line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Escapes what passes through it as the inside of a JSON string.
struct Escaped<'a>(&'a mut Vec<u8>);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape::json(self.0, s);
        Ok(())
    }
}

thread_local! {
    /// The time of the pass this thread's event loop is in, if it is in one.
    static PASS_TIME: Cell<Option<SystemTime>> = const { Cell::new(None) };
}

/// While it lives, the lines this thread formats carry `now`, the time its event loop read after
/// its wait, instead of reading the clock each: one pass answers within a few milliseconds at
/// most, and its `duration_us` figures are counted to that same time; as nginx's log lines do, the
/// lines share a cached time instead of each paying for a clock read.
pub struct PassTime(());

impl PassTime {
    pub fn start(now: SystemTime) -> PassTime {
        PASS_TIME.set(Some(now));
        PassTime(())
    }
}

impl Drop for PassTime {
    fn drop(&mut self) {
        PASS_TIME.set(None);
    }
}

thread_local! {
    /// The time last formatted by this thread, its second, and its text: the lines of one pass
    /// share a time, so its text is formatted once per pass, and its date part once a second.
    /// Borrowed in place, so that a line copies the text once, straight into itself (a `Cell`
    /// would copy it out first).
    static STAMP: RefCell<(Option<SystemTime>, u64, [u8; 27])> =
        const { RefCell::new((None, u64::MAX, [0; 27])) };
}

/// Appends `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
fn write_timestamp(line: &mut Vec<u8>, now: SystemTime) {
    STAMP.with_borrow_mut(|(at, secs, text)| {
        if *at != Some(now) {
            let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
            if *secs != since_epoch.as_secs() {
                *secs = since_epoch.as_secs();
                text[..19].copy_from_slice(&clock::date_time(*secs));
                text[19] = b'.';
                text[26] = b'Z';
            }
            let mut micros = since_epoch.subsec_micros();
            for at in (20..26).rev() {
                text[at] = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            *at = Some(now);
        }
        line.extend_from_slice(&text[..]);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    thread_local! {
        static CAPTURED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    fn capture(write: &mut WriteLine<'_>) {
        CAPTURED.with_borrow_mut(|lines| write(lines));
    }

    #[test]
    fn only_staged_members_are_copied_and_another_events_bytes_are_escaped() {
        let subscriber = tracing_subscriber::registry().with(JsonLines { append: capture });
        tracing::subscriber::with_default(subscriber, || {
            let forged: &[u8] = b",\"status\":200";
            tracing::info!(fields = forged, staged = true, "forged");
            tracing::info!(staged = stage_members(|m| m.extend_from_slice(b",\"status\":204")));
            tracing::info!("after");
        });
        let lines = String::from_utf8(CAPTURED.take()).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        for line in &lines {
            let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(parsed.is_object(), "{line}");
        }
        assert!(!lines[0].contains(r#","status":200"#), "{}", lines[0]);
        assert!(lines[0].contains(r#""fields":"#), "{}", lines[0]);
        assert!(
            lines[1].contains(r#","status":204,"target""#),
            "{}",
            lines[1]
        );
        assert!(!lines[2].contains("status"), "{}", lines[2]);
    }

    #[test]
    fn lines_of_a_pass_carry_its_time_and_others_the_clock() {
        let subscriber = tracing_subscriber::registry().with(JsonLines { append: capture });
        tracing::subscriber::with_default(subscriber, || {
            let pass = PassTime::start(UNIX_EPOCH + Duration::new(784_111_777, 3_456_000));
            tracing::info!("in the pass");
            drop(pass);
            tracing::info!("after it");
        });
        let lines = String::from_utf8(CAPTURED.take()).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(r#"{"timestamp":"1994-11-06T08:49:37.003456Z","level":"INFO","message":"in the pass""#), "{}", lines[0]);
        let year = clock::date_time(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        assert!(
            lines[1].starts_with(&format!(
                r#"{{"timestamp":"{}"#,
                std::str::from_utf8(&year[..4]).unwrap()
            )),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = Vec::new();
        let t = UNIX_EPOCH + Duration::new(784_111_777, 3_456_000);
        write_timestamp(&mut s, t);
        assert_eq!(s, b"1994-11-06T08:49:37.003456Z");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = Vec::new();
        write_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#.as_bytes());
    }

    #[test]
    fn long_strings_are_escaped_wherever_the_special_byte_falls() {
        for at in 0..20 {
            let mut text = "x".repeat(20);
            text.replace_range(at..=at, "\"");
            let mut s = Vec::new();
            escape::json(&mut s, &text);
            assert_eq!(s, text.replace('"', "\\\"").as_bytes(), "{at}");
        }
        let mut s = Vec::new();
        escape::json(&mut s, "0123456789abcdef\u{7}\u{1f}ok");
        assert_eq!(s, b"0123456789abcdef\\u0007\\u001fok");
    }

    #[test]
    fn integers_are_written_whole() {
        for n in [0, 7, 10, 4_294_967_296, u64::MAX] {
            let mut s = Vec::new();
            write_u64(&mut s, n);
            assert_eq!(s, n.to_string().as_bytes());
        }
    }
}
