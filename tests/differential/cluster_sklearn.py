#!/usr/bin/env python3
"""scikit-learn's answers for segmenta's clustering differential tests.

    cluster_sklearn.py kmeans INPUT.json    -> [{"inertia", "labels", "n_iter", "centers"}, ...]
    cluster_sklearn.py metrics INPUT.json   -> [{"silhouette", "calinski_harabasz",
                                                 "davies_bouldin", "adjusted_rand"}, ...]

INPUT.json holds a list of cases (one Python start for all of them). A `kmeans` case:
{"data": [[...]], "init": [[...]], "max_iter": 300, "tol": 1e-4}; it runs
KMeans(init=given centroids, n_init=1, algorithm="lloyd") in float64. A `metrics` case:
{"data": [[...]], "labels": [...], "labels_true": [...]}. The JSON list of answers is printed
on stdout. Called by crates/ml/tests/integration/cluster/differential.rs; needs scikit-learn
(tests/differential/requirements.txt).
"""

import json
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score,
                             silhouette_score)


def kmeans(spec):
    data = np.asarray(spec["data"], dtype=np.float64)
    init = np.asarray(spec["init"], dtype=np.float64)
    model = KMeans(n_clusters=init.shape[0], init=init, n_init=1, algorithm="lloyd",
                   max_iter=spec.get("max_iter", 300), tol=spec.get("tol", 1e-4))
    model.fit(data)
    return {
        "inertia": float(model.inertia_),
        "labels": [int(v) for v in model.labels_],
        "n_iter": int(model.n_iter_),
        "centers": model.cluster_centers_.tolist(),
    }


def metrics(spec):
    data = np.asarray(spec["data"], dtype=np.float64)
    labels = np.asarray(spec["labels"])
    return {
        "silhouette": float(silhouette_score(data, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(data, labels)),
        "davies_bouldin": float(davies_bouldin_score(data, labels)),
        "adjusted_rand": float(adjusted_rand_score(spec["labels_true"], labels)),
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("kmeans", "metrics"):
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    answer = kmeans if sys.argv[1] == "kmeans" else metrics
    print(json.dumps([answer(case) for case in cases]))


if __name__ == "__main__":
    main()
