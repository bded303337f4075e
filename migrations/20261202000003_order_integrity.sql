-- Who placed an order through the API (a user's name; NULL for the anonymous storefront), so
-- that nobody decides an order they placed themselves.
ALTER TABLE orders ADD COLUMN placed_by TEXT;
