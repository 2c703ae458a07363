//! Accepting while out of descriptors: the real worker loop, in this test's own process (this
//! file holds one test, so the descriptor limit it lowers concerns nobody else), must neither stall
//! the queued connections forever (edge-triggered epoll sends no new event for them) nor spin a
//! core retrying; it backs off on a timer and serves every one of them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use responder::serve::control::Phase;

mod in_process;
use in_process::{in_process_worker, test_config, InProcess};

const CLIENTS: usize = 20;

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn set_fd_soft_limit(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/setrlimit on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

/// The soft limit that leaves exactly `room` descriptor numbers free (new descriptors take the
/// lowest free number, so holes below the highest open one count too).
fn limit_leaving(room: u64) -> u64 {
    let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    let mut limit = 0;
    while limit - (open.iter().filter(|&&fd| fd < limit).count() as u64) < room {
        limit += 1;
    }
    limit
}

#[test]
fn out_of_descriptors_the_loop_backs_off_and_serves_every_queued_client() {
    let InProcess {
        worker,
        control,
        addr,
        metrics,
        ..
    } = in_process_worker(&test_config(), 1000);

    // The clients connect (the kernel completes and queues them) before the limit is lowered;
    // the limit then leaves the worker room for two sockets at a time. They send their requests
    // one after another, so the two accepted ones hold their descriptors until their turn.
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s
        })
        .collect();
    let old_limit = set_fd_soft_limit(limit_leaving(2));
    // Check the room the limit leaves, by filling it.
    let probes: Vec<std::fs::File> = std::iter::from_fn(|| std::fs::File::open("/dev/null").ok())
        .take(CLIENTS)
        .collect();
    let room = probes.len();
    drop(probes);
    assert!(
        (1..=3).contains(&room),
        "the limit leaves room for {room} descriptors"
    );

    // The loop takes what room there is with silent clients, then finds itself out of
    // descriptors with more queued; for half a second it must neither spin nor give up.
    let cpu_before = cpu_time();
    let start = Instant::now();
    let loop_thread = std::thread::spawn(move || worker.run());
    std::thread::sleep(Duration::from_millis(500));
    let stalled_cpu = cpu_time() - cpu_before;
    let failures_while_full = accept_failures(&metrics);
    // Now the clients ask, one after another: each answer frees a descriptor, and the loop's
    // retry timer (no new edge comes for connections already queued) takes in the next ones.
    let mut answered = 0;
    for s in &mut clients {
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut got = String::new();
        if s.read_to_string(&mut got).is_ok() && got.ends_with("Hello, world!") {
            answered += 1;
        }
    }
    let elapsed = start.elapsed();
    set_fd_soft_limit(old_limit);
    control.advance(Phase::Draining);
    loop_thread.join().unwrap().unwrap();

    assert!(
        failures_while_full >= 1,
        "the limit never bit (room {room})"
    );
    // Retries every 100 ms, not a spin: a handful in half a second.
    assert!(
        failures_while_full <= 10,
        "{failures_while_full} accept retries in 500 ms"
    );
    assert!(
        stalled_cpu < Duration::from_millis(100),
        "spinning: {stalled_cpu:?} of CPU in 500 ms out of descriptors"
    );
    assert_eq!(answered, CLIENTS, "queued clients were left unserved");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

/// How many accepts failed for lack of descriptors, from the worker's metrics.
fn accept_failures(metrics: &responder::metrics::Metrics) -> u64 {
    let mut text = String::new();
    metrics.render(Phase::Serving, &Default::default(), &mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("responder_errors_total{kind=\"accept_out_of_resources\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
