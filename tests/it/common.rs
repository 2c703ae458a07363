//! Helpers for tests that run the real `responder` binary on 127.0.0.1 port 0 and talk to it
//! over real sockets. Each server is this test's own child and is killed by PID when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempPath;

/// Every wait in these tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_responder"))
}

pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// For a stalled server: its stdout, held open and never read again.
    _stalled_stdout: Option<BufReader<std::process::ChildStdout>>,
    /// The configuration file it was started with, removed when the server is dropped.
    _config: Option<TempPath>,
}

impl Server {
    /// Starts the binary on 127.0.0.1:0 with JSON logs and `args`, and waits for its address.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(binary(), args, env)
    }

    /// Starts the binary with its descriptor limit set to `soft`/`hard` before it runs.
    pub fn start_with_fd_limit(args: &[&str], soft: u64, hard: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = binary();
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Server::spawn(cmd, args, &[])
    }

    /// Starts `cmd` (which must run the binary, possibly through a wrapper) with the usual
    /// arguments plus `args`.
    pub fn start_command(cmd: Command, args: &[&str]) -> Server {
        Server::spawn(cmd, args, &[])
    }

    fn spawn(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Server {
        cmd.args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().expect("the test binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"listening\"") {
                    let _ = tx.send(field(&line, "addr"));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(LIMIT)
            .ok()
            .flatten()
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!(
                "server did not announce its address: {:?}",
                lines.lock().unwrap()
            );
        };
        Server {
            addr,
            child,
            lines,
            _stalled_stdout: None,
            _config: None,
        }
    }

    /// Starts the binary and reads its stdout only up to the line with its address: from then on
    /// the pipe stays open and nobody reads it, as with a stuck log collector.
    pub fn start_stalled(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = binary()
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the test binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("server exited before announcing its address");
            }
            if line.contains("\"listening\"") {
                break field(&line, "addr")
                    .and_then(|a| a.parse().ok())
                    .expect("an address");
            }
        };
        Server {
            addr,
            child,
            lines: Arc::default(),
            _stalled_stdout: Some(stdout),
            _config: None,
        }
    }

    pub fn with_config(toml: &str, args: &[&str]) -> Server {
        let path = temp_file("toml", toml.as_bytes());
        let mut all = vec!["--config", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut server = Server::start(&all);
        server._config = Some(path);
        server
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
        s
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    pub fn exchange(&self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_to_close(&mut s)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of our own child.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing every one of `needles`.
    pub fn await_log(&self, needles: &[&str]) -> String {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            if let Some(line) = self
                .logs()
                .into_iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return line;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no log line with {needles:?} in {:#?}", self.logs());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin address the `listening` line names.
pub fn admin_addr(server: &Server) -> SocketAddr {
    let line = server.await_log(&["\"listening\""]);
    field(&line, "admin_addr")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no admin_addr in {line}"))
}

/// The string value of `"key":"value"` in a JSON log line.
pub fn field(line: &str, key: &str) -> Option<String> {
    let marker = format!("\"{key}\":\"");
    let start = line.find(&marker)? + marker.len();
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_string())
}

/// The number value of `"key":123` in a JSON log line.
pub fn field_number(line: &str, key: &str) -> usize {
    let marker = format!("\"{key}\":");
    let start = line
        .find(&marker)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + marker.len();
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {line}"))
}

/// Reads until EOF (or a reset, which ends the reading too) and returns what came.
pub fn read_to_close(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "no close within {LIMIT:?}; got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads one response head (through its blank line) from a kept-alive connection.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("response head");
        assert_eq!(
            n,
            1,
            "closed mid-head after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads exactly one response (head and `Content-Length` body) from a kept-alive connection.
pub fn read_response(s: &mut TcpStream) -> String {
    let head = read_head(s);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).expect("response body");
    head + &String::from_utf8_lossy(&body)
}

/// The number of complete responses in `text`.
pub fn count_responses(text: &str) -> usize {
    text.matches("HTTP/1.").count()
}

pub fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// A file holding `contents`, named with the extension `ext`; removed when the path is dropped.
pub fn temp_file(ext: &str, contents: &[u8]) -> TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("responder-test-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .unwrap();
    file.write_all(contents).unwrap();
    file.into_temp_path()
}

/// A child process killed when the test ends, passed or not (for tests that start the binary
/// without `Server`).
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `responder --check` on a file holding `toml`: whether it passed, and what it printed, the
/// file's path said as `FILE`.
pub fn check(toml: &str) -> (bool, String) {
    let path = temp_file("toml", toml.as_bytes());
    let out = binary()
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.success(),
        text.replace(path.to_str().unwrap(), "FILE"),
    )
}

/// The body of a complete response.
pub fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The value of header `name` in a response's head.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response
        .split_once("\r\n\r\n")
        .map_or(response, |(head, _)| head);
    head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The server's user + system CPU time so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as u64
}

/// Resident anonymous memory of the server process (its heap and stacks), in KiB. The binary's
/// own pages, which the flood's code paths fault in the first time they run, are left out: they
/// are shared and reclaimable, and their number follows the binary's layout, not what the flood
/// left behind.
pub fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("an RssAnon line")
}
