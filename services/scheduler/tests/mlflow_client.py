"""MLflow's official client (mlflow-skinny, pinned in scripts/requirements-test.txt) against the
scheduler's MLflow-compatible API. Run by services/scheduler/tests/api/mlflow.rs with
MLFLOW_TRACKING_URI (the scheduler) and MLFLOW_TRACKING_TOKEN (its admin token) set:

    python mlflow_client.py VERSION_TO_PROMOTE DOWNLOAD_DIR

It prints one JSON object of what the client saw; the Rust test compares it with the database. Every
call is the client's public API, nothing hand-made.
"""

import hashlib
import json
import os
import sys

import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

MODEL = "churn-classifier"


def version_json(v):
    return {
        "name": v.name,
        "version": v.version,
        "run_id": v.run_id,
        "source": v.source,
        "status": v.status,
        "aliases": sorted(v.aliases),
        "tags": v.tags,
    }


def error_code(call):
    try:
        call()
    except MlflowException as e:
        return e.error_code
    return None


def main():
    promote, download_dir = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    out = {}

    models = client.search_registered_models()
    out["registered_models"] = [
        {
            "name": m.name,
            "aliases": m.aliases,
            "latest_versions": [v.version for v in m.latest_versions],
        }
        for m in models
    ]
    out["filtered_models"] = [
        m.name for m in client.search_registered_models(filter_string=f"name = '{MODEL}'")
    ]

    champion = client.get_model_version_by_alias(MODEL, "champion")
    out["champion"] = version_json(champion)

    run = client.get_run(champion.run_id)
    out["run"] = {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "experiment_id": run.info.experiment_id,
        "params": run.data.params,
        "metrics": run.data.metrics,
    }
    experiment = client.get_experiment_by_name(MODEL)
    out["experiment"] = {"experiment_id": experiment.experiment_id, "name": experiment.name}
    out["unknown_experiment_is_none"] = client.get_experiment_by_name("no-such-experiment") is None
    out["runs"] = [r.info.run_id for r in client.search_runs([experiment.experiment_id])]
    out["trial_history"] = [
        [m.step, m.value] for m in client.get_metric_history(champion.run_id, "trial_cv_roc_auc")
    ]

    versions = client.search_model_versions(f"name='{MODEL}'")
    out["versions"] = sorted(version_json(v)["version"] for v in versions)

    client.set_registered_model_alias(MODEL, "champion", promote)
    out["champion_after_move"] = client.get_model_version_by_alias(MODEL, "champion").version

    # What `models:/NAME@ALIAS` downloads now: the new champion's folder.
    path = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion", dst_path=download_dir)
    files = {}
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as f:
            files[name] = hashlib.sha256(f.read()).hexdigest()
    out["download"] = {"path": path, "sha256": files}
    # ... and `models:/NAME/VERSION` the folder of that version.
    by_version = mlflow.artifacts.download_artifacts(
        f"models:/{MODEL}/{champion.version}", dst_path=os.path.join(download_dir, "by-version")
    )
    with open(os.path.join(by_version, "model.json"), "rb") as f:
        out["download_by_version"] = hashlib.sha256(f.read()).hexdigest()

    out["missing_model_error"] = error_code(lambda: client.get_registered_model("no-such-model"))
    out["missing_alias_error"] = error_code(
        lambda: client.get_model_version_by_alias(MODEL, "no-such-alias")
    )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
