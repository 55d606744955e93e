-- The processing queue is a table: one job per stored event, written in the
-- same transaction as the event, claimed by workers with a lease. Nothing a
-- crash could lose lives in memory.

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL DEFAULT 'pending',  -- pending, running, done, dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_run_at     TEXT    NOT NULL,
    lease_until     TEXT,
    lease_owner     TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, next_run_at);

-- Every attempt, kept: when, how it ended, what the receiver said.
CREATE TABLE job_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,  -- success, retry, dead
    status_code     INTEGER,
    error           TEXT
);
CREATE INDEX job_attempts_event ON job_attempts (event_id, attempt);

DROP VIEW order_processing_queue;
CREATE VIEW order_processing_queue AS
    SELECT o.id, o.order_id, o.shop_id, o.event_type, o.order_status, o.update_time,
           o.processed, o.error_message, o.created_at, o.updated_at
    FROM tiktok_orders o
    WHERE o.processed = 0
    ORDER BY o.created_at;

CREATE INDEX webhook_events_order ON webhook_events (order_id);
