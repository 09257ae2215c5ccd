#!/usr/bin/env python3
"""Side-by-side benchmark of `segmenta backfill`: 12 monthly snapshots in one process, against
one `segmenta run` (the target: at most 3x its time), against 12 separate `segmenta run --as-of`
processes (what a user would script without backfill), and against DuckDB running the
equivalent SQL once per instant (a window per instant) in one process.

The workload is the one of bench/segment/bench.py (the demo company, 20 traits, 50 rules), so
the figures line up with that benchmark. The instants are the month ends 2025-01-31 ..
2025-12-31 (`--every 1mo`). Each side runs as a separate process with the same thread count;
the harness reports median wall times, ratios and peak RSS (wait4), then checks that every
snapshot's memberships are the same on all three sides (backfill, separate runs, DuckDB).

Usage:
    python3 bench/backfill/bench.py --segmenta "$CARGO_TARGET_DIR/release/segmenta" \
        [--accounts 100000,1000000] [--threads 2] [--runs 3] [--workdir /tmp/bw] [--json out.json]
    python3 bench/backfill/bench.py --segmenta target/debug/segmenta --smoke   # tiny, agreement only

Only the standard library and `duckdb` (tests/differential/requirements.txt) are used.
Exit status: 0 when all sides agree at every size, 1 on a disagreement, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import importlib.util
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("segment_bench", os.path.join(HERE, "..", "segment", "bench.py"))
seg = importlib.util.module_from_spec(_spec)  # bench/segment/bench.py: the workload, its SQL and the timers
_spec.loader.exec_module(seg)

FROM, TO, EVERY = dt.date(2025, 1, 31), dt.date(2025, 12, 31), "1mo"


def month_ends():
    """The instants of `--from 2025-01-31 --to 2025-12-31 --every 1mo`: every month's last day."""
    return [dt.date(2025, m, calendar.monthrange(2025, m)[1]) for m in range(1, 13)]


def duckdb_statements(data_dir, out_root, threads):
    """The DuckDB side: the workload's SQL once per instant (its windows and days-since measured
    from that instant), each instant's traits and memberships written to its own folder."""
    statements = []
    saved = seg.AS_OF
    try:
        for day in month_ends():
            seg.AS_OF = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
            out = os.path.join(out_root, day.isoformat())
            os.makedirs(out, exist_ok=True)
            body = seg.duckdb_sql(data_dir, out, threads)
            if statements:
                body = [s for s in body if not s.startswith("SET ")]
                statements.append("DROP TABLE ent")
            statements += body
    finally:
        seg.AS_OF = saved
    return statements


def median(xs):
    return statistics.median(xs) if xs else None


def bench_size(args, accounts):
    data_dir, events = seg.ensure_data(args.segmenta, args.workdir, accounts, args.threads)
    case = os.path.join(args.workdir, f"backfill-{accounts}")
    shutil.rmtree(case, ignore_errors=True)
    os.makedirs(case)
    with open(os.path.join(case, "segmenta.toml"), "w") as fh:
        fh.write(seg.project_toml(os.path.abspath(data_dir)))
    threads = ["--threads", str(args.threads)]
    backfill = [args.segmenta, "backfill", "--project", case, "--from", FROM.isoformat(), "--to", TO.isoformat(),
                "--every", EVERY, "--json", *threads]
    one_run = [args.segmenta, "run", "--project", case, "--output", os.path.join(case, "one-run"), *threads]
    separate = lambda day: [args.segmenta, "run", "--project", case, "--as-of", day.isoformat(),  # noqa: E731
                            "--output", os.path.join(case, "runs", day.isoformat()), *threads]
    duck_out = os.path.join(case, "duckdb-out")
    sql_file = os.path.join(case, "duckdb.json")
    with open(sql_file, "w") as fh:
        json.dump(duckdb_statements(os.path.abspath(data_dir), os.path.abspath(duck_out), args.threads), fh, indent=1)
    runner = os.path.join(case, "duckdb_runner.py")
    with open(runner, "w") as fh:
        fh.write(seg.DUCKDB_RUNNER)
    duck = [sys.executable, runner, sql_file]

    times = {k: [] for k in ("backfill", "one_run", "separate_runs", "duckdb")}
    rss = {k: [] for k in times}
    runs = 1 if args.smoke else args.runs
    separate_runs = 1 if args.smoke else args.separate_runs
    warmup = 0 if args.smoke else args.warmup
    for k in range(runs + warmup):  # the first `warmup` rounds are not timed
        for side, cmd in (("backfill", backfill), ("one_run", one_run), ("duckdb", duck)):
            wall, peak = seg.timed(cmd)
            if k >= warmup:
                times[side].append(wall)
                rss[side].append(peak)
    for _ in range(separate_runs):
        total, peak = 0.0, 0.0
        for day in month_ends():
            wall, p = seg.timed(separate(day))
            total, peak = total + wall, max(peak, p)
        times["separate_runs"].append(total)
        rss["separate_runs"].append(peak)

    report = json.loads(subprocess.run(backfill, capture_output=True, text=True, check=True).stdout)
    snapshots = {s["date"]: s["output"] for s in report["snapshots"]}
    disagreements = []
    total_members = 0
    con = seg.duckdb.connect()
    con.execute(f"SET threads = {args.threads}")

    def differ(a, b):
        """Rows in one memberships file and not the other (DuckDB, so 1M accounts fit)."""
        pa, pb = seg.q(a), seg.q(b)
        return con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT entity_id, segment FROM read_parquet({pa}) EXCEPT ALL "
            f"SELECT entity_id, segment FROM read_parquet({pb}))) + (SELECT count(*) FROM (SELECT entity_id, segment "
            f"FROM read_parquet({pb}) EXCEPT ALL SELECT entity_id, segment FROM read_parquet({pa})))"
        ).fetchone()[0]

    for day in month_ends():
        d = day.isoformat()
        mine = os.path.join(snapshots[d], "memberships.parquet")
        theirs = os.path.join(duck_out, d, "memberships.parquet")
        run = os.path.join(case, "runs", d, "memberships.parquet")
        total_members += con.execute(f"SELECT count(*) FROM read_parquet({seg.q(mine)})").fetchone()[0]
        vs_duckdb, vs_run = differ(mine, theirs), differ(mine, run)
        if vs_duckdb or vs_run:
            disagreements.append({"date": d, "rows_differing_from_duckdb": vs_duckdb, "rows_differing_from_run": vs_run})
    result = {"accounts": accounts, "events": events, "threads": args.threads, "runs": runs,
              "separate_runs_rounds": separate_runs, "snapshots": len(report["snapshots"]),
              "event_scans": report["event_scans"], "memberships": total_members,
              "agree": not disagreements, "disagreements": disagreements}
    for side in times:
        result[side] = {"median_s": median(times[side]), "min_s": min(times[side]), "max_s": max(times[side]),
                        "peak_rss_mib": max(rss[side])}
    base = result["backfill"]["median_s"]
    result["backfill_over_one_run"] = base / result["one_run"]["median_s"]
    result["backfill_over_separate_runs"] = base / result["separate_runs"]["median_s"]
    result["backfill_over_duckdb"] = base / result["duckdb"]["median_s"]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenta", required=True, help="the segmenta binary (build it with --profile bench)")
    ap.add_argument("--accounts", default="100000,1000000", help="comma-separated sizes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs of backfill, one run and DuckDB after a warm-up")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before the timed ones")
    ap.add_argument("--separate-runs", type=int, default=1, help="timed rounds of the 12 separate runs")
    ap.add_argument("--workdir", help="where data and outputs go (data is reused); default: a temporary folder")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--smoke", action="store_true", help="300 accounts, one run each, agreement only")
    args = ap.parse_args()
    temporary = None
    if args.workdir is None:
        temporary = args.workdir = tempfile.mkdtemp(prefix="segmenta-backfill-bench-")
    sizes = [300] if args.smoke else [int(x) for x in args.accounts.split(",")]
    results = []
    try:
        for accounts in sizes:
            r = bench_size(args, accounts)
            results.append(r)
            print(
                f"{r['accounts']:>9} accounts {r['events']:>11} events  threads {r['threads']}  "
                f"backfill x12 {r['backfill']['median_s']:.2f} s ({r['backfill']['peak_rss_mib']:.0f} MiB, "
                f"{r['event_scans']} scan(s))  one run {r['one_run']['median_s']:.2f} s "
                f"({r['one_run']['peak_rss_mib']:.0f} MiB)  12 runs {r['separate_runs']['median_s']:.2f} s  "
                f"duckdb x12 {r['duckdb']['median_s']:.2f} s ({r['duckdb']['peak_rss_mib']:.0f} MiB)  "
                f"backfill/run {r['backfill_over_one_run']:.2f}  backfill/12 runs "
                f"{r['backfill_over_separate_runs']:.2f}  backfill/duckdb {r['backfill_over_duckdb']:.2f}  "
                f"memberships {r['memberships']} {'agree' if r['agree'] else 'DISAGREE'}",
                flush=True,
            )
            for d in r["disagreements"]:
                print(f"  {d}")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    ok = all(r["agree"] for r in results)
    print(f"backfill bench: {len(results)} size(s), {'all agree' if ok else 'DISAGREEMENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
