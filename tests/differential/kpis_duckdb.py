#!/usr/bin/env python3
"""Differential test of `segmenta kpis`: every KPI of every row recomputed with DuckDB SQL over
the same run folders (memberships.parquet, traits.parquet, table.parquet) and, for goal
conversion, over the project's events file, following the definitions of docs/kpis.md.

Usage:
    python3 tests/differential/kpis_duckdb.py --segmenta BIN --project DIR --at A --compare B \
        --revenue COLUMN --goal-sql "event_type = 'x'" --goal-days 90 --events data/events.parquet \
        [--by segment|owner]   (owners are read from the project's segmenta.toml)

Prints "kpis differential: N rows agree" and exits 0, or lists the differences and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import tomllib

import duckdb
from run_folders import q, same, segmenta_json, verdict


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segmenta", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--at", required=True)
    ap.add_argument("--compare", required=True)
    ap.add_argument("--revenue", required=True)
    ap.add_argument("--goal-sql", required=True)
    ap.add_argument("--goal-days", type=int, required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--by", default="segment")
    args = ap.parse_args()

    report = segmenta_json(args.segmenta, "kpis", "--project", args.project, "--at", args.at,
                           "--compare", args.compare, "--by", args.by, "--threads", "1")
    snapshots = {s["id"]: s for s in segmenta_json(args.segmenta, "snapshots", "--project", args.project)["snapshots"]}
    at = snapshots[report["at"]["id"]]
    start = snapshots[report["compare"]["start"]["id"]]
    end = snapshots[report["compare"]["end"]["id"]]

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, snap in (("a", at), ("s", start), ("t", end)):
        run = snap["run_dir"]
        con.execute(f"CREATE TABLE {name}_ent AS SELECT entity_id FROM read_parquet({q(run + '/traits.parquet')})")
        con.execute(f"CREATE TABLE {name}_mem AS SELECT entity_id, segment FROM read_parquet({q(run + '/memberships.parquet')})")
        con.execute(
            f"CREATE TABLE {name}_rev AS SELECT entity_id, coalesce(CAST(\"{args.revenue}\" AS DOUBLE), 0) AS r "
            f"FROM read_parquet({q(run + '/table.parquet')})"
        )
    # Goal converters: an event in [as_of(A), as_of(A) + window).
    con.execute(
        f"CREATE TABLE conv AS SELECT DISTINCT CAST(account_id AS VARCHAR) AS entity_id FROM read_parquet({q(args.events)}) "
        f"WHERE ts >= TIMESTAMPTZ {q(at['as_of'])} AND ts < TIMESTAMPTZ {q(at['as_of'])} + INTERVAL {args.goal_days} DAY "
        f"AND ({args.goal_sql})"
    )
    # Owners as the project file gives them (segments and movements).
    with open(f"{args.project}/segmenta.toml", "rb") as fh:
        config = tomllib.load(fh)
    owners = {name: section.get("owner") for kind in ("segments", "movements")
              for name, section in config.get(kind, {}).items()}

    def group_members(table, row_name):
        if row_name == "(all)":
            return f"SELECT entity_id FROM {table.split('_')[0]}_ent"
        if args.by == "owner":
            owned = [s for s, o in owners.items() if o]
            if row_name == "(none)":  # every segment without an owner (tiers, RFM and models too)
                listed = ", ".join(q(s) for s in owned) or "NULL"
                return f"SELECT DISTINCT entity_id FROM {table} WHERE segment NOT IN ({listed})"
            listed = ", ".join(q(s) for s in owned if owners[s] == row_name) or "NULL"
            return f"SELECT DISTINCT entity_id FROM {table} WHERE segment IN ({listed})"
        return f"SELECT entity_id FROM {table} WHERE segment = {q(row_name)}"

    def one(sql):
        return con.execute(sql).fetchone()[0]

    def expected(row_name):
        m, c, mt = group_members("a_mem", row_name), group_members("s_mem", row_name), group_members("t_mem", row_name)
        size = one(f"SELECT count(*) FROM ({m})")
        revenue = one(f"SELECT coalesce(sum(r), 0) FROM a_rev WHERE entity_id IN ({m})")
        logos = f"SELECT x.entity_id FROM ({c}) x JOIN s_rev USING (entity_id) WHERE s_rev.r > 0"
        cohort = one(f"SELECT count(*) FROM ({logos})")
        retained = one(
            f"SELECT count(*) FROM ({logos}) x WHERE x.entity_id IN (SELECT entity_id FROM t_ent) "
            f"AND coalesce((SELECT r FROM t_rev WHERE t_rev.entity_id = x.entity_id), 0) > 0"
        )
        base, kept, now = con.execute(
            f"SELECT sum(coalesce(s.r, 0)), sum(least(coalesce(t.r, 0), coalesce(s.r, 0))), sum(coalesce(t.r, 0)) "
            f"FROM ({c}) x LEFT JOIN s_rev s USING (entity_id) LEFT JOIN t_rev t USING (entity_id)"
        ).fetchone()
        acquired = one(f"SELECT count(*) FROM ({mt}) WHERE entity_id NOT IN (SELECT entity_id FROM s_ent)")
        converted = one(f"SELECT count(*) FROM ({m}) WHERE entity_id IN (SELECT entity_id FROM conv)")
        entities = one("SELECT count(*) FROM a_ent")
        ratio = lambda a, b: None if not b else a / b  # noqa: E731
        logo = ratio(retained, cohort)
        return {
            "size": size, "share": size / entities if entities else 0.0, "revenue": revenue,
            "arpa": ratio(revenue, size), "start_members": cohort, "retained": retained, "logo_retention": logo,
            "logo_churn": None if logo is None else 1 - logo, "grr": ratio(kept or 0.0, base or 0.0),
            "nrr": ratio(now or 0.0, base or 0.0), "acquired": acquired, "converted": converted,
            "conversion": ratio(converted, size),
        }

    problems = []
    rows = [report["population"], *report["rows"]]
    for row in rows:
        want = expected(row["name"])
        for key, value in want.items():
            got = row[key]
            if not same(got, value, 1e-9):
                problems.append(f"{row['name']}.{key}: segmenta {got}, duckdb {value}")
    return verdict("kpis", problems, f"{len(rows)} rows agree")


if __name__ == "__main__":
    sys.exit(main())
