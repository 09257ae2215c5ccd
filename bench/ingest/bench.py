#!/usr/bin/env python3
"""Ingest benchmark of `segmenta serve`: `POST /v1/events` on the demo company, and how long a
batch takes to show in memberships (the live view, no run).

For each size it writes (once) and runs the demo project, creates an editor token and measures:

- one full `segmenta run` (the reference: the issue's target is 1% of it);
- batches of 10,000 login events (`--batches`, default 10) posted one after another to a
  server started with `--no-live`, each acknowledged only once it is on disk (fsync): the
  latency of each POST (p50, max) and the events per second it sustains, and the bytes the
  event log grows per event;
- a server with memberships that follow events (the default): how long its live view takes to
  start (one evaluation, from the server's start until `GET /v1/changes` reports it), then
  `--live-batches` batches of 10,000 events (20 for a probe account), each timed from the
  POST's answer until `GET /v1/changes` says every posted event is in the view and
  `GET /v1/entities/{probe}` shows the 20 logins: the median against the full run's time
  (logins touch only their accounts: those alone are evaluated again);
- then `--invoice-batches` batches (default 1) of 10,000 `invoice_paid` events of 100 each,
  posted as two requests of 5,000 (an amount each: the body limit is 1 MiB), timed from the
  second answer until the probe's `revenue_365d` shows them: invoices move RFM values and
  CLV inputs, which rank and fit every account, so such a batch is evaluated for every account;
- the servers' peak resident memory (VmHWM).

The client runs on the same machine as the server (the two compete for the cores). Only the
standard library is used.

Usage:
    python3 bench/ingest/bench.py --segmenta "$CARGO_TARGET_DIR/release/segmenta" \\
        [--accounts 100000] [--threads 2] [--batches 10] [--live-batches 3] [--invoice-batches 1]
        [--workdir /tmp/sib] [--json out.json]
Exit status: 0 when every batch was accepted whole and every live batch showed, 1 otherwise, 2
on a usage problem.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("serve_bench", os.path.join(HERE, "..", "serve", "bench.py"))
serve_bench = importlib.util.module_from_spec(_spec)  # bench/serve/bench.py: the demo project, the process helpers
_spec.loader.exec_module(serve_bench)
run, demo, rss_kib = serve_bench.run, serve_bench.demo, serve_bench.rss_kib

AS_OF_DAY = "2025-12-30"  # the demo's `as_of` is 2025-12-31: these logins are in its last 30 days


def account(n, accounts):
    return "A" + str(n).zfill(max(7, len(str(accounts - 1))))


def post(address, token, body):
    request = urllib.request.Request(f"http://{address}/v1/events", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        report = json.loads(answer.read())
    return time.perf_counter() - started, report


def get(address, token, path):
    request = urllib.request.Request(f"http://{address}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.loads(answer.read())


def batch(ids, minute, tag, kind="login"):
    at = f"{AS_OF_DAY}T{(minute // 60) % 24:02d}:{minute % 60:02d}:00Z"
    extra = {"amount": INVOICE} if kind == "invoice_paid" else {}
    events = [{"account_id": i, "ts": at, "event_type": kind, **extra} for i in ids]
    return json.dumps({"batch": tag, "events": events}).encode()


INVOICE = 100.0  # the amount of each posted invoice


def reflected_after(address, token, accounts, rng, tag, minute, kind, trait, rise, patience_s):
    """Posts a batch of 10,000 `kind` events (20 of them for a probe account) and times it from
    the answer until the live view holds it and the probe's `trait` rose by `rise`: (seconds or
    None, accepted)."""
    probe = account(rng.randrange(accounts), accounts)
    before = get(address, token, f"/v1/entities/{probe}")["values"].get(trait) or 0
    ids = [probe] * 20 + [account(rng.randrange(accounts), accounts) for _ in range(10_000 - 20)]
    # Invoices carry an amount: two requests of 5,000 keep each under the 1 MiB body limit.
    parts = 2 if kind == "invoice_paid" else 1
    accepted = 0
    for part in range(parts):
        chunk = ids[part * len(ids) // parts:(part + 1) * len(ids) // parts]
        _, report = post(address, token, batch(chunk, minute, f"{tag}-{part}", kind))
        accepted += report["accepted"]
    posted = time.perf_counter()
    while time.perf_counter() - posted < patience_s:
        live = get(address, token, "/v1/changes?limit=1")["live"]
        if live and live["through"] == live["events_posted"]:
            entity = get(address, token, f"/v1/entities/{probe}")
            if (entity["values"].get(trait) or 0) >= before + rise - 1e-6:
                return time.perf_counter() - posted, accepted
        time.sleep(0.01)
    return None, accepted


def serve(args, project, live):
    cmd = [args.segmenta, "serve", "--project", project, "--listen", "127.0.0.1:0", "--json",
           "--threads", str(args.threads)]
    if not live:
        cmd += ["--no-live"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = json.loads(server.stdout.readline())["listening"]
    return server, address


def bench_size(args, accounts):
    project = demo(args.segmenta, args.workdir, accounts, args.threads)
    log = os.path.join(project, ".segmenta", "events", "ingested.jsonl")
    if os.path.exists(log):
        os.remove(log)  # every measurement starts from the demo's own events
    token = run([args.segmenta, "token", "create", "--project", project, "--role", "editor",
                 "--name", f"bench-{int(time.time() * 1000)}"]).stdout.strip()
    started = time.perf_counter()
    run([args.segmenta, "run", "--project", project, "--threads", str(args.threads)])
    full_run_s = time.perf_counter() - started
    rng = random.Random(7)

    # Throughput: batches of 10,000 events, without the live view.
    server, address = serve(args, project, live=False)
    try:
        get(address, token, "/v1/segments")
        latencies, accepted = [], 0
        for b in range(args.batches):
            ids = [account(rng.randrange(accounts), accounts) for _ in range(10_000)]
            seconds, report = post(address, token, batch(ids, b, f"throughput-{b}"))
            latencies.append(seconds)
            accepted += report["accepted"]
        peak_post = rss_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=60)
    log_bytes = os.path.getsize(log)

    # The live view: its start, then batches folded in without a run.
    started = time.perf_counter()
    server, address = serve(args, project, live=True)
    try:
        deadline = started + 3 * full_run_s + 120
        while True:
            live = get(address, token, "/v1/changes?limit=1")["live"]
            if live is not None:
                break
            if time.perf_counter() > deadline:
                raise SystemExit("the live view did not start")
            time.sleep(0.1)
        live_start_s = time.perf_counter() - started
        reflected, accepted_live = [], 0
        for b in range(args.live_batches):
            seen, taken = reflected_after(address, token, accounts, rng, f"live-{b}", 30 + b, "login",
                                          "logins_30d", 20, full_run_s + 60)
            reflected.append(seen)
            accepted_live += taken
        invoices = []
        for b in range(args.invoice_batches):
            seen, taken = reflected_after(address, token, accounts, rng, f"invoices-{b}", 90 + b,
                                          "invoice_paid", "revenue_365d", 20 * INVOICE, 2 * full_run_s + 60)
            invoices.append(seen)
            accepted_live += taken
        peak = max(peak_post, rss_kib(server.pid, "VmHWM"))
    finally:
        server.terminate()
        server.wait(timeout=60)
    shown = [r for r in reflected if r is not None]
    reflected_s = statistics.median(shown) if len(shown) == len(reflected) and shown else None
    return {
        "accounts": accounts, "threads": args.threads, "batches": args.batches, "batch_events": 10_000,
        "accepted": accepted, "post_p50_ms": statistics.median(latencies) * 1e3,
        "post_max_ms": max(latencies) * 1e3, "events_per_s": accepted / sum(latencies),
        "log_bytes_per_event": log_bytes / max(accepted, 1), "full_run_s": full_run_s,
        "live_start_s": live_start_s, "live_batches": args.live_batches, "reflected_each_s": reflected,
        "reflected_s": reflected_s, "reflected_share_of_run": (reflected_s / full_run_s) if reflected_s else None,
        "invoice_batches": args.invoice_batches, "invoices_reflected_each_s": invoices,
        "live_accepted": accepted_live, "peak_rss_mib": peak / 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segmenta", required=True, help="the segmenta binary (build it with --profile bench)")
    ap.add_argument("--accounts", default="100000", help="comma-separated sizes")
    ap.add_argument("--threads", type=int, default=2, help="the server's engine threads")
    ap.add_argument("--batches", type=int, default=10, help="batches of 10,000 events for the throughput")
    ap.add_argument("--live-batches", type=int, default=3, help="batches of 10,000 events timed into the live view")
    ap.add_argument("--invoice-batches", type=int, default=1,
                    help="batches of 10,000 invoices timed into the live view (every account evaluated)")
    ap.add_argument("--workdir", default="/tmp/segmenta-ingest-bench", help="where the demo projects go (kept)")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    try:
        sizes = [int(a) for a in args.accounts.split(",")]
    except ValueError:
        print("--accounts is comma-separated whole numbers", file=sys.stderr)
        return 2
    os.makedirs(args.workdir, exist_ok=True)
    results = []
    for accounts in sizes:
        r = bench_size(args, accounts)
        results.append(r)
        reflected = f"{r['reflected_s']:.2f} s ({100 * r['reflected_share_of_run']:.1f}% of a run)" \
            if r["reflected_s"] else "not seen"
        print(f"{accounts:>9} accounts  threads {r['threads']}  POST of 10,000 events: p50 {r['post_p50_ms']:.0f} ms  "
              f"max {r['post_max_ms']:.0f} ms  {r['events_per_s']:.0f} events/s  "
              f"{r['log_bytes_per_event']:.0f} log bytes/event  full run {r['full_run_s']:.2f} s  "
              f"live view started in {r['live_start_s']:.1f} s  10,000 events reflected (median of "
              f"{r['live_batches']}): {reflected}  10,000 invoices reflected: "
              f"{', '.join(f'{x:.2f} s' if x else 'not seen' for x in r['invoices_reflected_each_s']) or '-'}  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    ok = all(r["accepted"] == 10_000 * r["batches"] and r["reflected_s"]
             and all(r["invoices_reflected_each_s"])
             and r["live_accepted"] == 10_000 * (r["live_batches"] + r["invoice_batches"]) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
