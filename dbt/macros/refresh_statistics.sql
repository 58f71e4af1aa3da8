{#
    A post-hook for the big tables: refresh the planner's statistics right after a build, before autovacuum
    would. A new table gets a full ANALYZE; afterwards only the columns the next build and the scoped tests
    filter on (the build timestamp), which takes a fraction of a second. Without it, a table whose rows
    all carry the first build's timestamp looks to the planner as if "updated_at = <latest>" matched every
    row, and the scoped tests scan a million rows instead of the thousands just written.
#}
{% macro refresh_statistics(relation, columns) -%}
    do $statistics$
    begin
        if exists (
            select 1 from pg_stat_user_tables
            where relid = '{{ relation }}'::regclass
                and last_analyze is null
                and last_autoanalyze is null
        ) then
            execute 'analyze {{ relation }}';
        else
            execute 'analyze {{ relation }} ({{ columns | join(", ") }})';
        end if;
    end
    $statistics$
{%- endmacro %}
