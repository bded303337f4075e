-- The id of the current state's …StateEntered event: AWS cites it in the causes of errors
-- raised inside the state ("entered at the event id #N").
ALTER TABLE executions ADD COLUMN entered_event_id INTEGER;
-- What a waiting Wait state's Assign set (a JSON object): it takes effect, and shows on the
-- WaitStateExited event, when the timer fires.
ALTER TABLE executions ADD COLUMN timer_assigned TEXT;

-- Access keys for the AWS-compatible API (SigV4). The secret is kept as issued: verifying a
-- signature needs it, as on AWS.
CREATE TABLE access_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    secret      TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  TEXT NOT NULL
);

-- Activities: Task states whose Resource is an activity ARN hand their work to workers that
-- poll GetActivityTask. A token's activity, the input the worker gets, and when (and to
-- whom) it was handed out.
CREATE TABLE activities (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL
);
ALTER TABLE task_tokens ADD COLUMN activity TEXT;
ALTER TABLE task_tokens ADD COLUMN input TEXT;
ALTER TABLE task_tokens ADD COLUMN delivered_at TEXT;
CREATE INDEX task_tokens_by_activity ON task_tokens (activity, status, delivered_at);

-- What CreateStateMachine was given besides the definition.
ALTER TABLE state_machines ADD COLUMN role_arn TEXT;
-- The role an execution runs as ($$.Execution.RoleArn): its state machine's when it started.
ALTER TABLE executions ADD COLUMN role_arn TEXT;
-- DeleteStateMachine: the row stays for the executions that ran it, hidden and closed to new
-- ones until the name is created again.
ALTER TABLE state_machines ADD COLUMN deleted_at TEXT;
