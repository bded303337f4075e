//! The approver's inbox: orders waiting for a decision, oldest first, and the page where one
//! is approved or rejected.

use crate::app::calls::{self, Decide, Waiting};
use crate::app::{items_text, short_time, Alert, ItemsTable, Loading, Refused};
use crate::model::{Decision, OrderStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

#[component]
pub fn Inbox() -> impl IntoView {
    let waiting = Resource::new(|| (), |_| calls::inbox());
    view! {
        <Title text="Approval inbox"/>
        <h1>"Approval inbox"</h1>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match waiting.await {
                    Ok(rows) if rows.is_empty() => {
                        view! { <p class="empty">"Nothing is waiting for approval."</p> }.into_any()
                    }
                    Ok(rows) => view! { <InboxTable rows/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn InboxTable(rows: Vec<Waiting>) -> impl IntoView {
    view! {
        <table class="list">
            <thead>
                <tr>
                    <th scope="col">"Order"</th>
                    <th scope="col">"Customer"</th>
                    <th scope="col">"Items"</th>
                    <th scope="col" class="num">"Total"</th>
                    <th scope="col">"Waiting"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|Waiting { order, waiting }| {
                        view! {
                            <tr>
                                <td>
                                    <A href=format!("/inbox/{}", order.id)>{order.id.clone()}</A>
                                </td>
                                <td>{order.customer_name}</td>
                                <td>{items_text(&order.items)}</td>
                                <td class="num">{order.total.to_string()}</td>
                                <td>{waiting}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn ApprovalPage() -> impl IntoView {
    let params = use_params_map();
    let decide = ServerAction::<Decide>::new();
    let order = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                decide.version().get(),
            )
        },
        |(id, _)| calls::approval(id),
    );
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match order.await {
                    Ok(waiting) => view! { <Approval waiting decide/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Approval(waiting: Waiting, decide: ServerAction<Decide>) -> impl IntoView {
    let Waiting { order, waiting } = waiting;
    let awaiting = order.status == OrderStatus::AwaitingApproval;
    let outcome = move || match decide.value().get() {
        Some(Ok(message)) => Some(
            view! {
                <p class="notice" role="status">
                    {message}
                </p>
                <p>
                    <A href="/inbox">"Back to inbox"</A>
                </p>
            }
            .into_any(),
        ),
        Some(Err(e)) if e.field.is_none() => Some(view! { <Alert message=e.message/> }.into_any()),
        _ => None,
    };
    let reason_error = move || {
        decide
            .value()
            .get()
            .and_then(Result::err)
            .and_then(|e| e.for_field("reason"))
            .map(|message| view! { <Alert message/> })
    };
    let order_id = order.id.clone();
    let form = awaiting.then(move || {
        view! {
            <ActionForm action=decide attr:class="decide">
                <input type="hidden" name="order_id" value=order_id/>
                <label>
                    "Reason" <span class="muted">" (required to reject)"</span>
                    <textarea name="reason" rows="3" maxlength="1000"></textarea>
                </label>
                {reason_error}
                <div class="buttons">
                    <button
                        type="submit"
                        name="decision"
                        value="approve"
                        disabled=move || decide.pending().get()
                    >
                        "Approve"
                    </button>
                    <button
                        type="submit"
                        name="decision"
                        value="reject"
                        class="danger"
                        disabled=move || decide.pending().get()
                    >
                        "Reject"
                    </button>
                </div>
            </ActionForm>
        }
    });
    view! {
        <Title text=format!("Order {}", order.id)/>
        <h1>"Order " {order.id.clone()}</h1>
        {outcome}
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
                        <dt>"Waiting"</dt>
                        <dd>{waiting}</dd>
                    }
                })}
        </dl>
        <ItemsTable items=order.items total=order.total/>
        {form}
        {order.decision.map(|decision| view! { <DecisionText decision/> })}
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
