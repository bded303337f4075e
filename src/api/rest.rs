//! REST handlers: parse the request, check the bearer token, call one order function, map
//! the result.

use super::ApiError;
use crate::auth;
use crate::config::parse_amount;
use crate::model::{Cents, CurrentUser, OrderSummary, Stage};
use crate::orders::{self, ApiOrder};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};

/// `GET /healthz`: the database answers.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.db().reader)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: format!("database unavailable: {e}"),
            field: None,
        })?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /metrics`: Prometheus text format, for an admin's API token.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    if !caller(&state, &headers).await?.role.is_admin() {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "Metrics need an admin's API token.".into(),
            field: None,
        });
    }
    use std::sync::atomic::Ordering::Relaxed;
    let rt = &state.runtime;
    let (executions, pending_task_tokens) = rt.gauges().await.map_err(ApiError::internal)?;
    let snapshot = crate::metrics::Snapshot {
        steps: rt.metrics().steps.load(Relaxed),
        worker_errors: rt.metrics().worker_errors.load(Relaxed),
        step_panics: rt.metrics().step_panics.load(Relaxed),
        worker_restarts: rt.metrics().worker_restarts.load(Relaxed),
        reruns: rt.metrics().reruns.load(Relaxed),
        executions,
        pending_task_tokens,
        orders: orders::count_by_status(&state).await?,
    };
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&snapshot),
    ))
}

/// The user behind `Authorization: Bearer <token>`.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<CurrentUser, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("Send an API token as 'Authorization: Bearer <token>' (create one with 'orderflow token create <user>')."))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("The Authorization header must be 'Bearer <token>'.")
        })?;
    auth::check_api_token(state.db(), token)
        .await?
        .map_err(|refused| ApiError::unauthorized(refused.to_string()))
}

/// The body as a JSON object, or a 400 naming the problem.
fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "body",
            "The body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::bad_request(
            "body",
            format!("The body is not valid JSON: {e}"),
        )),
    }
}

fn optional_string(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(
            field,
            format!("{field} must be a string."),
        )),
    }
}

/// The seed's `Cost`: a number in whole currency units with at most two decimals.
fn parse_cost(value: Option<&Value>) -> Result<Cents, ApiError> {
    let Some(Value::Number(n)) = value else {
        return Err(ApiError::bad_request(
            "Cost",
            "Cost is required and must be a number, like 150 or 99.95.",
        ));
    };
    let text = n.to_string();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let cents =
        parse_amount(digits).map_err(|e| ApiError::bad_request("Cost", format!("Cost {e}")))?;
    Ok(if negative { Cents(-cents.0) } else { cents })
}

fn order_json(order: &OrderSummary) -> Value {
    json!({
        "order_id": order.id,
        "status": order.status,
        "items": order.items,
        "total": { "cents": order.total.0, "currency": "USD", "display": order.total.to_string() },
        "Cost": orders::cost_number(order.total),
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "created_at": order.created_at,
        "awaiting_since": order.awaiting_since,
        "decision": order.decision,
        "execution_arn": order.execution_id,
        "placed_by": order.placed_by,
    })
}

/// `POST /api/orders` with the seed's payload.
pub async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = caller(&state, &headers).await?;
    let map = json_object(&body)?;
    let order_id = optional_string(&map, "OrderID")?;
    let items = match map.get("OrderItems") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 200 => Ok(s.trim().to_string()),
                _ => Err(ApiError::bad_request("OrderItems", "Each entry of OrderItems must be a non-empty string of at most 200 characters.")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(ApiError::bad_request("OrderItems", "OrderItems is required and must be an array of strings.")),
    };
    let cost = parse_cost(map.get("Cost"))?;
    let customer_name = match optional_string(&map, "CustomerName")? {
        Some(n) => orders::parse_customer_name(&n)?,
        None => user.username.clone(),
    };
    let customer_email = match optional_string(&map, "CustomerEmail")? {
        Some(e) => orders::parse_email(&e)?,
        None => String::new(),
    };
    let order = orders::place_from_api(
        &state,
        ApiOrder {
            order_id,
            items,
            cost,
            customer_name,
            customer_email,
        },
        &user,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(order_json(&order))))
}

/// `GET /api/orders/{id}`.
pub async fn get_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers).await?;
    let order = orders::get(&state, &id)
        .await?
        .ok_or_else(|| ApiError::from(orders::OrderError::NotFound(id)))?;
    Ok(Json(order_json(&order)))
}

/// `POST /api/orders/{id}/decision` `{"approved": bool, "reason": "..."}`.
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let user = caller(&state, &headers).await?;
    let map = json_object(&body)?;
    let Some(Value::Bool(approved)) = map.get("approved") else {
        return Err(ApiError::bad_request(
            "approved",
            "approved is required and must be true or false.",
        ));
    };
    let reason = optional_string(&map, "reason")?;
    let comment = optional_string(&map, "comment")?;
    let stage = match optional_string(&map, "stage")? {
        None => None,
        Some(text) => Some(Stage::parse(&text).ok_or_else(|| {
            ApiError::bad_request("stage", "stage must be first, second or escalated.")
        })?),
    };
    let verdict = orders::Verdict {
        approved: *approved,
        reason: reason.as_deref(),
        comment: comment.as_deref(),
        stage,
    };
    let order = orders::decide(&state, &id, &verdict, &user).await?;
    Ok(Json(order_json(&order)))
}
