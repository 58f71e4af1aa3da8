-- Each customer's snapshot rows form a clean history: a closed row ends after it starts, and exactly where
-- the customer's next row starts. Only customers with a closed row can break it, so only they are read
-- (through the index on closed rows).
with

history as (

    select
        customer_id,
        dbt_scd_id,
        dbt_valid_from,
        dbt_valid_to,
        lead(dbt_valid_from) over (partition by customer_id order by dbt_valid_from) as next_valid_from

    from {{ ref('customers_snapshot') }}
    where customer_id in (
        select customer_id from {{ ref('customers_snapshot') }} where dbt_valid_to is not null
    )

)

select *
from history
where dbt_valid_to <= dbt_valid_from
    or dbt_valid_to is distinct from next_valid_from
