"""Runs Evidently 0.7.23's DataDriftPreset on CSV pairs and prints what it decided, as JSON.

Used by crates/churn-monitor/tests/evidently_conformance.rs, which writes the CSV files with churn-core's
CustomerWriter and compares every number with churn-monitor's. Usage:

    python evidently_drift.py MANIFEST.json

MANIFEST holds {"scenarios": [{"name": ..., "reference": CSV, "current": CSV}, ...]}. For each scenario the
output has, per column: the column type Evidently inferred (from the current data, as its Report does),
the stattest's registry name, the score, the drift verdict of its test, and PSI (Evidently's `psi`
stattest run on the same column, which the preset does not compute); plus the dataset-drift verdict.
"""

import json
import sys
import warnings

import pandas as pd
from evidently import Report
from evidently.legacy.calculations.stattests import psi_stat_test
from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
from evidently.legacy.core import ColumnType
from evidently.presets import DataDriftPreset

# Evidently reports the display name ("K-S p_value"); map it back to the registry name ("ks").
NAMES = {test.display_name: test.name for tests in _registered_stat_tests.values() for test in tests.values()}
TYPES = {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical", ColumnType.Text: "text"}


def run(reference_path, current_path):
    reference = pd.read_csv(reference_path)
    current = pd.read_csv(current_path)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current_data=current, reference_data=reference)
    definition = snapshot.context.data_definition
    result = snapshot.dict()

    columns = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"] != "evidently:metric_v2:ValueDrift":
            continue
        name = config["column"]
        column_type = definition.get_column_type(name)
        psi = psi_stat_test(reference[name].dropna(), current[name].dropna(), column_type, None)
        columns[name] = {
            "column_type": TYPES.get(column_type, str(column_type)),
            "stattest": NAMES.get(config["method"], config["method"]),
            "score": float(metric["value"]),
            "threshold": config["threshold"],
            "psi": float(psi.drift_score),
        }
    dataset_drift = None
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params["type"] == "evidently:metric_v2:ValueDrift":
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
        elif params["type"] == "evidently:metric_v2:DriftedColumnsCount":
            # The preset's test is "share of drifted columns < drift_share": failing it is dataset drift.
            dataset_drift = test["status"] == "FAIL"
    count = next(m for m in result["metrics"] if m["config"]["type"] == "evidently:metric_v2:DriftedColumnsCount")
    return {
        "columns": columns,
        "n_drifted": int(count["value"]["count"]),
        "share_drifted": float(count["value"]["share"]),
        "dataset_drift": dataset_drift,
    }


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    # scipy warns about dividing by zero when a current value is absent from the reference (chi-square
    # then answers p = 0, which is the point); keep stdout for the JSON answer alone.
    warnings.simplefilter("ignore")
    out = {s["name"]: run(s["reference"], s["current"]) for s in manifest["scenarios"]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
