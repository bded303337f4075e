//! The local task handlers the order workflow calls (`orderflow:*` resources). Each runs in the
//! step's transaction, so the order's status changes exactly when the workflow moves.

use super::store;
use crate::db;
use crate::model::{Cents, OrderStatus};
use crate::runtime::{HandlerError, HandlerFuture, Registry, TaskCall, TaskHandler};
use serde_json::{json, Value};
use sqlx::SqliteConnection;

pub const VALIDATE_ORDER: &str = "orderflow:validate-order";
pub const VALIDATE_COST: &str = "orderflow:validate-cost";
pub const REQUEST_APPROVAL: &str = "orderflow:request-approval";
pub const PROCESS_ORDER: &str = "orderflow:process-order";

/// Registers the order workflow's handlers; orders above `threshold` need approval.
pub fn register(registry: &mut Registry, threshold: Cents) {
    registry.register(VALIDATE_ORDER, validate_order);
    registry.register(VALIDATE_COST, ValidateCost { threshold });
    registry.register(REQUEST_APPROVAL, request_approval);
    registry.register(PROCESS_ORDER, process_order);
}

/// The `OrderID` the task was given.
fn order_id(call: &TaskCall) -> Result<String, HandlerError> {
    call.parameters
        .get("OrderID")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            HandlerError::task(
                "OrderIDMissing",
                "The task input has no string field 'OrderID'",
            )
        })
}

async fn load(conn: &mut SqliteConnection, id: &str) -> Result<store::OrderRow, HandlerError> {
    store::by_id(conn, id)
        .await?
        .ok_or_else(|| HandlerError::task("OrderNotFound", format!("No order with id '{id}'")))
}

/// Valid iff the order has at least one item and a cost above zero. An invalid order is
/// marked so here; the workflow then fails it.
fn validate_order<'a>(conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let id = order_id(&call)?;
        let order = load(conn, &id).await?;
        let problem = if order.items.is_empty() {
            Some("The order has no items.")
        } else if order.total.0 <= 0 {
            Some("The order's cost must be above zero.")
        } else {
            None
        };
        if problem.is_some() {
            store::set_status(conn, &id, OrderStatus::Invalid, &db::now()).await?;
        }
        Ok(json!({ "isValid": problem.is_none(), "reason": problem }))
    })
}

struct ValidateCost {
    threshold: Cents,
}

impl TaskHandler for ValidateCost {
    fn call<'a>(&'a self, conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
        Box::pin(async move {
            let order = load(conn, &order_id(&call)?).await?;
            Ok(json!({
                "requiresApproval": order.total > self.threshold,
                "thresholdCents": self.threshold.0,
            }))
        })
    }
}

/// Puts the order in the approvers' inbox with the token that resumes the workflow.
fn request_approval<'a>(conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let id = order_id(&call)?;
        let token = call.task_token.as_deref().ok_or_else(|| {
            HandlerError::task(
                "States.Runtime",
                "request-approval must be called with .waitForTaskToken",
            )
        })?;
        load(conn, &id).await?;
        store::await_approval(conn, &id, token, &db::now()).await?;
        Ok(json!({ "inbox": "approvers" }))
    })
}

fn process_order<'a>(conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let id = order_id(&call)?;
        load(conn, &id).await?;
        let now = db::now();
        store::set_status(conn, &id, OrderStatus::Processed, &now).await?;
        Ok(json!({ "processedAt": now }))
    })
}
