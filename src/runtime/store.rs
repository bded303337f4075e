//! The runtime's tables: executions, their history, task tokens and definitions. Every function
//! takes the caller's connection so that a step's reads and writes share one transaction; on
//! the write connection ([`WriteConn`]) they run on the calling thread, and the few that pages
//! read through sqlx's readers (`read_*`) decode the same rows.

use crate::db::{Columns, RawRow, WriteConn};
use crate::engine::{json_text, EventType};
use crate::model::EventRow;
use crate::model::{ExecutionStatus, TokenStatus};
use rusqlite::params;
use serde_json::Value;
use sqlx::SqliteConnection;

/// Execution status, spelled as AWS spells it.
pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";
pub const TIMED_OUT: &str = "TIMED_OUT";

pub use crate::engine::execution::{ExecutionRecord, PendingTask, Phase, TimerKind};

/// An execution row, loaded for a step and saved at its end: the engine's record of it, and
/// what only storage needs.
#[derive(Debug, Clone)]
pub struct Execution {
    pub rec: ExecutionRecord,
    pub definition_id: i64,
    /// The events of its history numbered so far (for a top-level execution; its branch runs
    /// count them on its row).
    pub event_count: i64,
    /// Events appended since the last save: written with the row, in one statement.
    pub unsaved_events: Vec<NewEvent>,
    /// Changed since it was loaded or saved.
    pub unsaved: bool,
    /// How the step running it undoes a task handler that fails.
    pub task_undo: TaskUndo,
}

/// How a task handler's writes are undone when it fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskUndo {
    /// In a savepoint of the handler's own: two more trips to SQLite per task.
    #[default]
    Savepoint,
    /// By the run's caller: the failure stops the run with [`RuntimeError::Rerun`], and the
    /// caller undoes the run and runs it again with savepoints.
    ///
    /// [`RuntimeError::Rerun`]: super::RuntimeError::Rerun
    Rerun,
}

/// A history event not yet written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    history: String,
    id: i64,
    previous: i64,
    kind_text: &'static str,
    timestamp: String,
    details: String,
}

impl Execution {
    /// A new execution or branch run of definition `definition_id`, not yet stored.
    pub fn new(rec: ExecutionRecord, definition_id: i64) -> Execution {
        Execution {
            rec,
            definition_id,
            event_count: 0,
            unsaved_events: Vec::new(),
            unsaved: false,
            task_undo: TaskUndo::Savepoint,
        }
    }
}

fn json_column(text: Option<String>) -> Result<Option<Value>, sqlx::Error> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// A JSON object column.
fn object_column(text: String) -> Result<serde_json::Map<String, Value>, sqlx::Error> {
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// An optional JSON column's text.
fn optional_json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(json_text)
}

/// Inserts a new running execution.
pub fn insert_execution(conn: &WriteConn, ex: &Execution) -> Result<(), sqlx::Error> {
    conn.exec(
        "INSERT INTO executions (id, name, state_machine, definition_id, status, phase, input,
             current_state, state_input, event_count, started_at, deadline_at, parent_id, root_id,
             scope, fork_key, branch_index, iteration, last_event_id, outer_variables, role_arn)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            ex.rec.id,
            ex.rec.name,
            ex.rec.state_machine,
            ex.definition_id,
            ex.rec.status.as_str(),
            ex.rec.phase.as_str(),
            json_text(&ex.rec.input),
            ex.rec.current_state,
            optional_json_text(&ex.rec.state_input),
            ex.rec.started_at,
            ex.rec.deadline_at,
            ex.rec.parent_id,
            ex.rec.root_id,
            serde_json::to_string(&ex.rec.scope).unwrap_or_else(|_| "[]".into()),
            ex.rec.fork_key,
            ex.rec.branch_index,
            ex.rec.iteration,
            ex.rec.last_event_id,
            json_text(&ex.rec.outer_variables),
            ex.rec.role_arn,
        ],
    )?;
    Ok(())
}

/// The state machine execution `id` runs, read from its column alone.
pub fn execution_machine(conn: &WriteConn, id: &str) -> Result<Option<String>, sqlx::Error> {
    conn.optional(
        "SELECT state_machine FROM executions WHERE id = ?",
        [id],
        |row| row.try_get("state_machine"),
    )
}

const EXECUTION_COLUMNS: &str = "SELECT id, name, state_machine, definition_id, status, phase,
    input, output, error, cause, current_state, state_input, timer_kind, timer_due_at,
    timer_output, timer_next, retry_counts, event_count, started_at, deadline_at, stopped_at,
    parent_id, root_id, scope, fork_key, branch_index, iteration, last_event_id, fork, variables,
    outer_variables, entered_event_id, timer_assigned, role_arn
    FROM executions WHERE id = ?";

/// Loads an execution by id.
pub fn load_execution(conn: &WriteConn, id: &str) -> Result<Option<Execution>, sqlx::Error> {
    conn.optional(EXECUTION_COLUMNS, [id], |r| execution_from_row(r))
}

/// [`load_execution`], on a reader.
pub async fn read_execution(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<Execution>, sqlx::Error> {
    let row = sqlx::query(EXECUTION_COLUMNS)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(execution_from_row).transpose()
}

fn execution_from_row(row: &impl Columns) -> Result<Execution, sqlx::Error> {
    let rec = ExecutionRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        state_machine: row.try_get("state_machine")?,
        status: {
            let status: String = row.try_get("status")?;
            ExecutionStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "status".into(),
                source: format!("unknown execution status '{status}'").into(),
            })?
        },
        phase: Phase::parse(&row.try_get::<String>("phase")?),
        input: json_column(row.try_get("input")?)?.unwrap_or(Value::Null),
        output: json_column(row.try_get("output")?)?,
        error: row.try_get("error")?,
        cause: row.try_get("cause")?,
        current_state: row.try_get("current_state")?,
        state_input: json_column(row.try_get("state_input")?)?,
        timer_kind: row
            .try_get::<Option<String>>("timer_kind")?
            .as_deref()
            .and_then(TimerKind::parse),
        timer_due_at: row.try_get("timer_due_at")?,
        timer_output: json_column(row.try_get("timer_output")?)?,
        timer_assigned: match json_column(row.try_get("timer_assigned")?)? {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        },
        timer_next: row.try_get("timer_next")?,
        retry_counts: serde_json::from_str(&row.try_get::<String>("retry_counts")?)
            .unwrap_or_default(),
        started_at: row.try_get("started_at")?,
        deadline_at: row.try_get("deadline_at")?,
        stopped_at: row.try_get("stopped_at")?,
        parent_id: row.try_get("parent_id")?,
        root_id: row.try_get("root_id")?,
        scope: serde_json::from_str(&row.try_get::<String>("scope")?).unwrap_or_default(),
        fork_key: row.try_get("fork_key")?,
        branch_index: row.try_get("branch_index")?,
        iteration: row.try_get("iteration")?,
        last_event_id: row.try_get("last_event_id")?,
        entered_event_id: row.try_get("entered_event_id")?,
        role_arn: row.try_get("role_arn")?,
        fork: row
            .try_get::<Option<String>>("fork")?
            .and_then(|f| serde_json::from_str(&f).ok()),
        variables: object_column(row.try_get("variables")?)?,
        outer_variables: object_column(row.try_get("outer_variables")?)?,
        invoking: None,
    };
    Ok(Execution {
        rec,
        definition_id: row.try_get("definition_id")?,
        event_count: row.try_get("event_count")?,
        unsaved_events: Vec::new(),
        unsaved: false,
        task_undo: TaskUndo::Savepoint,
    })
}

/// Writes back everything a step may change, with the events it appended.
pub fn save_execution(conn: &WriteConn, ex: &mut Execution) -> Result<(), sqlx::Error> {
    write_events(conn, ex)?;
    ex.unsaved = false;
    // A top-level execution counts its own events in memory; its branch runs count theirs
    // on its row (see `append_event`), so the larger figure is the true one.
    let done = conn.exec(
        "UPDATE executions SET status = ?, phase = ?, output = ?, error = ?, cause = ?,
             current_state = ?, state_input = ?, timer_kind = ?, timer_due_at = ?,
             timer_output = ?, timer_next = ?, retry_counts = ?, last_event_id = ?, fork = ?,
             variables = ?, stopped_at = ?, entered_event_id = ?, timer_assigned = ?,
             event_count = MAX(event_count, ?)
         WHERE id = ?",
        params![
            ex.rec.status.as_str(),
            ex.rec.phase.as_str(),
            optional_json_text(&ex.rec.output),
            ex.rec.error,
            ex.rec.cause,
            ex.rec.current_state,
            optional_json_text(&ex.rec.state_input),
            ex.rec.timer_kind.map(TimerKind::as_str),
            ex.rec.timer_due_at,
            optional_json_text(&ex.rec.timer_output),
            ex.rec.timer_next,
            serde_json::to_string(&ex.rec.retry_counts).unwrap_or_else(|_| "[]".into()),
            ex.rec.last_event_id,
            ex.rec
                .fork
                .as_ref()
                .and_then(|f| serde_json::to_string(f).ok()),
            json_text(&ex.rec.variables),
            ex.rec.stopped_at,
            ex.rec.entered_event_id,
            ex.rec.timer_assigned.as_ref().map(json_text),
            ex.event_count,
            ex.rec.id,
        ],
    )?;
    // A step that saved nothing must not pass for one that did.
    if done != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// The id the next event of the execution's history will get (inside the step's transaction).
pub fn next_event_id(conn: &WriteConn, ex: &Execution) -> Result<i64, sqlx::Error> {
    if ex.rec.root_id.is_none() {
        return Ok(ex.event_count + 1);
    }
    conn.one(
        "SELECT event_count + 1 AS next FROM executions WHERE id = ?",
        [ex.rec.history_id()],
        |row| row.try_get("next"),
    )
}

/// Appends one history event after the execution's last one; it is written when the execution
/// is saved. A top-level execution numbers its own events from its loaded row; a branch run
/// takes the next number from its top-level execution's row, which its siblings share.
pub fn append_event(
    conn: &WriteConn,
    ex: &mut Execution,
    kind: EventType,
    details: &Value,
    timestamp: &str,
) -> Result<(), sqlx::Error> {
    let history = ex.rec.history_id().to_string();
    let id: i64 = if ex.rec.root_id.is_none() {
        ex.event_count + 1
    } else {
        conn.one(
            "UPDATE executions SET event_count = event_count + 1 WHERE id = ?
             RETURNING event_count",
            [&history],
            |row| row.try_get("event_count"),
        )?
    };
    ex.unsaved_events.push(NewEvent {
        history,
        id,
        previous: ex.rec.last_event_id,
        kind_text: kind.as_str(),
        timestamp: timestamp.to_string(),
        details: json_text(details),
    });
    ex.rec.last_event_id = id;
    if kind.as_str().ends_with("StateEntered") {
        ex.rec.entered_event_id = Some(id);
    }
    if ex.rec.root_id.is_none() {
        ex.event_count = id;
    }
    Ok(())
}

/// Before branch runs number events of this top-level execution's history on its row, the
/// row learns the numbers it has handed out in memory.
pub fn share_event_count(conn: &WriteConn, ex: &mut Execution) -> Result<(), sqlx::Error> {
    write_events(conn, ex)?;
    conn.exec(
        "UPDATE executions SET event_count = MAX(event_count, ?) WHERE id = ?",
        params![ex.event_count, ex.rec.id],
    )?;
    Ok(())
}

/// Writes the appended events, many to a statement.
fn write_events(conn: &WriteConn, ex: &mut Execution) -> Result<(), sqlx::Error> {
    const ROWS: usize = 100;
    let events = std::mem::take(&mut ex.unsaved_events);
    for chunk in events.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO history_events (execution_id, id, previous_event_id, type, timestamp, details) VALUES ",
        );
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 6);
        for (i, e) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
            values.extend([
                &e.history as &dyn rusqlite::ToSql,
                &e.id,
                &e.previous,
                &e.kind_text,
                &e.timestamp,
                &e.details,
            ]);
        }
        conn.exec(&sql, values.as_slice())?;
    }
    Ok(())
}

/// The results of a Parallel/Map attempt's branch runs, in branch order: each output, or
/// `{"Error", "Cause"}` for a failed one.
pub fn fork_outputs(conn: &WriteConn, fork_key: &str) -> Result<Vec<Value>, sqlx::Error> {
    conn.all(
        "SELECT status, output, error, cause FROM executions WHERE fork_key = ?
         ORDER BY branch_index",
        [fork_key],
        |r| {
            let status: String = r.try_get("status")?;
            Ok(if status == SUCCEEDED {
                json_column(r.try_get("output")?)?.unwrap_or(Value::Null)
            } else {
                serde_json::json!({
                    "Error": r.try_get::<Option<String>>("error")?,
                    "Cause": r.try_get::<Option<String>>("cause")?,
                })
            })
        },
    )
}

/// The branch runs of a Parallel/Map attempt that have started and not ended.
pub fn running_branches(conn: &WriteConn, fork_key: &str) -> Result<Vec<String>, sqlx::Error> {
    conn.all(
        "SELECT id FROM executions WHERE fork_key = ? AND phase IN ('ready', 'waiting')
         ORDER BY branch_index",
        [fork_key],
        |r| r.try_get("id"),
    )
}

/// The id of branch run `index` of a Parallel/Map attempt.
pub fn fork_branch(
    conn: &WriteConn,
    fork_key: &str,
    index: usize,
) -> Result<Option<String>, sqlx::Error> {
    conn.optional(
        "SELECT id FROM executions WHERE fork_key = ? AND branch_index = ?",
        params![fork_key, index as i64],
        |r| r.try_get("id"),
    )
}

/// Fails the top-level execution that `id` belongs to, without reading its (unusable) state:
/// its branch runs are aborted, its tokens cancelled, and `ExecutionFailed` ends its history.
/// Returns the top-level execution's id.
pub fn fail_unrunnable(
    conn: &WriteConn,
    id: &str,
    cause: &str,
    now: &str,
) -> Result<String, sqlx::Error> {
    // The top-level ancestor (a distributed Map's iterations have no root_id).
    let root: String = conn.one(
        "WITH RECURSIVE up(id, parent_id) AS (
             SELECT id, parent_id FROM executions WHERE id = ?
             UNION ALL
             SELECT e.id, e.parent_id FROM executions e JOIN up ON e.id = up.parent_id)
         SELECT id FROM up WHERE parent_id IS NULL",
        [id],
        |r| r.try_get("id"),
    )?;
    abort_below(conn, &root, None, now)?;
    cancel_tokens(conn, &root, now)?;
    let event: i64 = conn.one(
        "UPDATE executions SET status = 'FAILED', phase = 'done', error = 'States.Runtime',
             cause = ?, stopped_at = ?, timer_kind = NULL, timer_due_at = NULL, fork = NULL,
             event_count = event_count + 1
         WHERE id = ? RETURNING event_count",
        params![cause, now, root],
        |r| r.try_get("event_count"),
    )?;
    let details = serde_json::json!({ "error": "States.Runtime", "cause": cause });
    conn.exec(
        "INSERT INTO history_events (execution_id, id, previous_event_id, type, timestamp, details)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![
            root,
            event,
            event - 1,
            EventType::ExecutionFailed.as_str(),
            now,
            json_text(&details)
        ],
    )?;
    Ok(root)
}

/// Aborts every unfinished run below `parent_id` (or, with `fork_key`, below and including
/// that attempt's branch runs) and cancels their pending task tokens.
pub fn abort_below(
    conn: &WriteConn,
    parent_id: &str,
    fork_key: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    const TREE: &str = "WITH RECURSIVE below(id) AS (
            SELECT id FROM executions
             WHERE parent_id = ?1 AND (?2 IS NULL OR fork_key = ?2) AND phase <> 'done'
            UNION
            SELECT e.id FROM executions e JOIN below b ON e.parent_id = b.id
             WHERE e.phase <> 'done')";
    conn.exec(
        &format!(
            "{TREE} UPDATE task_tokens SET status = 'cancelled', consumed_at = ?3
             WHERE status = 'pending' AND execution_id IN (SELECT id FROM below)"
        ),
        params![parent_id, fork_key, now],
    )?;
    conn.exec(
        &format!(
            "{TREE} UPDATE executions SET status = 'ABORTED', phase = 'done', stopped_at = ?3,
                 timer_kind = NULL, timer_due_at = NULL, fork = NULL
             WHERE id IN (SELECT id FROM below)"
        ),
        params![parent_id, fork_key, now],
    )?;
    Ok(())
}

/// The execution's history, oldest first (on a reader).
pub async fn history(
    conn: &mut SqliteConnection,
    execution_id: &str,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, previous_event_id, type, timestamp, details FROM history_events
         WHERE execution_id = ? ORDER BY id",
    )
    .bind(execution_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                id: r.try_get("id")?,
                previous_event_id: r.try_get("previous_event_id")?,
                kind: r.try_get("type")?,
                timestamp: r.try_get("timestamp")?,
                details: r.try_get("details")?,
            })
        })
        .collect()
}

pub fn insert_token(
    conn: &WriteConn,
    token: &str,
    task: &PendingTask,
    now: &str,
) -> Result<(), sqlx::Error> {
    conn.exec(
        "INSERT INTO task_tokens (token, execution_id, state_name, state_input, resource, status,
             timeout_at, heartbeat_seconds, heartbeat_at, created_at, activity, input)
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
        params![
            token,
            task.execution_id,
            task.state_name,
            json_text(&task.state_input),
            task.resource,
            task.timeout_at,
            task.heartbeat_seconds.and_then(|s| i64::try_from(s).ok()),
            task.heartbeat_at,
            now,
            task.activity.as_ref().map(|(arn, _)| arn),
            task.activity.as_ref().map(|(_, input)| input.to_string()),
        ],
    )?;
    Ok(())
}

/// Hands the oldest undelivered task of `activity` to a worker: `(token, input, execution)`.
pub fn deliver_activity_task(
    conn: &WriteConn,
    activity: &str,
    now: &str,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    conn.optional(
        "UPDATE task_tokens SET delivered_at = ?
         WHERE token = (SELECT token FROM task_tokens
                        WHERE activity = ? AND status = 'pending' AND delivered_at IS NULL
                        ORDER BY created_at, token LIMIT 1)
         RETURNING token, input, execution_id",
        params![now, activity],
        |r| {
            Ok((
                r.try_get("token")?,
                r.try_get::<Option<String>>("input")?
                    .unwrap_or_else(|| "{}".into()),
                r.try_get("execution_id")?,
            ))
        },
    )
}

const TOKEN_COLUMNS: &str = "token, execution_id, state_name, state_input, resource, status,
    timeout_at, heartbeat_seconds, heartbeat_at";

fn token_from_row(row: &impl Columns) -> Result<(String, PendingTask), sqlx::Error> {
    let task = PendingTask {
        execution_id: row.try_get("execution_id")?,
        state_name: row.try_get("state_name")?,
        state_input: json_column(row.try_get("state_input")?)?.unwrap_or(Value::Null),
        resource: row.try_get("resource")?,
        status: row.try_get("status")?,
        timeout_at: row.try_get("timeout_at")?,
        heartbeat_seconds: row
            .try_get::<Option<i64>>("heartbeat_seconds")?
            .and_then(|s| u64::try_from(s).ok()),
        heartbeat_at: row.try_get("heartbeat_at")?,
        activity: None,
    };
    Ok((row.try_get("token")?, task))
}

/// The task of a row of [`TOKEN_COLUMNS`].
fn task_of(row: &impl Columns) -> Result<PendingTask, sqlx::Error> {
    token_from_row(row).map(|(_, task)| task)
}

pub fn load_token(conn: &WriteConn, token: &str) -> Result<Option<PendingTask>, sqlx::Error> {
    conn.optional(
        &format!("SELECT {TOKEN_COLUMNS} FROM task_tokens WHERE token = ?"),
        [token],
        |r| task_of(r),
    )
}

/// [`load_token`], on a reader.
pub async fn read_token(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<Option<PendingTask>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM task_tokens WHERE token = ?"
    ))
    .bind(token)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(task_of).transpose()
}

/// The execution's pending callback, if it has one.
pub fn pending_token_of(
    conn: &WriteConn,
    execution_id: &str,
) -> Result<Option<(String, PendingTask)>, sqlx::Error> {
    conn.optional(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM task_tokens WHERE execution_id = ? AND status = 'pending'"
        ),
        [execution_id],
        |r| token_from_row(r),
    )
}

/// Moves a pending token's heartbeat deadline.
pub fn set_heartbeat(conn: &WriteConn, token: &str, heartbeat_at: &str) -> Result<(), sqlx::Error> {
    conn.exec(
        "UPDATE task_tokens SET heartbeat_at = ? WHERE token = ? AND status = 'pending'",
        [heartbeat_at, token],
    )?;
    Ok(())
}

/// Consumes a pending token: the compare-and-set that makes a resume happen exactly once.
/// Returns false when the token was no longer pending.
pub fn consume_token(
    conn: &WriteConn,
    token: &str,
    outcome: TokenStatus,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = conn.exec(
        "UPDATE task_tokens SET status = ?, consumed_at = ? WHERE token = ? AND status = 'pending'",
        [outcome.as_str(), now, token],
    )?;
    Ok(done == 1)
}

/// [`consume_token`] that also returns the task it was for (its status now `outcome`), in one
/// statement. `None` when the token was not pending (or does not exist).
pub fn take_token(
    conn: &WriteConn,
    token: &str,
    outcome: TokenStatus,
    now: &str,
) -> Result<Option<PendingTask>, sqlx::Error> {
    conn.optional(
        &format!(
            "UPDATE task_tokens SET status = ?, consumed_at = ? WHERE token = ? AND status = 'pending'
             RETURNING {TOKEN_COLUMNS}"
        ),
        [outcome.as_str(), now, token],
        |r| task_of(r),
    )
}

/// Stores a definition once (by content hash) and returns its id.
pub fn intern_definition(conn: &WriteConn, body: &str, now: &str) -> Result<i64, sqlx::Error> {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    conn.exec(
        "INSERT INTO definitions (sha256, body, created_at) VALUES (?, ?, ?)
         ON CONFLICT (sha256) DO NOTHING",
        [&hash, body, now],
    )?;
    conn.one(
        "SELECT id FROM definitions WHERE sha256 = ?",
        [&hash],
        |r| r.try_get("id"),
    )
}

pub fn definition_body(conn: &WriteConn, id: i64) -> Result<Option<String>, sqlx::Error> {
    conn.optional("SELECT body FROM definitions WHERE id = ?", [id], |r| {
        r.try_get("body")
    })
}

/// The definition a new execution of state machine `name` runs, and the machine's role.
pub fn machine_definition(
    conn: &WriteConn,
    name: &str,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    conn.optional(
        "SELECT definition_id, role_arn FROM state_machines WHERE name = ? AND deleted_at IS NULL",
        [name],
        |r| Ok((r.try_get("definition_id")?, r.try_get("role_arn")?)),
    )
}

pub fn upsert_machine(
    conn: &WriteConn,
    name: &str,
    definition_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    conn.exec(
        "INSERT INTO state_machines (name, definition_id, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET definition_id = excluded.definition_id,
             updated_at = excluded.updated_at, deleted_at = NULL",
        params![name, definition_id, now, now],
    )?;
    Ok(())
}

/// One execution that can make progress now: ready, waiting on a timer that is due, or past
/// its deadline.
pub fn next_runnable(conn: &WriteConn, now: &str) -> Result<Option<String>, sqlx::Error> {
    let id = |row: &RawRow<'_, '_>| row.try_get("id");
    let ready = conn.optional(
        "SELECT id FROM executions WHERE phase = 'ready' LIMIT 1",
        [],
        id,
    )?;
    if ready.is_some() {
        return Ok(ready);
    }
    let due = conn.optional(
        "SELECT id FROM executions WHERE phase = 'waiting' AND timer_due_at <= ?
         ORDER BY timer_due_at LIMIT 1",
        [now],
        id,
    )?;
    if due.is_some() {
        return Ok(due);
    }
    conn.optional(
        "SELECT id FROM executions WHERE deadline_at IS NOT NULL AND phase <> 'done'
             AND deadline_at <= ? LIMIT 1",
        [now],
        id,
    )
}

/// The earliest timer or execution deadline still to come (on a reader).
pub async fn next_timer(conn: &mut SqliteConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(due) FROM (
             SELECT MIN(timer_due_at) AS due FROM executions WHERE phase = 'waiting'
             UNION ALL
             SELECT MIN(deadline_at) FROM executions
             WHERE deadline_at IS NOT NULL AND phase <> 'done')",
    )
    .fetch_one(conn)
    .await
}

/// Cancels every pending token of an execution that ended.
pub fn cancel_tokens(conn: &WriteConn, execution_id: &str, now: &str) -> Result<(), sqlx::Error> {
    conn.exec(
        "UPDATE task_tokens SET status = 'cancelled', consumed_at = ?
         WHERE execution_id = ? AND status = 'pending'",
        [now, execution_id],
    )?;
    Ok(())
}
