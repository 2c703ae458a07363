//! The chunked transfer coding (RFC 9112 7.1), decoded as it arrives and discarded: chunk-size
//! lines, chunk data, the CRLF after each chunk and the trailer section. It keeps only where the
//! decoding stands and the sizes summed; the caller keeps unconsumed input and answers the request
//! once the body ends.

use super::status::Rejection;
use super::{Limits, MAX_HEADERS};
use crate::ascii;

/// The longest chunk-size line (size, extensions, CRLF) accepted, or the head limit if smaller:
/// extensions are rare and short, and an endless line must not be buffered.
const MAX_CHUNK_LINE: usize = 1024;

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunked {
    stage: Stage,
    /// The sizes of the chunks so far, against `max_body_bytes`.
    total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data to discard.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields up to an empty line, which ends the body.
    Trailers,
}

/// What one step of decoding found at the front of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoded {
    /// This many bytes of framing were decoded; go on after them.
    Took(usize),
    /// This many bytes at the front are chunk data; go on after them.
    Data(usize),
    /// What is left is the start of something not complete yet: wait for more.
    Incomplete,
    /// The body ends after this many bytes (the end of the trailer section).
    End(usize),
}

impl Chunked {
    pub(super) fn new() -> Chunked {
        Chunked {
            stage: Stage::Size,
            total: 0,
        }
    }

    /// Decodes what it can at the front of `rest`: one size line, data, a data end or the
    /// trailer section.
    pub(super) fn step(&mut self, rest: &[u8], limits: Limits) -> Result<Decoded, Rejection> {
        let decoded = match self.stage {
            Stage::Size => match chunk_size(rest, limits)? {
                Some((len, size)) => {
                    self.total = self.total.saturating_add(size);
                    self.stage = if size == 0 {
                        Stage::Trailers
                    } else {
                        Stage::Data(size)
                    };
                    Decoded::Took(len)
                }
                None => Decoded::Incomplete,
            },
            Stage::Data(left) => {
                let take = left.min(rest.len() as u64);
                self.stage = if take < left {
                    Stage::Data(left - take)
                } else {
                    Stage::DataEnd
                };
                if take == 0 {
                    Decoded::Incomplete
                } else {
                    Decoded::Data(take as usize)
                }
            }
            Stage::DataEnd => match rest {
                [b'\r', b'\n', ..] => {
                    self.stage = Stage::Size;
                    Decoded::Took(2)
                }
                [] | [b'\r'] => Decoded::Incomplete,
                _ => return Err(Rejection::BadRequest),
            },
            Stage::Trailers => match trailer_section(rest, limits)? {
                Some(len) => Decoded::End(len),
                None => Decoded::Incomplete,
            },
        };
        if self.total > limits.max_body_bytes {
            return Err(Rejection::PayloadTooLarge);
        }
        Ok(decoded)
    }
}

/// A chunk-size line at the front of `rest` (RFC 9112 7.1): hex digits, optional extensions,
/// CRLF. `Ok(Some((line length, size)))`, `Ok(None)` while it is incomplete.
fn chunk_size(rest: &[u8], limits: Limits) -> Result<Option<(usize, u64)>, Rejection> {
    let max_line = MAX_CHUNK_LINE.min(limits.max_header_bytes);
    let Some(end) = ascii::newline(rest) else {
        // Refused as soon as it cannot become a size line, rather than after the read timeout.
        let started = rest.strip_suffix(b"\r").unwrap_or(rest);
        let plausible = started.first().is_none_or(u8::is_ascii_hexdigit)
            && started.iter().all(|&b| is_text(b));
        return if plausible && rest.len() < max_line {
            Ok(None)
        } else {
            Err(Rejection::BadRequest)
        };
    };
    if end + 1 > max_line {
        return Err(Rejection::BadRequest);
    }
    match rest[..end].strip_suffix(b"\r") {
        Some(line) => size_line(line).map(|size| Some((end + 1, size))),
        None => Err(Rejection::BadRequest),
    }
}

/// The content of a chunk-size line, without its CRLF, read in one pass as RFC 9112 7.1 and 7.1.1
/// write it: `chunk-size *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`.
/// Anything else, whitespace that ends the line included, is refused: a proxy in front may have
/// framed it differently (httparse takes a line without digits as size zero and any byte in an
/// extension).
fn size_line(line: &[u8]) -> Result<u64, Rejection> {
    let mut size: u64 = 0;
    let mut at = 0;
    while let Some(digit) = line.get(at).and_then(|&b| char::from(b).to_digit(16)) {
        size = size.checked_mul(16).ok_or(Rejection::BadRequest)? | u64::from(digit);
        at += 1;
    }
    if at == 0 {
        return Err(Rejection::BadRequest);
    }
    loop {
        let ext = skip(line, at, is_blank);
        match line.get(ext) {
            // Whitespace is allowed only before a `;`.
            None if ext == at => return Ok(size),
            Some(b';') => {}
            _ => return Err(Rejection::BadRequest),
        }
        let name = skip(line, ext + 1, is_blank);
        at = skip(line, name, ascii::is_token_byte);
        if at == name {
            return Err(Rejection::BadRequest);
        }
        let equals = skip(line, at, is_blank);
        if line.get(equals) == Some(&b'=') {
            let value = skip(line, equals + 1, is_blank);
            at = if line.get(value) == Some(&b'"') {
                skip_quoted_string(line, value + 1).ok_or(Rejection::BadRequest)?
            } else {
                skip(line, value, ascii::is_token_byte)
            };
            if at == value {
                return Err(Rejection::BadRequest);
            }
        }
    }
}

/// Past the bytes of `class` from `at`.
fn skip(line: &[u8], at: usize, class: fn(u8) -> bool) -> usize {
    let rest = line.get(at..).unwrap_or_default();
    at + rest.iter().take_while(|&&b| class(b)).count()
}

/// `BWS`'s bytes: space and tab.
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Visible ASCII, space, tab or `obs-text` (above 0x7F): a quoted string's text, the byte a
/// backslash quotes.
fn is_text(b: u8) -> bool {
    b.is_ascii_graphic() || is_blank(b) || b >= 0x80
}

/// Past the closing quote of a quoted string whose opening quote is before `at` (RFC 9110
/// 5.6.4): `qdtext` (text but `"` and `\`) and `\` before a text byte. `None` if it does not
/// close.
fn skip_quoted_string(line: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *line.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' if is_text(*line.get(at + 1)?) => at += 2,
            b'\\' => return None,
            b if is_text(b) => at += 1,
            _ => return None,
        }
    }
}

/// The trailer section after the last chunk, through its empty line, bounded like a head.
fn trailer_section(rest: &[u8], limits: Limits) -> Result<Option<usize>, Rejection> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if len <= limits.max_header_bytes => Ok(Some(len)),
        Ok(httparse::Status::Partial) if rest.len() <= limits.max_header_bytes => Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Err(Rejection::HeadersTooLarge),
        Err(_) => Err(Rejection::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_body_bytes: 100,
    };

    #[test]
    fn chunk_size_lines_are_strict() {
        assert_eq!(chunk_size(b"1a\r\nrest", LIMITS), Ok(Some((4, 26))));
        assert_eq!(chunk_size(b"5;name=value\r\n", LIMITS), Ok(Some((14, 5))));
        assert_eq!(chunk_size(b"5", LIMITS), Ok(None));
        assert_eq!(
            chunk_size(b"5;", LIMITS),
            Ok(None),
            "an extension may follow"
        );
        for bad in [
            &b"\r\n"[..],
            b";x\r\n",
            b"5\n",
            b"-5\r\n",
            b"5\x00\r\n",
            b"0x5\r\n",
            b"\x005",
            b"5\r5\r\n",
        ] {
            assert_eq!(
                chunk_size(bad, LIMITS),
                Err(Rejection::BadRequest),
                "{bad:?}"
            );
        }
        assert_eq!(
            chunk_size(&[b'1'; 1100], LIMITS),
            Err(Rejection::BadRequest),
            "an endless size line"
        );
    }

    /// RFC 9112 7.1 and 7.1.1, to the letter.
    #[test]
    fn chunk_extensions_follow_the_grammar() {
        for (good, size) in [
            ("5", 5),
            ("0", 0),
            ("00000A", 10),
            ("fF", 255),
            ("ffffffffffffffff", u64::MAX),
            ("5;a", 5),
            ("5;a=b", 5),
            ("5;a=\"b c\"", 5),
            ("5;a=\"\"", 5),
            ("5;a=\"q\\\"\\\\\"", 5),
            ("5 ;a", 5),
            ("5\t; a = b ;c", 5),
            ("5;a=b;c=\"d\";e", 5),
            ("5;!#$%&'*+-.^_`|~=x", 5),
            ("5;a=\"\u{e9}\\\u{e9}\"", 5),
        ] {
            assert_eq!(size_line(good.as_bytes()), Ok(size), "{good:?}");
        }
        for bad in [
            "",
            "5;",
            "5; ",
            "5;;a",
            "5;a b",
            "5;a,b",
            "5;a=",
            "5;a=b c",
            "5;a=\"b",
            "5;a=\"b\"c",
            "5;a=\"\\\"",
            "5;a=b=c",
            "5;=b",
            "5;a=(b)",
            "5;a=\"\x01\"",
            "5;a=\u{e9}",
            "5;\u{e9}",
            "5\u{e9}",
            "5 ",
            "5\t",
            "5;a ",
            "5;a=b ",
            "5 5",
            "5g;x",
            "x5",
            "10000000000000000",
        ] {
            assert_eq!(
                size_line(bad.as_bytes()),
                Err(Rejection::BadRequest),
                "{bad:?}"
            );
        }
    }
}
