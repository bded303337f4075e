-- No query reads `orders_awaiting` any more: every inbox page names one of the partial indexes
-- of the waiting orders (orders_awaiting_search, _largest, _due) or orders_awaiting_work, and
-- the order list filters by status through orders_by_status. Each change of an order's status
-- rewrote two of its entries.
DROP INDEX orders_awaiting;
