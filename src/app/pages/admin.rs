//! Admin pages: every order, filterable, and one order's whole story: its items, its
//! approval trail and its execution.

use crate::app::calls::{self, AppError, StopExecution};
use crate::app::pages::executions::ExecutionView;
use crate::app::pages::inbox::{DecisionText, Trail};
use crate::app::{encode, live_changes, short_time, ItemsTable, Loading, Refused};
use crate::model::{OrderAudit, OrderPage, OrderQuery, OrderStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The filters of the order list, from the page's URL.
fn order_query(q: &leptos_router::params::ParamsMap) -> OrderQuery {
    let get = |k: &str| q.get(k).unwrap_or_default();
    OrderQuery {
        status: get("status"),
        from: get("from"),
        to: get("to"),
        min: get("min"),
        max: get("max"),
        approver: get("approver"),
        q: get("q"),
    }
}

/// `query` as a query string (without the `?`).
fn query_string(query: &OrderQuery) -> String {
    [
        ("status", &query.status),
        ("from", &query.from),
        ("to", &query.to),
        ("min", &query.min),
        ("max", &query.max),
        ("approver", &query.approver),
        ("q", &query.q),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

#[component]
pub fn OrderList() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        (order_query(&q), q.get("cursor").unwrap_or_default())
    };
    let live = live_changes();
    let page = Resource::new(
        move || (filter(), live.get()),
        |((query, cursor), _)| calls::orders(query, cursor),
    );
    view! {
        <Title text="Orders"/>
        <h1>"Orders"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let result: Result<OrderPage, AppError> = page.await;
                let (query, cursor) = filter();
                match result {
                    Ok(page) => view! { <OrderTable page query cursor/> }.into_any(),
                    Err(error) => view! {
                        <OrderFilters query/>
                        <Refused error/>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OrderFilters(query: OrderQuery) -> impl IntoView {
    let options = OrderStatus::ALL
        .into_iter()
        .map(|st| {
            view! {
                <option value=st.as_str() selected=query.status == st.as_str()>
                    {st.label()}
                </option>
            }
        })
        .collect_view();
    view! {
        <form method="get" action="/admin/orders" class="filter">
            <label>
                "Search" <input type="search" name="q" value=query.q.clone() placeholder="Order id or customer"/>
            </label>
            <label>
                "Status" <select name="status">
                    <option value="" selected=query.status.is_empty()>
                        "All"
                    </option>
                    {options}
                </select>
            </label>
            <label>
                "From" <input type="date" name="from" value=query.from.clone()/>
            </label>
            <label>
                "To" <input type="date" name="to" value=query.to.clone()/>
            </label>
            <label>
                "Min total" <input name="min" inputmode="decimal" size="8" value=query.min.clone()/>
            </label>
            <label>
                "Max total" <input name="max" inputmode="decimal" size="8" value=query.max.clone()/>
            </label>
            <label>
                "Decided by" <input name="approver" size="10" value=query.approver.clone()/>
            </label>
            <button type="submit">"Filter"</button>
        </form>
    }
}

#[component]
fn OrderTable(page: OrderPage, query: OrderQuery, cursor: String) -> impl IntoView {
    let qs = query_string(&query);
    let join = if qs.is_empty() { "" } else { "&" };
    let next = page.next.map(|next| {
        let href = format!("/admin/orders?{qs}{join}cursor={}", encode(&next));
        view! { <A href=href>"Next page"</A> }
    });
    let first = (!cursor.is_empty()).then(|| {
        view! { <A href=format!("/admin/orders?{qs}")>"First page"</A> }
    });
    let csv = format!("/admin/orders.csv?{qs}");
    let empty = page.orders.is_empty();
    let rows = page
        .orders
        .into_iter()
        .map(|order| {
            let decided = order
                .decision
                .as_ref()
                .map(|d| d.by.clone())
                .unwrap_or_default();
            view! {
                <tr>
                    <td class="id">
                        <A href=format!("/admin/orders/{}", order.id)>{order.id.clone()}</A>
                    </td>
                    <td data-label="Customer">{order.customer_name}</td>
                    <td class="num" data-label="Total">
                        {order.total.to_string()}
                    </td>
                    <td data-label="Status">{order.status.label()}</td>
                    <td data-label="Decided by">{decided}</td>
                    <td data-label="Placed">{short_time(&order.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <OrderFilters query/>
        <p>
            // A plain link: the browser downloads the file.
            <a href=csv rel="external" download="orders.csv">
                "Export these orders as CSV"
            </a>
        </p>
        {if empty {
            view! { <p class="empty">"No orders match."</p> }.into_any()
        } else {
            view! {
                <table class="list">
                    <thead>
                        <tr>
                            <th scope="col">"Order"</th>
                            <th scope="col">"Customer"</th>
                            <th scope="col" class="num">"Total"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Decided by"</th>
                            <th scope="col">"Placed"</th>
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
