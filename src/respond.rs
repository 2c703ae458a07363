//! Writing, counting and logging answers: the [`Exchanges`] the request stream hands its decisions
//! to, and [`reject`], the one place any refused request or connection is answered (400 to 505 from
//! the request stream, 408 when a request is cut by its timeout, 503 at the connection limit),
//! counted, and logged as `request rejected`.
//!
//! Prebuilt answers are copied from `response`; the metrics are rendered here at each scrape,
//! since they are the one answer whose body changes. Which answer a request gets is `http`'s
//! decision; sockets are `conn`'s and `worker`'s.

use std::time::Instant;

use crate::http::{version_name, Context, Exchange, Exchanges, Refusal, Request};
use crate::metrics::{Metrics, WorkerStats};
use crate::response::{AnswerId, Responses, Sent};
use crate::site::{Phase, Site};

/// What answering needs from the event loop for one pass over its ready connections.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    pub site: &'a Site,
    pub phase: Phase,
    /// The event loop's clock, taken once per wake-up.
    pub now: Instant,
    /// This worker's counters.
    pub stats: &'a WorkerStats,
    /// Every worker's counters, for a `/metrics` request.
    pub metrics: &'a Metrics,
}

impl<'a> Pass<'a> {
    /// The request stream's context for this pass.
    pub fn context(&self) -> Context<'a> {
        Context::new(self.site, self.phase, self.now)
    }

    /// The writer of one connection's answers in this pass.
    pub fn responder(&self, conn_id: u64) -> Responder<'a> {
        Responder {
            pass: *self,
            conn_id,
        }
    }
}

/// Writes, counts and logs the answers of one connection.
pub struct Responder<'a> {
    pass: Pass<'a>,
    conn_id: u64,
}

impl Exchanges for Responder<'_> {
    fn request(&mut self, request: &Request<'_>) {
        tracing::debug!(
            conn = self.conn_id,
            method = request.method,
            path = request.target,
            version = version_name(request.version),
            header_bytes = request.header_bytes,
            "request"
        );
    }

    fn answer(&mut self, exchange: &Exchange<&str>, out: &mut Vec<u8>) {
        let Pass {
            site,
            phase,
            now,
            stats,
            metrics,
        } = self.pass;
        let responses = &site.responses;
        let Sent { status, bytes } = if exchange.answer == AnswerId::Metrics {
            let mut body = String::new();
            metrics.render(phase, &mut body);
            responses.write_metrics(
                &body,
                exchange.version,
                exchange.keep_alive,
                exchange.head_only,
                out,
            )
        } else {
            responses.write(
                exchange.answer,
                exchange.version,
                exchange.keep_alive,
                exchange.head_only,
                out,
            )
        };
        let duration_us = now.saturating_duration_since(exchange.started).as_micros() as u64;
        stats.response(status, bytes, duration_us);
        let settings = &site.settings;
        if settings.access_log && (settings.log_builtins || !exchange.answer.is_builtin()) {
            tracing::info!(
                target: "responder::access",
                conn = self.conn_id,
                method = exchange.method,
                path = exchange.target,
                version = version_name(exchange.version),
                status,
                bytes,
                duration_us,
                keep_alive = exchange.keep_alive,
                "response"
            );
        }
    }

    fn reject(&mut self, refusal: Refusal, out: &mut Vec<u8>) {
        reject(
            &self.pass.site.responses,
            self.pass.stats,
            self.conn_id,
            refusal,
            out,
        );
    }
}

/// Appends the fixed answer to a refused request (or connection) to `out`, counts it and logs it.
/// Every such answer says `Connection: close`.
pub fn reject(
    responses: &Responses,
    stats: &WorkerStats,
    conn_id: u64,
    refusal: Refusal,
    out: &mut Vec<u8>,
) -> Sent {
    let Refusal { rejection, minor } = refusal;
    let sent = responses.write(AnswerId::Rejected(rejection), minor, false, false, out);
    stats.response(sent.status, sent.bytes, 0);
    tracing::info!(
        target: "responder::access",
        conn = conn_id,
        status = sent.status,
        bytes = sent.bytes,
        rejection = ?rejection,
        "request rejected"
    );
    sent
}
