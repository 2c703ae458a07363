#!/usr/bin/env python3
"""Clients that leave without a request, against responder, nginx and the article's servers.

    python3 bench/leavers.py                 # 50 leavers, CPU watched for 3 s
    python3 bench/leavers.py --leavers 500

The article's Example 4 (edge-triggered) hangs at 100% CPU once a client closes without sending a
request: `recv` returns b'' instead of raising, and its read loop never ends. Example 3
(level-triggered) spins a core on such a socket, which stays readable. For each server, pinned to
CPU 0 with the clients on CPU 1, this script: checks it answers; connects --leavers clients that
close at once without a word; watches the server's CPU for --watch seconds; asks one request (2 s
to answer); then runs `ab -c 10 -n 2000` (20 s at most). On 127.0.0.1 only; every server is
stopped (SIGTERM, then SIGKILL) by its PID. Exits 1 if responder spins or fails to serve.
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (CLK_TCK, ROOT, answers, cpu_ticks, ensure_tools, free_port,  # noqa: E402
                   start_nginx, start_python, start_responder)


def leave(port, count):
    for _ in range(count):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def ab_after(port, cpu):
    try:
        out = subprocess.run(["taskset", "-c", str(cpu), "ab", "-q", "-c", "10", "-n", "2000", "-s", "5",
                              f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=20).stdout
    except subprocess.TimeoutExpired:
        return "no answer in 20 s"
    complete = next((l.split()[-1] for l in out.splitlines() if l.startswith("Complete requests")), None)
    failed = next((l.split()[-1] for l in out.splitlines() if l.startswith("Failed requests")), None)
    return f"{complete} complete, {failed} failed" if complete else "ab gave up"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leavers", type=int, default=50)
    ap.add_argument("--watch", type=float, default=3.0, help="seconds of CPU watched after the leavers")
    args = ap.parse_args()
    ensure_tools()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    servers = [
        ("responder", lambda p: start_responder("responder", p, 0, 1, False)),
        ("nginx", lambda p: start_nginx(p, 0, 1)),
        ("python-ex3", lambda p: start_python(p, 0, 3)),
        ("python-ex4", lambda p: start_python(p, 0, 4)),
    ]
    rows = []
    for name, start in servers:
        port = free_port()
        server = start(port)
        try:
            pids = server.pids()
            leave(port, args.leavers)
            time.sleep(0.5)
            before = cpu_ticks(pids)
            time.sleep(args.watch)
            cpu = (cpu_ticks(pids) - before) / CLK_TCK / args.watch
            try:
                served = "yes" if answers(port, timeout=2) else "a wrong answer"
            except OSError as e:
                served = f"no ({e.__class__.__name__})"
            rows.append((name, cpu, served, ab_after(port, 1)))
        finally:
            server.stop()
    print(f"\n{args.leavers} clients connect and close without a request; then one request, then ab -c 10 -n 2000\n")
    print("| server | CPU after the leavers (share of a core) | answers afterwards | ab -c 10 -n 2000 afterwards |")
    print("|---|---|---|---|")
    for name, cpu, served, ab in rows:
        print(f"| {name} | {cpu:.0%} | {served} | {ab} |")
    responder = rows[0]
    ok = responder[1] < 0.05 and responder[2] == "yes" and responder[3].startswith("2000 complete, 0 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
