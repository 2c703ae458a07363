//! The access log: one line per answer, the one event emitted at the request rate. A
//! [`Record`] writes its fields once, through a [`FieldWriter`], as JSON members or as the text
//! format's `name=value` pairs; [`access`] stages the JSON members where only the JSON layer can
//! take them (`json::stage_members`) and emits the event. [`Shown`] bounds and escapes a value a
//! peer sent, for any line.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ascii;
use crate::net::AddrText;

use super::*;

/// The target of the access log's events: `response` and `request rejected`.
pub const ACCESS: &str = "responder::access";

/// Whether [`init`] chose the text format (else lines are JSON, as they are for a subscriber a
/// test installs with the JSON layer).
pub(super) static TEXT: AtomicBool = AtomicBool::new(false);

/// A field's name as a JSON line writes it, `,"name":"` (a string's opening quote included,
/// which a number or a boolean leaves off), an array of known length, which the compiler copies
/// in a few moves rather than a call to `memcpy`; and as the text format writes it, ` name=`.
/// Made by [`key!`].
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
        const TEXT: &str = concat!(",\"", $name, "\":\"");
        const BYTES: [u8; TEXT.len()] = $crate::log::access::key_bytes(TEXT);
        $crate::log::access::Key {
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

/// Emits an access-log event (target [`ACCESS`], level INFO) with `message` and the record's
/// fields. They are written only when the event is enabled.
pub fn access(message: &'static str, record: &impl Record) {
    if TEXT.load(Ordering::Relaxed) {
        tracing::info!(target: ACCESS, "{}", Pairs { message, record });
        return;
    }
    // The field's value is computed only when the event is enabled: that is when the members
    // are written and staged for the JSON layer, which takes them for this event.
    tracing::info!(
        target: ACCESS,
        staged = json::stage_members(|members| {
            let mut json = JsonFields(members);
            json.plain(key!("message"), message.as_bytes());
            record.write(&mut json);
        })
    );
    // A filter that drops the event after its fields were computed leaves them staged.
    json::unstage();
}

/// Writes fields as JSON members.
pub(super) struct JsonFields<'a>(&'a mut Vec<u8>);

impl JsonFields<'_> {
    /// `,"name":`, for a value that is not a string.
    #[inline]
    fn name<const N: usize>(&mut self, key: Key<N>) {
        self.0.extend_from_slice(&key.json[..N - 1]);
    }
}

impl FieldWriter for JsonFields<'_> {
    fn str<const N: usize>(&mut self, key: Key<N>, value: &str) {
        if ascii::printable(value.as_bytes()) {
            self.plain(key, value.as_bytes());
        } else {
            self.name(key);
            json::write_string(self.0, value);
        }
    }

    #[inline]
    fn plain<const N: usize>(&mut self, key: Key<N>, value: &[u8]) {
        debug_assert!(ascii::printable(value), "{value:?}");
        self.0.extend_from_slice(key.json);
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
            self.name(key);
            json::write_formatted(self.0, format_args!("{}", Shown(value)));
        }
    }

    #[inline]
    fn u64<const N: usize>(&mut self, key: Key<N>, value: u64) {
        self.name(key);
        json::write_u64(self.0, value);
    }

    fn bool<const N: usize>(&mut self, key: Key<N>, value: bool) {
        self.name(key);
        json::write_bool(self.0, value);
    }

    fn addr<const N: usize>(&mut self, key: Key<N>, value: SocketAddr) {
        // Digits, dots, colons, brackets and a scope's name: nothing a JSON string escapes.
        self.0.extend_from_slice(key.json);
        AddrText::append(value, self.0);
        self.0.push(b'"');
    }

    fn debug<const N: usize>(&mut self, key: Key<N>, value: &dyn fmt::Debug) {
        self.name(key);
        json::write_formatted(self.0, format_args!("{value:?}"));
    }
}

/// An access line in the text format: the message, then ` name=value` for each field, strings
/// quoted and escaped as `Debug` writes them (as the text format writes any other event's).
pub(super) struct Pairs<'r, R> {
    pub(super) message: &'static str,
    pub(super) record: &'r R,
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
pub(super) struct TextFields<'a, 'b> {
    pub(super) f: &'a mut fmt::Formatter<'b>,
    pub(super) result: fmt::Result,
}

impl TextFields<'_, '_> {
    pub(super) fn write(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = self.f.write_str(text);
        }
    }

    pub(super) fn key<const N: usize>(&mut self, key: Key<N>) {
        self.write(key.text);
    }

    /// `value` quoted: printable ASCII without quotes or backslashes as it is, anything else
    /// shown and escaped as `Debug` escapes a string.
    pub(super) fn quoted(&mut self, value: &[u8]) {
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

    pub(super) fn display<const N: usize>(&mut self, key: Key<N>, value: impl fmt::Display) {
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
pub(super) struct DebugEscaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

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
    fn a_path_is_copied_whole_or_escaped_as_a_json_string_wherever_its_special_byte_falls() {
        struct Path<'a>(&'a str);
        impl Record for Path<'_> {
            fn write(&self, fields: &mut impl FieldWriter) {
                fields.str(key!("path"), self.0);
                fields.u64(key!("status"), 200);
            }
        }
        for len in 1..=20 {
            for special in ["", "\"", "\\", "\n", "\u{7f}", "é", "\u{85}"] {
                for at in 0..len {
                    let mut path = "p".repeat(len);
                    path.replace_range(at..=at, special);
                    let mut json = Vec::new();
                    Path(&path).write(&mut JsonFields(&mut json));
                    let mut expected = br#","path":"#.to_vec();
                    crate::log::json::write_string(&mut expected, &path);
                    expected.extend_from_slice(br#","status":200"#);
                    assert_eq!(json, expected, "{path:?}");
                }
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
