//! API credentials: access keys for the AWS-compatible API and bearer tokens for the REST API.
//! Admins create them for a user (the secret is shown once), see when each was last used, and
//! revoke them.

use crate::app::calls::{
    self, IssueAccessKey, IssueApiToken, KeyList, RevokeAccessKey, RevokeApiToken,
};
use crate::app::{short_time, Alert, Loading, Refused};
use crate::model::{AccessKey, ApiToken, NewAccessKey, NewApiToken};
use leptos::prelude::*;
use leptos_meta::Title;

/// The page's four actions.
#[derive(Clone, Copy)]
struct KeyActions {
    issue: ServerAction<IssueAccessKey>,
    revoke: ServerAction<RevokeAccessKey>,
    issue_token: ServerAction<IssueApiToken>,
    revoke_token: ServerAction<RevokeApiToken>,
}

#[component]
pub fn AccessKeys() -> impl IntoView {
    let actions = KeyActions {
        issue: ServerAction::new(),
        revoke: ServerAction::new(),
        issue_token: ServerAction::new(),
        revoke_token: ServerAction::new(),
    };
    let list = Resource::new(
        move || {
            actions.issue.version().get()
                + actions.revoke.version().get()
                + actions.issue_token.version().get()
                + actions.revoke_token.version().get()
        },
        |_| calls::access_keys(),
    );
    view! {
        <Title text="API access keys"/>
        <h1>"API access keys"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => view! { <KeyPage list actions/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What a revoke said, as a status line or an alert.
fn said(value: Option<Result<String, calls::AppError>>) -> Option<AnyView> {
    match value? {
        Ok(message) => Some(
            view! {
                <p class="notice" role="status">
                    {message}
                </p>
            }
            .into_any(),
        ),
        Err(e) => Some(view! { <Alert message=e.message/> }.into_any()),
    }
}

#[component]
fn KeyPage(list: KeyList, actions: KeyActions) -> impl IntoView {
    let KeyList {
        keys,
        tokens,
        usernames,
    } = list;
    let KeyActions {
        issue,
        revoke,
        issue_token,
        revoke_token,
    } = actions;
    let options = move || {
        usernames
            .iter()
            .map(|name| view! { <option value=name.clone()>{name.clone()}</option> })
            .collect_view()
    };
    let (key_users, token_users) = (options(), options());
    let issued = move || match issue.value().get() {
        Some(Ok(key)) => Some(view! { <Issued key/> }.into_any()),
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    let issued_token = move || match issue_token.value().get() {
        Some(Ok(token)) => Some(view! { <IssuedToken token/> }.into_any()),
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    let key_rows = if keys.is_empty() {
        view! { <p class="empty">"No access keys yet."</p> }.into_any()
    } else {
        view! { <KeyTable keys revoke/> }.into_any()
    };
    let token_rows = if tokens.is_empty() {
        view! { <p class="empty">"No API tokens yet."</p> }.into_any()
    } else {
        view! { <TokenTable tokens revoke=revoke_token/> }.into_any()
    };
    view! {
        <section aria-labelledby="access-keys">
            <h2 id="access-keys">"Access keys"</h2>
            <p class="muted">
                "Keys sign requests to the AWS Step Functions API at " <code>"/sfn"</code>
                " (AWS CLI, SDKs) with SigV4. A key acts as its user and is refused while that user is disabled."
            </p>
            <ActionForm action=issue attr:class="filter">
                <label>
                    "User" <select name="username" required>
                        <option value="">"Choose…"</option>
                        {key_users}
                    </select>
                </label>
                <button type="submit" disabled=move || issue.pending().get()>
                    "Create access key"
                </button>
            </ActionForm>
            {issued}
            {move || said(revoke.value().get())}
            {key_rows}
        </section>
        <section aria-labelledby="api-tokens">
            <h2 id="api-tokens">"API tokens"</h2>
            <p class="muted">
                "Tokens authenticate requests to the REST API at " <code>"/api"</code> " as "
                <code>"Authorization: Bearer …"</code>
                ". Only a hash of each is kept; a token is refused once it expires, is revoked, or its user is disabled."
            </p>
            <ActionForm action=issue_token attr:class="filter">
                <label>
                    "Token owner" <select name="username" required>
                        <option value="">"Choose…"</option>
                        {token_users}
                    </select>
                </label>
                <label>
                    "Expires in (days)"
                    <input
                        name="expires_in_days"
                        type="number"
                        min="1"
                        max=crate::model::MAX_TOKEN_DAYS.to_string()
                        size="5"
                        placeholder="never"
                    />
                </label>
                <button type="submit" disabled=move || issue_token.pending().get()>
                    "Create API token"
                </button>
            </ActionForm>
            {issued_token}
            {move || said(revoke_token.value().get())}
            {token_rows}
        </section>
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

/// The new token, shown once.
#[component]
fn IssuedToken(token: NewApiToken) -> impl IntoView {
    let expiry = match &token.expires_at {
        Some(at) => format!("It expires at {}. ", short_time(at)),
        None => "It does not expire. ".to_string(),
    };
    view! {
        <section class="notice" role="status" aria-label="New API token">
            <p>
                {format!("API token {} created for {}. {expiry}", token.id, token.username)}
                <strong>"Copy it now: it is not shown again."</strong>
            </p>
            <pre class="secret">{token.token}</pre>
        </section>
    }
}

/// A time as the tables show it; `never` if there is none.
fn when(at: Option<&str>) -> String {
    at.map(short_time).unwrap_or_else(|| "never".into())
}

/// A list of credentials under `headings`, with a last column of actions.
#[component]
fn CredentialTable(headings: &'static [&'static str], children: Children) -> impl IntoView {
    let headings = headings
        .iter()
        .map(|h| view! { <th scope="col">{*h}</th> })
        .collect_view();
    view! {
        <table class="list">
            <thead>
                <tr>
                    {headings}
                    <th scope="col">
                        <span class="sr-only">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{children()}</tbody>
        </table>
    }
}

/// A revoke form behind a disclosure, which asks for confirmation with or without the wasm
/// bundle.
#[component]
fn Confirm(children: Children) -> impl IntoView {
    view! {
        <details class="confirm">
            <summary>"Revoke"</summary>
            {children()}
        </details>
    }
}

#[component]
fn KeyTable(keys: Vec<AccessKey>, revoke: ServerAction<RevokeAccessKey>) -> impl IntoView {
    let rows = keys
        .into_iter()
        .map(|key| {
            view! {
                <tr>
                    <td>
                        <code>{key.id.clone()}</code>
                    </td>
                    <td>{key.username}</td>
                    <td>{short_time(&key.created_at)}</td>
                    <td>{when(key.last_used_at.as_deref())}</td>
                    <td>
                        <Confirm>
                            <ActionForm action=revoke>
                                <input type="hidden" name="id" value=key.id.clone()/>
                                <p>"Requests signed with this key will be refused."</p>
                                <button type="submit" class="danger">
                                    {format!("Revoke {}", key.id)}
                                </button>
                            </ActionForm>
                        </Confirm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let headings = &["Access key ID", "User", "Created", "Last used"];
    view! { <CredentialTable headings>{rows}</CredentialTable> }
}

#[component]
fn TokenTable(tokens: Vec<ApiToken>, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    let rows = tokens
        .into_iter()
        .map(|token| {
            let status = if token.owner_disabled {
                "user disabled"
            } else if token.expired {
                "expired"
            } else {
                "active"
            };
            view! {
                <tr>
                    <td>{token.id}</td>
                    <td>{token.username}</td>
                    <td>{short_time(&token.created_at)}</td>
                    <td>{when(token.last_used_at.as_deref())}</td>
                    <td>{when(token.expires_at.as_deref())}</td>
                    <td>{status}</td>
                    <td>
                        <Confirm>
                            <ActionForm action=revoke>
                                <input type="hidden" name="id" value=token.id.to_string()/>
                                <p>"Requests carrying this token will be refused."</p>
                                <button type="submit" class="danger">
                                    {format!("Revoke token {}", token.id)}
                                </button>
                            </ActionForm>
                        </Confirm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let headings = &["Token", "User", "Created", "Last used", "Expires", "Status"];
    view! { <CredentialTable headings>{rows}</CredentialTable> }
}
