{#
    SCD2 history of every customer (check strategy): contract and billing, services, charges, tenure and
    churn label, and the demographics and address that an ingested update can change too. A build compares
    these columns with each customer's current row; a change closes the current row (dbt_valid_to) and
    opens a new one. Customers are never deleted, so hard deletes are ignored.

    Only customers written or changed since the last build can differ from their current row: churn.customers
    keeps updated_at (set by a trigger when a later write changes a row) beside inserted_at, both indexed,
    so a build compares just those with their current rows and dbt's own snapshot step only handles the new
    and changed ones. The window reaches back snapshot_lookback_hours before the last build, so a write
    whose transaction began before that build but committed after it is still seen. A full comparison of
    every customer is one variable away (--vars '{snapshot_lookback_hours: null}').

    Downstream models read customers through this snapshot (its current rows), so one build sees one
    consistent set of customers however many the generate job adds meanwhile.
#}
{% snapshot customers_snapshot %}

{%- set attributes = [
    'customer_source', 'external_id',
    'country', 'state', 'city', 'zip_code', 'latitude', 'longitude',
    'gender', 'is_senior_citizen', 'has_partner', 'has_dependents',
    'contract', 'has_paperless_billing', 'payment_method',
    'has_phone_service', 'multiple_lines', 'internet_service',
    'online_security', 'online_backup', 'device_protection', 'tech_support',
    'streaming_tv', 'streaming_movies',
    'monthly_charges', 'total_charges', 'tenure_months', 'actual_churn_label',
] -%}

{{
    config(
        unique_key='customer_id',
        strategy='check',
        check_cols=attributes,
        hard_deletes='ignore',
        post_hook=[
            "create unique index if not exists customers_snapshot_current_key on {{ this }} (customer_id) where dbt_valid_to is null",
            "create index if not exists customers_snapshot_valid_from_idx on {{ this }} (dbt_valid_from)",
            "create index if not exists customers_snapshot_closed_idx on {{ this }} (dbt_valid_to) where dbt_valid_to is not null",
            "{{ refresh_statistics(this, ['dbt_valid_from', 'dbt_valid_to']) }}",
        ],
    )
}}

{%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}

{#- The window's start as a literal, read when the build runs, so that the planner estimates the few new
    and changed customers from the columns' statistics and looks them up by index. -#}
{%- set since = none -%}
{%- if existing is not none and var('snapshot_lookback_hours') is not none and execute -%}
    {%- set since = run_query(
        "select (coalesce(max(dbt_valid_from), '-infinity'::timestamptz) - interval '"
        ~ (var('snapshot_lookback_hours') | int) ~ " hours')::text from " ~ this
    ).columns[0].values()[0] -%}
{%- endif %}

with

customers as (

    select
        customer_id,
        {{ attributes | join(',\n        ') }},
        tenure_band,
        inserted_at

    from {{ ref('stg_churn__customers') }}
    {%- if since is not none %}
    where inserted_at >= '{{ since }}'::timestamptz
        or updated_at >= '{{ since }}'::timestamptz
    {%- endif %}

)

{% if existing is none %}

select * from customers

{% else %}

, current_rows as (

    select customer_id, {{ attributes | join(', ') }}
    from {{ this }}
    where dbt_valid_to is null

)

-- only customers that are new or whose attributes differ from their current row
select customers.*
from customers
left join current_rows on current_rows.customer_id = customers.customer_id
where current_rows.customer_id is null
    or (customers.{{ attributes | join(', customers.') }})
        is distinct from (current_rows.{{ attributes | join(', current_rows.') }})

{% endif %}

{% endsnapshot %}
