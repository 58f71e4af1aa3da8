"""Drift benchmark, Evidently's side: DataDriftPreset on the CSV pair that
crates/churn-monitor/examples/bench_drift.rs wrote, timed in this process. Prints one JSON line.

    python bench_drift.py DIR [RUNS=3]

DIR holds reference.csv (the 7,043 seed rows) and current.csv (the synthesised rows). The timed part is
`Report([DataDriftPreset()]).run(...)` on frames already read, which is what our side's timing covers
too (it starts from customers in memory); reading the CSVs is timed apart.
"""

import json
import statistics
import sys
import time
import warnings

import pandas as pd
from evidently import Report
from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
from evidently.presets import DataDriftPreset

NAMES = {test.display_name: test.name for tests in _registered_stat_tests.values() for test in tests.values()}


def main():
    directory = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    reference = pd.read_csv(f"{directory}/reference.csv")
    current = pd.read_csv(f"{directory}/current.csv")
    read_seconds = time.perf_counter() - start

    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        result = snapshot.dict()
        times.append(time.perf_counter() - start)

    columns = {}
    n_drifted = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"] == "evidently:metric_v2:ValueDrift":
            columns[config["column"]] = {"stattest": NAMES.get(config["method"]), "score": float(metric["value"])}
        elif config["type"] == "evidently:metric_v2:DriftedColumnsCount":
            n_drifted = int(metric["value"]["count"])
    print(
        json.dumps(
            {
                "read_seconds": read_seconds,
                "drift_seconds": statistics.median(times),
                "drift_seconds_all": times,
                "n_drifted": n_drifted,
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    main()
