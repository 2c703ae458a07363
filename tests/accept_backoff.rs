//! Accepting while out of descriptors: the real worker loop, in this test's own process (this
//! file holds one test, so the descriptor limit it lowers concerns nobody else), must neither stall
//! the queued connections forever (edge-triggered epoll sends no new event for them) nor spin a
//! core retrying; it backs off on a timer and serves every one of them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use responder::config::{Endpoints, Route};
use responder::conn::Settings;
use responder::control::{Control, Phase};
use responder::http::Limits;
use responder::metrics::{Metrics, WorkerStats};
use responder::net::{bind_listeners, ListenOptions};
use responder::response::Responses;
use responder::worker::{Site, Worker, WorkerOptions};

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
    let options = ListenOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        backlog: 1024,
        reuse_address: true,
        tcp_nodelay: true,
    };
    let listener = bind_listeners(&options, 1).unwrap().remove(0);
    let addr = listener.local_addr().unwrap();
    let site = Site {
        responses: Responses::new(&[Route::default_hello()], &Endpoints::default()),
        settings: Settings {
            limits: Limits {
                max_header_bytes: 8192,
                max_body_bytes: 1024,
            },
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            tcp_cork: false,
            access_log: false,
            log_builtins: false,
        },
    };
    let control = Arc::new(Control::new(Arc::new(site)));
    let stats = Arc::new(WorkerStats::default());
    let metrics = Arc::new(Metrics::new(vec![Arc::clone(&stats)], Default::default()));
    let options = WorkerOptions {
        index: 0,
        count: 1,
        max_connections: 1000,
        stats,
        metrics,
    };
    let worker = Worker::new(listener, options, Arc::clone(&control)).unwrap();

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

    let cpu_before = cpu_time();
    let start = Instant::now();
    let loop_thread = std::thread::spawn(move || worker.run());
    let mut answered = 0;
    for s in &mut clients {
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut got = String::new();
        if s.read_to_string(&mut got).is_ok() && got.ends_with("Hello, world!") {
            answered += 1;
        }
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time() - cpu_before;
    set_fd_soft_limit(old_limit);
    control.advance(Phase::Draining);
    loop_thread.join().unwrap().unwrap();

    assert_eq!(answered, CLIENTS, "queued clients were left unserved");
    // Pauses of 100 ms between rounds of two: slower than unconstrained, but never stuck.
    assert!(
        elapsed > Duration::from_millis(200),
        "the limit never bit: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert!(cpu < elapsed / 2, "spinning: {cpu:?} of CPU in {elapsed:?}");
}
