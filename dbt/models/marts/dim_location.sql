{{
    config(
        materialized='incremental',
        unique_key='location_key',
        incremental_strategy='merge',
        merge_exclude_columns=['location_key', 'loaded_at'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['location_key'], 'unique': true},
            {'columns': ['zip_code'], 'unique': true},
        ],
    )
}}
-- One row per zip code: a conformed location dimension (city, state, country, coordinates). The warehouse
-- keeps one location per zip code (the synthesizer draws the zip code as one key; the seed data has one
-- city and position per zip code). Should customers ever disagree, the spelling of the earliest customer
-- seen wins and stays. Incremental: a build adds the zip codes of customers new since the last build.
with

customers as (

    select * from {{ ref('customers_snapshot') }}
    where dbt_valid_to is null
    {% if is_incremental() %}
        and dbt_valid_from > (select coalesce(max(loaded_at), '-infinity'::timestamptz) from {{ this }})
        and zip_code not in (select zip_code from {{ this }})
    {% endif %}

),

first_spelling as (

    select distinct on (zip_code)
        zip_code,
        city,
        state,
        country,
        latitude,
        longitude

    from customers
    order by zip_code, inserted_at, customer_id

),

final as (

    select
        {{ surrogate_key(['zip_code']) }} as location_key,
        zip_code,
        city,
        state,
        country,
        latitude,
        longitude,
        now() as loaded_at

    from first_spelling

)

select * from final
