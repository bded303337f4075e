//! The console's accounts: add users (with a generated password, shown once), change their
//! role, e-mail and approval limit, reset passwords, disable and enable them (a new role, a
//! reset or a disable signs them out everywhere); and the audit log of every admin action.

use crate::app::calls::{self, AddUser, AppError, ResetPassword, SetUserDisabled, UpdateUser};
use crate::app::{short_time, Alert, Loading, Refused};
use crate::model::{AuditEntry, Role, UserRow};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// What the last action on the page said, with a password to hand over if it made one.
type Said = Result<(String, Option<String>), AppError>;

#[derive(Clone, Copy)]
struct UserActions {
    add: ServerAction<AddUser>,
    update: ServerAction<UpdateUser>,
    reset: ServerAction<ResetPassword>,
    disable: ServerAction<SetUserDisabled>,
    latest: RwSignal<Option<Said>>,
}

impl UserActions {
    fn new() -> UserActions {
        let actions = UserActions {
            add: ServerAction::new(),
            update: ServerAction::new(),
            reset: ServerAction::new(),
            disable: ServerAction::new(),
            latest: RwSignal::new(None),
        };
        let latest = actions.latest;
        Effect::new(move |_| {
            if let Some(r) = actions.add.value().get() {
                latest.set(Some(
                    r.map(|(who, p)| (format!("Account {who} created."), Some(p))),
                ));
            }
        });
        Effect::new(move |_| {
            if let Some(r) = actions.reset.value().get() {
                latest.set(Some(r.map(|p| ("Password reset.".to_string(), Some(p)))));
            }
        });
        Effect::new(move |_| {
            if let Some(r) = actions.update.value().get() {
                latest.set(Some(r.map(|m| (m, None))));
            }
        });
        Effect::new(move |_| {
            if let Some(r) = actions.disable.value().get() {
                latest.set(Some(r.map(|m| (m, None))));
            }
        });
        actions
    }

    fn version(self) -> usize {
        self.add.version().get()
            + self.update.version().get()
            + self.reset.version().get()
            + self.disable.version().get()
    }
}

#[component]
pub fn Users() -> impl IntoView {
    let actions = UserActions::new();
    let users = Resource::new(move || actions.version(), |_| calls::users());
    let said = move || match actions.latest.get() {
        Some(Ok((message, password))) => Some(
            view! {
                <section class="notice" role="status" aria-label="Result">
                    <p>{message}</p>
                    {password
                        .map(|p| {
                            view! {
                                <p>
                                    "New password (shown once; hand it over safely): "
                                    <code class="secret">{p}</code>
                                </p>
                            }
                        })}
                </section>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <p>
            <A href="/admin/audit">"Audit log of admin actions"</A>
        </p>
        {said}
        <ActionForm action=actions.add attr:class="filter">
            <label>
                "Username" <input name="username" required maxlength="64" autocomplete="off"/>
            </label>
            <label>
                "Role" <RoleSelect role=Role::Approver/>
            </label>
            <label>
                "E-mail" <input type="email" name="email" maxlength="254"/>
            </label>
            <label>
                "Approval limit" <input name="approval_limit" inputmode="decimal" size="8" placeholder="none"/>
            </label>
            <button type="submit">"Add user"</button>
        </ActionForm>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(users) => view! { <UserTable users actions/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RoleSelect(role: Role) -> impl IntoView {
    view! {
        <select name="role">
            <option value="approver" selected=role == Role::Approver>
                "approver"
            </option>
            <option value="admin" selected=role == Role::Admin>
                "admin"
            </option>
        </select>
    }
}

#[component]
fn UserTable(users: Vec<UserRow>, actions: UserActions) -> impl IntoView {
    let rows = users
        .into_iter()
        .map(|u| {
            let name = u.username.clone();
            let (edit_name, reset_name, toggle_name) = (name.clone(), name.clone(), name.clone());
            let save_label = format!("Save {name}");
            let reset_label = format!("Reset password of {name}");
            let limit = u.approval_limit.map(|l| l.to_string());
            let limit_value = u
                .approval_limit
                .map(|l| format!("{}.{:02}", l.0 / 100, l.0 % 100))
                .unwrap_or_default();
            let (toggle_label, disable, toggle_note) = if u.disabled {
                (
                    format!("Enable {name}"),
                    "false",
                    "They sign in afresh; their API tokens and access keys work again.",
                )
            } else {
                (
                    format!("Disable {name}"),
                    "true",
                    "They are signed out everywhere; their API tokens and access keys are refused.",
                )
            };
            view! {
                <tr class:disabled=u.disabled>
                    <td class="id">{name}</td>
                    <td data-label="Role">{u.role.as_str()}</td>
                    <td data-label="E-mail">{u.email.clone().unwrap_or_else(|| "—".into())}</td>
                    <td data-label="Approval limit">{limit.unwrap_or_else(|| "none".into())}</td>
                    <td data-label="Status">{if u.disabled { "disabled" } else { "active" }}</td>
                    <td data-label="Since">{short_time(&u.created_at)}</td>
                    <td>
                        <div class="row-actions">
                            <details class="confirm">
                                <summary>"Edit"</summary>
                                <ActionForm action=actions.update>
                                    <input type="hidden" name="username" value=edit_name/>
                                    <label>
                                        "Role" <RoleSelect role=u.role/>
                                    </label>
                                    <p class="muted">"A new role signs them out everywhere."</p>
                                    <label>
                                        "E-mail"
                                        <input type="email" name="email" value=u.email.unwrap_or_default()/>
                                    </label>
                                    <label>
                                        "Approval limit"
                                        <input name="approval_limit" inputmode="decimal" value=limit_value/>
                                    </label>
                                    <button type="submit">{save_label}</button>
                                </ActionForm>
                            </details>
                            <details class="confirm">
                                <summary>"Reset password"</summary>
                                <ActionForm action=actions.reset>
                                    <input type="hidden" name="username" value=reset_name/>
                                    <p>"A new password replaces the old one at once and signs them out everywhere."</p>
                                    <button type="submit" class="danger">
                                        {reset_label}
                                    </button>
                                </ActionForm>
                            </details>
                            <details class="confirm">
                                <summary>{if u.disabled { "Enable" } else { "Disable" }}</summary>
                                <ActionForm action=actions.disable>
                                    <p>{toggle_note}</p>
                                    <input type="hidden" name="username" value=toggle_name/>
                                    <input type="hidden" name="disabled" value=disable/>
                                    <button type="submit" class="danger">
                                        {toggle_label}
                                    </button>
                                </ActionForm>
                            </details>
                        </div>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list users">
            <thead>
                <tr>
                    <th scope="col">"User"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"E-mail"</th>
                    <th scope="col">"Approval limit"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Since"</th>
                    <th scope="col">"Actions"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let query = use_query_map();
    let before = move || query.read().get("before").unwrap_or_default();
    let entries = Resource::new(before, calls::audit_log);
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <p class="muted">"Every admin action, newest first. Entries cannot be changed or removed."</p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(entries) => view! { <AuditTable entries/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    let next = (entries.len() == 50)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| view! { <A href=format!("/admin/audit?before={id}")>"Older entries"</A> });
    if entries.is_empty() {
        return view! { <p class="empty">"No admin actions yet."</p> }.into_any();
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td data-label="When">{short_time(&e.at)}</td>
                    <td data-label="Who">{e.actor}</td>
                    <td data-label="Did">{e.action}</td>
                    <td data-label="To">
                        <code>{e.target}</code>
                    </td>
                    <td data-label="Detail">{e.detail.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list audit">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Did"</th>
                    <th scope="col">"To"</th>
                    <th scope="col">"Detail"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <nav class="pages">{next}</nav>
    }
    .into_any()
}
