//! The storefront: pick quantities, see the total, place the order. Prices shown here are for
//! display; the server computes the real total.

use crate::app::calls::{self, AppError, PlaceOrder};
use crate::app::{Alert, Loading};
use crate::model::{Cents, Product};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Storefront() -> impl IntoView {
    let products = Resource::new(|| (), |_| calls::catalogue());
    view! {
        <Title text="Order supplies"/>
        <h1>"Order supplies"</h1>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match products.await {
                    Ok(products) => view! { <OrderForm products/> }.into_any(),
                    Err(e) => view! { <Alert message=e.message/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OrderForm(products: Vec<Product>) -> impl IntoView {
    let place = ServerAction::<PlaceOrder>::new();
    let quantities: Vec<(Cents, RwSignal<u32>)> = products
        .iter()
        .map(|p| (p.price, RwSignal::new(0)))
        .collect();
    let total = {
        let quantities = quantities.clone();
        move || {
            Cents(
                quantities
                    .iter()
                    .map(|(price, q)| price.0 * i64::from(q.get()))
                    .sum(),
            )
        }
    };
    let failure = move || place.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| {
        move || {
            failure()
                .and_then(|e: AppError| e.for_field(field))
                .map(|message| view! { <Alert message/> })
        }
    };
    let other_error = move || {
        failure()
            .filter(|e| e.field.is_none())
            .map(|e| view! { <Alert message=e.message/> })
    };

    let rows = products
        .into_iter()
        .zip(quantities)
        .map(|(product, (_, quantity))| {
            let input_name = format!("quantities[{}]", product.sku);
            let label = format!("{} quantity", product.name);
            view! {
                <li class="product">
                    <span class="name">{product.name}</span>
                    <span class="price">{product.price.to_string()}</span>
                    <input
                        type="number"
                        name=input_name
                        aria-label=label
                        min="0"
                        max="1000"
                        step="1"
                        value="0"
                        inputmode="numeric"
                        on:input=move |ev| {
                            quantity.set(event_target_value(&ev).trim().parse().unwrap_or(0))
                        }
                    />
                </li>
            }
        })
        .collect_view();

    view! {
        <ActionForm action=place attr:class="order-form">
            <ul class="catalogue">{rows}</ul>
            {field_error("quantities")}
            <p class="total" aria-live="polite">
                "Total: "
                <strong>{move || total().to_string()}</strong>
            </p>
            <div class="fields">
                <label>
                    "Your name"
                    <input name="customer_name" autocomplete="name" maxlength="100" required/>
                </label>
                {field_error("customer_name")}
                <label>
                    "Email"
                    <input type="email" name="customer_email" autocomplete="email" required/>
                </label>
                {field_error("customer_email")}
            </div>
            {other_error}
            <button type="submit" disabled=move || place.pending().get()>
                "Place order"
            </button>
        </ActionForm>
    }
}
