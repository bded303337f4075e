//! Admin pages: every order, filterable, and one order's whole story: its items, its
//! approval trail and its execution.

use crate::app::calls::{self, AppError, StopExecution};
use crate::app::pages::executions::ExecutionView;
use crate::app::pages::inbox::{DecisionText, Trail};
use crate::app::{live_changes, short_time, ItemsTable, Loading, Refused};
use crate::model::{OrderAudit, OrderPage, OrderStatus};
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
    let stop = ServerAction::<StopExecution>::new();
    let live = live_changes();
    let audit = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                stop.version().get(),
                live.get(),
            )
        },
        |(id, ..)| calls::load_audit(id),
    );
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match audit.await {
                    Ok(audit) => view! { <AuditView audit stop/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditView(audit: OrderAudit, stop: ServerAction<StopExecution>) -> impl IntoView {
    let OrderAudit {
        order,
        trail,
        execution,
    } = audit;
    let waiting = (order.status == OrderStatus::AwaitingApproval).then(|| {
        view! {
            <dt>"Awaiting"</dt>
            <dd>{order.stage.label()}</dd>
            <dt>"Claimed by"</dt>
            <dd>{order.claimed_by.clone().unwrap_or_else(|| "nobody".into())}</dd>
            <dt>"Due"</dt>
            <dd>{order.due_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
        }
    });
    view! {
        <Title text=format!("Order {}", order.id)/>
        <h1>"Order " {order.id.clone()}</h1>
        <dl class="facts">
            <dt>"Customer"</dt>
            <dd>{format!("{} <{}>", order.customer_name, order.customer_email)}</dd>
            <dt>"Status"</dt>
            <dd>
                <span class=format!("badge {}", order.status.as_str())>{order.status.label()}</span>
            </dd>
            <dt>"Placed"</dt>
            <dd>{short_time(&order.created_at)}</dd>
            {waiting}
        </dl>
        <ItemsTable items=order.items total=order.total/>
        {order.decision.map(|decision| view! { <DecisionText decision/> })}
        <Trail trail/>
        <h2>"Execution history"</h2>
        {match execution {
            Some(detail) => view! { <ExecutionView detail stop/> }.into_any(),
            None => view! { <p class="muted">"The execution is missing."</p> }.into_any(),
        }}
    }
}
