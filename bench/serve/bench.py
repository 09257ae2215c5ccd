#!/usr/bin/env python3
"""Latency benchmark of `segmenta serve`: `GET /v1/entities/{id}` on the demo company, driven by
oha (https://github.com/hatoo/oha, `cargo install oha`) on loopback.

For each size it writes (once) and runs the demo project, creates a viewer token, starts
`segmenta serve --threads T` on a free loopback port and measures:

- the time until the server answers its first `/v1/segments` (loading the latest run) and its
  resident memory after that; with the live view (the default; `--no-live` leaves it off) the
  time until that is up too (`GET /v1/changes` reports it: one evaluation) and the memory then;
  its peak resident memory at the end (VmHWM);
- a fixed rate (default 5,000 requests per second) for a duration (default 60 s) against random
  entity ids (every id exists): p50 / p99 / p99.9 latency, the rate achieved, errors; oha's
  latency correction is on, so a stalled server cannot hide its queueing delay;
- the highest of a ladder of rates whose p99 stays under 10 ms (10 s per step).

The load generator runs on the same machine as the server (the two compete for the cores;
say so with the figures). Only the standard library is used besides oha.

Usage:
    python3 bench/serve/bench.py --segmenta "$CARGO_TARGET_DIR/release/segmenta" \
        [--accounts 100000,1000000] [--threads 2] [--rate 5000] [--seconds 60] [--no-live] [--workdir /tmp/sb] [--json out.json]
The load starts once the live view is up, so it measures a server with it, not one busy
making it. Exit status: 0 when every fixed-rate run had no error, 1 otherwise, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def demo(segmenta, root, accounts, threads):
    """The demo project with `accounts` accounts, written and run once (kept between runs)."""
    project = os.path.join(root, f"demo-{accounts}")
    if not os.path.isfile(os.path.join(project, ".segmenta", "latest")):
        if os.path.isdir(project):
            shutil.rmtree(project)
        print(f"writing and running the demo company with {accounts} accounts in {project}", file=sys.stderr)
        run([segmenta, "demo", project, "--accounts", str(accounts), "--threads", str(threads)])
    return project


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def oha(oha_bin, url_regex, token, rate, seconds, connections):
    """One oha run at a fixed rate; its JSON summary."""
    cmd = [oha_bin, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
           "-q", str(rate), "--latency-correction", "--rand-regex-url",
           "-H", f"Authorization: Bearer {token}", url_regex]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def summary(result):
    s = result["summary"]
    p = result["latencyPercentiles"]
    codes = result.get("statusCodeDistribution", {})
    # Requests still in flight when the duration ends are aborted by oha itself, not failed.
    failed = {e: n for e, n in result.get("errorDistribution", {}).items() if e != "aborted due to deadline"}
    errors = sum(failed.values()) + sum(n for c, n in codes.items() if c != "200")
    return {
        "requests_per_s": s["requestsPerSec"],
        "success_rate": s["successRate"],
        "p50_ms": p["p50"] * 1e3,
        "p99_ms": p["p99"] * 1e3,
        "p99_9_ms": p["p99.9"] * 1e3,
        "errors": errors,
    }


def bench_size(args, accounts):
    project = demo(args.segmenta, args.workdir, accounts, args.threads)
    token = run([args.segmenta, "token", "create", "--project", project, "--role", "viewer",
                 "--name", f"bench-{int(time.time() * 1000)}"]).stdout.strip()
    started = time.perf_counter()
    log = os.path.join(project, ".segmenta", "events", "ingested.jsonl")
    if os.path.exists(log):
        os.remove(log)  # only the demo's own events (bench/ingest posts to the same projects)
    server = subprocess.Popen([args.segmenta, "serve", "--project", project, "--listen", "127.0.0.1:0", "--json",
                               "--threads", str(args.threads)] + (["--no-live"] if args.no_live else []),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = json.loads(server.stdout.readline())["listening"]
        request = urllib.request.Request(f"http://{address}/v1/segments", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=600) as answer:
            answer.read()
        load_s = time.perf_counter() - started
        loaded_rss = rss_kib(server.pid, "VmRSS")
        live_s, live_rss = None, None
        if not args.no_live:
            changes = urllib.request.Request(f"http://{address}/v1/changes?limit=1",
                                             headers={"Authorization": f"Bearer {token}"})
            while True:
                with urllib.request.urlopen(changes, timeout=600) as answer:
                    if json.loads(answer.read())["live"] is not None:
                        break
                if time.perf_counter() - started > 3600:
                    raise SystemExit("the live view did not start within an hour")
                time.sleep(0.2)
            live_s, live_rss = time.perf_counter() - started, rss_kib(server.pid, "VmRSS")
        digits = len(str(accounts - 1))
        url = f"http://{address}/v1/entities/A" + "0" * (7 - digits) + f"[0-9]{{{digits}}}"
        if accounts != 10 ** digits:
            print(f"note: {accounts} is not a power of ten; some ids in the regex do not exist", file=sys.stderr)
        oha(args.oha, url, token, args.rate, 5, args.connections)  # warm-up
        fixed = summary(oha(args.oha, url, token, args.rate, args.seconds, args.connections))
        ladder = []
        for rate in args.ladder:
            step = summary(oha(args.oha, url, token, rate, 10, args.connections))
            ladder.append({"rate": rate, **step})
            if step["p99_ms"] >= 10 or step["errors"] > 0:
                break
        sustained = max((s["rate"] for s in ladder if s["p99_ms"] < 10 and s["errors"] == 0), default=None)
        peak_rss = rss_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"accounts": accounts, "threads": args.threads, "connections": args.connections, "load_s": load_s,
            "loaded_rss_mib": loaded_rss / 1024, "live_s": live_s,
            "live_rss_mib": live_rss / 1024 if live_rss else None, "peak_rss_mib": peak_rss / 1024,
            "fixed_rate": args.rate, "seconds": args.seconds, "fixed": fixed,
            "ladder": ladder, "highest_rate_p99_under_10ms": sustained}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segmenta", required=True, help="the segmenta binary (build it with --profile bench)")
    ap.add_argument("--oha", default=shutil.which("oha") or "oha", help="the oha binary")
    ap.add_argument("--accounts", default="100000,1000000", help="comma-separated sizes (powers of ten)")
    ap.add_argument("--threads", type=int, default=2, help="the server's engine threads")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rate", type=int, default=5000, help="the fixed rate, requests per second")
    ap.add_argument("--seconds", type=int, default=60, help="how long the fixed rate runs")
    ap.add_argument("--ladder", default="5000,10000,15000,20000,30000,40000",
                    help="rates tried in turn (10 s each) for the highest with p99 under 10 ms")
    ap.add_argument("--no-live", action="store_true", help="serve without the live view")
    ap.add_argument("--workdir", default="/tmp/segmenta-serve-bench", help="where the demo projects go (kept)")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    try:
        sizes = [int(a) for a in args.accounts.split(",")]
        args.ladder = [int(r) for r in args.ladder.split(",")]
    except ValueError:
        print("--accounts and --ladder are comma-separated whole numbers", file=sys.stderr)
        return 2
    if shutil.which(args.oha) is None and not os.path.isfile(args.oha):
        print(f"no oha at `{args.oha}`: `cargo install oha`, or pass --oha PATH", file=sys.stderr)
        return 2
    os.makedirs(args.workdir, exist_ok=True)
    results = []
    for accounts in sizes:
        r = bench_size(args, accounts)
        results.append(r)
        f = r["fixed"]
        live = f"live view up at {r['live_s']:.1f} s (RSS {r['live_rss_mib']:.0f} MiB)  " if r["live_s"] else ""
        print(f"{accounts:>9} accounts  threads {r['threads']}  load {r['load_s']:.1f} s  {live}"
              f"RSS {r['loaded_rss_mib']:.0f} MiB (peak {r['peak_rss_mib']:.0f})  "
              f"{args.rate}/s for {args.seconds} s: achieved {f['requests_per_s']:.0f}/s  "
              f"p50 {f['p50_ms']:.2f} ms  p99 {f['p99_ms']:.2f} ms  p99.9 {f['p99_9_ms']:.2f} ms  errors {f['errors']}  "
              f"highest rate with p99 < 10 ms: {r['highest_rate_p99_under_10ms']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0 if all(r["fixed"]["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
