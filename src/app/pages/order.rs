//! The customer's order page, reached through the unguessable link they get when ordering.
//! It checks for news every two seconds until the order is final.

use crate::app::calls;
use crate::app::{short_time, ItemsTable, Loading, Refused};
use crate::model::CustomerOrder;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

#[component]
pub fn CustomerOrderPage() -> impl IntoView {
    let params = use_params_map();
    let tick = RwSignal::new(0u32);
    let order = Resource::new(
        move || (params.read().get("key").unwrap_or_default(), tick.get()),
        |(key, _)| calls::find_customer_order(key),
    );
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let done = order
                    .get_untracked()
                    .is_some_and(|o| o.map(|o| o.status.is_final()).unwrap_or(true));
                if !done {
                    tick.try_update(|t| *t += 1);
                }
            },
            REFRESH,
        )
        .ok();
        on_cleanup(move || {
            if let Some(handle) = handle {
                handle.clear();
            }
        });
    });
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match order.await {
                    Ok(order) => view! { <OrderView order/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OrderView(order: CustomerOrder) -> impl IntoView {
    let status = order.status;
    view! {
        <Title text=format!("Order {}", order.id)/>
        <h1>"Order " {order.id}</h1>
        <p class="status-line">
            "Status: "
            <strong role="status" class=format!("badge {}", status.as_str())>
                {status.label()}
            </strong>
        </p>
        {order.rejection_reason.map(|reason| view! { <p class="reason">"Reason: " {reason}</p> })}
        {(!status.is_final())
            .then(|| {
                view! {
                    <p class="muted">
                        "This page updates itself; you can also come back to this link later."
                    </p>
                }
            })}
        <ItemsTable items=order.items total=order.total/>
        <p class="muted">
            "Placed by " {order.customer_name} " on " {short_time(&order.created_at)} "."
        </p>
    }
}
