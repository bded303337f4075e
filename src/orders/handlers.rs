//! The local task handlers the order workflow calls (`orderflow:*` resources). Each runs in the
//! step's transaction, so the order's status changes exactly when the workflow moves.

use super::store;
use crate::config::ApprovalPolicy;
use crate::db;
use crate::model::{OrderStatus, Stage};
use crate::runtime::{HandlerError, HandlerFuture, Registry, TaskCall, TaskHandler};
use serde_json::{json, Value};
use sqlx::SqliteConnection;

pub const VALIDATE_ORDER: &str = "orderflow:validate-order";
pub const VALIDATE_COST: &str = "orderflow:validate-cost";
pub const REQUEST_APPROVAL: &str = "orderflow:request-approval";
pub const PROCESS_ORDER: &str = "orderflow:process-order";

/// Registers the order workflow's handlers, which apply `policy`.
pub fn register(registry: &mut Registry, policy: ApprovalPolicy) {
    registry.register(VALIDATE_ORDER, validate_order);
    registry.register(VALIDATE_COST, ValidateCost { policy });
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

/// Tells the workflow what the order needs: the policy's facts, for its Choice states and
/// deadlines to read.
struct ValidateCost {
    policy: ApprovalPolicy,
}

impl TaskHandler for ValidateCost {
    fn call<'a>(&'a self, conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
        Box::pin(async move {
            let order = load(conn, &order_id(&call)?).await?;
            let policy = &self.policy;
            Ok(json!({
                "requiresApproval": order.total > policy.threshold,
                "requiresSecondApproval": order.total > policy.second_threshold,
                "thresholdCents": policy.threshold.0,
                "secondThresholdCents": policy.second_threshold.0,
                "approvalTimeoutSeconds": policy.timeout_seconds,
            }))
        })
    }
}

/// Puts the order in the inbox with the token that resumes the workflow. `Stage` says which
/// approval this is (`first`, `second` — not by `FirstApprover` — or `escalated`, for
/// admins); `DeadlineSeconds` when it is due.
fn request_approval<'a>(conn: &'a mut SqliteConnection, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let id = order_id(&call)?;
        let token = call.task_token.as_deref().ok_or_else(|| {
            HandlerError::task(
                "States.Runtime",
                "request-approval must be called with .waitForTaskToken",
            )
        })?;
        let p = &call.parameters;
        let stage = match p.get("Stage").and_then(Value::as_str) {
            None => Stage::First,
            Some(text) => Stage::parse(text).ok_or_else(|| {
                HandlerError::task(
                    "States.Runtime",
                    format!("Unknown approval stage '{text}': use first, second or escalated"),
                )
            })?,
        };
        let first_approver = p.get("FirstApprover").and_then(Value::as_str);
        let now = time::OffsetDateTime::now_utc();
        let due_at = p
            .get("DeadlineSeconds")
            .and_then(Value::as_i64)
            .map(|s| db::format_time(now + time::Duration::seconds(s)));
        load(conn, &id).await?;
        let waiting = store::Waiting {
            token,
            stage,
            first_approver,
            due_at: due_at.as_deref(),
        };
        store::await_approval(conn, &id, &waiting, &db::format_time(now)).await?;
        Ok(json!({ "inbox": stage.inbox() }))
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
