//! The local task handlers the order workflow calls (`orderflow:*` resources), and its end
//! hook. Each runs in the step's transaction, so the order's status changes exactly when the
//! workflow moves. Only `order-approval` executions may call them (the runtime refuses other
//! machines naming them), and each acts only on the order its own execution runs, in the
//! status the step expects.

use super::store;
use crate::config::ApprovalPolicy;
use crate::db;
use crate::db::WriteConn;
use crate::model::{OrderStatus, Stage};
use crate::runtime::{
    Ended, ExecutionStatus, HandlerError, HandlerFuture, HookFuture, Registry, TaskCall,
    TaskHandler,
};
use serde_json::{json, Value};

pub const VALIDATE_ORDER: &str = "orderflow:validate-order";
pub const VALIDATE_COST: &str = "orderflow:validate-cost";
pub const REQUEST_APPROVAL: &str = "orderflow:request-approval";
pub const PROCESS_ORDER: &str = "orderflow:process-order";

/// Registers the order workflow's handlers, which apply `policy`.
pub fn register(registry: &mut Registry, policy: ApprovalPolicy) {
    let workflow = super::WORKFLOW;
    registry.register_owned(VALIDATE_ORDER, workflow, validate_order);
    registry.register_owned(VALIDATE_COST, workflow, ValidateCost { policy });
    registry.register_owned(REQUEST_APPROVAL, workflow, request_approval);
    registry.register_owned(PROCESS_ORDER, workflow, process_order);
    registry.on_end(workflow, workflow_ended);
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

/// The order the task is about, which must be the one its execution runs and in one of the
/// statuses `expected`.
async fn load(
    conn: &mut WriteConn,
    call: &TaskCall,
    expected: &[OrderStatus],
) -> Result<store::OrderRow, HandlerError> {
    let id = order_id(call)?;
    let order = store::by_id_in(conn, &id)?
        .filter(|o| o.execution_id == call.execution_id)
        .ok_or_else(|| {
            HandlerError::task(
                "OrderNotFound",
                format!("This execution runs no order with id '{id}'"),
            )
        })?;
    if !expected.contains(&order.status) {
        return Err(unexpected(&order, expected));
    }
    Ok(order)
}

fn unexpected(order: &store::OrderRow, expected: &[OrderStatus]) -> HandlerError {
    let expected: Vec<_> = expected.iter().map(|s| s.as_str()).collect();
    HandlerError::task(
        "OrderStateMismatch",
        format!(
            "Order '{}' is {}, not {}",
            order.id,
            order.status.as_str(),
            expected.join(" or ")
        ),
    )
}

/// Moves the order from `from` to `to` by compare-and-set.
async fn move_order(
    conn: &mut WriteConn,
    order: &store::OrderRow,
    from: OrderStatus,
    to: OrderStatus,
    now: &str,
) -> Result<(), HandlerError> {
    if store::set_status(conn, &order.id, &order.execution_id, from, to, now)? {
        Ok(())
    } else {
        Err(unexpected(order, &[from]))
    }
}

/// Valid iff the order has at least one item and a cost above zero. An invalid order is
/// marked so here; the workflow then fails it.
fn validate_order<'a>(conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let order = load(conn, &call, &[OrderStatus::Pending]).await?;
        let problem = if order.items.is_empty() {
            Some("The order has no items.")
        } else if order.total.0 <= 0 {
            Some("The order's cost must be above zero.")
        } else {
            None
        };
        if problem.is_some() {
            let (from, to) = (OrderStatus::Pending, OrderStatus::Invalid);
            move_order(conn, &order, from, to, &db::format_time(call.now)).await?;
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
    fn call<'a>(&'a self, conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
        Box::pin(async move {
            let order = load(conn, &call, &[OrderStatus::Pending]).await?;
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
fn request_approval<'a>(conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
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
        let now = call.now;
        let due_at = p
            .get("DeadlineSeconds")
            .and_then(Value::as_i64)
            .map(|s| db::format_time(now + time::Duration::seconds(s)));
        // A first or second approval follows validation or the previous approval (the order
        // is pending); an escalation follows a deadline that passed while it was awaited.
        let expected = match stage {
            Stage::Escalated => OrderStatus::AwaitingApproval,
            _ => OrderStatus::Pending,
        };
        let order = load(conn, &call, &[expected]).await?;
        let id = order.id;
        let waiting = store::Waiting {
            token,
            stage,
            first_approver,
            due_at: due_at.as_deref(),
        };
        store::await_approval(conn, &id, &waiting, &db::format_time(now))?;
        Ok(json!({ "inbox": stage.inbox() }))
    })
}

/// Marks the order processed by compare-and-set alone: the order is read only to explain a
/// refusal.
fn process_order<'a>(conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let id = order_id(&call)?;
        let now = db::format_time(call.now);
        let (from, to) = (OrderStatus::Pending, OrderStatus::Processed);
        if !store::set_status(conn, &id, &call.execution_id, from, to, &now)? {
            // Not this execution's order, or not pending: `load` says which.
            let order = load(conn, &call, &[from]).await?;
            return Err(unexpected(&order, &[from]));
        }
        Ok(json!({ "processedAt": now }))
    })
}

/// However an order's workflow ends — stopped, timed out, failed, over the history limit —
/// an order it left unfinished is rejected with the reason, in the same transaction, so it
/// never waits in an inbox for a workflow that is gone.
fn workflow_ended<'a>(conn: &'a mut WriteConn, ended: Ended<'a>) -> HookFuture<'a> {
    Box::pin(async move {
        let (action, reason) = match ended.status {
            ExecutionStatus::Running | ExecutionStatus::Succeeded => return Ok(()),
            ExecutionStatus::Aborted => ("stopped", "The order's workflow was stopped"),
            ExecutionStatus::TimedOut => ("failed", "The order's workflow timed out"),
            ExecutionStatus::Failed => ("failed", "The order's workflow failed"),
        };
        let why: Vec<&str> = [ended.error, ended.cause].into_iter().flatten().collect();
        let reason = match (ended.status, ended.cause) {
            // Whoever stopped it gave their reason in their own words; the trail says who.
            (ExecutionStatus::Aborted, Some(cause)) => cause.to_owned(),
            _ if why.is_empty() => format!("{reason}."),
            _ => format!("{reason}: {}", why.join(": ")),
        };
        let by = ended.by.unwrap_or("(workflow)");
        let now = db::format_time(ended.now);
        if let Some(id) = store::reject_stopped(conn, ended.execution_id, by, &reason, &now)? {
            store::trail(conn, &id, &now, ended.by, action, Some(&reason))?;
        }
        Ok(())
    })
}
