//! A prebuilt answer: its head's start and its body serialized once, at load, by the one head
//! writer; per request it is copied, its framing appended. Only its `Date` changes, patched in
//! place once a second.

use super::head::{self, Framing, DATE_LEN};
use crate::http::status::reason_phrase;

/// One response, serialized but for its framing.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    /// Where the date sits in `head`.
    date_at: usize,
    /// Through the last header line before `Connection`.
    head: Vec<u8>,
    body: Vec<u8>,
}

/// What a request's answer costs on the wire, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub status: u16,
    pub bytes: usize,
}

impl Answer {
    pub(super) fn new(
        status: u16,
        reason: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Answer {
        let body = if head::without_content(status) {
            Vec::new()
        } else {
            body
        };
        let mut head = Vec::new();
        let placeholder = [b' '; DATE_LEN];
        let date_at = head::start(
            &mut head,
            status,
            reason,
            &placeholder,
            &head::lines(headers),
            body.len(),
        );
        Answer {
            status,
            date_at,
            head,
            body,
        }
    }

    /// A `text/plain` answer saying its status, with `headers` after the `Content-Type`.
    pub(super) fn plain(status: u16, headers: &[(String, String)]) -> Answer {
        let reason = reason_phrase(status);
        let mut all = vec![("Content-Type".to_string(), "text/plain".to_string())];
        all.extend_from_slice(headers);
        Answer::new(
            status,
            reason,
            &all,
            format!("{status} {reason}\n").into_bytes(),
        )
    }

    pub(super) fn stamp(&mut self, date: &[u8; DATE_LEN]) {
        self.head[self.date_at..self.date_at + DATE_LEN].copy_from_slice(date);
    }

    /// Appends the answer to `out`, framed as `framing` says.
    pub(super) fn write(
        &self,
        framing: &Framing<'_>,
        request_id_prefix: &[u8],
        out: &mut Vec<u8>,
    ) -> Sent {
        let begin = out.len();
        out.extend_from_slice(&self.head);
        head::end(out, begin, framing, request_id_prefix);
        if !framing.head_only {
            out.extend_from_slice(&self.body);
        }
        Sent {
            status: self.status,
            bytes: out.len() - begin,
        }
    }
}
