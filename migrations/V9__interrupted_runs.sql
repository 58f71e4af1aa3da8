-- A run stopped by a shutdown (or a lost job lock, or a pause) is neither a success nor a failure: it is
-- recorded `interrupted`, which the job-failure alert does not count, so that restarting the scheduler
-- no longer pages anyone. Its error column stays null (only failed runs carry one); why it stopped is in
-- `details.interrupted`.

alter table ops.job_runs
    drop constraint job_runs_status_check,
    add constraint job_runs_status_check
        check (status in ('running', 'succeeded', 'failed', 'skipped', 'interrupted'));

comment on column ops.job_runs.status is
    'running, succeeded, failed (alerted), skipped, or interrupted (stopped by shutdown, a lost job lock or a pause before it finished; not alerted)';
