#!/usr/bin/env python3
"""Writes customer summaries for the CLV benchmark as CSV (`frequency,recency,T,monetary`).

    python3 bench/clv/generate.py synthetic --customers 100000 --seed 1 --out /tmp/clv_100k.csv
    python3 bench/clv/generate.py cdnow --out /tmp/clv_cdnow.csv

`synthetic` simulates the BG/NBD purchase process and Gamma-Gamma spend, in days, with
r = 0.6, alpha = 40, a = 0.9, b = 3.5 and p = 3, q = 4, gamma = 40; customer ages are whole days
drawn uniformly in 1..730 and recency is the last purchase's whole day, as summaries of real
event data are. `cdnow` is lifetimes' summary of the CDNOW sample as of 1997-09-30 in weeks (the
paper's convention: days / 7), from crates/ml/test-data/clv/CDNOW_sample.txt.
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def synthetic(customers, seed):
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.6, 40.0, 0.9, 3.5
    p, q, gamma = 3.0, 4.0, 40.0
    age = rng.integers(1, 731, size=customers).astype(float)
    rate = rng.gamma(r, 1.0 / alpha, size=customers)
    dropout = rng.beta(a, b, size=customers)
    time = np.zeros(customers)
    last = np.zeros(customers)
    count = np.zeros(customers, dtype=np.int64)
    active = np.ones(customers, dtype=bool)
    while active.any():
        index = np.flatnonzero(active)
        time[index] += rng.exponential(1.0 / rate[index])
        within = time[index] <= age[index]
        bought = index[within]
        count[bought] += 1
        last[bought] = time[bought]
        stays = rng.random(bought.size) >= dropout[bought]
        active[:] = False
        active[bought[stays]] = True
    nu = rng.gamma(q, 1.0 / gamma, size=customers)
    monetary = np.zeros(customers)
    repeat = count > 0
    monetary[repeat] = rng.gamma(p * count[repeat], 1.0 / nu[repeat]) / count[repeat]
    recency = np.floor(last)
    return count.astype(float), recency, age, monetary


def cdnow():
    sys.path.insert(0, os.path.join(ROOT, "tests", "differential"))
    from clv_lifetimes import cdnow_summary

    summary = cdnow_summary(os.path.join(ROOT, "crates", "ml", "test-data", "clv", "CDNOW_sample.txt"))
    return (
        summary["frequency"].to_numpy(),
        summary["recency"].to_numpy(),
        summary["T"].to_numpy(),
        summary["monetary_value"].to_numpy(),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", choices=["synthetic", "cdnow"])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    columns = synthetic(args.customers, args.seed) if args.data == "synthetic" else cdnow()
    with open(args.out, "w") as out:
        out.write("frequency,recency,T,monetary\n")
        for x, tx, t, m in zip(*columns):
            out.write(f"{int(x)},{float(tx)!r},{float(t)!r},{float(m)!r}\n")


if __name__ == "__main__":
    main()
