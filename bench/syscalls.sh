#!/usr/bin/env bash
# Syscalls per request, counted with `strace -c -f` on the server (responder, then nginx) while
# `ab` sends a load, on 127.0.0.1 only:
#   keep-alive (ab -k -c 100): the floor is one read and one write per request;
#   a connection per request (ab -c 100): accept4, read, write, close.
# Usage: bash bench/syscalls.sh [REQUESTS]   (default 20000; needs root for strace -p)
#        WORKERS=2 bash bench/syscalls.sh     responder with 2 event loops (nginx keeps 1)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
for tool in strace ab nginx; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace apache2-utils nginx-light >/dev/null
    break
  }
done
[ -x target/release/responder ] || cargo build --release --locked

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

count() { # name pid port
  local name=$1 pid=$2 p=$3
  for mode in keep-alive per-connection; do
    local flags=(-q -c 100 -n "$n"); [ "$mode" = keep-alive ] && flags+=(-k)
    strace -c -f -p "$pid" -o "$work/$name-$mode.txt" 2>/dev/null & local st=$!
    sleep 0.5
    ab "${flags[@]}" "http://127.0.0.1:$p/" | grep -E "^Failed requests" | sed "s/^/$name $mode: /"
    kill -INT "$st"; wait "$st" 2>/dev/null || true
    echo "$name $mode: syscalls per request"
    awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-12s %6.3f\n", $NF, $4 / n }' "$work/$name-$mode.txt"
    awk -v n="$n" '$NF == "total" { printf "  %-12s %6.3f\n", "total", $4 / n }' "$work/$name-$mode.txt"
  done
}

p=$(port)
printf 'access_log = false\n' > "$work/responder.toml"
target/release/responder --config "$work/responder.toml" --listen "127.0.0.1:$p" --workers "${WORKERS:-1}" --log-format json >/dev/null &
pids+=($!); sleep 0.5
count responder "${pids[-1]}" "$p"

p=$(port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000;
  server { listen 127.0.0.1:$p backlog=1024; location / { default_type text/plain; return 200 "Hello, world!"; } } }
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!); sleep 0.5
worker=$(pgrep -P "${pids[-1]}" | head -n 1)
count nginx "$worker" "$p"
