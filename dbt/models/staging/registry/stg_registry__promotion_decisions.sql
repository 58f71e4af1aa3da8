-- One row per champion/challenger decision: the candidate, the champion it was compared with, the scores
-- and whether the candidate was promoted.

select
    decision_id,
    model_name,
    candidate_version,
    champion_version as previous_champion_version,
    metric as promotion_metric,
    candidate_score,
    champion_score as previous_champion_score,
    margin as promotion_margin,
    promoted as is_promoted,
    reason as decision_reason,
    decided_at

from {{ source('registry', 'promotion_decisions') }}
