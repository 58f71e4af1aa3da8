-- One row per calendar day, from the earliest day any fact needs (or date_spine_start, if earlier) to the
-- end of the year date_spine_years_ahead from now. Keys are yyyymmdd integers.
with

bounds as (

    -- days on the UTC calendar, like every date key (macros/date_key.sql)
    select
        least(
            date '{{ var("date_spine_start") }}',
            (select min(inserted_at) from {{ ref('stg_churn__customers') }}) at time zone 'UTC',
            (select min(classified_at) from {{ ref('stg_churn__classified') }}) at time zone 'UTC',
            (select min(created_at) from {{ ref('stg_registry__model_versions') }}) at time zone 'UTC',
            (select min(computed_at) from {{ ref('stg_monitoring__model_metrics') }}) at time zone 'UTC',
            (select min(computed_at) from {{ ref('stg_monitoring__drift') }}) at time zone 'UTC',
            (select min(started_at) from {{ ref('stg_ops__job_runs') }}) at time zone 'UTC',
            (select min(started_at) from {{ ref('stg_ops__dbt_invocations') }}) at time zone 'UTC',
            (select min(predicted_at) from {{ ref('stg_serving__inference_log') }}) at time zone 'UTC',
            (select min(observed_at) from {{ ref('stg_serving__outcomes') }}) at time zone 'UTC',
            (select min(received_at) from {{ ref('stg_serving__outcomes') }}) at time zone 'UTC',
            (select min(cohort_start) from {{ ref('stg_monitoring__cohort_metrics') }})
        )::date as first_day,
        (
            date_trunc('year', greatest(
                now() at time zone 'UTC',
                (select max(classified_at) from {{ ref('stg_churn__classified') }}) at time zone 'UTC',
                (select max(inserted_at) from {{ ref('stg_churn__customers') }}) at time zone 'UTC',
                (select max(predicted_at) from {{ ref('stg_serving__inference_log') }}) at time zone 'UTC',
                (select max(observed_at) from {{ ref('stg_serving__outcomes') }}) at time zone 'UTC'
            ))
            + interval '{{ var("date_spine_years_ahead") + 1 }} years' - interval '1 day'
        )::date as last_day

),

days as (

    select cast(day as date) as date_day
    from bounds
    cross join lateral generate_series(bounds.first_day::timestamp, bounds.last_day::timestamp, interval '1 day') as day

),

final as (

    select
        cast(to_char(date_day, 'YYYYMMDD') as integer) as date_key,
        date_day,
        cast(extract(isoyear from date_day) as integer) as iso_year,
        cast(extract(year from date_day) as integer) as calendar_year,
        cast(extract(quarter from date_day) as integer) as calendar_quarter,
        cast(extract(month from date_day) as integer) as month_of_year,
        trim(to_char(date_day, 'Month')) as month_name,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast(extract(isodow from date_day) as integer) as day_of_week,
        trim(to_char(date_day, 'Day')) as day_name,
        cast(extract(week from date_day) as integer) as iso_week,
        cast(date_trunc('week', date_day) as date) as week_start_date,
        cast(date_trunc('month', date_day) as date) as month_start_date,
        extract(isodow from date_day) in (6, 7) as is_weekend

    from days

)

select * from final
