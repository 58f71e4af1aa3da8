-- One row per customer: the Telco attributes typed and named for analysis, yes/no flags as booleans,
-- plus the tenure band the marts group by.
-- A single select, not the source/renamed CTE pair: PostgreSQL then sees through the view to the
-- table's indexes (min/max, ordered scans), which CTE-wrapped views hide from it.

select
    -- ids
    customer_id,
    external_id,
    source as customer_source,

    -- location
    country,
    state,
    city,
    zip_code,
    latitude,
    longitude,

    -- demographics
    gender,
    senior_citizen as is_senior_citizen,
    partner as has_partner,
    dependents as has_dependents,

    -- services
    phone_service as has_phone_service,
    multiple_lines,
    internet_service,
    online_security,
    online_backup,
    device_protection,
    tech_support,
    streaming_tv,
    streaming_movies,

    -- account
    contract,
    paperless_billing as has_paperless_billing,
    payment_method,
    cast(tenure_months as integer) as tenure_months,
    case
        when tenure_months <= 12 then '0-12'
        when tenure_months <= 24 then '13-24'
        when tenure_months <= 48 then '25-48'
        when tenure_months <= 72 then '49-72'
        else '73+'
    end as tenure_band,
    monthly_charges,
    total_charges,

    -- outcome
    churn_label as actual_churn_label,

    -- timestamps
    inserted_at,
    updated_at

from {{ source('churn', 'customers') }}
