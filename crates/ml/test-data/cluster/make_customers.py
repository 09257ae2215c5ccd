#!/usr/bin/env python3
"""Writes customers.csv, the fixed dataset of segmenta-ml's discovery snapshot test.

Three groups of 100 accounts (healthcare enterprise accounts with a high ARR and few logins,
retail accounts on the basic plan with many logins, technology accounts on the pro plan with
many support tickets), with about
5% of ARR and industry values missing. Empty fields are missing values. Rerunning this script
gives the same file (NumPy's legacy RandomState with a fixed seed).
"""

import numpy as np

rng = np.random.RandomState(7)
rows = []
groups = [
    # industry, plan, log-ARR mean, logins mean, tickets mean
    ("healthcare", "enterprise", 11.0, 4, 2.0),
    ("retail", "basic", 8.0, 30, 1.0),
    ("technology", "pro", 9.5, 15, 8.0),
]
for industry, plan, log_arr, logins, tickets in groups:
    for _ in range(100):
        arr = round(float(np.exp(rng.normal(log_arr, 0.8))), 2)
        row = {
            "arr": "" if rng.rand() < 0.05 else f"{arr:.2f}",
            "logins": str(max(0, int(rng.normal(logins, logins / 4 + 1)))),
            "support tickets": str(rng.poisson(tickets)),
            "industry": "" if rng.rand() < 0.05 else (industry if rng.rand() < 0.85 else
                                                       rng.choice(["healthcare", "retail", "technology"])),
            "plan": plan if rng.rand() < 0.8 else rng.choice(["basic", "pro", "enterprise", "founder's"]),
        }
        rows.append(row)
order = rng.permutation(len(rows))
with open("customers.csv", "w") as f:
    f.write("arr,logins,support tickets,industry,plan\n")
    for i in order:
        r = rows[i]
        f.write(",".join([r["arr"], r["logins"], r["support tickets"], r["industry"], r["plan"]]) + "\n")
