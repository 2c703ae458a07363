//! The probes' switches on the admin listener (`--admin-switches`): `POST /readyz/disable` and
//! `/enable` (and the same for `/healthz`) flip a probe for every worker while the traffic is
//! served without a failure; never on a traffic listener; a drain's unready state wins.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{admin_addr, body_of, read_response, read_to_close, status_of, Server, LIMIT};

/// `method path` on a new connection to `addr`, read to its close.
fn ask(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    read_to_close(&mut s)
}

/// The status each of 8 new connections gets for `GET path` (spread over the workers).
fn statuses(addr: SocketAddr, path: &str) -> Vec<u16> {
    (0..8).map(|_| status_of(&ask(addr, "GET", path))).collect()
}

#[test]
fn switches_flip_the_probes_for_every_worker_while_the_traffic_never_fails() {
    let server = Server::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-switches",
        "--workers",
        "2",
    ]);
    let admin = admin_addr(&server);
    let stop = Arc::new(AtomicBool::new(false));
    // Four keep-alive clients, spread over the workers, asking all along.
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let mut s = server.connect();
            std::thread::spawn(move || {
                let mut answered = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                    let answer = read_response(&mut s);
                    assert_eq!(status_of(&answer), 200, "{answer}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    for (probe, path, label) in [
        ("readyz", "/readyz", "ready"),
        ("healthz", "/healthz", "health"),
    ] {
        let off = ask(admin, "POST", &format!("/{probe}/disable"));
        assert_eq!(status_of(&off), 200, "{off}");
        assert_eq!(body_of(&off), format!("{label} disabled\n"));
        assert_eq!(statuses(admin, path), [503; 8], "{path} switched off");
        let line = server.await_log(&["\"switch\"", &format!("\"probe\":\"{label}\"")]);
        assert!(line.contains("\"state\":\"disabled\""), "{line}");
        let metrics = ask(admin, "GET", "/metrics");
        assert!(
            metrics.contains(&format!("responder_probe_enabled{{probe=\"{label}\"}} 0\n")),
            "{metrics}"
        );
        let on = ask(admin, "POST", &format!("/{probe}/enable"));
        assert_eq!(body_of(&on), format!("{label} enabled\n"));
        assert_eq!(statuses(admin, path), [200; 8], "{path} switched on");
        let metrics = ask(admin, "GET", "/metrics");
        assert!(
            metrics.contains(&format!("responder_probe_enabled{{probe=\"{label}\"}} 1\n")),
            "{metrics}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for client in load {
        let answered = client.join().expect("the traffic never failed");
        assert!(answered > 0);
    }
    assert_eq!(status_of(&ask(admin, "GET", "/readyz/disable")), 405);
}

#[test]
fn switches_are_never_on_a_traffic_listener_and_off_by_default() {
    let server = Server::with_config(
        "admin_switches = true\n",
        &["--admin-listen", "127.0.0.1:0"],
    );
    let admin = admin_addr(&server);
    assert_eq!(status_of(&ask(admin, "POST", "/healthz/disable")), 200);
    assert_eq!(status_of(&ask(admin, "GET", "/healthz")), 503);
    assert_eq!(status_of(&ask(admin, "POST", "/healthz/enable")), 200);
    for path in ["/readyz/disable", "/healthz/disable"] {
        let status = status_of(&ask(server.addr, "POST", path));
        assert!(status == 404 || status == 405, "{path}: {status}");
    }
    assert_eq!(status_of(&ask(admin, "GET", "/readyz")), 200);
    assert_eq!(status_of(&ask(admin, "GET", "/healthz")), 200);

    let without = Server::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = admin_addr(&without);
    assert_eq!(status_of(&ask(admin, "POST", "/readyz/disable")), 404);
    assert_eq!(status_of(&ask(admin, "GET", "/readyz")), 200);

    // Without an admin listener there is nowhere to serve them: a configuration error.
    let out = crate::common::binary()
        .args(["--admin-switches", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_switches needs admin_listen"));
}

#[test]
fn a_drain_stays_unready_whatever_the_switch_says() {
    let mut server = Server::start_with_env(
        &["--admin-listen", "127.0.0.1:0", "--shutdown-delay", "1"],
        &[("RESPONDER_ADMIN_SWITCHES", "true")],
    );
    let admin = admin_addr(&server);
    assert_eq!(status_of(&ask(admin, "POST", "/readyz/enable")), 200);
    server.signal(libc::SIGTERM);
    server.await_log(&["readiness now fails"]);
    let on = ask(admin, "POST", "/readyz/enable");
    assert_eq!(body_of(&on), "ready enabled\n");
    assert_eq!(status_of(&ask(admin, "GET", "/readyz")), 503);
    assert_eq!(
        status_of(&ask(server.addr, "GET", "/")),
        200,
        "still serving"
    );
    let status = server.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
}
