#!/usr/bin/env python3
"""Side-by-side of the CLV fit (BG/NBD + Gamma-Gamma): lifetimes 0.11.3 against segmenta-ml.

    cargo build --profile bench -p segmenta-ml --example clv_bench
    python3 bench/clv/compare.py --segmenta target/release/examples/clv_bench --repeat 7

(with CARGO_TARGET_DIR set, the binary is under "$CARGO_TARGET_DIR/release/examples/").
Generates the CDNOW summary and a 100,000-customer synthetic set (bench/clv/generate.py; add
--million for a 1,000,000-customer set, segmenta only), times each tool's fit in-process
(median of --repeat runs, reading the data excluded), and prints a Markdown table with the
ratio and the largest relative difference between the two tools' parameters.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PARAMETERS = {"bg_nbd": ["r", "alpha", "a", "b"], "gamma_gamma": ["p", "q", "gamma"]}


def run_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate(kind, path, customers=None, seed=1):
    command = [sys.executable, os.path.join(HERE, "generate.py"), kind, "--out", path]
    if customers:
        command += ["--customers", str(customers), "--seed", str(seed)]
    subprocess.run(command, check=True)


def max_relative_difference(a, b):
    worst = 0.0
    for model, names in PARAMETERS.items():
        for name in names:
            x, y = a[model][name], b[model][name]
            worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segmenta", required=True, help="path of the clv_bench example binary")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--million", action="store_true", help="also time segmenta on 1,000,000 customers")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("CDNOW (weeks)", "cdnow", None, 1), ("synthetic (days)", "synthetic", 100_000, 1)]
        if args.million:
            sets.append(("synthetic (days)", "synthetic", 1_000_000, 2))
        for label, kind, customers, seed in sets:
            path = os.path.join(tmp, f"{kind}_{customers}.csv")
            generate(kind, path, customers, seed)
            ours = run_json([args.segmenta, path, "--repeat", str(args.repeat)])
            theirs = None
            if customers != 1_000_000:
                theirs = run_json([sys.executable, os.path.join(HERE, "lifetimes_fit.py"), path, "--repeat", str(args.repeat)])
            rows.append((label, ours, theirs))
    print("| data | customers | lifetimes median (s) | segmenta median (s) | ratio | max relative parameter difference | segmenta threads |")
    print("|---|---|---|---|---|---|---|")
    for label, ours, theirs in rows:
        ours_median = statistics.median(ours["seconds"])
        if theirs is None:
            print(f"| {label} | {ours['customers']:,} | - | {ours_median:.4f} | - | - | {ours['threads']} |")
            continue
        theirs_median = statistics.median(theirs["seconds"])
        print(
            f"| {label} | {ours['customers']:,} | {theirs_median:.4f} | {ours_median:.4f} | "
            f"{theirs_median / ours_median:.0f}x | {max_relative_difference(ours, theirs):.1e} | {ours['threads']} |"
        )


if __name__ == "__main__":
    main()
