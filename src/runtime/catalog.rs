//! Reading what the runtime holds, page by page (state machines, top-level executions), and
//! activities with the tasks their workers take.

use super::{store, ExecutionInfo, ExecutionStatus, Runtime, RuntimeError};
use crate::db::WriteConn;
use crate::engine::execution::{self, Input};
use serde_json::Value;
use sqlx::Row;

/// A stored state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    pub name: String,
    pub definition: String,
    pub role_arn: Option<String>,
    pub created_at: String,
}

fn machine_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<MachineInfo, sqlx::Error> {
    Ok(MachineInfo {
        name: row.try_get("name")?,
        definition: row.try_get("body")?,
        role_arn: row.try_get("role_arn")?,
        created_at: row.try_get("created_at")?,
    })
}

fn execution_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ExecutionInfo, sqlx::Error> {
    let json = |column: &str| -> Result<Option<Value>, sqlx::Error> {
        Ok(row
            .try_get::<Option<String>, _>(column)?
            .and_then(|text| serde_json::from_str(&text).ok()))
    };
    Ok(ExecutionInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        state_machine: row.try_get("state_machine")?,
        status: row.try_get("status")?,
        current_state: row.try_get("current_state")?,
        input: json("input")?.unwrap_or(Value::Null),
        output: json("output")?,
        error: row.try_get("error")?,
        cause: row.try_get("cause")?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
    })
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityInfo {
    pub name: String,
    pub created_at: String,
}

fn activity_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ActivityInfo, sqlx::Error> {
    Ok(ActivityInfo {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

/// AWS's limit on the tags of one resource.
pub const MAX_TAGS: usize = 50;

async fn delete_tags(conn: &mut WriteConn, arn: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM resource_tags WHERE resource_arn = ?")
        .bind(arn)
        .execute(&mut **conn)
        .await?;
    Ok(())
}

impl Runtime {
    /// Creates activity `name`, or returns it if it exists.
    pub async fn create_activity(&self, name: &str) -> Result<ActivityInfo, RuntimeError> {
        super::validate_name(name)?;
        let mut tx = self.db().begin().await?;
        sqlx::query("INSERT OR IGNORE INTO activities (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(self.now())
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.activity(name)
            .await?
            .ok_or_else(|| RuntimeError::StateMachineDoesNotExist(name.to_string()))
    }

    /// The activity called `name`.
    pub async fn activity(&self, name: &str) -> Result<Option<ActivityInfo>, RuntimeError> {
        let row = sqlx::query("SELECT name, created_at FROM activities WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.db().reader)
            .await?;
        Ok(row.as_ref().map(activity_from_row).transpose()?)
    }

    /// Up to `limit` activities in name order, after `after`.
    pub async fn activities(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityInfo>, RuntimeError> {
        let rows = sqlx::query(
            "SELECT name, created_at FROM activities WHERE name > ? ORDER BY name LIMIT ?",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.db().reader)
        .await?;
        Ok(rows
            .iter()
            .map(activity_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Deletes activity `name` and its tags (its pending tasks stay with their executions).
    pub async fn delete_activity(&self, name: &str) -> Result<(), RuntimeError> {
        let mut tx = self.db().begin().await?;
        sqlx::query("DELETE FROM activities WHERE name = ?")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        delete_tags(&mut tx, &super::activity_arn(name)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tags of resource `arn`, by key.
    pub async fn tags(&self, arn: &str) -> Result<Vec<(String, String)>, RuntimeError> {
        Ok(sqlx::query_as(
            "SELECT tag_key, tag_value FROM resource_tags WHERE resource_arn = ? ORDER BY tag_key",
        )
        .bind(arn)
        .fetch_all(&self.db().reader)
        .await?)
    }

    /// Sets `tags` on resource `arn`, replacing the values of keys it has. Changes nothing and
    /// returns false when the resource would have more than [`MAX_TAGS`].
    pub async fn tag(&self, arn: &str, tags: &[(String, String)]) -> Result<bool, RuntimeError> {
        let mut tx = self.db().begin().await?;
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO resource_tags (resource_arn, tag_key, tag_value) VALUES (?, ?, ?)
                 ON CONFLICT (resource_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(arn)
            .bind(key)
            .bind(value)
            .execute(&mut **tx)
            .await?;
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM resource_tags WHERE resource_arn = ?")
                .bind(arn)
                .fetch_one(&mut **tx)
                .await?;
        if count > MAX_TAGS as i64 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the tags with `keys` from resource `arn`; keys it does not have are ignored.
    pub async fn untag(&self, arn: &str, keys: &[String]) -> Result<(), RuntimeError> {
        let mut tx = self.db().begin().await?;
        for key in keys {
            sqlx::query("DELETE FROM resource_tags WHERE resource_arn = ? AND tag_key = ?")
                .bind(arn)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Hands the oldest waiting task of activity `arn` to `worker`: its task token and input
    /// (JSON text). The execution's history records `ActivityStarted`.
    pub async fn take_activity_task(
        &self,
        arn: &str,
        worker: &str,
    ) -> Result<Option<(String, String)>, RuntimeError> {
        // Look before taking the writer: workers poll often and mostly find nothing.
        let waiting: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM task_tokens
             WHERE activity = ? AND status = 'pending' AND delivered_at IS NULL LIMIT 1",
        )
        .bind(arn)
        .fetch_optional(&self.db().reader)
        .await?;
        if waiting.is_none() {
            return Ok(None);
        }
        let mut tx = self.db().begin().await?;
        let now = self.now();
        let Some((token, input, execution)) = store::deliver_activity_task(&tx, arn, &now)? else {
            return Ok(None);
        };
        self.activity_taken_in(&mut tx, &execution, worker).await?;
        tx.commit().await?;
        Ok(Some((token, input)))
    }

    /// Stops a running execution (StopExecution) for `by`, in its own transaction; see
    /// [`Runtime::stop_execution_in`].
    pub async fn stop_execution(
        &self,
        id: &str,
        error: &str,
        cause: &str,
        by: &str,
    ) -> Result<String, RuntimeError> {
        let mut tx = self.db().begin().await?;
        let stopped = self
            .stop_execution_in(&mut tx, id, error, cause, by)
            .await?;
        tx.commit().await?;
        self.changed();
        Ok(stopped)
    }

    /// Stops a running execution on the caller's transaction: its branches are aborted, its
    /// task tokens stop working, `ExecutionAborted` (with `error` and `cause` when given) ends
    /// its history, and its owner (the order domain) is told in the same transaction. Returns
    /// when it stopped; an execution already ended is left as it is.
    pub async fn stop_execution_in(
        &self,
        conn: &mut WriteConn,
        id: &str,
        error: &str,
        cause: &str,
        by: &str,
    ) -> Result<String, RuntimeError> {
        let mut ex = store::load_execution(conn, id)?
            .filter(|ex| ex.rec.parent_id.is_none())
            .ok_or_else(|| RuntimeError::ExecutionDoesNotExist(id.to_string()))?;
        if ex.rec.status != ExecutionStatus::Running {
            return Ok(ex.rec.stopped_at.unwrap_or_default());
        }
        let env = self.env(conn, &ex).await?;
        let stop = Input::Stop {
            error: error.to_string(),
            cause: cause.to_string(),
        };
        let effects = execution::apply(None, &mut ex.rec, stop, &env);
        let mut ending = None;
        self.perform_all(conn, &mut ex, None, effects, &env, &mut ending)
            .await?;
        self.save_and_tell(conn, &mut ex, ending, Some(by), &env)
            .await?;
        Ok(env.stamp().to_string())
    }

    /// Deletes state machine `name` (DeleteStateMachine) and its tags: it is no longer listed
    /// and starts no executions; those running go on to their end. True if it existed.
    pub async fn delete_state_machine(&self, name: &str) -> Result<bool, RuntimeError> {
        let mut tx = self.db().begin().await?;
        let done = sqlx::query(
            "UPDATE state_machines SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL",
        )
        .bind(self.now())
        .bind(name)
        .execute(&mut **tx)
        .await?;
        delete_tags(&mut tx, &super::state_machine_arn(name)).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The definition execution `id` runs (the one current when it started).
    pub async fn execution_definition(&self, id: &str) -> Result<Option<String>, RuntimeError> {
        Ok(sqlx::query_scalar(
            "SELECT d.body FROM executions e JOIN definitions d ON d.id = e.definition_id
             WHERE e.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.db().reader)
        .await?)
    }

    /// The state machine called `name`.
    pub async fn state_machine(&self, name: &str) -> Result<Option<MachineInfo>, RuntimeError> {
        let row = sqlx::query(
            "SELECT m.name, d.body, m.role_arn, m.created_at
             FROM state_machines m JOIN definitions d ON d.id = m.definition_id
             WHERE m.name = ? AND m.deleted_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&self.db().reader)
        .await?;
        Ok(row.as_ref().map(machine_from_row).transpose()?)
    }

    /// Up to `limit` state machines in name order, after `after`.
    pub async fn state_machines(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MachineInfo>, RuntimeError> {
        let rows = sqlx::query(
            "SELECT m.name, d.body, m.role_arn, m.created_at
             FROM state_machines m JOIN definitions d ON d.id = m.definition_id
             WHERE m.name > ? AND m.deleted_at IS NULL ORDER BY m.name LIMIT ?",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.db().reader)
        .await?;
        Ok(rows
            .iter()
            .map(machine_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Stores a new state machine, or a new definition for an existing one, with the role it
    /// was given.
    pub async fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: Option<&str>,
    ) -> Result<MachineInfo, RuntimeError> {
        self.put_state_machine(name, definition).await?;
        let mut tx = self.db().begin().await?;
        sqlx::query("UPDATE state_machines SET role_arn = ?, updated_at = ? WHERE name = ?")
            .bind(role_arn)
            .bind(self.now())
            .bind(name)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.state_machine(name)
            .await?
            .ok_or_else(|| RuntimeError::StateMachineDoesNotExist(name.to_string()))
    }

    /// Up to `limit` top-level executions of `machine`, newest first, after the execution
    /// `after` (its start time and id), optionally only those with `status`.
    pub async fn executions(
        &self,
        machine: &str,
        status: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ExecutionInfo>, RuntimeError> {
        let (after_time, after_id) = after.unwrap_or(("9999", ""));
        let rows = sqlx::query(
            "SELECT id, name, state_machine, status, current_state, input, output, error, cause,
                    started_at, stopped_at
             FROM executions
             WHERE state_machine = ? AND parent_id IS NULL AND (? IS NULL OR status = ?)
               AND (started_at < ? OR (started_at = ? AND id < ?) OR ? = '')
             ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(machine)
        .bind(status)
        .bind(status)
        .bind(after_time)
        .bind(after_time)
        .bind(after_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.db().reader)
        .await?;
        Ok(rows
            .iter()
            .map(execution_from_row)
            .collect::<Result<_, _>>()?)
    }
}
