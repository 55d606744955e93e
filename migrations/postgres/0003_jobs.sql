-- The processing queue is a table: one job per stored event, written in the
-- same transaction as the event, claimed by workers with a lease (FOR UPDATE
-- SKIP LOCKED, so that instances never claim the same job). Nothing a crash
-- could lose lives in memory. The same tables as SQLite's 0003.

CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text        NOT NULL UNIQUE,
    status          text        NOT NULL DEFAULT 'pending',  -- pending, running, done, dead
    attempts        bigint      NOT NULL DEFAULT 0,
    next_run_at     timestamptz NOT NULL,
    lease_until     timestamptz,
    lease_owner     text,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, next_run_at);

-- Every attempt, kept: when, how it ended, what the receiver said.
CREATE TABLE job_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text        NOT NULL,
    attempt         bigint      NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    outcome         text        NOT NULL,  -- success, retry, dead
    status_code     bigint,
    error           text
);
CREATE INDEX job_attempts_event ON job_attempts (event_id, attempt);

CREATE INDEX webhook_events_order ON webhook_events (order_id);
