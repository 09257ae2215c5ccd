#!/usr/bin/env python3
"""kmodes' k-prototypes answer for segmenta's differential test.

    cluster_kmodes.py INPUT.json  -> [{"cost", "labels", "n_iter", "gamma"}, ...]

INPUT.json holds a list of cases (one Python start for all of them), each
{"numeric": [[...]], "categorical": [["a", ...]], "init_numeric": [[...]],
"init_categorical": [["a", ...]], "gamma": 0.5, "max_iter": 100}. It runs
KPrototypes(init=[numeric, categorical codes], n_init=1) with the categorical columns after the
numeric ones; the initial categories are coded as kmodes codes the data (sorted distinct values
per column). Called by crates/ml/tests/integration/cluster/differential.rs; needs kmodes
(tests/differential/requirements.txt).
"""

import json
import sys

import numpy as np
from kmodes.kprototypes import KPrototypes


def run(spec):
    numeric = np.asarray(spec["numeric"], dtype=np.float64)
    categorical = np.asarray(spec["categorical"], dtype=object)
    p, q = numeric.shape[1], categorical.shape[1]
    data = np.empty((numeric.shape[0], p + q), dtype=object)
    data[:, :p] = numeric
    data[:, p:] = categorical
    codes = [{v: i for i, v in enumerate(np.unique(categorical[:, a]))} for a in range(q)]
    init_categorical = np.array([[codes[a][v] for a, v in enumerate(row)]
                                 for row in spec["init_categorical"]], dtype=np.uint16)
    init_numeric = np.asarray(spec["init_numeric"], dtype=np.float64)
    model = KPrototypes(n_clusters=init_numeric.shape[0], init=[init_numeric, init_categorical],
                        n_init=1, gamma=spec["gamma"], max_iter=spec.get("max_iter", 100))
    model.fit(data, categorical=list(range(p, p + q)))
    return {
        "cost": float(model.cost_),
        "labels": [int(v) for v in model.labels_],
        "n_iter": int(model.n_iter_),
        "gamma": float(model.gamma),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print(json.dumps([run(case) for case in cases]))


if __name__ == "__main__":
    main()
