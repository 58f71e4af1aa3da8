{{
    config(
        materialized='incremental',
        unique_key='customer_key',
        incremental_strategy='merge',
        merge_exclude_columns=['customer_key', 'loaded_at'],
        on_schema_change='fail',
        post_hook="{{ refresh_statistics(this, ['updated_at']) }}",
        indexes=[
            {'columns': ['customer_key'], 'unique': true},
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['updated_at']},
        ],
    )
}}
-- One row per customer: who they are (demographics), where they came from (source, synthesizer) and when
-- they arrived. Current values (type 1), read from the customers snapshot's current rows; the history is in
-- the snapshot itself. Incremental: a build merges the customers whose snapshot row changed (new or
-- updated customers) since the last build.
with

customers as (

    select * from {{ ref('customers_snapshot') }}
    where dbt_valid_to is null
    {% if is_incremental() %}
        and dbt_valid_from > (select coalesce(max(updated_at), '-infinity'::timestamptz) from {{ this }})
    {% endif %}

),

synthesized as (

    select * from {{ ref('stg_churn__synthesized') }}

),

final as (

    select
        {{ surrogate_key(['customers.customer_id']) }} as customer_key,
        customers.customer_id,
        customers.external_id,
        customers.customer_source,
        customers.gender,
        customers.is_senior_citizen,
        customers.has_partner,
        customers.has_dependents,
        customers.zip_code,
        synthesized.synthesizer_name,
        synthesized.synthesizer_version,
        customers.inserted_at as first_seen_at,
        {{ date_key('customers.inserted_at') }} as first_seen_date_key,
        now() as loaded_at,
        now() as updated_at

    from customers
    left join synthesized on synthesized.customer_id = customers.customer_id

)

select * from final
