-- One row per model and alias (champion, challenger, …): the version it points at now.

select
    model_name,
    alias as alias_name,
    version as model_version,
    updated_at as alias_updated_at

from {{ source('registry', 'aliases') }}
