#!/usr/bin/env python3
"""Reference figures from `lifetimes` 0.11.3 for segmenta's CLV models (segmenta-ml `clv`).

Prints one JSON document on standard output:

- "summaries": lifetimes' summary of the CDNOW sample as of 1997-09-30 in weeks (frequency,
  recency, T, monetary_value per customer id), to check segmenta's `summarize` convention;
- "fits": BetaGeoFitter and GammaGammaFitter on that summary, plain and with a penalizer;
- "cases": for fixed parameters and a handful of customer histories, lifetimes'
  conditional_probability_alive, conditional_expected_number_of_purchases_up_to_time,
  conditional_expected_average_profit and customer_lifetime_value;
- "holdout": lifetimes' calibration_and_holdout_data of the whole sample (calibration end
  1997-09-30, observation end 1998-06-30, in weeks), a BetaGeoFitter fitted on the calibration
  columns, its conditional_expected_number_of_purchases_up_to_time over the holdout per customer,
  and the table plot_calibration_purchases_vs_holdout_purchases draws (mean actual and predicted
  holdout purchases by frequency_cal; every group, not only the first 7 it plots).

The Rust test `crates/ml/tests/integration/clv/differential.rs` runs it and compares. By hand:

    python3 tests/differential/clv_lifetimes.py crates/ml/test-data/clv/CDNOW_sample.txt

Notes on lifetimes 0.11.3 with pandas 3 / numpy 2 (both work here, with care):
- pass `summary["T"]`, never `summary.T` (that is the DataFrame's transpose);
- `summary_data_from_transaction_data(freq="W")` counts whole calendar-week periods, which is not
  the paper's convention: summarise in days (`freq="D"`) and divide recency and T by 7;
- `calibration_and_holdout_data` needs `monetary_value_col` under pandas 3 (see `holdout`);
- lifetimes reports the *mean* negative log-likelihood (plus the penalty) on a time scale where
  max T = 1, so the paper's total log-likelihood in weeks is
  `-_negative_log_likelihood_ * n - sum(frequency) * ln(max T)` for an unpenalised fit.
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

warnings.simplefilter("ignore")

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"

CUSTOMERS = [
    # frequency, recency, T, monetary (in the case's unit)
    (0, 0.0, 30.0, 0.0),
    (1, 5.0, 30.0, 20.0),
    (2, 20.0, 31.0, 35.5),
    (7, 29.0, 35.0, 12.25),
    (3, 3.0, 38.0, 80.0),
    (25, 37.0, 38.5, 44.0),
    (0, 0.0, 2.0, 0.0),
    (12, 11.0, 80.0, 15.0),
    (1, 0.5, 0.5, 9.99),
]

CASES = [
    {
        "name": "cdnow paper parameters, weeks",
        "unit": "week",
        "bg": [0.243, 4.414, 0.793, 2.426],
        "gg": [6.25, 3.74, 15.44],
        "horizons": [1.0, 10.0, 39.0, 52.0],
        "clv": [[12, 0.01], [6, 0.05], [36, 0.0]],
    },
    {
        "name": "a > 1, days",
        "unit": "day",
        "bg": [0.6, 45.0, 1.8, 6.5],
        "gg": [2.1, 4.5, 60.0],
        "horizons": [30.0, 90.0, 365.0],
        "clv": [[12, 0.01], [24, 0.02]],
    },
    {
        "name": "b < 1, large r, weeks",
        "unit": "week",
        "bg": [2.5, 12.0, 3.2, 0.7],
        "gg": [0.9, 1.6, 5.0],
        "horizons": [4.0, 26.0],
        "clv": [[12, 0.01]],
    },
]


def cdnow_transactions(path):
    transactions = pd.read_csv(path, header=None, sep=r"\s+")
    transactions.columns = ["master_id", "customer", "date", "cds", "amount"]
    transactions["date"] = pd.to_datetime(transactions["date"].astype(str), format="%Y%m%d")
    return transactions


def cdnow_summary(path):
    transactions = cdnow_transactions(path)
    summary = summary_data_from_transaction_data(
        transactions,
        "customer",
        "date",
        monetary_value_col="amount",
        observation_period_end=CALIBRATION_END,
        freq="D",
    )
    summary["recency"] = summary["recency"] / 7.0
    summary["T"] = summary["T"] / 7.0
    return summary.sort_index()


def fits(summary):
    out = {}
    n = len(summary)
    repeat = summary[summary["frequency"] > 0]
    # Each customer's likelihood scales by c^-x when time is scaled by c; lifetimes fits with
    # time scaled by 1 / max T.
    rescale = summary["frequency"].sum() * np.log(summary["T"].max())
    for penalizer in [0.0, 0.001]:
        bg = BetaGeoFitter(penalizer_coef=penalizer)
        bg.fit(summary["frequency"], summary["recency"], summary["T"])
        gg = GammaGammaFitter(penalizer_coef=penalizer)
        gg.fit(repeat["frequency"], repeat["monetary_value"])
        out[str(penalizer)] = {
            "bg_nbd": {
                "r": bg.params_["r"],
                "alpha": bg.params_["alpha"],
                "a": bg.params_["a"],
                "b": bg.params_["b"],
                "mean_objective": bg._negative_log_likelihood_,
                "log_likelihood": -bg._negative_log_likelihood_ * n - rescale if penalizer == 0.0 else None,
            },
            "gamma_gamma": {
                "p": gg.params_["p"],
                "q": gg.params_["q"],
                "gamma": gg.params_["v"],
                "customers": len(repeat),
            },
        }
    return out


def case_figures(case):
    bg = BetaGeoFitter()
    bg.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], case["bg"])))
    # fit() sets `predict`, which customer_lifetime_value calls; set it by hand here.
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(dict(zip(["p", "q", "v"], case["gg"])))
    frame = pd.DataFrame(CUSTOMERS, columns=["frequency", "recency", "T", "monetary"])
    x, tx, t, m = frame["frequency"], frame["recency"], frame["T"], frame["monetary"]
    freq = {"week": "W", "day": "D"}[case["unit"]]
    out = dict(case)
    out["customers"] = [list(c) for c in CUSTOMERS]
    out["p_alive"] = [float(v) for v in bg.conditional_probability_alive(x.values, tx.values, t.values)]
    out["expected_purchases"] = [
        [float(v) for v in bg.conditional_expected_number_of_purchases_up_to_time(h, x.values, tx.values, t.values)]
        for h in case["horizons"]
    ]
    out["expected_spend"] = [float(v) for v in gg.conditional_expected_average_profit(x, m)]
    out["clv_values"] = [
        [
            float(v)
            for v in gg.customer_lifetime_value(
                bg, x, tx, t, m, time=months, discount_rate=rate, freq=freq
            ).values
        ]
        for months, rate in case["clv"]
    ]
    return out


def fit_to_optimum(fitter, *columns):
    """A fitter fitted at tol 1e-10, or, where BFGS stops short of that with "precision loss"
    (it does on some CPUs, the gradient then about 3e-10: at the optimum to float precision),
    at the first of 1e-9 and 1e-8 that converges. The parameters then differ by far less than
    the tests' tolerance; stderr says which tolerance it took."""
    import contextlib

    from lifetimes.utils import ConvergenceError

    for tol in (1e-10, 1e-9, 1e-8):
        model = fitter()
        try:
            # lifetimes prints the optimiser's result to stdout when it gives up: stdout is
            # this script's JSON document.
            with contextlib.redirect_stdout(sys.stderr):
                model.fit(*columns, tol=tol)
        except ConvergenceError:
            print(f"\n{fitter.__name__}: no convergence at tol {tol}, trying a looser one", file=sys.stderr)
            continue
        return model
    raise SystemExit(f"{fitter.__name__} did not converge at tol 1e-8")


def holdout(path):
    data = calibration_and_holdout_data(
        cdnow_transactions(path),
        "customer",
        "date",
        calibration_period_end=CALIBRATION_END,
        observation_period_end=OBSERVATION_END,
        freq="D",
        # Without a value column, lifetimes 0.11.3's holdout count aggregates an empty frame,
        # which pandas 3 refuses ("No objects to concatenate"); the amounts change nothing else.
        monetary_value_col="amount",
    ).sort_index()
    # In days with freq="D"; weeks are days / 7, as for the summaries.
    data["recency_cal"] = data["recency_cal"] / 7.0
    data["T_cal"] = data["T_cal"] / 7.0
    duration = float(data["duration_holdout"].iloc[0]) / 7.0
    # Fitted to its optimum (tol 1e-10; the default 1e-7 stops about 2e-7 from it in alpha),
    # so that segmenta's fit can be held to the same point.
    bg = fit_to_optimum(BetaGeoFitter, data["frequency_cal"], data["recency_cal"], data["T_cal"])
    data["model_predictions"] = bg.conditional_expected_number_of_purchases_up_to_time(
        duration, data["frequency_cal"], data["recency_cal"], data["T_cal"]
    )
    # What plot_calibration_purchases_vs_holdout_purchases(bg, data, kind="frequency_cal") draws.
    table = data.groupby("frequency_cal")[["frequency_holdout", "model_predictions"]].mean()
    counts = data.groupby("frequency_cal").size()
    return {
        "duration": duration,
        "params": {name: float(bg.params_[name]) for name in ["r", "alpha", "a", "b"]},
        "customers": [
            [
                int(i),
                float(row["frequency_cal"]),
                float(row["recency_cal"]),
                float(row["T_cal"]),
                float(row["frequency_holdout"]),
                float(row["model_predictions"]),
            ]
            for i, row in data.iterrows()
        ],
        "by_frequency": [
            [int(f), int(counts[f]), float(row["frequency_holdout"]), float(row["model_predictions"])]
            for f, row in table.iterrows()
        ],
        "total_actual": float(data["frequency_holdout"].sum()),
        "total_predicted": float(data["model_predictions"].sum()),
        "mean_absolute_error": float((data["model_predictions"] - data["frequency_holdout"]).abs().mean()),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: clv_lifetimes.py CDNOW_sample.txt")
    summary = cdnow_summary(sys.argv[1])
    document = {
        "summaries": [
            [int(i), float(row["frequency"]), float(row["recency"]), float(row["T"]), float(row["monetary_value"])]
            for i, row in summary.iterrows()
        ],
        "fits": fits(summary),
        "cases": [case_figures(case) for case in CASES],
        "holdout": holdout(sys.argv[1]),
    }
    json.dump(document, sys.stdout, allow_nan=False)
    print()


if __name__ == "__main__":
    main()
