//! The runtime's tables: executions, their history, task tokens and definitions. Every function
//! takes the caller's connection so that a step's reads and writes share one transaction.

use crate::engine::{json_text, EventType};
use crate::model::EventRow;
use crate::model::{ExecutionStatus, TokenStatus};
use serde_json::Value;
use sqlx::{Row, SqliteConnection};

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
    kind: EventType,
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
pub async fn insert_execution(
    conn: &mut SqliteConnection,
    ex: &Execution,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO executions (id, name, state_machine, definition_id, status, phase, input,
             current_state, state_input, event_count, started_at, deadline_at, parent_id, root_id,
             scope, fork_key, branch_index, iteration, last_event_id, outer_variables, role_arn)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&ex.rec.id)
    .bind(&ex.rec.name)
    .bind(&ex.rec.state_machine)
    .bind(ex.definition_id)
    .bind(ex.rec.status.as_str())
    .bind(ex.rec.phase.as_str())
    .bind(json_text(&ex.rec.input))
    .bind(&ex.rec.current_state)
    .bind(optional_json_text(&ex.rec.state_input))
    .bind(&ex.rec.started_at)
    .bind(&ex.rec.deadline_at)
    .bind(&ex.rec.parent_id)
    .bind(&ex.rec.root_id)
    .bind(serde_json::to_string(&ex.rec.scope).unwrap_or_else(|_| "[]".into()))
    .bind(&ex.rec.fork_key)
    .bind(ex.rec.branch_index)
    .bind(ex.rec.iteration)
    .bind(ex.rec.last_event_id)
    .bind(json_text(&ex.rec.outer_variables))
    .bind(&ex.rec.role_arn)
    .execute(conn)
    .await?;
    Ok(())
}

/// Loads an execution by id.
/// The state machine execution `id` runs, read from its column alone.
pub async fn execution_machine(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT state_machine FROM executions WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn load_execution(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<Execution>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, name, state_machine, definition_id, status, phase, input, output, error, cause,
                current_state, state_input, timer_kind, timer_due_at, timer_output, timer_next,
                retry_counts, event_count, started_at, deadline_at, stopped_at, parent_id,
                root_id, scope, fork_key, branch_index, iteration, last_event_id, fork, variables,
                outer_variables, entered_event_id, timer_assigned, role_arn
         FROM executions WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
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
        phase: Phase::parse(row.try_get("phase")?),
        input: json_column(row.try_get("input")?)?.unwrap_or(Value::Null),
        output: json_column(row.try_get("output")?)?,
        error: row.try_get("error")?,
        cause: row.try_get("cause")?,
        current_state: row.try_get("current_state")?,
        state_input: json_column(row.try_get("state_input")?)?,
        timer_kind: row
            .try_get::<Option<String>, _>("timer_kind")?
            .as_deref()
            .and_then(TimerKind::parse),
        timer_due_at: row.try_get("timer_due_at")?,
        timer_output: json_column(row.try_get("timer_output")?)?,
        timer_assigned: match json_column(row.try_get("timer_assigned")?)? {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        },
        timer_next: row.try_get("timer_next")?,
        retry_counts: serde_json::from_str(row.try_get("retry_counts")?).unwrap_or_default(),
        started_at: row.try_get("started_at")?,
        deadline_at: row.try_get("deadline_at")?,
        stopped_at: row.try_get("stopped_at")?,
        parent_id: row.try_get("parent_id")?,
        root_id: row.try_get("root_id")?,
        scope: serde_json::from_str(row.try_get("scope")?).unwrap_or_default(),
        fork_key: row.try_get("fork_key")?,
        branch_index: row.try_get("branch_index")?,
        iteration: row.try_get("iteration")?,
        last_event_id: row.try_get("last_event_id")?,
        entered_event_id: row.try_get("entered_event_id")?,
        role_arn: row.try_get("role_arn")?,
        fork: row
            .try_get::<Option<String>, _>("fork")?
            .and_then(|f| serde_json::from_str(&f).ok()),
        variables: object_column(row.try_get("variables")?)?,
        outer_variables: object_column(row.try_get("outer_variables")?)?,
        invoking: None,
    };
    Ok(Some(Execution {
        rec,
        definition_id: row.try_get("definition_id")?,
        event_count: row.try_get("event_count")?,
        unsaved_events: Vec::new(),
        unsaved: false,
        task_undo: TaskUndo::Savepoint,
    }))
}

/// Writes back everything a step may change, with the events it appended.
pub async fn save_execution(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
) -> Result<(), sqlx::Error> {
    write_events(conn, ex).await?;
    ex.unsaved = false;
    // A top-level execution counts its own events in memory; its branch runs count theirs
    // on its row (see `append_event`), so the larger figure is the true one.
    let done = sqlx::query(
        "UPDATE executions SET status = ?, phase = ?, output = ?, error = ?, cause = ?,
             current_state = ?, state_input = ?, timer_kind = ?, timer_due_at = ?,
             timer_output = ?, timer_next = ?, retry_counts = ?, last_event_id = ?, fork = ?,
             variables = ?, stopped_at = ?, entered_event_id = ?, timer_assigned = ?,
             event_count = MAX(event_count, ?)
         WHERE id = ?",
    )
    .bind(ex.rec.status.as_str())
    .bind(ex.rec.phase.as_str())
    .bind(optional_json_text(&ex.rec.output))
    .bind(&ex.rec.error)
    .bind(&ex.rec.cause)
    .bind(&ex.rec.current_state)
    .bind(optional_json_text(&ex.rec.state_input))
    .bind(ex.rec.timer_kind.map(TimerKind::as_str))
    .bind(&ex.rec.timer_due_at)
    .bind(optional_json_text(&ex.rec.timer_output))
    .bind(&ex.rec.timer_next)
    .bind(serde_json::to_string(&ex.rec.retry_counts).unwrap_or_else(|_| "[]".into()))
    .bind(ex.rec.last_event_id)
    .bind(
        ex.rec
            .fork
            .as_ref()
            .and_then(|f| serde_json::to_string(f).ok()),
    )
    .bind(json_text(&ex.rec.variables))
    .bind(&ex.rec.stopped_at)
    .bind(ex.rec.entered_event_id)
    .bind(ex.rec.timer_assigned.as_ref().map(json_text))
    .bind(ex.event_count)
    .bind(&ex.rec.id)
    .execute(conn)
    .await?;
    // A step that saved nothing must not pass for one that did.
    if done.rows_affected() != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// The id the next event of the execution's history will get (inside the step's transaction).
pub async fn next_event_id(
    conn: &mut SqliteConnection,
    ex: &Execution,
) -> Result<i64, sqlx::Error> {
    if ex.rec.root_id.is_none() {
        return Ok(ex.event_count + 1);
    }
    sqlx::query_scalar("SELECT event_count + 1 FROM executions WHERE id = ?")
        .bind(ex.rec.history_id())
        .fetch_one(conn)
        .await
}

/// Appends one history event after the execution's last one; it is written when the execution
/// is saved. A top-level execution numbers its own events from its loaded row; a branch run
/// takes the next number from its top-level execution's row, which its siblings share.
pub async fn append_event(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
    kind: EventType,
    details: &Value,
    timestamp: &str,
) -> Result<(), sqlx::Error> {
    let history = ex.rec.history_id().to_string();
    let id: i64 = if ex.rec.root_id.is_none() {
        ex.event_count + 1
    } else {
        sqlx::query_scalar(
            "UPDATE executions SET event_count = event_count + 1 WHERE id = ?
             RETURNING event_count",
        )
        .bind(&history)
        .fetch_one(&mut *conn)
        .await?
    };
    ex.unsaved_events.push(NewEvent {
        history,
        id,
        previous: ex.rec.last_event_id,
        kind,
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
pub async fn share_event_count(
    conn: &mut SqliteConnection,
    ex: &mut Execution,
) -> Result<(), sqlx::Error> {
    write_events(conn, ex).await?;
    sqlx::query("UPDATE executions SET event_count = MAX(event_count, ?) WHERE id = ?")
        .bind(ex.event_count)
        .bind(&ex.rec.id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the appended events, many to a statement.
async fn write_events(conn: &mut SqliteConnection, ex: &mut Execution) -> Result<(), sqlx::Error> {
    const ROWS: usize = 100;
    let events = std::mem::take(&mut ex.unsaved_events);
    for chunk in events.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO history_events (execution_id, id, previous_event_id, type, timestamp, details) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
        }
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(&e.history)
                .bind(e.id)
                .bind(e.previous)
                .bind(e.kind.as_str())
                .bind(&e.timestamp)
                .bind(&e.details);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The results of a Parallel/Map attempt's branch runs, in branch order: each output, or
/// `{"Error", "Cause"}` for a failed one.
pub async fn fork_outputs(
    conn: &mut SqliteConnection,
    fork_key: &str,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT status, output, error, cause FROM executions WHERE fork_key = ?
         ORDER BY branch_index",
    )
    .bind(fork_key)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(if status == SUCCEEDED {
                json_column(r.try_get("output")?)?.unwrap_or(Value::Null)
            } else {
                serde_json::json!({
                    "Error": r.try_get::<Option<String>, _>("error")?,
                    "Cause": r.try_get::<Option<String>, _>("cause")?,
                })
            })
        })
        .collect()
}

/// The branch runs of a Parallel/Map attempt that have started and not ended.
pub async fn running_branches(
    conn: &mut SqliteConnection,
    fork_key: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM executions WHERE fork_key = ? AND phase IN ('ready', 'waiting')
         ORDER BY branch_index",
    )
    .bind(fork_key)
    .fetch_all(conn)
    .await
}

/// The id of branch run `index` of a Parallel/Map attempt.
pub async fn fork_branch(
    conn: &mut SqliteConnection,
    fork_key: &str,
    index: usize,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM executions WHERE fork_key = ? AND branch_index = ?")
        .bind(fork_key)
        .bind(index as i64)
        .fetch_optional(conn)
        .await
}

/// Fails the top-level execution that `id` belongs to, without reading its (unusable) state:
/// its branch runs are aborted, its tokens cancelled, and `ExecutionFailed` ends its history.
/// Returns the top-level execution's id.
pub async fn fail_unrunnable(
    conn: &mut SqliteConnection,
    id: &str,
    cause: &str,
    now: &str,
) -> Result<String, sqlx::Error> {
    // The top-level ancestor (a distributed Map's iterations have no root_id).
    let root: String = sqlx::query_scalar(
        "WITH RECURSIVE up(id, parent_id) AS (
             SELECT id, parent_id FROM executions WHERE id = ?
             UNION ALL
             SELECT e.id, e.parent_id FROM executions e JOIN up ON e.id = up.parent_id)
         SELECT id FROM up WHERE parent_id IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    abort_below(conn, &root, None, now).await?;
    cancel_tokens(conn, &root, now).await?;
    let event: i64 = sqlx::query_scalar(
        "UPDATE executions SET status = 'FAILED', phase = 'done', error = 'States.Runtime',
             cause = ?, stopped_at = ?, timer_kind = NULL, timer_due_at = NULL, fork = NULL,
             event_count = event_count + 1
         WHERE id = ? RETURNING event_count",
    )
    .bind(cause)
    .bind(now)
    .bind(&root)
    .fetch_one(&mut *conn)
    .await?;
    let details = serde_json::json!({ "error": "States.Runtime", "cause": cause });
    sqlx::query(
        "INSERT INTO history_events (execution_id, id, previous_event_id, type, timestamp, details)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&root)
    .bind(event)
    .bind(event - 1)
    .bind(EventType::ExecutionFailed.as_str())
    .bind(now)
    .bind(json_text(&details))
    .execute(conn)
    .await?;
    Ok(root)
}

/// Aborts every unfinished run below `parent_id` (or, with `fork_key`, below and including
/// that attempt's branch runs) and cancels their pending task tokens.
pub async fn abort_below(
    conn: &mut SqliteConnection,
    parent_id: &str,
    fork_key: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    let tree = "WITH RECURSIVE below(id) AS (
            SELECT id FROM executions
             WHERE parent_id = ?1 AND (?2 IS NULL OR fork_key = ?2) AND phase <> 'done'
            UNION
            SELECT e.id FROM executions e JOIN below b ON e.parent_id = b.id
             WHERE e.phase <> 'done')";
    sqlx::query(&format!(
        "{tree} UPDATE task_tokens SET status = 'cancelled', consumed_at = ?3
         WHERE status = 'pending' AND execution_id IN (SELECT id FROM below)"
    ))
    .bind(parent_id)
    .bind(fork_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "{tree} UPDATE executions SET status = 'ABORTED', phase = 'done', stopped_at = ?3,
             timer_kind = NULL, timer_due_at = NULL, fork = NULL
         WHERE id IN (SELECT id FROM below)"
    ))
    .bind(parent_id)
    .bind(fork_key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The execution's history, oldest first.
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
    rows.into_iter()
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

pub async fn insert_token(
    conn: &mut SqliteConnection,
    token: &str,
    task: &PendingTask,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_tokens (token, execution_id, state_name, state_input, resource, status,
             timeout_at, heartbeat_seconds, heartbeat_at, created_at, activity, input)
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
    )
    .bind(token)
    .bind(&task.execution_id)
    .bind(&task.state_name)
    .bind(json_text(&task.state_input))
    .bind(&task.resource)
    .bind(&task.timeout_at)
    .bind(task.heartbeat_seconds.map(|s| s as i64))
    .bind(&task.heartbeat_at)
    .bind(now)
    .bind(task.activity.as_ref().map(|(arn, _)| arn))
    .bind(task.activity.as_ref().map(|(_, input)| input.to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Hands the oldest undelivered task of `activity` to a worker: `(token, input, execution)`.
pub async fn deliver_activity_task(
    conn: &mut SqliteConnection,
    activity: &str,
    now: &str,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE task_tokens SET delivered_at = ?
         WHERE token = (SELECT token FROM task_tokens
                        WHERE activity = ? AND status = 'pending' AND delivered_at IS NULL
                        ORDER BY created_at, token LIMIT 1)
         RETURNING token, input, execution_id",
    )
    .bind(now)
    .bind(activity)
    .fetch_optional(conn)
    .await?;
    row.map(|r| -> Result<_, sqlx::Error> {
        Ok((
            r.try_get("token")?,
            r.try_get::<Option<String>, _>("input")?
                .unwrap_or_else(|| "{}".into()),
            r.try_get("execution_id")?,
        ))
    })
    .transpose()
}

const TOKEN_COLUMNS: &str = "token, execution_id, state_name, state_input, resource, status,
    timeout_at, heartbeat_seconds, heartbeat_at";

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<(String, PendingTask), sqlx::Error> {
    let task = PendingTask {
        execution_id: row.try_get("execution_id")?,
        state_name: row.try_get("state_name")?,
        state_input: json_column(row.try_get("state_input")?)?.unwrap_or(Value::Null),
        resource: row.try_get("resource")?,
        status: row.try_get("status")?,
        timeout_at: row.try_get("timeout_at")?,
        heartbeat_seconds: row
            .try_get::<Option<i64>, _>("heartbeat_seconds")?
            .and_then(|s| u64::try_from(s).ok()),
        heartbeat_at: row.try_get("heartbeat_at")?,
        activity: None,
    };
    Ok((row.try_get("token")?, task))
}

pub async fn load_token(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<Option<PendingTask>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM task_tokens WHERE token = ?"
    ))
    .bind(token)
    .fetch_optional(conn)
    .await?;
    task_of(row)
}

/// The task of a row of [`TOKEN_COLUMNS`], if there is one.
fn task_of(row: Option<sqlx::sqlite::SqliteRow>) -> Result<Option<PendingTask>, sqlx::Error> {
    Ok(row
        .as_ref()
        .map(token_from_row)
        .transpose()?
        .map(|(_, t)| t))
}

/// The execution's pending callback, if it has one.
pub async fn pending_token_of(
    conn: &mut SqliteConnection,
    execution_id: &str,
) -> Result<Option<(String, PendingTask)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM task_tokens WHERE execution_id = ? AND status = 'pending'"
    ))
    .bind(execution_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(token_from_row).transpose()
}

/// Moves a pending token's heartbeat deadline.
pub async fn set_heartbeat(
    conn: &mut SqliteConnection,
    token: &str,
    heartbeat_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE task_tokens SET heartbeat_at = ? WHERE token = ? AND status = 'pending'")
        .bind(heartbeat_at)
        .bind(token)
        .execute(conn)
        .await?;
    Ok(())
}

/// Consumes a pending token: the compare-and-set that makes a resume happen exactly once.
/// Returns false when the token was no longer pending.
pub async fn consume_token(
    conn: &mut SqliteConnection,
    token: &str,
    outcome: TokenStatus,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE task_tokens SET status = ?, consumed_at = ? WHERE token = ? AND status = 'pending'",
    )
    .bind(outcome.as_str())
    .bind(now)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`consume_token`] that also returns the task it was for (its status now `outcome`), in one
/// statement. `None` when the token was not pending (or does not exist).
pub async fn take_token(
    conn: &mut SqliteConnection,
    token: &str,
    outcome: TokenStatus,
    now: &str,
) -> Result<Option<PendingTask>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE task_tokens SET status = ?, consumed_at = ? WHERE token = ? AND status = 'pending'
         RETURNING {TOKEN_COLUMNS}"
    ))
    .bind(outcome.as_str())
    .bind(now)
    .bind(token)
    .fetch_optional(conn)
    .await?;
    task_of(row)
}

/// Stores a definition once (by content hash) and returns its id.
pub async fn intern_definition(
    conn: &mut SqliteConnection,
    body: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    sqlx::query("INSERT INTO definitions (sha256, body, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING")
        .bind(&hash)
        .bind(body)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT id FROM definitions WHERE sha256 = ?")
        .bind(&hash)
        .fetch_one(conn)
        .await
}

pub async fn definition_body(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM definitions WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The current definition id of a state machine.
/// The definition a new execution of state machine `name` runs, and the machine's role.
pub async fn machine_definition(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT definition_id, role_arn FROM state_machines WHERE name = ? AND deleted_at IS NULL",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
}

pub async fn upsert_machine(
    conn: &mut SqliteConnection,
    name: &str,
    definition_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO state_machines (name, definition_id, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET definition_id = excluded.definition_id,
             updated_at = excluded.updated_at, deleted_at = NULL",
    )
    .bind(name)
    .bind(definition_id)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// One execution that can make progress now: ready, waiting on a timer that is due, or past
/// its deadline.
pub async fn next_runnable(
    conn: &mut SqliteConnection,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    let queries = [
        "SELECT id FROM executions WHERE phase = 'ready' LIMIT 1",
        "SELECT id FROM executions WHERE phase = 'waiting' AND timer_due_at <= ?1
         ORDER BY timer_due_at LIMIT 1",
        "SELECT id FROM executions WHERE deadline_at IS NOT NULL AND phase <> 'done'
             AND deadline_at <= ?1 LIMIT 1",
    ];
    for sql in queries {
        let id: Option<String> = sqlx::query_scalar(sql)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        if id.is_some() {
            return Ok(id);
        }
    }
    Ok(None)
}

/// The earliest timer or execution deadline still to come.
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
pub async fn cancel_tokens(
    conn: &mut SqliteConnection,
    execution_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE task_tokens SET status = 'cancelled', consumed_at = ?
         WHERE execution_id = ? AND status = 'pending'",
    )
    .bind(now)
    .bind(execution_id)
    .execute(conn)
    .await?;
    Ok(())
}
