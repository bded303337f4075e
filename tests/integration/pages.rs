//! The server-rendered pages over real HTTP, the way a browser without JavaScript uses them:
//! forms post to their server functions and follow redirects; sessions ride on cookies.

use crate::common::{spawn_app, TestApp};
use reqwest::header::{ACCEPT, LOCATION, ORIGIN, REFERER};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};

/// A browser-like client: keeps cookies, does not follow redirects (so tests see them).
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn page(client: &Client, app: &TestApp, path: &str) -> (u16, Option<String>, String) {
    let res = client
        .get(app.url(path))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = location(&res);
    (status, location, res.text().await.unwrap())
}

fn location(res: &Response) -> Option<String> {
    res.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
}

/// The `action` of the first form posting to the server function named `name`.
fn form_action(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("action=\"/api/{name}"))
        .unwrap_or_else(|| panic!("no form for {name} in {html}"))
        + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

/// Submits a form the way a browser does (same-origin, urlencoded).
async fn submit(client: &Client, app: &TestApp, action: &str, form: &[(&str, &str)]) -> Response {
    client
        .post(app.url(action))
        .header(ACCEPT, "text/html")
        .header(ORIGIN, format!("http://{}", app.addr))
        .header(REFERER, app.url("/"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn storefront_order_lands_on_its_own_page() {
    let app = spawn_app().await;
    let client = browser();
    let (status, _, html) = page(&client, &app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Order supplies"));
    assert!(html.contains("aria-label=\"Office chair quantity\""));
    assert!(html.contains("$189.00"));
    let action = form_action(&html, "place_order");

    let res = submit(
        &client,
        &app,
        &action,
        &[
            ("quantities[notebook]", "2"),
            ("quantities[pen-set]", ""),
            ("customer_name", "Ann Example"),
            ("customer_email", "ann@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 302);
    let order_page = location(&res).expect("redirected to the order page");
    assert!(order_page.starts_with("/orders/"), "{order_page}");

    let (status, _, html) = page(&client, &app, &order_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("role=\"status\""));
    assert!(html.contains("$9.00"), "server computed the total: {html}");
    assert!(html.contains("Ann Example"));
    assert_eq!(app.order_count().await, 1);
}

#[tokio::test]
async fn bad_storefront_input_changes_nothing() {
    let app = spawn_app().await;
    let client = browser();
    let (_, _, html) = page(&client, &app, "/").await;
    let action = form_action(&html, "place_order");
    let bad: [&[(&str, &str)]; 4] = [
        &[
            ("quantities[notebook]", "0"),
            ("customer_name", "Ann"),
            ("customer_email", "ann@example.com"),
        ],
        &[
            ("quantities[notebook]", "-1"),
            ("customer_name", "Ann"),
            ("customer_email", "ann@example.com"),
        ],
        &[
            ("quantities[notebook]", "1"),
            ("customer_name", "Ann"),
            ("customer_email", "not-an-address"),
        ],
        &[
            ("quantities[no-such-thing]", "1"),
            ("customer_name", "Ann"),
            ("customer_email", "ann@example.com"),
        ],
    ];
    for form in bad {
        let res = submit(&client, &app, &action, form).await;
        let back = location(&res).unwrap_or_default();
        assert!(
            back.contains("__err="),
            "the error is sent back to the form: {back}"
        );
    }
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn unknown_order_page_is_not_found() {
    let app = spawn_app().await;
    let (status, _, html) =
        page(&browser(), &app, "/orders/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    assert!(html.contains("Order not found"));
}

#[tokio::test]
async fn staff_pages_send_strangers_to_sign_in() {
    let app = spawn_app().await;
    for path in [
        "/inbox",
        "/inbox/ORD-1",
        "/admin/orders",
        "/admin/orders/ORD-1",
        "/admin/keys",
    ] {
        let (status, location, _) = page(&browser(), &app, path).await;
        assert_eq!(status, 302, "{path}");
        assert_eq!(location.as_deref(), Some(&*format!("/login?next={path}")));
    }
}

#[tokio::test]
async fn sign_in_rotates_the_session_and_roles_are_enforced() {
    let app = spawn_app().await;
    let client = browser();
    let (_, _, html) = page(&client, &app, "/login").await;
    let action = form_action(&html, "login");

    let res = submit(
        &client,
        &app,
        &action,
        &[("username", "approver"), ("password", "wrong-password")],
    )
    .await;
    assert!(location(&res).unwrap_or_default().contains("__err="));
    let (status, _, _) = page(&client, &app, "/inbox").await;
    assert_eq!(status, 302, "a wrong password signs nobody in");

    let res = submit(
        &client,
        &app,
        &action,
        &[
            ("username", "approver"),
            ("password", "approver-password"),
            ("next", "//evil.example/"),
        ],
    )
    .await;
    assert_eq!(location(&res).as_deref(), Some("/inbox"));
    let cookie = res
        .headers()
        .get("set-cookie")
        .expect("a fresh session cookie at sign-in")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    let (status, _, html) = page(&client, &app, "/inbox").await;
    assert_eq!(status, 200);
    assert!(html.contains("Approval inbox"));
    assert!(html.contains("Nothing here is waiting for approval."));

    let (status, _, html) = page(&client, &app, "/admin/orders").await;
    assert_eq!(status, 403);
    assert!(html.contains("You need the admin role to see this page."));
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let app = spawn_app().await;
    let client = browser();
    let (_, _, html) = page(&client, &app, "/login").await;
    let action = form_action(&html, "login");
    let res = client
        .post(app.url(&action))
        .header(ORIGIN, "https://evil.example")
        .form(&[("username", "approver"), ("password", "approver-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.headers().get("set-cookie").is_none());
}

/// A client signed in as `username`.
async fn signed_in(app: &TestApp, username: &str, password: &str) -> Client {
    let client = browser();
    let (_, _, html) = page(&client, app, "/login").await;
    let action = form_action(&html, "login");
    let form = [("username", username), ("password", password)];
    let res = submit(&client, app, &action, &form).await;
    assert_eq!(
        location(&res).as_deref(),
        Some("/inbox"),
        "{username} signs in"
    );
    client
}

/// Calls a server function as the page's script does (same origin, JSON answer).
async fn call(
    client: &Client,
    app: &TestApp,
    action: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let res = client
        .post(app.url(action))
        .header(ACCEPT, "application/json")
        .header(ORIGIN, format!("http://{}", app.addr))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn key_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM access_keys")
        .fetch_one(&app.state.db().reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn only_admins_issue_list_and_revoke_access_keys() {
    let app = spawn_app().await;
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let (status, _, html) = page(&admin, &app, "/admin/keys").await;
    assert_eq!(status, 200);
    assert!(html.contains("No access keys yet."), "{html}");
    let issue = form_action(&html, "issue_access_key");

    let approver = signed_in(&app, "approver", "approver-password").await;
    let (status, _, html) = page(&approver, &app, "/admin/keys").await;
    assert_eq!(status, 403);
    assert!(html.contains("You need the admin role to see this page."));
    let (status, _) = call(&approver, &app, &issue, &[("username", "approver")]).await;
    assert_eq!(status, 403);
    let (status, _) = call(&browser(), &app, &issue, &[("username", "approver")]).await;
    assert_eq!(status, 401);
    assert_eq!(key_count(&app).await, 0, "refused calls create nothing");

    let (status, body) = call(&admin, &app, &issue, &[("username", "nobody")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("No user named 'nobody'."), "{body}");
    assert_eq!(key_count(&app).await, 0);

    let (status, body) = call(&admin, &app, &issue, &[("username", "approver")]).await;
    assert_eq!(status, 200, "{body}");
    let key: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (id, secret) = (key["id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    assert_eq!(key["username"], "approver");
    assert_eq!(
        orderflow::auth::access_key_secret(app.state.db(), id)
            .await
            .unwrap()
            .as_deref(),
        Some(secret)
    );
    let (_, _, html) = page(&admin, &app, "/admin/keys").await;
    assert!(html.contains(id), "the list shows the key");
    assert!(!html.contains(secret), "the list never shows a secret");
    let revoke = form_action(&html, "revoke_access_key");

    let (status, _) = call(&approver, &app, &revoke, &[("id", id)]).await;
    assert_eq!(status, 403);
    assert_eq!(key_count(&app).await, 1);
    let (status, body) = call(&admin, &app, &revoke, &[("id", id)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(key_count(&app).await, 0);
    let (status, _) = call(&admin, &app, &revoke, &[("id", id)]).await;
    assert_eq!(status, 404);
}
