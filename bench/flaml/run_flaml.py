#!/usr/bin/env python3
"""Benchmark FLAML on the exact train/test split the Rust churn trainer uses.

Benchmark-only tool (see README.md); not part of scripts/test.

usage: python run_flaml.py --train TRAIN.csv --test TEST.csv --time-budget 60 [--seed 1] [--json OUT.json]
"""
import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import pandas as pd
from flaml import AutoML
from sklearn.metrics import roc_auc_score

LABEL = "churn_label"
# Identifiers and columns derived from the outcome: never features.
NEVER_FEATURES = {"customerid", "customer_id", "count", "lat_long", "churn_value",
                  "churn_score", "cltv", "churn_reason"}
# High-cardinality codes that look numeric but are not quantities.
FORCE_CATEGORICAL = {"city", "zip_code"}


def snake(name):
    # Accept both the dataset's "Tenure Months" headers and snake_case "tenure_months".
    return "_".join(name.strip().lower().split())


def load(path):
    # utf-8-sig: the IBM file starts with a byte-order mark.
    df = pd.read_csv(path, encoding="utf-8-sig", dtype={"Zip Code": str, "zip_code": str})
    df.columns = [snake(c) for c in df.columns]
    if LABEL not in df.columns:
        sys.exit(f"{path}: no 'Churn Label' column")
    # Blank Total Charges only occur for tenure-0 customers, who have paid nothing yet.
    tc = df["total_charges"].astype(str).str.strip()
    df["total_charges"] = pd.to_numeric(tc.mask(tc == "", "0"))  # anything else non-numeric raises
    y = (df[LABEL].astype(str).str.strip() == "Yes").astype(int)  # 1 = churn, so proba[:, 1] is P(Yes)
    X = df.drop(columns=[LABEL] + [c for c in df.columns if c in NEVER_FEATURES])
    return X, y


def prepare(X_train, X_test):
    # Constant columns (Country, State) carry no signal; decide on train only.
    const = [c for c in X_train.columns if X_train[c].nunique(dropna=False) <= 1]
    X_train, X_test = X_train.drop(columns=const), X_test.drop(columns=const)
    for c in X_train.columns:
        if c in FORCE_CATEGORICAL or not pd.api.types.is_numeric_dtype(X_train[c]):
            # Categories come from train only and are shared with test, so codes line up;
            # a test value unseen in training becomes NaN (missing).
            tr, te = X_train[c].astype(str).where(X_train[c].notna()), X_test[c].astype(str)
            dtype = pd.CategoricalDtype(sorted(tr.dropna().unique()))
            X_train[c] = tr.astype(dtype)
            X_test[c] = te.where(te.isin(dtype.categories)).astype(dtype)
    return X_train, X_test[X_train.columns], const


def jsonable(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--time-budget", type=float, required=True, help="FLAML time_budget in seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    X_train, y_train = load(args.train)
    X_test, y_test = load(args.test)
    X_train, X_test, dropped = prepare(X_train, X_test)

    automl = AutoML()
    t0 = time.perf_counter()
    # Default estimator list and search otherwise; 5-fold CV on the train file only.
    automl.fit(X_train, y_train, task="classification", metric="roc_auc",
               time_budget=args.time_budget, seed=args.seed, n_jobs=2,
               eval_method="cv", n_splits=5, verbose=0)
    fit_s = time.perf_counter() - t0

    test_auc = roc_auc_score(y_test, automl.predict_proba(X_test)[:, 1])

    # Batch throughput: the test set tiled to ~100k rows, through FLAML's own
    # predict_proba (includes its feature transform, as a caller would pay).
    reps = math.ceil(100_000 / len(X_test))
    big = pd.concat([X_test] * reps, ignore_index=True)
    automl.predict_proba(X_test)  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        automl.predict_proba(big)
        times.append(time.perf_counter() - t)
    rows_per_s = len(big) / statistics.median(times)

    # Single-row latency: one-row DataFrames (dtypes kept), cycling through test rows.
    lat = []
    for i in range(200):
        row = X_test.iloc[[i % len(X_test)]]
        t = time.perf_counter()
        automl.predict_proba(row)
        lat.append((time.perf_counter() - t) * 1000)

    import flaml, lightgbm, sklearn, xgboost
    result = {
        "best_estimator": automl.best_estimator,
        "best_config": automl.best_config,
        "best_cv_loss": automl.best_loss,  # 1 - mean 5-fold CV ROC AUC
        "best_cv_roc_auc": 1 - automl.best_loss,
        "test_roc_auc": test_auc,
        "fit_wall_s": fit_s,
        "batch_rows": len(big),
        "batch_rows_per_s": rows_per_s,
        "single_row_latency_ms_median": statistics.median(lat),
        "time_budget_s": args.time_budget,
        "seed": args.seed,
        "n_train": len(X_train), "n_test": len(X_test),
        "train_churn_rate": float(y_train.mean()), "test_churn_rate": float(y_test.mean()),
        "features": list(X_train.columns), "dropped_constant": dropped,
        "versions": {"python": sys.version.split()[0], "flaml": flaml.__version__,
                     "lightgbm": lightgbm.__version__, "xgboost": xgboost.__version__,
                     "scikit-learn": sklearn.__version__, "pandas": pd.__version__,
                     "numpy": np.__version__},
    }
    text = json.dumps(result, indent=2, default=jsonable)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
