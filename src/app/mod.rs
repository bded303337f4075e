//! The web app: storefront, customer order page, sign-in, approver inbox and admin pages.
//! Rendered on the server and hydrated in the browser; data comes through the server
//! functions in `calls`, each of which checks who is calling.

pub mod calls;
mod pages;

use crate::model::{CurrentUser, OrderLine};
use calls::{AppError, ErrorKind};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Redirect, Route, Router, Routes, A};
use leptos_router::hooks::use_location;
use leptos_router::{path, SsrMode};

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Sign-in and sign-out, shared so the header notices either.
#[derive(Clone, Copy)]
pub struct Session {
    pub login: ServerAction<calls::Login>,
    pub logout: ServerAction<calls::Logout>,
    pub user: Resource<Result<Option<CurrentUser>, calls::AppError>>,
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let login = ServerAction::<calls::Login>::new();
    let logout = ServerAction::<calls::Logout>::new();
    let user = Resource::new(
        move || (login.version().get(), logout.version().get()),
        |_| calls::signed_in_user(),
    );
    provide_context(Session {
        login,
        logout,
        user,
    });
    // Effects run only in the browser, once the page is live: tests and styles can tell.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Stylesheet id="leptos" href="/pkg/orderflow.css"/>
        <Title formatter=|page: String| format!("{page} · orderflow")/>
        <Router>
            <Header/>
            <main data-hydrated=move || hydrated.get().then_some("true")>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=pages::shop::Storefront/>
                    <Route
                        path=path!("/orders/:key")
                        view=pages::order::CustomerOrderPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/login") view=pages::login::LoginPage/>
                    <Route path=path!("/inbox") view=pages::inbox::Inbox ssr=SsrMode::Async/>
                    <Route
                        path=path!("/inbox/:id")
                        view=pages::inbox::ApprovalPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/orders")
                        view=pages::admin::OrderList
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/orders/:id")
                        view=pages::admin::OrderDetail
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/executions")
                        view=pages::executions::ExecutionListPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/executions/:id")
                        view=pages::executions::ExecutionPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin")
                        view=pages::dashboard::DashboardPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/users")
                        view=pages::users::Users
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/audit")
                        view=pages::users::AuditLog
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/keys")
                        view=pages::keys::AccessKeys
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Header() -> impl IntoView {
    let session = expect_context::<Session>();
    view! {
        <header class="site">
            <A href="/" attr:class="brand">
                "orderflow"
            </A>
            <nav>
                <A href="/">"Shop"</A>
                <Transition>
                    {move || Suspend::new(async move {
                        match session.user.await.ok().flatten() {
                            Some(user) => {
                                view! {
                                    <A href="/inbox">"Inbox"</A>
                                    <Show when=move || user.role.is_admin()>
                                        <A href="/admin">"Dashboard"</A>
                                        <A href="/admin/orders">"Orders"</A>
                                        <A href="/admin/executions">"Executions"</A>
                                        <A href="/admin/users">"Users"</A>
                                        <A href="/admin/keys">"API keys"</A>
                                    </Show>
                                    <span class="who">{user.username.clone()}</span>
                                    <ActionForm action=session.logout attr:class="inline">
                                        <button type="submit" class="link">
                                            "Sign out"
                                        </button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            None => view! { <A href="/login">"Sign in"</A> }.into_any(),
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <h1>"Page not found"</h1>
        <p>
            <A href="/">"Back to the shop"</A>
        </p>
    }
}

/// An error message for the page, announced to screen readers.
#[component]
pub fn Alert(message: String) -> impl IntoView {
    view! {
        <p class="alert" role="alert">
            {message}
        </p>
    }
}

/// What a page shows when its data was refused: signing in, or the reason.
#[component]
pub fn Refused(error: AppError) -> impl IntoView {
    match error.kind {
        ErrorKind::SignInRequired => {
            let path = use_location().pathname.get_untracked();
            view! { <Redirect path=format!("/login?next={path}")/> }.into_any()
        }
        ErrorKind::NotFound => view! {
            <Title text="Not found"/>
            <h1>{error.message}</h1>
        }
        .into_any(),
        _ => view! { <Alert message=error.message/> }.into_any(),
    }
}

/// A signal that changes whenever the server reports a change on `/live` (an order arrived,
/// was claimed or decided), so a page's resources can refetch. It stays put on the server and
/// until the page is hydrated.
pub fn live_changes() -> ReadSignal<u32> {
    let (tick, set_tick) = signal(0u32);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::{closure::Closure, JsCast};
        let Ok(source) = web_sys::EventSource::new("/live") else {
            return;
        };
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            set_tick.try_update(|n| *n += 1);
        });
        source.set_onmessage(Some(on_change.as_ref().unchecked_ref()));
        let live = send_wrapper::SendWrapper::new((source, on_change));
        on_cleanup(move || live.0.close());
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_tick;
    tick
}

/// Shown while a page's data loads.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}

/// An order's lines with their prices, and the total.
#[component]
pub fn ItemsTable(items: Vec<OrderLine>, total: crate::model::Cents) -> impl IntoView {
    view! {
        <table class="items">
            <thead>
                <tr>
                    <th scope="col">"Item"</th>
                    <th scope="col" class="num">"Quantity"</th>
                    <th scope="col" class="num">"Price"</th>
                </tr>
            </thead>
            <tbody>
                {items
                    .into_iter()
                    .map(|line| {
                        view! {
                            <tr>
                                <td>{line.name}</td>
                                <td class="num">{line.quantity}</td>
                                <td class="num">
                                    {line.unit_price.map(|p| p.to_string()).unwrap_or_default()}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
            <tfoot>
                <tr>
                    <th scope="row" colspan="2">"Total"</th>
                    <td class="num">{total.to_string()}</td>
                </tr>
            </tfoot>
        </table>
    }
}

/// "2 × Notebook, 1 × Pen set" — an order's lines in one line of text.
pub fn items_text(items: &[OrderLine]) -> String {
    items
        .iter()
        .map(|l| {
            if l.quantity == 1 && l.sku.is_none() {
                l.name.clone()
            } else {
                format!("{} × {}", l.quantity, l.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RFC 3339 timestamp as "2026-11-25 14:03 UTC".
pub fn short_time(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(head) if rfc3339.ends_with('Z') => format!("{} UTC", head.replace('T', " ")),
        _ => rfc3339.to_string(),
    }
}

/// Percent-encodes a value for a URL's query string or path segment.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
