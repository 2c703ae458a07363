//! The chunked transfer coding (RFC 9112 7.1), decoded as it arrives and discarded: chunk-size
//! lines, chunk data, the CRLF after each chunk and the trailer section. It keeps only where the
//! decoding stands and the sizes summed; the caller keeps unconsumed input and answers the request
//! once the body ends.

use super::status::Rejection;
use super::{Limits, MAX_HEADERS};

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
    /// This many bytes were decoded; go on after them.
    Took(usize),
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
                    Decoded::Took(take as usize)
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
    let line_end = rest.iter().position(|&b| b == b'\n');
    // httparse takes a size line without digits as zero and any byte in an extension; a
    // stricter front (a digit first, visible characters, CRLF) keeps both from meaning something
    // else to a proxy.
    let visible = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\t';
    let content = match line_end {
        Some(end) if end > 0 && rest[end - 1] == b'\r' => &rest[..end - 1],
        Some(_) => return Err(Rejection::BadRequest),
        None => rest.strip_suffix(b"\r").unwrap_or(rest),
    };
    let starts_with_digit = rest.first().is_none_or(u8::is_ascii_hexdigit);
    if !starts_with_digit || !content.iter().all(visible) {
        return Err(Rejection::BadRequest);
    }
    let Some(end) = line_end else {
        return if rest.len() >= max_line {
            Err(Rejection::BadRequest)
        } else {
            Ok(None)
        };
    };
    if end + 1 > max_line {
        return Err(Rejection::BadRequest);
    }
    match httparse::parse_chunk_size(&rest[..=end]) {
        Ok(httparse::Status::Complete(parsed)) => Ok(Some(parsed)),
        _ => Err(Rejection::BadRequest),
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

    #[test]
    fn chunk_size_lines_are_strict() {
        let limits = Limits {
            max_header_bytes: 8192,
            max_body_bytes: 100,
        };
        assert_eq!(chunk_size(b"1a\r\nrest", limits), Ok(Some((4, 26))));
        assert_eq!(chunk_size(b"5;name=value\r\n", limits), Ok(Some((14, 5))));
        assert_eq!(chunk_size(b"5", limits), Ok(None));
        for bad in [
            &b"\r\n"[..],
            b";x\r\n",
            b"5\n",
            b"-5\r\n",
            b"5\x00\r\n",
            b"0x5\r\n",
        ] {
            assert_eq!(
                chunk_size(bad, limits),
                Err(Rejection::BadRequest),
                "{bad:?}"
            );
        }
        assert_eq!(
            chunk_size(&[b'1'; 1100], limits),
            Err(Rejection::BadRequest),
            "an endless size line"
        );
    }
}
