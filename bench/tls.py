#!/usr/bin/env python3
"""responder's TLS listener against nginx's (OpenSSL), the same ECDSA P-256 certificate, on
127.0.0.1 only.

    python3 bench/tls.py                     # 3 rounds, 1 worker each, the server on core 0
    python3 bench/tls.py --rounds 5 --markdown bench/tls-latest.md

Six figures per server, each the median over the rounds (servers alternate within a round, as
bench.py does), with the ratio of the medians and the paired ratio (the median of each round's
ratio, whose two sides ran one after the other):
- full TLS 1.3 handshakes per second, a new connection per request (`ab` over https, no
  keep-alive, so no session is resumed), and the server's CPU per handshake: one `ab` on one core
  does as much work per handshake as the server, so the rate is the client's ceiling and the CPU
  is the server's cost (1e6 / that CPU is what one server core sustains);
- server CPU per request on keep-alive connections over TLS (`wrk -c100` over https);
- resumed handshakes per second (`openssl s_time -reuse -tls1_2`: one session, resumed per
  connection),
  and the server's CPU per resumed handshake;
- KiB per idle TLS connection after its handshake (RSS with that many open, less RSS without);
- with `--server-quota Q`, full handshakes per second again, each server capped at Q of a core
  (a cgroup v1 `cpu` group, the same quota for both, removed after the load): one `ab` on one
  core cannot outpace a server that has a whole core, so only a server held below the client's
  speed makes the rate the server's. Q must be low enough that neither server reaches the
  client's ceiling: at 0.3 of a core responder still did on the 2-core machine of RESULTS.md.
Each server also listens in plain on another port, which bench.py's start-up check uses. The
tools come from Debian's packages (apache2-utils, wrk, nginx-light, openssl).
"""
import argparse
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the servers, the loads' parsers, the CPU and memory readings)


def make_certificate(directory):
    """An ECDSA P-256 certificate for localhost and 127.0.0.1, and its key."""
    cert, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def start_responder(port, tls_port, cpu, cert, key):
    extra = f'tls_listen = "127.0.0.1:{tls_port}"\n[tls]\ncert = "{cert}"\nkey = "{key}"\n'
    server = bench.start_responder("responder", port, cpu, 1, False, extra_config=extra)
    server.tls_port = tls_port
    return server


def start_nginx(port, tls_port, cpu, cert, key):
    block = f"""
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        listen 127.0.0.1:{tls_port} ssl backlog=1024;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
        location / {{ default_type text/plain; return 200 "{bench.BODY}"; }}
    }}"""
    server = bench.start_nginx(port, cpu, 1, server_block=block)
    server.tls_port = tls_port
    return server


CGROUP_CPU = "/sys/fs/cgroup/cpu"


class CpuQuota:
    """Every thread of `server` in a cgroup v1 `cpu` group of its own, capped at `cores` of CPU
    while the `with` block runs; the group is removed after it, whatever happened."""

    def __init__(self, server, cores):
        self.server, self.cores = server, cores
        self.path = os.path.join(CGROUP_CPU, f"bench-tls-{os.getpid()}-{server.name}")

    def __enter__(self):
        os.mkdir(self.path)
        try:
            with open(os.path.join(CGROUP_CPU, "cpu.cfs_period_us")) as f:
                period = int(f.read())
            with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
                f.write(str(period))
            with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(max(1000, int(self.cores * period))))
            # `cgroup.procs` moves all of a process's threads; threads started later follow.
            for pid in self.server.pids():
                with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def remove(self):
        # A group is removed only once empty: its processes go back to the root group.
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
        except OSError:
            pids = []
        for pid in pids:
            try:
                with open(os.path.join(CGROUP_CPU, "cgroup.procs"), "w") as f:
                    f.write(pid)
            except OSError:
                pass  # the process ended meanwhile
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


def cpu_of(server, run):
    """What `run()` returns, with the server's CPU microseconds per request beside it."""
    ticks = bench.cpu_ticks(server.pids())
    result = run()
    used = bench.cpu_ticks(server.pids()) - ticks
    result["cpu_us_per_req"] = used / bench.CLK_TCK * 1e6 / result["requests"] if result["requests"] else 0.0
    return result


def taskset(cpu, argv, timeout):
    done = subprocess.run(["taskset", "-c", str(cpu)] + argv, capture_output=True, text=True,
                          preexec_fn=bench.raise_fd_limit, timeout=timeout)
    if done.returncode:
        print(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return done.stdout


def full_handshakes(server, cpu, requests):
    url = f"https://127.0.0.1:{server.tls_port}/"
    out = taskset(cpu, ["ab", "-q", "-f", "TLS1.3", "-c", "50", "-n", str(requests), url], 600)
    return bench.parse_ab(out)


def keep_alive(server, cpu, duration):
    url = f"https://127.0.0.1:{server.tls_port}/"
    return cpu_of(server, lambda: bench.parse_wrk(
        taskset(cpu, ["wrk", "-t1", "-c100", f"-d{duration}s", "--latency", url], duration * 10 + 60)))


def resumed_handshakes(server, cpu, duration):
    # TLS 1.2: s_time closes each connection before a TLS 1.3 ticket arrives, so only a 1.2
    # session is resumed.
    out = taskset(cpu, ["openssl", "s_time", "-connect", f"127.0.0.1:{server.tls_port}", "-reuse",
                        "-tls1_2", "-time", str(duration)], duration * 10 + 60)
    # "N connections in T real seconds": the rate the server sustained.
    for line in out.splitlines():
        words = line.split()
        if "connections" in words and "real" in words:
            count, seconds = float(words[0]), float(words[words.index("in") + 1])
            return {"requests": count, "rps": count / seconds if seconds else 0.0}
    return {"requests": 0.0, "rps": 0.0}


def idle_tls_memory(server, count):
    """KiB per idle connection whose handshake is done: RSS with `count` open, less without."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    before = bench.status_kb(server.pids(), "VmRSS")
    conns = []
    try:
        for i in range(count):
            raw = socket.socket()
            raw.setsockopt(socket.SOL_IP, bench.IP_BIND_ADDRESS_NO_PORT, 1)
            raw.bind((f"127.0.0.{2 + i // 20_000}", 0))
            raw.settimeout(10)
            raw.connect(("127.0.0.1", server.tls_port))
            conns.append(context.wrap_socket(raw, server_hostname="localhost"))
        time.sleep(1.0)
        after = bench.status_kb(server.pids(), "VmRSS")
    except OSError as e:
        print(f"{server.name}: idle TLS connections failed after {len(conns)}: {e}", file=sys.stderr)
        return float("nan")
    finally:
        for c in conns:
            c.close()
    return (after - before) / count


FIGURES = {
    "full_hs_per_s": "full TLS 1.3 handshakes per second",
    "full_hs_cpu_us": "server CPU µs per full handshake (and its request)",
    "ka_cpu_us": "server CPU µs per keep-alive request over TLS",
    "resumed_per_s": "resumed TLS 1.2 handshakes per second",
    "resumed_cpu_us": "server CPU µs per resumed TLS 1.2 handshake",
    "idle_kib": "KiB per idle TLS connection",
    "capped_hs_per_s": "full TLS 1.3 handshakes per second, the server capped at {quota} core",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="the responder binary (default: this tree's release build)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=5000, help="ab -n, full handshakes")
    ap.add_argument("--duration", type=int, default=5, help="wrk -d and s_time -time, seconds")
    ap.add_argument("--idle", type=int, default=2000, help="idle TLS connections (0: skip)")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--server-quota", type=float, default=0.0,
                    help="also measure full handshakes with each server capped at this much of a "
                         "core (cgroup v1 cpu controller; 0: skip)")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()
    if args.server_quota and not os.access(CGROUP_CPU, os.W_OK):
        ap.error(f"--server-quota needs a writable {CGROUP_CPU} (cgroup v1 cpu controller)")
    # A SIGTERM unwinds like ^C, so that the servers stop and a CPU group is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.binary:
        bench.RESPONDER_BINARY[0] = os.path.abspath(args.binary)
    bench.ensure_tools()
    bench.raise_fd_limit()
    if not os.path.exists(bench.RESPONDER_BINARY[0]):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=bench.ROOT, check=True)
    directory = tempfile.mkdtemp(prefix="bench-tls-")
    cert, key = make_certificate(directory)
    starters = {"responder": start_responder, "nginx": start_nginx}
    figures = {name: {key_: [] for key_ in FIGURES} for name in starters}
    try:
        for round_ in range(args.rounds):
            order = list(starters) if round_ % 2 == 0 else list(reversed(starters))
            for name in order:
                server = starters[name](bench.free_port(), bench.free_port(), args.server_cpu, cert, key)
                try:
                    f = figures[name]
                    full = cpu_of(server, lambda: full_handshakes(server, args.client_cpu, args.requests))
                    f["full_hs_per_s"].append(full["rps"])
                    f["full_hs_cpu_us"].append(full["cpu_us_per_req"])
                    f["ka_cpu_us"].append(keep_alive(server, args.client_cpu, args.duration)["cpu_us_per_req"])
                    resumed = cpu_of(server, lambda: resumed_handshakes(server, args.client_cpu, args.duration))
                    f["resumed_per_s"].append(resumed["rps"])
                    f["resumed_cpu_us"].append(resumed["cpu_us_per_req"])
                    if args.idle:
                        f["idle_kib"].append(idle_tls_memory(server, args.idle))
                    if args.server_quota:
                        with CpuQuota(server, args.server_quota):
                            capped = full_handshakes(server, args.client_cpu, args.requests)
                        f["capped_hs_per_s"].append(capped["rps"])
                finally:
                    server.stop()
    finally:
        subprocess.run(["rm", "-rf", directory])
    rows = ["| figure | responder | nginx | responder / nginx | paired |", "|---|---|---|---|---|"]
    for key_, label in FIGURES.items():
        if not figures["responder"][key_] and not figures["nginx"][key_]:
            continue
        label = label.format(quota=args.server_quota)
        r = statistics.median(figures["responder"][key_]) if figures["responder"][key_] else float("nan")
        n = statistics.median(figures["nginx"][key_]) if figures["nginx"][key_] else float("nan")
        pairs = [a / b for a, b in zip(figures["responder"][key_], figures["nginx"][key_]) if b]
        paired = statistics.median(pairs) if pairs else float("nan")
        rows.append(f"| {label} | {r:.1f} | {n:.1f} | {r / n if n else float('nan'):.2f}x "
                    f"| {paired:.2f}x |")
    table = "\n".join(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(table + "\n")


if __name__ == "__main__":
    main()
