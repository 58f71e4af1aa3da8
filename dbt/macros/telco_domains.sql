{#
    The closed category sets of the Telco data, as the warehouse's CHECK constraints define them. The
    junk dimensions (dim_services, dim_contract) are generated from them, so every valid combination has a
    row before any customer has it, and the business-rule test reads the same lists.
#}
{% macro telco_domains() -%}
    {{ return({
        'multiple_lines': ['No', 'Yes', 'No phone service'],
        'internet_service': ['DSL', 'Fiber optic', 'No'],
        'add_on': ['No', 'Yes', 'No internet service'],
        'contract': ['Month-to-month', 'One year', 'Two year'],
        'payment_method': ['Bank transfer (automatic)', 'Credit card (automatic)', 'Electronic check', 'Mailed check'],
        'add_on_columns': ['online_security', 'online_backup', 'device_protection', 'tech_support', 'streaming_tv', 'streaming_movies'],
    }) }}
{%- endmacro %}

{# A SQL values list of text literals: ('a'), ('b'), … #}
{% macro values_rows(values) -%}
    {%- for value in values %}({{ "'" ~ value | replace("'", "''") ~ "'" }}){% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}
