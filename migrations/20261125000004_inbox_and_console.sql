-- The approver's inbox and the admin console.

-- Which approval an order waits for: 'first', 'second' (a different approver, for the largest
-- orders) or 'escalated' (past its deadline: admins decide). The first approver, who may not
-- give the second; the deadline; who has claimed it.
ALTER TABLE orders ADD COLUMN stage TEXT NOT NULL DEFAULT 'first'
    CHECK (stage IN ('first', 'second', 'escalated'));
ALTER TABLE orders ADD COLUMN first_approver TEXT;
ALTER TABLE orders ADD COLUMN due_at TEXT;
ALTER TABLE orders ADD COLUMN claimed_by TEXT;
ALTER TABLE orders ADD COLUMN claimed_at TEXT;
-- The inbox's counts, read from the index alone.
CREATE INDEX orders_awaiting_work ON orders (status, stage, claimed_by, due_at);
-- The inbox's "largest first" order.
CREATE INDEX orders_awaiting_by_total ON orders (status, total_cents, id);
-- The console's filters by amount and by approver.
CREATE INDEX orders_by_total ON orders (total_cents, created_at);
CREATE INDEX orders_by_decider ON orders (decided_by, created_at);
-- The dashboard's decisions per day.
CREATE INDEX orders_by_decided_at ON orders (decided_at);
-- From an execution to its order (stopping a workflow rejects its order).
CREATE INDEX orders_by_execution ON orders (execution_id);

-- Everything that happened to an order's approval, in order: who claimed it, who decided and
-- why, when it moved to a second approval or was escalated.
CREATE TABLE order_trail (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id  TEXT NOT NULL REFERENCES orders(id),
    at        TEXT NOT NULL,
    -- The user, or NULL for the workflow itself.
    actor     TEXT,
    action    TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX order_trail_by_order ON order_trail (order_id, id);

-- Approvers and admins: an e-mail (an approver never decides an order placed with their own),
-- an optional approval limit, and disabling instead of deleting.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN approval_limit_cents INTEGER CHECK (approval_limit_cents >= 0);
ALTER TABLE users ADD COLUMN disabled_at TEXT;

-- Every admin action, for admins to read; nobody can change or remove an entry.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log cannot be changed');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log cannot be changed');
END;
