//! The approver's inbox: a queue of orders waiting for a decision — sorted, filtered, searched,
//! a page at a time, live — where approvers claim orders and decide them, one by one or in
//! bulk, and the page where one order is decided.

use crate::app::calls::{
    self, ApprovalView, BulkApprove, BulkOutcome, Claim, Decide, InboxPage, Waiting,
};
use crate::app::{
    encode, items_text, live_changes, short_time, Alert, ItemsTable, Loading, Refused,
};
use crate::model::{Decision, InboxCounts, OrderStatus, TrailEntry};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The inbox's query-string parameters, in the order the server function takes them.
const PARAMS: [&str; 7] = ["sort", "view", "min", "max", "waited", "q", "cursor"];

/// The actions the inbox's rows and the approval page share.
#[derive(Clone, Copy)]
struct Actions {
    decide: ServerAction<Decide>,
    claim: ServerAction<Claim>,
    /// The outcome of whichever action finished last.
    latest: RwSignal<Option<Result<String, calls::AppError>>>,
}

impl Actions {
    fn new() -> Actions {
        let decide = ServerAction::<Decide>::new();
        let claim = ServerAction::<Claim>::new();
        let latest = RwSignal::new(None);
        Effect::new(move |_| {
            if let Some(outcome) = decide.value().get() {
                latest.set(Some(outcome));
            }
        });
        Effect::new(move |_| {
            if let Some(outcome) = claim.value().get() {
                latest.set(Some(outcome));
            }
        });
        Actions {
            decide,
            claim,
            latest,
        }
    }

    /// Changes whenever either action completes, for resources to refetch on.
    fn version(self) -> usize {
        self.decide.version().get() + self.claim.version().get()
    }

    /// The outcome of the latest action, as a notice or an alert (errors about a field are
    /// shown next to it).
    fn outcome(self) -> impl IntoView {
        move || match self.latest.get() {
            Some(Ok(message)) => Some(
                view! {
                    <p class="notice" role="status">
                        {message}
                    </p>
                }
                .into_any(),
            ),
            Some(Err(e)) if e.field.is_none() => {
                Some(view! { <Alert message=e.message/> }.into_any())
            }
            _ => None,
        }
    }
}

#[component]
pub fn Inbox() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        PARAMS.map(|p| q.get(p).unwrap_or_default())
    };
    let actions = Actions::new();
    let bulk = ServerAction::<BulkApprove>::new();
    let live = live_changes();
    let page = Resource::new(
        move || {
            (
                params(),
                live.get(),
                actions.version(),
                bulk.version().get(),
            )
        },
        |([sort, view, min, max, waited, q, cursor], ..)| {
            calls::inbox(sort, view, min, max, waited, q, cursor)
        },
    );
    view! {
        <Title text="Approval inbox"/>
        <h1>"Approval inbox"</h1>
        {actions.outcome()}
        <BulkResults bulk/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let [sort, view, min, max, waited, q, cursor] = params();
                let filters = Filters {
                    sort,
                    view,
                    min,
                    max,
                    waited,
                    q,
                };
                match page.await {
                    Ok(page) => view! { <Queue page filters cursor actions bulk/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The filters in the page's URL.
#[derive(Clone, Default, PartialEq)]
struct Filters {
    sort: String,
    view: String,
    min: String,
    max: String,
    waited: String,
    q: String,
}

impl Filters {
    /// The inbox URL with these filters, `view` replaced if given, and the page `cursor`.
    fn href(&self, view: Option<&str>, cursor: &str) -> String {
        let view = view.unwrap_or(&self.view);
        let pairs = [
            ("sort", self.sort.as_str()),
            ("view", view),
            ("min", &self.min),
            ("max", &self.max),
            ("waited", &self.waited),
            ("q", &self.q),
            ("cursor", cursor),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if query.is_empty() {
            "/inbox".into()
        } else {
            format!("/inbox?{}", query.join("&"))
        }
    }
}

#[component]
fn Queue(
    page: InboxPage,
    filters: Filters,
    cursor: String,
    actions: Actions,
    bulk: ServerAction<BulkApprove>,
) -> impl IntoView {
    let InboxPage {
        items,
        next,
        counts,
        me,
        admin,
    } = page;
    let selected = RwSignal::new(Vec::<String>::new());
    let comment = RwSignal::new(String::new());
    let ids: Vec<String> = items.iter().map(|w| w.order.id.clone()).collect();
    let next = next.map(|next| {
        view! { <A href=filters.href(None, &next)>"Next page"</A> }
    });
    let first = (!cursor.is_empty()).then(|| {
        view! { <A href=filters.href(None, "")>"First page"</A> }
    });
    let empty = items.is_empty();
    let rows = items
        .into_iter()
        .map(|item| view! { <Row item me=me.clone() actions selected/> })
        .collect_view();
    let all_selected = {
        let ids = ids.clone();
        move || !ids.is_empty() && selected.with(|s| ids.iter().all(|id| s.contains(id)))
    };
    let toggle_all = move |_| {
        let everything = ids.clone();
        selected.update(|s| {
            if everything.iter().all(|id| s.contains(id)) {
                s.clear();
            } else {
                *s = everything;
            }
        });
    };
    view! {
        <Views counts filters=filters.clone() admin/>
        <FilterForm filters/>
        <form
            class="bulk"
            on:submit=move |ev| {
                ev.prevent_default();
                let order_ids = selected.get_untracked().join(",");
                selected.set(Vec::new());
                bulk.dispatch(BulkApprove {
                    order_ids,
                    comment: comment.get_untracked(),
                });
            }
        >
            <input
                name="comment"
                aria-label="Comment for the selected orders (optional)"
                placeholder="Comment (optional)"
                maxlength="1000"
                bind:value=comment
            />
            <button type="submit" disabled=move || selected.with(Vec::is_empty) || bulk.pending().get()>
                {move || format!("Approve selected ({})", selected.with(Vec::len))}
            </button>
        </form>
        {if empty {
            view! { <p class="empty">"Nothing here is waiting for approval."</p> }.into_any()
        } else {
            view! {
                <table class="list inbox">
                    <thead>
                        <tr>
                            <th scope="col">
                                <input
                                    type="checkbox"
                                    aria-label="Select all on this page"
                                    prop:checked=all_selected
                                    on:change=toggle_all
                                />
                            </th>
                            <th scope="col">"Order"</th>
                            <th scope="col">"Customer"</th>
                            <th scope="col">"Items"</th>
                            <th scope="col" class="num">"Total"</th>
                            <th scope="col">"Waiting"</th>
                            <th scope="col">"Due"</th>
                            <th scope="col">"Claimed by"</th>
                            <th scope="col">"Actions"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            }
                .into_any()
        }}
        <nav class="pages">{first} {next}</nav>
    }
}

/// The inbox's views with their counts.
#[component]
fn Views(counts: InboxCounts, filters: Filters, admin: bool) -> impl IntoView {
    let current = if filters.view.is_empty() {
        "all".to_string()
    } else {
        filters.view.clone()
    };
    let mut views = vec![
        ("all", "All", counts.all),
        ("mine", "Claimed by me", counts.mine),
        ("unclaimed", "Unclaimed", counts.unclaimed),
    ];
    if admin {
        views.push(("escalated", "Escalated", counts.escalated));
    }
    let links = views
        .into_iter()
        .map(|(view, label, n)| {
            let href = filters.href(Some(if view == "all" { "" } else { view }), "");
            let current = (current == view).then_some("page");
            view! {
                <a href=href aria-current=current>
                    {label}
                    " "
                    <span class="count">{n}</span>
                </a>
            }
        })
        .collect_view();
    let due_soon = (counts.due_soon > 0).then(|| {
        view! {
            <span class="due-soon">{format!("{} due within 4 hours", counts.due_soon)}</span>
        }
    });
    view! {
        <nav class="views" aria-label="Inbox views">
            {links}
            {due_soon}
        </nav>
    }
}

#[component]
fn FilterForm(filters: Filters) -> impl IntoView {
    let waited = [
        ("", "Any time"),
        ("60", "1 hour"),
        ("240", "4 hours"),
        ("1440", "1 day"),
    ]
    .map(|(value, label)| {
        view! {
            <option value=value selected=filters.waited == value>
                {label}
            </option>
        }
    })
    .collect_view();
    view! {
        <form method="get" action="/inbox" class="filter">
            <input type="hidden" name="view" value=filters.view.clone()/>
            <label>
                "Search" <input type="search" name="q" value=filters.q.clone() placeholder="Order id or customer"/>
            </label>
            <label>
                "Min total" <input name="min" inputmode="decimal" size="8" value=filters.min.clone()/>
            </label>
            <label>
                "Max total" <input name="max" inputmode="decimal" size="8" value=filters.max.clone()/>
            </label>
            <label>
                "Waiting longer than" <select name="waited">{waited}</select>
            </label>
            <label>
                "Sort" <select name="sort">
                    <option value="oldest" selected=filters.sort != "largest">
                        "Oldest first"
                    </option>
                    <option value="largest" selected=filters.sort == "largest">
                        "Largest first"
                    </option>
                </select>
            </label>
            <button type="submit">"Apply"</button>
        </form>
    }
}

/// One waiting order with its actions.
#[component]
fn Row(
    item: Waiting,
    me: String,
    actions: Actions,
    selected: RwSignal<Vec<String>>,
) -> impl IntoView {
    let Waiting {
        order,
        waiting,
        time_left,
        overdue,
    } = item;
    let id = order.id.clone();
    let checked = {
        let id = id.clone();
        move || selected.with(|s| s.contains(&id))
    };
    let toggle = {
        let id = id.clone();
        move |_| {
            selected.update(|s| match s.iter().position(|x| *x == id) {
                Some(i) => {
                    s.remove(i);
                }
                None => s.push(id.clone()),
            })
        }
    };
    let claimed = match &order.claimed_by {
        Some(by) if *by == me => "you".to_string(),
        Some(by) => by.clone(),
        None => "—".to_string(),
    };
    let select_label = format!("Select order {id}");
    let href = format!("/inbox/{id}");
    let reject_label = format!("Reject {id}");
    let (claim_id, approve_id, reject_id) = (id.clone(), id.clone(), id.clone());
    let escalated = order.stage == crate::model::Stage::Escalated;
    let stage_note = (order.stage != crate::model::Stage::First)
        .then(|| view! { <span class="stage">{order.stage.label()}</span> });
    view! {
        <tr class:overdue=overdue class:escalated=escalated>
            <td>
                <input
                    type="checkbox"
                    aria-label=select_label
                    prop:checked=checked
                    on:change=toggle
                />
            </td>
            <td class="id">
                <A href=href>{id}</A>
                " "
                {stage_note}
            </td>
            <td data-label="Customer">{order.customer_name.clone()}</td>
            <td data-label="Items">{items_text(&order.items)}</td>
            <td class="num" data-label="Total">
                {order.total.to_string()}
            </td>
            <td data-label="Waiting">{waiting}</td>
            <td data-label="Due">{time_left.unwrap_or_else(|| "—".into())}</td>
            <td data-label="Claimed by">{claimed}</td>
            <td>
                <div class="row-actions">
                <ClaimButtons
                    order_id=claim_id
                    claimed_by=order.claimed_by.clone()
                    me=me.clone()
                    actions
                />
                <ActionForm action=actions.decide attr:class="inline">
                    <input type="hidden" name="order_id" value=approve_id/>
                    <input type="hidden" name="stage" value=order.stage.as_str()/>
                    <button type="submit" name="decision" value="approve">
                        "Approve"
                    </button>
                </ActionForm>
                <details class="confirm">
                    <summary>"Reject…"</summary>
                    <ActionForm action=actions.decide>
                        <input type="hidden" name="order_id" value=reject_id/>
                        <input type="hidden" name="stage" value=order.stage.as_str()/>
                        <label>
                            "Reason" <textarea name="reason" rows="2" maxlength="1000" required></textarea>
                        </label>
                        <button type="submit" name="decision" value="reject" class="danger">
                            {reject_label}
                        </button>
                    </ActionForm>
                </details>
                </div>
            </td>
        </tr>
    }
}

/// Claim, unclaim or take over, as the order's claim allows.
#[component]
fn ClaimButtons(
    order_id: String,
    claimed_by: Option<String>,
    me: String,
    actions: Actions,
) -> impl IntoView {
    let (action, label) = match &claimed_by {
        None => ("claim", "Claim".to_string()),
        Some(by) if *by == me => ("unclaim", "Unclaim".to_string()),
        Some(by) => ("take_over", format!("Take over from {by}")),
    };
    view! {
        <ActionForm action=actions.claim attr:class="inline">
            <input type="hidden" name="order_id" value=order_id/>
            <button type="submit" name="action" value=action class="secondary">
                {label}
            </button>
        </ActionForm>
    }
}

/// Each order of the last bulk approval with its outcome.
#[component]
fn BulkResults(bulk: ServerAction<BulkApprove>) -> impl IntoView {
    move || match bulk.value().get() {
        Some(Ok(outcomes)) => {
            let approved = outcomes.iter().filter(|o| o.approved).count();
            let summary = format!("{approved} of {} approved.", outcomes.len());
            let rows = outcomes
                .into_iter()
                .map(
                    |BulkOutcome {
                         order_id,
                         approved,
                         message,
                     }| {
                        view! {
                            <li class:refused=!approved>
                                <strong>{order_id}</strong>
                                ": "
                                {message}
                            </li>
                        }
                    },
                )
                .collect_view();
            Some(
                view! {
                    <section class="notice" role="status" aria-label="Bulk approval">
                        <p>{summary}</p>
                        <ul class="outcomes">{rows}</ul>
                    </section>
                }
                .into_any(),
            )
        }
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    }
}

#[component]
pub fn ApprovalPage() -> impl IntoView {
    let params = use_params_map();
    let actions = Actions::new();
    let live = live_changes();
    let order = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                actions.version(),
                live.get(),
            )
        },
        |(id, ..)| calls::approval(id),
    );
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match order.await {
                    Ok(view) => view! { <Approval view actions/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Approval(view: ApprovalView, actions: Actions) -> impl IntoView {
    let ApprovalView {
        item,
        trail,
        me,
        admin,
        blocked,
    } = view;
    let Waiting {
        order,
        waiting,
        time_left,
        overdue,
    } = item;
    let awaiting = order.status == OrderStatus::AwaitingApproval;
    let reason_error = move || {
        actions
            .decide
            .value()
            .get()
            .and_then(Result::err)
            .and_then(|e| e.for_field("reason"))
            .map(|message| view! { <Alert message/> })
    };
    let claimed_by_other = order.claimed_by.as_ref().is_some_and(|by| *by != me);
    let stage = order.stage.as_str();
    let order_id = order.id.clone();
    let decide_id = order.id.clone();
    let form = match (&blocked, awaiting, claimed_by_other) {
        (Some(why), true, _) => Some(view! { <p class="blocked">{why.clone()}</p> }.into_any()),
        (None, true, true) => Some(
            view! {
                <p class="blocked">
                    {format!(
                        "{} is working on this order: take it over to decide it.",
                        order.claimed_by.clone().unwrap_or_default(),
                    )}
                </p>
            }
            .into_any(),
        ),
        (None, true, false) => Some(
            view! {
                <ActionForm action=actions.decide attr:class="decide">
                    <input type="hidden" name="order_id" value=decide_id/>
                    <input type="hidden" name="stage" value=stage/>
                    <label>
                        "Reason" <span class="muted">" (required to reject; the customer sees it)"</span>
                        <textarea name="reason" rows="3" maxlength="1000"></textarea>
                    </label>
                    {reason_error}
                    <label>
                        "Comment" <span class="muted">" (optional, for colleagues)"</span>
                        <textarea name="comment" rows="2" maxlength="1000"></textarea>
                    </label>
                    <div class="buttons">
                        <button
                            type="submit"
                            name="decision"
                            value="approve"
                            disabled=move || actions.decide.pending().get()
                        >
                            "Approve"
                        </button>
                        <button
                            type="submit"
                            name="decision"
                            value="reject"
                            class="danger"
                            disabled=move || actions.decide.pending().get()
                        >
                            "Reject"
                        </button>
                    </div>
                </ActionForm>
            }
            .into_any(),
        ),
        _ => None,
    };
    let claim = awaiting.then(|| {
        view! {
            <div class="claim">
                <ClaimButtons
                    order_id=order_id.clone()
                    claimed_by=order.claimed_by.clone()
                    me=me.clone()
                    actions
                />
                {admin.then(|| view! { <Reassign order_id=order_id.clone() actions/> })}
            </div>
        }
    });
    view! {
        <Title text=format!("Order {}", order.id)/>
        <h1>"Order " {order.id.clone()}</h1>
        <p>
            <A href="/inbox">"Back to inbox"</A>
        </p>
        {actions.outcome()}
        <dl class="facts">
            <dt>"Customer"</dt>
            <dd>{order.customer_name}</dd>
            <dt>"Email"</dt>
            <dd>{order.customer_email}</dd>
            <dt>"Status"</dt>
            <dd>{order.status.label()}</dd>
            <dt>"Placed"</dt>
            <dd>{short_time(&order.created_at)}</dd>
            {awaiting
                .then(|| {
                    view! {
                        <dt>"Awaiting"</dt>
                        <dd>{order.stage.label()}</dd>
                        <dt>"Waiting"</dt>
                        <dd>{waiting}</dd>
                        <dt>"Due"</dt>
                        <dd class:overdue=overdue>{time_left.unwrap_or_else(|| "—".into())}</dd>
                        <dt>"Claimed by"</dt>
                        <dd>{order.claimed_by.clone().unwrap_or_else(|| "nobody".into())}</dd>
                    }
                })}
            {order
                .first_approver
                .map(|first| {
                    view! {
                        <dt>"First approval"</dt>
                        <dd>{first}</dd>
                    }
                })}
        </dl>
        <ItemsTable items=order.items total=order.total/>
        {claim}
        {form}
        {order.decision.filter(|_| !awaiting).map(|decision| view! { <DecisionText decision/> })}
        <Trail trail/>
    }
}

/// Admins: give the order to someone.
#[component]
fn Reassign(order_id: String, actions: Actions) -> impl IntoView {
    view! {
        <ActionForm action=actions.claim attr:class="inline reassign">
            <input type="hidden" name="order_id" value=order_id/>
            <input type="hidden" name="action" value="reassign"/>
            <label>
                "Reassign to" <input name="assignee" required size="12" placeholder="username"/>
            </label>
            <button type="submit" class="secondary">
                "Reassign"
            </button>
        </ActionForm>
    }
}

/// Who did what to the order's approval, oldest first.
#[component]
pub fn Trail(trail: Vec<TrailEntry>) -> impl IntoView {
    let entries = trail
        .into_iter()
        .map(|entry| {
            let who = entry.actor.unwrap_or_else(|| "workflow".into());
            let what = match entry.action.as_str() {
                "waiting" => "asked for",
                "claimed" => "claimed it",
                "unclaimed" => "unclaimed it",
                "took_over" => "took it over",
                "reassigned" => "reassigned it",
                "approved" => "approved",
                "rejected" => "rejected",
                "escalated" => "escalated it to the admins",
                other => other,
            }
            .to_string();
            view! {
                <li>
                    <time>{short_time(&entry.at)}</time>
                    " "
                    <strong>{who}</strong>
                    " "
                    {what}
                    {entry.detail.map(|d| view! { <span class="detail">": " {d}</span> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <h2>"Decision trail"</h2>
        <ol class="trail">{entries}</ol>
    }
}

/// "Approved by ana on 2026-11-25 14:03 UTC." and the reason, if any.
#[component]
pub fn DecisionText(decision: Decision) -> impl IntoView {
    let verb = if decision.approved {
        "Approved"
    } else {
        "Rejected"
    };
    view! {
        <p class="decision">
            {format!("{verb} by {} on {}.", decision.by, short_time(&decision.at))}
        </p>
        {decision.reason.map(|reason| view! { <p class="reason">"Reason: " {reason}</p> })}
    }
}
