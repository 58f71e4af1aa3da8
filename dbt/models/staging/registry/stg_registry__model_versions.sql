-- One row per registered model version, with its headline metrics and decision threshold lifted out of the
-- metrics JSON and its training-data size out of the lineage JSON.

select
    -- ids
    model_name,
    version as model_version,
    run_id,
    parent_version,

    -- artifact
    flavor as model_flavor,
    description as version_description,
    artifact_key,
    artifact_sha256,
    artifact_size as artifact_size_bytes,

    -- metrics recorded at registration
    cast(metrics ->> 'threshold' as double precision) as decision_threshold,
    cast(metrics ->> 'test_roc_auc' as double precision) as test_roc_auc,
    cast(metrics ->> 'test_f1' as double precision) as test_f1,
    cast(metrics ->> 'test_log_loss' as double precision) as test_log_loss,
    cast(metrics ->> 'cv_roc_auc' as double precision) as cv_roc_auc,

    -- lineage
    cast(lineage ->> 'training_rows' as bigint) as training_rows,
    lineage ->> 'code_version' as code_version,

    -- timestamps
    created_at

from {{ source('registry', 'model_versions') }}
