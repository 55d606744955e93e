-- Projections beyond order status: requests on orders (cancellations,
-- returns, reverse orders, refunds), packages and the orders they hold,
-- products, shops. Each state column group carries its own ordering value
-- (TikTok's Unix seconds) so that an older event never overwrites it.

CREATE TABLE order_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,  -- cancellation, return, reverse_order, refund
    request_id      TEXT    NOT NULL,
    status          TEXT,
    role            TEXT,
    request_type    TEXT,
    amount          TEXT,              -- decimal text, never a float
    currency        TEXT,
    update_time     INTEGER,
    last_event_id   TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (order_id, kind, request_id)
);

CREATE TABLE packages (
    package_id      TEXT    PRIMARY KEY,
    shop_id         TEXT,
    sc_type         TEXT,
    role_type       TEXT,
    update_time     INTEGER,
    invoice_status  TEXT,
    invalid_reason  TEXT,
    invoice_time    INTEGER,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE TABLE package_orders (
    package_id      TEXT    NOT NULL,
    order_id        TEXT    NOT NULL,
    PRIMARY KEY (package_id, order_id)
);
CREATE INDEX package_orders_order ON package_orders (order_id);

CREATE TABLE products (
    product_id      TEXT    PRIMARY KEY,
    shop_id         TEXT,
    status          TEXT,
    suspended_reason TEXT,
    status_time     INTEGER,
    audit_status    TEXT,
    audit_time      INTEGER,
    category_id     TEXT,
    previous_category_id TEXT,
    category_time   INTEGER,
    product_types   TEXT,              -- JSON array
    creation_time   INTEGER,
    change_source   TEXT,
    changed_fields  TEXT,              -- JSON array
    information_time INTEGER,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE TABLE shops (
    shop_id         TEXT    PRIMARY KEY,
    -- Newest envelope timestamp of any event but a deauthorization: an event
    -- after a deauthorization means the seller authorized the app again.
    last_activity_at INTEGER,
    deauthorized_at INTEGER,
    authorization_expires_at INTEGER,
    expiry_notice_at INTEGER,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
