//! The request line's grammar (RFC 9112 3) where httparse is not the whole answer, and the
//! request target's forms (RFC 9112 3.2): origin, absolute, authority and asterisk, with the
//! authority checked as RFC 3986 3.2.2 writes it. It reads bytes and keeps nothing.

use crate::ascii::is_token;

/// A request line checked byte by byte (RFC 9112 3): `method SP target SP HTTP/d.d`, single
/// spaces, a token method and a target of visible characters.
pub(super) struct RequestLine<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    pub(super) major: u8,
    /// Through the line's end.
    pub(super) len: usize,
}

impl<'a> RequestLine<'a> {
    pub(super) fn parse(buf: &'a [u8]) -> Option<RequestLine<'a>> {
        let end = buf.iter().position(|&b| b == b'\n')?;
        let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
        let mut parts = line.split(|&b| b == b' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_token(method) || !is_target(target) {
            return None;
        }
        let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = *version else {
            return None;
        };
        if !major.is_ascii_digit() || !minor.is_ascii_digit() {
            return None;
        }
        Some(RequestLine {
            method: std::str::from_utf8(method).ok()?,
            target: std::str::from_utf8(target).ok()?,
            major,
            len: end + 1,
        })
    }

    /// Whether `buf`, with no line end yet, can still become a request line: a method, a space,
    /// and target characters.
    pub(super) fn plausible_start(buf: &[u8]) -> bool {
        let Some(space) = buf.iter().position(|&b| b == b' ') else {
            return is_token(buf);
        };
        is_token(&buf[..space])
            && buf[space + 1..]
                .iter()
                .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r')
    }
}

/// A request target's bytes: visible ASCII, at least one.
pub(super) fn is_target(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_graphic)
}

/// `uri-host [ ":" port ]` (RFC 3986 3.2.2): an IP literal in brackets or a reg-name (unreserved,
/// percent-encoded and sub-delimiter characters, without the comma that would make it a list),
/// then digits after a colon. Empty, userinfo (`@`), paths and spaces are refused.
pub(super) fn valid_authority(authority: &[u8]) -> bool {
    let (host, port) = match authority.first() {
        Some(b'[') => match authority.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = &authority[1..close];
                let valid = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b":.".contains(&b));
                if !valid {
                    return false;
                }
                (&authority[..=close], &authority[close + 1..])
            }
            None => return false,
        },
        _ => {
            // One pass over the reg-name: it ends at the first byte not of its class, which
            // must be the port's colon (not in the class) or the end.
            let end = authority
                .iter()
                .position(|&b| !REG_NAME[usize::from(b)])
                .unwrap_or(authority.len());
            (&authority[..end], &authority[end..])
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    !host.is_empty() && port_ok
}

/// The bytes of a reg-name (RFC 3986 3.2.2), by value: unreserved, the `%` of pct-encoded, and
/// the sub-delims but the comma, which would make a `Host` value a list.
const REG_NAME: [bool; 256] = reg_name_bytes();

const fn reg_name_bytes() -> [bool; 256] {
    let mut class = [false; 256];
    let mut b = 0;
    while b < class.len() {
        class[b] = matches!(
            b as u8,
            b'a'..=b'z'
                | b'A'..=b'Z'
                | b'0'..=b'9'
                | b'-'
                | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b';'
                | b'='
        );
        b += 1;
    }
    class
}

/// The authority and path of an absolute-form target (`http://host/a?b`; the path is `/` when
/// absent), or `None` for any other form.
pub(super) fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme_len = if target.get(..7)?.eq_ignore_ascii_case(b"http://") {
        7
    } else if target.get(..8)?.eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return None;
    };
    let rest = &target[scheme_len..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let path = match rest.get(end) {
        Some(b'/') => &rest[end..],
        _ => b"/",
    };
    Some((&rest[..end], path))
}

/// The path a route is matched against: without its query or fragment.
pub(super) fn strip_query(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_targets_give_their_authority_and_path() {
        assert_eq!(
            absolute_form(b"http://host:1/x/y?z"),
            Some((&b"host:1"[..], &b"/x/y?z"[..]))
        );
        assert_eq!(
            absolute_form(b"HTTPS://host"),
            Some((&b"host"[..], &b"/"[..]))
        );
        assert_eq!(absolute_form(b"*"), None);
        assert_eq!(absolute_form(b"host:443"), None);
        assert_eq!(strip_query(b"/a?b=c"), b"/a");
    }

    #[test]
    fn the_reg_name_class_is_the_rfc_3986_set() {
        for b in 0..=255u8 {
            let listed = b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(&b);
            assert_eq!(REG_NAME[usize::from(b)], listed, "{b:#04x}");
        }
    }

    #[test]
    fn authorities_are_host_and_optional_port() {
        for good in [
            "example.com",
            "a:80",
            "[::1]:8080",
            "10.0.0.1",
            "a-b_c~d.e",
            "x:",
        ] {
            assert!(valid_authority(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a, b",
            "example.com/path",
            "user@host",
            "a:8x",
            ":80",
            "[::1",
            "a\x01",
        ] {
            assert!(!valid_authority(bad.as_bytes()), "{bad:?}");
        }
    }
}
