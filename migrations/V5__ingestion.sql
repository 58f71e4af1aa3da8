-- Ingestion of landed customer files (issue 16): a business CustomerID names one customer, each landed
-- file keeps its progress (a checkpoint per committed batch) and outcome, and scored files are recorded
-- per content and model version so a file is never scored twice by the same model.

-- A known CustomerID updates its customer instead of adding a second one; rows without one are new.
create unique index customers_external_id_key on churn.customers (external_id)
    where external_id is not null;

-- ops.ingested_files (V1) becomes the file's state: 'processing' while batches commit (checkpoint_line is
-- the last line whose batch committed, so a restart resumes after it), then 'processed' or 'failed'.
alter table ops.ingested_files
    add column status          text not null default 'processed',
    add column checkpoint_line bigint not null default 1,
    add column rows_inserted   bigint not null default 0,
    add column rows_updated    bigint not null default 0,
    add column reason          text,
    add column final_key       text,
    add column started_at      timestamptz not null default now(),
    add column finished_at     timestamptz,
    add constraint ingested_files_status_check check (status in ('processing', 'processed', 'failed')),
    add constraint ingested_files_reason_check check ((status = 'failed') = (reason is not null)),
    add constraint ingested_files_finished_check check ((status = 'processing') = (finished_at is null)),
    add constraint ingested_files_checkpoint_check check (checkpoint_line >= 1),
    add constraint ingested_files_written_check check (
        rows_inserted >= 0 and rows_updated >= 0 and rows_inserted + rows_updated = rows_accepted);
create index ingested_files_status_idx on ops.ingested_files (status) where status = 'processing';

-- Files under score/ scored by a model version: the same bytes and version are scored once.
create table ops.scored_files (
    sha256        text not null,
    model_name    text not null,
    model_version integer not null,
    object_key    text not null,
    output_key    text not null,
    rows_total    bigint not null,
    rows_scored   bigint not null,
    rows_rejected bigint not null,
    scored_at     timestamptz not null default now(),
    primary key (sha256, model_name, model_version),
    constraint scored_files_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint scored_files_version_check check (model_version > 0),
    constraint scored_files_counts_check check (
        rows_scored >= 0 and rows_rejected >= 0 and rows_total = rows_scored + rows_rejected)
);
