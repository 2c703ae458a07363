//! The real worker loop in the test's own process, for tests that must control the process
//! (its descriptor limit, its allocator): a listener on 127.0.0.1:0 and one `Worker` serving the
//! default answer, stopped through its `Control`.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use responder::config::{Endpoints, Route};
use responder::conn::Settings;
use responder::control::Control;
use responder::http::Limits;
use responder::metrics::{Metrics, WorkerStats};
use responder::net::{bind_listeners, ListenOptions};
use responder::response::Responses;
use responder::worker::{Site, Worker, WorkerOptions};

pub struct InProcess {
    pub worker: Worker,
    pub control: Arc<Control>,
    pub addr: SocketAddr,
    /// The bytes of the default keep-alive answer.
    pub answer_len: usize,
    pub metrics: Arc<Metrics>,
}

pub fn in_process_worker(max_connections: usize) -> InProcess {
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
            idle_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            tcp_cork: false,
            access_log: false,
            log_builtins: false,
        },
    };
    let mut sample = Vec::new();
    let answer_len = site
        .responses
        .write(
            responder::response::AnswerId::Route(0),
            true,
            false,
            &mut sample,
        )
        .bytes;
    let control = Arc::new(Control::new(Arc::new(site)));
    let stats = Arc::new(WorkerStats::default());
    let metrics = Arc::new(Metrics::new(vec![Arc::clone(&stats)], Default::default()));
    let options = WorkerOptions {
        index: 0,
        count: 1,
        max_connections,
        stats,
        metrics: Arc::clone(&metrics),
    };
    let worker = Worker::new(listener, options, Arc::clone(&control)).unwrap();
    InProcess {
        worker,
        control,
        addr,
        answer_len,
        metrics,
    }
}
