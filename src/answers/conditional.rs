//! Conditional requests (RFC 9110 13): a route's validators (a strong entity tag and the time it
//! was last modified), the 304 it answers when a request's validators match, and the match
//! itself. The entity tag is the start of a SHA-256 of the answer's status, reason, headers and
//! body, a digest whose output no toolchain or release changes.

use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::prebuilt::Answer;
use crate::config::Route;
use crate::http::Selectors;

/// What a route's 2xx answer is validated by, and its 304.
#[derive(Debug, Clone)]
pub(super) struct Validators {
    /// A strong entity tag, quotes included.
    pub(super) etag: String,
    /// Seconds since the epoch.
    modified: u64,
    pub(super) not_modified: Answer,
}

/// The entity tag of an answer: 16 hex digits of the SHA-256 of its parts, each ended by a NUL
/// (which none of them holds but the body, which comes last).
fn entity_tag(route: &Route) -> String {
    let mut digest = Sha256::new();
    digest.update(route.status.to_string());
    digest.update([0]);
    digest.update(route.reason.as_deref().unwrap_or_default());
    digest.update([0]);
    for (name, value) in &route.headers {
        digest.update(name);
        digest.update(b": ");
        digest.update(value);
        digest.update([0]);
    }
    digest.update(&route.body);
    let hash = digest.finalize();
    let mut tag = String::with_capacity(18);
    tag.push('"');
    for byte in &hash[..8] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

impl Validators {
    /// A route's validators, if its answer has them: a 2xx that is not templated, weighted
    /// or an echo, nor a 205, which tells the client to reset its view and has no representation
    /// to validate (RFC 9110 15.3.6). The entity tag changes with the status, reason, headers or
    /// body.
    pub(super) fn of(route: &Route) -> Option<Validators> {
        let validated = route.status / 100 == 2 && route.status != 205;
        if route.template.is_some() || route.echo || !route.statuses.is_empty() || !validated {
            return None;
        }
        let modified = route
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut validators = Validators {
            etag: entity_tag(route),
            modified,
            not_modified: Answer::new(304, "Not Modified", &[], Vec::new()),
        };
        // RFC 9110 15.4.5: a 304 carries the validators and the caching headers a 200 would.
        let mut headers: Vec<(String, String)> = route
            .headers
            .iter()
            .filter(|(n, _)| {
                ["cache-control", "content-location", "expires", "vary"]
                    .iter()
                    .any(|c| n.eq_ignore_ascii_case(c))
            })
            .cloned()
            .collect();
        headers.extend(validators.headers());
        validators.not_modified = Answer::new(304, "Not Modified", &headers, Vec::new());
        Some(validators)
    }

    pub(super) fn headers(&self) -> [(String, String); 2] {
        let modified = UNIX_EPOCH + Duration::from_secs(self.modified);
        [
            ("ETag".to_string(), self.etag.clone()),
            (
                "Last-Modified".to_string(),
                httpdate::fmt_http_date(modified),
            ),
        ]
    }

    /// RFC 9110 13.1.2 and 13.1.3: `If-None-Match` listing this tag (weakly compared) or `*`;
    /// without it, `If-Modified-Since` not older than the last modification.
    pub(super) fn fresh(&self, selectors: &Selectors<'_>) -> bool {
        if selectors.if_none_match.is_empty() && selectors.if_modified_since.is_empty() {
            return false;
        }
        let if_none_match = selectors.if_none_match.trim_ascii();
        if !if_none_match.is_empty() {
            return if_none_match == b"*"
                || if_none_match.split(|&b| b == b',').any(|tag| {
                    let tag = tag.trim_ascii();
                    let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
                    tag == self.etag.as_bytes()
                });
        }
        std::str::from_utf8(selectors.if_modified_since)
            .ok()
            .and_then(|text| httpdate::parse_http_date(text.trim()).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| self.modified <= since.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_tag_is_the_same_in_every_build() {
        // Python's hashlib.sha256(b"200\0\0Content-Type: text/plain\0Hello, world!"), its
        // first 16 hex digits: a digest computed elsewhere, so a change of algorithm fails here.
        assert_eq!(entity_tag(&Route::default_hello()), "\"6fc4d085ed5fdd51\"");
    }
}
