//! What the admin console reads: an execution with its history and graph, lists of
//! executions, an order's whole story, and the audit log of admin actions.

use crate::db::{self, Db};
use crate::graph;
use crate::model::{
    EventLine, ExecutionDetail, ExecutionRow, OrderAudit, OrderQuery, OrderStatus, StateData,
};
use crate::runtime::RuntimeError;
use crate::state::AppState;
use serde_json::Value;

/// `text` (JSON) pretty-printed, or as it is if it is not JSON.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

/// Execution `id` with its history, each state's last input and output, and its state machine
/// drawn with the path taken.
pub async fn execution(
    state: &AppState,
    id: &str,
) -> Result<Option<ExecutionDetail>, RuntimeError> {
    let runtime = &state.runtime;
    let Some(info) = runtime.describe_execution(id).await? else {
        return Ok(None);
    };
    let definition: Value = runtime
        .execution_definition(id)
        .await?
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or(Value::Null);
    let top_level = |name: &str| definition["States"].get(name).is_some();
    let history = runtime.history(id).await?;
    let start = history.first().and_then(|e| db::parse_time(&e.timestamp));
    let mut entered: Vec<String> = Vec::new();
    let mut states: Vec<StateData> = Vec::new();
    let mut current: Option<String> = None;
    let mut events = Vec::with_capacity(history.len());
    for event in history {
        let details: Value = serde_json::from_str(&event.details).unwrap_or(Value::Null);
        let named = details["name"].as_str().filter(|n| top_level(n));
        if let Some(name) = named {
            let slot = match states.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    states.push(StateData {
                        name: name.to_string(),
                        input: None,
                        output: None,
                    });
                    states.len() - 1
                }
            };
            if event.kind.ends_with("StateEntered") {
                entered.push(name.to_string());
                current = Some(name.to_string());
                states[slot].input = details["input"].as_str().map(pretty);
                states[slot].output = None;
            } else if event.kind.ends_with("StateExited") {
                states[slot].output = details["output"].as_str().map(pretty);
            }
        }
        let elapsed_ms = match (start, db::parse_time(&event.timestamp)) {
            (Some(s), Some(t)) => (t - s).whole_milliseconds() as i64,
            _ => 0,
        };
        events.push(EventLine {
            id: event.id,
            kind: event.kind,
            state: current.clone(),
            timestamp: event.timestamp,
            elapsed_ms,
            details: event.details,
        });
    }
    let running = info.status == "RUNNING";
    let last = current.as_deref();
    let graph = graph::layout(
        &definition,
        &entered,
        last.filter(|_| running),
        last.filter(|_| matches!(info.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED")),
    );
    Ok(Some(ExecutionDetail {
        id: info.id,
        name: info.name,
        state_machine: info.state_machine,
        status: info.status,
        started_at: info.started_at,
        stopped_at: info.stopped_at,
        error: info.error,
        cause: info.cause,
        input: pretty(&info.input.to_string()),
        output: info.output.map(|o| pretty(&o.to_string())),
        events,
        states,
        graph,
    }))
}

/// A page of executions of `machine`, newest first, after `cursor` (`started~id`).
pub async fn executions(
    state: &AppState,
    machine: &str,
    status: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<ExecutionRow>, Option<String>), RuntimeError> {
    let after = cursor.and_then(|c| c.split_once('~'));
    let mut rows = state
        .runtime
        .executions(machine, status, after, limit + 1)
        .await?;
    let next = (rows.len() as i64 > limit)
        .then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|e| format!("{}~{}", e.started_at, e.id))
        })
        .flatten();
    let rows = rows
        .into_iter()
        .map(|e| ExecutionRow {
            id: e.id,
            name: e.name,
            state_machine: e.state_machine,
            status: e.status,
            started_at: e.started_at,
            stopped_at: e.stopped_at,
        })
        .collect();
    Ok((rows, next))
}

/// Order `id`: the order, its approval trail and its execution.
pub async fn order(
    state: &AppState,
    id: &str,
) -> Result<Option<OrderAudit>, crate::orders::OrderError> {
    let Some(order) = crate::orders::get(state, id).await? else {
        return Ok(None);
    };
    let trail = crate::orders::trail(state, id).await?;
    let execution = execution(state, &order.execution_id).await?;
    Ok(Some(OrderAudit {
        order,
        trail,
        execution,
    }))
}

/// Writes an admin action to the audit log (which nobody can change afterwards).
pub async fn audit(
    db: &Db,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    audit_in(&mut tx, actor, action, target, detail).await?;
    tx.commit().await
}

/// Writes an audit row on the caller's connection, so it commits (or rolls back) with the
/// change it records.
pub async fn audit_in(
    conn: &mut sqlx::SqliteConnection,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(db::now())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// The filter `query` asks for, or the field at fault and why.
pub fn order_filter(
    query: &OrderQuery,
) -> Result<crate::orders::OrderFilter, (&'static str, String)> {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let status = match query.status.trim() {
        "" => None,
        s => Some(OrderStatus::parse(s).ok_or(("status", format!("Unknown order status '{s}'.")))?),
    };
    let date =
        |s: &str, field: &'static str| -> Result<Option<time::Date>, (&'static str, String)> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, format)
                .map(Some)
                .map_err(|_| (field, format!("'{s}' is not a date like 2026-11-25.")))
        };
    let amount = |s: &str, field: &'static str| -> Result<Option<i64>, (&'static str, String)> {
        match s.trim().trim_start_matches('$') {
            "" => Ok(None),
            s => crate::config::parse_amount(s)
                .map(|c| Some(c.0))
                .map_err(|e| (field, e)),
        }
    };
    let from = date(&query.from, "from")?;
    let to = date(&query.to, "to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(("to", "The end date is before the start date.".into()));
        }
    }
    Ok(crate::orders::OrderFilter {
        status,
        from: from.map(|d| d.to_string()),
        // Inclusive: before the next day.
        to: to.and_then(|d| d.next_day()).map(|d| d.to_string()),
        min_cents: amount(&query.min, "min")?,
        max_cents: amount(&query.max, "max")?,
        approver: text(&query.approver),
        search: text(&query.q),
    })
}

/// One CSV field, quoted when it has to be; a leading `=`, `+`, `-` or `@` is defused so
/// spreadsheets do not run it as a formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The CSV header of [`csv_line`].
pub const CSV_HEADER: &str =
    "order_id,created_at,status,customer_name,customer_email,total,items,decided_by,decided_at,reason\r\n";

/// An order as a CSV line.
pub fn csv_line(o: &crate::model::OrderSummary) -> String {
    let decision = o.decision.as_ref();
    let fields = [
        o.id.clone(),
        o.created_at.clone(),
        o.status.as_str().to_string(),
        o.customer_name.clone(),
        o.customer_email.clone(),
        format!("{}.{:02}", o.total.0 / 100, o.total.0 % 100),
        crate::app::items_text(&o.items),
        decision.map(|d| d.by.clone()).unwrap_or_default(),
        decision.map(|d| d.at.clone()).unwrap_or_default(),
        decision.and_then(|d| d.reason.clone()).unwrap_or_default(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A page of the audit log, newest first, before entry `before`.
pub async fn audit_log(
    db: &Db,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<crate::model::AuditEntry>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, detail FROM audit_log
         WHERE id < ? ORDER BY id DESC LIMIT ?",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(&db.reader)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::model::AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
