//! Admin pages: every order, filterable by status, and one order's execution history.

use crate::app::calls::{self, AppError};
use crate::app::pages::inbox::DecisionText;
use crate::app::{short_time, ItemsTable, Loading, Refused};
use crate::model::{EventRow, OrderAudit, OrderPage, OrderStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn OrderList() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        (
            q.get("status").unwrap_or_default(),
            q.get("cursor").unwrap_or_default(),
        )
    };
    let page = Resource::new(filter, |(status, cursor)| calls::orders(status, cursor));
    view! {
        <Title text="Orders"/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let result: Result<OrderPage, AppError> = page.await;
                let (status, cursor) = filter();
                match result {
                    Ok(page) => view! { <OrderTable page status cursor/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OrderTable(page: OrderPage, status: String, cursor: String) -> impl IntoView {
    let options = OrderStatus::ALL
        .into_iter()
        .map(|st| {
            view! {
                <option value=st.as_str() selected=status == st.as_str()>
                    {st.label()}
                </option>
            }
        })
        .collect_view();
    let next = page.next.map(|next| {
        let href = format!("/admin/orders?status={status}&cursor={next}");
        view! { <A href=href>"Next page"</A> }
    });
    let first = (!cursor.is_empty()).then(|| {
        view! { <A href=format!("/admin/orders?status={status}")>"First page"</A> }
    });
    let rows = page
        .orders
        .into_iter()
        .map(|order| {
            view! {
                <tr>
                    <td>
                        <A href=format!("/admin/orders/{}", order.id)>{order.id.clone()}</A>
                    </td>
                    <td>{order.customer_name}</td>
                    <td class="num">{order.total.to_string()}</td>
                    <td>{order.status.label()}</td>
                    <td>{short_time(&order.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h1>"Orders"</h1>
        <form method="get" action="/admin/orders" class="filter">
            <label>
                "Status" <select name="status">
                    <option value="" selected=status.is_empty()>
                        "All"
                    </option>
                    {options}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <table class="list">
            <thead>
                <tr>
                    <th scope="col">"Order"</th>
                    <th scope="col">"Customer"</th>
                    <th scope="col" class="num">"Total"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Created"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <nav class="pages">{first} {next}</nav>
    }
}

#[component]
pub fn OrderDetail() -> impl IntoView {
    let params = use_params_map();
    let audit = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        calls::load_audit,
    );
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match audit.await {
                    Ok(audit) => view! { <AuditView audit/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AuditView(audit: OrderAudit) -> impl IntoView {
    let OrderAudit {
        order,
        execution_status,
        events,
    } = audit;
    let path = state_path(&events).join(" → ");
    view! {
        <Title text=format!("Order {}", order.id)/>
        <h1>"Order " {order.id.clone()}</h1>
        <dl class="facts">
            <dt>"Customer"</dt>
            <dd>{format!("{} <{}>", order.customer_name, order.customer_email)}</dd>
            <dt>"Status"</dt>
            <dd>{order.status.label()}</dd>
            <dt>"Placed"</dt>
            <dd>{short_time(&order.created_at)}</dd>
        </dl>
        <ItemsTable items=order.items total=order.total/>
        {order.decision.map(|decision| view! { <DecisionText decision/> })}
        <h2>"Execution history"</h2>
        <dl class="facts">
            <dt>"Execution"</dt>
            <dd>
                <code>{order.execution_id}</code>
            </dd>
            <dt>"Execution status"</dt>
            <dd>{execution_status}</dd>
            <dt>"Path"</dt>
            <dd>{path}</dd>
        </dl>
        <table class="events">
            <thead>
                <tr>
                    <th scope="col" class="num">"ID"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Time"</th>
                    <th scope="col">"Details"</th>
                </tr>
            </thead>
            <tbody>
                {events
                    .into_iter()
                    .map(|event| {
                        view! {
                            <tr>
                                <td class="num">{event.id}</td>
                                <td>{event.kind}</td>
                                <td>{event.timestamp}</td>
                                <td>
                                    <code class="details">{event.details}</code>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// The states the execution entered, in order, from their `…StateEntered` events.
fn state_path(events: &[EventRow]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .filter_map(|e| {
            let details: serde_json::Value = serde_json::from_str(&e.details).ok()?;
            Some(details.get("name")?.as_str()?.to_string())
        })
        .collect()
}
