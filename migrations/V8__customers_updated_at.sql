-- When a customer last changed after it was written, so that readers of changes (the dbt snapshot) look
-- at new and changed customers through two indexes instead of comparing every customer on every build
-- (5 s of each incremental build at a million customers; see BENCHMARKS.md, "dbt star schema").
--
-- Null until a later write changes the row: most customers are written once by the generate loop, which
-- then pays for no extra index entry; an ingested update or a late label sets it.

alter table churn.customers add column updated_at timestamptz;
comment on column churn.customers.updated_at is
    'When a later write (an ingested update, a late label) last changed the customer; null while unchanged since inserted_at';

create function churn.customers_touch() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end
$$;

-- An upsert that rewrites a customer with the same values is not a change.
create trigger customers_touch
    before update on churn.customers
    for each row when (old.* is distinct from new.*)
    execute function churn.customers_touch();

create index customers_updated_at_idx on churn.customers (updated_at) where updated_at is not null;
