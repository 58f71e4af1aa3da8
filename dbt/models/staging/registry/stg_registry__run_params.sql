-- One row per training run parameter (family, seed, threshold, …).

select
    run_id,
    key as param_key,
    value as param_value

from {{ source('registry', 'run_params') }}
