//! Access keys for the AWS-compatible API: admins create them for a user (the secret is shown
//! once) and revoke them.

use crate::app::calls::{self, IssueAccessKey, KeyList, RevokeAccessKey};
use crate::app::{short_time, Alert, Loading, Refused};
use crate::model::{AccessKey, NewAccessKey};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AccessKeys() -> impl IntoView {
    let issue = ServerAction::<IssueAccessKey>::new();
    let revoke = ServerAction::<RevokeAccessKey>::new();
    let list = Resource::new(
        move || (issue.version().get(), revoke.version().get()),
        |_| calls::access_keys(),
    );
    view! {
        <Title text="API access keys"/>
        <h1>"API access keys"</h1>
        <p class="muted">
            "Keys sign requests to the AWS Step Functions API at " <code>"/sfn"</code>
            " (AWS CLI, SDKs) with SigV4. Every key has the whole API; each belongs to a user, so you know whose to revoke."
        </p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => view! { <KeyPage list issue revoke/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn KeyPage(
    list: KeyList,
    issue: ServerAction<IssueAccessKey>,
    revoke: ServerAction<RevokeAccessKey>,
) -> impl IntoView {
    let KeyList { keys, usernames } = list;
    let users = usernames
        .into_iter()
        .map(|name| view! { <option value=name.clone()>{name.clone()}</option> })
        .collect_view();
    let issued = move || match issue.value().get() {
        Some(Ok(key)) => Some(view! { <Issued key/> }.into_any()),
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    let revoked = move || match revoke.value().get() {
        Some(Ok(message)) => Some(
            view! {
                <p class="notice" role="status">
                    {message}
                </p>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    let rows = if keys.is_empty() {
        view! { <p class="empty">"No access keys yet."</p> }.into_any()
    } else {
        view! { <KeyTable keys revoke/> }.into_any()
    };
    view! {
        <ActionForm action=issue attr:class="filter">
            <label>
                "User" <select name="username" required>
                    <option value="">"Choose…"</option>
                    {users}
                </select>
            </label>
            <button type="submit" disabled=move || issue.pending().get()>
                "Create access key"
            </button>
        </ActionForm>
        {issued}
        {revoked}
        {rows}
    }
}

/// The new key, in the form a shell can `export`.
#[component]
fn Issued(key: NewAccessKey) -> impl IntoView {
    let lines = format!(
        "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}",
        key.id, key.secret
    );
    view! {
        <section class="notice" role="status" aria-label="New access key">
            <p>
                {format!("Access key {} created for {}. ", key.id, key.username)}
                <strong>"Copy the secret now: it is not shown again."</strong>
            </p>
            <pre class="secret">{lines}</pre>
        </section>
    }
}

#[component]
fn KeyTable(keys: Vec<AccessKey>, revoke: ServerAction<RevokeAccessKey>) -> impl IntoView {
    let rows = keys
        .into_iter()
        .map(|key| {
            let last_used = key
                .last_used_at
                .as_deref()
                .map(short_time)
                .unwrap_or_else(|| "never".into());
            view! {
                <tr>
                    <td>
                        <code>{key.id.clone()}</code>
                    </td>
                    <td>{key.username}</td>
                    <td>{short_time(&key.created_at)}</td>
                    <td>{last_used}</td>
                    <td>
                        // A disclosure asks for confirmation, with or without the wasm bundle.
                        <details class="confirm">
                            <summary>"Revoke"</summary>
                            <ActionForm action=revoke>
                                <input type="hidden" name="id" value=key.id.clone()/>
                                <p>"Requests signed with this key will be refused."</p>
                                <button type="submit" class="danger">
                                    {format!("Revoke {}", key.id)}
                                </button>
                            </ActionForm>
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <thead>
                <tr>
                    <th scope="col">"Access key ID"</th>
                    <th scope="col">"User"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Last used"</th>
                    <th scope="col">
                        <span class="sr-only">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
