#!/usr/bin/env python3
"""Side-by-side benchmark of hierarchy rollups: `segmenta run` against DuckDB's recursive CTE.

Two account hierarchies, written to Parquet (through DuckDB) as one segmenta project each:

- `chain`: N accounts, each the parent of the next (depth N - 1): the worst case of any method
  that enumerates (ancestor, descendant) pairs, which are N (N - 1) / 2;
- `corporate`: N accounts in corporate trees (groups of 1 to 5,000 accounts, log-uniform; a
  third of the accounts have subsidiaries, 2 to 20 each; depth at most 12).

Accounts carry `arr` (float, whole dollars, 5% NULL), `employees` (int) and `plan` (string, 5%
NULL). The project's traits are eight hierarchy rollups: `count()`, `sum(arr)`, `avg(arr)`,
`max(employees)`, `count() where plan = 'enterprise'`, `share(plan = 'enterprise')` and
`count_distinct(plan)` over `descendants`, and `count()` over `children`. The DuckDB side is the
SQL a user would write: a recursive CTE of (ancestor, descendant) pairs joined to the accounts and
grouped by ancestor, and a grouped count of the children, written to Parquet.

Each case runs both sides alternately, one warm-up each then `--runs` timed runs, as separate
processes with the same thread count, and reports the median wall time and the ratio segmenta /
DuckDB. DuckDB gets `--duckdb-timeout` seconds per run (the pairs of a long chain do not fit in
memory or time); a run past it is reported as `>T s` and not repeated. Both sides' traits are
checked against a bottom-up fold in Python (floats to 1e-9 relative), and against each other.

Usage (from the workspace root):
    cargo build --profile bench -p segmenta-cli
    python3 bench/hierarchy/bench.py --segmenta "$CARGO_TARGET_DIR/release/segmenta" \
        [--cases chain:100000,corporate:100000] [--threads 2] [--runs 3] [--workdir /tmp/hw]

Only the standard library and `duckdb` (tests/differential/requirements.txt) are used.
Exit status: 0 when every side that finished agrees with the reference, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import duckdb
except ImportError as e:  # pragma: no cover - reported to the user
    sys.stderr.write(f"bench.py needs duckdb (pip install -r tests/differential/requirements.txt): {e}\n")
    sys.exit(2)

PLANS = ["free", "starter", "pro", "enterprise"]
MAX_DEPTH = 12

# name, over, segmenta expression, DuckDB aggregate over the descendant rows `x`, DuckDB finish
TRAITS = [
    ("desc_count", "descendants", "count()", "COUNT(*)", "COALESCE({v}, 0)"),
    ("family_arr", "descendants", "sum(arr)", "SUM(x.arr)", "COALESCE({v}, CAST(0 AS DOUBLE))"),
    ("avg_arr", "descendants", "avg(arr)", "AVG(x.arr)", "{v}"),
    ("max_employees", "descendants", "max(employees)", "MAX(x.employees)", "{v}"),
    ("enterprise_desc", "descendants", "count() where plan = 'enterprise'",
     "COUNT(*) FILTER (WHERE x.plan = 'enterprise')", "COALESCE({v}, 0)"),
    ("enterprise_share", "descendants", "share(plan = 'enterprise')",
     "AVG(CASE WHEN (x.plan = 'enterprise') IS TRUE THEN 1.0 ELSE 0.0 END)", "{v}"),
    ("plans", "descendants", "count_distinct(plan)", "COUNT(DISTINCT x.plan)", "COALESCE({v}, 0)"),
    ("children", "children", "count()", None, "COALESCE({v}, 0)"),
]


def q(text):
    return "'" + text.replace("'", "''") + "'"


# -- the hierarchies ----------------------------------------------------------------------------

def chain(n):
    """Parents of a chain: row i's parent is row i - 1."""
    return [None] + list(range(n - 1))


def corporate(n, rng):
    """Parents of a forest of corporate trees of n accounts in all."""
    parents = []
    while len(parents) < n:
        size = min(n - len(parents), int(math.exp(rng.uniform(0, math.log(5000)))))
        root = len(parents)
        parents.append(None)
        depth = {root: 0}
        frontier = [root]
        while len(parents) - root < size and frontier:
            node = frontier.pop(0)
            # The root always has subsidiaries (when the group has more than one account).
            if node != root and (depth[node] >= MAX_DEPTH or rng.random() >= 0.2):
                continue
            for _ in range(rng.randint(2, 20)):
                if len(parents) - root >= size:
                    break
                child = len(parents)
                parents.append(node)
                depth[child] = depth[node] + 1
                frontier.append(child)
            if not frontier and len(parents) - root < size:
                frontier.append(root)  # every node was a leaf: grow the root again
    return parents


def depths(parents):
    d = [0] * len(parents)
    for i, p in enumerate(parents):  # parents precede their children in both generators
        d[i] = 0 if p is None else d[p] + 1
    return d


def accounts(parents, rng):
    rows = []
    for i, p in enumerate(parents):
        arr = None if rng.random() < 0.05 else float(rng.randint(0, 500) * 12)
        plan = None if rng.random() < 0.05 else rng.choice(PLANS)
        rows.append((f"a{i:07d}", None if p is None else f"a{p:07d}", arr, rng.randint(1, 5000), plan))
    return rows


def write_case(case_dir, kind, n, seed):
    rng = random.Random(seed)
    parents = chain(n) if kind == "chain" else corporate(n, rng)
    rows = accounts(parents, rng)
    os.makedirs(case_dir, exist_ok=True)
    path = os.path.join(case_dir, "accounts.parquet")
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE a (account_id VARCHAR, parent_id VARCHAR, arr DOUBLE, employees BIGINT, plan VARCHAR)"
    )
    con.executemany("INSERT INTO a VALUES (?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY a TO {q(path)} (FORMAT parquet)")
    lines = [
        "[project]", f'name = "{kind}"', 'entity = "account"', 'as_of = "2025-12-31"', "",
        "[entities.account]", 'source = "accounts.parquet"', 'key = "account_id"', 'hierarchy = "parent_id"',
        "", "[traits]",
    ]
    for name, over, expr, _, _ in TRAITS:
        lines.append(f"{name} = {{ over = {json.dumps(over)}, expr = {json.dumps(expr)} }}")
    with open(os.path.join(case_dir, "segmenta.toml"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return parents, rows


# -- the reference: a bottom-up fold ------------------------------------------------------------

def reference(parents, rows, depth):
    n = len(parents)
    own = []
    for _, _, arr, employees, plan in rows:
        own.append({
            "rows": 1, "arr_sum": arr or 0.0, "arr_n": 0 if arr is None else 1, "emp_max": employees,
            "ent": 1 if plan == "enterprise" else 0, "plans": {plan} - {None},
        })
    total = [{"rows": 0, "arr_sum": 0.0, "arr_n": 0, "emp_max": None, "ent": 0, "plans": set()} for _ in range(n)]
    children = [0] * n
    # Children before parents: by decreasing depth.
    for i in sorted(range(n), key=lambda i: -depth[i]):
        p = parents[i]
        if p is None:
            continue
        children[p] += 1
        t = total[p]
        for part in (own[i], total[i]):
            t["rows"] += part["rows"]
            t["arr_sum"] += part["arr_sum"]
            t["arr_n"] += part["arr_n"]
            t["ent"] += part["ent"]
            if part["emp_max"] is not None and (t["emp_max"] is None or part["emp_max"] > t["emp_max"]):
                t["emp_max"] = part["emp_max"]
            t["plans"] |= part["plans"]
    out = {}
    for i, (key, *_rest) in enumerate(rows):
        t = total[i]
        out[key] = {
            "desc_count": t["rows"],
            "family_arr": t["arr_sum"],
            "avg_arr": t["arr_sum"] / t["arr_n"] if t["arr_n"] else None,
            "max_employees": t["emp_max"],
            "enterprise_desc": t["ent"],
            "enterprise_share": t["ent"] / t["rows"] if t["rows"] else None,
            "plans": len(t["plans"]),
            "children": children[i],
        }
    return out


def read_traits(path):
    con = duckdb.connect()
    names = [t[0] for t in TRAITS]
    cols = ", ".join(f'"{n}"' for n in names)
    rows = con.execute(f"SELECT entity_id, {cols} FROM read_parquet({q(path)})").fetchall()
    return {r[0]: dict(zip(names, r[1:])) for r in rows}


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def differences(expected, got, limit=5):
    out = []
    if set(expected) != set(got):
        return [f"ids differ: {len(expected)} expected, {len(got)} got"]
    for key in sorted(expected):
        for name, value in expected[key].items():
            if not same(value, got[key][name]):
                out.append(f"{key}.{name}: expected {value!r}, got {got[key][name]!r}")
                if len(out) >= limit:
                    return out
    return out


# -- the DuckDB side ----------------------------------------------------------------------------

def duckdb_sql(case_dir, out_path, threads):
    src = q(os.path.join(case_dir, "accounts.parquet"))
    aggregates = ", ".join(f'{agg} AS "{name}"' for name, over, _, agg, _ in TRAITS if over == "descendants")
    finishes = []
    for name, over, _, _, finish in TRAITS:
        table = "ch" if over == "children" else "d"
        finishes.append(finish.format(v=f'{table}."{name}"') + f' AS "{name}"')
    return [
        f"SET threads = {threads}",
        "SET preserve_insertion_order = false",
        f"CREATE TEMP TABLE acc AS SELECT * FROM read_parquet({src})",
        (
            "CREATE TEMP TABLE pairs AS WITH RECURSIVE r(ancestor, descendant) AS ("
            " SELECT c.parent_id, c.account_id FROM acc c JOIN acc p ON p.account_id = c.parent_id"
            " UNION ALL"
            " SELECT p.parent_id, r.descendant FROM r JOIN acc p ON p.account_id = r.ancestor"
            " JOIN acc pp ON pp.account_id = p.parent_id"
            ") SELECT * FROM r"
        ),
        (
            "COPY (SELECT a.account_id AS entity_id, " + ", ".join(finishes) + " FROM acc a"
            f" LEFT JOIN (SELECT r.ancestor AS k, {aggregates} FROM pairs r"
            " JOIN acc x ON x.account_id = r.descendant GROUP BY r.ancestor) d ON d.k = a.account_id"
            ' LEFT JOIN (SELECT c.parent_id AS k, COUNT(*) AS "children" FROM acc c'
            " JOIN acc p ON p.account_id = c.parent_id GROUP BY c.parent_id) ch ON ch.k = a.account_id"
            f") TO {q(out_path)} (FORMAT parquet)"
        ),
    ]


DUCKDB_RUNNER = r"""
import json, sys, duckdb
statements = json.load(open(sys.argv[1]))
con = duckdb.connect()
for s in statements:
    con.execute(s)
"""


def timed(cmd, timeout=None):
    """Wall seconds of a command, or None past `timeout` (the process is killed)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.read().decode()}\n{err.read().decode()}"
            )
    return wall


def bench_case(args, kind, n):
    case = os.path.join(args.workdir, f"{kind}-{n}")
    parents, rows = write_case(case, kind, n, seed=7)
    depth = depths(parents)
    pairs = sum(depth)
    seg_out = os.path.join(case, "segmenta-out")
    duck_out = os.path.join(case, "duckdb-traits.parquet")
    sql_file = os.path.join(case, "duckdb.json")
    with open(sql_file, "w") as fh:
        json.dump(duckdb_sql(case, duck_out, args.threads), fh, indent=1)
    runner = os.path.join(case, "duckdb_runner.py")
    with open(runner, "w") as fh:
        fh.write(DUCKDB_RUNNER)
    seg_cmd = [args.segmenta, "run", "--project", case, "--output", seg_out, "--threads", str(args.threads)]
    duck_cmd = [sys.executable, runner, sql_file]

    times = {"segmenta": [], "duckdb": []}
    timeouts = {"segmenta": False, "duckdb": False}
    limits = {"segmenta": args.segmenta_timeout, "duckdb": args.duckdb_timeout}
    for k in range(args.runs + 1):  # the first round is the warm-up
        for side, cmd in (("segmenta", seg_cmd), ("duckdb", duck_cmd)):
            if timeouts[side]:
                continue
            wall = timed(cmd, limits[side])
            if wall is None:
                timeouts[side] = True
            elif k > 0:
                times[side].append(wall)

    expected = reference(parents, rows, depth)
    result = {"case": kind, "accounts": n, "max_depth": max(depth), "pairs": pairs,
              "threads": args.threads, "runs": args.runs}
    ok = True
    for side, path in (("segmenta", os.path.join(seg_out, "traits.parquet")), ("duckdb", duck_out)):
        if timeouts[side]:
            result[side] = {"timeout_s": limits[side]}
            continue
        diffs = differences(expected, read_traits(path))
        ok &= not diffs
        result[side] = {"median_s": statistics.median(times[side]), "min_s": min(times[side]),
                        "max_s": max(times[side]), "agrees": not diffs, "differences": diffs}
    if not timeouts["segmenta"] and not timeouts["duckdb"]:
        result["ratio"] = result["segmenta"]["median_s"] / result["duckdb"]["median_s"]
    result["ok"] = ok
    return result


def show(side):
    if "timeout_s" in side:
        return f">{side['timeout_s']:.0f} s (timeout)"
    return f"{side['median_s']:.3f} s ({side['min_s']:.3f}-{side['max_s']:.3f})" + (
        "" if side["agrees"] else " DISAGREES")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenta", required=True, help="the segmenta binary (build it with --profile bench)")
    ap.add_argument("--cases", default="chain:100000,corporate:100000",
                    help="comma-separated KIND:ACCOUNTS, KIND chain or corporate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side after one warm-up")
    ap.add_argument("--duckdb-timeout", type=float, default=300.0, help="seconds per DuckDB run")
    ap.add_argument("--segmenta-timeout", type=float, default=300.0, help="seconds per segmenta run")
    ap.add_argument("--workdir", help="where data and outputs go (kept); default: a temporary folder")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    temporary = None
    if args.workdir is None:
        temporary = tempfile.mkdtemp(prefix="segmenta-hierarchy-bench-")
        args.workdir = temporary
    results = []
    try:
        for case in args.cases.split(","):
            kind, n = case.split(":")
            if kind not in ("chain", "corporate"):
                sys.stderr.write(f"unknown case kind `{kind}` (chain or corporate)\n")
                return 2
            r = bench_case(args, kind, int(n))
            results.append(r)
            ratio = f"  ratio {r['ratio']:.3f}" if "ratio" in r else ""
            print(
                f"{r['case']:>9} {r['accounts']:>7} accounts  depth {r['max_depth']:>6}  pairs {r['pairs']:>11}  "
                f"threads {r['threads']}  segmenta {show(r['segmenta'])}  duckdb {show(r['duckdb'])}{ratio}",
                flush=True,
            )
            for side in ("segmenta", "duckdb"):
                for d in r[side].get("differences", []):
                    print(f"  {side}: {d}")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    ok = all(r["ok"] for r in results)
    print(f"bench: {len(results)} case(s), {'all agree' if ok else 'DISAGREEMENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
