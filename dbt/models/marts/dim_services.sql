-- A junk dimension of every valid combination of phone, internet and add-on services (387 rows),
-- generated from the categories rather than read from customers: a customer's combination always has a
-- row, before any customer has it, and the Telco rules (no phone ⇒ "No phone service"; no internet ⇒
-- "No internet service" for every add-on) hold by construction.
{% set domains = telco_domains() %}
{% set add_ons = domains.add_on_columns %}

with

phone as (

    select *
    from (values (true, 'No'), (true, 'Yes'), (false, 'No phone service'))
        as phone (has_phone_service, multiple_lines)

),

internet as (

    select
        internet_service,
        case
            when internet_service = 'No' then array['No internet service']
            else array['No', 'Yes']
        end as add_on_values

    from (values {{ values_rows(domains.internet_service) }}) as internet (internet_service)

),

combinations as (

    select
        phone.has_phone_service,
        phone.multiple_lines,
        internet.internet_service,
        {%- for add_on in add_ons %}
        {{ add_on }}.value as {{ add_on }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from phone
    cross join internet
    {%- for add_on in add_ons %}
    cross join lateral unnest(internet.add_on_values) as {{ add_on }} (value)
    {%- endfor %}

),

final as (

    select
        {{ surrogate_key(['has_phone_service', 'multiple_lines', 'internet_service'] + add_ons) }} as services_key,
        has_phone_service,
        multiple_lines,
        internet_service,
        {%- for add_on in add_ons %}
        {{ add_on }},
        {%- endfor %}
        internet_service <> 'No' as has_internet_service,
        (
            {%- for add_on in add_ons %}
            (case when {{ add_on }} = 'Yes' then 1 else 0 end){% if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as add_on_count,
        (streaming_tv = 'Yes' or streaming_movies = 'Yes') as has_streaming,
        case
            when has_phone_service and internet_service <> 'No' then 'Phone and internet'
            when has_phone_service then 'Phone only'
            when internet_service <> 'No' then 'Internet only'
            else 'No services'
        end as service_bundle

    from combinations

)

select * from final
