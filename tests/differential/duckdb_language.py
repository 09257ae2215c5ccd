#!/usr/bin/env python3
"""Differential test of the analysts' language (issue 11) against DuckDB.

Each case is a seeded random project whose accounts have 0, 1, 2, ... events (even and odd
counts), with an int column `qty` and a float column `amount` full of ties and NULLs. Its traits
are percentiles (`median`, `percentile`, `percentile_disc`, with fractions written as decimals
and with exponents), counts and integer sums, each rendered in segmenta's trait language for
`segmenta.toml` and as DuckDB SQL (`median`, `quantile_cont`, `quantile_disc`, `count`, `sum`).
Traits take windows: lengths (`within 7d`: `ts >= instant - INTERVAL`), calendar months and
years (`within 6mo`: `ts >= TIMESTAMP instant - INTERVAL '6 months'`) and ranges of days
(`between 2024-01-01 and 2024-03-31`: `CAST(ts AS DATE) BETWEEN ...` in UTC). The as-of is a
date or an instant, often on a month's last days (so that calendar windows clamp), and events
sit on every window's first microsecond, the one before it, and a range's last microsecond.
Conditions use arithmetic and functions (`qty * 3 - 1 > 4`, `amount / 2 >= 0.5`, `abs(qty) <= 3`,
`coalesce(qty, 0) + 1 = 1`), and derived traits compute from the traits and from each other
(`round((t1 + t3) / t0, 2)`, `coalesce(d0, -1) * 3`), declared in shuffled order so that segmenta
must order them by dependency; in DuckDB each is its expression over the aggregates, with
`x / NULLIF(y, 0)` for segmenta's division (NULL for a zero divisor, where DuckDB gives inf).
`segmenta run` computes the traits, DuckDB computes them from the same CSV file, and every
value must be equal: exactly, bit for bit, for floats too (but 0.0 and -0.0, which segmenta
holds as 0.0: its values are never -0.0).

Usage:
    python3 tests/differential/duckdb_language.py --segmenta PATH [--seed N] [--cases K]
                                                  [--case I] [--workdir DIR]

Only the standard library and `duckdb` are used. Exit status: 0 when every case agrees, 1 on a
disagreement, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import datetime as dt
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import duckdb
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("duckdb_language.py needs the duckdb Python package: pip install duckdb\n")
    sys.exit(2)

UTC = dt.timezone.utc

# Fractions as written: decimals (DuckDB reads them as DECIMAL, and finds the row of
# quantile_disc in exact arithmetic) and exponents (DOUBLE).
FRACTIONS = ["0", "1", "0.5", "0.25", "0.75", "0.3", "0.1", "0.9", "0.333", "0.99", "0.01", "0.125",
             "0.2", "0.6", "0.7", "1e-1", "3e-1", "7.5e-1", "6.25e-2", "0.0", "1.0", "0.5000"]
KINDS = ["a", "b", "c"]


def fmt_ts(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sql_ts(t: dt.datetime) -> str:
    return "TIMESTAMPTZ '" + t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00'"


def months_back(t: dt.datetime, months: int) -> dt.datetime:
    """`t` moved back by calendar months, the day clamped (only to place boundary events)."""
    index = t.year * 12 + t.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


class Case:
    def __init__(self, seed: int, index: int):
        self.rng = random.Random(seed * 7_000_003 + index)
        rng = self.rng
        self.as_of_date = dt.date(2024, 3, 1) + dt.timedelta(days=rng.randrange(0, 300))
        if rng.random() < 0.5:  # a month's last days, where calendar windows clamp
            last = calendar.monthrange(self.as_of_date.year, self.as_of_date.month)[1]
            self.as_of_date = self.as_of_date.replace(day=rng.choice([last - 2, last - 1, last]))
        midnight = dt.datetime(self.as_of_date.year, self.as_of_date.month, self.as_of_date.day, tzinfo=UTC)
        if rng.random() < 0.5:
            # `--as-of DATE`: the instant is the next midnight.
            self.as_of_arg = self.as_of_date.isoformat()
            self.instant = midnight + dt.timedelta(days=1)
        else:
            # `--as-of INSTANT`: midnight or a time of day.
            self.instant = midnight + rng.choice([dt.timedelta(0), dt.timedelta(hours=13, microseconds=250)])
            self.as_of_arg = fmt_ts(self.instant)
        # Window starts and ends, on which boundary events are placed.
        self.boundaries: list[dt.datetime] = []
        self.accounts: list[str] = []
        self.events: list[dict] = []
        # (name, segmenta text, DuckDB SQL, type, column, DuckDB condition)
        self.traits: list[tuple[str, str, str, str, str, str]] = []
        # Derived traits: (name, segmenta text, DuckDB SQL over the aggregates' names, type).
        self.derived: list[tuple[str, str, str, str]] = []

    def gen_data(self):
        rng = self.rng
        n = rng.randint(15, 50)
        self.accounts = [f"a{i}" for i in range(n)]
        # Value pools: few distinct values (ties), the same value repeated, large ints.
        qty_pools = [[0, 1, 2, 3], [5], [-4, -1, 0, 7, 7, 7], [2**53, 2**53 + 1, -(2**53) - 1, 3],
                     list(range(-50, 50))]
        amount_pools = [[0.25, 0.5, 1.0], [1.5], [-2.75, 0.1, 0.2, 0.3, 1e9, 1e-9], [k / 4 for k in range(-40, 400)],
                        [1e300, -1e300, 123.456, 7.0]]
        for account in self.accounts:
            count = rng.choice([0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 13, 20, rng.randint(0, 60)])
            qty_pool, amount_pool = rng.choice(qty_pools), rng.choice(amount_pools)
            for _ in range(count):
                if self.boundaries and rng.random() < 0.3:
                    t = rng.choice(self.boundaries) - rng.choice([dt.timedelta(0), dt.timedelta(microseconds=1)])
                else:
                    t = self.instant - dt.timedelta(seconds=rng.randint(-3 * 86400, 420 * 86400))
                self.events.append({
                    "account_id": account,
                    "ts": fmt_ts(t),
                    "kind": rng.choice(KINDS),
                    "qty": None if rng.random() < 0.15 else rng.choice(qty_pool),
                    "amount": None if rng.random() < 0.15 else rng.choice(amount_pool),
                })

    def gen_traits(self):
        rng = self.rng
        for i in range(rng.randint(6, 12)):
            column = rng.choice(["qty", "amount"])
            r = rng.random()
            if r < 0.15:
                text, sql = f"median({column})", f"median(e.{column})"
                ty = "float"
            elif r < 0.3:
                text, sql, ty = "count()", "count(*)", "int"
            elif r < 0.4:
                column = "qty"
                text, sql, ty = "sum(qty)", "sum(e.qty)", "int"
            elif r < 0.47:
                # Aggregates of computed values.
                text, sql, ty, column = rng.choice([
                    ("sum(qty * 3 - 1)", "sum(e.qty * 3 - 1)", "int", "qty"),
                    ("max(amount / 2)", "max(e.amount / NULLIF(2, 0))", "float", "amount"),
                    ("median(abs(amount) + 1)", "median(abs(e.amount) + 1)", "float", "amount"),
                    ("percentile_disc(round(qty, -1), 0.5)", "quantile_disc(round(e.qty, -1), 0.5)", "int", "qty"),
                    ("min(coalesce(qty, 0) * 2)", "min(coalesce(e.qty, 0) * 2)", "int", "qty"),
                ])
            else:
                p = rng.choice(FRACTIONS)
                disc = r >= 0.6
                name = "percentile_disc" if disc else "percentile"
                text = f"{name}({column}, {p})"
                sql = f"quantile_{'disc' if disc else 'cont'}(e.{column}, {p})"
                ty = ("int" if column == "qty" else "float") if disc else "float"
            conds = ["e.account_id IS NOT NULL"]
            where_texts = []
            if rng.random() < 0.4:
                kind = rng.choice(KINDS)
                where_texts.append(f"kind = '{kind}'")
                conds.append(f"e.kind = '{kind}'")
            if rng.random() < 0.4:
                condition, condition_sql = rng.choice([
                    ("qty * 3 - 1 > 4", "e.qty * 3 - 1 > 4"),
                    ("amount / 2 >= 0.5", "e.amount / NULLIF(2, 0) >= 0.5"),
                    ("abs(qty) <= 3", "abs(e.qty) <= 3"),
                    ("coalesce(qty, 0) + 1 = 1", "coalesce(e.qty, 0) + 1 = 1"),
                    ("round(amount, 1) between 0 and 1.5", "round(e.amount, 1) BETWEEN 0 AND 1.5"),
                    ("(qty + 2) * 2 in (4, 6, 18)", "(e.qty + 2) * 2 IN (4, 6, 18)"),
                    ("(-amount < -0.2 or qty / 4 > 1)", "(-e.amount < -0.2 OR e.qty / NULLIF(4, 0) > 1)"),
                    ("amount / qty > 0.1", "e.amount / NULLIF(e.qty, 0) > 0.1"),
                ])
                where_texts.append(condition)
                conds.append(condition_sql)
            if where_texts:
                text += " where " + " and ".join(where_texts)
            window = rng.random()
            if window < 0.2:
                days = rng.choice([1, 7, 30])
                text += f" within {days}d"
                conds.append(f"e.ts >= {sql_ts(self.instant - dt.timedelta(days=days))}")
                self.boundaries.append(self.instant - dt.timedelta(days=days))
            elif window < 0.5:
                months, unit = rng.choice([(1, "mo"), (2, "mo"), (3, "mo"), (6, "mo"), (13, "mo"), (12, "y")])
                text += f" within {months // 12}y" if unit == "y" else f" within {months}mo"
                plain = self.instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                conds.append(f"e.ts >= CAST(TIMESTAMP '{plain}' - INTERVAL '{months} months' AS TIMESTAMPTZ)")
                self.boundaries.append(months_back(self.instant, months))
            elif window < 0.75:
                end = self.instant.date() + dt.timedelta(days=rng.randint(-120, 5))
                first = end - dt.timedelta(days=rng.choice([0, 1, 30, 90, 200]))
                text += f" between {first.isoformat()} and {end.isoformat()}"
                conds.append(f"CAST(e.ts AS DATE) BETWEEN DATE '{first.isoformat()}' AND DATE '{end.isoformat()}'")
                start = dt.datetime(first.year, first.month, first.day, tzinfo=UTC)
                self.boundaries += [start, start + dt.timedelta(days=(end - first).days + 1)]
            where = " AND ".join(conds)
            sql += f" FILTER (WHERE {where})"
            if text.startswith("sum(") and ty == "int":
                # DuckDB sums BIGINTs into a HUGEINT (and divides those differently); segmenta's
                # sum of ints is a 64-bit int.
                sql = f"CAST(coalesce({sql}, 0) AS BIGINT)"
            self.traits.append((f"t{i}", text, sql, ty, column, where))

    def gen_value(self, depth: int, names: list[tuple[str, str, str]]) -> tuple[str, str, str]:
        """A random value over `names` ((name, SQL, type)): its segmenta text, SQL and type.
        Products have a constant side, and constants are small, so that no int leaves 64 bits
        and no float overflows."""
        rng = self.rng
        if depth == 0 or rng.random() < 0.25:
            r = rng.random()
            if r < 0.6 and names:
                return rng.choice(names)
            if r < 0.8:
                k = rng.randint(-7, 7)
                return (str(k), str(k), "int")
            f = rng.choice([0.5, 2.25, -1.5, 0.1, 3.0])
            return (repr(f), f"CAST({f!r} AS DOUBLE)", "float")
        r = rng.random()
        a = self.gen_value(depth - 1, names)
        if r < 0.15:
            d = rng.choice([-1, 0, 1, 2])
            return (f"round({a[0]}, {d})", f"round({a[1]}, {d})", a[2])
        if r < 0.25:
            return (f"abs({a[0]})", f"abs({a[1]})", a[2])
        if r < 0.35:
            k = rng.randint(-3, 3)
            ty = a[2]
            return (f"coalesce({a[0]}, {k})", f"coalesce({a[1]}, {k})", ty)
        if r < 0.42:
            return (f"-({a[0]})", f"-({a[1]})", a[2])
        op = rng.choice(["+", "-", "*", "/"])
        if op == "*":
            b = self.gen_value(0, [])
        else:
            b = self.gen_value(depth - 1, names)
        ty = "float" if op == "/" or "float" in (a[2], b[2]) else "int"
        if op == "/":
            return (f"({a[0]}) / ({b[0]})", f"(({a[1]}) / NULLIF(({b[1]}), 0))", ty)
        cast = (lambda x, t: f"CAST(({x}) AS DOUBLE)" if ty == "float" and t == "int" else f"({x})")
        return (f"({a[0]}) {op} ({b[0]})", f"({cast(a[1], a[2])} {op} {cast(b[1], b[2])})", ty)

    def gen_derived(self):
        rng = self.rng
        # Only counts and sums of qty are ints here; products of two traits are avoided.
        names = [(t[0], f'"{t[0]}"', t[3]) for t in self.traits]
        for i in range(rng.randint(0, 5)):
            text, sql, ty = self.gen_value(rng.randint(1, 3), names)
            name = f"d{i}"
            self.derived.append((name, text, sql, ty))
            names.append((name, f"({sql})", ty))

    def toml(self) -> str:
        lines = [
            "[project]", 'name = "language"', 'entity = "account"', "",
            "[entities.account]", 'source = "accounts.csv"', 'key = "account_id"', "",
            "[events]", 'source = "events.csv"', 'entity_key = "account_id"', 'time = "ts"',
            'columns = { ts = "timestamp", kind = "string", qty = "int", amount = "float" }', "",
            "[traits]",
        ]
        lines += [f"{t[0]} = {json.dumps(t[1])}" for t in self.traits]
        derived = list(self.derived)
        self.rng.shuffle(derived)
        lines += [f"{d[0]} = {json.dumps(d[1])}" for d in derived]
        return "\n".join(lines) + "\n"

    def write(self, d: str):
        with open(os.path.join(d, "accounts.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["account_id"])
            w.writerows([a] for a in self.accounts)
        with open(os.path.join(d, "events.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            cols = ["account_id", "ts", "kind", "qty", "amount"]
            w.writerow(cols)
            for e in self.events:
                w.writerow(["" if e[c] is None else (repr(e[c]) if isinstance(e[c], float) else e[c]) for c in cols])
        with open(os.path.join(d, "segmenta.toml"), "w") as f:
            f.write(self.toml())


def run_case(case: Case, d: str, segmenta: str) -> list[str]:
    case.gen_traits()
    case.gen_data()
    case.gen_derived()
    case.write(d)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    spec = "{'account_id': 'VARCHAR', 'ts': 'TIMESTAMPTZ', 'kind': 'VARCHAR', 'qty': 'BIGINT', 'amount': 'DOUBLE'}"
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{d}/events.csv', header = true, "
                f"auto_detect = false, nullstr = '', columns = {spec})")
    con.execute(f"CREATE TABLE accounts AS SELECT * FROM read_csv('{d}/accounts.csv', header = true, "
                "auto_detect = false, columns = {'account_id': 'VARCHAR'})")
    select = ",\n  ".join(f'{t[2]} AS "{t[0]}"' for t in case.traits)
    derived = "".join(f',\n  {d[2]} AS "{d[0]}"' for d in case.derived)
    try:
        expected = con.execute(
            f"SELECT * {derived} FROM (SELECT a.account_id, {select} FROM accounts a LEFT JOIN "
            f"(SELECT * FROM events WHERE ts < {sql_ts(case.instant)}) e ON e.account_id = a.account_id "
            "GROUP BY a.account_id) ORDER BY account_id"
        ).fetchall()
    except duckdb.OutOfRangeException as e:
        # A value out of range in DuckDB: segmenta must refuse it too (exit 2).
        out = os.path.join(d, "out")
        proc = subprocess.run([segmenta, "run", "--project", d, "--as-of", case.as_of_arg, "--output", out],
                              capture_output=True, text=True)
        return [] if proc.returncode == 2 and "too large" in proc.stderr else [
            f"DuckDB: {e}; segmenta exited with {proc.returncode}: {proc.stderr.strip()}"]

    out = os.path.join(d, "out")
    cmd = [segmenta, "run", "--project", d, "--as-of", case.as_of_arg, "--output", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"segmenta exited with {proc.returncode}: {proc.stderr.strip()}"]
    traits = [t[:4] + (t[4], t[5]) for t in case.traits] + [(n, text, sql, ty, None, None) for n, text, sql, ty in case.derived]
    names = [t[0] for t in traits]
    cols = ", ".join(f'"{n}"' for n in names)
    actual = con.execute(f"SELECT entity_id, {cols} FROM read_parquet('{out}/traits.parquet') ORDER BY entity_id").fetchall()
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{out}/traits.parquet'))").fetchall())
    problems = []
    for name, text, _, ty, _, _ in traits:
        want = "BIGINT" if ty == "int" else "DOUBLE"
        if types.get(name) != want:
            problems.append(f"trait {name} = {text!r}: traits.parquet has {types.get(name)}, expected {want}")
    if [r[0] for r in expected] != [r[0] for r in actual]:
        return problems + ["the entity ids differ"]
    for e_row, a_row in zip(expected, actual):
        for i, (name, text, sql, ty, column, where) in enumerate(traits):
            e, a = e_row[i + 1], a_row[i + 1]
            if ty == "float" and e == 0.0 and a == 0.0:
                same = bits(a) == 0  # never -0.0
            else:
                same = (e is None and a is None) or (
                    e is not None and a is not None and (bits(e) == bits(a) if ty == "float" else e == a))
            if not same:
                values = None
                if column is not None:
                    values = con.execute(f"SELECT list(e.{column} ORDER BY e.{column}) FROM events e WHERE {where} "
                                         f"AND e.ts < {sql_ts(case.instant)} AND e.account_id = ?", [e_row[0]]).fetchone()[0]
                problems.append(f"trait {name} = {text!r} of {e_row[0]}: DuckDB {e!r}, segmenta {a!r}\n"
                                f"    sql: {sql}\n    values: {values}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=10)
    ap.add_argument("--case", type=int)
    ap.add_argument("--segmenta", required=True)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    segmenta = os.path.abspath(args.segmenta)
    if not os.path.isfile(segmenta):
        print(f"language differential: no segmenta binary at {segmenta}", file=sys.stderr)
        return 2
    root = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="segmenta-language-")
    os.makedirs(root, exist_ok=True)
    passed = failed = 0
    for i in [args.case] if args.case is not None else range(args.cases):
        case = Case(args.seed, i)
        d = os.path.join(root, f"seed{args.seed}-case{i}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        try:
            problems = run_case(case, d, segmenta)
        except Exception as e:  # a bug here or DuckDB refusing the SQL
            problems = [f"the harness failed: {type(e).__name__}: {e}"]
        desc = (f"case {i} (seed {args.seed}): {len(case.accounts)} accounts, {len(case.events)} events, "
                f"{len(case.traits)} traits, {len(case.derived)} derived")
        if problems:
            failed += 1
            print(f"{desc}: FAILED (project kept in {d})")
            for p in problems[:20]:
                print("  " + p.replace("\n", "\n  "))
        else:
            passed += 1
            print(f"{desc}: ok")
            if not args.workdir:
                shutil.rmtree(d, ignore_errors=True)
    if not args.workdir and failed == 0:
        shutil.rmtree(root, ignore_errors=True)
    print(f"language differential: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
