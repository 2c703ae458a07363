//! The one JSON string escaper, for the log's lines and for templates and echoes alike, so that a
//! value reaches every JSON document the same way: quotes, backslashes and every control
//! character (C0, DEL and C1) escaped, the rest copied. What counts as a value, and how long it
//! may be, is the caller's.

use crate::ascii;

/// Lowercase hex digits, by value.
pub const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as the inside of a JSON string.
pub fn json(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut from = 0;
    loop {
        let clean = from + ascii::json_clean_prefix(&bytes[from..]);
        out.extend_from_slice(&bytes[from..clean]);
        let Some(&b) = bytes.get(clean) else {
            return;
        };
        from = clean + 1;
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            // The lead byte of U+0080 to U+00BF: a C1 control when the next byte is below 0xA0.
            0xc2 => match bytes.get(from) {
                Some(&next) if next < 0xa0 => {
                    unicode_escape(out, next);
                    from += 1;
                    continue;
                }
                _ => b"\xc2",
            },
            _ => {
                unicode_escape(out, b);
                continue;
            }
        };
        out.extend_from_slice(escape);
    }
}

/// Appends `bytes` as the inside of a JSON string: what is not UTF-8 becomes U+FFFD, so that the
/// document stays valid.
pub fn json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        json(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// `\u00XX` for a code point below U+0100.
pub fn unicode_escape(out: &mut Vec<u8>, code: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(code >> 4)]);
    out.push(HEX[usize::from(code & 0xf)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        json(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn every_control_character_is_escaped_and_the_rest_copied() {
        assert_eq!(escaped("a\"b\\c\nd\re\tf"), "a\\\"b\\\\c\\nd\\re\\tf");
        assert_eq!(escaped("\u{0}\u{1f}\u{7f}"), "\\u0000\\u001f\\u007f");
        assert_eq!(escaped("\u{80}x\u{9f}"), "\\u0080x\\u009f");
        assert_eq!(escaped("\u{a0}é€😀"), "\u{a0}é€😀");
        for c in (0..0x300u32).filter_map(char::from_u32) {
            let text = escaped(&c.to_string());
            let decoded: String = serde_json::from_str(&format!("\"{text}\"")).unwrap_or_default();
            assert_eq!(decoded, c.to_string(), "{c:?}");
            let escaped_as_control = text.starts_with('\\') && !matches!(c, '"' | '\\');
            assert_eq!(c.is_control(), escaped_as_control, "{c:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_become_the_replacement_character() {
        let mut out = Vec::new();
        json_bytes(&mut out, b"a\xffb\xc2");
        assert_eq!(String::from_utf8_lossy(&out), "a\u{fffd}b\u{fffd}");
    }
}
