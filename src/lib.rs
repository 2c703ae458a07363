//! `responder`: answers HTTP/1.0 and HTTP/1.1 requests with fixed, configured responses, as a
//! health-check target, default backend or maintenance page does. It is the production version of
//! the edge-triggered epoll server of "How To Use Linux epoll with Python".
//!
//! # Layout
//! - `config`: command line, environment, TOML file and defaults, merged and validated.
//! - `response`: every response serialized once at start; the `Date` patched once a second.
//! - `http`: the request stream of one connection as a pure state machine (httparse inside).
//! - `conn`: one connection's socket I/O, buffers and deadline.
//! - `timer`: the deadline heap with lazy deletion.
//! - `worker`: one event loop (mio `Poll`, listener, `Slab` of connections).
//! - `memory`: the allocator's thresholds fixed; its free pages returned as connections close.
//! - `control`: the phase shared by the supervisor and the workers (serving, draining, abort).
//! - `server`: binds, starts the workers, turns signals into a drain.
//! - `net`: listening sockets and the descriptor limit.
//! - `telemetry`: the `tracing` subscriber and its non-blocking output, batched per event loop.
//! - `json_lines`: the JSON log line format.
//! - `metrics`: per-worker counters, summed and encoded for `/metrics`.
//! - `healthcheck`: the `responder healthcheck` client for container health checks.

pub mod config;
pub mod conn;
pub mod control;
pub mod healthcheck;
pub mod http;
pub mod json_lines;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod response;
pub mod server;
pub mod telemetry;
pub mod timer;
pub mod worker;
