-- Projections beyond order status: requests on orders (cancellations,
-- returns, reverse orders, refunds), packages and the orders they hold,
-- products, shops. The same tables and columns as SQLite's 0002. Each state
-- column group carries its own ordering value (TikTok's Unix seconds) so that
-- an older event never overwrites it.

CREATE TABLE order_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        text        NOT NULL,
    kind            text        NOT NULL,  -- cancellation, return, reverse_order, refund
    request_id      text        NOT NULL,
    status          text,
    role            text,
    request_type    text,
    amount          text,                  -- TikTok's decimal text, exactly
    currency        text,
    update_time     bigint,
    last_event_id   text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (order_id, kind, request_id)
);

CREATE TABLE packages (
    package_id      text        PRIMARY KEY,
    shop_id         text,
    sc_type         text,
    role_type       text,
    update_time     bigint,
    invoice_status  text,
    invalid_reason  text,
    invoice_time    bigint,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE package_orders (
    package_id      text        NOT NULL,
    order_id        text        NOT NULL,
    PRIMARY KEY (package_id, order_id)
);
CREATE INDEX package_orders_order ON package_orders (order_id);

CREATE TABLE products (
    product_id      text        PRIMARY KEY,
    shop_id         text,
    status          text,
    suspended_reason text,
    status_time     bigint,
    audit_status    text,
    audit_time      bigint,
    category_id     text,
    previous_category_id text,
    category_time   bigint,
    product_types   text[],
    creation_time   bigint,
    change_source   text,
    changed_fields  text[],
    information_time bigint,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE shops (
    shop_id         text        PRIMARY KEY,
    -- Newest envelope timestamp of any event but a deauthorization: an event
    -- after a deauthorization means the seller authorized the app again.
    last_activity_at bigint,
    deauthorized_at bigint,
    authorization_expires_at bigint,
    expiry_notice_at bigint,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

