//! A size in bytes as the file writes it: a whole number of bytes (`65536`) or a number and a
//! binary unit (`512B`, `64KiB`, `1MiB`), checked against a bound where it enters. Which keys
//! take one is the file schema's business.

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A size from 0 to `MAX` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size<const MAX: u64>(pub u64);

/// `echo_max_body`: what an echo shows of a body is held in memory while the body arrives.
pub type EchoMaxBody = Size<{ 16 * 1024 * 1024 }>;

impl<const MAX: u64> Size<MAX> {
    fn parse(text: &str) -> Result<Size<MAX>, String> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits);
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1024,
            "MiB" => 1024 * 1024,
            _ => {
                return Err(format!(
                    "`{text}` is not a size: a number of bytes, or with `B`, `KiB` or `MiB`"
                ))
            }
        };
        let bytes = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| format!("`{text}` is not a size"))?;
        Size::bounded(bytes)
    }

    fn bounded(bytes: u64) -> Result<Size<MAX>, String> {
        if bytes > MAX {
            return Err(format!("{bytes} bytes is above the limit of {MAX}"));
        }
        Ok(Size(bytes))
    }
}

impl<'de, const MAX: u64> Deserialize<'de> for Size<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        let parsed = match Written::deserialize(d).map_err(|_| {
            de::Error::custom("expected a size: a number of bytes, or text such as \"64KiB\"")
        })? {
            Written::Bytes(bytes) => Size::bounded(bytes),
            Written::Text(text) => Size::parse(&text),
        };
        parsed.map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_and_refuse_the_rest() {
        type S = Size<{ 1024 * 1024 }>;
        assert_eq!(S::parse("64KiB"), Ok(Size(65536)));
        assert_eq!(S::parse("512B"), Ok(Size(512)));
        assert_eq!(S::parse(" 1MiB "), Ok(Size(1024 * 1024)));
        assert_eq!(S::parse("0"), Ok(Size(0)));
        for bad in [
            "2MiB",
            "64kb",
            "KiB",
            "-1",
            "1.5KiB",
            "99999999999999999999",
        ] {
            assert!(S::parse(bad).is_err(), "{bad}");
        }
    }
}
