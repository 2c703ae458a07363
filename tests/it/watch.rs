//! `--watch`: the configuration follows its files. A ConfigMap volume is built as the kubelet
//! builds it (timestamped directories, a `..data` link, the names as links through it) and
//! swapped while clients keep asking; invalid, repeated, in-place, deleted and renamed-over
//! changes; files that stay missing while polled or beside a busy neighbour; a directory replaced
//! by rename; no watch; and the polling fallback.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{body_of, check, read_response, status_of, Server, LIMIT};

/// A ConfigMap volume: each `swap` writes a new timestamped directory and renames a link to it
/// over `..data`, then removes the old one, as the kubelet's atomic writer does.
struct Mount {
    dir: tempfile::TempDir,
    serial: u32,
}

impl Mount {
    fn new(files: &[(&str, &str)]) -> Mount {
        let mut mount = Mount {
            dir: tempfile::tempdir().unwrap(),
            serial: 0,
        };
        mount.swap(files);
        mount
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn swap(&mut self, files: &[(&str, &str)]) {
        self.serial += 1;
        let dir = format!("..2026_12_02_10_00_00.{}", self.serial);
        std::fs::create_dir(self.path(&dir)).unwrap();
        for (name, text) in files {
            std::fs::write(self.path(&dir).join(name), text).unwrap();
            if self.path(name).symlink_metadata().is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), self.path(name))
                    .unwrap();
            }
        }
        let old = std::fs::read_link(self.path("..data")).ok();
        std::os::unix::fs::symlink(&dir, self.path("..data_tmp")).unwrap();
        std::fs::rename(self.path("..data_tmp"), self.path("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }
}

fn config(body: &str) -> String {
    format!("watch_debounce = \"100ms\"\n[[route]]\npath = \"/\"\nmatch = \"prefix\"\nbody = \"{body}\"\n")
}

fn start(config: &Path, args: &[&str]) -> Server {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    Server::start(&all)
}

fn get(server: &Server, path: &str) -> String {
    server.exchange(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
}

fn metrics(server: &Server) -> String {
    body_of(&get(server, "/metrics")).to_string()
}

/// The value of the sample `name` (labels included) in a scrape.
fn sample(scrape: &str, name: &str) -> Option<String> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_string)
}

fn reloads(server: &Server, cause: &str, result: &str) -> u64 {
    let name = format!("responder_config_reloads_total{{cause=\"{cause}\",result=\"{result}\"}}");
    sample(&metrics(server), &name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {}", metrics(server)))
}

/// The `sha256` label of `responder_config_info`.
fn config_sha(server: &Server) -> String {
    let scrape = metrics(server);
    let line = scrape
        .lines()
        .find(|l| l.starts_with("responder_config_info{"))
        .unwrap_or_else(|| panic!("no responder_config_info in {scrape}"));
    line.split('"').nth(1).unwrap().to_string()
}

/// Waits (bounded) until `/` answers `body`; returns how long it took.
fn await_body(server: &Server, body: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if body_of(&get(server, "/")) == body {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("`/` never answered {body:?}; logs: {:#?}", server.logs());
}

/// Clients that each keep one connection alive and ask on it until told to stop, and report
/// each answer's body and when it came. A failed request or a closed connection panics.
struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<(Instant, String)>>>,
}

impl Clients {
    fn start(addr: SocketAddr, count: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_read_timeout(Some(LIMIT)).unwrap();
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                            .expect("the connection stays open");
                        let answer = read_response(&mut s);
                        assert_eq!(status_of(&answer), 200, "{answer}");
                        assert!(answer.contains("Connection: keep-alive"), "{answer}");
                        answers.push((Instant::now(), body_of(&answer).to_string()));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    answers
                })
            })
            .collect();
        Clients { stop, threads }
    }

    fn finish(self) -> Vec<Vec<(Instant, String)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| {
                t.join()
                    .expect("no request failed and no connection closed")
            })
            .collect()
    }
}

#[test]
fn a_configmap_swap_is_served_within_2s_on_kept_alive_connections() {
    let mut mount = Mount::new(&[("responder.toml", &config("old"))]);
    let server = start(&mount.path("responder.toml"), &["--watch"]);
    server.await_log(&["watching the configuration's files", "\"by\":\"inotify\""]);
    let before = config_sha(&server);
    let clients = Clients::start(server.addr, 4);
    std::thread::sleep(Duration::from_millis(200));
    let swapped = Instant::now();
    mount.swap(&[("responder.toml", &config("new"))]);
    server.await_log(&["configuration reloaded", "\"cause\":\"watch\""]);
    std::thread::sleep(Duration::from_millis(300));
    let answers = clients.finish();
    for client in &answers {
        let first_new = client
            .iter()
            .find(|(_, body)| body == "new")
            .expect("every connection sees the new answer");
        assert!(
            first_new.0.duration_since(swapped) < Duration::from_secs(2),
            "new answer {:?} after the swap",
            first_new.0.duration_since(swapped)
        );
        assert!(client.iter().all(|(_, b)| b == "old" || b == "new"));
        // Once new, never old again.
        let at = client.iter().position(|(_, b)| b == "new").unwrap();
        assert!(client[at..].iter().all(|(_, b)| b == "new"));
    }
    let line = server.await_log(&["configuration reloaded", "\"cause\":\"watch\""]);
    assert!(
        line.contains("responder.toml"),
        "changed names the file: {line}"
    );
    assert_eq!(reloads(&server, "watch", "ok"), 1);
    assert_eq!(reloads(&server, "watch", "refused"), 0);
    assert_ne!(
        config_sha(&server),
        before,
        "the hash follows the configuration"
    );
    let stamp = sample(
        &metrics(&server),
        "responder_config_last_reload_success_timestamp_seconds",
    )
    .and_then(|v| v.parse::<f64>().ok())
    .expect("a reload timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - stamp).abs() < 10.0, "{stamp} is not about {now}");
}

#[test]
fn an_invalid_swap_is_refused_and_counted_then_a_valid_one_applied() {
    let mut mount = Mount::new(&[("responder.toml", &config("old"))]);
    let server = start(&mount.path("responder.toml"), &["--watch"]);
    let sha = config_sha(&server);
    mount.swap(&[(
        "responder.toml",
        "watch_debounce = \"100ms\"\n[[route]]\npath = \"/\"\nstatus = 42\n",
    )]);
    let line = server.await_log(&["configuration refused", "\"cause\":\"watch\""]);
    assert!(
        line.contains("\"level\":\"ERROR\"")
            && line.contains("responder.toml at line 4")
            && line.contains("status 42"),
        "{line}"
    );
    assert_eq!(body_of(&get(&server, "/")), "old", "the old answers stay");
    assert_eq!(reloads(&server, "watch", "refused"), 1);
    assert_eq!(reloads(&server, "watch", "ok"), 0);
    assert_eq!(
        config_sha(&server),
        sha,
        "the configuration in force is the old one"
    );
    // A key that changes only on restart is said, as on SIGHUP.
    mount.swap(&[(
        "responder.toml",
        &format!("backlog = 16\n{}", config("fixed")),
    )]);
    await_body(&server, "fixed");
    server.await_log(&["changes only on restart", "\"key\":\"backlog\""]);
    assert_eq!(reloads(&server, "watch", "ok"), 1);
    assert_ne!(config_sha(&server), sha);
}

#[test]
fn fifty_swaps_in_a_second_make_few_reloads_and_the_last_wins() {
    let mut mount = Mount::new(&[("responder.toml", &config("0"))]);
    let server = start(&mount.path("responder.toml"), &["--watch"]);
    for i in 1..=50 {
        mount.swap(&[("responder.toml", &config(&i.to_string()))]);
        std::thread::sleep(Duration::from_millis(18));
    }
    await_body(&server, "50");
    // Whatever is still pending settles within a few debounces.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(body_of(&get(&server, "/")), "50");
    let applied = reloads(&server, "watch", "ok");
    assert!(
        (1..=10).contains(&applied),
        "{applied} reloads for 50 swaps"
    );
    assert_eq!(reloads(&server, "watch", "refused"), 0);
}

#[test]
fn a_body_file_and_an_error_page_changed_in_place_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    std::fs::write(
        &file,
        "watch = true\nwatch_debounce = \"100ms\"\n[error_pages]\nenabled = true\ndir = \"pages\"\n\
         [[route]]\npath = \"/\"\nbody_file = \"body.html\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("body.html"), "first").unwrap();
    std::fs::create_dir(dir.path().join("pages")).unwrap();
    std::fs::write(dir.path().join("pages/404.html"), "lost {{code}}").unwrap();
    let server = start(&file, &[]);
    let page = |server: &Server| {
        body_of(&server.exchange(b"GET / HTTP/1.0\r\nX-Code: 404\r\n\r\n")).to_string()
    };
    assert_eq!(page(&server), "lost 404");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.path().join("body.html"))
        .and_then(|mut f| f.write_all(b"second"))
        .unwrap();
    await_body(&server, "second");
    let line = server.await_log(&["configuration reloaded", "body.html"]);
    assert!(!line.contains("pages"), "only the body changed: {line}");
    std::fs::write(dir.path().join("pages/404.html"), "gone {{code}}").unwrap();
    let start = Instant::now();
    while page(&server) != "gone 404" {
        assert!(start.elapsed() < LIMIT, "the page never changed");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.await_log(&["configuration reloaded", "pages"]);
    assert_eq!(reloads(&server, "watch", "ok"), 2);
}

#[test]
fn a_file_gone_for_a_moment_is_no_refusal_and_one_that_stays_gone_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    let body = dir.path().join("body.txt");
    std::fs::write(
        &file,
        "watch_debounce = \"300ms\"\n[[route]]\npath = \"/\"\nbody_file = \"body.txt\"\n",
    )
    .unwrap();
    std::fs::write(&body, "one").unwrap();
    let server = start(&file, &["--watch=true"]);
    std::fs::remove_file(&body).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&body, "two").unwrap();
    await_body(&server, "two");
    assert!(
        !server
            .logs()
            .iter()
            .any(|l| l.contains("configuration refused")),
        "{:#?}",
        server.logs()
    );
    // Gone for good: refused, naming the file, and the last answer stays.
    std::fs::remove_file(&body).unwrap();
    let line = server.await_log(&["configuration refused", "\"cause\":\"watch\""]);
    assert!(line.contains("body.txt"), "{line}");
    assert_eq!(body_of(&get(&server, "/")), "two");
    std::fs::write(&body, "three").unwrap();
    await_body(&server, "three");
}

#[test]
fn an_editors_rename_over_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    std::fs::write(&file, config("before")).unwrap();
    let server = start(&file, &["--watch"]);
    let swap = dir.path().join(".responder.toml.swp");
    std::fs::write(&swap, config("after")).unwrap();
    std::fs::rename(&swap, &file).unwrap();
    await_body(&server, "after");
    server.await_log(&["configuration reloaded", "\"cause\":\"watch\""]);
}

#[test]
fn without_watch_nothing_changes_until_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    std::fs::write(&file, config("old")).unwrap();
    let server = start(&file, &[]);
    std::fs::write(&file, config("new")).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(body_of(&get(&server, "/")), "old");
    assert!(!server
        .logs()
        .iter()
        .any(|l| l.contains("watching the configuration's files")));
    server.signal(libc::SIGHUP);
    let line = server.await_log(&["configuration reloaded", "\"cause\":\"signal\""]);
    assert!(line.contains("responder.toml"), "{line}");
    assert_eq!(body_of(&get(&server, "/")), "new");
    assert_eq!(reloads(&server, "signal", "ok"), 1);
    assert_eq!(reloads(&server, "watch", "ok"), 0);
}

#[test]
fn the_polling_fallback_sees_a_swap() {
    let mut mount = Mount::new(&[(
        "responder.toml",
        &format!("watch_interval = \"200ms\"\n{}", config("old")),
    )]);
    let path = mount.path("responder.toml");
    let server = Server::start_with_env(
        &["--config", path.to_str().unwrap()],
        &[
            ("RESPONDER_WATCH", "true"),
            ("RESPONDER_WATCH_POLL", "true"),
        ],
    );
    server.await_log(&["watching the configuration's files", "\"by\":\"polling\""]);
    mount.swap(&[(
        "responder.toml",
        &format!("watch_interval = \"200ms\"\n{}", config("new")),
    )]);
    let took = await_body(&server, "new");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(reloads(&server, "watch", "ok"), 1);
}

#[test]
fn watch_durations_take_a_unit_or_bare_seconds() {
    for good in [
        "watch_interval = \"250ms\"\nwatch_debounce = \"1s\"",
        "watch_interval = 2\nwatch_debounce = 0.5",
        "watch_interval = \"1m\"\nwatch_debounce = \"0.25\"",
        "watch = false",
    ] {
        let (ok, text) = check(good);
        assert!(ok, "{good}: {text}");
    }
    for (bad, says) in [
        ("watch_debounce = \"0ms\"", "at least 1ms"),
        ("watch_interval = 1e-12", "at least 100ms"),
        ("watch_interval = \"50ms\"", "at least 100ms"),
        ("watch_debounce = 0", "out of range"),
        ("watch_interval = \"5 parsecs\"", "is not a duration"),
        ("watch = \"yes\"", "watch"),
    ] {
        let (ok, text) = check(bad);
        assert!(
            !ok && text.contains("FILE at line 1") && text.contains(says),
            "{bad}: {text}"
        );
    }
}

/// A config with `/` answered from `body.txt` beside it, polled every 100 ms (half a debounce:
/// each poll still sees the change not yet loaded), or followed through inotify.
fn with_body_file(poll: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    let body = dir.path().join("body.txt");
    std::fs::write(
        &file,
        format!(
            "watch = true\nwatch_poll = {poll}\nwatch_interval = \"100ms\"\n\
             watch_debounce = \"200ms\"\n[[route]]\npath = \"/\"\nbody_file = \"body.txt\"\n"
        ),
    )
    .unwrap();
    std::fs::write(&body, "one").unwrap();
    (dir, file, body)
}

#[test]
fn a_body_file_that_stays_missing_while_polled_is_refused_and_later_changes_applied() {
    let (_dir, file, body) = with_body_file(true);
    let server = start(&file, &[]);
    server.await_log(&["watching the configuration's files", "\"by\":\"polling\""]);
    std::fs::remove_file(&body).unwrap();
    let line = server.await_log(&["configuration refused", "\"cause\":\"watch\""]);
    assert!(line.contains("body.txt"), "{line}");
    assert_eq!(body_of(&get(&server, "/")), "one", "the last answer stays");
    // An edit that no longer names the missing file is applied.
    std::fs::write(&file, config("plain")).unwrap();
    await_body(&server, "plain");
}

/// Writes a file every 50 ms until dropped (or until its directory goes).
struct Neighbour {
    stop: Arc<AtomicBool>,
}

impl Neighbour {
    fn start(path: PathBuf) -> Neighbour {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stopped.load(Ordering::Relaxed) && std::fs::write(&path, i.to_string()).is_ok() {
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Neighbour { stop }
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_body_file_that_stays_missing_beside_a_busy_neighbour_is_refused_and_later_changes_applied() {
    let (dir, file, body) = with_body_file(false);
    let server = start(&file, &[]);
    server.await_log(&["watching the configuration's files", "\"by\":\"inotify\""]);
    let _neighbour = Neighbour::start(dir.path().join("access.log"));
    std::fs::remove_file(&body).unwrap();
    let line = server.await_log(&["configuration refused", "\"cause\":\"watch\""]);
    assert!(line.contains("body.txt"), "{line}");
    std::fs::write(&file, config("plain")).unwrap();
    await_body(&server, "plain");
}

#[cfg(feature = "tls")]
#[test]
fn a_client_ca_missing_while_client_auth_is_off_lets_changes_be_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    let toml = |body: &str| {
        format!(
            "watch = true\nwatch_poll = true\nwatch_interval = \"100ms\"\n\
             watch_debounce = \"200ms\"\ntls_listen = \"127.0.0.1:0\"\n\
             [[route]]\npath = \"/\"\nbody = \"{body}\"\n[tls]\nclient_ca = \"absent.pem\"\n"
        )
    };
    std::fs::write(&file, toml("one")).unwrap();
    let server = start(&file, &[]);
    server.await_log(&["watching the configuration's files", "absent.pem"]);
    assert_eq!(body_of(&get(&server, "/")), "one");
    std::fs::write(&file, toml("two")).unwrap();
    await_body(&server, "two");
    std::fs::write(&file, toml("three")).unwrap();
    await_body(&server, "three");
    assert_eq!(reloads(&server, "watch", "ok"), 2);
}

/// The inotify watches `pid` holds, over all its descriptors.
fn inotify_watches(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

#[test]
fn a_directory_replaced_by_rename_leaves_no_watch_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("responder.toml");
    std::fs::write(
        &file,
        "watch = true\nwatch_debounce = \"100ms\"\n[error_pages]\nenabled = true\n\
         dir = \"pages\"\n",
    )
    .unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    std::fs::write(pages.join("404.html"), "page 0").unwrap();
    let server = start(&file, &[]);
    server.await_log(&["watching the configuration's files", "\"by\":\"inotify\""]);
    let page = || body_of(&server.exchange(b"GET / HTTP/1.0\r\nX-Code: 404\r\n\r\n")).to_string();
    assert_eq!(page(), "page 0");
    // The directory and the one that holds it.
    let watches = inotify_watches(server.pid());
    for i in 1..=5 {
        let new = dir.path().join("pages.new");
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("404.html"), format!("page {i}")).unwrap();
        std::fs::rename(&pages, dir.path().join(format!("old.{i}"))).unwrap();
        std::fs::rename(&new, &pages).unwrap();
        let start = Instant::now();
        while page() != format!("page {i}") {
            assert!(start.elapsed() < LIMIT, "swap {i} never served");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The old directories, still there, are followed no more.
    assert_eq!(inotify_watches(server.pid()), watches);
    std::fs::write(dir.path().join("old.5/404.html"), "stale").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(page(), "page 5");
    assert_eq!(reloads(&server, "watch", "ok"), 5);
}
