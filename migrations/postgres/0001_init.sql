-- Events, orders and their history: the same tables, columns and views as
-- the SQLite schema, in PostgreSQL's types. Our own times are timestamptz;
-- TikTok's times (`timestamp`, `update_time`) stay Unix seconds in bigint.

-- PostgreSQL's jsonb cannot hold every text that is valid JSON: a \u0000
-- escape, a lone surrogate escape or a number beyond numeric's range is
-- refused. Such a body is still kept, whole, in raw_body; only its jsonb copy
-- is NULL. Refusing the event instead would make TikTok retry it forever.
CREATE FUNCTION json_or_null(body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN body::jsonb;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;

-- Every notification, kept once. `raw_body` is the body exactly as received
-- (the signature covers these bytes); `payload` is the same body as jsonb, for
-- queries by hand.
CREATE TABLE webhook_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text        NOT NULL UNIQUE,
    type             bigint      NOT NULL,
    event_type       text        NOT NULL,
    shop_id          text,
    order_id         text,
    payload          jsonb,
    raw_body         text        NOT NULL,
    signature        text,
    timestamp        bigint,
    received_at      timestamptz NOT NULL,
    last_received_at timestamptz NOT NULL,
    deliveries       bigint      NOT NULL DEFAULT 1,
    processed        boolean     NOT NULL DEFAULT false,
    success          boolean,
    error_message    text
);
CREATE INDEX webhook_events_shop ON webhook_events (shop_id, id);
CREATE INDEX webhook_events_type ON webhook_events (type, id);
CREATE INDEX webhook_events_event_type ON webhook_events (event_type);

-- The newest known state of each order. `update_time` is the `update_time`
-- of the status change that set `order_status`; an older one never
-- overwrites it.
CREATE TABLE tiktok_orders (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id           text        NOT NULL UNIQUE,
    shop_id            text,
    event_type         text        NOT NULL,
    order_status       text,
    is_on_hold         boolean,
    update_time        bigint,
    last_event_id      text,
    order_data         jsonb,
    address_updated_at bigint,
    processed          boolean     NOT NULL DEFAULT false,
    error_message      text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX tiktok_orders_shop ON tiktok_orders (shop_id, update_time DESC);
CREATE INDEX tiktok_orders_unprocessed ON tiktok_orders (processed, created_at);

-- Every status change seen for an order, in or out of order.
CREATE TABLE order_status_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     text        NOT NULL,
    event_id     text        NOT NULL,
    order_status text,
    update_time  bigint,
    received_at  timestamptz NOT NULL,
    UNIQUE (order_id, event_id)
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, update_time);

CREATE VIEW order_processing_queue AS
    SELECT id, order_id, shop_id, event_type, order_status, update_time,
           processed, error_message, created_at, updated_at
    FROM tiktok_orders
    WHERE NOT processed
    ORDER BY created_at;

CREATE VIEW order_statistics AS
    SELECT shop_id, order_status, COUNT(*) AS count,
           MAX(updated_at) AS last_updated
    FROM tiktok_orders
    GROUP BY shop_id, order_status;
