#!/usr/bin/env python3
"""Side-by-side benchmark: `segmenta run` against DuckDB on the same files and the same workload.

The workload is the demo company (`segmenta demo --accounts N`, about 110 events per account, in
Parquet), 20 traits covering every aggregate and window unit, and 50 rules mixing attributes,
traits, `in_segment`, `in` / `between` / `is null` / string predicates. Every trait and rule is a
syntax tree rendered twice: in segmenta's languages for `segmenta.toml`, and as the DuckDB SQL a
user would write (one grouped aggregation with FILTER clauses, joined to the accounts, one
membership query per rule). Both sides read the same Parquet files and write their traits and
memberships to Parquet.

Each size runs both sides alternately, one warm-up each then `--runs` timed runs, as separate
processes with the same thread count; it reports the median wall time, the ratio
segmenta / DuckDB and the peak RSS of each process, then checks that both wrote the same
memberships. It also times `segmenta preview` (the size of an ad-hoc rule on the latest run).

Usage:
    python3 bench/segment/bench.py --segmenta target/release/segmenta [--accounts 10000,100000,1000000]
        [--threads 2] [--runs 3] [--workdir bench/work] [--json results.json]
    python3 bench/segment/bench.py --segmenta target/debug/segmenta --smoke   # CI: tiny, agreement only

Only the standard library and `duckdb` (tests/differential/requirements.txt) are used.
Exit status: 0 when both sides agree at every size, 1 on a disagreement, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "differential"))
try:
    import duckdb  # noqa: F401  (the DuckDB side runs in a child process; this checks it exists)
    from duckdb_diff import BOOL, DATE, FLOAT, INT, STRING, TS, Lit, q, render_seg, render_sql, sql_ts
except ImportError as e:  # pragma: no cover - reported to the user
    sys.stderr.write(f"bench.py needs duckdb (pip install -r tests/differential/requirements.txt): {e}\n")
    sys.exit(2)

AS_OF_DATE = dt.date(2025, 12, 31)
AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the instant: the whole as-of day counts
US_PER = {"h": 3_600_000_000, "d": 86_400_000_000, "w": 7 * 86_400_000_000}

ACCOUNT_COLUMNS = {
    "account_id": STRING, "name": STRING, "industry": STRING, "employees": INT, "annual_revenue": FLOAT,
    "country": STRING, "region": STRING, "plan": STRING, "seats": INT, "mrr": FLOAT, "arr": FLOAT,
    "signup_date": DATE, "parent_account_id": STRING, "crm": STRING, "cloud": STRING,
    "integrations_enabled": INT, "uses_sso": BOOL,
}
EVENT_COLUMNS = {
    "account_id": STRING, "contact_id": STRING, "ts": TS, "event_type": STRING, "feature": STRING,
    "page": STRING, "plan": STRING, "amount": FLOAT, "need": STRING, "pain_point": STRING, "nps": INT,
}


# -- syntax-tree helpers (the tree format of tests/differential/duckdb_diff.py) ----------------

def col(name):
    return ("col", name)


def s(v):
    return ("lit", Lit(STRING, v))


def i(v):
    return ("lit", Lit(INT, v))


def f(v):
    return ("lit", Lit(FLOAT, v))


def cmp(c, op, v):
    return ("cmp", col(c), op, v)


def is_(c, value):
    return cmp(c, "=", s(value))


def in_(c, values, negated=False, kind=STRING):
    return ("in", col(c), negated, [Lit(kind, v) for v in values])


def and_(*es):
    return ("and", list(es))


def or_(*es):
    return ("or", list(es))


def not_(e):
    return ("not", e)


# -- the workload ------------------------------------------------------------------------------

# name, aggregate, argument, condition, window (amount, unit)
TRAITS = [
    ("logins_30d", "count", None, is_("event_type", "login"), (30, "d")),
    ("logins_12w", "count", None, is_("event_type", "login"), (12, "w")),
    ("events_36h", "count", None, None, (36, "h")),
    ("clicks_with_contact_90d", "count", "contact_id", is_("event_type", "email_click"), (90, "d")),
    ("revenue_365d", "sum", "amount", is_("event_type", "invoice_paid"), (365, "d")),
    ("revenue_all", "sum", "amount", is_("event_type", "invoice_paid"), None),
    ("avg_invoice", "avg", "amount", is_("event_type", "invoice_paid"), None),
    ("max_invoice_180d", "max", "amount", is_("event_type", "invoice_paid"), (180, "d")),
    ("min_nps", "min", "nps", is_("event_type", "survey_response"), None),
    ("features_90d", "count_distinct", "feature", is_("event_type", "feature_used"), (90, "d")),
    ("users_30d", "count_distinct", "contact_id", is_("event_type", "login"), (30, "d")),
    ("first_activity", "first_seen", None, None, None),
    ("last_login", "last_seen", None, is_("event_type", "login"), None),
    ("days_since_login", "days_since_last", None, is_("event_type", "login"), None),
    ("tenure_days", "days_since_first", None, None, None),
    ("tickets_30d", "count", None, is_("event_type", "support_ticket"), (30, "d")),
    ("pricing_visits_7d", "count", None, and_(is_("event_type", "web_visit"), is_("page", "pricing")), (7, "d")),
    ("churns", "count", None, in_("event_type", ["subscription_churn", "subscription_contraction"]), None),
    ("advanced_uses_90d", "count", None,
     and_(is_("event_type", "feature_used"), in_("feature", ["api", "automation", "ai_assistant"])), (90, "d")),
    ("first_invoice_400d", "min", "ts", is_("event_type", "invoice_paid"), (400, "d")),
]
TRAIT_TYPES = {
    "count": INT, "count_distinct": INT, "days_since_last": INT, "days_since_first": INT, "avg": FLOAT,
    "first_seen": TS, "last_seen": TS,
}


def trait_type(t):
    name, agg, arg, _, _ = t
    if agg in TRAIT_TYPES:
        return TRAIT_TYPES[agg]
    return EVENT_COLUMNS[arg]


def rules():
    """50 rules, deterministic: attributes, traits, in_segment, in / between / is null / strings."""
    d = lambda y, m, day: ("lit", Lit(DATE, dt.date(y, m, day)))  # noqa: E731
    ts = lambda *a: ("lit", Lit(TS, dt.datetime(*a, tzinfo=dt.timezone.utc)))  # noqa: E731
    r = [
        ("firmo_health_large", and_(is_("industry", "healthcare"), cmp("employees", ">=", i(1000)))),
        ("firmo_regulated", in_("industry", ["financial_services", "healthcare", "government"])),
        ("mid_market", ("between", col("employees"), False, Lit(INT, 100), Lit(INT, 999))),
        ("not_mid_market", ("between", col("employees"), True, Lit(INT, 100), Lit(INT, 999))),
        ("emea", is_("region", "EMEA")),
        ("dach", in_("country", ["DE", "AT", "CH"])),
        ("outside_na", in_("region", ["NA"], negated=True)),
        ("paying", cmp("arr", ">", f(0.0))),
        ("big_arr", cmp("arr", ">=", f(50000.0))),
        ("free_plan", is_("plan", "free")),
        ("recent_signup", cmp("signup_date", ">=", d(2025, 7, 1))),
        ("subsidiary", ("isnull", col("parent_account_id"), True)),
        ("standalone", ("isnull", col("parent_account_id"), False)),
        ("sso_enterprise", and_(("boolcol", "uses_sso"), is_("plan", "enterprise"))),
        ("salesforce_aws", and_(is_("crm", "salesforce"), is_("cloud", "aws"))),
        ("name_labs", ("strop", col("name"), False, "contains", "Labs")),
        ("name_blue", ("strop", col("name"), False, "starts_with", "Blue")),
        ("not_gmbh", ("strop", col("name"), True, "ends_with", "GmbH")),
        ("integrations_6", cmp("integrations_enabled", ">=", i(6))),
        ("active_30d", cmp("logins_30d", ">", i(0))),
        ("power_users", and_(cmp("logins_30d", ">=", i(15)), cmp("features_90d", ">=", i(6)))),
        ("silent_30d", or_(cmp("logins_30d", "=", i(0)), ("isnull", col("days_since_login"), False))),
        ("lapsing", ("between", col("days_since_login"), False, Lit(INT, 31), Lit(INT, 90))),
        ("high_spend", cmp("revenue_365d", ">=", f(20000.0))),
        ("no_invoices", cmp("revenue_all", "=", f(0.0))),
        ("big_invoices", cmp("avg_invoice", ">", f(1000.0))),
        ("unhappy", cmp("min_nps", "<=", i(4))),
        ("no_survey", ("isnull", col("min_nps"), False)),
        ("multi_user", cmp("users_30d", ">=", i(3))),
        ("ticket_heavy", cmp("tickets_30d", ">=", i(2))),
        ("pricing_curious", cmp("pricing_visits_7d", ">=", i(1))),
        ("churned", cmp("churns", ">", i(0))),
        ("advanced", cmp("advanced_uses_90d", ">=", i(5))),
        ("new_tenure", cmp("tenure_days", "<=", i(90))),
        ("old_first_activity", cmp("first_activity", "<", ts(2023, 3, 1))),
        ("logged_in_december", cmp("last_login", ">=", ts(2025, 12, 1))),
        ("recent_big_invoice", cmp("max_invoice_180d", ">=", f(5000.0))),
        ("invoiced_recently", ("isnull", col("first_invoice_400d"), True)),
        ("weekly_active", cmp("logins_12w", ">=", i(12))),
        ("busy_last_36h", cmp("events_36h", ">=", i(3))),
        ("clicking", cmp("clicks_with_contact_90d", ">", i(0))),
        ("at_risk_paying", and_(("inseg", "paying"), or_(("inseg", "silent_30d"), ("inseg", "unhappy"), ("inseg", "ticket_heavy")))),
        ("healthy_paying", and_(("inseg", "paying"), not_(("inseg", "at_risk_paying")))),
        ("upsell", and_(("inseg", "pricing_curious"), ("inseg", "active_30d"), in_("plan", ["starter", "pro"]))),
        ("emea_at_risk", and_(("inseg", "emea"), ("inseg", "at_risk_paying"))),
        ("enterprise_power", and_(("inseg", "power_users"), or_(is_("plan", "enterprise"), ("inseg", "big_arr")))),
        ("winback", and_(("inseg", "churned"), ("inseg", "clicking"))),
        ("regulated_advanced", and_(("inseg", "firmo_regulated"), ("inseg", "advanced"), not_(("inseg", "free_plan")))),
        ("small_not_emea", and_(cmp("employees", "<", i(50)), not_(("inseg", "emea")))),
        ("odd_mix", or_(and_(("inseg", "dach"), cmp("seats", ">", i(10))), and_(("inseg", "name_labs"), ("inseg", "active_30d")))),
    ]
    assert len(r) == 50 and len({n for n, _ in r}) == 50
    return r


RULES = rules()
SCHEMA = dict(ACCOUNT_COLUMNS, **{t[0]: trait_type(t) for t in TRAITS})


class FixedKeywords:
    """Keywords as written (the differential test randomises their case; a benchmark does not)."""

    def __call__(self, word):
        return word


def trait_text(t):
    name, agg, arg, where, window = t
    text = f"{agg}({arg or ''})"
    if where is not None:
        text += " where " + render_seg(where, FixedKeywords(), random.Random(0))
    if window is not None:
        text += f" within {window[0]}{window[1]}"
    return text


def project_toml(data_dir, with_rules=True):
    lines = [
        "[project]", 'name = "bench"', 'entity = "account"', f'as_of = "{AS_OF_DATE.isoformat()}"', "",
        "[entities.account]", f"source = {json.dumps(os.path.join(data_dir, 'accounts.parquet'))}",
        'key = "account_id"', "",
        "[events]", f"source = {json.dumps(os.path.join(data_dir, 'events.parquet'))}",
        'entity_key = "account_id"', 'time = "ts"', 'type = "event_type"', "", "[traits]",
    ]
    lines += [f"{t[0]} = {json.dumps(trait_text(t))}" for t in TRAITS]
    for name, expr in RULES if with_rules else []:
        rule = render_seg(expr, FixedKeywords(), random.Random(0))
        lines += ["", f"[segments.{name}]", f"rule = {json.dumps(rule)}"]
    return "\n".join(lines) + "\n"


def trait_sql(t):
    """The raw aggregate (inside the GROUP BY) and the finishing expression (after the join)."""
    name, agg, arg, where, window = t
    conds = []
    if window is not None:
        start = AS_OF - dt.timedelta(microseconds=window[0] * US_PER[window[1]])
        conds.append(f"e.ts >= {sql_ts(start)}")
    if where is not None:
        conds.append(render_sql(where, EVENT_COLUMNS, "e", None))
    filt = f" FILTER (WHERE {' AND '.join(conds)})" if conds else ""
    c = f'e."{arg}"' if arg else None
    raw = {
        "count": f"COUNT({c or '*'}){filt}",
        "count_distinct": f"COUNT(DISTINCT {c}){filt}",
        "sum": f"SUM({c}){filt}",
        "avg": f"AVG({c}){filt}",
        "min": f"MIN({c}){filt}",
        "max": f"MAX({c}){filt}",
        "first_seen": f"MIN(e.ts){filt}",
        "last_seen": f"MAX(e.ts){filt}",
        "days_since_first": f"MIN(e.ts){filt}",
        "days_since_last": f"MAX(e.ts){filt}",
    }[agg]
    v = f't."{name}"'
    if agg in ("count", "count_distinct"):
        finish = f"COALESCE({v}, 0)"
    elif agg == "sum":
        finish = f"COALESCE({v}, {'0' if EVENT_COLUMNS[arg] == INT else 'CAST(0 AS DOUBLE)'})"
    elif agg.startswith("days_since"):
        finish = f"CAST(floor((epoch_us({sql_ts(AS_OF)}) - epoch_us({v})) / 86400000000.0) AS BIGINT)"
    else:
        finish = v
    return raw, finish


def duckdb_sql(data_dir, out_dir, threads):
    accounts = q(os.path.join(data_dir, "accounts.parquet"))
    events = q(os.path.join(data_dir, "events.parquet"))
    raws, finishes = [], []
    for t in TRAITS:
        raw, finish = trait_sql(t)
        raws.append(f'{raw} AS "{t[0]}"')
        finishes.append(f'{finish} AS "{t[0]}"')
    statements = [
        f"SET threads = {threads}",
        "SET TimeZone = 'UTC'",
        "SET preserve_insertion_order = false",
        (
            "CREATE TEMP TABLE ent AS SELECT a.*, " + ", ".join(finishes) + f" FROM read_parquet({accounts}) a "
            f"LEFT JOIN (SELECT e.account_id AS k, " + ", ".join(raws) + f" FROM read_parquet({events}) e "
            f"WHERE e.ts < {sql_ts(AS_OF)} GROUP BY e.account_id) t ON t.k = a.account_id"
        ),
        "COPY (SELECT account_id AS entity_id, " + ", ".join(f'"{t[0]}"' for t in TRAITS)
        + f" FROM ent) TO {q(os.path.join(out_dir, 'traits.parquet'))} (FORMAT parquet)",
    ]
    exprs = {}

    def inline(e):
        # in_segment('x') is x's rule IS TRUE, never unknown
        tag = e[0]
        if tag == "inseg":
            return ("sqlraw", f"({exprs[e[1]]} IS TRUE)")
        if tag in ("and", "or"):
            return (tag, [inline(c) for c in e[1]])
        if tag == "not":
            return ("not", inline(e[1]))
        return e

    def render(e):
        if e[0] == "sqlraw":
            return e[1]
        if e[0] in ("and", "or"):
            return "(" + f" {e[0].upper()} ".join(render(c) for c in e[1]) + ")"
        if e[0] == "not":
            return f"(NOT {render(e[1])})"
        return render_sql(e, SCHEMA, "ent", None)

    selects = []
    for name, expr in RULES:
        exprs[name] = render(inline(expr))
        selects.append(f"SELECT account_id AS entity_id, {q(name)} AS segment FROM ent WHERE {exprs[name]} IS TRUE")
    statements.append(
        "COPY (" + " UNION ALL ".join(selects) + f") TO {q(os.path.join(out_dir, 'memberships.parquet'))} (FORMAT parquet)"
    )
    return statements


DUCKDB_RUNNER = r"""
import json, sys, duckdb
statements = json.load(open(sys.argv[1]))
con = duckdb.connect()
for s in statements:
    con.execute(s)
"""


def timed(cmd):
    """Runs a command; returns (wall seconds, peak RSS in MiB) of that process (wait4's rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.read().decode()}\n{err.read().decode()}"
            )
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def memberships(path):
    con = duckdb.connect()
    return {(r[0], r[1]) for r in con.execute(f"SELECT entity_id, segment FROM read_parquet({q(path)})").fetchall()}


def ensure_data(segmenta, workdir, accounts, threads):
    data = os.path.join(workdir, f"demo-{accounts}")
    marker = os.path.join(data, "data", "events.parquet")
    if not os.path.exists(marker):
        shutil.rmtree(data, ignore_errors=True)
        print(f"generating the demo company with {accounts} accounts into {data}", flush=True)
        subprocess.run([segmenta, "demo", data, "--accounts", str(accounts), "--no-run", "--threads", str(threads)],
                       check=True, stdout=subprocess.DEVNULL)
    con = duckdb.connect()
    events = con.execute(f"SELECT count(*) FROM read_parquet({q(marker)})").fetchone()[0]
    return os.path.join(data, "data"), events


def bench_size(args, accounts):
    data_dir, events = ensure_data(args.segmenta, args.workdir, accounts, args.threads)
    case = os.path.join(args.workdir, f"case-{accounts}")
    os.makedirs(case, exist_ok=True)
    with open(os.path.join(case, "segmenta.toml"), "w") as fh:
        fh.write(project_toml(os.path.abspath(data_dir)))
    seg_out, duck_out = os.path.join(case, "segmenta-out"), os.path.join(case, "duckdb-out")
    os.makedirs(duck_out, exist_ok=True)
    sql_file = os.path.join(case, "duckdb.json")
    with open(sql_file, "w") as fh:
        json.dump(duckdb_sql(os.path.abspath(data_dir), os.path.abspath(duck_out), args.threads), fh, indent=1)
    runner = os.path.join(case, "duckdb_runner.py")
    with open(runner, "w") as fh:
        fh.write(DUCKDB_RUNNER)
    seg_cmd = [args.segmenta, "run", "--project", case, "--output", seg_out, "--threads", str(args.threads)]
    duck_cmd = [sys.executable, runner, sql_file]

    times = {"segmenta": [], "duckdb": []}
    rss = {"segmenta": [], "duckdb": []}
    runs = 1 if args.smoke else args.runs
    for k in range(runs + (0 if args.smoke else 1)):  # the first round is the warm-up
        for side, cmd in (("segmenta", seg_cmd), ("duckdb", duck_cmd)):
            wall, peak = timed(cmd)
            if k > 0 or args.smoke:
                times[side].append(wall)
                rss[side].append(peak)

    seg_m = memberships(os.path.join(seg_out, "memberships.parquet"))
    duck_m = memberships(os.path.join(duck_out, "memberships.parquet"))
    agree = seg_m == duck_m
    result = {
        "accounts": accounts,
        "events": events,
        "threads": args.threads,
        "runs": runs,
        "memberships": len(seg_m),
        "agree": agree,
    }
    for side in times:
        result[side] = {
            "median_s": statistics.median(times[side]),
            "min_s": min(times[side]),
            "max_s": max(times[side]),
            "peak_rss_mib": max(rss[side]),
        }
    result["ratio"] = result["segmenta"]["median_s"] / result["duckdb"]["median_s"]
    if not agree:
        only_seg, only_duck = sorted(seg_m - duck_m), sorted(duck_m - seg_m)
        result["only_segmenta"] = only_seg[:10]
        result["only_duckdb"] = only_duck[:10]
    # What the 50 rules cost: the same run without them.
    if not args.smoke:
        bare = os.path.join(args.workdir, f"case-{accounts}-traits-only")
        os.makedirs(bare, exist_ok=True)
        with open(os.path.join(bare, "segmenta.toml"), "w") as fh:
            fh.write(project_toml(os.path.abspath(data_dir), with_rules=False))
        bare_cmd = [args.segmenta, "run", "--project", bare, "--output", os.path.join(bare, "out"),
                    "--threads", str(args.threads)]
        timed(bare_cmd)
        result["traits_only_median_s"] = statistics.median(timed(bare_cmd)[0] for _ in range(runs))
    # The size preview a segment builder needs while typing.
    preview = [args.segmenta, "preview", "--project", case, "logins_30d >= 5 and region = 'EMEA' and arr > 1000"]
    probe = subprocess.run(preview, capture_output=True, text=True)
    if probe.returncode == 0:
        walls = [timed(preview)[0] for _ in range(runs)]
        result["preview_median_s"] = statistics.median(walls)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenta", required=True, help="the segmenta binary (build it with --profile bench)")
    ap.add_argument("--accounts", default="10000,100000,1000000", help="comma-separated sizes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side after one warm-up")
    ap.add_argument("--workdir", help="where data and outputs go (kept; data is reused); default: a temporary folder")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--smoke", action="store_true", help="CI: 300 accounts, one run, agreement only")
    args = ap.parse_args()
    temporary = None
    if args.workdir is None:
        temporary = tempfile.mkdtemp(prefix="segmenta-bench-")
        args.workdir = temporary
    sizes = [300] if args.smoke else [int(x) for x in args.accounts.split(",")]
    results = []
    try:
        for accounts in sizes:
            r = bench_size(args, accounts)
            results.append(r)
            line = (
                f"{r['accounts']:>9} accounts {r['events']:>11} events  threads {r['threads']}  "
                f"segmenta {r['segmenta']['median_s']:.3f} s ({r['segmenta']['peak_rss_mib']:.0f} MiB)  "
                f"duckdb {r['duckdb']['median_s']:.3f} s ({r['duckdb']['peak_rss_mib']:.0f} MiB)  "
                f"ratio {r['ratio']:.2f}  memberships {r['memberships']} {'agree' if r['agree'] else 'DISAGREE'}"
            )
            if "traits_only_median_s" in r:
                line += f"  traits only {r['traits_only_median_s']:.3f} s"
            if "preview_median_s" in r:
                line += f"  preview {r['preview_median_s'] * 1000:.0f} ms"
            print(line, flush=True)
            if not r["agree"]:
                print(f"  only segmenta: {r['only_segmenta']}\n  only duckdb: {r['only_duckdb']}")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    ok = all(r["agree"] for r in results)
    print(f"bench: {len(results)} size(s), {'all agree' if ok else 'DISAGREEMENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
