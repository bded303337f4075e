//! The order domain: placing orders (each starts an order-approval execution), what customers,
//! approvers and admins see of them, and approvers' decisions, which resume the workflow.

pub mod handlers;
pub mod search;
mod store;

use crate::db;
use crate::model::{
    Cents, CurrentUser, CustomerOrder, Dashboard, DayStats, InboxCounts, InboxSort, InboxView,
    OrderLine, OrderPage, OrderStatus, OrderSummary, Product, Stage, TrailEntry,
};
use crate::runtime::{CallbackError, RunGuard, RuntimeError};
use crate::state::AppState;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The state machine every order runs.
pub const WORKFLOW: &str = "order-approval";
/// Its definition, shipped in `workflows/`.
pub const WORKFLOW_DEFINITION: &str = include_str!("../../workflows/order-approval.asl.json");

/// Most units of one product in an order.
pub const MAX_QUANTITY: u32 = 1000;
/// Most lines in an order placed through the API.
pub const MAX_ITEMS: usize = 100;
/// Longest reason an approver may give.
pub const MAX_REASON: usize = 1000;

/// Why an order operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Bad input; nothing was changed.
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("No order with id '{0}'.")]
    NotFound(String),
    #[error("An order with id '{0}' already exists.")]
    Duplicate(String),
    /// Someone decided first, or the order is not waiting for a decision.
    #[error("{}", already_decided_message(.by, *.status))]
    AlreadyDecided {
        by: Option<String>,
        status: OrderStatus,
    },
    /// Not this user's to decide (or do).
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0} has claimed this order: take it over to decide it.")]
    Claimed(String),
    #[error("Someone changed who works on this order just now; look again.")]
    ClaimChanged,
    #[error("This order now awaits another step ({}); look again before deciding.", .0.label().to_lowercase())]
    Moved(Stage),
    #[error("The approval task could not be resumed: {0}")]
    Callback(#[from] CallbackError),
    #[error("The workflow failed to start: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("Database error: {0}")]
    Database(#[from] sqlx::Error),
}

fn already_decided_message(by: &Option<String>, status: OrderStatus) -> String {
    match by {
        Some(by) => format!("This order was already decided by {by}."),
        None => format!(
            "This order is not awaiting approval (it is {}).",
            status.label().to_lowercase()
        ),
    }
}

impl OrderError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> OrderError {
        OrderError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The input field at fault, for showing the error next to it.
    pub fn field(&self) -> Option<&str> {
        match self {
            OrderError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A customer's name: 1 to 100 characters after trimming, no control characters.
pub fn parse_customer_name(name: &str) -> Result<String, OrderError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(OrderError::invalid(
            "customer_name",
            "Please enter your name.",
        ));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(OrderError::invalid(
            "customer_name",
            "The name must be at most 100 characters, without control characters.",
        ));
    }
    Ok(name.to_string())
}

/// An e-mail address: something@domain.tld, no spaces, at most 254 characters.
pub fn parse_email(email: &str) -> Result<String, OrderError> {
    let email = email.trim();
    let bad = || {
        OrderError::invalid(
            "customer_email",
            "Please enter a valid e-mail address, like name@example.com.",
        )
    };
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let ok = email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_string())
    } else {
        Err(bad())
    }
}

/// An order id given by an integrating system: 1 to 64 letters, digits, '-' or '_'.
pub fn parse_order_id(id: &str) -> Result<String, OrderError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id.to_string())
    } else {
        Err(OrderError::invalid(
            "OrderID",
            "OrderID must be 1 to 64 letters, digits, '-' or '_'.",
        ))
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new order id: `ORD-` and 16 hex digits, the time in milliseconds then 20 random bits,
/// never the same twice in a process (a later id is always greater). Ids that follow time
/// are appended at the end of every index keyed by them (the order's, its execution's and
/// its history's), where a batch of orders shares pages: random ids made each order rewrite
/// pages all over those indexes.
fn new_order_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or(0) & ((1 << 44) - 1);
    let fresh = millis << 20 | (rand::random::<u64>() & ((1 << 20) - 1));
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(fresh.max(last.wrapping_add(1)))
        })
        .unwrap_or(fresh);
    format!("ORD-{:016X}", fresh.max(previous.wrapping_add(1)))
}

/// The secret key of a new order's page: its time in milliseconds (12 hex digits), then 128
/// random bits (32 hex digits), the secret. The time in front puts a new key at the end of
/// the index that finds orders by key; a random key alone wrote a page of that index per
/// order. Keys made before this had the random part only, and still work.
fn new_view_key(now: time::OffsetDateTime) -> String {
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    format!("{:012x}{}", millis & ((1 << 48) - 1), random_hex(16))
}

/// Whether `key` has the shape of an order page's key (see [`new_view_key`]).
fn is_view_key(key: &str) -> bool {
    matches!(key.len(), 32 | 44) && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The storefront catalogue.
pub async fn catalogue(state: &AppState) -> Result<Vec<Product>, OrderError> {
    let mut conn = state.db().reader.acquire().await?;
    Ok(store::products(&mut conn).await?)
}

/// Places an order from the storefront, by `placed_by` when someone is signed in. Prices come
/// from the catalogue, never the browser. Returns the secret key of the customer's order page and the order as it now stands.
pub async fn place_from_storefront(
    state: &AppState,
    placed_by: Option<String>,
    customer_name: &str,
    customer_email: &str,
    quantities: &HashMap<String, u32>,
) -> Result<(String, OrderSummary), OrderError> {
    let name = parse_customer_name(customer_name)?;
    let email = parse_email(customer_email)?;
    let catalogue = catalogue(state).await?;
    if let Some(sku) = quantities
        .keys()
        .find(|sku| !catalogue.iter().any(|p| &&p.sku == sku))
    {
        return Err(OrderError::invalid(
            "quantities",
            format!("Unknown product '{sku}'."),
        ));
    }
    let mut lines = Vec::new();
    let mut total = 0i64;
    for product in &catalogue {
        let quantity = quantities.get(&product.sku).copied().unwrap_or(0);
        if quantity > MAX_QUANTITY {
            return Err(OrderError::invalid(
                "quantities",
                format!("At most {MAX_QUANTITY} of {} per order.", product.name),
            ));
        }
        if quantity > 0 {
            total += product.price.0 * i64::from(quantity);
            lines.push(OrderLine {
                sku: Some(product.sku.clone()),
                name: product.name.clone(),
                quantity,
                unit_price: Some(product.price),
            });
        }
    }
    if lines.is_empty() {
        return Err(OrderError::invalid(
            "quantities",
            "Choose at least one product.",
        ));
    }
    let order = place(state, None, placed_by, name, email, lines, Cents(total)).await?;
    Ok((order.view_key.clone(), order.summary()))
}

/// An order in the seed's API shape: `{"OrderID"?, "OrderItems": [..], "Cost": 150}`.
#[derive(Debug, Clone)]
pub struct ApiOrder {
    pub order_id: Option<String>,
    pub items: Vec<String>,
    pub cost: Cents,
    pub customer_name: String,
    pub customer_email: String,
}

/// Places an order sent by an integrating system. Orders with no items or no cost are
/// accepted and then found invalid by the workflow, as in the seed.
/// The order records `by` as its placer, who may then never decide it.
pub async fn place_from_api(
    state: &AppState,
    order: ApiOrder,
    by: &CurrentUser,
) -> Result<OrderSummary, OrderError> {
    if order.items.len() > MAX_ITEMS {
        return Err(OrderError::invalid(
            "OrderItems",
            format!("At most {MAX_ITEMS} items per order."),
        ));
    }
    let lines = order
        .items
        .into_iter()
        .map(|name| OrderLine {
            sku: None,
            name,
            quantity: 1,
            unit_price: None,
        })
        .collect();
    let placed = place(
        state,
        order.order_id,
        Some(by.username.clone()),
        order.customer_name,
        order.customer_email,
        lines,
        order.cost,
    )
    .await?;
    Ok(placed.summary())
}

/// Saves the order and starts its workflow in one transaction, then runs the workflow as far
/// as it goes before answering: the caller sees the order pending approval, processed or
/// invalid, never half-done. It runs on the database's writer thread.
async fn place(
    state: &AppState,
    id: Option<String>,
    placed_by: Option<String>,
    customer_name: String,
    customer_email: String,
    items: Vec<OrderLine>,
    total: Cents,
) -> Result<store::OrderRow, OrderError> {
    let given_id = id.is_some();
    let id = id.as_deref().map(parse_order_id).transpose()?;
    let on_writer = state.clone();
    state
        .db()
        .write(async move {
            // Made on the writer just before the turn is asked for, a new order's id, key and
            // time follow the order in which orders commit: each lands after the last at the
            // end of the indexes keyed by them, where a batch of orders shares a page.
            let now = on_writer.runtime.clock().now();
            let order = store::OrderRow {
                id: id.unwrap_or_else(new_order_id),
                view_key: new_view_key(now),
                customer_name,
                customer_email,
                items,
                total,
                status: OrderStatus::Pending,
                // Set to its execution's id when that starts.
                execution_id: String::new(),
                task_token: None,
                awaiting_since: None,
                decided_by: None,
                decided_at: None,
                decision_reason: None,
                created_at: db::format_time(now),
                stage: Stage::First,
                first_approver: None,
                due_at: None,
                claimed_by: None,
                claimed_at: None,
                placed_by,
            };
            // The workflow's first steps run without a savepoint of their own; in the rare
            // case that one of their tasks fails, the whole order is placed again with one.
            match place_now(&on_writer, &order, given_id, RunGuard::Rerun).await {
                Err(OrderError::Runtime(RuntimeError::Rerun)) => {
                    place_now(&on_writer, &order, given_id, RunGuard::Savepoint).await
                }
                placed => placed,
            }
        })
        .await
}

/// The order `id` as committed, read off the writer.
async fn committed(state: &AppState, id: &str) -> Result<store::OrderRow, OrderError> {
    let mut conn = state.db().reader.acquire().await?;
    store::by_id(&mut conn, id)
        .await?
        .ok_or_else(|| OrderError::NotFound(id.to_string()))
}

/// [`place`] on the writer: `order` (whose id the caller chose, or was `given_id`) is
/// saved, its execution started and run as `guard` says. Returns the order as committed.
async fn place_now(
    state: &AppState,
    order: &store::OrderRow,
    given_id: bool,
    guard: RunGuard,
) -> Result<store::OrderRow, OrderError> {
    let runtime = &state.runtime;
    let mut tx = state.db().begin().await?;
    let id = &order.id;
    if given_id && store::exists(&tx, id)? {
        return Err(OrderError::Duplicate(id.clone()));
    }
    let input = json!({
        "OrderID": id,
        "OrderItems": order.items.iter().map(line_text).collect::<Vec<_>>(),
        "Cost": cost_number(order.total),
    });
    let started = runtime
        .start_execution_in(&mut tx, WORKFLOW, Some(id), input)
        .await?;
    let row = store::OrderRow {
        execution_id: started.id().to_string(),
        ..order.clone()
    };
    store::insert(&tx, &row)?;
    let outcome = runtime
        .run_started(&mut tx, started, crate::runtime::INLINE_STEPS, guard)
        .await?;
    let placed = store::by_id_in(&tx, id)?.ok_or_else(|| OrderError::NotFound(id.clone()))?;
    tx.commit().await?;
    runtime.after_commit(outcome);
    tracing::info!(order = %id, "order placed");
    Ok(placed)
}

/// How a line reads in the workflow input's `OrderItems`.
fn line_text(line: &OrderLine) -> String {
    if line.quantity == 1 {
        line.name.clone()
    } else {
        format!("{} x {}", line.quantity, line.name)
    }
}

/// Cents as the seed's `Cost` number in whole units (150.5 for 15050).
pub fn cost_number(total: Cents) -> Value {
    if total.0 % 100 == 0 {
        json!(total.0 / 100)
    } else {
        // Two-decimal amounts print exactly from their decimal text.
        serde_json::from_str(&format!("{}.{:02}", total.0 / 100, (total.0 % 100).abs()))
            .unwrap_or(Value::Null)
    }
}

/// The customer's view of an order, by the secret key in its page URL.
pub async fn customer_view(
    state: &AppState,
    view_key: &str,
) -> Result<Option<CustomerOrder>, OrderError> {
    if !is_view_key(view_key) {
        return Ok(None);
    }
    let mut conn = state.db().reader.acquire().await?;
    Ok(store::by_view_key(&mut conn, view_key)
        .await?
        .map(|o| CustomerOrder {
            id: o.id,
            customer_name: o.customer_name,
            items: o.items,
            total: o.total,
            status: o.status,
            created_at: o.created_at,
            rejection_reason: (o.status == OrderStatus::Rejected)
                .then_some(o.decision_reason)
                .flatten(),
        }))
}

/// The `(sort key, id)` a page cursor (`key~id`) points after.
fn page_after(cursor: Option<&str>) -> Result<Option<(&str, &str)>, OrderError> {
    cursor
        .map(|c| {
            c.split_once('~')
                .ok_or_else(|| OrderError::invalid("cursor", "The page cursor is malformed."))
        })
        .transpose()
}

/// What an inbox page asks for.
#[derive(Debug, Clone, Default)]
pub struct InboxRequest<'a> {
    pub sort: InboxSort,
    pub view: InboxView,
    pub min: Option<Cents>,
    pub max: Option<Cents>,
    /// Only orders that have waited at least this many minutes.
    pub waited_minutes: Option<i64>,
    /// An order id, or part of a customer's name or e-mail.
    pub search: Option<&'a str>,
    /// From the previous page's `next`.
    pub cursor: Option<&'a str>,
    pub limit: u32,
}

/// A page of the inbox with the counts of its views.
#[derive(Debug, Clone)]
pub struct InboxResult {
    pub orders: Vec<OrderSummary>,
    pub next: Option<String>,
    pub counts: InboxCounts,
}

/// The orders awaiting approval that `user` may work on (admins also see escalated ones),
/// filtered, sorted and a page at a time.
pub async fn inbox(
    state: &AppState,
    user: &CurrentUser,
    req: &InboxRequest<'_>,
) -> Result<InboxResult, OrderError> {
    let limit = req.limit.clamp(1, 200);
    let after = page_after(req.cursor)?;
    let now = state.runtime.clock().now();
    let waiting_before = req
        .waited_minutes
        .map(|m| db::format_time(now - time::Duration::minutes(m.clamp(0, 525_600))));
    let search = req.search.map(str::trim).filter(|s| !s.is_empty());
    let query = store::InboxQuery {
        sort: req.sort,
        view: req.view,
        me: &user.username,
        admin: user.role.is_admin(),
        min_cents: req.min.map(|c| c.0),
        max_cents: req.max.map(|c| c.0),
        waiting_before: waiting_before.as_deref(),
        search,
        after,
        limit: limit + 1,
    };
    let due_before = db::format_time(now + time::Duration::hours(4));
    let mut conn = state.db().reader.acquire().await?;
    let mut rows = store::inbox_page(&mut conn, &query).await?;
    let counts = store::inbox_counts(&mut conn, &query, &due_before).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| {
            rows.last().map(|o| match req.sort {
                InboxSort::Oldest => {
                    format!("{}~{}", o.awaiting_since.as_deref().unwrap_or(""), o.id)
                }
                InboxSort::Largest => format!("{}~{}", o.total.0, o.id),
            })
        })
        .flatten();
    Ok(InboxResult {
        orders: rows.iter().map(store::OrderRow::summary).collect(),
        next,
        counts,
    })
}

/// The order's approval trail, oldest first.
pub async fn trail(state: &AppState, order_id: &str) -> Result<Vec<TrailEntry>, OrderError> {
    let mut conn = state.db().reader.acquire().await?;
    Ok(store::trail_of(&mut conn, order_id).await?)
}

pub async fn get(state: &AppState, order_id: &str) -> Result<Option<OrderSummary>, OrderError> {
    let mut conn = state.db().reader.acquire().await?;
    Ok(store::by_id(&mut conn, order_id)
        .await?
        .map(|o| o.summary()))
}

/// An approver's answer to an order awaiting approval.
#[derive(Debug, Clone, Default)]
pub struct Verdict<'a> {
    pub approved: bool,
    /// Required to reject; shown to the customer.
    pub reason: Option<&'a str>,
    /// An optional note for colleagues and the trail.
    pub comment: Option<&'a str>,
    /// The approval the approver was shown; `None` accepts whichever the order awaits.
    pub stage: Option<Stage>,
}

/// Trims an optional text field; too long is refused.
fn note<'a>(text: Option<&'a str>, field: &'static str) -> Result<Option<&'a str>, OrderError> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > MAX_REASON) {
        return Err(OrderError::invalid(
            field,
            format!("The {field} must be at most {MAX_REASON} characters."),
        ));
    }
    Ok(text)
}

/// Why `user` may not decide `order` now, if they may not: it is not theirs to decide (their
/// own order, their own first approval, over their limit, escalated to admins) or someone
/// else has claimed it.
pub fn may_not_decide(
    order: &OrderSummary,
    user: &CurrentUser,
    approve: bool,
) -> Option<OrderError> {
    if order.status != OrderStatus::AwaitingApproval {
        return Some(OrderError::AlreadyDecided {
            by: order.decision.as_ref().map(|d| d.by.clone()),
            status: order.status,
        });
    }
    let refused = |why: String| Some(OrderError::NotAllowed(why));
    if order.placed_by.as_deref() == Some(user.username.as_str()) {
        return refused("You placed this order: another approver must decide it.".into());
    }
    if order.stage == Stage::Escalated && !user.role.is_admin() {
        return refused(
            "This order passed its deadline and was escalated: an admin decides it.".into(),
        );
    }
    let own = user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&order.customer_email));
    if own {
        return refused(format!(
            "This order was placed with your e-mail ({}): another approver must decide it.",
            order.customer_email
        ));
    }
    if order.stage == Stage::Second && order.first_approver.as_deref() == Some(&user.username) {
        return refused(
            "You gave this order its first approval: a different approver must give the second."
                .into(),
        );
    }
    if let Some(limit) = user.approval_limit.filter(|l| approve && order.total > *l) {
        return refused(format!(
            "This order ({}) is above your approval limit of {limit}.",
            order.total
        ));
    }
    match &order.claimed_by {
        Some(other) if *other != user.username => Some(OrderError::Claimed(other.clone())),
        _ => None,
    }
}

/// Approves or rejects an order awaiting approval and resumes its workflow, all in one
/// transaction: the decision, its trail entry, the callback and the workflow's next steps
/// (a second approval, processing, or failing the order) commit together.
pub async fn decide(
    state: &AppState,
    order_id: &str,
    verdict: &Verdict<'_>,
    by: &CurrentUser,
) -> Result<OrderSummary, OrderError> {
    let reason = note(verdict.reason, "reason")?;
    let comment = note(verdict.comment, "comment")?;
    if !verdict.approved && reason.is_none() {
        return Err(OrderError::invalid(
            "reason",
            "Please give a reason for rejecting the order.",
        ));
    }
    // The rules are checked on the order as committed, off the writer; the decision's
    // compare-and-set then holds only if nothing they read has changed since.
    let seen = committed(state, order_id).await?;
    let on_writer = state.clone();
    let (reason, comment) = (reason.map(str::to_string), comment.map(str::to_string));
    let (approved, stage, by) = (verdict.approved, verdict.stage, by.clone());
    let decided = state
        .db()
        .write(async move {
            let verdict = Verdict {
                approved,
                reason: reason.as_deref(),
                comment: comment.as_deref(),
                stage,
            };
            // The workflow's next steps run without a savepoint of their own; in the rare
            // case that one of their tasks fails, the decision is made again with one.
            match decide_now(&on_writer, seen.clone(), &verdict, &by, RunGuard::Rerun).await {
                Err(OrderError::Callback(CallbackError::Runtime(RuntimeError::Rerun))) => {
                    decide_now(&on_writer, seen, &verdict, &by, RunGuard::Savepoint).await
                }
                decided => decided,
            }
        })
        .await?;
    Ok(decided.summary())
}

/// Whether `by` may give `verdict` on `order` as it stands, and if so the token it resumes.
fn decision_token<'o>(
    order: &'o store::OrderRow,
    verdict: &Verdict<'_>,
    by: &CurrentUser,
) -> Result<&'o str, OrderError> {
    if let Some(refusal) = may_not_decide(&order.summary(), by, verdict.approved) {
        return Err(refusal);
    }
    if verdict.stage.is_some_and(|seen| seen != order.stage) {
        return Err(OrderError::Moved(order.stage));
    }
    order
        .task_token
        .as_deref()
        .ok_or_else(|| OrderError::AlreadyDecided {
            by: order.decided_by.clone(),
            status: order.status,
        })
}

/// [`decide`] on the writer, from the order as `seen` off it. If the order has changed since,
/// it is read again on the writer and the rules decide on that. Returns the order as
/// committed.
async fn decide_now(
    state: &AppState,
    seen: store::OrderRow,
    verdict: &Verdict<'_>,
    by: &CurrentUser,
    guard: RunGuard,
) -> Result<store::OrderRow, OrderError> {
    let (reason, comment) = (verdict.reason, verdict.comment);
    let runtime = &state.runtime;
    let mut tx = state.db().begin().await?;
    let now = db::format_time(runtime.clock().now());
    let mut order = seen;
    let mut fresh = false;
    let token = loop {
        let token = decision_token(&order, verdict, by)?;
        let record = store::DecisionRecord {
            approved: verdict.approved,
            by: &by.username,
            reason,
            comment,
            stage: order.stage,
            claimed_by: order.claimed_by.as_deref(),
            token,
        };
        if store::record_decision(&tx, &order.id, &record, &now)? {
            break token.to_string();
        }
        if fresh {
            return Err(OrderError::AlreadyDecided {
                by: order.decided_by,
                status: order.status,
            });
        }
        order = store::by_id_in(&tx, &order.id)?
            .ok_or_else(|| OrderError::NotFound(order.id.clone()))?;
        fresh = true;
    };
    crate::metrics::record_decision(order.stage, order.awaiting_since.as_deref(), &now);
    let output = json!({
        "approved": verdict.approved,
        "decidedBy": by.username,
        "reason": reason,
        "comment": comment,
        "stage": order.stage.as_str(),
    });
    let (_, outcome) = runtime
        .send_task_success_in(&mut tx, &token, output, guard)
        .await?;
    let decided =
        store::by_id_in(&tx, &order.id)?.ok_or_else(|| OrderError::NotFound(order.id.clone()))?;
    tx.commit().await?;
    runtime.after_commit(outcome);
    tracing::info!(order = %order.id, approved = verdict.approved, by = %by.username, "order decided");
    Ok(decided)
}

/// What to do about who works on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimChange<'a> {
    /// Take an unclaimed order.
    Claim,
    /// Give back one's own claim (admins: anyone's).
    Unclaim,
    /// Take an order someone else has claimed, explicitly.
    TakeOver,
    /// Admins: give the order to this user.
    Reassign(&'a str),
}

/// Claims, unclaims, takes over or reassigns an order awaiting approval, recording it in the
/// trail. Refused if the order moved on or someone else changed its claim meanwhile.
pub async fn change_claim(
    state: &AppState,
    order_id: &str,
    change: ClaimChange<'_>,
    by: &CurrentUser,
) -> Result<OrderSummary, OrderError> {
    if let ClaimChange::Reassign(_) = change {
        if !by.role.is_admin() {
            return Err(OrderError::NotAllowed(
                "Only admins reassign orders.".into(),
            ));
        }
    }
    let assignee = match change {
        ClaimChange::Reassign(name) => {
            let user = crate::auth::active_user(state.db(), name)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "loading the assignee failed");
                    OrderError::invalid("assignee", "The assignee could not be loaded.")
                })?;
            Some(user.ok_or_else(|| {
                OrderError::invalid("assignee", format!("No active user named '{name}'."))
            })?)
        }
        _ => None,
    };
    let mut tx = state.db().begin().await?;
    let order = store::by_id_in(&tx, order_id)?
        .ok_or_else(|| OrderError::NotFound(order_id.to_string()))?;
    if order.status != OrderStatus::AwaitingApproval {
        return Err(OrderError::AlreadyDecided {
            by: order.decided_by,
            status: order.status,
        });
    }
    if order.stage == Stage::Escalated && !by.role.is_admin() {
        return Err(OrderError::NotAllowed(
            "This order was escalated: admins work on it.".into(),
        ));
    }
    let holder = order.claimed_by.as_deref();
    let me = by.username.as_str();
    let (new_holder, action, detail) = match change {
        ClaimChange::Claim => match holder {
            None => (Some(me), "claimed", None),
            Some(h) if h == me => return Ok(order.summary()),
            Some(h) => return Err(OrderError::Claimed(h.to_string())),
        },
        ClaimChange::Unclaim => match holder {
            None => return Ok(order.summary()),
            Some(h) if h == me || by.role.is_admin() => (None, "unclaimed", Some(h.to_string())),
            Some(h) => return Err(OrderError::Claimed(h.to_string())),
        },
        ClaimChange::TakeOver => match holder {
            Some(h) if h == me => return Ok(order.summary()),
            Some(h) => (Some(me), "took_over", Some(format!("from {h}"))),
            None => (Some(me), "claimed", None),
        },
        ClaimChange::Reassign(_) => {
            let to = assignee.as_ref().map(|u| u.username.as_str());
            (to, "reassigned", to.map(|t| format!("to {t}")))
        }
    };
    if let Some(user) = assignee.as_ref() {
        if let Some(refusal) = may_not_decide(&order.summary(), user, false)
            .filter(|e| !matches!(e, OrderError::Claimed(_)))
        {
            return Err(OrderError::invalid(
                "assignee",
                format!("{} cannot decide this order: {refusal}", user.username),
            ));
        }
    }
    let now = db::format_time(state.runtime.clock().now());
    if !store::set_claim(&tx, order_id, order.stage, holder, new_holder, &now)? {
        return Err(OrderError::ClaimChanged);
    }
    store::trail(&tx, order_id, &now, Some(me), action, detail.as_deref())?;
    if let Some(to) = assignee.as_ref() {
        crate::console::audit_in(&mut tx, me, "reassign order", order_id, Some(&to.username))
            .await?;
    }
    let order = store::by_id_in(&tx, order_id)?
        .ok_or_else(|| OrderError::NotFound(order_id.to_string()))?;
    tx.commit().await?;
    state.runtime.changed();
    Ok(order.summary())
}

pub use store::OrderFilter;

/// Orders matching `filter`, newest first; `cursor` comes from the previous page.
pub async fn list(
    state: &AppState,
    filter: &OrderFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<OrderPage, OrderError> {
    let limit = limit.clamp(1, 1000);
    let after = page_after(cursor)?;
    let mut conn = state.db().reader.acquire().await?;
    let mut rows = store::page(&mut conn, filter, after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|o| format!("{}~{}", o.created_at, o.id)))
        .flatten();
    Ok(OrderPage {
        orders: rows.iter().map(store::OrderRow::summary).collect(),
        next,
    })
}

/// How many orders are in each status.
pub async fn count_by_status(state: &AppState) -> Result<Vec<(OrderStatus, i64)>, OrderError> {
    let mut conn = state.db().reader.acquire().await?;
    Ok(store::count_by_status(&mut conn).await?)
}

/// An admin stops execution `id` (with `cause`, and the reason they gave as `detail` for the
/// audit log). The stop, the order it runs being rejected (by the workflow's end hook) and
/// the audit row commit together.
pub async fn stop_execution(
    state: &AppState,
    id: &str,
    cause: &str,
    by: &CurrentUser,
    detail: &str,
) -> Result<(), OrderError> {
    let mut tx = state.db().begin().await?;
    state
        .runtime
        .stop_execution_in(&mut tx, id, "Admin.Stopped", cause, &by.username)
        .await
        .map_err(|e| match e {
            crate::runtime::RuntimeError::ExecutionDoesNotExist(id) => OrderError::NotFound(id),
            other => OrderError::from(other),
        })?;
    crate::console::audit_in(&mut tx, &by.username, "stop execution", id, Some(detail)).await?;
    tx.commit().await?;
    state.runtime.changed();
    Ok(())
}

/// Values as ascending `(value, how many times)` pairs.
type Histogram = Vec<(i64, i64)>;

/// The `p`th percentile (nearest rank, rounding up) of a [`Histogram`]'s values; `None` if
/// there are none.
fn percentile(histogram: &[(i64, i64)], p: i64) -> Option<i64> {
    let total: i64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total - 1) * p + 99) / 100;
    let mut seen = 0;
    histogram.iter().find_map(|&(value, n)| {
        seen += n;
        (seen > rank).then_some(value)
    })
}

/// The dashboard: orders by status, the last `days` days of decisions (approval rate and
/// time from order to decision), and what is due within four hours.
pub async fn dashboard(state: &AppState, days: i64) -> Result<Dashboard, OrderError> {
    let now = state.runtime.clock().now();
    let first = now.date() - time::Duration::days(days - 1);
    let mut conn = state.db().reader.acquire().await?;
    let by_status = store::count_by_status(&mut conn).await?;
    let decisions = store::decisions_since(&mut conn, &first.to_string()).await?;
    let soon = db::format_time(now + time::Duration::hours(4));
    let due_soon = store::due_before(&mut conn, &soon, 20).await?;
    // Per day: approved, rejected, and how many decisions took each number of minutes
    // (ascending, as the query orders them).
    let mut by_day: HashMap<String, (i64, i64, Histogram)> = HashMap::new();
    for (day, minutes, approved, decided) in decisions {
        let entry = by_day.entry(day).or_default();
        entry.0 += approved;
        entry.1 += decided - approved;
        entry.2.push((minutes, decided));
    }
    let mut stats = Vec::new();
    for offset in 0..days {
        let day = (first + time::Duration::days(offset)).to_string();
        let (approved, rejected, histogram) = by_day.remove(&day).unwrap_or_default();
        stats.push(DayStats {
            day,
            approved,
            rejected,
            median_minutes: percentile(&histogram, 50),
            p90_minutes: percentile(&histogram, 90),
        });
    }
    Ok(Dashboard {
        by_status,
        days: stats,
        due_soon: due_soon.iter().map(store::OrderRow::summary).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::{is_view_key, new_order_id, new_view_key, parse_order_id, percentile};

    #[test]
    fn new_order_ids_are_valid_unique_and_follow_each_other() {
        let ids: Vec<String> = (0..10_000).map(|_| new_order_id()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let id = &ids[0];
        assert_eq!(parse_order_id(id).ok().as_ref(), Some(id));
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("ORD-"));
    }

    #[test]
    fn view_keys_follow_time_and_carry_128_random_bits() {
        let then = time::macros::datetime!(2026-12-08 01:00:00.000 UTC);
        let keys: Vec<String> = (0..100)
            .map(|ms| new_view_key(then + time::Duration::milliseconds(ms)))
            .collect();
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            assert_ne!(pair[0][12..], pair[1][12..], "the secret part repeats");
        }
        let same_time: Vec<String> = (0..2).map(|_| new_view_key(then)).collect();
        assert_eq!(same_time[0][..12], same_time[1][..12]);
        assert_ne!(same_time[0], same_time[1]);
        assert!(keys.iter().all(|k| k.len() == 44 && is_view_key(k)));
        // Keys made before the time prefix still open their pages; nothing else looks like one.
        assert!(is_view_key("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123",
            "0123456789abcdef0123456789abcdeg",
            &format!("{}0", keys[0]),
        ] {
            assert!(!is_view_key(bad), "{bad}");
        }
    }

    #[test]
    fn percentiles_of_a_histogram_match_those_of_its_values() {
        // 1, 2, 2, 3, 3, 3, 10 as (value, count).
        let histogram = [(1, 1), (2, 2), (3, 3), (10, 1)];
        let values = [1, 2, 2, 3, 3, 3, 10];
        for p in [0, 10, 50, 75, 90, 100] {
            let rank = ((values.len() - 1) * p as usize).div_ceil(100);
            assert_eq!(percentile(&histogram, p), Some(values[rank]), "p{p}");
        }
        assert_eq!(percentile(&histogram, 50), Some(3));
        assert_eq!(percentile(&histogram, 90), Some(10));
        assert_eq!(percentile(&[], 50), None);
    }
}
