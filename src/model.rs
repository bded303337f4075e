//! Plain data shared by the server and the browser: what pages show and server functions return.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Money in minor units (cents). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cents(pub i64);

impl fmt::Display for Cents {
    /// `$1,234.50`-style display in the shop's currency (USD).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = (abs / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "{sign}${grouped}.{:02}", abs % 100)
    }
}

/// An order's status as customers, approvers and the REST API see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    AwaitingApproval,
    Processed,
    Rejected,
    Invalid,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::AwaitingApproval,
        OrderStatus::Processed,
        OrderStatus::Rejected,
        OrderStatus::Invalid,
    ];

    /// The stored and API spelling, e.g. `awaiting_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::AwaitingApproval => "awaiting_approval",
            OrderStatus::Processed => "processed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Invalid => "invalid",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Words for people, e.g. "Awaiting approval".
    pub fn label(self) -> &'static str {
        match self {
            OrderStatus::Pending => "Pending",
            OrderStatus::AwaitingApproval => "Awaiting approval",
            OrderStatus::Processed => "Processed",
            OrderStatus::Rejected => "Rejected",
            OrderStatus::Invalid => "Invalid",
        }
    }

    /// True once nothing more will happen to the order.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Processed | OrderStatus::Rejected | OrderStatus::Invalid
        )
    }
}

/// An execution's status, spelled as AWS spells it (`RUNNING`, `ABORTED`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 5] = [
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<ExecutionStatus> {
        ExecutionStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What became of a task token: pending until its callback arrives, then used up once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Pending,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl TokenStatus {
    pub const ALL: [TokenStatus; 5] = [
        TokenStatus::Pending,
        TokenStatus::Succeeded,
        TokenStatus::Failed,
        TokenStatus::TimedOut,
        TokenStatus::Cancelled,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Pending => "pending",
            TokenStatus::Succeeded => "succeeded",
            TokenStatus::Failed => "failed",
            TokenStatus::TimedOut => "timed_out",
            TokenStatus::Cancelled => "cancelled",
        }
    }
}

/// Which approval an order awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Any approver (within their limit, not the customer).
    First,
    /// A second approver, other than the first: the order is above the second threshold.
    Second,
    /// Past its deadline: admins decide.
    Escalated,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::First, Stage::Second, Stage::Escalated];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::First => "first",
            Stage::Second => "second",
            Stage::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Words for people, e.g. "Second approval".
    pub fn label(self) -> &'static str {
        match self {
            Stage::First => "Approval",
            Stage::Second => "Second approval",
            Stage::Escalated => "Escalated to admins",
        }
    }

    /// Whose queue the order is in.
    pub fn inbox(self) -> &'static str {
        match self {
            Stage::Escalated => "admins",
            _ => "approvers",
        }
    }
}

/// A catalogue entry in the storefront.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price: Cents,
}

/// One line of an order. Storefront lines carry a SKU, quantity and unit price; lines sent
/// through the API in the seed's shape carry only a description (`quantity` 1, no price).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub name: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Cents>,
}

/// Who decided an order, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    pub at: String,
    pub reason: Option<String>,
}

/// An order with everything a page about it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub id: String,
    pub customer_name: String,
    pub customer_email: String,
    pub items: Vec<OrderLine>,
    pub total: Cents,
    pub status: OrderStatus,
    pub created_at: String,
    /// Set while the order waits for an approver (RFC 3339).
    pub awaiting_since: Option<String>,
    /// Which approval it waits for (meaningful while awaiting approval).
    pub stage: Stage,
    /// Who gave the first of two approvals, and so may not give the second.
    pub first_approver: Option<String>,
    /// When the approval it waits for is escalated to the admins.
    pub due_at: Option<String>,
    /// The approver working on it, and since when.
    pub claimed_by: Option<String>,
    pub claimed_at: Option<String>,
    pub decision: Option<Decision>,
    pub execution_id: String,
    /// The user who placed it through the API (`None`: the storefront).
    pub placed_by: Option<String>,
}

/// One step of an order's approval: who did what, when (`actor` is `None` for the workflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEntry {
    pub at: String,
    pub actor: Option<String>,
    /// `waiting`, `claimed`, `unclaimed`, `took_over`, `reassigned`, `approved`, `rejected`,
    /// `escalated`.
    pub action: String,
    pub detail: Option<String>,
}

/// The inbox's order: oldest waiting first, or largest total first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxSort {
    #[default]
    Oldest,
    Largest,
}

/// Which waiting orders the inbox lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxView {
    /// Everything the user may work on.
    #[default]
    All,
    /// Claimed by the user.
    Mine,
    Unclaimed,
    /// Past their deadline, for admins.
    Escalated,
}

impl InboxSort {
    pub fn parse(s: &str) -> Option<InboxSort> {
        match s {
            "" | "oldest" => Some(InboxSort::Oldest),
            "largest" => Some(InboxSort::Largest),
            _ => None,
        }
    }
}

impl InboxView {
    pub fn parse(s: &str) -> Option<InboxView> {
        match s {
            "" | "all" => Some(InboxView::All),
            "mine" => Some(InboxView::Mine),
            "unclaimed" => Some(InboxView::Unclaimed),
            "escalated" => Some(InboxView::Escalated),
            _ => None,
        }
    }
}

/// How many orders wait, in the inbox's views.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCounts {
    /// Everything the user may work on.
    pub all: i64,
    pub mine: i64,
    pub unclaimed: i64,
    pub escalated: i64,
    /// Due within the next four hours.
    pub due_soon: i64,
}

/// What the customer sees on their order page (reached through its unguessable key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerOrder {
    pub id: String,
    pub customer_name: String,
    pub items: Vec<OrderLine>,
    pub total: Cents,
    pub status: OrderStatus,
    pub created_at: String,
    /// The approver's reason, shown when the order was rejected.
    pub rejection_reason: Option<String>,
}

/// A page of the admin's order list, ordered newest first; `next` is the cursor for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    pub next: Option<String>,
}

/// The console's order filters as typed (query-string values; empty means any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderQuery {
    pub status: String,
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// `YYYY-MM-DD`, inclusive.
    pub to: String,
    pub min: String,
    pub max: String,
    pub approver: String,
    pub q: String,
}

/// One execution history event, as AWS's GetExecutionHistory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: i64,
    pub previous_event_id: i64,
    pub kind: String,
    pub timestamp: String,
    /// The event's details as a JSON object string.
    pub details: String,
}

/// One line of an execution's event table: the event, the state it belongs to and the time
/// since the execution started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    pub id: i64,
    pub kind: String,
    pub state: Option<String>,
    pub timestamp: String,
    pub elapsed_ms: i64,
    pub details: String,
}

/// A state's input and output the last time the execution went through it (pretty JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateData {
    pub name: String,
    pub input: Option<String>,
    pub output: Option<String>,
}

/// An execution for the console: its facts, its history and its state machine drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionDetail {
    pub id: String,
    pub name: String,
    pub state_machine: String,
    pub status: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub input: String,
    pub output: Option<String>,
    pub events: Vec<EventLine>,
    pub states: Vec<StateData>,
    pub graph: crate::graph::Graph,
}

/// A row of the console's execution list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRow {
    pub id: String,
    pub name: String,
    pub state_machine: String,
    pub status: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
}

/// An order's page in the console: the order, who did what to its approval, its execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAudit {
    pub order: OrderSummary,
    pub trail: Vec<TrailEntry>,
    pub execution: Option<ExecutionDetail>,
}

/// Account roles. Customers need no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

/// The signed-in user, as pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// Orders placed with this e-mail are never theirs to decide.
    pub email: Option<String>,
    /// The largest total they may approve; `None` for no limit.
    pub approval_limit: Option<Cents>,
}

/// An access key for the AWS-compatible API as admins see it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub username: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// An account as the console's user list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub username: String,
    pub role: Role,
    pub email: Option<String>,
    pub approval_limit: Option<Cents>,
    pub disabled: bool,
    pub created_at: String,
}

/// An entry of the audit log of admin actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// One day of decisions on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub approved: i64,
    pub rejected: i64,
    /// Minutes from order to decision: the median and the 90th percentile.
    pub median_minutes: Option<i64>,
    pub p90_minutes: Option<i64>,
}

/// The admin dashboard's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub by_status: Vec<(OrderStatus, i64)>,
    /// The last days, oldest first.
    pub days: Vec<DayStats>,
    /// Orders awaiting approval that are due within four hours (or overdue), soonest first.
    pub due_soon: Vec<OrderSummary>,
}

/// A key just created: the one time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccessKey {
    pub id: String,
    pub secret: String,
    pub username: String,
}

/// The longest an API token may be given before it expires, in days (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// An API token as admins see it: never the token itself (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub username: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// `None`: it never expires.
    pub expires_at: Option<String>,
    /// Past `expires_at` when listed.
    pub expired: bool,
    /// Its user is disabled, so it is refused.
    pub owner_disabled: bool,
}

/// A token just created: the one time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiToken {
    pub id: i64,
    pub token: String,
    pub username: String,
    pub expires_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_display_groups_thousands_and_keeps_two_decimals() {
        assert_eq!(Cents(0).to_string(), "$0.00");
        assert_eq!(Cents(5).to_string(), "$0.05");
        assert_eq!(Cents(15050).to_string(), "$150.50");
        assert_eq!(Cents(123456789).to_string(), "$1,234,567.89");
        assert_eq!(Cents(-250).to_string(), "-$2.50");
    }

    #[test]
    fn status_round_trips_through_its_stored_spelling() {
        for st in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(OrderStatus::parse("approved"), None);
    }
}
