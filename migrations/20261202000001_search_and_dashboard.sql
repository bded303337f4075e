-- Searching orders by customer, and the dashboard, at a million orders.

-- The console's search for part of a customer's name or e-mail: a trigram index finds the few
-- orders that match without reading every order. It keeps its own copy of the two fields, keyed
-- by the order id (orders has no INTEGER PRIMARY KEY, so its rowids may change on VACUUM).
CREATE VIRTUAL TABLE order_search USING fts5(
    order_id UNINDEXED, customer_name, customer_email, tokenize = 'trigram'
);
INSERT INTO order_search (order_id, customer_name, customer_email)
    SELECT id, customer_name, customer_email FROM orders;
CREATE TRIGGER order_search_insert AFTER INSERT ON orders BEGIN
    INSERT INTO order_search (order_id, customer_name, customer_email)
        VALUES (new.id, new.customer_name, new.customer_email);
END;
-- Orders are neither deleted nor renamed by the app; these keep the index right if someone does.
CREATE TRIGGER order_search_update AFTER UPDATE OF id, customer_name, customer_email ON orders BEGIN
    DELETE FROM order_search WHERE order_id = old.id;
    INSERT INTO order_search (order_id, customer_name, customer_email)
        VALUES (new.id, new.customer_name, new.customer_email);
END;
CREATE TRIGGER order_search_delete AFTER DELETE ON orders BEGIN
    DELETE FROM order_search WHERE order_id = old.id;
END;

-- The inbox's search among the orders awaiting approval: everything its pages and counts read
-- but the row itself, so a search checks names and e-mails in the index and reads only the
-- rows it shows.
CREATE INDEX orders_awaiting_search ON orders (
    awaiting_since, id, stage, claimed_by, due_at, total_cents, customer_name, customer_email
) WHERE status = 'awaiting_approval';

-- The dashboard's decisions per day, read from the index alone.
DROP INDEX orders_by_decided_at;
CREATE INDEX orders_by_decided_at ON orders (decided_at, decided_by, status, created_at);
