-- No prediction points at a dimension row that does not exist: every key of every fct_churn_prediction
-- row finds its customer, location, services, contract, model version and date.
with

predictions as (

    -- the rows the latest build wrote (all of them after a full refresh)
    select * from {{ ref('fct_churn_prediction') }}
    where updated_at = (select max(updated_at) from {{ ref('fct_churn_prediction') }})

)

select
    predictions.prediction_key,
    predictions.customer_id,
    dim_customer.customer_key is null as missing_customer,
    dim_location.location_key is null as missing_location,
    dim_services.services_key is null as missing_services,
    dim_contract.contract_key is null as missing_contract,
    dim_model_version.model_version_key is null as missing_model_version,
    dim_date.date_key is null as missing_date

from predictions
left join {{ ref('dim_customer') }} as dim_customer on dim_customer.customer_key = predictions.customer_key
left join {{ ref('dim_location') }} as dim_location on dim_location.location_key = predictions.location_key
left join {{ ref('dim_services') }} as dim_services on dim_services.services_key = predictions.services_key
left join {{ ref('dim_contract') }} as dim_contract on dim_contract.contract_key = predictions.contract_key
left join {{ ref('dim_model_version') }} as dim_model_version
    on dim_model_version.model_version_key = predictions.model_version_key
left join {{ ref('dim_date') }} as dim_date on dim_date.date_key = predictions.prediction_date_key
where dim_customer.customer_key is null
    or dim_location.location_key is null
    or dim_services.services_key is null
    or dim_contract.contract_key is null
    or dim_model_version.model_version_key is null
    or dim_date.date_key is null
