//! What a container platform relies on: the probes, the shutdown delay, `healthcheck`, SIGHUP
//! reload, and SIGTERM handling as PID 1.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{binary, read_response, read_to_close, status_of, temp_file, Server};

fn get(server: &Server, path: &str) -> String {
    server.exchange(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
}

#[test]
fn probes_answer_and_stay_out_of_the_access_log() {
    let server = Server::start(&[]);
    let health = get(&server, "/healthz");
    assert_eq!(status_of(&health), 200);
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
    let ready = get(&server, "/readyz");
    assert_eq!(status_of(&ready), 200);
    assert_eq!(status_of(&get(&server, "/ordinary")), 200);
    server.await_log(&["\"path\":\"/ordinary\""]);
    assert!(!server
        .logs()
        .iter()
        .any(|l| l.contains("/healthz") || l.contains("/readyz")));
    let post = server.exchange(b"POST /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&post), 405);
    assert!(post.contains("Allow: GET, HEAD, OPTIONS\r\n"));
}

#[test]
fn probe_paths_and_their_logging_are_configurable() {
    let server = Server::with_config(
        "health_path = \"/live\"\nready_path = \"/ready\"\nlog_health_checks = true\n",
        &[],
    );
    assert!(get(&server, "/live").ends_with("ok\n"));
    assert!(get(&server, "/ready").ends_with("ready\n"));
    // The default paths are ordinary paths now, answered by the default route.
    assert!(get(&server, "/healthz").ends_with("Hello, world!"));
    server.await_log(&["\"path\":\"/live\""]);
}

#[test]
fn the_shutdown_delay_serves_while_readiness_fails() {
    let mut server = Server::start(&["--shutdown-delay", "1", "--workers", "1"]);
    let mut kept = server.connect();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_response(&mut kept);
    let start = Instant::now();
    server.signal(libc::SIGTERM);
    server.await_log(&["readiness now fails"]);
    std::thread::sleep(Duration::from_millis(100));
    // During the delay: readiness says 503, everything else is served as usual, new connections
    // included, and kept-alive connections stay alive.
    let not_ready = get(&server, "/readyz");
    assert_eq!(status_of(&not_ready), 503);
    assert!(
        not_ready.contains("Cache-Control: no-store\r\n"),
        "{not_ready}"
    );
    assert_eq!(status_of(&get(&server, "/healthz")), 200);
    assert_eq!(status_of(&get(&server, "/")), 200);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut kept).contains("Connection: keep-alive"));
    let status = server
        .wait(Duration::from_secs(5))
        .expect("exits after delay and drain");
    assert_eq!(status.code(), Some(0));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(read_to_close(&mut kept), "");
}

#[test]
fn healthcheck_exits_0_against_a_live_server_and_1_otherwise() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let ok = binary()
        .args(["healthcheck", "--listen", &addr])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    drop(server);
    let failed = binary()
        .args(["healthcheck", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains(&addr));
}

#[test]
fn healthcheck_reads_the_address_and_path_from_the_config() {
    let server = Server::start(&["--workers", "1"]);
    let config = temp_file(
        "toml",
        format!("listen = \"{}\"\nhealth_path = \"/alive\"\n", server.addr).as_bytes(),
    );
    // The running server has the default probe path: /alive is an ordinary path there, answered
    // 200 by the default route, so the probe passes; a 404 route would fail it.
    let ok = binary()
        .args(["healthcheck", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let missing = Server::with_config("[[route]]\npath = \"/only\"\n", &[]);
    let config = temp_file(
        "toml",
        format!("listen = \"{}\"\n", missing.addr).as_bytes(),
    );
    // Here /healthz is the built-in probe: healthy.
    let ok = binary()
        .args(["healthcheck", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let config = temp_file(
        "toml",
        format!("listen = \"{}\"\nhealth_path = \"/gone\"\n", missing.addr).as_bytes(),
    );
    let failed = binary()
        .args(["healthcheck", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("404"),
        "{failed:?}"
    );
}

#[test]
fn sighup_reloads_a_valid_config_without_dropping_a_connection() {
    let path = temp_file(
        "toml",
        b"[[route]]\npath = \"/\"\nmatch = \"prefix\"\nbody = \"old\"\n",
    );
    let server = Server::start(&["--config", path.to_str().unwrap(), "--workers", "2"]);
    assert!(get(&server, "/").ends_with("old"));

    // Clients keep asking through the reloads; none may be refused or reset.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr) = (Arc::clone(&stop), server.addr);
        std::thread::spawn(move || {
            let mut answers = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut s = TcpStream::connect(addr).expect("no connection refused during reload");
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let got = read_to_close(&mut s);
                assert!(got.ends_with("old") || got.ends_with("new"), "{got:?}");
                answers += 1;
            }
            answers
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    // The backlog belongs to the listening socket: a reload says it needs a restart.
    std::fs::write(
        &path,
        "backlog = 16\n[[route]]\npath = \"/\"\nmatch = \"prefix\"\nbody = \"new\"\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.await_log(&["configuration reloaded", "\"cause\":\"signal\""]);
    server.await_log(&["changes only on restart", "\"key\":\"backlog\""]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(get(&server, "/x").ends_with("new"));

    // An invalid file is refused, and the previous configuration stays.
    std::fs::write(&path, "[[route]]\npath = \"/\"\nstatus = 42\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.await_log(&["configuration refused", "\"cause\":\"signal\""]);
    assert!(
        line.contains("status 42") && line.contains("line 3"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(get(&server, "/y").ends_with("new"));

    stop.store(true, Ordering::Relaxed);
    let answers = load.join().expect("no request failed during the reloads");
    assert!(answers > 10, "{answers}");
}

#[test]
fn a_reload_while_a_body_arrives_answers_it_by_the_configuration_in_force() {
    let path = temp_file(
        "toml",
        b"[[route]]\npath = \"/a\"\nbody = \"a\"\n\
          [[route]]\npath = \"/b\"\nmethods = [\"POST\"]\nbody = \"old b\"\n\
          [[route]]\npath = \"/c\"\nmethods = [\"POST\"]\nbody = \"c\"\n",
    );
    let server = Server::start(&["--config", path.to_str().unwrap(), "--workers", "1"]);
    // Two requests whose heads came before the reload and whose bodies come after it: one for
    // a route the reload removes (the last of three, where now there is one), one for a route
    // that moved.
    let mut gone = server.connect();
    gone.write_all(b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbo")
        .unwrap();
    let mut moved = server.connect();
    moved
        .write_all(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbo")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(
        &path,
        "[[route]]\npath = \"/b\"\nmethods = [\"GET\", \"POST\"]\nbody = \"new b\"\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.await_log(&["configuration reloaded"]);
    // The one worker serves by the new configuration once it answers by it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&server, "/b").ends_with("new b") {
        assert!(
            Instant::now() < deadline,
            "the reload never reached the worker"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    gone.write_all(b"dy").unwrap();
    let answer = read_response(&mut gone);
    assert_eq!(status_of(&answer), 404, "{answer}");
    moved.write_all(b"dy").unwrap();
    let answer = read_response(&mut moved);
    assert!(answer.ends_with("\r\n\r\nnew b"), "{answer}");
    assert!(get(&server, "/b").ends_with("new b"));
}

/// Runs the binary as PID 1 of a new PID namespace, where the kernel drops every signal that has
/// no handler: SIGTERM must still drain and exit 0.
#[test]
fn as_pid_1_sigterm_still_drains_and_exits() {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: `unshare --pid --fork` is not permitted here (it needs root)");
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child",
        env!("CARGO_BIN_EXE_responder"),
    ]);
    let mut server = Server::start_command(cmd, &["--workers", "1"]);
    let unshare_pid = server.pid();
    // The server is unshare's child; seen from here it has an ordinary PID.
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
            .unwrap();
    let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.ends_with("\t1"),
        "not PID 1 in its namespace: {nspid}"
    );

    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) on our own grandchild.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    server.await_log(&["listener closed"]);
    s.write_all(b"\r\n").unwrap();
    assert_eq!(status_of(&read_to_close(&mut s)), 200);
    let exit = server
        .wait(Duration::from_secs(5))
        .expect("PID 1 exits on SIGTERM");
    assert_eq!(exit.code(), Some(0));
}
