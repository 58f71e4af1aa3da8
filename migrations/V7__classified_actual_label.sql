-- Each prediction carries its customer's actual churn label, kept current, so the metrics job reads one
-- table through one covering index instead of joining a million predictions to a million customers
-- (the join alone took longer than the job's one-second budget; see BENCHMARKS.md, "Monitoring").
--
-- Writers that know the label (the generate loop) supply it; any other insert gets it from the customer,
-- and a change of a customer's label (an outcome ingested later) is copied to every prediction for them.

alter table churn.classified add column actual_churn_label boolean;
comment on column churn.classified.actual_churn_label is
    'The customer''s actual churn label (churn.customers.churn_label), kept current by triggers; null while unknown';

update churn.classified as k
set actual_churn_label = c.churn_label
from churn.customers as c
where c.customer_id = k.customer_id and c.churn_label is not null;

create function churn.classified_actual_label() returns trigger
language plpgsql as $$
begin
    select c.churn_label into new.actual_churn_label
    from churn.customers as c
    where c.customer_id = new.customer_id;
    return new;
end
$$;

-- Only inserts that leave the label unknown pay for the lookup.
create trigger classified_actual_label
    before insert on churn.classified
    for each row when (new.actual_churn_label is null)
    execute function churn.classified_actual_label();

create function churn.customers_label_to_classified() returns trigger
language plpgsql as $$
begin
    update churn.classified
    set actual_churn_label = new.churn_label
    where customer_id = new.customer_id;
    return null;
end
$$;

create trigger customers_label_to_classified
    after update of churn_label on churn.customers
    for each row when (old.churn_label is distinct from new.churn_label)
    execute function churn.customers_label_to_classified();

-- The metrics job's read: one version's predictions in a time window, answered from the index alone.
create index classified_model_at_cover_idx on churn.classified (model_name, model_version, classified_at)
    include (churn_probability, actual_churn_label);
drop index churn.classified_model_at_idx;
