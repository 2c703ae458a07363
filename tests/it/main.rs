//! The integration tests: each module starts the real binary on 127.0.0.1 port 0 (through
//! `common`) or drives the real request path, and checks what goes over the wire. The tests that
//! need a process of their own (a counting allocator, a lowered descriptor limit) are the other
//! files in `tests/`.

mod abuse;
mod architecture;
mod backend;
mod cli;
mod common;
mod conformance;
mod deploy;
mod echo;
mod error_pages;
mod gateway;
mod http;
mod identity;
mod lifecycle;
mod limits;
mod listeners;
mod shutdown;
mod stream_props;
mod switches;
mod telemetry;
#[cfg(feature = "tls")]
mod tls;
mod watch;
