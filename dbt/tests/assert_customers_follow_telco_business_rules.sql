-- The Telco business rules, for every customer in the warehouse:
--   no phone service  <=> multiple lines is "No phone service";
--   no internet       <=> every internet add-on is "No internet service";
--   tenure 0          =>  nothing billed yet (total charges 0);
--   tenure 1 or more  =>  something billed (total charges above 0).
-- The database enforces the first two; the billing rules are checked only here. The test reads the source
-- table, not a model: a broken customer is reported without holding back the marts (in `dbt build`, a
-- failing test skips everything downstream of what it tests).
{% set add_ons = telco_domains().add_on_columns %}

select
    customer_id,
    phone_service,
    multiple_lines,
    internet_service,
    tenure_months,
    monthly_charges,
    total_charges,
    case
        when phone_service <> (multiple_lines <> 'No phone service') then 'phone rule'
        {%- for add_on in add_ons %}
        when (internet_service = 'No') <> ({{ add_on }} = 'No internet service') then 'internet rule ({{ add_on }})'
        {%- endfor %}
        when tenure_months = 0 and total_charges <> 0 then 'billed before the first month'
        else 'not billed after months of tenure'
    end as broken_rule

from {{ source('churn', 'customers') }}
where phone_service <> (multiple_lines <> 'No phone service')
    {%- for add_on in add_ons %}
    or (internet_service = 'No') <> ({{ add_on }} = 'No internet service')
    {%- endfor %}
    or (tenure_months = 0 and total_charges <> 0)
    or (tenure_months > 0 and total_charges <= 0)
