-- One row per synthetic customer: the synthesizer (registry model name and version) that generated it.
-- A single select, not the source/renamed CTE pair: PostgreSQL then sees through the view to the
-- table's indexes (min/max, ordered scans), which CTE-wrapped views hide from it.

select
    customer_id,
    synthesizer_name,
    synthesizer_version,
    seed as synthesizer_seed,
    synthesized_at

from {{ source('churn', 'synthesized') }}
