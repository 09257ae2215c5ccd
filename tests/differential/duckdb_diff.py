#!/usr/bin/env python3
"""Differential test: segmenta against DuckDB on random projects.

For each case a seeded random project is generated (accounts, events, traits, segment rules).
Every trait and rule is a random syntax tree rendered twice, independently: once in segmenta's
trait/rule language for `segmenta.toml`, once as DuckDB SQL. DuckDB computes the expected
traits and memberships from the same CSV (or Parquet) files; `segmenta run` computes the actual
ones; the two are compared exactly (floats with a relative tolerance of 1e-9).

Usage:
    python3 tests/differential/duckdb_diff.py --segmenta PATH [--seed N] [--cases K]
                                              [--workdir DIR] [--keep]

Only the standard library and `duckdb` (see requirements.txt) are used.
Exit status: 0 when every case agrees, 1 on any disagreement, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

try:
    import duckdb
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write(
        "duckdb_diff.py needs the duckdb Python package: "
        "pip install -r tests/differential/requirements.txt\n"
    )
    sys.exit(2)

UTC = dt.timezone.utc
US_PER_SEC = 1_000_000
US_PER_HOUR = 3600 * US_PER_SEC
US_PER_DAY = 24 * US_PER_HOUR

# ----------------------------------------------------------------------------------------------
# Types and literals
# ----------------------------------------------------------------------------------------------

STRING, INT, FLOAT, BOOL, DATE, TS = "string", "int", "float", "bool", "date", "timestamp"
NUMERIC = (INT, FLOAT)

ACCOUNT_COLUMNS = {
    "account_id": STRING,
    "industry": STRING,
    "employees": INT,
    "arr": FLOAT,
    "is_active": BOOL,
    "signup_date": DATE,
}
EVENT_COLUMNS = {
    "account_id": STRING,
    "ts": TS,
    "event_type": STRING,
    "amount": FLOAT,
    "plan": STRING,
}
DUCK_TYPE = {STRING: "VARCHAR", INT: "BIGINT", FLOAT: "DOUBLE", BOOL: "BOOLEAN", DATE: "DATE", TS: "TIMESTAMPTZ"}

INDUSTRIES = ["health", "Health", "HEALTH", "retail", "tech", "fintech", "fin, tech", "acme's", "edu cation"]
EVENT_TYPES = ["purchase", "login", "page_view", "refund", "Purchase", "support_ticket"]
PLANS = ["free", "pro", "pro_plus", "enterprise", "Pro"]
OFFSETS = ["+02:00", "-05:30", "+00:00", "+14:00", "-08:00", "+05:45"]


def q(s: str) -> str:
    """A single-quoted string literal, valid in both languages."""
    return "'" + s.replace("'", "''") + "'"


def fmt_ts_z(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sql_ts(t: dt.datetime) -> str:
    return "TIMESTAMPTZ '" + t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "+00'"


def epoch_us(t: dt.datetime) -> int:
    d = t - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86400 + d.seconds) * US_PER_SEC + d.microseconds


def date_midnight(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)


class Lit:
    """A literal: kind in (int, float, string, bool, date, timestamp) and its Python value."""

    def __init__(self, kind: str, value):
        self.kind = kind
        self.value = value

    def seg(self, kw) -> str:
        k = self.kind
        if k == INT:
            return str(self.value)
        if k == FLOAT:
            return repr(float(self.value))
        if k == STRING:
            return q(self.value)
        if k == BOOL:
            return kw("true" if self.value else "false")
        if k == DATE:
            return kw("date") + " '" + self.value.isoformat() + "'"
        if k == TS:
            return kw("timestamp") + " '" + fmt_ts_z(self.value) + "'"
        raise AssertionError(k)

    def sql(self, against: str | None) -> str:
        """SQL text; `against` is the type of the value this literal is compared with."""
        k = self.kind
        if k == INT:
            return f"CAST({self.value} AS BIGINT)"
        if k == FLOAT:
            # from a string: DuckDB reads a decimal literal as DECIMAL, whose conversion to DOUBLE
            # need not be correctly rounded; text to DOUBLE is
            return f"CAST('{float(self.value)!r}' AS DOUBLE)"
        if k == STRING:
            return q(self.value)
        if k == BOOL:
            return "TRUE" if self.value else "FALSE"
        if k == DATE:
            if against == TS:  # a DATE compared with a timestamp means midnight UTC
                return sql_ts(date_midnight(self.value))
            return f"DATE '{self.value.isoformat()}'"
        if k == TS:
            return sql_ts(self.value)
        raise AssertionError(k)


# ----------------------------------------------------------------------------------------------
# Rule syntax trees
#
#   ("and", [e...]) | ("or", [e...]) | ("not", e)
#   ("cmp", left, op, right)            left/right: ("col", name) or ("lit", Lit)
#   ("in", value, negated, [Lit...])
#   ("between", value, negated, lo, hi)
#   ("isnull", value, negated)
#   ("strop", value, negated, op, text)  op in contains/starts_with/ends_with
#   ("inseg", segment)
#   ("boolcol", name)
# ----------------------------------------------------------------------------------------------


class Keywords:
    """Random keyword casing (keywords are case-insensitive)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __call__(self, word: str) -> str:
        r = self.rng.random()
        if r < 0.6:
            return word
        if r < 0.85:
            return word.upper()
        return word[:1].upper() + word[1:]


def value_type(v, schema) -> str:
    return schema[v[1]] if v[0] == "col" else v[1].kind


def render_seg(e, kw, rng, parent=None) -> str:
    """segmenta syntax, with the fewest parentheses precedence allows (and some extra)."""
    tag = e[0]
    if tag in ("and", "or"):
        parts = []
        for c in e[1]:
            s = render_seg(c, kw, rng, tag)
            if c[0] in ("and", "or") and (c[0] != tag or rng.random() < 0.3):
                if c[0] == "or" or tag != "or" or rng.random() < 0.5:
                    s = "(" + s + ")"
            parts.append(s)
        return (" " + kw(tag) + " ").join(parts)
    if tag == "not":
        c = e[1]
        s = render_seg(c, kw, rng, "not")
        if c[0] in ("and", "or") or (rng.random() < 0.25):
            s = "(" + s + ")"
        return kw("not") + " " + s
    s = render_pred_seg(e, kw, rng)
    if parent is not None and rng.random() < 0.15:
        s = "(" + s + ")"
    return s


def seg_value(v, kw) -> str:
    if v[0] == "col":
        return v[1]
    return v[1].seg(kw)


def render_pred_seg(e, kw, rng) -> str:
    tag = e[0]
    if tag == "cmp":
        _, left, op, right = e
        if op == "!=" and rng.random() < 0.5:
            op = "<>"
        return f"{seg_value(left, kw)} {op} {seg_value(right, kw)}"
    if tag == "in":
        _, v, neg, lits = e
        return f"{seg_value(v, kw)} {kw('not') + ' ' if neg else ''}{kw('in')} (" + ", ".join(
            lit.seg(kw) for lit in lits
        ) + ")"
    if tag == "between":
        _, v, neg, lo, hi = e
        return f"{seg_value(v, kw)} {kw('not') + ' ' if neg else ''}{kw('between')} {lo.seg(kw)} {kw('and')} {hi.seg(kw)}"
    if tag == "isnull":
        _, v, neg = e
        return f"{seg_value(v, kw)} {kw('is')} {kw('not') + ' ' if neg else ''}{kw('null')}"
    if tag == "strop":
        _, v, neg, op, text = e
        return f"{seg_value(v, kw)} {kw('not') + ' ' if neg else ''}{kw(op)} {q(text)}"
    if tag == "inseg":
        return f"{kw('in_segment')}({q(e[1])})"
    if tag == "boolcol":
        return e[1]
    raise AssertionError(tag)


def sql_value(v, schema, alias, against) -> str:
    if v[0] == "col":
        return f'{alias}."{v[1]}"'
    return v[1].sql(against)


def render_sql(e, schema, alias, segtable) -> str:
    """DuckDB SQL, fully parenthesized."""
    tag = e[0]
    if tag == "and":
        return "(" + " AND ".join(render_sql(c, schema, alias, segtable) for c in e[1]) + ")"
    if tag == "or":
        return "(" + " OR ".join(render_sql(c, schema, alias, segtable) for c in e[1]) + ")"
    if tag == "not":
        return "(NOT " + render_sql(e[1], schema, alias, segtable) + ")"
    if tag == "cmp":
        _, left, op, right = e
        lt, rt = value_type(left, schema), value_type(right, schema)
        op = "<>" if op == "!=" else op
        return f"({sql_value(left, schema, alias, rt)} {op} {sql_value(right, schema, alias, lt)})"
    if tag == "in":
        _, v, neg, lits = e
        t = value_type(v, schema)
        items = ", ".join(lit.sql(t) for lit in lits)
        return f"({sql_value(v, schema, alias, None)} {'NOT ' if neg else ''}IN ({items}))"
    if tag == "between":
        _, v, neg, lo, hi = e
        t = value_type(v, schema)
        return (
            f"({sql_value(v, schema, alias, None)} {'NOT ' if neg else ''}BETWEEN "
            f"{lo.sql(t)} AND {hi.sql(t)})"
        )
    if tag == "isnull":
        _, v, neg = e
        return f"({sql_value(v, schema, alias, None)} IS {'NOT ' if neg else ''}NULL)"
    if tag == "strop":
        _, v, neg, op, text = e
        fn = {"contains": "contains", "starts_with": "starts_with", "ends_with": "suffix"}[op]
        call = f"{fn}({sql_value(v, schema, alias, None)}, {q(text)})"
        return f"(NOT {call})" if neg else f"({call})"
    if tag == "inseg":
        # never unknown: the account id is never NULL and the member table holds no NULL
        return f'({alias}."account_id" IN (SELECT entity_id FROM {segtable(e[1])}))'
    if tag == "boolcol":
        return f'({alias}."{e[1]}")'
    raise AssertionError(tag)


# ----------------------------------------------------------------------------------------------
# Random generation
# ----------------------------------------------------------------------------------------------


class Case:
    def __init__(self, seed: int, index: int):
        self.seed = seed
        self.index = index
        self.rng = random.Random(seed * 1_000_003 + index)
        self.kw = Keywords(self.rng)
        rng = self.rng
        self.as_of_date = dt.date(2024, 1, 10) + dt.timedelta(days=rng.randrange(0, 340))
        self.A = date_midnight(self.as_of_date + dt.timedelta(days=1))
        self.n_accounts = rng.randint(30, 200)
        r = rng.random()
        self.n_events = 0 if r < 0.08 else rng.randint(1, 60) if r < 0.25 else rng.randint(60, 2000)
        self.events_parquet = rng.random() < 0.35
        self.accounts_parquet = rng.random() < 0.2
        # (name, agg, arg, where-tree or None, window (amount, unit) or None)
        self.traits: list[tuple] = []
        self.trait_types: dict[str, str] = {}
        self.segments: list[tuple[str, tuple]] = []
        self.accounts: list[dict] = []
        self.events: list[dict] = []  # with the true instant in "_t"
        self.values: dict[str, list] = {}
        self.stats = {"memberships": 0, "mixed": 0}

    # -- data --------------------------------------------------------------------------------

    def gen_windows(self):
        rng = self.rng
        out = []
        for _ in range(rng.randint(5, 10)):
            r = rng.random()
            if r < 0.25:
                out.append(None)
            elif r < 0.45:
                out.append((rng.randint(1, 72), "h"))
            elif r < 0.8:
                out.append((rng.choice([1, 7, 30, 90, rng.randint(1, 200)]), "d"))
            else:
                out.append((rng.randint(1, 26), "w"))
        return out

    @staticmethod
    def window_us(w) -> int:
        n, unit = w
        return n * {"h": US_PER_HOUR, "d": US_PER_DAY, "w": 7 * US_PER_DAY}[unit]

    def gen_data(self, windows):
        rng = self.rng
        ids = [f"a{i}" for i in range(1, self.n_accounts + 1)]
        rng.shuffle(ids)
        for aid in ids:
            row = {"account_id": aid}
            row["industry"] = None if rng.random() < 0.12 else rng.choice(INDUSTRIES)
            row["employees"] = None if rng.random() < 0.12 else rng.choice(
                [rng.randint(0, 50), rng.randint(0, 2000), 100, 250, -3]
            )
            row["arr"] = None if rng.random() < 0.12 else rng.randint(-400, 400_000) / 4
            row["is_active"] = None if rng.random() < 0.15 else rng.random() < 0.6
            row["signup_date"] = (
                None
                if rng.random() < 0.12
                else self.as_of_date - dt.timedelta(days=rng.randint(-30, 1500))
            )
            self.accounts.append(row)

        # instants: mostly uniform around the as-of instant, some exactly on window boundaries
        special = [self.A, self.A - dt.timedelta(seconds=1)]
        for w in windows:
            if w is not None:
                start = self.A - dt.timedelta(microseconds=self.window_us(w))
                special += [start, start - dt.timedelta(seconds=1), start + dt.timedelta(seconds=1)]
        unknown = ["zz1", "a0", "A1", "a9999", "a1 "]
        for _ in range(self.n_events):
            r = rng.random()
            if r < 0.15:
                t = rng.choice(special)
            else:
                t = self.A + dt.timedelta(seconds=rng.randint(-220 * 86400, 6 * 86400))
            aid = rng.choice(unknown) if rng.random() < 0.05 else rng.choice(ids)
            ev = {
                "_t": t,
                "account_id": aid,
                "event_type": rng.choice(EVENT_TYPES),
                "amount": None if rng.random() < 0.15 else rng.randint(-200, 4000) / 4,
                "plan": None if rng.random() < 0.15 else rng.choice(PLANS),
            }
            if rng.random() < 0.2:
                off = rng.choice(OFFSETS)
                sign = 1 if off[0] == "+" else -1
                delta = dt.timedelta(hours=int(off[1:3]), minutes=int(off[4:6])) * sign
                local = t.astimezone(UTC) + delta
                ev["ts"] = local.strftime("%Y-%m-%dT%H:%M:%S") + off
            else:
                ev["ts"] = fmt_ts_z(t)
            self.events.append(ev)

        self.values = {
            "account_id": ids + ["zz1"],
            "industry": INDUSTRIES + ["x"],
            "employees": [r["employees"] for r in self.accounts if r["employees"] is not None] or [1],
            "arr": [r["arr"] for r in self.accounts if r["arr"] is not None] or [1.0],
            "signup_date": [r["signup_date"] for r in self.accounts if r["signup_date"] is not None]
            or [self.as_of_date],
            "event_type": EVENT_TYPES + ["nope"],
            "plan": PLANS,
            "amount": [e["amount"] for e in self.events if e["amount"] is not None] or [0.25],
        }

    # -- random literals and predicates ------------------------------------------------------

    def rand_lit(self, col: str, t: str) -> Lit:
        rng = self.rng
        if t == STRING:
            pool = self.values.get(col, INDUSTRIES)
            if rng.random() < 0.85:
                return Lit(STRING, rng.choice(pool))
            return Lit(STRING, rng.choice(["", "h", "He", "pro", "a1", "zzz", "it's"]))
        if t == INT:
            pool = self.values.get(col)
            if pool and rng.random() < 0.6:
                v = rng.choice(pool)
                return Lit(INT, int(v)) if float(v).is_integer() else Lit(FLOAT, float(v))
            if rng.random() < 0.2:
                return Lit(FLOAT, rng.randint(-4, 4000) / 2)
            return Lit(INT, rng.choice([0, 1, 2, 3, 5, 10, 30, 90, 100, 250, -1]))
        if t == FLOAT:
            pool = self.values.get(col)
            if pool and rng.random() < 0.6:
                return Lit(FLOAT, float(rng.choice(pool)))
            if rng.random() < 0.3:
                return Lit(INT, rng.choice([0, 1, 10, 100, 1000, -5]))
            return Lit(FLOAT, rng.randint(-100, 100_000) / 4)
        if t == BOOL:
            return Lit(BOOL, rng.random() < 0.5)
        if t == DATE:
            pool = self.values.get(col)
            if pool and rng.random() < 0.5:
                return Lit(DATE, rng.choice(pool))
            return Lit(DATE, self.as_of_date - dt.timedelta(days=rng.randint(-10, 1000)))
        if t == TS:
            r = rng.random()
            pool = self.values.get(col)
            if pool and r < 0.3:
                return Lit(TS, rng.choice(pool))
            r = rng.random()
            if r < 0.3:
                return Lit(DATE, self.as_of_date - dt.timedelta(days=rng.randint(-3, 200)))
            if r < 0.5 and self.events:
                return Lit(TS, rng.choice(self.events)["_t"])
            return Lit(TS, self.A - dt.timedelta(seconds=rng.randint(-3 * 86400, 200 * 86400)))
        raise AssertionError(t)

    def rand_pred(self, schema: dict, segments_before: list[str]):
        rng = self.rng
        if segments_before and rng.random() < 0.12:
            return ("inseg", rng.choice(segments_before))
        col = rng.choice(list(schema))
        t = schema[col]
        v = ("col", col)
        r = rng.random()
        if t == BOOL:
            if r < 0.35:
                return ("boolcol", col)
            if r < 0.7:
                return ("cmp", v, rng.choice(["=", "!="]), ("lit", self.rand_lit(col, t)))
            if r < 0.8:
                return ("in", v, rng.random() < 0.3, [Lit(BOOL, True)])
            return ("isnull", v, rng.random() < 0.5)
        if r < 0.1:
            return ("isnull", v, rng.random() < 0.5)
        if t == STRING and r < 0.35:
            op = rng.choice(["contains", "starts_with", "ends_with"])
            text = rng.choice([self.rand_lit(col, t).value, "h", "ea", "H", "tech", "'s", ", ", "_", "", "pro"])
            if text and rng.random() < 0.5:
                a = rng.randrange(len(text))
                b = rng.randrange(a, len(text)) + 1
                text = text[a:b]
            return ("strop", v, rng.random() < 0.3, op, text)
        if r < 0.55:
            op = rng.choice(["=", "!=", "<", "<=", ">", ">="])
            other = None
            if t in NUMERIC and rng.random() < 0.25:
                others = [c for c, ct in schema.items() if ct in NUMERIC and c != col]
                if others:
                    other = ("col", rng.choice(others))
            if t == TS and rng.random() < 0.2:
                others = [c for c, ct in schema.items() if ct == TS and c != col]
                if others:
                    other = ("col", rng.choice(others))
            if other is None:
                other = ("lit", self.rand_lit(col, t))
            if rng.random() < 0.2:
                return ("cmp", other, op, v)
            return ("cmp", v, op, other)
        if r < 0.75:
            lits = [self.rand_lit(col, t) for _ in range(rng.randint(1, 4))]
            return ("in", v, rng.random() < 0.35, lits)
        lo, hi = self.rand_lit(col, t), self.rand_lit(col, t)
        if rng.random() < 0.8 and self.lit_key(lo) > self.lit_key(hi):
            lo, hi = hi, lo
        return ("between", v, rng.random() < 0.3, lo, hi)

    @staticmethod
    def lit_key(lit: Lit):
        if lit.kind == DATE:
            return epoch_us(date_midnight(lit.value))
        if lit.kind == TS:
            return epoch_us(lit.value)
        return lit.value

    def rand_expr(self, schema, segments_before, depth):
        rng = self.rng
        if depth == 0 or rng.random() < 0.3:
            return self.rand_pred(schema, segments_before)
        r = rng.random()
        if r < 0.2:
            return ("not", self.rand_expr(schema, segments_before, depth - 1))
        tag = "and" if r < 0.6 else "or"
        return (tag, [self.rand_expr(schema, segments_before, depth - 1) for _ in range(rng.randint(2, 3))])

    def gen_traits(self, windows):
        rng = self.rng
        aggs = ["count", "sum", "avg", "min", "max", "count_distinct", "first_seen", "last_seen",
                "days_since_last", "days_since_first"]
        rng.shuffle(aggs)
        for i, window in enumerate(windows):
            agg = aggs[i] if i < len(aggs) else rng.choice(aggs)
            arg = None
            if agg == "count":
                arg = rng.choice([None, None, "amount", "plan", "event_type"])
            elif agg in ("sum", "avg", "min", "max"):
                arg = "amount"
            elif agg == "count_distinct":
                arg = rng.choice(["plan", "event_type", "amount", "account_id"])
            where = self.rand_expr(EVENT_COLUMNS, [], 2) if rng.random() < 0.65 else None
            name = f"t{i}"
            self.traits.append((name, agg, arg, where, window))
            self.trait_types[name] = (
                INT if agg in ("count", "count_distinct", "days_since_last", "days_since_first")
                else TS if agg in ("first_seen", "last_seen") else FLOAT
            )

    def gen_segments(self):
        schema = dict(ACCOUNT_COLUMNS)
        schema.update(self.trait_types)
        self.rule_schema = schema
        names = []
        for i in range(self.rng.randint(10, 20)):
            name = f"s{i}"
            depth = self.rng.choice([1, 2, 2, 3])
            self.segments.append((name, self.rand_expr(schema, list(names), depth)))
            names.append(name)

    def generate(self):
        windows = self.gen_windows()
        self.gen_data(windows)
        self.gen_traits(windows)

    # -- rendering ---------------------------------------------------------------------------

    def trait_text(self, t) -> str:
        name, agg, arg, where, window = t
        kw = self.kw
        s = agg + "(" + (arg or "") + ")"
        if where is not None:
            s += " " + kw("where") + " " + render_seg(where, kw, self.rng)
        if window is not None:
            s += " " + kw("within") + f" {window[0]}{window[1]}"
        return s

    def trait_sql(self, t) -> str:
        name, agg, arg, where, window = t
        conds = ["e.account_id IS NOT NULL"]
        if window is not None:
            start = self.A - dt.timedelta(microseconds=self.window_us(window))
            conds.append(f"e.ts >= {sql_ts(start)}")
        if where is not None:
            conds.append(render_sql(where, EVENT_COLUMNS, "e", None))
        f = " FILTER (WHERE " + " AND ".join(conds) + ")"
        col = f'e."{arg}"' if arg else None
        if agg == "count":
            return f"COALESCE(COUNT({col or '*'}){f}, 0)"
        if agg == "count_distinct":
            return f"COALESCE(COUNT(DISTINCT {col}){f}, 0)"
        if agg == "sum":
            return f"COALESCE(SUM({col}){f}, CAST(0 AS DOUBLE))"
        if agg in ("avg", "min", "max"):
            return f"{agg.upper()}({col}){f}"
        if agg == "first_seen":
            return f"MIN(e.ts){f}"
        if agg == "last_seen":
            return f"MAX(e.ts){f}"
        if agg in ("days_since_last", "days_since_first"):
            m = "MAX" if agg == "days_since_last" else "MIN"
            return (
                f"CAST(floor((epoch_us({sql_ts(self.A)}) - epoch_us({m}(e.ts){f})) "
                f"/ 86400000000.0) AS BIGINT)"
            )
        raise AssertionError(agg)

    def toml(self) -> str:
        def inline(d):
            return "{ " + ", ".join(f'{k} = "{v}"' for k, v in d.items()) + " }"

        acc_cols = {k: v for k, v in ACCOUNT_COLUMNS.items() if k != "account_id"}
        ev_cols = {"event_type": STRING, "amount": FLOAT, "plan": STRING}
        lines = [
            "[project]",
            'name = "diff"',
            'entity = "account"',
            "",
            "[entities.account]",
            f'source = "accounts.{"parquet" if self.accounts_parquet else "csv"}"',
            'key = "account_id"',
        ]
        if not self.accounts_parquet or self.rng.random() < 0.5:
            lines.append("columns = " + inline(acc_cols))
        lines += [
            "",
            "[events]",
            f'source = "events.{"parquet" if self.events_parquet else "csv"}"',
            'entity_key = "account_id"',
            'time = "ts"',
            'type = "event_type"',
        ]
        if not self.events_parquet:
            lines.append("columns = " + inline({"ts": TS, **ev_cols}))
        elif self.rng.random() < 0.5:
            lines.append("columns = " + inline({"ts": TS}))
        lines += ["", "[traits]"]
        self.trait_texts = {}
        for t in self.traits:
            text = self.trait_text(t)
            self.trait_texts[t[0]] = text
            lines.append(f"{t[0]} = {json.dumps(text)}")
        self.rule_texts = {}
        for name, expr in self.segments:
            text = render_seg(expr, self.kw, self.rng)
            self.rule_texts[name] = text
            lines += ["", f"[segments.{name}]", f"rule = {json.dumps(text)}"]
        return "\n".join(lines) + "\n"

    # -- files -------------------------------------------------------------------------------

    def write(self, d: str, con):
        with open(os.path.join(d, "accounts.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            cols = list(ACCOUNT_COLUMNS)
            w.writerow(cols)
            for row in self.accounts:
                out = []
                for c in cols:
                    v = row[c]
                    if v is None:
                        out.append("")
                    elif isinstance(v, bool):
                        out.append("true" if v else "false")
                    elif isinstance(v, dt.date):
                        out.append(v.isoformat())
                    elif isinstance(v, float):
                        out.append(repr(v))
                    else:
                        out.append(str(v))
                w.writerow(out)
        with open(os.path.join(d, "events.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            cols = list(EVENT_COLUMNS)
            w.writerow(cols)
            for ev in self.events:
                w.writerow(["" if ev[c] is None else (repr(ev[c]) if isinstance(ev[c], float) else ev[c]) for c in cols])
        def read_csv(path, columns):
            spec = "{" + ", ".join(f"'{c}': '{DUCK_TYPE[t]}'" for c, t in columns.items()) + "}"
            return (
                f"read_csv({q(path)}, header = true, auto_detect = false, delim = ',', quote = '\"', "
                f"escape = '\"', nullstr = '', columns = {spec})"
            )

        con.execute(f"CREATE TABLE accounts AS SELECT * FROM {read_csv(os.path.join(d, 'accounts.csv'), ACCOUNT_COLUMNS)}")
        con.execute(f"CREATE TABLE events AS SELECT * FROM {read_csv(os.path.join(d, 'events.csv'), EVENT_COLUMNS)}")
        if self.accounts_parquet:
            p = os.path.join(d, "accounts.parquet")
            con.execute(f"COPY accounts TO {q(p)} (FORMAT parquet)")
            os.remove(os.path.join(d, "accounts.csv"))
        if self.events_parquet:
            p = os.path.join(d, "events.parquet")
            con.execute(f"COPY events TO {q(p)} (FORMAT parquet)")
            os.remove(os.path.join(d, "events.csv"))

        # the oracle must read what was meant: check DuckDB's parse against the generator's truth
        got = con.execute("SELECT count(*), coalesce(sum(epoch_us(ts)), 0) FROM events").fetchone()
        want = (len(self.events), sum(epoch_us(e["_t"]) for e in self.events))
        if (got[0], int(got[1])) != want:
            raise RuntimeError(f"duckdb read the events differently from what was generated: {got} vs {want}")
        got = con.execute("SELECT count(*), count(industry), count(employees), count(arr), count(is_active), count(signup_date) FROM accounts").fetchone()
        want = (len(self.accounts),) + tuple(
            sum(1 for r in self.accounts if r[c] is not None) for c in list(ACCOUNT_COLUMNS)[1:]
        )
        if tuple(got) != want:
            raise RuntimeError(f"duckdb read the accounts differently from what was generated: {got} vs {want}")


# ----------------------------------------------------------------------------------------------
# Running one case
# ----------------------------------------------------------------------------------------------


def fmt_val(v):
    if isinstance(v, float):
        return repr(v)
    return str(v)


def run_case(case: Case, d: str, segmenta: str) -> list[str]:
    """Returns a list of problem descriptions (empty when segmenta agrees)."""
    problems: list[str] = []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    case.generate()
    case.write(d, con)

    # -- expected -------------------------------------------------------------------------------
    trait_sql = {t[0]: case.trait_sql(t) for t in case.traits}
    select = ",\n  ".join(f'{trait_sql[n]} AS "{n}"' for n in trait_sql)
    query = (
        f"CREATE TABLE exp_traits AS SELECT a.account_id AS entity_id,\n  {select}\n"
        f"FROM accounts a LEFT JOIN (SELECT * FROM events WHERE ts < {sql_ts(case.A)}) e "
        f"ON e.account_id = a.account_id GROUP BY a.account_id"
    )
    con.execute(query)
    # literals in rules are drawn partly from the expected trait values, so that equality and
    # boundary comparisons hit
    for name, ty in case.trait_types.items():
        col = f'epoch_us("{name}")' if ty == TS else f'"{name}"'
        vals = [r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM exp_traits WHERE {col} IS NOT NULL").fetchall()]
        if ty == TS:
            vals = [dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=v) for v in vals]
        case.values[name] = vals
    case.gen_segments()
    with open(os.path.join(d, "segmenta.toml"), "w") as f:
        f.write(case.toml())
    con.execute(
        "CREATE TABLE ent AS SELECT a.*, t.* EXCLUDE (entity_id) FROM accounts a "
        "JOIN exp_traits t ON t.entity_id = a.account_id"
    )
    rule_sql = {}
    for name, expr in case.segments:
        sql = render_sql(expr, case.rule_schema, "ent", lambda s: f"exp_{s}")
        rule_sql[name] = sql
        con.execute(f"CREATE TABLE exp_{name} AS SELECT account_id AS entity_id FROM ent WHERE {sql} IS TRUE")

    # -- actual ---------------------------------------------------------------------------------
    out = os.path.join(d, "out")
    cmd = [segmenta, "run", "--project", d, "--as-of", case.as_of_date.isoformat(), "--output", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        problems.append(
            f"segmenta exited with {proc.returncode}\n  command: {' '.join(cmd)}\n"
            f"  stdout: {proc.stdout.strip()}\n  stderr: {proc.stderr.strip()}"
        )
        return problems
    for f in ("memberships.parquet", "traits.parquet", "summary.json"):
        if not os.path.exists(os.path.join(out, f)):
            problems.append(f"segmenta wrote no {f} in {out}")
    if problems:
        return problems
    try:
        with open(os.path.join(out, "summary.json")) as f:
            json.load(f)
    except ValueError as e:
        problems.append(f"summary.json is not JSON: {e}")

    tp = q(os.path.join(out, "traits.parquet"))
    mp = q(os.path.join(out, "memberships.parquet"))
    schema = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({tp})").fetchall()}
    mschema = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({mp})").fetchall()}
    if mschema.get("entity_id") != "VARCHAR" or mschema.get("segment") != "VARCHAR":
        problems.append(f"memberships.parquet has columns {mschema}, expected entity_id VARCHAR, segment VARCHAR")
        return problems
    if schema.get("entity_id") != "VARCHAR":
        problems.append(f"traits.parquet has no VARCHAR entity_id column: {schema}")
        return problems

    # -- compare traits -------------------------------------------------------------------------------
    ids_exp = {r[0] for r in con.execute("SELECT entity_id FROM exp_traits").fetchall()}
    rows = con.execute(f"SELECT entity_id, count(*) FROM read_parquet({tp}) GROUP BY 1").fetchall()
    ids_act = {r[0] for r in rows}
    dup = [r[0] for r in rows if r[1] != 1]
    if ids_exp != ids_act or dup:
        problems.append(
            f"traits.parquet entity ids differ: missing {sorted(ids_exp - ids_act)[:5]}, "
            f"extra {sorted(ids_act - ids_exp)[:5]}, duplicated {dup[:5]}"
        )
    for t in case.traits:
        name = t[0]
        ty = case.trait_types[name]
        if name not in schema:
            problems.append(f"trait {name} missing from traits.parquet (columns {list(schema)})")
            continue
        at = schema[name]
        ok_type = {
            INT: at in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "UINTEGER", "SMALLINT"),
            FLOAT: at in ("DOUBLE", "FLOAT"),
            TS: at.startswith("TIMESTAMP"),
        }[ty]
        if not ok_type:
            problems.append(f"trait {name} = {case.trait_texts[name]!r}: expected a {ty} column, traits.parquet has {at}")
            continue
        ex = "epoch_us(x)" if ty == TS else "x"
        exp = dict(con.execute(f'SELECT entity_id, {ex.replace("x", chr(34) + name + chr(34))} FROM exp_traits').fetchall())
        act = dict(con.execute(f'SELECT entity_id, {ex.replace("x", chr(34) + name + chr(34))} FROM read_parquet({tp})').fetchall())
        diffs = []
        for eid in sorted(ids_exp & ids_act):
            a, b = exp[eid], act[eid]
            if a is None or b is None:
                same = a is None and b is None
            elif ty == FLOAT:
                same = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
            else:
                same = a == b
            if not same:
                diffs.append((eid, a, b))
        if diffs:
            listing = "\n".join(f"      {eid}: expected {fmt_val(a)}, segmenta {fmt_val(b)}" for eid, a, b in diffs[:5])
            problems.append(
                f"trait {name} differs for {len(diffs)} of {len(ids_exp)} entities\n"
                f"  trait: {case.trait_texts[name]}\n  sql:   {trait_sql[name]}\n{listing}"
            )
            for eid, _, _ in diffs[:2]:
                evs = con.execute(
                    "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%SZ'), event_type, amount, plan FROM events "
                    "WHERE account_id = ? ORDER BY ts", [eid]
                ).fetchall()
                problems.append(f"    events of {eid} (as-of instant {fmt_ts_z(case.A)}): {evs[:40]}")

    # -- compare memberships --------------------------------------------------------------------------
    act_m: dict[str, set] = {}
    for eid, seg in con.execute(f"SELECT entity_id, segment FROM read_parquet({mp})").fetchall():
        act_m.setdefault(seg, set()).add(eid)
    names = [n for n, _ in case.segments]
    extra_segs = set(act_m) - set(names)
    if extra_segs:
        problems.append(f"memberships.parquet names unknown segments {sorted(extra_segs)}")
    cols = list(ACCOUNT_COLUMNS)[1:] + list(case.trait_types)
    for name in names:
        exp = {r[0] for r in con.execute(f"SELECT entity_id FROM exp_{name}").fetchall()}
        case.stats["memberships"] += len(exp)
        if 0 < len(exp) < case.n_accounts:
            case.stats["mixed"] += 1
        act = act_m.get(name, set())
        if exp != act:
            missing, extra = sorted(exp - act), sorted(act - exp)
            lines = [
                f"segment {name}: {len(missing)} expected members missing, {len(extra)} unexpected members",
                f"  rule: {case.rule_texts[name]}",
                f"  sql:  {rule_sql[name]}",
            ]
            for label, group in (("missing", missing), ("unexpected", extra)):
                for eid in group[:3]:
                    sel = ", ".join(
                        f"strftime(\"{c}\", '%Y-%m-%dT%H:%M:%SZ')" if case.rule_schema[c] == TS else f'"{c}"' for c in cols
                    )
                    row = con.execute(f"SELECT {sel} FROM ent WHERE account_id = ?", [eid]).fetchone()
                    attrs = ", ".join(f"{c}={fmt_val(v)}" for c, v in zip(cols, row)) if row else "(not an account)"
                    lines.append(f"    {label} {eid}: {attrs}")
            problems.append("\n".join(lines))
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--segmenta", required=True, help="path of the segmenta binary")
    ap.add_argument("--workdir", help="where to write the cases (kept); default: a temporary folder")
    ap.add_argument("--case", type=int, help="run only this case (0-based) of the seed")
    ap.add_argument("--keep", action="store_true", help="keep the case folders of passing cases")
    args = ap.parse_args()

    segmenta = os.path.abspath(args.segmenta)
    if not os.path.isfile(segmenta):
        print(f"differential: no segmenta binary at {segmenta}", file=sys.stderr)
        return 2
    keep = args.keep or args.workdir is not None
    root = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="segmenta-diff-")
    os.makedirs(root, exist_ok=True)

    passed = failed = 0
    for i in ([args.case] if args.case is not None else range(args.cases)):
        case = Case(args.seed, i)
        d = os.path.join(root, f"seed{args.seed}-case{i}")
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        try:
            problems = run_case(case, d, segmenta)
        except Exception as e:  # a bug in this script or DuckDB refusing our SQL
            problems = [f"the harness failed: {type(e).__name__}: {e}"]
        desc = (
            f"case {i} (seed {args.seed}): {case.n_accounts} accounts, {case.n_events} events "
            f"({'parquet' if case.events_parquet else 'csv'}), {len(case.traits)} traits, "
            f"{len(case.segments)} segments ({case.stats['mixed']} neither empty nor full, "
            f"{case.stats['memberships']} memberships), as-of {case.as_of_date}"
        )
        if problems:
            failed += 1
            print(f"{desc}: FAILED (project kept in {d})")
            print(f"  reproduce: {sys.executable} {sys.argv[0]} --seed {args.seed} --case {i} --segmenta {segmenta}")
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
            sys.stdout.flush()
        else:
            passed += 1
            print(f"{desc}: ok")
            sys.stdout.flush()
            if not keep:
                shutil.rmtree(d, ignore_errors=True)
    if not keep and failed == 0:
        shutil.rmtree(root, ignore_errors=True)
    print(f"differential: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
