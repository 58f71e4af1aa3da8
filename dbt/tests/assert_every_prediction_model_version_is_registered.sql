-- Every prediction in the warehouse was made by a model version the registry knows. churn.classified has
-- no foreign key to the registry, and fct_churn_prediction only takes predictions whose version is in
-- dim_model_version, so a prediction by an unknown version would silently stay out of the fact: this test
-- makes it loud. It reads the source tables, so a stray prediction is reported without holding back the
-- marts (in `dbt build`, a failing test skips everything downstream of what it tests). The distinct
-- versions are found by skipping through the (model_name, model_version, classified_at) index: a handful
-- of lookups however many predictions there are.
with recursive

predicted_by (model_name, model_version) as (

    (
        select model_name, model_version
        from {{ source('churn', 'classified') }}
        order by model_name, model_version
        limit 1
    )

    union all

    select next_version.model_name, next_version.model_version
    from predicted_by
    cross join lateral (
        select classified.model_name, classified.model_version
        from {{ source('churn', 'classified') }} as classified
        where (classified.model_name, classified.model_version)
            > (predicted_by.model_name, predicted_by.model_version)
        order by classified.model_name, classified.model_version
        limit 1
    ) as next_version

),

registered as (

    select model_name, version as model_version from {{ source('registry', 'model_versions') }}

)

select predicted_by.model_name, predicted_by.model_version
from predicted_by
left join registered
    on registered.model_name = predicted_by.model_name
    and registered.model_version = predicted_by.model_version
where registered.model_name is null
