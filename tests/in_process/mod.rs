//! The real worker loop in the test's own process, for tests that must control the process
//! (its descriptor limit, its allocator): a listener on 127.0.0.1:0 and one `Worker` serving a
//! configuration ([`test_config`]: the default answer), stopped through its `Control`.

use std::sync::Arc;

use responder::answers::Role;
use responder::config::Config;
use responder::metrics::{Metrics, WorkerStats};
use responder::net::{bind_listeners, ListenOptions};
use responder::serve::control::Control;
use responder::serve::control::Published;
use responder::serve::worker::{Listener, Worker, WorkerOptions};
use responder::site::Site;

pub struct InProcess {
    pub worker: Worker,
    pub control: Arc<Control>,
    pub addr: std::net::SocketAddr,
    pub metrics: Arc<Metrics>,
}

/// The default answer, without the access log.
pub fn test_config() -> Config {
    Config {
        max_body_bytes: 1024,
        access_log: false,
        ..Config::default()
    }
}

pub fn in_process_worker(config: &Config, max_connections: usize) -> InProcess {
    let options = ListenOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        backlog: 1024,
        reuse_address: true,
        tcp_nodelay: true,
    };
    let listeners = bind_listeners(&options, 1).unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let site = Site::new(config);
    let control = Arc::new(Control::default());
    let published = Arc::new(Published::new(site));
    let stats = Arc::new(WorkerStats::default());
    let metrics = Arc::new(Metrics::new(vec![Arc::clone(&stats)], Default::default()));
    let options = WorkerOptions {
        index: 0,
        count: 1,
        max_connections,
        stats,
        metrics: Arc::clone(&metrics),
    };
    let listeners = listeners
        .into_iter()
        .map(|socket| Listener {
            tls: false,
            socket,
            role: Role::Traffic,
        })
        .collect();
    let worker = Worker::new(listeners, options, Arc::clone(&control), published).unwrap();
    InProcess {
        worker,
        control,
        addr,
        metrics,
    }
}
