//! Reading what the runtime holds, page by page: state machines and top-level executions.

use super::{ExecutionInfo, Runtime, RuntimeError};
use crate::db;
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

impl Runtime {
    /// The state machine called `name`.
    pub async fn state_machine(&self, name: &str) -> Result<Option<MachineInfo>, RuntimeError> {
        let row = sqlx::query(
            "SELECT m.name, d.body, m.role_arn, m.created_at
             FROM state_machines m JOIN definitions d ON d.id = m.definition_id WHERE m.name = ?",
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
             WHERE m.name > ? ORDER BY m.name LIMIT ?",
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
        sqlx::query("UPDATE state_machines SET role_arn = ?, updated_at = ? WHERE name = ?")
            .bind(role_arn)
            .bind(db::now())
            .bind(name)
            .execute(&self.db().writer)
            .await?;
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
