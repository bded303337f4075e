//! The orders and products tables. Functions take the caller's connection so that order
//! changes commit together with the workflow step that makes them.

use crate::model::{Cents, Decision, OrderLine, OrderStatus, OrderSummary, Product};
use sqlx::{Row, SqliteConnection};

/// An order as stored, with the secret fields pages never see.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: String,
    pub view_key: String,
    pub customer_name: String,
    pub customer_email: String,
    pub items: Vec<OrderLine>,
    pub total: Cents,
    pub status: OrderStatus,
    pub execution_id: String,
    pub task_token: Option<String>,
    pub awaiting_since: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: String,
}

impl OrderRow {
    pub fn summary(&self) -> OrderSummary {
        let decision = match (&self.decided_by, &self.decided_at) {
            (Some(by), Some(at)) => Some(Decision {
                approved: self.status != OrderStatus::Rejected,
                by: by.clone(),
                at: at.clone(),
                reason: self.decision_reason.clone(),
            }),
            _ => None,
        };
        OrderSummary {
            id: self.id.clone(),
            customer_name: self.customer_name.clone(),
            customer_email: self.customer_email.clone(),
            items: self.items.clone(),
            total: self.total,
            status: self.status,
            created_at: self.created_at.clone(),
            awaiting_since: self.awaiting_since.clone(),
            decision,
            execution_id: self.execution_id.clone(),
        }
    }
}

const COLUMNS: &str = "id, view_key, customer_name, customer_email, items, total_cents, status,
    execution_id, task_token, awaiting_since, decided_by, decided_at, decision_reason, created_at";

fn decode<T>(e: impl std::fmt::Display) -> Result<T, sqlx::Error> {
    Err(sqlx::Error::Decode(e.to_string().into()))
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<OrderRow, sqlx::Error> {
    let items: String = row.try_get("items")?;
    let items = match serde_json::from_str(&items) {
        Ok(items) => items,
        Err(e) => return decode(e),
    };
    let status: String = row.try_get("status")?;
    let Some(status) = OrderStatus::parse(&status) else {
        return decode(format!("unknown order status {status}"));
    };
    Ok(OrderRow {
        id: row.try_get("id")?,
        view_key: row.try_get("view_key")?,
        customer_name: row.try_get("customer_name")?,
        customer_email: row.try_get("customer_email")?,
        items,
        total: Cents(row.try_get("total_cents")?),
        status,
        execution_id: row.try_get("execution_id")?,
        task_token: row.try_get("task_token")?,
        awaiting_since: row.try_get("awaiting_since")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        decision_reason: row.try_get("decision_reason")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn products(conn: &mut SqliteConnection) -> Result<Vec<Product>, sqlx::Error> {
    let rows = sqlx::query("SELECT sku, name, price_cents FROM products ORDER BY position")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Product {
                sku: r.try_get("sku")?,
                name: r.try_get("name")?,
                price: Cents(r.try_get("price_cents")?),
            })
        })
        .collect()
}

/// Inserts a new order in status `pending`.
pub async fn insert(conn: &mut SqliteConnection, order: &OrderRow) -> Result<(), sqlx::Error> {
    let items =
        serde_json::to_string(&order.items).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents, currency,
             status, execution_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?, ?)",
    )
    .bind(&order.id)
    .bind(&order.view_key)
    .bind(&order.customer_name)
    .bind(&order.customer_email)
    .bind(items)
    .bind(order.total.0)
    .bind(order.status.as_str())
    .bind(&order.execution_id)
    .bind(&order.created_at)
    .bind(&order.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn exists(conn: &mut SqliteConnection, id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE id = ?")
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

pub async fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<OrderRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_view_key(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE view_key = ?"))
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn set_status(
    conn: &mut SqliteConnection,
    id: &str,
    status: OrderStatus,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts the order in the inbox with the token that resumes its workflow.
pub async fn await_approval(
    conn: &mut SqliteConnection,
    id: &str,
    token: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET status = 'awaiting_approval', task_token = ?, awaiting_since = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(token)
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a decision if the order is still awaiting one — the compare-and-set that lets
/// exactly one of two simultaneous approvers win. Returns false if it was no longer awaiting.
pub async fn record_decision(
    conn: &mut SqliteConnection,
    id: &str,
    approved: bool,
    by: &str,
    reason: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    // An approved order is pending again until the workflow has processed it.
    let status = if approved {
        OrderStatus::Pending
    } else {
        OrderStatus::Rejected
    };
    let done = sqlx::query(
        "UPDATE orders SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
             task_token = NULL, updated_at = ?
         WHERE id = ? AND status = 'awaiting_approval'",
    )
    .bind(status.as_str())
    .bind(by)
    .bind(now)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Orders awaiting approval, oldest first.
pub async fn awaiting(
    conn: &mut SqliteConnection,
    limit: u32,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE status = 'awaiting_approval'
         ORDER BY awaiting_since, id LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// A page of orders, newest first, after the `(created_at, id)` cursor.
pub async fn page(
    conn: &mut SqliteConnection,
    status: Option<OrderStatus>,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let (created, id) = after.unwrap_or(("9999", ""));
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders
         WHERE (? IS NULL OR status = ?) AND (created_at, id) < (?, ?)
         ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(status.map(OrderStatus::as_str))
    .bind(status.map(OrderStatus::as_str))
    .bind(created)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Orders per status (statuses with none are listed with 0).
pub async fn count_by_status(
    conn: &mut SqliteConnection,
) -> Result<Vec<(OrderStatus, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status")
            .fetch_all(conn)
            .await?;
    Ok(OrderStatus::ALL
        .into_iter()
        .map(|st| {
            let n = rows
                .iter()
                .find(|(s, _)| s == st.as_str())
                .map_or(0, |(_, n)| *n);
            (st, n)
        })
        .collect())
}
