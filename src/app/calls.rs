//! Server functions: the only way pages reach data. Each one checks the caller first — the
//! storefront and customer order page need no account, everything else a signed-in approver
//! or admin.

use crate::model::{
    AccessKey, AuditEntry, CurrentUser, CustomerOrder, ExecutionDetail, ExecutionRow, InboxCounts,
    NewAccessKey, OrderAudit, OrderPage, OrderQuery, OrderSummary, Product, TrailEntry, UserRow,
};
#[cfg(feature = "ssr")]
use crate::model::{Cents, InboxSort, InboxView, Stage};
use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What kind of failure a server function reports; pages react to some kinds (e.g. sending
/// the user to sign in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The input was refused; nothing changed.
    Invalid,
    SignInRequired,
    Forbidden,
    NotFound,
    /// Someone else got there first.
    Conflict,
    /// Too many attempts from this client or for this account; try again later.
    Throttled,
    /// Our fault, or the network's.
    Internal,
}

/// A server function's error: a message fit for users and, for bad input, the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub field: Option<String>,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            field: None,
            message: message.into(),
        }
    }

    /// The message if this error is about `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> AppError {
        let message = match error {
            ServerFnErrorErr::Request(_) => {
                "The server could not be reached. Please try again.".to_string()
            }
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => {
                format!("The form was incomplete: {detail}")
            }
            other => format!("Something went wrong: {other}"),
        };
        AppError::new(ErrorKind::Internal, message)
    }
}

#[cfg(feature = "ssr")]
mod server {
    use super::{AppError, ErrorKind};
    use crate::auth::{self, AuthError};
    use crate::model::{CurrentUser, Role};
    use crate::orders::OrderError;
    use crate::state::{app_state, AppState};
    use crate::throttle::retry_after_seconds;
    use axum::extract::ConnectInfo;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;
    use tower_sessions::Session;

    /// A failure, with the HTTP status that fits its kind set on the response.
    fn fail(kind: ErrorKind, field: Option<&str>, message: impl Into<String>) -> AppError {
        use http::StatusCode;
        let status = match kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::SignInRequired => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status);
        }
        AppError {
            kind,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// Logs what users should not see and gives them a plain apology.
    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %detail, "server function failed");
        fail(
            ErrorKind::Internal,
            None,
            "Something went wrong on our side. Please try again.",
        )
    }

    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> AppError {
        fail(ErrorKind::Invalid, field, message)
    }

    pub fn not_found(what: &str) -> AppError {
        fail(ErrorKind::NotFound, None, format!("{what} not found"))
    }

    /// A 429 saying, also in `Retry-After`, to come back after `wait`.
    pub fn throttled(wait: Duration, message: impl Into<String>) -> AppError {
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.insert_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        fail(ErrorKind::Throttled, None, message)
    }

    /// The address of the client calling (its TCP peer: a proxy's X-Forwarded-For is not
    /// trusted).
    pub async fn client() -> Result<IpAddr, AppError> {
        let ConnectInfo(peer) = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .map_err(internal)?;
        Ok(peer.ip())
    }

    impl From<AuthError> for AppError {
        fn from(error: AuthError) -> AppError {
            match error {
                AuthError::NotSignedIn => fail(ErrorKind::SignInRequired, None, error.to_string()),
                AuthError::Forbidden(role) => fail(
                    ErrorKind::Forbidden,
                    None,
                    format!("You need the {role} role to see this page."),
                ),
                AuthError::WrongCredentials => invalid(None, error.to_string()),
                AuthError::Throttled(wait) => throttled(wait, error.to_string()),
                AuthError::NoSuchUser(_)
                | AuthError::InvalidUsername(_)
                | AuthError::UserExists(_) => invalid(Some("username"), error.to_string()),
                AuthError::InvalidEmail(_) => invalid(Some("email"), error.to_string()),
                AuthError::InvalidLimit => invalid(Some("approval_limit"), error.to_string()),
                AuthError::InvalidExpiry => invalid(Some("expires_in_days"), error.to_string()),
                AuthError::WeakPassword => invalid(Some("password"), error.to_string()),
                AuthError::NoSuchToken(_) | AuthError::NoSuchAccessKey(_) => {
                    fail(ErrorKind::NotFound, None, error.to_string())
                }
                other => internal(other),
            }
        }
    }

    impl From<OrderError> for AppError {
        fn from(error: OrderError) -> AppError {
            match &error {
                OrderError::Invalid { field, .. } => invalid(Some(field), error.to_string()),
                OrderError::NotFound(_) => fail(ErrorKind::NotFound, None, error.to_string()),
                OrderError::AlreadyDecided { .. }
                | OrderError::Duplicate(_)
                | OrderError::Moved(_)
                | OrderError::Claimed(_)
                | OrderError::ClaimChanged => fail(ErrorKind::Conflict, None, error.to_string()),
                OrderError::NotAllowed(_) => fail(ErrorKind::Forbidden, None, error.to_string()),
                _ => internal(error),
            }
        }
    }

    pub fn state() -> Result<AppState, AppError> {
        app_state().map_err(internal)
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>().await.map_err(internal)
    }

    /// The application state and the signed-in caller, who must hold `role`.
    pub async fn caller(role: Role) -> Result<(AppState, CurrentUser), AppError> {
        let state = state()?;
        let user = auth::require(&state, &session().await?, role).await?;
        Ok((state, user))
    }

    /// Where to go after signing in: only paths on this site.
    pub fn local_path(next: &str) -> Option<&str> {
        let ok = next.starts_with('/')
            && !next.starts_with("//")
            && !next.contains('\\')
            && !next.chars().any(char::is_control);
        ok.then_some(next)
    }
}

#[server]
pub async fn signed_in_user() -> Result<Option<CurrentUser>, AppError> {
    let state = server::state()?;
    Ok(crate::auth::current_user(&state, &server::session().await?).await?)
}

#[server]
pub async fn login(
    username: String,
    password: String,
    #[server(default)] next: String,
) -> Result<(), AppError> {
    let state = server::state()?;
    let session = server::session().await?;
    let client = server::client().await?;
    crate::auth::login(&state, &session, client, username.trim(), &password).await?;
    leptos_axum::redirect(server::local_path(&next).unwrap_or("/inbox"));
    Ok(())
}

#[server]
pub async fn logout() -> Result<(), AppError> {
    crate::auth::logout(&server::session().await?).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server]
pub async fn catalogue() -> Result<Vec<Product>, AppError> {
    Ok(crate::orders::catalogue(&server::state()?).await?)
}

/// Places a storefront order; `quantities` maps SKU to the quantity typed in (blank means 0).
/// On success the browser goes to the customer's order page. Every attempt counts against
/// the client's storefront throttle.
#[server]
pub async fn place_order(
    customer_name: String,
    customer_email: String,
    #[server(default)] quantities: HashMap<String, String>,
) -> Result<(), AppError> {
    let state = server::state()?;
    let client = crate::throttle::client_key(server::client().await?);
    let now = std::time::Instant::now();
    if let Err(wait) = state.throttles.storefront_by_client.take(&client, now) {
        let seconds = crate::throttle::retry_after_seconds(wait);
        return Err(server::throttled(
            wait,
            format!(
                "Too many orders from your address. Please wait {seconds} seconds and try again."
            ),
        ));
    }
    let mut parsed = HashMap::new();
    for (sku, text) in &quantities {
        let text = text.trim();
        let quantity = if text.is_empty() {
            0
        } else {
            text.parse::<u32>().map_err(|_| {
                server::invalid(
                    Some("quantities"),
                    format!("Quantities must be whole numbers from 0 to 1000, not '{text}'."),
                )
            })?
        };
        parsed.insert(sku.clone(), quantity);
    }
    // A signed-in member of staff ordering is recorded, so they cannot approve it.
    let placed_by = signed_in_user().await?.map(|user| user.username);
    let (key, _) = crate::orders::place_from_storefront(
        &state,
        placed_by,
        &customer_name,
        &customer_email,
        &parsed,
    )
    .await?;
    leptos_axum::redirect(&format!("/orders/{key}"));
    Ok(())
}

/// The customer's view of their order, by the secret key in the page's URL.
#[server]
pub async fn find_customer_order(key: String) -> Result<CustomerOrder, AppError> {
    let state = server::state()?;
    crate::orders::customer_view(&state, &key)
        .await?
        .ok_or_else(|| server::not_found("Order"))
}

/// An order waiting for approval, with how long it has waited ("12 min") and how long is left
/// before it is escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub order: OrderSummary,
    pub waiting: String,
    /// "3 h 20 min left", or "overdue" once past the deadline.
    pub time_left: Option<String>,
    pub overdue: bool,
}

#[cfg(feature = "ssr")]
fn waiting(order: OrderSummary) -> Waiting {
    let now = time::OffsetDateTime::now_utc();
    let since = order
        .awaiting_since
        .as_deref()
        .and_then(crate::db::parse_time);
    let waiting = since.map(|t| waited(now - t)).unwrap_or_default();
    let due = order.due_at.as_deref().and_then(crate::db::parse_time);
    let overdue = due.is_some_and(|d| d <= now);
    let time_left = due.map(|d| {
        if overdue {
            "overdue".to_string()
        } else {
            format!("{} left", waited(d - now))
        }
    });
    Waiting {
        order,
        waiting,
        time_left,
        overdue,
    }
}

/// A wait in the largest sensible unit: "less than a minute", "5 min", "3 h 20 min", "2 days".
#[cfg(feature = "ssr")]
fn waited(d: time::Duration) -> String {
    let minutes = d.whole_minutes().max(0);
    match minutes {
        0 => "less than a minute".into(),
        1..=59 => format!("{minutes} min"),
        60..=1439 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ if minutes < 2880 => "1 day".into(),
        _ => format!("{} days", minutes / 1440),
    }
}

/// A page of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    pub items: Vec<Waiting>,
    pub next: Option<String>,
    pub counts: InboxCounts,
    /// The signed-in user, to tell their claims from others'.
    pub me: String,
    pub admin: bool,
}

/// Orders awaiting approval: `sort` (`oldest`, `largest`), `view` (`all`, `mine`,
/// `unclaimed`, `escalated`), amounts `min`/`max`, `waited` (minutes at least), `q` (an order
/// id or part of a customer's name or e-mail), `cursor` from the previous page.
#[server]
pub async fn inbox(
    #[server(default)] sort: String,
    #[server(default)] view: String,
    #[server(default)] min: String,
    #[server(default)] max: String,
    #[server(default)] waited: String,
    #[server(default)] q: String,
    #[server(default)] cursor: String,
) -> Result<InboxPage, AppError> {
    let (state, user) = server::caller(crate::model::Role::Approver).await?;
    let sort = InboxSort::parse(&sort)
        .ok_or_else(|| server::invalid(Some("sort"), "Sort by oldest or largest."))?;
    let view = InboxView::parse(&view)
        .ok_or_else(|| server::invalid(Some("view"), "Unknown inbox view."))?;
    let amount = |text: &str, field: &'static str| -> Result<Option<Cents>, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        crate::config::parse_amount(text.trim_start_matches('$'))
            .map(Some)
            .map_err(|e| server::invalid(Some(field), e))
    };
    let waited_minutes = match waited.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .ok()
                .filter(|m| *m >= 0)
                .ok_or_else(|| {
                    server::invalid(
                        Some("waited"),
                        "Waiting time must be a whole number of minutes.",
                    )
                })?,
        ),
    };
    let request = crate::orders::InboxRequest {
        sort,
        view,
        min: amount(&min, "min")?,
        max: amount(&max, "max")?,
        waited_minutes,
        search: Some(q.as_str()),
        cursor: Some(cursor.as_str()).filter(|c| !c.is_empty()),
        limit: 50,
    };
    let result = crate::orders::inbox(&state, &user, &request).await?;
    Ok(InboxPage {
        items: result.orders.into_iter().map(waiting).collect(),
        next: result.next,
        counts: result.counts,
        me: user.username,
        admin: user.role.is_admin(),
    })
}

/// One order for an approver: the order, its trail, who is asking, and why they may not
/// decide it (if they may not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub item: Waiting,
    pub trail: Vec<TrailEntry>,
    pub me: String,
    pub admin: bool,
    pub blocked: Option<String>,
}

/// One order, for an approver to decide.
#[server]
pub async fn approval(id: String) -> Result<ApprovalView, AppError> {
    let (state, user) = server::caller(crate::model::Role::Approver).await?;
    let order = crate::orders::get(&state, &id)
        .await?
        .ok_or_else(|| server::not_found("Order"))?;
    let blocked = crate::orders::may_not_decide(&order, &user, false)
        .filter(|e| !matches!(e, crate::orders::OrderError::Claimed(_)))
        .filter(|_| order.status == crate::model::OrderStatus::AwaitingApproval)
        .map(|e| e.to_string());
    Ok(ApprovalView {
        trail: crate::orders::trail(&state, &id).await?,
        item: waiting(order),
        me: user.username,
        admin: user.role.is_admin(),
        blocked,
    })
}

/// Approve or reject: `decision` is "approve" or "reject" (the button pressed); a reason is
/// required to reject, a comment optional; `stage` is the approval the page showed. Returns
/// the message to show.
#[server]
pub async fn decide(
    order_id: String,
    decision: String,
    #[server(default)] reason: String,
    #[server(default)] comment: String,
    #[server(default)] stage: String,
) -> Result<String, AppError> {
    let (state, user) = server::caller(crate::model::Role::Approver).await?;
    let approved = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(server::invalid(None, "Choose Approve or Reject.")),
    };
    let verdict = crate::orders::Verdict {
        approved,
        reason: Some(&reason),
        comment: Some(&comment),
        stage: Stage::parse(&stage),
    };
    let order = crate::orders::decide(&state, &order_id, &verdict, &user).await?;
    let verb = if approved { "approved" } else { "rejected" };
    Ok(format!("Order {} {verb}.", order.id))
}

/// Claim, unclaim, take over or (admins) reassign an order: `action` is `claim`, `unclaim`,
/// `take_over` or `reassign` (to `assignee`). Returns the message to show.
#[server]
pub async fn claim(
    order_id: String,
    action: String,
    #[server(default)] assignee: String,
) -> Result<String, AppError> {
    use crate::orders::ClaimChange;
    let (state, user) = server::caller(crate::model::Role::Approver).await?;
    let change = match action.as_str() {
        "claim" => ClaimChange::Claim,
        "unclaim" => ClaimChange::Unclaim,
        "take_over" => ClaimChange::TakeOver,
        "reassign" => ClaimChange::Reassign(assignee.trim()),
        _ => return Err(server::invalid(None, "Unknown claim action.")),
    };
    let order = crate::orders::change_claim(&state, &order_id, change, &user).await?;
    Ok(match &order.claimed_by {
        Some(by) if *by == user.username => format!("You are working on order {}.", order.id),
        Some(by) => format!("Order {} is now with {by}.", order.id),
        None => format!("Order {} is unclaimed.", order.id),
    })
}

/// The outcome of one order in a bulk approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub order_id: String,
    pub approved: bool,
    pub message: String,
}

/// Approves each of the orders (comma-separated ids, at most 100), each once and on its own:
/// one refused does not stop the others.
#[server]
pub async fn bulk_approve(
    order_ids: String,
    #[server(default)] comment: String,
) -> Result<Vec<BulkOutcome>, AppError> {
    let (state, user) = server::caller(crate::model::Role::Approver).await?;
    let mut ids: Vec<&str> = order_ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    ids.dedup();
    if ids.is_empty() {
        return Err(server::invalid(None, "Select the orders to approve."));
    }
    if ids.len() > 100 {
        return Err(server::invalid(None, "Approve at most 100 orders at once."));
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let verdict = crate::orders::Verdict {
            approved: true,
            comment: Some(&comment),
            ..Default::default()
        };
        let result = crate::orders::decide(&state, id, &verdict, &user).await;
        outcomes.push(BulkOutcome {
            order_id: id.to_string(),
            approved: result.is_ok(),
            message: match result {
                Ok(_) => "Approved.".to_string(),
                Err(e @ crate::orders::OrderError::Database(_)) => {
                    tracing::error!(error = %e, order = id, "bulk approval failed");
                    "Something went wrong on our side.".to_string()
                }
                Err(e) => e.to_string(),
            },
        });
    }
    Ok(outcomes)
}

/// Orders matching the console's filters (see [`OrderQuery`]), newest first; `cursor` comes
/// from the previous page.
#[server]
pub async fn orders(
    #[server(default)] query: OrderQuery,
    #[server(default)] cursor: String,
) -> Result<OrderPage, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    let filter = crate::console::order_filter(&query)
        .map_err(|(field, message)| server::invalid(Some(field), message))?;
    let cursor = Some(cursor.as_str()).filter(|c| !c.is_empty());
    Ok(crate::orders::list(&state, &filter, cursor, 25).await?)
}

/// An order with its approval trail and its execution.
#[server]
pub async fn load_audit(id: String) -> Result<OrderAudit, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    crate::console::order(&state, &id)
        .await?
        .ok_or_else(|| server::not_found("Order"))
}

/// Any execution, with its history and graph.
#[server]
pub async fn execution(id: String) -> Result<ExecutionDetail, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    crate::console::execution(&state, &id)
        .await
        .map_err(server::internal)?
        .ok_or_else(|| server::not_found("Execution"))
}

/// A page of the console's execution list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionList {
    /// Every state machine, to choose from.
    pub machines: Vec<String>,
    pub machine: String,
    pub rows: Vec<ExecutionRow>,
    pub next: Option<String>,
}

/// Executions of `machine` (the order workflow if empty), newest first, optionally of one
/// `status`; `cursor` from the previous page.
#[server]
pub async fn executions(
    #[server(default)] machine: String,
    #[server(default)] status: String,
    #[server(default)] cursor: String,
) -> Result<ExecutionList, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    const STATUSES: [&str; 5] = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
    let status = Some(status.as_str()).filter(|s| !s.is_empty());
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(server::invalid(Some("status"), "Unknown execution status."));
    }
    let machines: Vec<String> = state
        .runtime
        .state_machines(None, 1000)
        .await
        .map_err(server::internal)?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let machine = if machine.is_empty() {
        crate::orders::WORKFLOW.to_string()
    } else {
        machine
    };
    let cursor = Some(cursor.as_str()).filter(|c| !c.is_empty());
    let (rows, next) = crate::console::executions(&state, &machine, status, cursor, 50)
        .await
        .map_err(server::internal)?;
    Ok(ExecutionList {
        machines,
        machine,
        rows,
        next,
    })
}

/// Stops a running execution, recording who and why; an order whose workflow is stopped is
/// rejected with that reason.
#[server]
pub async fn stop_execution(id: String, cause: String) -> Result<String, AppError> {
    let (state, user) = server::caller(crate::model::Role::Admin).await?;
    let cause = cause.trim();
    if cause.is_empty() {
        return Err(server::invalid(
            Some("cause"),
            "Say why the execution is stopped.",
        ));
    }
    if cause.chars().count() > 1000 {
        return Err(server::invalid(
            Some("cause"),
            "The reason must be at most 1000 characters.",
        ));
    }
    let info = state
        .runtime
        .describe_execution(&id)
        .await
        .map_err(server::internal)?
        .ok_or_else(|| server::not_found("Execution"))?;
    if info.status != "RUNNING" {
        return Err(server::invalid(
            None,
            format!("The execution is not running (it is {}).", info.status),
        ));
    }
    let full_cause = format!("Stopped by {}: {cause}", user.username);
    crate::orders::stop_execution(&state, &id, &full_cause, &user, cause).await?;
    Ok(format!("Execution {} stopped.", info.name))
}

/// The access keys page: every key and API token (secrets left out) and the users a new one
/// can be for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<AccessKey>,
    pub tokens: Vec<crate::model::ApiToken>,
    pub usernames: Vec<String>,
}

#[server]
pub async fn access_keys() -> Result<KeyList, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    Ok(KeyList {
        keys: crate::auth::access_keys(state.db()).await?,
        tokens: crate::auth::api_tokens(state.db()).await?,
        usernames: crate::auth::usernames(state.db()).await?,
    })
}

/// The user chosen in a form, or the reason it is refused.
#[cfg(feature = "ssr")]
fn form_username(username: &str) -> Result<&str, AppError> {
    match username.trim() {
        "" => Err(server::invalid(Some("username"), "Choose a user.")),
        name => Ok(name),
    }
}

/// A new access key for `username`; its secret is in the answer and never shown again.
#[server]
pub async fn issue_access_key(username: String) -> Result<NewAccessKey, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    let username = form_username(&username)?;
    let by = crate::auth::Actor::User(&admin);
    let (id, secret) = crate::auth::issue_access_key(state.db(), by, username).await?;
    tracing::info!(key = %id, owner = %username, "access key created");
    Ok(NewAccessKey {
        id,
        secret,
        username: username.to_string(),
    })
}

/// Revokes an access key: requests signed with it are refused from now on.
#[server]
pub async fn revoke_access_key(id: String) -> Result<String, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    crate::auth::revoke_access_key(state.db(), crate::auth::Actor::User(&admin), &id).await?;
    tracing::info!(key = %id, "access key revoked");
    Ok(format!("Access key {id} revoked."))
}

/// A new API token for `username`, expiring after `expires_in_days` days (empty: never); the
/// token is in the answer and never shown again.
#[server]
pub async fn issue_api_token(
    username: String,
    #[server(default)] expires_in_days: String,
) -> Result<crate::model::NewApiToken, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    let username = form_username(&username)?;
    let days = match expires_in_days.trim() {
        "" => None,
        text => Some(text.parse::<u32>().map_err(|_| {
            server::invalid(
                Some("expires_in_days"),
                "The expiry is a whole number of days (empty: never).",
            )
        })?),
    };
    let by = crate::auth::Actor::User(&admin);
    let token = crate::auth::issue_api_token(state.db(), by, username, days).await?;
    tracing::info!(token = token.id, owner = %username, "API token created");
    Ok(token)
}

/// Revokes an API token: requests carrying it are refused from now on.
#[server]
pub async fn revoke_api_token(id: i64) -> Result<String, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    crate::auth::revoke_api_token(state.db(), crate::auth::Actor::User(&admin), id).await?;
    tracing::info!(token = id, "API token revoked");
    Ok(format!("API token {id} revoked."))
}

/// The dashboard's figures for the last 14 days.
#[server]
pub async fn load_dashboard() -> Result<crate::model::Dashboard, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    Ok(crate::orders::dashboard(&state, 14).await?)
}

/// Every account, for the console's user list.
#[server]
pub async fn users() -> Result<Vec<UserRow>, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    Ok(crate::auth::all_users(state.db()).await?)
}

/// A fresh random password (20 letters and digits) for a new or reset account.
#[cfg(feature = "ssr")]
fn new_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The role named in a form, or the reason it is refused.
#[cfg(feature = "ssr")]
fn form_role(role: &str) -> Result<crate::model::Role, AppError> {
    crate::model::Role::parse(role)
        .ok_or_else(|| server::invalid(Some("role"), "Choose approver or admin."))
}

/// The approval limit typed in a form (empty: none).
#[cfg(feature = "ssr")]
fn form_limit(limit: &str) -> Result<Option<Cents>, AppError> {
    match limit.trim().trim_start_matches('$') {
        "" => Ok(None),
        text => crate::config::parse_amount(text)
            .map(Some)
            .map_err(|e| server::invalid(Some("approval_limit"), e)),
    }
}

/// Adds an account with a generated password; returns the name and the password, to be
/// handed over (shown once).
#[server]
pub async fn add_user(
    username: String,
    role: String,
    #[server(default)] email: String,
    #[server(default)] approval_limit: String,
) -> Result<(String, String), AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    let role = form_role(&role)?;
    let profile = crate::auth::Profile::new(Some(&email), form_limit(&approval_limit)?)?;
    let username = username.trim();
    let password = new_password();
    let by = crate::auth::Actor::User(&admin);
    crate::auth::add_user(state.db(), by, username, role, &password, &profile).await?;
    Ok((username.to_string(), password))
}

/// Changes a user's role, e-mail and approval limit. A new role signs them out everywhere.
#[server]
pub async fn update_user(
    username: String,
    role: String,
    #[server(default)] email: String,
    #[server(default)] approval_limit: String,
) -> Result<String, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    let role = form_role(&role)?;
    let profile = crate::auth::Profile::new(Some(&email), form_limit(&approval_limit)?)?;
    if username == admin.username && role != crate::model::Role::Admin {
        return Err(server::invalid(
            Some("role"),
            "You cannot take your own admin role away.",
        ));
    }
    let by = crate::auth::Actor::User(&admin);
    crate::auth::update_user(state.db(), by, &username, Some(role), &profile).await?;
    Ok(format!("{username} updated."))
}

/// Sets a new generated password for a user, returned to be handed over (shown once); every
/// session of theirs ends.
#[server]
pub async fn reset_password(username: String) -> Result<String, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    let password = new_password();
    let by = crate::auth::Actor::User(&admin);
    crate::auth::reset_password(state.db(), by, &username, &password).await?;
    Ok(password)
}

/// Disables a user (signed out at once; tokens and keys stop working) or enables them (their
/// tokens and keys work again; they sign in afresh).
#[server]
pub async fn set_user_disabled(username: String, disabled: bool) -> Result<String, AppError> {
    let (state, admin) = server::caller(crate::model::Role::Admin).await?;
    if disabled && username == admin.username {
        return Err(server::invalid(None, "You cannot disable yourself."));
    }
    let by = crate::auth::Actor::User(&admin);
    crate::auth::set_disabled(state.db(), by, &username, disabled).await?;
    Ok(format!(
        "{username} {}.",
        if disabled { "disabled" } else { "enabled" }
    ))
}

/// A page of the audit log, newest first; `before` is the last id of the previous page.
#[server]
pub async fn audit_log(#[server(default)] before: String) -> Result<Vec<AuditEntry>, AppError> {
    let (state, _) = server::caller(crate::model::Role::Admin).await?;
    let before = match before.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| server::invalid(Some("before"), "The page cursor is malformed."))?,
        ),
    };
    crate::console::audit_log(state.db(), before, 50)
        .await
        .map_err(server::internal)
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        let w = |m: i64| waited(time::Duration::minutes(m));
        assert_eq!(w(0), "less than a minute");
        assert_eq!(w(5), "5 min");
        assert_eq!(w(200), "3 h 20 min");
        assert_eq!(w(1500), "1 day");
        assert_eq!(w(4400), "3 days");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(server::local_path("/inbox/ORD-1"), Some("/inbox/ORD-1"));
        assert_eq!(server::local_path("//evil.example"), None);
        assert_eq!(server::local_path("https://evil.example"), None);
        assert_eq!(server::local_path("/\\evil.example"), None);
        assert_eq!(server::local_path(""), None);
    }
}
