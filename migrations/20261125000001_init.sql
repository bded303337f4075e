-- Workflow engine: state machines, executions, their history, task tokens and timers.
-- Every definition ever used, once: an execution keeps running on the definition it started with.
CREATE TABLE definitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256      TEXT NOT NULL UNIQUE,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE state_machines (
    name           TEXT PRIMARY KEY NOT NULL,
    definition_id  INTEGER NOT NULL REFERENCES definitions(id),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE executions (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    state_machine   TEXT NOT NULL REFERENCES state_machines(name),
    definition_id   INTEGER NOT NULL REFERENCES definitions(id),
    status          TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT')),
    -- What the executor does next: 'ready' to run current_state on state_input, 'waiting' for a
    -- task token or a timer, 'done' once the execution has ended.
    -- 'queued': a Map iteration waiting for a free slot under MaxConcurrency.
    phase           TEXT NOT NULL CHECK (phase IN ('ready', 'waiting', 'queued', 'done')),
    input           TEXT NOT NULL,
    output          TEXT,
    error           TEXT,
    cause           TEXT,
    current_state   TEXT,
    state_input     TEXT,
    -- A durable timer while phase = 'waiting': its RFC 3339 due time and what it is for —
    -- 'wait' (a Wait state; then go to timer_next with timer_output), 'retry' (run the Task
    -- state again) or 'task_timeout' (the pending callback's TimeoutSeconds/HeartbeatSeconds).
    timer_kind      TEXT CHECK (timer_kind IN ('wait', 'retry', 'task_timeout')),
    timer_due_at    TEXT,
    timer_output    TEXT,
    timer_next      TEXT,
    -- JSON array: retries each Retry rule of the current state has made since it was entered.
    retry_counts    TEXT NOT NULL DEFAULT '[]',
    event_count     INTEGER NOT NULL DEFAULT 0,
    started_at      TEXT NOT NULL,
    -- The definition's top-level TimeoutSeconds, as a due time.
    deadline_at     TEXT,
    stopped_at      TEXT,
    -- The branches of a Parallel state and the iterations of a Map state run as executions of
    -- their own: parent_id is the run whose state started them, root_id the top-level
    -- execution whose history they write to, scope the path to their sub-machine
    -- ([[state, branch], ...]), fork_key the Parallel/Map attempt they belong to, branch_index
    -- their place in its result and iteration the Map item index (NULL for Parallel).
    parent_id       TEXT REFERENCES executions(id),
    root_id         TEXT REFERENCES executions(id),
    scope           TEXT NOT NULL DEFAULT '[]',
    fork_key        TEXT,
    branch_index    INTEGER,
    iteration       INTEGER,
    -- The id of this run's latest event in its (root's) history.
    last_event_id   INTEGER NOT NULL DEFAULT 0,
    -- While a Parallel or Map state waits for its branches: their progress (JSON).
    fork            TEXT,
    -- Workflow variables (JSON objects): those this run assigned, and for a branch run those
    -- of the enclosing scopes, as they were when the branch started (read-only here).
    variables       TEXT NOT NULL DEFAULT '{}',
    outer_variables TEXT NOT NULL DEFAULT '{}',
    UNIQUE (state_machine, name)
);
CREATE INDEX executions_by_fork ON executions (fork_key, branch_index) WHERE fork_key IS NOT NULL;
CREATE INDEX executions_by_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX executions_by_deadline ON executions (deadline_at) WHERE deadline_at IS NOT NULL AND phase <> 'done';
CREATE INDEX executions_by_phase ON executions (phase, timer_due_at);
CREATE INDEX executions_by_machine ON executions (state_machine, started_at, id);

CREATE TABLE history_events (
    execution_id      TEXT NOT NULL REFERENCES executions(id),
    id                INTEGER NOT NULL,
    previous_event_id INTEGER NOT NULL,
    type              TEXT NOT NULL,
    timestamp         TEXT NOT NULL,
    details           TEXT NOT NULL,
    PRIMARY KEY (execution_id, id)
);

CREATE TABLE task_tokens (
    token         TEXT PRIMARY KEY NOT NULL,
    execution_id  TEXT NOT NULL REFERENCES executions(id),
    state_name    TEXT NOT NULL,
    state_input   TEXT NOT NULL,
    resource      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    -- TimeoutSeconds deadline, and HeartbeatSeconds with the deadline it sets (moved by heartbeats).
    timeout_at         TEXT,
    heartbeat_seconds  INTEGER,
    heartbeat_at       TEXT,
    created_at    TEXT NOT NULL,
    consumed_at   TEXT
);
CREATE INDEX task_tokens_by_execution ON task_tokens (execution_id);

-- Accounts: approvers and admins (customers order without one), API tokens.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('approver', 'admin')),
    created_at     TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);

-- The order domain.
CREATE TABLE products (
    sku          TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    price_cents  INTEGER NOT NULL CHECK (price_cents > 0),
    position     INTEGER NOT NULL
);

CREATE TABLE orders (
    id                TEXT PRIMARY KEY NOT NULL,
    -- The secret part of the customer's order page URL.
    view_key          TEXT NOT NULL UNIQUE,
    customer_name     TEXT NOT NULL,
    customer_email    TEXT NOT NULL,
    -- JSON array of {"sku","name","quantity","unit_cents"} or, from the API, {"name"} lines.
    items             TEXT NOT NULL,
    total_cents       INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_approval', 'processed', 'rejected', 'invalid')),
    execution_id      TEXT NOT NULL REFERENCES executions(id),
    task_token        TEXT,
    awaiting_since    TEXT,
    decided_by        TEXT,
    decided_at        TEXT,
    decision_reason   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX orders_by_created ON orders (created_at, id);
CREATE INDEX orders_by_status ON orders (status, created_at, id);
CREATE INDEX orders_awaiting ON orders (status, awaiting_since, id);

INSERT INTO products (sku, name, price_cents, position) VALUES
    ('notebook', 'Notebook', 450, 1),
    ('pen-set', 'Pen set', 1299, 2),
    ('desk-lamp', 'Desk lamp', 3900, 3),
    ('office-chair', 'Office chair', 18900, 4),
    ('standing-desk', 'Standing desk', 54900, 5);
