//! The orders and products tables. Functions take the caller's connection so that order
//! changes commit together with the workflow step that makes them.

use crate::db::{Columns, WriteConn};
use crate::model::{
    Cents, Decision, InboxCounts, InboxSort, InboxView, OrderLine, OrderStatus, OrderSummary,
    Product, Stage, TrailEntry,
};
use rusqlite::params;
use sqlx::SqliteConnection;

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
    pub stage: Stage,
    pub first_approver: Option<String>,
    pub due_at: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<String>,
    /// The user who placed it through the API (`None`: the storefront).
    pub placed_by: Option<String>,
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
            stage: self.stage,
            first_approver: self.first_approver.clone(),
            due_at: self.due_at.clone(),
            claimed_by: self.claimed_by.clone(),
            claimed_at: self.claimed_at.clone(),
            decision,
            execution_id: self.execution_id.clone(),
            placed_by: self.placed_by.clone(),
        }
    }
}

const COLUMNS: &str = "id, view_key, customer_name, customer_email, items, total_cents, status,
    execution_id, task_token, awaiting_since, decided_by, decided_at, decision_reason, created_at,
    stage, first_approver, due_at, claimed_by, claimed_at, placed_by";

fn decode<T>(e: impl std::fmt::Display) -> Result<T, sqlx::Error> {
    Err(sqlx::Error::Decode(e.to_string().into()))
}

fn from_row(row: &impl Columns) -> Result<OrderRow, sqlx::Error> {
    let items: String = row.try_get("items")?;
    let items = match serde_json::from_str(&items) {
        Ok(items) => items,
        Err(e) => return decode(e),
    };
    let status: String = row.try_get("status")?;
    let Some(status) = OrderStatus::parse(&status) else {
        return decode(format!("unknown order status {status}"));
    };
    let stage: String = row.try_get("stage")?;
    let Some(stage) = Stage::parse(&stage) else {
        return decode(format!("unknown approval stage {stage}"));
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
        stage,
        first_approver: row.try_get("first_approver")?,
        due_at: row.try_get("due_at")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at: row.try_get("claimed_at")?,
        placed_by: row.try_get("placed_by")?,
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
pub fn insert(conn: &WriteConn, order: &OrderRow) -> Result<(), sqlx::Error> {
    let items =
        serde_json::to_string(&order.items).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    conn.exec(
        "INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents, currency,
             status, execution_id, created_at, updated_at, placed_by)
         VALUES (?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?, ?, ?)",
        params![
            order.id,
            order.view_key,
            order.customer_name,
            order.customer_email,
            items,
            order.total.0,
            order.status.as_str(),
            order.execution_id,
            order.created_at,
            order.created_at,
            order.placed_by,
        ],
    )?;
    Ok(())
}

pub fn exists(conn: &WriteConn, id: &str) -> Result<bool, sqlx::Error> {
    let found = conn.optional("SELECT 1 AS found FROM orders WHERE id = ?", [id], |_| {
        Ok(())
    })?;
    Ok(found.is_some())
}

/// The order `id`, on a reader.
pub async fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<OrderRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The order `id`, in the caller's write transaction.
pub fn by_id_in(conn: &WriteConn, id: &str) -> Result<Option<OrderRow>, sqlx::Error> {
    conn.optional(
        &format!("SELECT {COLUMNS} FROM orders WHERE id = ?"),
        [id],
        |r| from_row(r),
    )
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

/// Moves the order run by `execution_id` from status `from` to `to`: the compare-and-set
/// behind each workflow step. False if the order is not in `from`.
pub fn set_status(
    conn: &WriteConn,
    id: &str,
    execution_id: &str,
    from: OrderStatus,
    to: OrderStatus,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = conn.exec(
        "UPDATE orders SET status = ?, updated_at = ?
         WHERE id = ? AND execution_id = ? AND status = ?",
        [to.as_str(), now, id, execution_id, from.as_str()],
    )?;
    Ok(done == 1)
}

/// What an order waits for: the token that resumes its workflow, which approval, and when it
/// is due.
pub struct Waiting<'a> {
    pub token: &'a str,
    pub stage: Stage,
    pub first_approver: Option<&'a str>,
    pub due_at: Option<&'a str>,
}

/// Puts the order in the inbox (unclaimed) for the approval `waiting` describes.
pub fn await_approval(
    conn: &WriteConn,
    id: &str,
    waiting: &Waiting<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    conn.exec(
        "UPDATE orders SET status = 'awaiting_approval', task_token = ?, stage = ?,
             first_approver = ?, due_at = ?, claimed_by = NULL, claimed_at = NULL,
             awaiting_since = ?, updated_at = ?
         WHERE id = ?",
        params![
            waiting.token,
            waiting.stage.as_str(),
            waiting.first_approver,
            waiting.due_at,
            now,
            now,
            id
        ],
    )?;
    let action = match waiting.stage {
        Stage::Escalated => "escalated",
        _ => "waiting",
    };
    trail(conn, id, now, None, action, Some(waiting.stage.label()))
}

/// Adds an entry to the order's trail.
pub fn trail(
    conn: &WriteConn,
    order_id: &str,
    at: &str,
    actor: Option<&str>,
    action: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    conn.exec(
        "INSERT INTO order_trail (order_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
        params![order_id, at, actor, action, detail],
    )?;
    Ok(())
}

/// The order's trail, oldest first.
pub async fn trail_of(
    conn: &mut SqliteConnection,
    order_id: &str,
) -> Result<Vec<TrailEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, actor, action, detail FROM order_trail WHERE order_id = ? ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TrailEntry {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// A decision: the compare-and-set that lets exactly one of two simultaneous approvers win.
pub struct DecisionRecord<'a> {
    pub approved: bool,
    pub by: &'a str,
    pub reason: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// The approval the approver saw; a decision for another one is refused.
    pub stage: Stage,
    /// Who had claimed the order when the rules were checked.
    pub claimed_by: Option<&'a str>,
    pub token: &'a str,
}

/// Records a decision if the order still awaits the same approval (same stage and token)
/// and the same approver's claim, if any. Returns false if it no longer does.
pub fn record_decision(
    conn: &WriteConn,
    id: &str,
    d: &DecisionRecord<'_>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    // An approved order is pending until the workflow asks for its next approval or
    // processes it.
    let status = if d.approved {
        OrderStatus::Pending
    } else {
        OrderStatus::Rejected
    };
    let done = conn.exec(
        "UPDATE orders SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
             task_token = NULL, claimed_by = NULL, claimed_at = NULL, due_at = NULL,
             updated_at = ?
         WHERE id = ? AND status = 'awaiting_approval' AND stage = ? AND task_token = ?
             AND claimed_by IS ?",
        params![
            status.as_str(),
            d.by,
            now,
            d.reason.or(d.comment),
            now,
            id,
            d.stage.as_str(),
            d.token,
            d.claimed_by
        ],
    )?;
    if done != 1 {
        return Ok(false);
    }
    let action = if d.approved { "approved" } else { "rejected" };
    let detail = match (d.reason, d.comment) {
        (Some(r), Some(c)) => Some(format!("{r}\n\nComment: {c}")),
        (Some(text), None) | (None, Some(text)) => Some(text.to_string()),
        (None, None) => None,
    };
    trail(conn, id, now, Some(d.by), action, detail.as_deref())?;
    Ok(true)
}

/// Rejects the unfinished order run by `execution_id` (its workflow was stopped); returns
/// its id, or `None` if no unfinished order runs there.
pub fn reject_stopped(
    conn: &WriteConn,
    execution_id: &str,
    by: &str,
    cause: &str,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    conn.optional(
        "UPDATE orders SET status = 'rejected', decided_by = ?, decided_at = ?,
             decision_reason = ?, task_token = NULL, claimed_by = NULL, claimed_at = NULL,
             due_at = NULL, updated_at = ?
         WHERE execution_id = ? AND status IN ('pending', 'awaiting_approval')
         RETURNING id",
        [by, now, cause, now, execution_id],
        |r| r.try_get("id"),
    )
}

/// Sets who works on an awaiting order if it is still `expected` (who held it before, `None`
/// for nobody) at `stage`: the compare-and-set behind claim, unclaim, take-over and reassign.
pub fn set_claim(
    conn: &WriteConn,
    id: &str,
    stage: Stage,
    expected: Option<&str>,
    claimed_by: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = conn.exec(
        "UPDATE orders SET claimed_by = ?1, claimed_at = CASE WHEN ?1 IS NULL THEN NULL ELSE ?2 END,
             updated_at = ?2
         WHERE id = ?3 AND status = 'awaiting_approval' AND stage = ?4 AND claimed_by IS ?5",
        params![claimed_by, now, id, stage.as_str(), expected],
    )?;
    Ok(done == 1)
}

/// A page of the inbox: which orders, in what order, after which one.
pub struct InboxQuery<'a> {
    pub sort: InboxSort,
    pub view: InboxView,
    /// The user asking: "mine" means claimed by them.
    pub me: &'a str,
    /// Admins see escalated orders too.
    pub admin: bool,
    pub min_cents: Option<i64>,
    pub max_cents: Option<i64>,
    /// Only orders waiting since before this time.
    pub waiting_before: Option<&'a str>,
    /// An order id, or part of a customer's name or e-mail.
    pub search: Option<&'a str>,
    /// The last row of the previous page: its sort key (`awaiting_since` or total) and id.
    pub after: Option<(&'a str, &'a str)>,
    pub limit: u32,
}

/// `text` as a LIKE pattern matching it anywhere, wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// What a search box matches: an order id exactly (looked up first), or else part of a
/// customer's name or e-mail.
enum Search {
    Id(String),
    /// A LIKE pattern, checked on every row the query reads in its order.
    Customer(String),
    /// The few orders whose customer matches, found with the trigram index `order_search` (and
    /// its queue, see `orders::search`): a JSON array of their ids.
    Indexed(String),
}

/// Above this many matches a customer search reads orders in the list's own order instead of
/// fetching and sorting every match: the matches are dense enough to fill a page quickly.
const INDEXED_SEARCH_LIMIT: i64 = 2000;

impl Search {
    async fn resolve(conn: &mut SqliteConnection, text: &str) -> Result<Search, sqlx::Error> {
        let is_id: Option<i64> = sqlx::query_scalar("SELECT 1 FROM orders WHERE id = ?")
            .bind(text)
            .fetch_optional(conn)
            .await?;
        Ok(match is_id {
            Some(_) => Search::Id(text.to_string()),
            None => Search::Customer(contains_pattern(text)),
        })
    }

    /// [`Search::resolve`], using the trigram index when the text has one (three characters
    /// or more) and matches few orders.
    async fn resolve_indexed(
        conn: &mut SqliteConnection,
        text: &str,
    ) -> Result<Search, sqlx::Error> {
        let search = Search::resolve(&mut *conn, text).await?;
        if !matches!(search, Search::Customer(_)) || text.chars().count() < 3 {
            return Ok(search);
        }
        let ids = super::search::matching(conn, text, INDEXED_SEARCH_LIMIT + 1).await?;
        Ok(match ids {
            Some(ids) if ids.len() as i64 <= INDEXED_SEARCH_LIMIT => {
                Search::Indexed(serde_json::Value::from(ids).to_string())
            }
            _ => search,
        })
    }

    fn condition(&self) -> &'static str {
        match self {
            Search::Id(_) => "id = ?",
            Search::Customer(_) => {
                "(customer_name LIKE ? ESCAPE '\\' OR customer_email LIKE ? ESCAPE '\\')"
            }
            Search::Indexed(_) => "id IN (SELECT value FROM json_each(?))",
        }
    }

    fn bind<'q>(&self, query: Query<'q>) -> Query<'q> {
        match self {
            Search::Id(id) => query.bind(id.clone()),
            Search::Customer(p) => query.bind(p.clone()).bind(p.clone()),
            Search::Indexed(ids) => query.bind(ids.clone()),
        }
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// The inbox's filters as SQL conditions with their values, only those given, so SQLite can
/// use its indexes.
struct InboxSql {
    conditions: Vec<&'static str>,
    search: Option<Search>,
    /// Filtered by amount.
    amount: bool,
    /// Filtered by how long orders have waited.
    waited: bool,
}

impl InboxSql {
    async fn new(conn: &mut SqliteConnection, q: &InboxQuery<'_>) -> Result<InboxSql, sqlx::Error> {
        let mut conditions = vec!["status = 'awaiting_approval'"];
        if !q.admin {
            conditions.push("stage <> 'escalated'");
        }
        if q.min_cents.is_some() {
            conditions.push("total_cents >= ?");
        }
        if q.max_cents.is_some() {
            conditions.push("total_cents <= ?");
        }
        if q.waiting_before.is_some() {
            conditions.push("awaiting_since < ?");
        }
        let search = match q.search {
            Some(text) => Some(Search::resolve(conn, text).await?),
            None => None,
        };
        if let Some(s) = &search {
            conditions.push(s.condition());
        }
        Ok(InboxSql {
            conditions,
            search,
            amount: q.min_cents.is_some() || q.max_cents.is_some(),
            waited: q.waiting_before.is_some(),
        })
    }

    /// The table for a page of `view` in `sort` order (`None`: the counts), read through a partial index
    /// over the orders awaiting approval that holds every column the filters check, in the
    /// page's order: a page reads index entries until it has its rows and fetches only those,
    /// and the counts never fetch a row. The plan is fixed rather than left to SQLite, which
    /// without statistics (or with stale ones) sorts every awaiting order, or fetches each
    /// row to check a filter, and takes hundreds of milliseconds at 50,000 awaiting orders.
    fn from(&self, sort: Option<InboxSort>, view: InboxView) -> &'static str {
        let customer = matches!(self.search, Some(Search::Customer(_)));
        match sort {
            // One order, by its key.
            _ if matches!(self.search, Some(Search::Id(_))) => "orders",
            // The few escalated orders, found by their stage and sorted.
            Some(_) if view == InboxView::Escalated => "orders INDEXED BY orders_awaiting_work",
            Some(InboxSort::Oldest) => "orders INDEXED BY orders_awaiting_search",
            Some(InboxSort::Largest) => "orders INDEXED BY orders_awaiting_largest",
            None if self.amount => "orders INDEXED BY orders_awaiting_largest",
            None if customer || self.waited => "orders INDEXED BY orders_awaiting_search",
            // Every awaiting order: the narrowest index with the counted columns.
            None => "orders INDEXED BY orders_awaiting_work",
        }
    }

    fn bind<'q>(&self, mut query: Query<'q>, q: &InboxQuery<'q>) -> Query<'q> {
        for cents in [q.min_cents, q.max_cents].into_iter().flatten() {
            query = query.bind(cents);
        }
        if let Some(before) = q.waiting_before {
            query = query.bind(before);
        }
        match &self.search {
            Some(s) => s.bind(query),
            None => query,
        }
    }
}

/// One page of the inbox, plus one more row if there is a next page.
pub async fn inbox_page(
    conn: &mut SqliteConnection,
    q: &InboxQuery<'_>,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let filters = InboxSql::new(&mut *conn, q).await?;
    let mut conditions = filters.conditions.clone();
    match q.view {
        InboxView::All => {}
        InboxView::Mine => conditions.push("claimed_by = ?"),
        InboxView::Unclaimed => conditions.push("claimed_by IS NULL"),
        InboxView::Escalated => conditions.push("stage = 'escalated'"),
    }
    let (keyset, order) = match q.sort {
        InboxSort::Oldest => ("(awaiting_since, id) > (?, ?)", "awaiting_since, id"),
        InboxSort::Largest => (
            "(total_cents, id) < (CAST(? AS INTEGER), ?)",
            "total_cents DESC, id DESC",
        ),
    };
    if q.after.is_some() {
        conditions.push(keyset);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE {} ORDER BY {order} LIMIT ?",
        filters.from(Some(q.sort), q.view),
        conditions.join(" AND ")
    );
    let mut query = filters.bind(sqlx::query(&sql), q);
    if q.view == InboxView::Mine {
        query = query.bind(q.me);
    }
    if let Some((key, id)) = q.after {
        query = query.bind(key).bind(id);
    }
    let rows = query.bind(q.limit).fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

/// The inbox's counts under the same filters (the view and the page aside).
pub async fn inbox_counts(
    conn: &mut SqliteConnection,
    q: &InboxQuery<'_>,
    due_before: &str,
) -> Result<InboxCounts, sqlx::Error> {
    let filters = InboxSql::new(&mut *conn, q).await?;
    if filters.search.is_none() && !filters.amount && !filters.waited {
        return rolled_up_counts(conn, q, due_before).await;
    }
    let sql = format!(
        "SELECT COUNT(*) AS all_, COALESCE(SUM(claimed_by = ?), 0) AS mine,
             COALESCE(SUM(claimed_by IS NULL), 0) AS unclaimed,
             COALESCE(SUM(stage = 'escalated'), 0) AS escalated,
             COALESCE(SUM(due_at < ?), 0) AS due_soon
         FROM {} WHERE {}",
        filters.from(None, q.view),
        filters.conditions.join(" AND ")
    );
    let query = sqlx::query(&sql).bind(q.me).bind(due_before);
    let row = filters.bind(query, q).fetch_one(conn).await?;
    Ok(InboxCounts {
        all: row.try_get("all_")?,
        mine: row.try_get("mine")?,
        unclaimed: row.try_get("unclaimed")?,
        escalated: row.try_get("escalated")?,
        due_soon: row.try_get("due_soon")?,
    })
}

/// [`inbox_counts`] without filters, the inbox as it opens: from the roll-up `inbox_counts`
/// (a few rows, kept by the triggers of the migration `order_rollups`) and a range of the
/// due-date index, instead of every awaiting order's index entry.
async fn rolled_up_counts(
    conn: &mut SqliteConnection,
    q: &InboxQuery<'_>,
    due_before: &str,
) -> Result<InboxCounts, sqlx::Error> {
    let visible = if q.admin { "1" } else { "stage <> 'escalated'" };
    let row = sqlx::query(&format!(
        "SELECT COALESCE(SUM(how_many), 0) AS all_,
             COALESCE(SUM(CASE WHEN claimed_by = ? THEN how_many END), 0) AS mine,
             COALESCE(SUM(CASE WHEN claimed_by = '' THEN how_many END), 0) AS unclaimed,
             COALESCE(SUM(CASE WHEN stage = 'escalated' THEN how_many END), 0) AS escalated
         FROM inbox_counts WHERE {visible}"
    ))
    .bind(q.me)
    .fetch_one(&mut *conn)
    .await?;
    let due_soon: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM orders INDEXED BY orders_awaiting_due
         WHERE status = 'awaiting_approval' AND due_at < ? AND {visible}"
    ))
    .bind(due_before)
    .fetch_one(conn)
    .await?;
    Ok(InboxCounts {
        all: row.try_get("all_")?,
        mine: row.try_get("mine")?,
        unclaimed: row.try_get("unclaimed")?,
        escalated: row.try_get("escalated")?,
        due_soon,
    })
}

/// Which orders the console lists.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    /// Placed at or after this time (RFC 3339 prefix, e.g. `2026-11-01`).
    pub from: Option<String>,
    /// Placed before this time.
    pub to: Option<String>,
    pub min_cents: Option<i64>,
    pub max_cents: Option<i64>,
    /// Decided (last) by this user.
    pub approver: Option<String>,
    /// An order id, or part of the customer's name or e-mail.
    pub search: Option<String>,
}

/// A page of orders matching `filter`, newest first, after the `(created_at, id)` cursor. Only
/// the conditions given are in the SQL, so SQLite can pick the index that fits.
pub async fn page(
    conn: &mut SqliteConnection,
    filter: &OrderFilter,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut conditions = vec!["1"];
    if filter.status.is_some() {
        conditions.push("status = ?");
    }
    if filter.from.is_some() {
        conditions.push("created_at >= ?");
    }
    if filter.to.is_some() {
        conditions.push("created_at < ?");
    }
    if filter.approver.is_some() {
        conditions.push("decided_by = ?");
    }
    let search = match &filter.search {
        Some(text) => Some(Search::resolve_indexed(&mut *conn, text).await?),
        None => None,
    };
    if let Some(s) = &search {
        conditions.push(s.condition());
    }
    if after.is_some() {
        conditions.push("(created_at, id) < (?, ?)");
    }
    let mut amounts = Vec::new();
    if filter.min_cents.is_some() {
        amounts.push("total_cents >= ?");
    }
    if filter.max_cents.is_some() {
        amounts.push("total_cents <= ?");
    }
    if !amounts.is_empty() {
        // An amount range that most orders fall in would have the planner read them all by
        // amount and sort them by time (1.3 s at a million orders). First look among the
        // newest orders the other conditions allow: if the page fills there, it is the
        // page (they are taken in the page's order).
        let windowed = format!(
            "SELECT {COLUMNS} FROM (
                 SELECT * FROM orders WHERE {} ORDER BY created_at DESC, id DESC LIMIT {AMOUNT_WINDOW})
             WHERE {} ORDER BY created_at DESC, id DESC LIMIT ?",
            conditions.join(" AND "),
            amounts.join(" AND "),
        );
        let rows = list_query(&windowed, filter, search.as_ref(), after, limit)
            .fetch_all(&mut *conn)
            .await?;
        if rows.len() >= limit as usize {
            return rows.iter().map(from_row).collect();
        }
        // Rarer amounts: the index by amount finds few rows to sort.
        conditions.extend(amounts);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM orders WHERE {} ORDER BY created_at DESC, id DESC LIMIT ?",
        conditions.join(" AND ")
    );
    let rows = list_query(&sql, filter, search.as_ref(), after, limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// `sql`, a query of [`page`], with its values bound in the order its conditions name them:
/// the amounts last, then the limit.
fn list_query<'q>(
    sql: &'q str,
    filter: &OrderFilter,
    search: Option<&Search>,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Query<'q> {
    let mut query = sqlx::query(sql);
    if let Some(status) = filter.status {
        query = query.bind(status.as_str());
    }
    for value in [&filter.from, &filter.to].into_iter().flatten() {
        query = query.bind(value.clone());
    }
    if let Some(approver) = &filter.approver {
        query = query.bind(approver.clone());
    }
    if let Some(s) = search {
        query = s.bind(query);
    }
    if let Some((created, id)) = after {
        query = query.bind(created.to_string()).bind(id.to_string());
    }
    for cents in [filter.min_cents, filter.max_cents].into_iter().flatten() {
        query = query.bind(cents);
    }
    query.bind(limit)
}

/// How many of the newest orders [`page`] looks through first for an amount range.
const AMOUNT_WINDOW: u32 = 5000;

/// Orders per status (statuses with none are listed with 0), from the roll-up the
/// migration `order_rollups` keeps equal to a count over `orders`.
pub async fn count_by_status(
    conn: &mut SqliteConnection,
) -> Result<Vec<(OrderStatus, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, how_many FROM order_counts")
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

/// Decisions since `since` (a date, `YYYY-MM-DD`) by day and by whole minutes from order to
/// decision: rows of `(day, minutes, approved, decided)`, ordered by day and minutes. Read
/// from the roll-up the migration `order_rollups` keeps, so a busy fortnight is a few
/// thousand rows whatever the number of orders.
pub async fn decisions_since(
    conn: &mut SqliteConnection,
    since: &str,
) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, minutes, approved, decided FROM order_decisions
         WHERE day >= ? AND decided > 0 ORDER BY day, minutes",
    )
    .bind(since)
    .fetch_all(conn)
    .await
}

/// Orders awaiting approval due before `before`, soonest first.
pub async fn due_before(
    conn: &mut SqliteConnection,
    before: &str,
    limit: u32,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    // The partial index of waiting orders by due time, named: the planner would otherwise
    // take every waiting order by status and sort them (86 ms at 50,000 waiting).
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders INDEXED BY orders_awaiting_due
         WHERE status = 'awaiting_approval' AND due_at IS NOT NULL AND due_at < ?
         ORDER BY due_at LIMIT ?"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}
