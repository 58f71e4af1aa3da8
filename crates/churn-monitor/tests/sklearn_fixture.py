"""Writes tests/fixtures/sklearn_metrics.json: seed-derived (label, probability) pairs with the metrics and
calibration curves scikit-learn computes for them. tests/sklearn_fixture.rs checks churn-core's
`metrics::evaluate` and churn-monitor's `calibration` against it.

    python sklearn_fixture.py [SEED_CSV]      # default: $CHURN_SEED_DATA

The probability is a fixed logistic score of a few attributes (no model is trained), rounded to four
decimals so that ties and probabilities lying exactly on bin edges (0.3, 0.5, ...) occur, as they do with
real models. Only these pairs are stored, never the seed rows.
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

THRESHOLD = 0.5
BIN_COUNTS = [10, 7, 3]


def probability(row):
    z = (
        -1.2
        + 1.1 * (row["Contract"] == "Month-to-month")
        + 0.9 * (row["Internet Service"] == "Fiber optic")
        - 0.035 * row["Tenure Months"]
        + 0.004 * row["Monthly Charges"]
        - 0.6 * (row["Contract"] == "Two year")
        + 0.3 * (row["Senior Citizen"] == "Yes")
    )
    return round(1.0 / (1.0 + math.exp(-z)), 4)


def main():
    seed = sys.argv[1] if len(sys.argv) > 1 else os.environ["CHURN_SEED_DATA"]
    data = pd.read_csv(seed)
    labels = (data["Churn Label"] == "Yes").astype(int).to_numpy()
    probabilities = np.array([probability(row) for _, row in data.iterrows()])
    predicted = (probabilities >= THRESHOLD).astype(int)

    calibration = []
    for n_bins in BIN_COUNTS:
        prob_true, prob_pred = calibration_curve(labels, probabilities, n_bins=n_bins, strategy="uniform")
        # calibration_curve returns no counts; these are its own bin assignment (searchsorted of the
        # inner linspace edges), as in sklearn/calibration.py.
        bins = np.linspace(0.0, 1.0, n_bins + 1)
        counts = np.bincount(np.searchsorted(bins[1:-1], probabilities), minlength=n_bins)
        counts = counts[counts != 0]
        ece = float(np.sum(counts / len(labels) * np.abs(prob_pred - prob_true)))
        calibration.append(
            {
                "n_bins": n_bins,
                "prob_true": prob_true.tolist(),
                "prob_pred": prob_pred.tolist(),
                "counts": counts.tolist(),
                "ece": ece,
            }
        )

    fixture = {
        "generator": f"crates/churn-monitor/tests/sklearn_fixture.py with scikit-learn {sklearn.__version__}",
        "threshold": THRESHOLD,
        "labels": labels.tolist(),
        "probabilities": probabilities.tolist(),
        "metrics": {
            "accuracy": accuracy_score(labels, predicted),
            "precision": precision_score(labels, predicted, zero_division=0),
            "recall": recall_score(labels, predicted, zero_division=0),
            "f1": f1_score(labels, predicted, zero_division=0),
            "log_loss": log_loss(labels, probabilities),
            "brier": brier_score_loss(labels, probabilities),
            "roc_auc": roc_auc_score(labels, probabilities),
            "average_precision": average_precision_score(labels, probabilities),
        },
        "calibration": calibration,
    }
    out = Path(__file__).parent / "fixtures" / "sklearn_metrics.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    on_edges = sum(int(np.isclose(p * 10, round(p * 10))) for p in probabilities)
    print(f"wrote {out}: {len(labels)} pairs, {on_edges} probabilities on a tenth", file=sys.stderr)


if __name__ == "__main__":
    main()
