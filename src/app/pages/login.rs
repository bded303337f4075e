//! Sign-in for approvers and admins.

use crate::app::{Alert, Session};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let error = move || {
        session
            .login
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| view! { <Alert message=e.message/> })
    };
    view! {
        <Title text="Sign in"/>
        <h1>"Sign in"</h1>
        <p class="muted">"For approvers and administrators. Customers need no account."</p>
        <ActionForm action=session.login attr:class="card narrow">
            <input type="hidden" name="next" value=next/>
            <label>
                "Username" <input name="username" autocomplete="username" required autofocus/>
            </label>
            <label>
                "Password"
                <input
                    type="password"
                    name="password"
                    autocomplete="current-password"
                    required
                />
            </label>
            {error}
            <button type="submit" disabled=move || session.login.pending().get()>
                "Sign in"
            </button>
        </ActionForm>
    }
}
