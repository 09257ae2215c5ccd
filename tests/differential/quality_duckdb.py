#!/usr/bin/env python3
"""Differential test of `segmenta quality`: the value of every check of every segment recomputed
with DuckDB over the run folders and the contacts file (docs/quality.md's definitions).

    python3 tests/differential/quality_duckdb.py --segmenta BIN --project DIR --at A \
        --contacts data/contacts.parquet --reachable-sql "email IS NOT NULL AND consent_email_marketing"

Prints "quality differential: N segments agree" (exit 0) or the differences (exit 1).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib

import duckdb
from run_folders import q, same, segmenta_json, verdict


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segmenta", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--at", required=True)
    ap.add_argument("--contacts", required=True)
    ap.add_argument("--reachable-sql", required=True)
    args = ap.parse_args()
    report = segmenta_json(args.segmenta, "quality", "--project", args.project, "--at", args.at, "--threads", "1")
    snapshots = {s["id"]: s for s in segmenta_json(args.segmenta, "snapshots", "--project", args.project)["snapshots"]}
    at = snapshots[report["at"]["id"]]["run_dir"]
    prev = snapshots[report["previous"]["id"]]["run_dir"] if report["previous"] else None
    with open(f"{args.project}/segmenta.toml", "rb") as fh:
        config = tomllib.load(fh)
    parents = {name: s.get("parent") for name, s in config.get("segments", {}).items()}
    movements = set(config.get("movements", {}))

    con = duckdb.connect()
    con.execute(f"CREATE TABLE mem AS SELECT * FROM read_parquet({q(at + '/memberships.parquet')})")
    con.execute(f"CREATE TABLE tab AS SELECT * FROM read_parquet({q(at + '/table.parquet')})")
    if prev:
        con.execute(f"CREATE TABLE prev AS SELECT * FROM read_parquet({q(prev + '/memberships.parquet')})")
    con.execute(
        f"CREATE TABLE reach AS SELECT DISTINCT CAST(account_id AS VARCHAR) AS entity_id "
        f"FROM read_parquet({q(args.contacts)}) WHERE {args.reachable_sql}"
    )
    names = [s["segment"] for s in report["segments"]]
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731

    problems = []
    for seg in report["segments"]:
        name = seg["segment"]
        checks = {c["check"]: c for c in seg["checks"]}
        want = {}
        size = one(f"SELECT count(*) FROM mem WHERE segment = {q(name)}")
        want["substantial"] = float(size)
        if size:
            want["accessible"] = one(
                f"SELECT count(*) FROM mem WHERE segment = {q(name)} AND entity_id IN (SELECT entity_id FROM reach)"
            ) / size
        best = None
        for other in names:
            if other == name or parents.get(name) == other or parents.get(other) == name:
                continue
            inter = one(f"SELECT count(*) FROM mem a JOIN mem b USING (entity_id) WHERE a.segment = {q(name)} AND b.segment = {q(other)}")
            union = size + one(f"SELECT count(*) FROM mem WHERE segment = {q(other)}") - inter
            if union and (best is None or inter / union > best):
                best = inter / union
        want["differentiated"] = best
        if prev and name not in movements and checks["stable"]["value"] is not None:
            changed = one(
                f"SELECT count(*) FROM ((SELECT entity_id FROM mem WHERE segment = {q(name)} EXCEPT SELECT entity_id FROM prev WHERE segment = {q(name)}) "
                f"UNION ALL (SELECT entity_id FROM prev WHERE segment = {q(name)} EXCEPT SELECT entity_id FROM mem WHERE segment = {q(name)}))"
            )
            union = one(
                f"SELECT count(*) FROM (SELECT entity_id FROM mem WHERE segment = {q(name)} UNION SELECT entity_id FROM prev WHERE segment = {q(name)})"
            )
            want["stable"] = changed / union if union else None
        m = re.match(r"`([^`]+)`", checks["measurable"]["reason"])
        if m:
            want["measurable"] = one(f'SELECT avg(CASE WHEN "{m.group(1)}" IS NULL THEN 1.0 ELSE 0.0 END) FROM tab')
        for key, value in want.items():
            got = checks[key]["value"]
            if not same(got, value, 1e-12):
                problems.append(f"{name}.{key}: segmenta {got}, duckdb {value}")
            if got is not None and checks[key]["pass"] != (
                got >= checks[key]["threshold"] if key in ("accessible", "substantial") else got <= checks[key]["threshold"]
            ):
                problems.append(f"{name}.{key}: pass {checks[key]['pass']} but {got} vs threshold {checks[key]['threshold']}")
        if seg["pass"] != all(c["pass"] for c in seg["checks"]):
            problems.append(f"{name}: pass is not every check passing")
    return verdict("quality", problems, f"{len(report['segments'])} segments agree")


if __name__ == "__main__":
    sys.exit(main())
