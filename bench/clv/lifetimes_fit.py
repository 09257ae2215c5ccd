#!/usr/bin/env python3
"""Fits lifetimes' BG/NBD and Gamma-Gamma models to a summaries CSV (from generate.py) and
prints one JSON line: the parameters and the in-process fit time of each repetition (loading the
CSV excluded). The counterpart of `cargo run --profile bench -p segmenta-ml --example clv_bench`.

    python3 bench/clv/lifetimes_fit.py /tmp/clv_100k.csv --repeat 5
"""

import argparse
import json
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

warnings.simplefilter("ignore")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    data = pd.read_csv(args.csv)
    repeat = data[data["frequency"] > 0]
    seconds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        bg = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
        gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary"])
        seconds.append(time.perf_counter() - start)
    print(json.dumps({
        "tool": "lifetimes",
        "customers": len(data),
        "seconds": seconds,
        "bg_nbd": {k: float(bg.params_[k]) for k in ["r", "alpha", "a", "b"]},
        "gamma_gamma": {"p": float(gg.params_["p"]), "q": float(gg.params_["q"]), "gamma": float(gg.params_["v"])},
    }))


if __name__ == "__main__":
    main()
