#!/usr/bin/env python3
"""Cross-checks a segmenta run of the CDNOW example against DuckDB and lifetimes.

    python3 examples/cdnow/check.py RUN_DIR DATA_CSV

- DuckDB recomputes every trait of segmenta.toml from the transactions (the SQL an analyst would
  write: one GROUP BY with FILTER clauses) and the members of `repeat_buyers` and `big_spenders`;
- lifetimes summarises the transactions as of the calibration end (frequency, recency, T in
  weeks, monetary value) and fits BetaGeoFitter and GammaGammaFitter on that summary.

Prints one JSON document (the comparisons and the largest differences) and exits 1 when a figure
disagrees: traits exactly (floats to 1e-9 relative), members exactly, the summary to 1e-9,
the fitted parameters to 1e-3 relative (two optimisers on the same likelihood).
"""

import json
import os
import sys
import warnings

import duckdb
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")

AS_OF = "1997-10-01 00:00:00"  # as_of = "1997-09-30": the whole day counts
CALIBRATION_END = "1997-09-30"


def relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    diff = np.where(both_nan, 0.0, np.abs(a - b) / scale)
    return float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if len(diff) else 0.0


def main() -> int:
    run_dir, data = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW t AS SELECT * FROM (SELECT customer_id, strptime(date, '%Y%m%d') AS ts, quantity, amount "
        f"FROM read_csv('{data}', header=true, columns={{'customer_id':'VARCHAR','date':'VARCHAR','quantity':'BIGINT','amount':'DOUBLE'}})) "
        f"WHERE ts < TIMESTAMP '{AS_OF}'"
    )
    expected = con.execute(
        f"""
        SELECT customer_id AS entity_id,
               count(*) AS orders,
               sum(amount) AS revenue,
               sum(quantity) AS units,
               min(ts) AS first_order,
               max(ts) AS last_order,
               date_diff('day', max(ts), TIMESTAMP '{AS_OF}') - CASE WHEN max(ts) + INTERVAL (date_diff('day', max(ts), TIMESTAMP '{AS_OF}')) DAY > TIMESTAMP '{AS_OF}' THEN 1 ELSE 0 END AS days_since_last_order,
               count(*) FILTER (WHERE ts >= TIMESTAMP '{AS_OF}' - INTERVAL 90 DAY) AS orders_90d,
               avg(amount) AS avg_order
        FROM t GROUP BY customer_id ORDER BY customer_id
        """
    ).df()
    got = con.execute(f"SELECT * FROM read_parquet('{os.path.join(run_dir, 'traits.parquet')}') ORDER BY entity_id").df()
    report = {"customers": {"segmenta": len(got), "duckdb": len(expected)}}
    ok = len(got) == len(expected) and list(got["entity_id"]) == list(expected["entity_id"])
    traits = {}
    for column in ["orders", "units", "orders_90d", "days_since_last_order"]:
        same = bool((got[column].astype("int64").values == expected[column].astype("int64").values).all())
        traits[column] = "identical" if same else "DIFFERENT"
        ok &= same
    for column in ["revenue", "avg_order"]:
        worst = relative(got[column], expected[column])
        traits[column] = f"max relative difference {worst:.1e}"
        ok &= worst <= 1e-9
    for column in ["first_order", "last_order"]:
        a = pd.to_datetime(got[column]).dt.tz_localize(None).values
        same = bool((a == pd.to_datetime(expected[column]).values).all())
        traits[column] = "identical" if same else "DIFFERENT"
        ok &= same
    report["traits"] = traits

    members = con.execute(
        f"SELECT segment, entity_id FROM read_parquet('{os.path.join(run_dir, 'memberships.parquet')}')"
    ).df()
    segments = {}
    for name, sql in [("repeat_buyers", "count(*) >= 2"), ("big_spenders", "sum(amount) >= 250")]:
        want = set(con.execute(f"SELECT customer_id FROM t GROUP BY customer_id HAVING {sql}").df()["customer_id"])
        have = set(members[members["segment"] == name]["entity_id"])
        segments[name] = {"size": len(have), "identical": have == want}
        ok &= have == want
    report["segments"] = segments

    # lifetimes: the summary in days divided by 7 (its freq="W" counts calendar weeks instead).
    frame = con.execute("SELECT customer_id, ts::DATE AS date, amount FROM t").df()
    frame["date"] = pd.to_datetime(frame["date"])
    summary = summary_data_from_transaction_data(
        frame, "customer_id", "date", monetary_value_col="amount", observation_period_end=CALIBRATION_END, freq="D"
    ).sort_index()
    summary["recency"] /= 7.0
    summary["T"] /= 7.0
    ours = got.set_index("entity_id").loc[summary.index]
    summary_diff = {
        "frequency": relative(ours["clv_frequency"], summary["frequency"]),
        "recency": relative(ours["clv_recency"], summary["recency"]),
        "T": relative(ours["clv_t"], summary["T"]),
        "monetary": relative(ours["clv_monetary"].where(summary["frequency"] > 0, 0.0), summary["monetary_value"]),
    }
    report["summary_max_relative_difference"] = summary_diff
    ok &= all(v <= 1e-9 for v in summary_diff.values())

    with open(os.path.join(run_dir, "clv_params.json")) as f:
        params = json.load(f)
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]  # as segmenta: usable repeat buyers
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    fits = {}
    for model, fitted, names in [("bg_nbd", bgf, ["r", "alpha", "a", "b"]), ("gamma_gamma", ggf, ["p", "q", "v"])]:
        for name in names:
            ours_name = "gamma" if name == "v" else name
            theirs = float(fitted.params_[name])
            mine = float(params[model][ours_name])
            fits[f"{model}.{ours_name}"] = {"segmenta": mine, "lifetimes": theirs, "relative": abs(mine - theirs) / abs(theirs)}
            ok &= abs(mine - theirs) / abs(theirs) <= 1e-3
    report["fits"] = fits
    report["agree"] = bool(ok)
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
