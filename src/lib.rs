//! `responder`: answers HTTP/1.0 and HTTP/1.1 requests with fixed, configured responses, as a
//! health-check target, default backend or maintenance page does. It is the production version of
//! the edge-triggered epoll server of "How To Use Linux epoll with Python".
//!
//! The module map is ARCHITECTURE.md's codemap; its layer table says which module may import
//! which, and a test holds the code to it.
//!
//! # What is public, and for whom
//! - The binary: `config`, `serve::supervisor`, `serve::memory`, `healthcheck`, `log`, and `tls`
//!   for `--check`.
//! - The in-process tests (a counting allocator, a lowered descriptor limit): a
//!   `serve::worker::Worker` built from `net`, `site`, `serve::control`, `metrics`, `answers::Role`
//!   and `config`; the allocation count adds an `answers::template` route and logs through
//!   `log::json::JsonLines` into a buffer of its own; the out-of-descriptors test, `sys`.
//! - The property tests and the fuzz target: `http::RequestStream`, driven through
//!   `serve::exchange::Pass` (which carries a `serve::timer::Moment`).
//!
//! Everything else is `pub(crate)` or private to its folder.

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
#[cfg(feature = "tls")]
pub mod tls;
