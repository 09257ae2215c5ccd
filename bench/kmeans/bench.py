#!/usr/bin/env python3
"""Side-by-side timing of segmenta's k-means and scikit-learn's KMeans (lloyd and elkan).

Both sides read the same matrix from one file (raw little-endian float64, row-major), use the
same number of threads, the same k, one k-means++ seeding (greedy, 2 + ln k local trials on both
sides) and the same tolerance (1e-4, relative to the mean column variance on both sides). Every
measurement is a fresh process that loads the file and then times the fit alone; the three
implementations run in turn, round after round (the order rotates each round), after warm-up
rounds that are not counted. Round r uses seed r on every side (the generators differ, so the
seedings differ: compare medians, not single rounds).

Usage (from the workspace root):

    cargo build --profile bench -p segmenta-ml --example kmeans_bench
    python3 bench/kmeans/bench.py --rust-bin "$CARGO_TARGET_DIR/release/examples/kmeans_bench"

Options: --rows 1000000 --cols 16 --k 8 --threads 2 --runs 5 --warmup 1
--datasets separated,overlapping --data-dir /tmp/segmenta-kmeans-bench. Only the standard library,
NumPy and scikit-learn are needed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DATASETS = {
    # make_blobs with k centres in the default box (-10, 10): std 1 gives well-separated
    # blobs, std 6 heavily overlapping ones.
    "separated": 1.0,
    "overlapping": 6.0,
}


def data_path(args, name):
    return os.path.join(args.data_dir, f"{name}-{args.rows}x{args.cols}-k{args.k}.f64")


def generate(args, name):
    path = data_path(args, name)
    if os.path.exists(path):
        return path
    from sklearn.datasets import make_blobs

    os.makedirs(args.data_dir, exist_ok=True)
    x, _ = make_blobs(
        n_samples=args.rows,
        n_features=args.cols,
        centers=args.k,
        cluster_std=DATASETS[name],
        random_state=42,
    )
    x.astype("<f8").tofile(path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def sklearn_worker(args):
    """One timed fit, in a process whose thread pools were limited before NumPy was loaded."""
    import numpy as np
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = np.fromfile(args.data, dtype="<f8").reshape(args.rows, args.cols)
    with threadpool_limits(limits=args.threads):
        model = KMeans(
            n_clusters=args.k,
            init="k-means++",
            n_init=1,
            algorithm=args.algorithm,
            random_state=args.seed,
            tol=1e-4,
            max_iter=300,
        )
        start = time.perf_counter()
        model.fit(x)
        seconds = time.perf_counter() - start
    print(json.dumps({
        "impl": f"sklearn-{args.algorithm}",
        "seconds": seconds,
        "inertia": float(model.inertia_),
        "n_iter": int(model.n_iter_),
    }))


def run_one(args, impl, path, seed):
    env = dict(os.environ)
    threads = str(args.threads)
    env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               RAYON_NUM_THREADS=threads)
    if impl == "segmenta":
        command = [args.rust_bin, path, str(args.rows), str(args.cols), str(args.k), str(seed), threads]
    else:
        command = [sys.executable, __file__, "--worker", "--algorithm", impl.split("-", 1)[1],
                   "--data", path, "--rows", str(args.rows), "--cols", str(args.cols),
                   "--k", str(args.k), "--seed", str(seed), "--threads", threads]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=16)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--datasets", default="separated,overlapping")
    parser.add_argument("--data-dir", default="/tmp/segmenta-kmeans-bench")
    parser.add_argument("--rust-bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "examples", "kmeans_bench"))
    parser.add_argument("--json", help="also write every measurement to this file")
    # Worker mode (internal).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sklearn_worker(args)
        return
    if not os.path.exists(args.rust_bin):
        sys.exit(f"no {args.rust_bin}: build it with "
                 "`cargo build --profile bench -p segmenta-ml --example kmeans_bench`")

    impls = ["segmenta", "sklearn-lloyd", "sklearn-elkan"]
    everything = []
    print(f"k-means, {args.rows} x {args.cols}, k = {args.k}, one k-means++ seeding, "
          f"{args.threads} threads, {args.runs} counted rounds after {args.warmup} warm-up")
    for name in args.datasets.split(","):
        path = generate(args, name)
        results = {impl: [] for impl in impls}
        for round_no in range(args.warmup + args.runs):
            order = impls[round_no % len(impls):] + impls[:round_no % len(impls)]
            for impl in order:
                measurement = run_one(args, impl, path, seed=round_no)
                measurement.update(dataset=name, round=round_no, counted=round_no >= args.warmup)
                everything.append(measurement)
                if round_no >= args.warmup:
                    results[impl].append(measurement)
        print(f"\n## {name} blobs (cluster_std {DATASETS[name]})")
        print("| implementation | median wall s | min-max s | median inertia | iterations |")
        print("|---|---|---|---|---|")
        for impl in impls:
            rows = results[impl]
            seconds = [r["seconds"] for r in rows]
            print(f"| {impl} | {statistics.median(seconds):.3f} | {min(seconds):.3f}-{max(seconds):.3f} "
                  f"| {statistics.median(r['inertia'] for r in rows):.6e} "
                  f"| {', '.join(str(r['n_iter']) for r in rows)} |")
        ours = results["segmenta"]
        init = statistics.median(r["init_seconds"] for r in ours)
        print(f"segmenta's k-means++ seeding alone: median {init:.3f} s")
        for other in impls[1:]:
            theirs = results[other]
            ratio_of_medians = (statistics.median(r["seconds"] for r in ours)
                                / statistics.median(r["seconds"] for r in theirs))
            paired = statistics.median(a["seconds"] / b["seconds"] for a, b in zip(ours, theirs))
            inertia = (statistics.median(r["inertia"] for r in ours)
                       / statistics.median(r["inertia"] for r in theirs) - 1)
            worst = max(abs(a["inertia"] / b["inertia"] - 1) for a, b in zip(ours, theirs))
            print(f"segmenta / {other}: ratio of medians {ratio_of_medians:.3f}, median of round "
                  f"ratios {paired:.3f}; median inertia relative difference {inertia:+.1e} "
                  f"(largest round difference {worst:.1e}; rounds differ in seeding)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
