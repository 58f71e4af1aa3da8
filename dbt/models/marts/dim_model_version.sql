-- One row per registered model version (the churn classifier's and the synthesizer's): family, flavor,
-- metrics recorded at registration, when it was created, and its periods as champion. Champion periods
-- come from the promotion decisions; the champion alias is the truth about now, so an alias moved by hand
-- (without a decision) also starts a period.
with

versions as (

    select * from {{ ref('stg_registry__model_versions') }}

),

families as (

    select run_id, param_value as model_family
    from {{ ref('stg_registry__run_params') }}
    where param_key = 'family'

),

aliases as (

    select * from {{ ref('stg_registry__aliases') }}

),

decisions as (

    select * from {{ ref('stg_registry__promotion_decisions') }}

),

champion_events as (

    -- every moment a version became champion: promotions, then the alias as it stands now
    select model_name, candidate_version as model_version, decided_at as event_at, decision_id as event_order
    from decisions
    where is_promoted

    union all

    select model_name, model_version, alias_updated_at as event_at, null as event_order
    from aliases
    where alias_name = 'champion'

),

ordered_events as (

    select
        *,
        lag(model_version) over (
            partition by model_name order by event_at, event_order nulls last
        ) as previous_version

    from champion_events

),

champion_periods as (

    -- consecutive events naming the same version are one period
    select
        model_name,
        model_version,
        event_at as champion_from,
        lead(event_at) over (partition by model_name order by event_at, event_order nulls last) as champion_until

    from ordered_events
    where previous_version is distinct from model_version

),

champion_summary as (

    select
        model_name,
        model_version,
        count(*) as champion_periods,
        min(champion_from) as first_champion_from,
        case when bool_or(champion_until is null) then null else max(champion_until) end as last_champion_until

    from champion_periods
    group by model_name, model_version

),

current_aliases as (

    select
        model_name,
        model_version,
        string_agg(alias_name, ', ' order by alias_name) as current_aliases,
        bool_or(alias_name = 'champion') as is_current_champion

    from aliases
    group by model_name, model_version

),

final as (

    select
        {{ surrogate_key(['versions.model_name', 'versions.model_version']) }} as model_version_key,
        versions.model_name,
        versions.model_version,
        coalesce(families.model_family, versions.model_flavor) as model_family,
        versions.model_flavor,
        versions.version_description,
        versions.parent_version,
        versions.decision_threshold,
        versions.test_roc_auc,
        versions.test_f1,
        versions.test_log_loss,
        versions.cv_roc_auc,
        versions.training_rows,
        versions.code_version,
        versions.artifact_sha256,
        versions.created_at,
        {{ date_key('versions.created_at') }} as created_date_key,
        coalesce(current_aliases.current_aliases, '') as current_aliases,
        coalesce(current_aliases.is_current_champion, false) as is_current_champion,
        coalesce(champion_summary.champion_periods, 0) as champion_periods,
        champion_summary.first_champion_from,
        champion_summary.last_champion_until

    from versions
    left join families on families.run_id = versions.run_id
    left join current_aliases
        on current_aliases.model_name = versions.model_name
        and current_aliases.model_version = versions.model_version
    left join champion_summary
        on champion_summary.model_name = versions.model_name
        and champion_summary.model_version = versions.model_version

)

select * from final
