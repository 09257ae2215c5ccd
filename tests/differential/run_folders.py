"""What the run-folder differential tests (kpis_duckdb.py, quality_duckdb.py) share: quoting
for DuckDB SQL and calling `segmenta --json`."""

from __future__ import annotations

import json
import math
import subprocess
import sys


def q(text):
    """A DuckDB string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def segmenta_json(binary, *args):
    """Runs `segmenta --json ARGS` and returns its parsed output; exits on failure."""
    out = subprocess.run([binary, "--json", *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"segmenta {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout)


def same(got, want, abs_tol):
    """Both NULL, or both numbers equal to 1e-9 relative (`abs_tol` absolute)."""
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=abs_tol)


def verdict(name, problems, agreed):
    """Prints the differences (or `NAME differential: AGREED`) and returns the exit status."""
    if problems:
        print("\n".join(problems[:40]))
        print(f"{name} differential: {len(problems)} difference(s)")
        return 1
    print(f"{name} differential: {agreed}")
    return 0
