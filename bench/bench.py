#!/usr/bin/env python3
"""Side-by-side benchmark of responder against its peers, on 127.0.0.1 only.

    python3 bench/bench.py                       # responder vs nginx vs the floor vs the article's
                                                 # Example 3 (--no-python: without Example 3)
    python3 bench/bench.py --floor-parse         # ... and the floor that also parses with httparse
    python3 bench/bench.py --compare logging     # responder: JSON access log off vs on, the floor
    python3 bench/bench.py --compare logging --headers --log-to pipe,file
                                                 # ... requests with a request id and traceparent,
                                                 # the log into a pipe and (a second server) a file
    python3 bench/bench.py --compare logging --headers --nginx
                                                 # ... and nginx's own access log off vs on
    python3 bench/bench.py --compare workers --server-cpus 0,1 --client-cpu 0,1
                                                 # responder: 1 worker vs 2, sharing both cores
    python3 bench/bench.py --rounds 5 --markdown bench/latest.md
    python3 bench/bench.py --compare builds --baseline /path/to/older/responder
                                                 # this tree's build against an older build
    python3 bench/bench.py --compare proxied     # behind nginx (proxy_pass, keepalive 32):
                                                 # responder against nginx as the backend
    python3 bench/bench.py --compare backend     # responder: a static route against a templated
                                                 # route and an error page (X-Code), one config

Every server runs pinned to one core and every load generator to the other (taskset), the same
in every run. Servers are measured in alternation (A B C, then C B A, ...) within one invocation,
and each figure is the median over the rounds. Server CPU time per request comes from
/proc/PID/stat (user + system, all of the server's processes) over each load, in 10 ms ticks:
loads shorter than about 5 s give noise. Each round's figure is printed (standard error) as the
round ends, so that the spread behind a median can be seen. `ab` loads run for --duration seconds (`ab -t`) unless
--requests gives them a count.

The floor (`--compare peers` and `logging`) is shared/bench/floor beside this repository's clone:
one thread, one epoll, a constant answer and no HTTP parsing, the least work a server can do per
request, so that a ratio to it tells the server's own share from the kernel's. The script builds
it (cargo, into /tmp/floor-target) and, if shared/ is not there, says so and leaves it out
(--no-floor leaves it out anyway). It holds idle connections, so it has an idle-memory figure.
--floor-parse adds floor-parse: the floor changed in one way, each request's bytes parsed with
httparse (responder's version, as responder calls it) and the result thrown away, built from a
copy of the floor's source into /tmp/floor-parse-target; responder/floor-parse is what responder
does beyond the parse its shape requires.

Ratios are A / B (named in the column) of each figure: over 1 in requests/s means A answered
more; under 1 in latency, CPU per request or memory means A took less. Each ratio is printed
twice, side by side: of the two medians, and `paired`, the median over the rounds of each
round's own ratio, whose two sides ran one after the other in that round, so that a slow spell
of the shared machine weighs on both; when the two disagree, trust `paired` and add rounds.
`--compare peers` prints responder/nginx, responder/floor and responder/python-ex3; `logging`
prints log-on/log-off (the log's cost: issue 13's 1.10x in CPU, 1.5x in wrk's p99), log-off/floor
and log-on/floor, and with --nginx nginx-log-on/nginx-log-off, log-off/nginx-log-off and
log-on/nginx-log-on. --ratios A/B,C/D prints others.

The tools come from Debian's packages (apache2-utils, wrk, nginx-light); the script installs them
with apt-get when they are missing.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY = "Hello, world!"
CLK_TCK = os.sysconf("SC_CLK_TCK")
IP_BIND_ADDRESS_NO_PORT = 24  # <linux/in.h>


def ensure_tools():
    missing = [t for t in ("ab", "wrk", "nginx", "taskset") if shutil.which(t) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)} from Debian's packages", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "apache2-utils", "wrk", "nginx-light", "util-linux"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    """Room for the idle-connection figure: 200,000 descriptors where permitted (root), else the
    hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 200_000), max(hard, 200_000)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def descendants(pid):
    """pid and every process below it."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    queue.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def status_kb(pids, key):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def get(port, path, timeout=5):
    """The whole answer of the server on `port` to one HTTP/1.0 `GET path`, read to its close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def answers(port, timeout=1):
    """Whether the server on `port` answers one HTTP/1.0 request with 200 within `timeout`."""
    data = get(port, "/", timeout)
    return data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")


class Server:
    """A server under load; `stop` ends it and removes `temporaries` (its config, its prefix)."""

    def __init__(self, name, argv, port, cpu, log_reader_cpu=None, log_file=None, temporaries=()):
        self.name, self.port = name, port
        self.log_reader = None
        self.log_file = log_file
        self.temporaries = list(temporaries) + ([log_file] if log_file else [])
        stdout = subprocess.DEVNULL
        if log_file is not None:
            # The log to a file on tmpfs: the kernel copies each line as into a pipe, and no
            # reader takes CPU from the load generator (whose slowdown would raise the server's
            # CPU per request as well).
            stdout = open(log_file, "wb")
        elif log_reader_cpu is not None:
            # A log collector that keeps up: `cat` reading the server's stdout pipe, pinned with
            # the load generator so that it takes nothing from the server's core.
            read_end, stdout = os.pipe()
            self.log_reader = subprocess.Popen(["taskset", "-c", str(log_reader_cpu), "cat"],
                                               stdin=read_end, stdout=subprocess.DEVNULL)
            os.close(read_end)
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu)] + argv,
            stdout=stdout, stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        if log_file is not None:
            stdout.close()
        elif log_reader_cpu is not None:
            os.close(stdout)
        deadline = time.time() + 10
        while time.time() < deadline:
            # A whole request, not a bare connect: a client that leaves without one makes the
            # article's servers spin (Example 3) or hang (Example 4) before the load begins.
            try:
                if answers(port):
                    time.sleep(0.2)
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start on port {port}")

    def pids(self):
        # taskset execs the server, so the Popen pid is the server's.
        return descendants(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.log_reader:
            self.log_reader.wait(timeout=10)
        for path in self.temporaries:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)


# --compare backend: one configuration, measured on three requests.
BACKEND_CONFIG = """
[error_pages]
enabled = true

[[route]]
path = "/t"
template = true
body = "{{hostname}} answered {{method}} {{path}} for {{header.user-agent}}\\n"

[[route]]
path = "/"
match = "prefix"
body = "Hello, world!"
"""
BACKEND_REQUESTS = {
    "static": ("/", []),
    "templated": ("/t", []),
    "error-page": ("/", ["X-Code: 503", "Accept: application/json"]),
}


def start_responder(name, port, cpu, workers, access_log, log_reader_cpu=None, binary=None, log_file=None,
                    extra_config=""):
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    # No connection limit of its own below what the descriptor limit allows: the idle figure
    # holds as many connections as it can.
    config.write(f"access_log = {'true' if access_log else 'false'}\nread_timeout = 60\n"
                 "max_connections = 1000000\n" + extra_config)
    config.close()
    binary = binary or RESPONDER_BINARY[0]
    argv = [binary, "--config", config.name, "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
            "--log-format", "json"]
    if not access_log:
        log_reader_cpu = log_file = None
    server = Server(name, argv, port, cpu, log_reader_cpu, log_file, temporaries=[config.name])
    server.responder = True
    return server


# nginx's own access log (`--compare logging --nginx`): the fields of responder's line as JSON
# (`escape=json`, trace context picked out of `traceparent` by regex), with nginx's cheapest
# setting, 64 KiB buffered, into the same pipe read by `cat` on the load's core.
NGINX_ACCESS_LOG = r"""
    map $http_traceparent $trace_id {
        "~^00-(?<id>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$" $id;
        default "";
    }
    map $http_traceparent $span_id {
        "~^00-[0-9a-f]{32}-(?<id>[0-9a-f]{16})-[0-9a-f]{2}$" $id;
        default "";
    }
    log_format access escape=json '{"timestamp":"$time_iso8601","level":"INFO","message":"response",'
        '"conn":$connection,"method":"$request_method","path":"$request_uri","version":"$server_protocol",'
        '"status":$status,"bytes":$bytes_sent,"duration_s":$request_time,'
        '"remote_addr":"$remote_addr:$remote_port","host":"$http_host","user_agent":"$http_user_agent",'
        '"x_forwarded_for":"$http_x_forwarded_for",'
        '"request_id":"$http_x_request_id","trace_id":"$trace_id","span_id":"$span_id","target":"nginx::access"}';
    access_log /dev/stdout access buffer=64k flush=1s;"""


def start_nginx(port, cpu, workers, server_block=None, name="nginx", log_reader_cpu=None):
    """nginx answering `BODY` itself, or with `server_block` (a proxy) in place of its server;
    with `log_reader_cpu`, logging each request (`NGINX_ACCESS_LOG`) into a pipe read there."""
    prefix = tempfile.mkdtemp(prefix="bench-nginx-")
    conf = os.path.join(prefix, "nginx.conf")
    server_block = server_block or f"""
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ default_type text/plain; return 200 "{BODY}"; }}
        location = /nginx_status {{ stub_status; }}
    }}"""
    with open(conf, "w") as f:
        f.write(f"""
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 65536; use epoll; }}
http {{
    {NGINX_ACCESS_LOG if log_reader_cpu is not None else "access_log off;"}
    keepalive_requests 100000000;
    client_header_timeout 60s;
    client_body_temp_path {prefix};
    proxy_temp_path {prefix};
    fastcgi_temp_path {prefix};
    uwsgi_temp_path {prefix};
    scgi_temp_path {prefix};
{server_block}
}}
""")
    return Server(name, ["nginx", "-p", prefix, "-c", conf], port, cpu, log_reader_cpu, temporaries=[prefix])


PROXY_POOL = 32
# The responder binary measured, unless a comparison names another (--binary changes it).
RESPONDER_BINARY = [os.path.join(ROOT, "target", "release", "responder")]

# With --headers, every load's requests carry what a request through an ingress does: a
# User-Agent, the proxy's X-Forwarded-For, a request id and W3C trace context (the access log's
# client fields).
CLIENT_HEADERS = [
    "User-Agent: bench/1.0 (load generator)",
    "X-Forwarded-For: 203.0.113.7",
    "X-Request-Id: 5f2b8c1e-bench-request-id",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
]
LOAD_HEADERS = []


def start_proxy(port, cpu, backend_port):
    """nginx as the reverse proxy every ingress is: HTTP/1.1 to the upstream, `Connection`
    cleared, a keep-alive pool of `PROXY_POOL` connections."""
    block = f"""
    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive {PROXY_POOL}; keepalive_requests 100000000; }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""
    return start_nginx(port, cpu, 1, block, name="proxy")


def backend_accepts(name, port):
    """Connections the backend has accepted so far: responder's /metrics, nginx's stub_status."""
    path = "/nginx_status" if name == "nginx" else "/metrics"
    text = get(port, path).decode(errors="replace")
    if name != "nginx":
        m = re.search(r"^responder_connections_accepted_total (\d+)", text, re.M)
    else:
        m = re.search(r"^\s*(\d+) \d+ \d+\s*$", text, re.M)  # accepts handled requests
    return int(m.group(1)) if m else -1


def log_lines_dropped(port):
    """responder's log lines dropped so far because its output did not keep up (/metrics)."""
    text = get(port, "/metrics").decode(errors="replace")
    m = re.search(r"^responder_log_lines_dropped_total (\d+)", text, re.M)
    return float(m.group(1)) if m else float("nan")


def time_wait(port):
    """Sockets in TIME_WAIT on `port`, either end."""
    out = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( sport = :{port} or dport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def measure_proxied(name, start_backend, args):
    """`ab -k` through a proxy in front of the backend: throughput, and what it cost the backend
    in connections."""
    backend_port, proxy_port = free_port(), free_port()
    backend = start_backend(backend_port)
    proxy = None
    try:
        proxy = start_proxy(proxy_port, args.client_cpu, backend_port)
        accepted_before = backend_accepts(name, backend_port)
        r = run_load("ab-k", proxy_port, args.client_cpu, args.requests["ab-k"], args.duration,
                     concurrency=PROXY_POOL)
        r["backend_accepts"] = backend_accepts(name, backend_port) - accepted_before - 1
        r["time_wait"] = time_wait(backend_port)
        return r
    finally:
        if proxy:
            proxy.stop()
        backend.stop()


def start_python(port, cpu, example=3):
    """The article's Example 3 (level-triggered) or Example 4 (edge-triggered)."""
    script = {3: "python_epoll_server.py", 4: "python_epoll_et_server.py"}[example]
    argv = [sys.executable, os.path.join(ROOT, "bench", script), "127.0.0.1", str(port)]
    return Server(f"python-ex{example}", argv, port, cpu)


# shared/bench/floor, beside this repository's clone (read-only: built elsewhere).
FLOOR_SOURCE = os.path.join(os.path.dirname(ROOT), "shared", "bench", "floor")
FLOOR_TARGET = "/tmp/floor-target"


def floor_binary():
    """The floor's binary, built (or brought up to date: a no-op when it is) from shared/; None,
    with a message, when shared/ is not beside the clone and no earlier build is there."""
    binary = os.path.join(FLOOR_TARGET, "release", "floor")
    if os.path.isdir(FLOOR_SOURCE):
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--target-dir", FLOOR_TARGET],
                       cwd=FLOOR_SOURCE, check=True)
        return binary
    if os.path.exists(binary):
        print(f"no {FLOOR_SOURCE}: the floor is the earlier build {binary}", file=sys.stderr)
        return binary
    print(f"no {FLOOR_SOURCE} (shared/ beside the clone) and no {binary}: the floor is left out",
          file=sys.stderr)
    return None


def start_floor(port, cpu, binary, name="floor"):
    """The floor: a constant answer from one epoll thread (shared/bench/floor)."""
    return Server(name, [binary, str(port)], port, cpu)


# floor-parse: the floor with one change, every request's bytes parsed with httparse (responder's
# version, into 64 header slots left uninitialized, as responder parses) and the result thrown
# away. Built from a copy of shared/bench/floor, changed where these lines are.
FLOOR_PARSE_TARGET = "/tmp/floor-parse-target"
FLOOR_PARSE_AT = ["if let Ok(n) = c.read(&mut buf) {\n", "let head = &pending[..end];\n"]
FLOOR_PARSE_CALLS = ["parse(&buf[..n]);\n", "parse(head);\n"]
FLOOR_PARSE_FN = """
fn parse(head: &[u8]) {
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; 64];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(head, &mut fields);
    std::hint::black_box((parsed.is_ok(), req.method, req.path, req.version, req.headers.len()));
}
"""


def floor_parse_binary():
    """The floor-parse peer's binary, built into FLOOR_PARSE_TARGET; None, with a message, when
    shared/bench/floor is not beside the clone or no longer has the lines it is changed at."""
    if not os.path.isdir(FLOOR_SOURCE):
        print(f"no {FLOOR_SOURCE}: floor-parse is left out", file=sys.stderr)
        return None
    source = os.path.join(FLOOR_PARSE_TARGET, "source")
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(FLOOR_SOURCE, source, ignore=shutil.ignore_patterns("target"))
    for directory, _, files in os.walk(source):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    main_rs = os.path.join(source, "src", "main.rs")
    with open(main_rs) as f:
        text = f.read()
    for at, call in zip(FLOOR_PARSE_AT, FLOOR_PARSE_CALLS):
        if text.count(at) != 1:
            print(f"{FLOOR_SOURCE}/src/main.rs has changed ({at.strip()!r} is not there once): "
                  "floor-parse is left out", file=sys.stderr)
            return None
        indent = text[:text.index(at)].rsplit("\n", 1)[1]
        extra = "    " if at.endswith("{\n") else ""
        text = text.replace(at, at + indent + extra + call)
    with open(main_rs, "w") as f:
        f.write(text + FLOOR_PARSE_FN)
    with open(os.path.join(ROOT, "Cargo.lock")) as f:
        version = re.search(r'name = "httparse"\nversion = "([^"]+)"', f.read()).group(1)
    cargo_toml = os.path.join(source, "Cargo.toml")
    with open(cargo_toml) as f:
        manifest = f.read()
    with open(cargo_toml, "w") as f:
        f.write(manifest.replace("[dependencies]\n", f'[dependencies]\nhttparse = "={version}"\n', 1))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target-dir", FLOOR_PARSE_TARGET],
                   cwd=source, check=True)
    return os.path.join(FLOOR_PARSE_TARGET, "release", "floor")


# ab's -n when a load runs for a time (`-t`): more than any server answers in it.
AB_UNBOUNDED = 100_000_000


def run_load(load, port, cpu, requests, duration, concurrency=100, path="/", extra_headers=()):
    """One load against `port`; `requests` is ab's count, or None for ab to run `duration`
    seconds (as wrk always does)."""
    url = f"http://127.0.0.1:{port}{path}"
    headers = [arg for h in LOAD_HEADERS + list(extra_headers) for arg in ("-H", h)]
    if load.startswith("ab"):
        # -n after -t: -t alone caps the count at 50,000.
        count = ["-n", str(requests)] if requests else ["-t", str(duration), "-n", str(AB_UNBOUNDED)]
        argv = ["ab", "-q", "-c", str(concurrency)] + count + (["-k"] if load == "ab-k" else []) + headers + [url]
    else:
        conns = load.split("-c")[1]
        argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency"] + headers + [url]
    out = subprocess.run(["taskset", "-c", str(cpu)] + argv, capture_output=True, text=True,
                         preexec_fn=raise_fd_limit, timeout=duration * 10 + 120).stdout
    return parse_ab(out) if load.startswith("ab") else parse_wrk(out)


def parse_ab(out):
    def num(pattern, default=0.0):
        m = re.search(pattern, out, re.M)
        return float(m.group(1)) if m else default
    return {
        "requests": num(r"^Complete requests:\s+(\d+)"),
        "failed": num(r"^Failed requests:\s+(\d+)") + num(r"^Non-2xx responses:\s+(\d+)"),
        "rps": num(r"^Requests per second:\s+([\d.]+)"),
        "p50_ms": num(r"^\s+50%\s+(\d+)"),
        "p99_ms": num(r"^\s+99%\s+(\d+)"),
    }


def parse_wrk(out):
    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\b", out, re.M)
        if not m:
            return 0.0
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    requests = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "requests": float(requests.group(1)) if requests else 0.0,
        "failed": (sum(int(g) for g in errors.groups()) if errors else 0) + (int(non2xx.group(1)) if non2xx else 0),
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency(50),
        "p99_ms": latency(99),
    }


def idle_memory_per_connection(server, count):
    """KiB of server memory per idle connection: RSS with `count` silent connections open, less
    RSS without, divided by `count`."""
    pids = server.pids()
    before = status_kb(pids, "VmRSS")
    conns = []
    try:
        for i in range(count):
            # A source address per 20,000 connections (one address has ~28,000 ports); the port is
            # chosen at connect (IP_BIND_ADDRESS_NO_PORT), so earlier runs' TIME_WAITs don't count.
            c = socket.socket()
            c.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            c.bind((f"127.0.0.{2 + i // 20_000}", 0))
            c.settimeout(5)
            conns.append(c)
            c.connect(("127.0.0.1", server.port))
        time.sleep(1.0)
        after = status_kb(server.pids(), "VmRSS")
        # Only connections the server still holds count: one past its limit is answered and closed.
        held = sum(1 for c in conns if still_open(c))
        if held < count:
            print(f"{server.name}: holds {held} of {count} idle connections", file=sys.stderr)
    except OSError as e:
        # The article's servers can die under the loads before; say so rather than stop.
        print(f"{server.name}: idle connections failed after {len(conns)}: {e}", file=sys.stderr)
        return float("nan")
    finally:
        for c in conns:
            c.close()
    return (after - before) / held if held else float("nan")


def still_open(c):
    """Whether the peer has neither answered nor closed this silent connection."""
    c.setblocking(False)
    try:
        return c.recv(1, socket.MSG_PEEK) is None
    except BlockingIOError:
        return True
    except OSError:
        return False


def measure(server, loads, client_cpu, requests, duration, idle_conns):
    results = {}
    for load in loads:
        pids = server.pids()
        ticks = cpu_ticks(pids)
        path, extra_headers = getattr(server, "request", ("/", []))
        r = run_load(load, server.port, client_cpu, requests[load], duration, path=path,
                     extra_headers=extra_headers)
        used = cpu_ticks(server.pids()) - ticks
        r["cpu_us_per_req"] = used / CLK_TCK * 1e6 / r["requests"] if r["requests"] else 0.0
        results[load] = r
        time.sleep(0.5)
    results["peak_rss_kb"] = status_kb(server.pids(), "VmHWM")
    if getattr(server, "responder", False):
        results["log_dropped"] = log_lines_dropped(server.port)
    if idle_conns:
        results["idle_kib_per_conn"] = idle_memory_per_connection(server, idle_conns)
    return results


def parse_requests(text, ap):
    """--requests: `N` for every ab load, `ab=N,ab-k=M` per load; 0 or a load left out runs for
    --duration seconds. A dict from load to count (None: for the duration)."""
    counts = {}
    for part in text.split(","):
        load, _, n = part.rpartition("=")
        try:
            counts[load or "*"] = int(n) or None
        except ValueError:
            ap.error(f"--requests {text}: a count, or load=count[,load=count...]")
    default = counts.pop("*", None)

    class Counts(dict):
        def __missing__(self, load):
            return default
    return Counts(counts)


def parse_ratios(text, names, ap):
    ratios = []
    for part in text.split(","):
        num, _, den = part.partition("/")
        if num not in names or den not in names:
            ap.error(f"--ratios {part}: A/B of the servers measured ({', '.join(names)})")
        ratios.append((num, den))
    return ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", choices=["peers", "logging", "workers", "builds", "proxied", "backend"],
                    default="peers")
    ap.add_argument("--binary", help="the responder binary to measure (default: this tree's release build, "
                                     "built when missing)")
    ap.add_argument("--baseline", help="--compare builds (or proxied): an older responder binary to compare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--requests", default="0",
                    help="ab's request count (ab -n): N for every ab load, or per load as ab=N,ab-k=M; "
                         "0 or a load not named: ab runs for --duration seconds (ab -t), the default")
    ap.add_argument("--duration", type=int, default=5, help="wrk -d (and ab -t), seconds")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections for the memory figure (0: skip)")
    ap.add_argument("--loads", default="ab,ab-k,wrk-c100,wrk-c1000", help="or `none`")
    ap.add_argument("--server-cpus", default="0", help="taskset list for the servers")
    ap.add_argument("--client-cpu", default="1", help="taskset list for the load generators")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--no-floor", action="store_true",
                    help="--compare peers and logging: leave the floor (shared/bench/floor) out")
    ap.add_argument("--floor-parse", action="store_true",
                    help="--compare peers: also floor-parse, the floor that parses every request with "
                         "httparse and does nothing else with it (what the parse alone costs)")
    ap.add_argument("--no-python", action="store_true",
                    help="--compare peers: leave the article's Example 3 out")
    ap.add_argument("--ratios", help="the ratios to print, as A/B,C/D of the servers' names, in place "
                                     "of the comparison's own")
    ap.add_argument("--log-to", default="pipe",
                    help="--compare logging: `pipe`, the log into a pipe read by `cat` on the load's CPU; "
                         "`file`, into a file in --log-dir (no reader); `pipe,file`: a log-on server "
                         "for each, in the same run")
    ap.add_argument("--log-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
                    help="--log-to file: the directory of the log file, removed with its server "
                         "(default %(default)s, tmpfs: the page cache only; a directory on disk adds writeback)")
    ap.add_argument("--nginx", action="store_true",
                    help="--compare logging: also nginx with its access log off and on (JSON, 64 KiB buffer)")
    ap.add_argument("--headers", action="store_true",
                    help="requests carry a User-Agent, an X-Forwarded-For, an X-Request-Id and a traceparent")
    args = ap.parse_args()
    args.requests = parse_requests(args.requests, ap)
    log_modes = args.log_to.split(",")
    if not log_modes or any(m not in ("pipe", "file") for m in log_modes):
        ap.error("--log-to: pipe, file or pipe,file")
    if args.headers:
        LOAD_HEADERS.extend(CLIENT_HEADERS)
    if args.binary:
        RESPONDER_BINARY[0] = os.path.abspath(args.binary)
    elif not os.path.exists(RESPONDER_BINARY[0]):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)

    def log_file(mode):
        if mode != "file":
            return None
        fd, path = tempfile.mkstemp(prefix="bench-log-", dir=args.log_dir)
        os.close(fd)
        return path
    ensure_tools()
    raise_fd_limit()
    loads = [] if args.loads == "none" else args.loads.split(",")

    if args.compare == "proxied":
        proxied(args)
        return
    floor = None
    if args.compare in ("peers", "logging") and not args.no_floor:
        floor = floor_binary()
    floor_starter = [("floor", lambda p: start_floor(p, args.server_cpus, floor))] if floor else []
    if args.compare == "builds":
        if not args.baseline:
            ap.error("--compare builds needs --baseline PATH")
        starters = [
            ("responder", lambda p: start_responder("responder", p, args.server_cpus, args.workers, False)),
            ("baseline", lambda p: start_responder("baseline", p, args.server_cpus, args.workers, False,
                                                   binary=os.path.abspath(args.baseline))),
            ("nginx", lambda p: start_nginx(p, args.server_cpus, args.workers)),
        ]
    elif args.compare == "peers":
        starters = [
            ("responder", lambda p: start_responder("responder", p, args.server_cpus, args.workers, False)),
            ("nginx", lambda p: start_nginx(p, args.server_cpus, args.workers)),
        ] + floor_starter
        floor_parse = floor_parse_binary() if args.floor_parse else None
        if floor_parse:
            starters.append(("floor-parse", lambda p: start_floor(p, args.server_cpus, floor_parse,
                                                                  name="floor-parse")))
        if not args.no_python:
            starters.append(("python-ex3", lambda p: start_python(p, args.server_cpus)))
    elif args.compare == "backend":
        def backend(name):
            def start(p):
                server = start_responder(name, p, args.server_cpus, args.workers, False,
                                         extra_config=BACKEND_CONFIG)
                server.request = BACKEND_REQUESTS[name]
                return server
            return start
        starters = [(name, backend(name)) for name in BACKEND_REQUESTS]
    elif args.compare == "workers":
        starters = [
            (f"{n}-worker", lambda p, n=n: start_responder(f"{n}-worker", p, args.server_cpus, n, False))
            for n in (1, 2)
        ] + [("nginx-2", lambda p: start_nginx(p, args.server_cpus, 2))]
    else:
        starters = [("log-off", lambda p: start_responder("log-off", p, args.server_cpus, args.workers, False))]
        starters += [
            (f"log-on-{m}", lambda p, m=m: start_responder(f"log-on-{m}", p, args.server_cpus, args.workers, True,
                                                           args.client_cpu, log_file=log_file(m)))
            for m in log_modes
        ] + floor_starter
        if args.nginx:
            starters += [
                ("nginx-log-off", lambda p: start_nginx(p, args.server_cpus, args.workers, name="nginx-log-off")),
                ("nginx-log-on", lambda p: start_nginx(p, args.server_cpus, args.workers, name="nginx-log-on",
                                                       log_reader_cpu=args.client_cpu)),
            ]
    names = [n for n, _ in starters]
    if args.ratios:
        ratios = parse_ratios(args.ratios, names, ap)
    elif args.compare == "logging":
        log_on = [f"log-on-{m}" for m in log_modes]
        ratios = [(n, "log-off") for n in log_on]
        if floor:
            ratios += [(n, "floor") for n in ["log-off"] + log_on]
        if args.nginx:
            ratios += [("nginx-log-on", "nginx-log-off"), ("log-off", "nginx-log-off")]
            ratios += [(n, "nginx-log-on") for n in log_on]
    else:
        ratios = [(names[0], peer) for peer in names[1:]]

    samples = {n: [] for n in names}
    for round_no in range(args.rounds):
        order = starters if round_no % 2 == 0 else list(reversed(starters))
        for name, start in order:
            server = start(free_port())
            try:
                print(f"round {round_no + 1}: {name}", file=sys.stderr, flush=True)
                measured = measure(server, loads, args.client_cpu, args.requests, args.duration, args.idle)
                samples[name].append(measured)
                cpu = ", ".join(f"{load} {measured[load]['cpu_us_per_req']:.2f}" for load in loads)
                print(f"round {round_no + 1}: {name}: CPU µs/request {cpu}", file=sys.stderr, flush=True)
            finally:
                server.stop()

    ab_loads = [load for load in loads if load.startswith("ab")]
    ab_counts = ", ".join(f"{load} {args.requests[load] or f'for {args.duration} s'}" for load in ab_loads)
    setup = [f"Medians of {args.rounds} rounds", f"{args.workers} worker(s)",
             f"servers on CPU {args.server_cpus}, load on CPU {args.client_cpu}"]
    if any(load.startswith("wrk") for load in loads):
        setup.append(f"wrk for {args.duration} s")
    if ab_counts:
        setup.append(f"ab: {ab_counts}")
    if args.compare == "logging" and "file" in log_modes:
        setup.append(f"the log file in {args.log_dir}")
    lines = ["; ".join(setup) + ". A/B = A's figure / B's, of the medians and (paired) the median of each "
             "round's ratio.", ""]
    lines += ratio_table(samples, names, ratios, loads, args.idle)
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


# Figures whose ratio means nothing (counts that should be 0): printed without one.
NO_RATIO = {"failed", "log_dropped"}


def ratio_table(samples, names, ratios, loads, idle):
    """The table's lines: a row per load and figure, each server's median, then for each ratio
    A/B the ratio of the medians and the paired ratio side by side."""
    def values(name, load, key):
        """The figure of each round, None where the round has none."""
        out = []
        for s in samples[name]:
            scope = s.get(load) if load else s
            out.append(scope.get(key) if scope else None)
        return out

    def median(name, load, key):
        present = [v for v in values(name, load, key) if v is not None]
        return statistics.median(present) if present else float("nan")

    def ratio_columns(num, den, load, key):
        """A/B of the medians, and paired: the median of the round-by-round ratios (the two were
        measured one after the other, so a slow minute of the shared machine weighs on both)."""
        if key in NO_RATIO:
            return ["", ""]
        a, b = median(num, load, key), median(den, load, key)
        rounds = [x / y for x, y in zip(values(num, load, key), values(den, load, key))
                  if x is not None and y and x == x and y == y]
        return [cell(a / b if b else float("nan"), ".2f"), cell(statistics.median(rounds) if rounds else float("nan"), ".2f")]

    def cell(v, fmt):
        return "" if v != v else format(v, fmt)

    def row(load, key, label):
        cells = [cell(median(n, load, key), ".3g") for n in names]
        for num, den in ratios:
            cells += ratio_columns(num, den, load, key)
        return f"| {load or 'all'} | {label} | " + " | ".join(cells) + " |"

    header = "| load | figure | " + " | ".join(names) + " | " + " | ".join(
        f"{a}/{b} | {a}/{b} paired" for a, b in ratios) + " |"
    lines = [header, "|" + "---|" * (2 + len(names) + 2 * len(ratios))]
    figures = [("rps", "requests/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("failed", "failed"),
               ("cpu_us_per_req", "server CPU µs/request")]
    for load in loads:
        for key, label in figures:
            lines.append(row(load, key, label))
    overall = [("peak_rss_kb", "peak RSS KiB")]
    if idle:
        overall.append(("idle_kib_per_conn", f"idle KiB/conn at {idle}"))
    if any("log_dropped" in s for n in names for s in samples[n]):
        overall.append(("log_dropped", "log lines dropped"))
    for key, label in overall:
        lines.append(row(None, key, label))
    return lines


def proxied(args):
    """responder and nginx (and an older responder, with --baseline) each as the backend of the
    same nginx proxy, in alternation."""
    backends = [
        ("responder", lambda p: start_responder("responder", p, args.server_cpus, args.workers, False)),
        ("nginx", lambda p: start_nginx(p, args.server_cpus, args.workers)),
    ]
    if args.baseline:
        backends.append(("baseline", lambda p: start_responder(
            "baseline", p, args.server_cpus, args.workers, False, binary=os.path.abspath(args.baseline))))
    samples = {n: [] for n, _ in backends}
    for round_no in range(args.rounds):
        order = backends if round_no % 2 == 0 else list(reversed(backends))
        for name, start in order:
            print(f"round {round_no + 1}: proxy -> {name}", file=sys.stderr, flush=True)
            samples[name].append(measure_proxied(name, start, args))
            time.sleep(1)
    count = args.requests["ab-k"]
    count = f"-n {count}" if count else f"-t {args.duration}"
    lines = [f"Medians of {args.rounds} rounds: ab -k -c {PROXY_POOL} {count} through nginx "
             f"(proxy_pass, keepalive {PROXY_POOL}, proxy_http_version 1.1) on CPU {args.client_cpu} with "
             f"the load; backends on CPU {args.server_cpus}.", "",
             "| backend | requests/s | p99 ms | failed | connections the backend accepted | TIME_WAIT on its port |",
             "|---|---|---|---|---|---|"]
    for name, _ in backends:
        med = {k: statistics.median(s[k] for s in samples[name])
               for k in ("rps", "p99_ms", "failed", "backend_accepts", "time_wait")}
        lines.append(f"| {name} | {med['rps']:.0f} | {med['p99_ms']:.3g} | {med['failed']:.0f} | "
                     f"{med['backend_accepts']:.0f} | {med['time_wait']:.0f} |")
    ratio = statistics.median(s["rps"] for s in samples["responder"]) / \
        statistics.median(s["rps"] for s in samples["nginx"])
    lines += ["", f"requests/s through the proxy, responder / nginx: {ratio:.2f}"]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
