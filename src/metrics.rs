//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Each worker owns a [`WorkerStats`] that only its own thread writes, with a plain load and store
//! (no locked instruction, no cache line written by two threads); a scrape reads every worker's
//! and sums them ([`Metrics::render`]), encoding through `prometheus-client`. The supervisor
//! alone writes [`Reloads`]: the configuration's reloads and the hash of the one in force.
//! This module counts and encodes; what is counted is decided where it happens (`serve::exchange`,
//! `serve::connection`, `serve::worker`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::answers::Probe;
use crate::log::DroppedLines;
use crate::serve::control::{lock, Phase, Switches};
#[cfg(feature = "tls")]
use crate::tls::Failure;

/// The handshakes that ended well, as counted: (`version`, `resumed`).
#[cfg(feature = "tls")]
const TLS_HANDSHAKES: [(&str, bool); 4] = [
    ("TLSv1.3", false),
    ("TLSv1.3", true),
    ("TLSv1.2", false),
    ("TLSv1.2", true),
];

/// A counter that one thread writes and any thread reads.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: a load and a store are enough, and cost no bus lock.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds of the request-duration histogram, in microseconds (a last bucket takes the rest).
pub const DURATION_BUCKETS_US: [u64; 10] = [
    100, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000,
];

/// Why a connection ended, as counted and logged: the one table its metric labels, its log
/// field's values and its counters' indices all come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The peer closed its side, or finished its graceful close.
    ClientClosed,
    /// The last answer said `Connection: close` and is written.
    Done,
    /// Keep-alive: no next request within the idle timeout.
    IdleTimeout,
    ReadTimeout,
    WriteTimeout,
    Error,
    Shutdown,
}

impl Closed {
    /// In declaration order, which is each one's counter index.
    pub const ALL: [Closed; 7] = [
        Closed::ClientClosed,
        Closed::Done,
        Closed::IdleTimeout,
        Closed::ReadTimeout,
        Closed::WriteTimeout,
        Closed::Error,
        Closed::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Closed::ClientClosed => "client_closed",
            Closed::Done => "done",
            Closed::IdleTimeout => "keep_alive_timeout",
            Closed::ReadTimeout => "read_timeout",
            Closed::WriteTimeout => "write_timeout",
            Closed::Error => "error",
            Closed::Shutdown => "shutdown",
        }
    }
}

/// The kinds of errors counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    ConnectionReset,
    BrokenPipe,
    Io,
    AcceptExhausted,
    Accept,
}

impl ErrorClass {
    const ALL: [ErrorClass; 5] = [
        ErrorClass::ConnectionReset,
        ErrorClass::BrokenPipe,
        ErrorClass::Io,
        ErrorClass::AcceptExhausted,
        ErrorClass::Accept,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::ConnectionReset => "connection_reset",
            ErrorClass::BrokenPipe => "broken_pipe",
            ErrorClass::Io => "io",
            ErrorClass::AcceptExhausted => "accept_out_of_resources",
            ErrorClass::Accept => "accept",
        }
    }

    /// The class of an I/O error on a connection.
    pub fn of(kind: std::io::ErrorKind) -> ErrorClass {
        match kind {
            std::io::ErrorKind::ConnectionReset => ErrorClass::ConnectionReset,
            std::io::ErrorKind::BrokenPipe => ErrorClass::BrokenPipe,
            _ => ErrorClass::Io,
        }
    }
}

/// One worker's counters.
#[derive(Debug)]
#[repr(align(128))] // Workers' counters never share a cache line.
pub struct WorkerStats {
    /// Indexed by status code.
    responses: Box<[Counter]>,
    pub accepted: Counter,
    pub active: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    closes: [Counter; Closed::ALL.len()],
    errors: [Counter; ErrorClass::ALL.len()],
    duration_buckets: [Counter; DURATION_BUCKETS_US.len() + 1],
    duration_sum_us: Counter,
    #[cfg(feature = "tls")]
    tls_handshakes: [Counter; TLS_HANDSHAKES.len()],
    #[cfg(feature = "tls")]
    tls_failures: [Counter; Failure::ALL.len()],
}

impl Default for WorkerStats {
    fn default() -> WorkerStats {
        WorkerStats {
            responses: (0..600).map(|_| Counter::default()).collect(),
            accepted: Counter::default(),
            active: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            closes: Default::default(),
            errors: Default::default(),
            duration_buckets: Default::default(),
            duration_sum_us: Counter::default(),
            #[cfg(feature = "tls")]
            tls_handshakes: Default::default(),
            #[cfg(feature = "tls")]
            tls_failures: Default::default(),
        }
    }
}

impl WorkerStats {
    /// One answered request: its status, the bytes of its answer and how long it took.
    #[inline]
    pub fn response(&self, status: u16, bytes: usize, duration_us: u64) {
        if let Some(counter) = self.responses.get(usize::from(status)) {
            counter.add(1);
        }
        self.bytes_out.add(bytes as u64);
        let bucket = DURATION_BUCKETS_US
            .iter()
            .position(|&bound| duration_us <= bound)
            .unwrap_or(DURATION_BUCKETS_US.len());
        self.duration_buckets[bucket].add(1);
        self.duration_sum_us.add(duration_us);
    }

    pub fn close(&self, closed: Closed) {
        self.closes[closed as usize].add(1);
    }

    pub fn error(&self, class: ErrorClass) {
        self.errors[class as usize].add(1);
    }

    /// A TLS handshake that ended well.
    #[cfg(feature = "tls")]
    pub fn tls_handshake(&self, version: &str, resumed: bool) {
        if let Some(i) = TLS_HANDSHAKES
            .iter()
            .position(|&row| row == (version, resumed))
        {
            self.tls_handshakes[i].add(1);
        }
    }

    #[cfg(feature = "tls")]
    pub fn tls_failure(&self, failure: Failure) {
        if let Some(i) = Failure::ALL.iter().position(|&f| f == failure) {
            self.tls_failures[i].add(1);
        }
    }
}

/// What made the supervisor load the configuration again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// SIGHUP.
    Signal,
    /// A change in the files it follows (`--watch`).
    Watch,
}

impl Cause {
    const ALL: [Cause; 2] = [Cause::Signal, Cause::Watch];

    pub fn label(self) -> &'static str {
        match self {
            Cause::Signal => "signal",
            Cause::Watch => "watch",
        }
    }
}

/// How a reload ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reloaded {
    Applied,
    Refused,
}

impl Reloaded {
    /// In declaration order, which is each one's counter index.
    const ALL: [Reloaded; 2] = [Reloaded::Applied, Reloaded::Refused];

    fn label(self) -> &'static str {
        match self {
            Reloaded::Applied => "ok",
            Reloaded::Refused => "refused",
        }
    }
}

/// The configuration's reloads and the one in force, written by the supervisor alone.
#[derive(Debug, Default)]
pub struct Reloads {
    /// By cause, then by result.
    counts: [[Counter; Reloaded::ALL.len()]; Cause::ALL.len()],
    /// When the configuration in force was loaded, in milliseconds since the epoch.
    loaded_ms: Counter,
    /// The hash of the configuration in force. A scrape takes this lock, which only a load also
    /// takes, for a string's copy.
    sha256: Mutex<String>,
}

impl Reloads {
    /// A configuration was loaded (at start, or by a reload of `cause`), its files hashing to
    /// `sha256`.
    pub fn applied(&self, cause: Option<Cause>, sha256: String) {
        if let Some(cause) = cause {
            self.counts[cause as usize][Reloaded::Applied as usize].add(1);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        self.loaded_ms
            .set(now.map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX)));
        *lock(&self.sha256) = sha256;
    }

    /// A reload of `cause` was refused.
    pub fn refused(&self, cause: Cause) {
        self.counts[cause as usize][Reloaded::Refused as usize].add(1);
    }
}

/// Everything `/metrics` reports besides the shutdown phase: every worker's counters, the log
/// writer's dropped lines and the configuration's reloads.
#[derive(Debug)]
pub struct Metrics {
    workers: Vec<Arc<WorkerStats>>,
    dropped_log_lines: DroppedLines,
    reloads: Reloads,
    /// Each certificate served and when it expires (seconds since the epoch), as the last load
    /// of the TLS settings left them.
    certificates: std::sync::Mutex<Vec<(String, i64)>>,
}

impl Metrics {
    pub fn new(workers: Vec<Arc<WorkerStats>>, dropped_log_lines: DroppedLines) -> Metrics {
        Metrics {
            workers,
            dropped_log_lines,
            reloads: Reloads::default(),
            certificates: std::sync::Mutex::default(),
        }
    }

    pub fn reloads(&self) -> &Reloads {
        &self.reloads
    }

    /// The certificates now served: (name, expiry in seconds since the epoch).
    pub fn set_certificates(&self, certificates: Vec<(String, i64)>) {
        *lock(&self.certificates) = certificates;
    }

    pub fn dropped_log_lines(&self) -> u64 {
        self.dropped_log_lines.get()
    }

    /// Appends the Prometheus text exposition of the current values and `phase` to `out`.
    pub fn render(&self, phase: Phase, switches: &Switches, out: &mut String) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.snapshot(phase, switches)));
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(out, &registry);
    }

    fn snapshot(&self, phase: Phase, switches: &Switches) -> Snapshot {
        let sum = |f: &dyn Fn(&WorkerStats) -> u64| self.workers.iter().map(|w| f(w)).sum::<u64>();
        Snapshot {
            responses: (0..600usize)
                .filter_map(|status| {
                    let n = sum(&|w| w.responses[status].get());
                    (n > 0).then_some((status as u16, n))
                })
                .collect(),
            accepted: sum(&|w| w.accepted.get()),
            active: sum(&|w| w.active.get()),
            bytes_in: sum(&|w| w.bytes_in.get()),
            bytes_out: sum(&|w| w.bytes_out.get()),
            closes: (0..Closed::ALL.len())
                .map(|i| sum(&|w| w.closes[i].get()))
                .collect(),
            errors: (0..ErrorClass::ALL.len())
                .map(|i| sum(&|w| w.errors[i].get()))
                .collect(),
            duration_buckets: (0..=DURATION_BUCKETS_US.len())
                .map(|i| sum(&|w| w.duration_buckets[i].get()))
                .collect(),
            duration_sum_us: sum(&|w| w.duration_sum_us.get()),
            dropped_log_lines: self.dropped_log_lines(),
            phase,
            reloads: Cause::ALL
                .into_iter()
                .flat_map(|cause| {
                    Reloaded::ALL.into_iter().map(move |result| {
                        let n = self.reloads.counts[cause as usize][result as usize].get();
                        (cause.label(), result.label(), n)
                    })
                })
                .collect(),
            loaded_ms: self.reloads.loaded_ms.get(),
            config_sha256: lock(&self.reloads.sha256).clone(),
            probes_enabled: Probe::ALL.map(|p| switches.enabled(p)),
            #[cfg(feature = "tls")]
            tls_handshakes: (0..TLS_HANDSHAKES.len())
                .map(|i| sum(&|w| w.tls_handshakes[i].get()))
                .collect(),
            #[cfg(feature = "tls")]
            tls_failures: (0..Failure::ALL.len())
                .map(|i| sum(&|w| w.tls_failures[i].get()))
                .collect(),
            #[cfg(feature = "tls")]
            certificates: lock(&self.certificates).clone(),
        }
    }
}

/// The summed values of one scrape.
#[derive(Debug)]
struct Snapshot {
    responses: Vec<(u16, u64)>,
    accepted: u64,
    active: u64,
    bytes_in: u64,
    bytes_out: u64,
    closes: Vec<u64>,
    errors: Vec<u64>,
    duration_buckets: Vec<u64>,
    duration_sum_us: u64,
    dropped_log_lines: u64,
    phase: Phase,
    /// Cause, result and count.
    reloads: Vec<(&'static str, &'static str, u64)>,
    loaded_ms: u64,
    config_sha256: String,
    /// In the order of `Probe::ALL`.
    probes_enabled: [bool; 2],
    #[cfg(feature = "tls")]
    tls_handshakes: Vec<u64>,
    #[cfg(feature = "tls")]
    tls_failures: Vec<u64>,
    #[cfg(feature = "tls")]
    certificates: Vec<(String, i64)>,
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let g = ConstGauge::new(value);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter family with one label.
fn labelled(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (String, u64)>,
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        let labels = [(label, value.as_str())];
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let statuses = self.responses.iter().map(|(s, n)| (s.to_string(), *n));
        labelled(
            &mut e,
            "responder_requests",
            "Requests answered, by status.",
            "status",
            statuses,
        )?;
        counter(
            &mut e,
            "responder_connections_accepted",
            "Connections accepted.",
            self.accepted,
        )?;
        gauge(
            &mut e,
            "responder_connections_active",
            "Connections open now.",
            self.active as i64,
        )?;
        let closes = Closed::ALL
            .iter()
            .zip(&self.closes)
            .map(|(c, n)| (c.label().to_string(), *n));
        labelled(
            &mut e,
            "responder_connections_closed",
            "Connections closed, by reason.",
            "reason",
            closes,
        )?;
        let errors = ErrorClass::ALL
            .iter()
            .zip(&self.errors)
            .map(|(c, n)| (c.label().to_string(), *n));
        labelled(
            &mut e,
            "responder_errors",
            "Errors, by kind.",
            "kind",
            errors,
        )?;
        counter(
            &mut e,
            "responder_received_bytes",
            "Bytes read from clients.",
            self.bytes_in,
        )?;
        counter(
            &mut e,
            "responder_sent_bytes",
            "Bytes of answers sent.",
            self.bytes_out,
        )?;
        let mut histogram = e.encode_descriptor(
            "responder_request_duration_seconds",
            "From the read that brought a request's first byte to its answer, at event-loop resolution.",
            None,
            MetricType::Histogram,
        )?;
        let bounds = DURATION_BUCKETS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(self.duration_buckets.iter().copied()).collect();
        let count = self.duration_buckets.iter().sum();
        histogram.encode_histogram::<NoLabelSet>(
            self.duration_sum_us as f64 / 1e6,
            count,
            &buckets,
            None,
        )?;
        counter(
            &mut e,
            "responder_log_lines_dropped",
            "Log lines dropped because the log output could not keep up.",
            self.dropped_log_lines,
        )?;
        gauge(
            &mut e,
            "responder_shutdown_phase",
            "0 serving, 1 shutdown delay (not ready), 2 draining, 3 closing what is left.",
            self.phase as i64,
        )?;
        let mut reloads = e.encode_descriptor(
            "responder_config_reloads",
            "Configuration reloads, by cause (signal, watch) and result (ok, refused).",
            None,
            MetricType::Counter,
        )?;
        for (cause, result, n) in &self.reloads {
            let labels = [("cause", *cause), ("result", *result)];
            reloads
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        let loaded = ConstGauge::new(self.loaded_ms as f64 / 1e3);
        loaded.encode(e.encode_descriptor(
            "responder_config_last_reload_success_timestamp_seconds",
            "When the configuration in force was loaded, in seconds since the epoch.",
            None,
            loaded.metric_type(),
        )?)?;
        let mut info = e.encode_descriptor(
            "responder_config_info",
            "The configuration in force: a SHA-256 of its file and the files it names.",
            None,
            MetricType::Gauge,
        )?;
        let labels = [("sha256", self.config_sha256.as_str())];
        info.encode_family(&labels)?.encode_gauge(&1i64)?;
        let mut probes = e.encode_descriptor(
            "responder_probe_enabled",
            "1 while the probe's switch is on, 0 once the admin listener turned it off.",
            None,
            MetricType::Gauge,
        )?;
        for (probe, &enabled) in Probe::ALL.iter().zip(&self.probes_enabled) {
            let labels = [("probe", probe.label())];
            probes
                .encode_family(&labels)?
                .encode_gauge(&i64::from(enabled))?;
        }
        #[cfg(feature = "tls")]
        self.encode_tls(&mut e)?;
        Ok(())
    }
}

#[cfg(feature = "tls")]
impl Snapshot {
    fn encode_tls(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = e.encode_descriptor(
            "responder_tls_handshakes",
            "TLS handshakes, by result, version and resumption.",
            None,
            MetricType::Counter,
        )?;
        for (&(version, resumed), n) in TLS_HANDSHAKES.iter().zip(&self.tls_handshakes) {
            let labels = [
                ("result", "ok"),
                ("version", version),
                ("resumed", if resumed { "true" } else { "false" }),
            ];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        let failed: u64 = self.tls_failures.iter().sum();
        let labels = [("result", "failed"), ("version", ""), ("resumed", "false")];
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&failed, None)?;
        let failures = Failure::ALL
            .iter()
            .zip(&self.tls_failures)
            .map(|(f, n)| (f.label().to_string(), *n));
        labelled(
            e,
            "responder_tls_handshake_failures",
            "TLS handshakes that failed, by reason.",
            "reason",
            failures,
        )?;
        if self.certificates.is_empty() {
            return Ok(());
        }
        let mut family = e.encode_descriptor(
            "responder_tls_certificate_not_after_seconds",
            "When each certificate served expires, in seconds since the Unix epoch.",
            None,
            MetricType::Gauge,
        )?;
        for (name, not_after) in &self.certificates {
            family
                .encode_family(&[("name", name.as_str())])?
                .encode_gauge(not_after)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_close_reason_counts_at_its_place_in_the_table_under_its_own_label() {
        for (i, closed) in Closed::ALL.into_iter().enumerate() {
            assert_eq!(closed as usize, i, "{closed:?}");
        }
        let mut labels: Vec<&str> = Closed::ALL.iter().map(|c| c.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Closed::ALL.len());
    }

    #[test]
    fn each_reload_is_counted_under_its_cause_and_result() {
        for (i, cause) in Cause::ALL.into_iter().enumerate() {
            assert_eq!(cause as usize, i, "{cause:?}");
        }
        for (i, result) in Reloaded::ALL.into_iter().enumerate() {
            assert_eq!(result as usize, i, "{result:?}");
        }
        let metrics = Metrics::new(Vec::new(), DroppedLines::default());
        metrics.reloads().applied(None, "a".repeat(64));
        metrics.reloads().refused(Cause::Watch);
        metrics
            .reloads()
            .applied(Some(Cause::Signal), "b".repeat(64));
        let mut text = String::new();
        metrics.render(Phase::Serving, &Switches::default(), &mut text);
        for line in [
            "responder_config_reloads_total{cause=\"signal\",result=\"ok\"} 1",
            "responder_config_reloads_total{cause=\"signal\",result=\"refused\"} 0",
            "responder_config_reloads_total{cause=\"watch\",result=\"ok\"} 0",
            "responder_config_reloads_total{cause=\"watch\",result=\"refused\"} 1",
            &format!("responder_config_info{{sha256=\"{}\"}} 1", "b".repeat(64)),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in {text}");
        }
        assert!(text.contains("responder_config_last_reload_success_timestamp_seconds "));
    }
}
