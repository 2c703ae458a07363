//! `responder`: answers HTTP/1.0 and HTTP/1.1 requests with fixed, configured responses, as a
//! health-check target, default backend or maintenance page does. It is the production version of
//! the edge-triggered epoll server of "How To Use Linux epoll with Python".
//!
//! # Layout
//! Modules are listed from the bottom layer up; each imports only from layers below it (the
//! order ARCHITECTURE.md draws, which a test checks).
//! - `ascii`: byte classes (newline, header names, JSON-clean, printable, lowercase hex, token),
//!   most tested eight bytes at a time.
//! - `clock`: RFC 3339 text for log timestamps and templates.
//! - `net`: listening sockets and the descriptor limit.
//! - `timer`: the deadline heap with lazy deletion.
//! - `memory`: the allocator's thresholds fixed; its free pages returned as connections close.
//! - `template`: body templates, parsed at load, rendered per request; error-page formats.
//! - `answers::pages`: the built-in error pages: themes, languages, and what each says.
//! - `config`: command line, environment, TOML file and defaults, merged and checked.
//! - `response`: every response serialized once at start; the `Date` patched once a second.
//! - `json_lines`: the JSON log line format.
//! - `site`: what is served and how (answers, settings, limits), the shutdown phase, and the cell
//!   a reload publishes through.
//! - `telemetry`: the `tracing` subscriber and its non-blocking output, batched per event loop;
//!   the access line, written whole by the code that has its values.
//! - `http`: the request stream of one connection as a pure state machine (httparse inside).
//! - `metrics`: per-worker counters, summed and encoded for `/metrics`.
//! - `control`: the phase shared by the supervisor and the workers, and their wakers.
//! - `respond`: writes, counts and logs every answer; the one place a rejection is written.
//! - `conn`: one connection's socket I/O, buffers and deadline.
//! - `worker`: one event loop (mio `Poll`, listener, `Slab` of connections).
//! - `server`: binds, starts the workers, turns signals into a drain or a reload.
//! - `healthcheck`: the `responder healthcheck` client for container health checks.
//!
//! # What is public, and for whom
//! The binary uses `config`, `server`, `healthcheck`, `memory` and `telemetry`. The in-process
//! tests (a counting allocator, a lowered descriptor limit) build a `worker::Worker` from `net`,
//! `site`, `control`, `metrics` and `response`; the allocation count adds a `template` route and
//! logs through `json::JsonLines` into a buffer of its own (its `append`). The property
//! tests and the fuzz target drive `http::RequestStream` through `exchange::Pass`. Everything else
//! is `pub(crate)`.

#![deny(unsafe_code)]

pub mod answers;
pub(crate) mod ascii;
pub(crate) mod clock;
pub mod config;
pub(crate) mod escape;
pub mod healthcheck;
pub mod http;
pub mod log;
pub mod metrics;
pub mod net;
pub mod serve;
pub mod site;
pub mod sys;
