//! The binary's interface: flags, `--check`, configuration files and routes, exit statuses.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::{binary, check, read_response, status_of, temp_file, Server};

#[test]
fn the_example_config_is_valid_and_serves_the_default() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/responder.toml");
    let out = binary()
        .args(["--check", "--config", example])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let server = Server::start(&["--config", example]);
    let got = server.exchange(b"GET /anything HTTP/1.0\r\n\r\n");
    assert!(
        got.ends_with("Content-Length: 13\r\nConnection: close\r\n\r\nHello, world!"),
        "{got}"
    );
}

#[test]
fn check_names_the_file_line_and_field_at_fault() {
    let (ok, text) = check("listen = \"0.0.0.0:8080\"\nread_timeout = -1\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 2") && text.contains("out of range"),
        "{text}"
    );

    let (ok, text) = check("listen = \"0.0.0.0:8080\"\n\nlisten_adress = \"x\"\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 3") && text.contains("listen_adress"),
        "{text}"
    );

    let (ok, text) = check("[[route]]\npath = \"/\"\nstatus = 99\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 3") && text.contains("status 99"),
        "{text}"
    );

    // Every CONNECT gets 501 (responder opens no tunnels): a route cannot answer one.
    let (ok, text) = check("[[route]]\npath = \"/\"\nmethods = [\"GET\", \"CONNECT\"]\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 3") && text.contains("CONNECT"),
        "{text}"
    );

    let (ok, text) = check("[[route]]\npath = \"/\"\nheaders = { \"Content-Length\" = \"5\" }\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 3") && text.contains("Content-Length"),
        "{text}"
    );

    let (ok, text) = check("\n[[route]]\npath = \"/\"\nbody_file = \"/nonexistent/body.html\"\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 2") && text.contains("/nonexistent/body.html"),
        "{text}"
    );

    let (ok, text) = check("[[route]]\npath = \"/healthz\"\n");
    assert!(!ok);
    assert!(
        text.contains("FILE at line 1") && text.contains("health_path"),
        "{text}"
    );

    let (ok, text) = check("max_header_bytes = 10\n");
    assert!(!ok && text.contains("max_header_bytes"), "{text}");
}

#[test]
fn routes_from_a_config_file() {
    let body = temp_file("html", b"<h1>down for maintenance</h1>");
    let config = format!(
        r#"
[[route]]
path = "/status"
body = "ok"

[[route]]
path = "/static/"
match = "prefix"
status = 503
reason = "Maintenance"
headers = {{ "Content-Type" = "text/html", "Retry-After" = "120" }}
body_file = "{}"

[[route]]
path = "/submit"
methods = ["POST"]
status = 201
"#,
        body.display()
    );
    let server = Server::with_config(&config, &[]);
    let mut s = server.connect();
    let mut ask = |request: &str| {
        use std::io::Write;
        s.write_all(request.as_bytes()).unwrap();
        read_response(&mut s)
    };
    let health = ask("GET /status?probe=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("\r\n\r\nok"),
        "{health}"
    );
    let page = ask("GET /static/a/b.css HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 503 Maintenance\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html\r\n") && page.contains("Retry-After: 120\r\n"));
    assert!(page.ends_with("<h1>down for maintenance</h1>"));
    let created = ask("POST /submit HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert!(created.starts_with("HTTP/1.1 201 Created\r\n"), "{created}");
    assert!(created.contains("Content-Length: 0\r\n"));
    let wrong = ask("GET /submit HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status_of(&wrong), 405);
    assert!(wrong.contains("Allow: POST, OPTIONS\r\n"));
    let missing = ask("GET /status/deeper HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status_of(&missing), 404);
}

#[test]
fn flags_beat_environment_which_beats_the_file() {
    let file = temp_file(
        "toml",
        b"read_timeout = 30\nidle_timeout = 30\n[[route]]\npath = \"/\"\nbody = \"file\"\n",
    );
    // The environment's idle timeout (0.3 s) beats the file's 30 s...
    let server = Server::start_with_env(
        &["--config", file.to_str().unwrap()],
        &[
            ("RESPONDER_IDLE_TIMEOUT", "0.3"),
            ("RESPONDER_READ_TIMEOUT", "30"),
        ],
    );
    let mut s = server.connect();
    use std::io::Write;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(read_response(&mut s).ends_with("file"));
    let start = Instant::now();
    assert_eq!(crate::common::read_to_close(&mut s), "");
    assert!(start.elapsed() < Duration::from_secs(3));
    // ...and the flag (0.3 s) beats the environment's 30 s read timeout.
    let server = Server::start_with_env(
        &["--config", file.to_str().unwrap(), "--read-timeout", "0.3"],
        &[("RESPONDER_READ_TIMEOUT", "30")],
    );
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    assert_eq!(status_of(&crate::common::read_to_close(&mut s)), 408);
}

#[test]
fn an_unknown_flag_prints_usage_and_fails() {
    let out = binary().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--no-such-flag") && err.contains("Usage"),
        "{err}"
    );
}

#[test]
fn version_and_help_answer() {
    let out = binary().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = binary().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--read-timeout",
        "--idle-timeout",
        "--shutdown-timeout",
        "--max-connections",
        "--max-header-bytes",
        "--log-format",
        "--check",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn an_address_in_use_fails_within_a_second_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let start = Instant::now();
    let out = binary()
        .args(["--listen", &addr, "--log-format", "json"])
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
}

#[test]
fn a_bad_value_names_its_source_flag_variable_or_file() {
    let ok = temp_file("toml", b"workers = 1\n");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = binary()
            .arg("--check")
            .args(["--config", ok.to_str().unwrap()])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let from_env = run(&[], &[("RESPONDER_WORKERS", "0")]);
    assert!(
        from_env.contains("RESPONDER_WORKERS=0: 0 is out of range (1 to 1024)"),
        "{from_env}"
    );
    assert!(!from_env.contains(ok.to_str().unwrap()), "{from_env}");
    let from_flag = run(&["--workers", "2000"], &[("RESPONDER_WORKERS", "0")]);
    assert!(
        from_flag.contains("--workers") && from_flag.contains("2000 is out of range"),
        "{from_flag}"
    );
    let from_env = run(&[], &[("RESPONDER_MAX_HEADER_BYTES", "lots")]);
    assert!(
        from_env.contains("RESPONDER_MAX_HEADER_BYTES=lots: `lots` is not a whole number"),
        "{from_env}"
    );

    let (ok, text) = check("backlog = 0\n");
    assert!(
        !ok && text.contains("FILE at line 1: backlog: 0 is out of range"),
        "{text}"
    );
    let (ok, text) = check("health_path = \"/h\"\n\nready_path = \"/h\"\n");
    assert!(
        !ok && text.contains("FILE at line 3: health_path and ready_path are both `/h`"),
        "{text}"
    );
    let (ok, text) = check("# the probe on the metrics path\nready_path = \"/metrics\"\n");
    assert!(
        !ok && text.contains("FILE at line 2: ready_path and metrics_path are both `/metrics`"),
        "{text}"
    );
}

#[test]
fn a_fifo_named_as_a_file_is_refused_at_once() {
    // Opening a FIFO would wait for a writer that never comes, with the supervisor (its reloads
    // and its signals) behind it.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("body");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let config = dir.path().join("responder.toml");
    std::fs::write(&config, "[[route]]\npath = \"/\"\nbody_file = \"body\"\n").unwrap();
    for args in [
        vec!["--check", "--config", config.to_str().unwrap()],
        vec!["--check", "--config", fifo.to_str().unwrap()],
    ] {
        let mut child = binary()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{args:?}: still waiting on the FIFO");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{args:?}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
}
