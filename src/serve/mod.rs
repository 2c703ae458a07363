//! Serving: the supervisor that binds and follows signals, the workers' event loops, one
//! connection's I/O, the exchange that writes, counts and logs each answer, and the deadlines and
//! memory tidying a worker keeps. What is served comes from `site`; how bytes are parsed, from
//! `http`.

pub(crate) mod connection;
pub mod control;
pub mod exchange;
pub mod memory;
pub mod supervisor;
pub mod timer;
pub mod worker;
