-- Events, orders and their history. Times are RFC 3339 UTC text with fixed
-- microsecond width (so that text order is time order); TikTok's own times
-- (`timestamp`, `update_time`) are Unix seconds.

-- Every notification, kept once. `payload` holds the body exactly as
-- received: it is valid JSON text, so SQLite's json functions work on it and
-- no second copy is needed for the raw bytes.
CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    type            INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    shop_id         TEXT,
    order_id        TEXT,
    payload         TEXT    NOT NULL,
    signature       TEXT,
    timestamp       INTEGER,
    received_at     TEXT    NOT NULL,
    last_received_at TEXT   NOT NULL,
    deliveries      INTEGER NOT NULL DEFAULT 1,
    processed       INTEGER NOT NULL DEFAULT 0,
    success         INTEGER,
    error_message   TEXT
);
CREATE INDEX webhook_events_shop ON webhook_events (shop_id, id);
CREATE INDEX webhook_events_type ON webhook_events (type, id);
CREATE INDEX webhook_events_event_type ON webhook_events (event_type);

-- The newest known state of each order. `update_time` is the `update_time`
-- of the status change that set `order_status`; an older one never
-- overwrites it.
CREATE TABLE tiktok_orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        TEXT    NOT NULL UNIQUE,
    shop_id         TEXT,
    event_type      TEXT    NOT NULL,
    order_status    TEXT,
    is_on_hold      INTEGER,
    update_time     INTEGER,
    last_event_id   TEXT,
    order_data      TEXT,
    address_updated_at INTEGER,
    processed       INTEGER NOT NULL DEFAULT 0,
    error_message   TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX tiktok_orders_shop ON tiktok_orders (shop_id, update_time DESC);
CREATE INDEX tiktok_orders_unprocessed ON tiktok_orders (processed, created_at);

-- Every status change seen for an order, in or out of order.
CREATE TABLE order_status_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    order_status    TEXT,
    update_time     INTEGER,
    received_at     TEXT    NOT NULL,
    UNIQUE (order_id, event_id)
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, update_time);

CREATE VIEW order_processing_queue AS
    SELECT id, order_id, shop_id, event_type, order_status, update_time,
           processed, error_message, created_at, updated_at
    FROM tiktok_orders
    WHERE processed = 0
    ORDER BY created_at;

CREATE VIEW order_statistics AS
    SELECT shop_id, order_status, COUNT(*) AS count,
           MAX(updated_at) AS last_updated
    FROM tiktok_orders
    GROUP BY shop_id, order_status;
