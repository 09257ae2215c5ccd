"""What the run-folder differential tests (kpis_duckdb.py, quality_duckdb.py) share: quoting
for DuckDB SQL and calling `segmenta --json`."""

from __future__ import annotations

import json
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
