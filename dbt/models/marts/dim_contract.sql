-- A junk dimension of every combination of contract, paperless billing and payment method (24 rows),
-- generated from the categories so every customer's terms have a row.
{% set domains = telco_domains() %}

with

contracts as (

    select *
    from (values {{ values_rows(domains.contract) }}) as contracts (contract)

),

billing as (

    select *
    from (values (true), (false)) as billing (has_paperless_billing)

),

payments as (

    select *
    from (values {{ values_rows(domains.payment_method) }}) as payments (payment_method)

),

final as (

    select
        {{ surrogate_key(['contracts.contract', 'billing.has_paperless_billing', 'payments.payment_method']) }} as contract_key,
        contracts.contract,
        case contracts.contract
            when 'Month-to-month' then 1
            when 'One year' then 12
            when 'Two year' then 24
        end as contract_term_months,
        billing.has_paperless_billing,
        payments.payment_method,
        payments.payment_method like '%(automatic)' as is_automatic_payment

    from contracts
    cross join billing
    cross join payments

)

select * from final
