//! Byte classes tested eight bytes at a time: a `u64` holds eight bytes, and the carries of one
//! subtraction or addition mark the bytes of a class in their high bits. The log line's
//! escaping, the access line's printable values and `traceparent`'s hex digits each scan text a
//! client sent, on every request, and every field name is compared with the names the head is
//! read for. The token byte class (methods, field names, codings) lives here too, tested a byte
//! at a time, and the newline search, which is `memchr`'s. What the bytes mean, and what is done
//! with them, is the callers' business.

const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGH: u64 = ONES * 0x80;

/// Where the first `\n` in `bytes` is, if there is one (`memchr`, which searches a vector
/// register at a time).
pub fn newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Whether `b` may be in an HTTP token (RFC 9110 5.6.2): a method, a field name, a coding.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A token (RFC 9110 5.6.2): one or more token bytes.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// Whether `token` (a header name: token characters only) is `lower` (lowercase letters, digits
/// and `-`) in any case. Setting each byte's 0x20 bit lowercases a letter and leaves a digit or
/// `-` as it is, and turns no other token character into one of those.
pub fn token_is(token: &[u8], lower: &[u8]) -> bool {
    let n = token.len();
    if n != lower.len() {
        return false;
    }
    // Eight bytes at a time, the last eight overlapping the ones before unless the length is a
    // multiple of eight; four at a time (twice, overlapping) below eight: no loop over a tail.
    let folds = |at: usize| match (word_at(token, at), word_at(lower, at)) {
        (Some(ours), Some(known)) => ours | (ONES * 0x20) == known,
        _ => false,
    };
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if !folds(at) {
                return false;
            }
            at += 8;
        }
        return folds(n - 8);
    }
    let folds_half = |at: usize| match (half_at(token, at), half_at(lower, at)) {
        (Some(ours), Some(known)) => ours | 0x2020_2020 == known,
        _ => false,
    };
    if n >= 4 {
        return folds_half(0) && folds_half(n - 4);
    }
    token
        .iter()
        .zip(lower)
        .all(|(&ours, &known)| ours | 0x20 == known)
}

/// How many bytes at the start of `bytes` a JSON string takes as they are: neither a C0 control
/// character, DEL, a quote, a backslash nor 0xC2, the lead byte of the C1 controls (nearly every
/// log line, whole).
pub fn json_clean_prefix(bytes: &[u8]) -> usize {
    prefix(
        bytes,
        |x| (json_special(x) | equal(x, 0x7f) | equal(x, 0xc2)) & HIGH == 0,
        |b| !(b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f || b == 0xc2),
    )
}

/// Whether every byte is printable ASCII other than a quote or a backslash: text that goes into
/// a JSON string, or the text format's quotes, as it is (what nearly every client sends).
pub fn printable(bytes: &[u8]) -> bool {
    let plain_byte = |b: u8| (b' '..=b'~').contains(&b) && b != b'\\' && b != b'"';
    every(
        bytes,
        |x| json_special(x) | at_least_del(x) == 0,
        plain_byte,
    )
}

/// Whether every byte is a lowercase hex digit.
pub fn lower_hex(bytes: &[u8]) -> bool {
    let hex_word = |x: u64| {
        // With every byte below 0x80, adding 0x80 - c sets a byte's high bit exactly when the
        // byte is c or above, and no carry crosses into the next byte.
        let at_least = |c: u8| x.wrapping_add(ONES * u64::from(0x80 - c));
        let digit = at_least(b'0') & !at_least(b'9' + 1);
        let letter = at_least(b'a') & !at_least(b'f' + 1);
        x & HIGH == 0 && (digit | letter) & HIGH == HIGH
    };
    let hex_byte = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    every(bytes, hex_word, hex_byte)
}

/// Whether every byte of `bytes` passes: eight at a time while `word` passes the next eight,
/// then, when eight or more bytes were given, the last eight as one word (the bytes it shares
/// with the word before passed already, so only the rest can fail it), else one at a time while
/// `byte` passes. A value's tail then costs one word test rather than a loop over its bytes.
#[inline]
fn every(bytes: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> bool {
    let mut at = 0;
    while let Some(x) = word_at(bytes, at) {
        if !word(x) {
            return false;
        }
        at += 8;
    }
    match bytes.len().checked_sub(8) {
        _ if at == bytes.len() => true,
        Some(last) => word_at(bytes, last).is_some_and(word),
        None => bytes.iter().all(|&b| byte(b)),
    }
}

/// How many bytes at the start of `bytes` pass: eight at a time while `word` passes the next
/// eight, then one at a time while `byte` passes.
#[inline]
fn prefix(bytes: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> usize {
    let mut at = 0;
    while word_at(bytes, at).is_some_and(&word) {
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| !byte(b))
        .unwrap_or(bytes.len() - at)
}

/// The eight bytes of `bytes` from `at` as one word, the first in the lowest bits, if there are
/// eight.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let mut eight = [0u8; 8];
    eight.copy_from_slice(bytes.get(at..at + 8)?);
    Some(u64::from_le_bytes(eight))
}

/// The four bytes of `bytes` from `at` as one word, the first in the lowest bits, if there are
/// four.
#[inline]
fn half_at(bytes: &[u8], at: usize) -> Option<u32> {
    let mut four = [0u8; 4];
    four.copy_from_slice(bytes.get(at..at + 4)?);
    Some(u32::from_le_bytes(four))
}

/// Non-zero when some byte of `x` is a control character (below 0x20), a quote or a backslash.
fn json_special(x: u64) -> u64 {
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    (control | equal(x, b'"') | equal(x, b'\\')) & HIGH
}

/// Non-zero when some byte of `x` is 0x7f (DEL) or above: its high bit set, or set by adding one.
fn at_least_del(x: u64) -> u64 {
    (x | x.wrapping_add(ONES)) & HIGH
}

/// Non-zero (in the high bits) when some byte of `x` is `byte`.
fn equal(x: u64, byte: u8) -> u64 {
    let y = x ^ (ONES * u64::from(byte));
    y.wrapping_sub(ONES) & !y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_is_found_wherever_it_falls_and_only_there() {
        for len in 0..20 {
            let text = vec![b'\r'; len];
            assert_eq!(newline(&text), None, "none in {len}");
            for at in 0..len {
                let mut line = text.clone();
                line[at] = b'\n';
                // A byte after it that a borrow could mistake for a newline.
                if at + 1 < len {
                    line[at + 1] = b'\x0b';
                }
                assert_eq!(newline(&line), Some(at), "at {at} of {len}");
                line[len - 1] = b'\n';
                assert_eq!(newline(&line), Some(at), "first, at {at} of {len}");
            }
        }
        let all: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        assert_eq!(newline(&all), None);
    }

    #[test]
    fn token_is_matches_any_case_and_no_other_token() {
        let token_bytes: Vec<u8> = (0..=255u8).filter(|&b| is_token_byte(b)).collect();
        for known in [
            &b"x-forwarded-for"[..],
            b"host",
            b"if-modified-since",
            b"te",
            b"a1-b2",
            b"accept",
            b"referer",
            b"x-format",
            b"connection",
            b"content-location",
        ] {
            assert!(token_is(known, known));
            assert!(token_is(&known.to_ascii_uppercase(), known));
            let mut mixed = known.to_vec();
            mixed
                .iter_mut()
                .step_by(2)
                .for_each(|b| b.make_ascii_uppercase());
            assert!(token_is(&mixed, known));
            assert!(!token_is(&known[1..], known));
            for at in 0..known.len() {
                for &other in &token_bytes {
                    if other.eq_ignore_ascii_case(&known[at]) {
                        continue;
                    }
                    let mut name = known.to_vec();
                    name[at] = other;
                    assert!(
                        !token_is(&name, known),
                        "{:?}",
                        String::from_utf8_lossy(&name)
                    );
                }
            }
        }
    }

    #[test]
    fn json_clean_prefix_stops_at_the_first_special_byte_wherever_it_falls() {
        for at in 0..20 {
            for special in [0x00, 0x1f, b'"', b'\\'] {
                let mut text = vec![b'x'; 20];
                text[at] = special;
                assert_eq!(json_clean_prefix(&text), at, "{special:#x} at {at}");
            }
        }
        assert_eq!(json_clean_prefix("héllo wörld, 0123".as_bytes()), 19);
    }

    #[test]
    fn printable_finds_any_byte_that_is_not_wherever_it_falls() {
        let text: Vec<u8> = (b' '..=b'~').filter(|&b| b != b'\\' && b != b'"').collect();
        assert!(printable(&text));
        for at in 0..20 {
            for bad in [0x00, 0x1f, b'\\', b'"', 0x7f, 0x80, 0xc3, 0xff] {
                let mut value = vec![b'~'; 20];
                value[at] = bad;
                assert!(!printable(&value), "{bad:#x} at {at}");
            }
        }
    }

    #[test]
    fn every_length_is_checked_to_its_last_byte() {
        for len in 0..=25 {
            let text = vec![b'a'; len];
            assert!(printable(&text) && lower_hex(&text), "{len}");
            for at in 0..len {
                for bad in [0x00, b'"', b'\\', 0x7f, 0xc3] {
                    let mut value = text.clone();
                    value[at] = bad;
                    assert!(!printable(&value), "{bad:#x} at {at} of {len}");
                    assert!(!lower_hex(&value), "{bad:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn lower_hex_finds_any_other_byte_wherever_it_falls() {
        let hex = b"0123456789abcdef0123";
        assert!(lower_hex(hex));
        for at in 0..hex.len() {
            for bad in [
                b'/', b':', b'`', b'g', b'A', b'F', b' ', 0x80, 0xb0, 0xe1, 0xff,
            ] {
                let mut value = *hex;
                value[at] = bad;
                assert!(!lower_hex(&value), "{bad:#x} at {at}");
            }
        }
    }
}
