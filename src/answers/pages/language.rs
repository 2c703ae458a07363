//! The languages the built-in error pages speak, and which of them an `Accept-Language` value
//! prefers (RFC 9110 12.5.4: q-values, a range's primary subtag, `*`). What each language says
//! is `words`'.

/// A language of the built-in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    En,
    De,
    Fr,
    Es,
    Pt,
    Ja,
    Zh,
}

impl Language {
    pub const ALL: [Language; 7] = [
        Language::En,
        Language::De,
        Language::Fr,
        Language::Es,
        Language::Pt,
        Language::Ja,
        Language::Zh,
    ];

    /// The language tag, as `Content-Language`, `lang` and `[error_pages] language` write it.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Fr => "fr",
            Language::Es => "es",
            Language::Pt => "pt",
            Language::Ja => "ja",
            Language::Zh => "zh",
        }
    }

    /// The language a tag names (`de`, `pt-BR`, `ZH-hans`: the primary subtag, in any case).
    pub fn from_tag(tag: &[u8]) -> Option<Language> {
        let primary = tag.split(|&b| b == b'-').next().unwrap_or_default();
        Language::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.tag().as_bytes()))
    }

    /// The language an `Accept-Language` value prefers among these: the range with the highest
    /// quality above 0 that names one of them (the first of equals), `*` taken as English. None
    /// when no range does, or the value is empty.
    pub fn from_accept_language(value: &[u8]) -> Option<Language> {
        let mut best: Option<(u16, Language)> = None;
        for range in value.split(|&b| b == b',') {
            let mut parts = range.split(|&b| b == b';');
            let tag = parts.next().unwrap_or_default().trim_ascii();
            let quality = parts
                .map(<[u8]>::trim_ascii)
                .find(|p| p.len() >= 2 && p[..2].eq_ignore_ascii_case(b"q="))
                .map_or(Some(1000), |p| quality(&p[2..]));
            let language = if tag == b"*" {
                Some(Language::En)
            } else {
                Language::from_tag(tag)
            };
            if let (Some(q), Some(language)) = (quality, language) {
                if q > 0 && best.is_none_or(|(b, _)| q > b) {
                    best = Some((q, language));
                }
            }
        }
        best.map(|(_, language)| language)
    }
}

/// A q-value (RFC 9110 12.4.2: `0` to `1`, at most three decimals) in thousandths; none when it
/// is not one.
fn quality(text: &[u8]) -> Option<u16> {
    let (whole, decimals) = match text {
        [w, b'.', rest @ ..] => (*w, rest),
        [w] => (*w, &[][..]),
        _ => return None,
    };
    if decimals.len() > 3 || !decimals.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + decimals.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match whole {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(value: &str) -> Option<Language> {
        Language::from_accept_language(value.as_bytes())
    }

    #[test]
    fn the_highest_quality_wins_and_the_first_of_equals() {
        assert_eq!(pick("de"), Some(Language::De));
        assert_eq!(
            pick("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"),
            Some(Language::Fr)
        );
        assert_eq!(pick("en;q=0.5, ja;q=0.8"), Some(Language::Ja));
        assert_eq!(pick("en;q=0.5,ja;Q=0.500,zh"), Some(Language::Zh));
        assert_eq!(pick("pt-BR;q=0.7, es-419;q=0.7"), Some(Language::Pt));
        assert_eq!(pick("zh-Hans-CN"), Some(Language::Zh));
        assert_eq!(pick(" ES ; q=1.000 "), Some(Language::Es));
        assert_eq!(pick("nl, *;q=0.1"), Some(Language::En));
    }

    #[test]
    fn refused_unknown_and_malformed_ranges_do_not_count() {
        assert_eq!(pick(""), None);
        assert_eq!(pick("nl, sv;q=0.8"), None);
        assert_eq!(pick("de;q=0, nl"), None);
        assert_eq!(pick("de;q=0.000"), None);
        assert_eq!(pick("de;q=2, fr;q=1.5, ja;q=0.1234, zh;q=x, es;q=."), None);
        assert_eq!(pick("de;q=0.0001, ja;q=0.001"), Some(Language::Ja));
        assert_eq!(pick("english"), None);
    }

    #[test]
    fn quality_reads_thousandths() {
        assert_eq!(quality(b"1"), Some(1000));
        assert_eq!(quality(b"1.0"), Some(1000));
        assert_eq!(quality(b"0.5"), Some(500));
        assert_eq!(quality(b"0.05"), Some(50));
        assert_eq!(quality(b"0."), Some(0));
        assert_eq!(quality(b"1.001"), None);
        assert_eq!(quality(b""), None);
    }
}
