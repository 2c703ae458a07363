#!/usr/bin/env python3
"""Draws the built-in error pages in a real browser (Debian's headless `chromium`) and fails when
one scrolls sideways at 360 px, when any of its text lacks WCAG AA contrast (4.5:1) against the
background drawn behind it, or when it asks for anything over the network.

It starts the real binary on 127.0.0.1 port 0 once per theme, with and without
`[error_pages] show_details`, fetches a 404 (details on, a long hostile `X-Original-URI`) and a
503 in every language, and then:
- measures every page at 360x740 and 1280x800, light and dark, through measure.js in a harness
  page of iframes (a headless window is never narrower than 500 px; an iframe is), under a net
  log that must record no request, with every host name resolving nowhere;
- screenshots each theme's English 404 and 503 at both sizes in both schemes (`--out`), and
  copies the default theme's into `--docs` when given.
It prints the lowest contrast of each theme and scheme. Every step is bounded in time.

    python3 tests/browser/check.py [--binary target/debug/responder] [--out DIR] [--docs DIR]
"""

import argparse
import http.client
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THEMES = ["card", "plain", "mono"]
DEFAULT_THEME = "card"
LANGUAGES = ["en", "de", "fr", "es", "pt", "ja", "zh"]
SIZES = [(360, 740), (1280, 800)]
SCHEMES = ["light", "dark"]
AA = 4.5
CHROMIUM_SECONDS = 90
HOSTILE_URI = "/shop/" + "a-long-path-segment-without-a-break" * 3 + "/<script>alert(1)</script>"
DETAILS = {
    "X-Request-ID": "0af7651916cd43dd8448eb211c80319c",
    "X-Original-URI": HOSTILE_URI,
    "X-Namespace": "shop",
    "X-Ingress-Name": "web",
    "X-Service-Name": "cart",
}
# A page that breaks every rule, measured beside the others: the checks must catch it, or they
# could not fail.
CANARY = """<!DOCTYPE html><html><head><title>canary</title>
<style>body{background:#888 url(http://canary.invalid/bg.png);color:#777}</style></head>
<body><div style="width:600px">low contrast, too wide</div></body></html>
"""
CANARY_URL = "http://canary.invalid/bg.png"
# Markup or CSS that would fetch something.
FETCHING = re.compile(
    r"<(script|link|img|iframe|object|embed|video|audio|source|svg|base|form)\b|"
    r"\b(src|href|srcset|action|poster)\s*=|url\(|@import|https?:|wss?:",
    re.IGNORECASE,
)


def chromium(*args):
    base = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]
    return subprocess.run(
        base + list(args),
        capture_output=True,
        text=True,
        timeout=CHROMIUM_SECONDS,
        check=False,
    )


def scheme_flag(scheme):
    # Blink's preferred colour scheme: 0 dark, 1 light.
    return "--blink-settings=preferredColorScheme=" + ("0" if scheme == "dark" else "1")


class Server:
    """The real binary on 127.0.0.1 port 0, in error-page mode."""

    def __init__(self, binary, workdir, theme, details):
        config = Path(workdir) / f"{theme}-{details}.toml"
        config.write_text(
            f'[error_pages]\nenabled = true\ntheme = "{theme}"\nshow_details = {str(details).lower()}\n'
        )
        self.proc = subprocess.Popen(
            [binary, "--config", str(config), "--listen", "127.0.0.1:0", "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 10
        self.addr = None
        while self.addr is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                sys.exit(f"{binary} did not announce its address within 10 s")
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                sys.exit(f"{binary} exited before listening")
            if '"listening"' in line:
                self.addr = json.loads(line).get("addr")
        host, port = self.addr.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def get(self, headers):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", "/", headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fetch_pages(binary, workdir):
    """Every theme's 404 (with details) and 503 in every language, as files: name -> path."""
    pages = {}
    failures = []
    for theme in THEMES:
        for details, code in [(True, 404), (False, 503)]:
            server = Server(binary, workdir, theme, details)
            try:
                for lang in LANGUAGES:
                    headers = {"X-Code": str(code), "Accept-Language": f"{lang};q=0.9, nl;q=0.5"}
                    if details:
                        headers.update(DETAILS)
                    status, head, body = server.get(headers)
                    name = f"{theme}-{code}-{lang}"
                    text = body.decode("utf-8")
                    if status != code or head.get("Content-Language") != lang:
                        failures.append(f"{name}: status {status}, Content-Language {head.get('Content-Language')}")
                    if details and "&lt;script&gt;" not in text:
                        failures.append(f"{name}: the hostile X-Original-URI is not escaped")
                    found = FETCHING.search(text)
                    if found:
                        failures.append(f"{name}: holds {found.group(0)!r}, which would fetch")
                    path = Path(workdir) / f"{name}.html"
                    path.write_text(text, encoding="utf-8")
                    pages[name] = path
            finally:
                server.stop()
    return pages, failures


def measure(pages, workdir, scheme):
    (Path(workdir) / "canary.html").write_text(CANARY)
    pages = dict(pages, canary=Path(workdir) / "canary.html")
    frames = "".join(
        f'<iframe data-page="{name}" src="{path.name}" width="{w}" height="{h}"></iframe>\n'
        for name, path in sorted(pages.items())
        for w, h in SIZES
    )
    harness = Path(workdir) / f"harness-{scheme}.html"
    script = (Path(__file__).parent / "measure.js").read_text()
    harness.write_text(
        f"<!DOCTYPE html><html><body>{frames}<pre id=\"results\"></pre>"
        f"<script>{script}</script></body></html>"
    )
    netlog = Path(workdir) / f"netlog-{scheme}.json"
    run = chromium(
        "--allow-file-access-from-files",
        "--window-size=1400,900",
        scheme_flag(scheme),
        f"--log-net-log={netlog}",
        "--dump-dom",
        harness.as_uri(),
    )
    found = re.search(r'<pre id="results">(.*?)</pre>', run.stdout, re.DOTALL)
    if not found or not found.group(1):
        sys.exit(f"chromium gave no measurements ({scheme}): {run.stderr[-2000:]}")
    raw = found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return json.loads(raw), netlog


def network_requests(netlog):
    """The URLs the pages (file:// documents) asked the network for, from the browser's net log;
    the browser's own background requests are left out."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log.get("events", []):
        params = event.get("params", {})
        if event.get("type") == start_job and params.get("network_isolation_key", "").startswith("file://"):
            urls.add(params.get("url", ""))
    return urls


def screenshot(path, scheme, size, out):
    w, h = size
    run = chromium(f"--window-size={w},{h}", scheme_flag(scheme), f"--screenshot={out}", path.as_uri())
    if not out.exists():
        return f"{out.name}: no screenshot ({run.stderr[-500:]})"
    data = out.read_bytes()
    got = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    if data[:8] != b"\x89PNG\r\n\x1a\n" or got != (w, h):
        return f"{out.name}: a {got} image, not {w}x{h}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/debug/responder")
    parser.add_argument("--out", help="where the screenshots go (default: a temporary directory)")
    parser.add_argument("--docs", help="where the default theme's screenshots are copied")
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    failures = []
    with tempfile.TemporaryDirectory(prefix="responder-browser-") as workdir:
        pages, fetched = fetch_pages(os.path.abspath(args.binary), workdir)
        failures += fetched
        lowest = {}
        for scheme in SCHEMES:
            results, netlog = measure(pages, workdir, scheme)
            if len(results) != (len(pages) + 1) * len(SIZES):
                failures.append(f"{scheme}: {len(results)} pages measured of {(len(pages) + 1) * len(SIZES)}")
            urls = network_requests(netlog)
            if CANARY_URL not in urls:
                failures.append(f"{scheme}: the net log missed the canary's request: {sorted(urls)}")
            if urls - {CANARY_URL}:
                failures.append(f"{scheme}: the pages asked the network for {sorted(urls - {CANARY_URL})}")
            for r in [r for r in results if r["page"] == "canary"]:
                caught = (
                    r.get("scrollWidth", 0) > r.get("clientWidth", 0) or str(r["width"]) != "360",
                    any(t["ratio"] < AA for t in r.get("texts", [])),
                    CANARY_URL in r.get("resources", []),
                )
                if not all(caught):
                    failures.append(f"canary at {r['width']} px, {scheme}: caught only {caught}: {r}")
            for r in [r for r in results if r["page"] != "canary"]:
                where = f"{r['page']} at {r['width']} px, {scheme}"
                if "error" in r:
                    failures.append(f"{where}: {r['error']}")
                    continue
                if r["dark"] != (scheme == "dark"):
                    failures.append(f"{where}: drawn in the other colour scheme")
                if not r["title"]:
                    failures.append(f"{where}: no title")
                if r["scrollWidth"] > r["clientWidth"]:
                    failures.append(f"{where}: scrolls sideways ({r['scrollWidth']} px wide in {r['clientWidth']})")
                if r["resources"]:
                    failures.append(f"{where}: asked for {r['resources']}")
                if not r["texts"]:
                    failures.append(f"{where}: no text measured")
                theme = r["page"].split("-")[0]
                for t in r["texts"]:
                    key = (theme, scheme, t["what"])
                    lowest[key] = min(t["ratio"], lowest.get(key, t["ratio"]))
                    if t["ratio"] < AA:
                        failures.append(f"{where}: {t['what']} has contrast {t['ratio']:.2f}:1, under {AA}:1")
        out = Path(args.out) if args.out else Path(workdir) / "shots"
        out.mkdir(parents=True, exist_ok=True)
        for theme in THEMES:
            for code in [404, 503]:
                for size in SIZES:
                    for scheme in SCHEMES:
                        shot = out / f"{theme}-{code}-{size[0]}x{size[1]}-{scheme}.png"
                        failure = screenshot(pages[f"{theme}-{code}-en"], scheme, size, shot)
                        if failure:
                            failures.append(failure)
                        elif args.docs and theme == DEFAULT_THEME:
                            Path(args.docs).mkdir(parents=True, exist_ok=True)
                            shutil.copy(shot, Path(args.docs) / shot.name)
        print("lowest contrast of each text, over every page (WCAG AA needs 4.5:1):")
        for theme in THEMES:
            for scheme in SCHEMES:
                texts = sorted((r, w) for (t, s, w), r in lowest.items() if (t, s) == (theme, scheme))
                shown = ", ".join(f"{w} {r:.2f}" for r, w in texts)
                print(f"  {theme:5} {scheme:5} {shown}")
        print(f"{len(pages)} pages measured at {len(SIZES)} sizes in {len(SCHEMES)} schemes; screenshots in {out}")
    if failures:
        print("FAILED:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("browser checks passed")


if __name__ == "__main__":
    main()
