-- Two indexes that no query needs, each written by every stored event:
-- `webhook_events (event_type)` (only the per-topic statistics read it, by
-- scanning every row anyway) and `order_status_history (order_id,
-- update_time)` (an order's history is found by the unique
-- `(order_id, event_id)` index; its few rows are sorted as they are read).
DROP INDEX IF EXISTS webhook_events_event_type;
DROP INDEX IF EXISTS order_status_history_order;
