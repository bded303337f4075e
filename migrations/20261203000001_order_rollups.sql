-- The dashboard and the inbox at a million orders: roll-ups the dashboard and the inbox's
-- counts read instead of counting orders, and partial indexes over the orders awaiting
-- approval for the inbox's pages and filters.
--
-- The roll-ups are kept by triggers, in the same statement (so the same transaction) as the
-- change to the order. That way no writer can forget them: the workflow's handlers, decisions,
-- stops, a rewritten write path, a bulk load or a fix run by hand all keep them equal to a
-- count over `orders`, as `order_search` is kept. A PostgreSQL backend keeps the same tables
-- with trigger functions of its own.

-- How many orders are in each status.
CREATE TABLE order_counts (
    status    TEXT PRIMARY KEY NOT NULL,
    how_many  INTEGER NOT NULL
);
INSERT INTO order_counts (status, how_many)
    SELECT status, COUNT(*) FROM orders GROUP BY status;

CREATE TRIGGER order_counts_insert AFTER INSERT ON orders BEGIN
    INSERT INTO order_counts (status, how_many) VALUES (new.status, 1)
        ON CONFLICT (status) DO UPDATE SET how_many = how_many + 1;
END;
CREATE TRIGGER order_counts_update AFTER UPDATE OF status ON orders
WHEN old.status <> new.status BEGIN
    UPDATE order_counts SET how_many = how_many - 1 WHERE status = old.status;
    INSERT INTO order_counts (status, how_many) VALUES (new.status, 1)
        ON CONFLICT (status) DO UPDATE SET how_many = how_many + 1;
END;
-- Orders are not deleted by the app; this keeps the counts right if someone does.
CREATE TRIGGER order_counts_delete AFTER DELETE ON orders BEGIN
    UPDATE order_counts SET how_many = how_many - 1 WHERE status = old.status;
END;

-- Decided orders by the day of their (last) decision and the whole minutes from order to that
-- decision: what the dashboard's approval rates and decision times are computed from. An order
-- counts once someone decided it (`decided_by`: an approver, an admin who stopped it, or the
-- workflow that failed it), as approved unless it is rejected. Its bucket moves when a second
-- approval or a stop overwrites the decision, and `approved` follows its status.
CREATE TABLE order_decisions (
    -- The decision's date, YYYY-MM-DD (UTC).
    day       TEXT NOT NULL,
    minutes   INTEGER NOT NULL,
    approved  INTEGER NOT NULL,
    decided   INTEGER NOT NULL,
    PRIMARY KEY (day, minutes)
);
INSERT INTO order_decisions (day, minutes, approved, decided)
    SELECT substr(decided_at, 1, 10),
        CAST((julianday(decided_at) - julianday(created_at)) * 1440 AS INTEGER),
        SUM(status <> 'rejected'), COUNT(*)
    FROM orders
    WHERE decided_by IS NOT NULL AND julianday(decided_at) IS NOT NULL
        AND julianday(created_at) IS NOT NULL
    GROUP BY 1, 2;

CREATE TRIGGER order_decisions_insert AFTER INSERT ON orders
WHEN new.decided_by IS NOT NULL AND julianday(new.decided_at) IS NOT NULL
    AND julianday(new.created_at) IS NOT NULL
BEGIN
    INSERT INTO order_decisions (day, minutes, approved, decided)
        VALUES (substr(new.decided_at, 1, 10),
            CAST((julianday(new.decided_at) - julianday(new.created_at)) * 1440 AS INTEGER),
            new.status <> 'rejected', 1)
        ON CONFLICT (day, minutes) DO UPDATE
            SET approved = approved + excluded.approved, decided = decided + 1;
END;
-- Only when what the order counts as changes (moving from pending to processed after an
-- approval does not), the old bucket loses the order and the new one gains it.
CREATE TRIGGER order_decisions_update
AFTER UPDATE OF status, decided_by, decided_at, created_at ON orders
WHEN (old.decided_by IS NULL) <> (new.decided_by IS NULL)
    OR old.decided_at IS NOT new.decided_at
    OR old.created_at IS NOT new.created_at
    OR (old.status = 'rejected') <> (new.status = 'rejected')
BEGIN
    UPDATE order_decisions
        SET approved = approved - (old.status <> 'rejected'), decided = decided - 1
        WHERE old.decided_by IS NOT NULL AND julianday(old.created_at) IS NOT NULL
            AND day = substr(old.decided_at, 1, 10)
            AND minutes = CAST((julianday(old.decided_at) - julianday(old.created_at)) * 1440
                AS INTEGER);
    DELETE FROM order_decisions
        WHERE day = substr(old.decided_at, 1, 10)
            AND minutes = CAST((julianday(old.decided_at) - julianday(old.created_at)) * 1440
                AS INTEGER)
            AND decided = 0;
    INSERT INTO order_decisions (day, minutes, approved, decided)
        SELECT substr(new.decided_at, 1, 10),
            CAST((julianday(new.decided_at) - julianday(new.created_at)) * 1440 AS INTEGER),
            new.status <> 'rejected', 1
        WHERE new.decided_by IS NOT NULL AND julianday(new.decided_at) IS NOT NULL
            AND julianday(new.created_at) IS NOT NULL
        ON CONFLICT (day, minutes) DO UPDATE
            SET approved = approved + excluded.approved, decided = decided + 1;
END;
CREATE TRIGGER order_decisions_delete AFTER DELETE ON orders
WHEN old.decided_by IS NOT NULL BEGIN
    UPDATE order_decisions
        SET approved = approved - (old.status <> 'rejected'), decided = decided - 1
        WHERE day = substr(old.decided_at, 1, 10)
            AND minutes = CAST((julianday(old.decided_at) - julianday(old.created_at)) * 1440
                AS INTEGER);
    DELETE FROM order_decisions
        WHERE day = substr(old.decided_at, 1, 10)
            AND minutes = CAST((julianday(old.decided_at) - julianday(old.created_at)) * 1440
                AS INTEGER)
            AND decided = 0;
END;

-- The dashboard read decisions through this index; it reads `order_decisions` now, and every
-- write to an order no longer pays for it.
DROP INDEX orders_by_decided_at;

-- The inbox's counts without filters: orders awaiting approval by stage and by who has claimed
-- them ('' for nobody, so that the key has no NULL), a few rows whatever the queue's length.
CREATE TABLE inbox_counts (
    stage       TEXT NOT NULL,
    claimed_by  TEXT NOT NULL,
    how_many    INTEGER NOT NULL,
    PRIMARY KEY (stage, claimed_by)
);
INSERT INTO inbox_counts (stage, claimed_by, how_many)
    SELECT stage, COALESCE(claimed_by, ''), COUNT(*) FROM orders
    WHERE status = 'awaiting_approval' GROUP BY 1, 2;

CREATE TRIGGER inbox_counts_insert AFTER INSERT ON orders
WHEN new.status = 'awaiting_approval' BEGIN
    INSERT INTO inbox_counts (stage, claimed_by, how_many)
        VALUES (new.stage, COALESCE(new.claimed_by, ''), 1)
        ON CONFLICT (stage, claimed_by) DO UPDATE SET how_many = how_many + 1;
END;
CREATE TRIGGER inbox_counts_update AFTER UPDATE OF status, stage, claimed_by ON orders
WHEN (old.status = 'awaiting_approval' OR new.status = 'awaiting_approval')
    AND (old.status <> new.status OR old.stage <> new.stage
        OR old.claimed_by IS NOT new.claimed_by)
BEGIN
    UPDATE inbox_counts SET how_many = how_many - 1
        WHERE old.status = 'awaiting_approval'
            AND stage = old.stage AND claimed_by = COALESCE(old.claimed_by, '');
    DELETE FROM inbox_counts
        WHERE stage = old.stage AND claimed_by = COALESCE(old.claimed_by, '') AND how_many = 0;
    INSERT INTO inbox_counts (stage, claimed_by, how_many)
        SELECT new.stage, COALESCE(new.claimed_by, ''), 1
        WHERE new.status = 'awaiting_approval'
        ON CONFLICT (stage, claimed_by) DO UPDATE SET how_many = how_many + 1;
END;
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON orders
WHEN old.status = 'awaiting_approval' BEGIN
    UPDATE inbox_counts SET how_many = how_many - 1
        WHERE stage = old.stage AND claimed_by = COALESCE(old.claimed_by, '');
    DELETE FROM inbox_counts
        WHERE stage = old.stage AND claimed_by = COALESCE(old.claimed_by, '') AND how_many = 0;
END;

-- What is due soon among the orders awaiting approval, soonest first: the dashboard's list and
-- the inbox's count of it (which leaves escalated orders out for approvers).
CREATE INDEX orders_awaiting_due ON orders (due_at, stage) WHERE status = 'awaiting_approval';

-- The inbox's "largest first" order with everything its filters and counts read, as
-- `orders_awaiting_search` holds them for "oldest first": a filter by amount reads a range of
-- this index and only the rows it shows. It replaces an index over every order.
CREATE INDEX orders_awaiting_largest ON orders (
    total_cents, id, stage, claimed_by, due_at, awaiting_since, customer_name, customer_email
) WHERE status = 'awaiting_approval';
DROP INDEX orders_awaiting_by_total;
