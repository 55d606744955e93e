-- The processing queue's share of PostgreSQL's work, made smaller.
--
-- A job is found by its event id everywhere, so that is its key: the
-- identity column and its index, written with every job and every change of
-- state (claimed, done), go. Events get room on their pages for the one
-- update of their processing state to stay on the page without touching the
-- indexes (a HOT update); their pages used to be full, and every finished
-- job wrote five index entries for its event.
ALTER TABLE jobs DROP CONSTRAINT jobs_pkey;
ALTER TABLE jobs DROP COLUMN id;
ALTER TABLE jobs DROP CONSTRAINT jobs_event_id_key;
ALTER TABLE jobs ADD CONSTRAINT jobs_pkey PRIMARY KEY (event_id);
ALTER TABLE webhook_events SET (fillfactor = 80);

-- A worker's batch of attempts, recorded in one call: the statements
-- `finish_jobs` in src/store/postgres/queue.rs sent one by one (seven round
-- trips a batch, BEGIN and COMMIT included), run here inside the server, in
-- the same order and with the same locks. It is one transaction, and each
-- statement sees what committed before it started (a volatile function in
-- READ COMMITTED takes a snapshot per statement), which is what the orders'
-- "processed" needs after waiting for their locks.
--
-- The arrays hold one element per attempt, in the worker's order. `rounds`
-- says which round each attempt is in: a round holds each event at most once
-- (one statement may not change a row twice); almost every batch is one
-- round. Returns the positions (1-based) of the attempts whose job this
-- worker still held the lease of; the others are only kept as attempts.
CREATE FUNCTION finish_jobs(
    event_ids text[],
    owners text[],
    attempt_numbers bigint[],
    started timestamptz[],
    finished timestamptz[],
    outcomes text[],
    status_codes bigint[],
    errors text[],
    statuses text[],
    next_runs timestamptz[],
    rounds bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    this_round bigint;
    moved bigint[];
    held bigint[] := '{}';
    settled_orders text[] := '{}';
    settled_positions bigint[] := '{}';
BEGIN
    INSERT INTO job_attempts (event_id, attempt, started_at, finished_at, outcome,
        status_code, error)
    SELECT * FROM UNNEST(event_ids, attempt_numbers, started, finished, outcomes,
                         status_codes, errors);

    FOR this_round IN 0 .. COALESCE((SELECT max(r) FROM UNNEST(rounds) AS r), -1) LOOP
        -- Each job moves on where this worker still holds its lease. The
        -- jobs are locked first, in event id order (the lock order of
        -- intake), by the IN subquery.
        WITH a AS (
            SELECT * FROM UNNEST(event_ids, owners, statuses, next_runs, errors, finished,
                                 rounds)
                WITH ORDINALITY AS a(event_id, owner, status, next_run_at, error,
                                     finished_at, round, position)
            WHERE a.round = this_round),
        updated AS (
            UPDATE jobs j SET status = a.status,
                next_run_at = COALESCE(a.next_run_at, j.next_run_at),
                lease_owner = NULL, lease_until = NULL, last_error = a.error,
                updated_at = a.finished_at
            FROM a
            WHERE j.event_id = a.event_id AND j.lease_owner = a.owner
              AND j.status = 'running'
              AND j.event_id IN (
                  SELECT l.event_id FROM jobs l JOIN a k USING (event_id)
                  ORDER BY k.event_id COLLATE "C" FOR NO KEY UPDATE OF l)
            RETURNING a.position)
        SELECT array_agg(position) INTO moved FROM updated;
        CONTINUE WHEN moved IS NULL;
        held := held || moved;

        -- Their events' processing state, locked in event id order too.
        WITH a AS (
            SELECT * FROM UNNEST(event_ids, statuses, errors)
                WITH ORDINALITY AS a(event_id, status, error, position)
            WHERE a.position = ANY (moved)),
        updated AS (
            UPDATE webhook_events e SET processed = a.status <> 'pending',
                success = a.status = 'done', error_message = a.error
            FROM a
            WHERE e.event_id = a.event_id
              AND e.id IN (
                  SELECT l.id FROM webhook_events l JOIN a k USING (event_id)
                  ORDER BY k.event_id COLLATE "C" FOR NO KEY UPDATE OF l)
            RETURNING e.order_id, a.position)
        SELECT settled_orders || array_agg(order_id),
               settled_positions || array_agg(position)
        INTO settled_orders, settled_positions
        FROM updated WHERE order_id IS NOT NULL;
    END LOOP;

    -- An order is processed when none of its events' jobs is left undone.
    -- Two instances finishing two jobs of one order at once would each see
    -- the other's job as undone if they judged from the same moment: the
    -- lock makes the second wait for the first to commit, and the update,
    -- a statement of its own, then sees that commit. Each order's error is
    -- that of its last attempt in the worker's order.
    IF cardinality(settled_orders) > 0 THEN
        PERFORM FROM tiktok_orders WHERE order_id = ANY (settled_orders)
            ORDER BY order_id COLLATE "C" FOR NO KEY UPDATE;
        -- (The inner OFFSET 0 keeps each event's job a lookup by event id:
        -- joined, a plan made on small tables may read every job instead.)
        UPDATE tiktok_orders o SET
            processed = NOT EXISTS (
                SELECT 1 FROM webhook_events e
                WHERE e.order_id = o.order_id
                  AND EXISTS (
                      SELECT 1 FROM jobs j
                      WHERE j.event_id = e.event_id AND j.status <> 'done' OFFSET 0)),
            error_message = last.error,
            updated_at = (SELECT max(f) FROM UNNEST(finished) AS f)
        FROM (
            SELECT DISTINCT ON (s.order_id) s.order_id, errors[s.position] AS error
            FROM UNNEST(settled_orders, settled_positions) AS s(order_id, position)
            ORDER BY s.order_id, s.position DESC) AS last
        WHERE o.order_id = last.order_id;
    END IF;

    RETURN QUERY SELECT unnest(held);
END
$$;

-- The queue's connections plan every statement for its parameters
-- (`plan_cache_mode = force_custom_plan`, see src/store/postgres/mod.rs),
-- which inside this function meant planning five statements on every call:
-- more than running them. Here each is planned once per connection. A plan
-- made while the tables are still small (a fresh database at the start of a
-- burst) would scan them whole, and be kept until the next ANALYZE; every
-- statement here finds its rows through an index, so sequential scans are
-- ruled out.
ALTER FUNCTION finish_jobs SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION finish_jobs SET enable_seqscan = off;
