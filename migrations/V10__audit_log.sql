-- Every manual action (a job triggered, paused or resumed by hand, an alias moved or deleted, a champion
-- promoted by hand) with who did it: the scope of the token presented and the name the caller gave
-- (X-Actor, or the user name of HTTP Basic), or the scope alone when none was given. Written in the same
-- transaction as the action where the action is a database write, so the log never shows an action that
-- did not happen, nor misses one that did.
create table ops.audit_log (
    audit_id    bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    token_scope text not null,
    actor       text not null,
    action      text not null,
    target      text not null,
    details     jsonb not null default '{}'::jsonb,
    constraint audit_log_scope_check check (token_scope in ('admin', 'registry', 'read', 'cli')),
    constraint audit_log_actor_check check (actor ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$'),
    constraint audit_log_action_check check (action in (
        'job.trigger', 'job.pause', 'job.resume', 'alias.set', 'alias.delete', 'model.promote')),
    constraint audit_log_target_check check (length(target) between 1 and 300),
    constraint audit_log_details_check check (jsonb_typeof(details) = 'object')
);
create index audit_log_at_idx on ops.audit_log (at desc);
