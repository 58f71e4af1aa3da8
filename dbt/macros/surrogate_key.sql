{#
    A deterministic surrogate key: the MD5 of the natural key's columns, stored as uuid (16 bytes, fast to
    join and index). The same natural key gives the same key in every build, so an incremental fact keeps
    pointing at the right dimension row after the dimension is rebuilt. Nulls and the separator are
    spelled out so ('a', null) and (null, 'a') differ.
#}
{% macro surrogate_key(columns) -%}
    md5(
        {%- for column in columns %}
        coalesce(cast({{ column }} as text), '~null~'){% if not loop.last %} || '|' ||{% endif %}
        {%- endfor %}
    )::uuid
{%- endmacro %}
