-- The customer search index is no longer written by the transaction that places an order.
-- FTS5 moves its pending terms to a new segment at every savepoint of a transaction that has
-- written to it, and merges segments as they pile up; a batch of requests opens many
-- savepoints, so with a million orders in the index every order paid for several merges
-- (27 orders/s in `cargo bench --bench console`). A placed order now only joins a queue; the
-- search indexer (src/orders/search.rs) moves queued orders into the index in bulk, and a
-- search reads the index and the few orders still queued.
DROP TRIGGER order_search_insert;
DROP TRIGGER order_search_update;
DROP TRIGGER order_search_delete;

CREATE TABLE order_search_queue (
    order_id TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER order_search_insert AFTER INSERT ON orders BEGIN
    INSERT INTO order_search_queue (order_id) VALUES (new.id);
END;
-- Orders are neither deleted nor renamed by the app; these keep the index right if someone
-- does. A queued order is indexed as it is when its turn comes.
CREATE TRIGGER order_search_update AFTER UPDATE OF id, customer_name, customer_email ON orders
BEGIN
    UPDATE order_search_queue SET order_id = new.id WHERE order_id = old.id;
    DELETE FROM order_search WHERE order_id = old.id
        AND NOT EXISTS (SELECT 1 FROM order_search_queue WHERE order_id = new.id);
    INSERT INTO order_search (order_id, customer_name, customer_email)
        SELECT new.id, new.customer_name, new.customer_email
        WHERE NOT EXISTS (SELECT 1 FROM order_search_queue WHERE order_id = new.id);
END;
CREATE TRIGGER order_search_delete AFTER DELETE ON orders BEGIN
    DELETE FROM order_search_queue WHERE order_id = old.id;
    DELETE FROM order_search WHERE order_id = old.id;
END;
