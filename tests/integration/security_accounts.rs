//! Accounts and credentials over real HTTP: sessions end when a user's password, role or
//! status changes; API tokens are revocable, expire and stop with their user; access keys stop
//! with their user and follow their role; SigV4 signatures must cover the action; and every
//! audited change commits with its audit row or not at all.

use crate::common::{spawn_app, TestApp};
use leptos::server_fn::ServerFn;
use orderflow::app::calls::*;
use orderflow::model::Role;
use orderflow::sfn::sigv4::{signature, Authorization, Signed};
use reqwest::Client;
use serde_json::{json, Value};

const CLEO_PASSWORD: &str = "cleo-password-1";

/// Adds the approver "cleo" (unaudited set-up).
async fn add_cleo(app: &TestApp) {
    orderflow::auth::create_user(app.state.db(), "cleo", Role::Approver, CLEO_PASSWORD)
        .await
        .unwrap();
}

/// A client signed in as `username` through the login server function.
async fn signed_in(app: &TestApp, username: &str, password: &str) -> Client {
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(app.url(<Login as ServerFn>::PATH))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "text/html")
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302, "{username} signs in");
    client
}

/// Calls a server function as `client`: the status and the body.
async fn call(app: &TestApp, client: &Client, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = client
        .post(app.url(path))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// What cleo's session gets from her inbox: 200 while it lasts, 401 once it ended.
async fn inbox_status(app: &TestApp, client: &Client) -> (u16, String) {
    call(app, client, <Inbox as ServerFn>::PATH, &[]).await
}

/// The audit log, oldest first: `(actor, action, target, detail)`.
async fn audit_rows(app: &TestApp) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as("SELECT actor, action, target, detail FROM audit_log ORDER BY id")
        .fetch_all(&app.state.db().reader)
        .await
        .unwrap()
}

/// A REST call with a bearer token that needs no order to exist: 404 once authenticated.
async fn with_token(app: &TestApp, token: &str) -> (u16, Value) {
    app.get_json("/api/orders/no-such-order", Some(token)).await
}

fn amz_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap()
}

/// Calls `AWSStepFunctions.<action>` with `{}`-like `body`, correctly signed with `key` over
/// exactly `signed_headers` (of content-type, host, x-amz-date, x-amz-target).
async fn sfn_signed_over(
    app: &TestApp,
    key: &(String, String),
    action: &str,
    body: Value,
    signed_headers: &[&str],
) -> (u16, Value) {
    let amz_date = amz_now();
    let target = format!("AWSStepFunctions.{action}");
    let body = body.to_string();
    let all = [
        ("content-type", "application/x-amz-json-1.0".to_string()),
        ("host", app.addr.to_string()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-target", target.clone()),
    ];
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/states/aws4_request, SignedHeaders={}, Signature=0",
        key.0,
        &amz_date[..8],
        signed_headers.join(";")
    );
    let auth = Authorization::parse(&header).unwrap();
    let request = Signed {
        method: "POST",
        path: "/sfn",
        query: "",
        headers: all
            .iter()
            .filter(|(n, _)| signed_headers.contains(n))
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
        body: body.as_bytes(),
    };
    let sig = signature(&request, &auth, &amz_date, &key.1).expect("signs");
    let res = app
        .client
        .post(app.url("/sfn"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .header("x-amz-date", amz_date)
        .header(
            "authorization",
            header.replace("Signature=0", &format!("Signature={sig}")),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A server function's form fields.
type Form<'a> = &'a [(&'a str, &'a str)];

const EVERY_HEADER: [&str; 4] = ["content-type", "host", "x-amz-date", "x-amz-target"];

#[tokio::test]
async fn a_password_reset_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    add_cleo(&app).await;
    let cleo = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    let cleo_elsewhere = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    assert_eq!(inbox_status(&app, &cleo).await.0, 200);
    assert_eq!(inbox_status(&app, &cleo_elsewhere).await.0, 200);

    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let (status, body) = call(&app, &admin, ResetPassword::PATH, &[("username", "cleo")]).await;
    assert_eq!(status, 200, "{body}");
    let fresh: String = serde_json::from_str(&body).unwrap();

    for session in [&cleo, &cleo_elsewhere] {
        let (status, body) = inbox_status(&app, session).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("Please sign in."), "{body}");
    }
    let (status, _) = call(&app, &admin, Users::PATH, &[]).await;
    assert_eq!(status, 200, "the admin's own session is untouched");
    let cleo = signed_in(&app, "cleo", &fresh).await;
    assert_eq!(
        inbox_status(&app, &cleo).await.0,
        200,
        "a new sign-in works"
    );
}

#[tokio::test]
async fn disabling_ends_sessions_and_enabling_again_does_not_revive_them() {
    let app = spawn_app().await;
    add_cleo(&app).await;
    let cleo = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    assert_eq!(inbox_status(&app, &cleo).await.0, 200);
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let toggle = |disabled: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let form = [("username", "cleo"), ("disabled", disabled)];
            call(app, admin, SetUserDisabled::PATH, &form).await.0
        }
    };

    assert_eq!(toggle("true").await, 200);
    assert_eq!(inbox_status(&app, &cleo).await.0, 401);
    assert_eq!(toggle("false").await, 200);
    assert_eq!(
        inbox_status(&app, &cleo).await.0,
        401,
        "the session from before the disable stays ended"
    );
    let cleo = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    assert_eq!(inbox_status(&app, &cleo).await.0, 200);
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions_and_a_profile_edit_does_not() {
    let app = spawn_app().await;
    add_cleo(&app).await;
    let cleo = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let update = |role: &'static str, limit: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let form = [
                ("username", "cleo"),
                ("role", role),
                ("approval_limit", limit),
            ];
            call(app, admin, UpdateUser::PATH, &form).await.0
        }
    };

    assert_eq!(update("approver", "250").await, 200);
    assert_eq!(
        inbox_status(&app, &cleo).await.0,
        200,
        "same role: the session goes on"
    );
    assert_eq!(update("admin", "250").await, 200);
    assert_eq!(inbox_status(&app, &cleo).await.0, 401, "a new role ends it");
    let cleo = signed_in(&app, "cleo", CLEO_PASSWORD).await;
    let (status, _) = call(&app, &cleo, Users::PATH, &[]).await;
    assert_eq!(status, 200, "signed in again, cleo has the admin role");
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_with_401_and_tokens_are_listed_without_secrets() {
    let app = spawn_app().await;
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let approver = signed_in(&app, "approver", "approver-password").await;
    let token_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&app.state.db().reader)
            .await
            .unwrap()
    };
    let before = token_rows().await;

    let (status, _) = call(
        &app,
        &approver,
        IssueApiToken::PATH,
        &[("username", "approver")],
    )
    .await;
    assert_eq!(status, 403, "only admins issue tokens");
    let (status, _) = call(&app, &approver, RevokeApiToken::PATH, &[("id", "1")]).await;
    assert_eq!(status, 403, "or revoke them");
    for days in ["0", "3651", "soon"] {
        let form = [("username", "approver"), ("expires_in_days", days)];
        let (status, body) = call(&app, &admin, IssueApiToken::PATH, &form).await;
        assert_eq!(status, 400, "{days}: {body}");
    }
    assert_eq!(
        token_rows().await,
        before,
        "refused requests create nothing"
    );

    let (status, body) = call(
        &app,
        &admin,
        IssueApiToken::PATH,
        &[("username", "approver")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let issued: Value = serde_json::from_str(&body).unwrap();
    let (id, token) = (
        issued["id"].as_i64().unwrap(),
        issued["token"].as_str().unwrap(),
    );
    assert_eq!(issued["expires_at"], Value::Null);
    assert_eq!(with_token(&app, token).await.0, 404, "the new token works");

    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&app.state.db().reader)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|h| h.len() == 64 && h != token),
        "only hashes are stored"
    );
    // Its use is noted behind the request's back: wait for the note before listing.
    let noted = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT last_used_at FROM api_tokens WHERE id = ?")
            .bind(id)
            .fetch_one(&app.state.db().reader)
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while noted().await.is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = call(&app, &admin, AccessKeys::PATH, &[]).await;
    assert_eq!(status, 200);
    assert!(!body.contains(token), "the list never shows a token");
    let html = admin
        .get(app.url("/admin/keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("Revoke token {id}")),
        "the page lists it"
    );
    assert!(!html.contains(token), "the page never shows a token");
    let list: Value = serde_json::from_str(&body).unwrap();
    let listed = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .expect("the new token is listed")
        .clone();
    assert_eq!(listed["username"], "approver");
    assert!(
        listed["last_used_at"].is_string(),
        "its use is recorded: {listed}"
    );

    let (status, body) = call(
        &app,
        &admin,
        RevokeApiToken::PATH,
        &[("id", &id.to_string())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = with_token(&app, token).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    let (status, _) = call(
        &app,
        &admin,
        RevokeApiToken::PATH,
        &[("id", &id.to_string())],
    )
    .await;
    assert_eq!(status, 404, "gone already");

    let form = [("username", "approver"), ("expires_in_days", "1")];
    let (status, body) = call(&app, &admin, IssueApiToken::PATH, &form).await;
    assert_eq!(status, 200, "{body}");
    let expiring: Value = serde_json::from_str(&body).unwrap();
    let token = expiring["token"].as_str().unwrap();
    assert!(expiring["expires_at"].is_string());
    assert_eq!(with_token(&app, token).await.0, 404, "not expired yet");
    let mut tx = app.state.db().begin().await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?")
        .bind(expiring["id"].as_i64().unwrap())
        .execute(&mut **tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = with_token(&app, token).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expired at 2020-01-01"),
        "{body}"
    );
}

#[tokio::test]
async fn a_disabled_users_token_and_access_key_are_refused_and_a_keys_role_follows_its_user() {
    let app = spawn_app().await;
    let key = orderflow::auth::create_access_key(app.state.db(), "approver")
        .await
        .unwrap();
    assert_eq!(with_token(&app, &app.approver_token).await.0, 404);
    let (status, body) =
        sfn_signed_over(&app, &key, "ListStateMachines", json!({}), &EVERY_HEADER).await;
    assert_eq!(status, 200, "{body}");
    let create = json!({"name": "jobs"});
    let (status, body) =
        sfn_signed_over(&app, &key, "CreateActivity", create.clone(), &EVERY_HEADER).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("AccessDeniedException")),
        "{body}"
    );

    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let form = [("username", "approver"), ("disabled", "true")];
    assert_eq!(
        call(&app, &admin, SetUserDisabled::PATH, &form).await.0,
        200
    );
    let (status, body) = with_token(&app, &app.approver_token).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("disabled user"),
        "{body}"
    );
    let (status, body) =
        sfn_signed_over(&app, &key, "ListStateMachines", json!({}), &EVERY_HEADER).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("UnrecognizedClientException")),
        "{body}"
    );

    let form = [("username", "approver"), ("disabled", "false")];
    assert_eq!(
        call(&app, &admin, SetUserDisabled::PATH, &form).await.0,
        200
    );
    assert_eq!(
        with_token(&app, &app.approver_token).await.0,
        404,
        "enabled, the token works again"
    );
    let form = [("username", "approver"), ("role", "admin")];
    assert_eq!(call(&app, &admin, UpdateUser::PATH, &form).await.0, 200);
    let (status, body) = sfn_signed_over(&app, &key, "CreateActivity", create, &EVERY_HEADER).await;
    assert_eq!(
        status, 200,
        "the key acts with its user's new role at once: {body}"
    );
}

#[tokio::test]
async fn a_signature_that_does_not_cover_the_target_is_refused() {
    let app = spawn_app().await;
    let key = orderflow::auth::create_access_key(app.state.db(), "admin")
        .await
        .unwrap();
    let list = |headers: &'static [&'static str]| {
        let (app, key) = (&app, &key);
        async move { sfn_signed_over(app, key, "ListStateMachines", json!({}), headers).await }
    };

    // Correctly signed, but over host and date alone: the action could be swapped.
    let (status, body) = list(&["host", "x-amz-date"]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "InvalidSignatureException", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("'X-Amz-Target' must be a 'SignedHeader'"),
        "{body}"
    );
    let (status, body) = list(&["x-amz-date", "x-amz-target"]).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("'Host'"),
        "{body}"
    );
    let (status, body) = list(&["host", "x-amz-target"]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("'X-Amz-Date'"),
        "{body}"
    );

    let (status, body) = list(&["host", "x-amz-date", "x-amz-target"]).await;
    assert_eq!(status, 200, "the three are enough: {body}");
    assert!(body["stateMachines"].is_array(), "{body}");
    let (status, body) = list(&EVERY_HEADER).await;
    assert_eq!(status, 200, "as the SDKs sign: {body}");
}

#[tokio::test]
async fn every_audited_change_commits_with_its_audit_row_and_a_failed_one_writes_none() {
    let app = spawn_app().await;
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let ok = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (app, admin) = (&app, &admin);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = call(app, admin, path, &form).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };
    let s = |v: &str| v.to_string();

    ok(
        AddUser::PATH,
        vec![("username", s("dora")), ("role", s("approver"))],
    )
    .await;
    let form = vec![
        ("username", s("dora")),
        ("role", s("admin")),
        ("email", s("Dora@Example.com")),
        ("approval_limit", s("250")),
    ];
    ok(UpdateUser::PATH, form).await;
    ok(ResetPassword::PATH, vec![("username", s("dora"))]).await;
    ok(
        SetUserDisabled::PATH,
        vec![("username", s("dora")), ("disabled", s("true"))],
    )
    .await;
    ok(
        SetUserDisabled::PATH,
        vec![("username", s("dora")), ("disabled", s("false"))],
    )
    .await;
    let key: Value =
        serde_json::from_str(&ok(IssueAccessKey::PATH, vec![("username", s("dora"))]).await)
            .unwrap();
    let key_id = key["id"].as_str().unwrap().to_string();
    ok(RevokeAccessKey::PATH, vec![("id", key_id.clone())]).await;
    let form = vec![("username", s("dora")), ("expires_in_days", s("30"))];
    let token: Value = serde_json::from_str(&ok(IssueApiToken::PATH, form).await).unwrap();
    let token_id = token["id"].as_i64().unwrap();
    ok(RevokeApiToken::PATH, vec![("id", token_id.to_string())]).await;

    let expires = token["expires_at"].as_str().unwrap();
    let row = |action: &str, target: &str, detail: Option<&str>| {
        (s("admin"), s(action), s(target), detail.map(s))
    };
    let expected = vec![
        row("add user", "dora", Some("role approver")),
        row(
            "update user",
            "dora",
            Some("role admin, e-mail dora@example.com, limit $250.00"),
        ),
        row("reset password", "dora", None),
        row("disable user", "dora", None),
        row("enable user", "dora", None),
        row("create access key", &key_id, Some("dora")),
        row("revoke access key", &key_id, Some("dora")),
        row(
            "create API token",
            "dora",
            Some(&format!("expires {expires}")),
        ),
        row(
            "revoke API token",
            "dora",
            Some(&format!("token {token_id}")),
        ),
    ];
    assert_eq!(audit_rows(&app).await, expected);

    // Refused changes write no audit row.
    let refused: [(&str, Form, u16); 7] = [
        (
            AddUser::PATH,
            &[("username", "dora"), ("role", "approver")],
            400,
        ),
        (
            AddUser::PATH,
            &[("username", "eve"), ("role", "approver"), ("email", "nope")],
            400,
        ),
        (
            UpdateUser::PATH,
            &[("username", "nobody"), ("role", "approver")],
            400,
        ),
        (ResetPassword::PATH, &[("username", "nobody")], 400),
        (
            SetUserDisabled::PATH,
            &[("username", "nobody"), ("disabled", "true")],
            400,
        ),
        (
            RevokeAccessKey::PATH,
            &[("id", "AKOFNOSUCHKEY0000000")],
            404,
        ),
        (RevokeApiToken::PATH, &[("id", "999999")], 404),
    ];
    for (path, form, expected_status) in refused {
        let (status, body) = call(&app, &admin, path, form).await;
        assert_eq!(status, expected_status, "{path} {form:?}: {body}");
    }
    let (status, _) = call(&app, &admin, IssueApiToken::PATH, &[("username", "nobody")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        audit_rows(&app).await,
        expected,
        "no row for a refused change"
    );

    // A change whose audit row cannot be written does not happen.
    let mut tx = app.state.db().begin().await.unwrap();
    sqlx::query(
        "CREATE TRIGGER audit_unavailable BEFORE INSERT ON audit_log
         BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
    )
    .execute(&mut **tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let dora_epoch = || async {
        sqlx::query_as::<_, (String, Option<String>, i64)>(
            "SELECT password_hash, disabled_at, session_epoch FROM users WHERE username = 'dora'",
        )
        .fetch_one(&app.state.db().reader)
        .await
        .unwrap()
    };
    let dora_before = dora_epoch().await;
    let reader = &app.state.db().reader;
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(reader)
            .await
            .unwrap()
    };
    let (users, keys, tokens) = (
        count("users").await,
        count("access_keys").await,
        count("api_tokens").await,
    );
    let attempts: [(&str, Form); 6] = [
        (AddUser::PATH, &[("username", "fred"), ("role", "approver")]),
        (
            UpdateUser::PATH,
            &[("username", "dora"), ("role", "approver")],
        ),
        (ResetPassword::PATH, &[("username", "dora")]),
        (
            SetUserDisabled::PATH,
            &[("username", "dora"), ("disabled", "true")],
        ),
        (IssueAccessKey::PATH, &[("username", "dora")]),
        (IssueApiToken::PATH, &[("username", "dora")]),
    ];
    for (path, form) in attempts {
        let (status, body) = call(&app, &admin, path, form).await;
        assert_eq!(status, 500, "{path}: {body}");
    }
    assert_eq!(
        dora_epoch().await,
        dora_before,
        "dora's password, status and role stand"
    );
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE username = 'dora'")
        .fetch_one(&app.state.db().reader)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    assert_eq!(
        (
            count("users").await,
            count("access_keys").await,
            count("api_tokens").await
        ),
        (users, keys, tokens),
        "nothing was created"
    );
}

#[tokio::test]
async fn the_command_line_lists_revokes_and_expires_tokens_and_audits_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.sqlite3").display());
    let cli = |args: &[&str], stdin: &str| -> (bool, String, String) {
        let out = crate::common::binary::cli_output(&db, args, stdin);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.success(), text(out.stdout), text(out.stderr))
    };
    let (ok, _, err) = cli(
        &[
            "user",
            "add",
            "bo",
            "--role",
            "approver",
            "--password-stdin",
        ],
        "a-long-password\n",
    );
    assert!(ok, "{err}");
    let (ok, forever, err) = cli(&["token", "create", "bo"], "");
    assert!(ok, "{err}");
    let (ok, expiring, err) = cli(&["token", "create", "bo", "--expires-in-days", "7"], "");
    assert!(ok, "{err}");
    assert!(err.contains("expires at"), "{err}");
    let (ok, _, _) = cli(&["token", "create", "bo", "--expires-in-days", "0"], "");
    assert!(!ok, "an expiry of 0 days is refused");

    let (ok, listed, err) = cli(&["token", "list"], "");
    assert!(ok, "{err}");
    assert!(
        !listed.contains(forever.trim()) && !listed.contains(expiring.trim()),
        "{listed}"
    );
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows.iter()
            .all(|r| r[1] == "bo" && r[3] == "never" && r[5] == "active"),
        "{listed}"
    );
    assert_eq!(
        rows.iter().filter(|r| r[4] == "never").count(),
        1,
        "one never expires: {listed}"
    );
    let revoked = rows.iter().find(|r| r[4] == "never").unwrap()[0].to_string();
    let (ok, _, err) = cli(&["token", "revoke", &revoked], "");
    assert!(ok, "{err}");
    let (ok, _, _) = cli(&["token", "revoke", &revoked], "");
    assert!(!ok, "revoking twice fails");
    let (_, listed, _) = cli(&["token", "list"], "");
    assert_eq!(
        listed.lines().count(),
        2,
        "header and the expiring token: {listed}"
    );

    let (ok, key, err) = cli(&["access-key", "create", "bo"], "");
    assert!(ok, "{err}");
    let key_id = key
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("AWS_ACCESS_KEY_ID=")
        .to_string();
    let (_, keys, _) = cli(&["access-key", "list"], "");
    assert!(
        keys.contains(&key_id) && !keys.contains("AWS_SECRET"),
        "{keys}"
    );
    let (ok, _, err) = cli(&["access-key", "revoke", &key_id], "");
    assert!(ok, "{err}");
    for args in [
        &["user", "role", "bo", "--role", "admin"][..],
        &["user", "disable", "bo"],
        &["user", "enable", "bo"],
    ] {
        let (ok, _, err) = cli(args, "");
        assert!(ok, "{args:?}: {err}");
    }

    let db = orderflow::db::Db::open(&db).await.unwrap();
    let log = orderflow::console::audit_log(&db, None, 20).await.unwrap();
    let seen: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| {
            assert_eq!(e.actor, "(command line)");
            (e.action.as_str(), e.target.as_str())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("add user", "bo"),
            ("create API token", "bo"),
            ("create API token", "bo"),
            ("revoke API token", "bo"),
            ("create access key", key_id.as_str()),
            ("revoke access key", key_id.as_str()),
            ("update user", "bo"),
            ("disable user", "bo"),
            ("enable user", "bo"),
        ]
    );
}
