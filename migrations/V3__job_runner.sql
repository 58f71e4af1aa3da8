-- The scheduler's job runner: attempts and hosts on runs, pause state shared by every replica, and rejected
-- records from sources other than landed files (the generate job's classifier rejections, ingestion, scoring).

alter table ops.job_runs
    add column attempt integer not null default 1,
    add column host text,
    add constraint job_runs_attempt_check check (attempt >= 1);

-- Which jobs are paused: a pause stops every replica's ticks until resumed.
create table ops.job_state (
    job_name   text primary key,
    paused     boolean not null default false,
    updated_at timestamptz not null default now(),
    updated_by text,
    constraint job_state_name_check check (job_name ~ '^[a-z][a-z0-9_]{0,63}$')
);

alter table ops.rejected_records
    alter column file_id drop not null,
    add column source text not null default 'file',
    add column job_run_id uuid references ops.job_runs (job_run_id) on delete set null,
    add constraint rejected_records_source_check check (source in ('file', 'generate', 'ingest', 'score')),
    add constraint rejected_records_file_check check (source <> 'file' or file_id is not null);
create index rejected_records_at_idx on ops.rejected_records (rejected_at);
create index rejected_records_source_idx on ops.rejected_records (source, rejected_at);
