//! The admin console's data over a real server: an execution's graph and history, stopping
//! an order's workflow, and the audit log nobody can change.

use crate::common;

use crate::common::{spawn_app, TestApp};
use leptos::server_fn::ServerFn;
use orderflow::app::calls::StopExecution;
use orderflow::graph::Visit;
use reqwest::Client;
use serde_json::json;

async fn place(app: &TestApp, id: &str, cost: f64) -> String {
    let order = app
        .place_order(json!({"OrderID": id, "OrderItems": ["thing"], "Cost": cost}))
        .await;
    order["execution_arn"].as_str().unwrap().to_string()
}

/// A client signed in as `username` through the login form.
async fn signed_in(app: &TestApp, username: &str, password: &str) -> Client {
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = <orderflow::app::calls::Login as ServerFn>::PATH;
    let res = client
        .post(app.url(login))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "text/html")
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302, "{username} signs in");
    client
}

async fn stop(app: &TestApp, client: &Client, id: &str, cause: &str) -> u16 {
    client
        .post(app.url(StopExecution::PATH))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "application/json")
        .form(&[("id", id), ("cause", cause)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_execution_shows_its_path_states_and_timed_events() {
    let app = spawn_app().await;
    let arn = place(&app, "g-1", 500.0).await;
    let detail = orderflow::console::execution(&app.state, &arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.status, "RUNNING");
    let visit = |name: &str| {
        detail
            .graph
            .nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.visit)
    };
    assert_eq!(visit("Validate Order"), Some(Visit::Visited));
    assert_eq!(visit("WaitForApproval"), Some(Visit::Current));
    assert_eq!(visit("Process the Order"), Some(Visit::NotVisited));
    let taken: Vec<_> = detail
        .graph
        .edges
        .iter()
        .filter(|e| e.taken)
        .map(|e| e.to.as_str())
        .collect();
    assert_eq!(
        taken,
        [
            "Is the order valid?",
            "Validate Cost",
            "Is the order auto-approved?",
            "WaitForApproval"
        ]
    );
    let validate = detail
        .states
        .iter()
        .find(|s| s.name == "Validate Order")
        .unwrap();
    assert!(validate
        .input
        .as_deref()
        .unwrap()
        .contains("\"OrderID\": \"g-1\""));
    assert!(validate
        .output
        .as_deref()
        .unwrap()
        .contains("\"isValid\": true"));
    assert_eq!(detail.events[0].kind, "ExecutionStarted");
    assert_eq!(detail.events[0].elapsed_ms, 0);
    let entered = detail
        .events
        .iter()
        .find(|e| e.kind == "TaskStateEntered")
        .unwrap();
    assert_eq!(entered.state.as_deref(), Some("Validate Order"));
    assert!(detail
        .events
        .windows(2)
        .all(|w| w[0].elapsed_ms <= w[1].elapsed_ms));
}

#[tokio::test]
async fn only_admins_stop_executions_and_a_stopped_order_is_rejected_and_audited() {
    let app = spawn_app().await;
    let arn = place(&app, "s-1", 500.0).await;

    let approver = signed_in(&app, "approver", "approver-password").await;
    assert_eq!(stop(&app, &approver, &arn, "no").await, 403);
    assert_eq!(stop(&app, &Client::new(), &arn, "no").await, 401);
    let running = app
        .state
        .runtime
        .describe_execution(&arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.status, "RUNNING");

    let admin = signed_in(&app, "admin", "admin-password-1").await;
    assert_eq!(
        stop(&app, &admin, &arn, "  ").await,
        400,
        "a reason is required"
    );
    assert_eq!(
        stop(&app, &admin, &arn, "Customer cancelled by phone").await,
        200
    );
    let stopped = app
        .state
        .runtime
        .describe_execution(&arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status, "ABORTED");
    assert_eq!(stopped.error.as_deref(), Some("Admin.Stopped"));
    assert_eq!(
        stopped.cause.as_deref(),
        Some("Stopped by admin: Customer cancelled by phone")
    );
    let order = orderflow::orders::get(&app.state, "s-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status.as_str(), "rejected");
    let trail = orderflow::orders::trail(&app.state, "s-1").await.unwrap();
    assert_eq!(trail.last().map(|t| t.action.as_str()), Some("stopped"));
    assert_eq!(
        stop(&app, &admin, &arn, "again").await,
        400,
        "it is not running"
    );

    let db = app.state.db();
    let logged: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, action, target FROM audit_log")
            .fetch_all(&db.reader)
            .await
            .unwrap();
    assert_eq!(
        logged,
        [(
            "admin".to_string(),
            "stop execution".to_string(),
            arn.clone()
        )]
    );
    let mut tx = db.begin().await.unwrap();
    let edit = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&mut **tx)
        .await;
    assert!(edit.is_err(), "the audit log cannot be changed");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&mut **tx)
        .await;
    assert!(delete.is_err(), "nor emptied");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_order_list_filters_and_exports_csv_to_admins_only() {
    let app = spawn_app().await;
    for (id, cost) in [("f-1", 50.0), ("f-2", 500.0), ("f-3", 900.0)] {
        place(&app, id, cost).await;
    }
    let body = json!({"OrderID": "=HYPERLINK(1)", "OrderItems": ["x"], "Cost": 20,
        "CustomerName": "Eve, \"the\" tester"});
    let (status, _) = app
        .post_json("/api/orders", Some(&app.admin_token), &body.to_string())
        .await;
    assert_eq!(status, 400, "order ids are checked: {body}");
    let body = json!({"OrderID": "f-4", "OrderItems": ["x"], "Cost": 20,
        "CustomerName": "=Eve, \"the\" tester"});
    app.post_json("/api/orders", Some(&app.admin_token), &body.to_string())
        .await;
    app.post_json(
        "/api/orders/f-2/decision",
        Some(&app.approver_token),
        r#"{"approved": false, "reason": "No"}"#,
    )
    .await;

    let query = |q: serde_json::Value| -> orderflow::model::OrderQuery {
        serde_json::from_value(q).unwrap()
    };
    let ids = |q: serde_json::Value| {
        let app = &app;
        async move {
            let filter = orderflow::console::order_filter(&query(q)).unwrap();
            let page = orderflow::orders::list(&app.state, &filter, None, 50)
                .await
                .unwrap();
            page.orders.into_iter().map(|o| o.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(json!({})).await, ["f-4", "f-3", "f-2", "f-1"]);
    assert_eq!(ids(json!({"min": "100", "max": "$600"})).await, ["f-2"]);
    assert_eq!(ids(json!({"approver": "approver"})).await, ["f-2"]);
    assert_eq!(ids(json!({"status": "processed"})).await, ["f-4", "f-1"]);
    assert_eq!(ids(json!({"q": "eve"})).await, ["f-4"]);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert_eq!(ids(json!({"from": today, "to": today})).await.len(), 4);
    assert!(ids(json!({"to": "2000-01-01"})).await.is_empty());
    for bad in [
        json!({"from": "yesterday"}),
        json!({"min": "lots"}),
        json!({"status": "lost"}),
        json!({"from": "2026-02-02", "to": "2026-02-01"}),
    ] {
        assert!(
            orderflow::console::order_filter(&query(bad.clone())).is_err(),
            "{bad}"
        );
    }

    let url = app.url("/admin/orders.csv?min=10&max=600");
    let approver = signed_in(&app, "approver", "approver-password").await;
    assert_eq!(
        approver.get(&url).send().await.unwrap().status().as_u16(),
        403
    );
    assert_eq!(
        Client::new()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let bad = admin
        .get(app.url("/admin/orders.csv?from=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let res = admin.get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("order_id,created_at,status"));
    assert!(lines[1].starts_with("f-4,"), "{csv}");
    assert!(
        lines[1].contains(",\"'=Eve, \"\"the\"\" tester\","),
        "quoted and defused: {csv}"
    );
    assert!(
        lines[2].starts_with("f-2,")
            && lines[2].contains(",rejected,")
            && lines[2].ends_with(",No")
    );
    assert!(lines[3].starts_with("f-1,") && lines[3].contains(",50.00,"));
}

/// Places an order for a named customer through the REST API.
async fn place_for(app: &TestApp, id: &str, name: &str, email: &str) {
    app.place_order(json!({"OrderID": id, "OrderItems": ["x"], "Cost": 20,
        "CustomerName": name, "CustomerEmail": email}))
        .await;
}

#[tokio::test]
async fn the_order_search_finds_customers_whether_few_or_many_orders_match() {
    let app = spawn_app().await;
    place_for(&app, "s-1", "Zoë Müller", "zoe@muller.example").await;
    place_for(&app, "s-2", "Al Smith", "al@smith.example").await;
    place_for(&app, "s-3", "100% Real_Name", "real@name.example").await;
    let search = |text: &str, cursor: Option<String>| {
        let app = &app;
        let filter = orderflow::orders::OrderFilter {
            search: Some(text.to_string()),
            ..Default::default()
        };
        async move {
            let page = orderflow::orders::list(&app.state, &filter, cursor.as_deref(), 50)
                .await
                .unwrap();
            let ids = page.orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
            (ids, page.next)
        }
    };
    // Few matches: the trigram index answers, in any case and across name and e-mail.
    assert_eq!(search("MÜLLER", None).await.0, ["s-1"]);
    assert_eq!(search("al@smith", None).await.0, ["s-2"]);
    assert_eq!(search(".example", None).await.0, ["s-3", "s-2", "s-1"]);
    // Wildcards and quotes are only characters.
    assert_eq!(search("0% R", None).await.0, ["s-3"]);
    assert_eq!(search("l_N", None).await.0, ["s-3"]);
    assert!(search("l%N", None).await.0.is_empty());
    assert!(search("\"al", None).await.0.is_empty());
    // Too short for trigrams: every order is read, with the same meaning.
    assert_eq!(search("Al", None).await.0, ["s-3", "s-2"]);
    assert_eq!(search("s-2", None).await.0, ["s-2"], "an order id");

    // Many matches (more than the index hands out): the list reads orders newest first and
    // pages through them all. These rows share s-1's execution, which the list does not read.
    let mut tx = app.state.db().begin().await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2100)
         INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
             currency, status, execution_id, created_at, updated_at)
         SELECT printf('bulk-%04d', i), printf('bulk-key-%d', i), printf('Bulk Buyer %d', i),
             'bulk@buyer.example', '[]', 100, 'USD', 'processed', o.execution_id,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('+%d seconds', i)), o.updated_at
         FROM n, orders o WHERE o.id = 's-1'",
    )
    .execute(&mut **tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (first, next) = search("bulk buyer", None).await;
    assert_eq!(first.len(), 50);
    assert_eq!(
        (first[0].as_str(), first[49].as_str()),
        ("bulk-2100", "bulk-2051")
    );
    let (mut seen, mut cursor) = (first.len(), next);
    while let Some(c) = cursor {
        let (page, next) = search("bulk buyer", Some(c)).await;
        seen += page.len();
        cursor = next;
    }
    assert_eq!(seen, 2100);
    assert_eq!(search("Bulk Buyer 1234", None).await.0, ["bulk-1234"]);
}

/// Posts a server function's form as a page script would; returns the status and body.
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

#[tokio::test]
async fn every_server_function_checks_the_caller() {
    use orderflow::app::calls::*;
    let app = spawn_app().await;
    let admin_only: [(&str, &[(&str, &str)]); 15] = [
        (Orders::PATH, &[]),
        (LoadDashboard::PATH, &[]),
        (LoadAudit::PATH, &[("id", "x")]),
        (Execution::PATH, &[("id", "x")]),
        (Executions::PATH, &[]),
        (StopExecution::PATH, &[("id", "x"), ("cause", "y")]),
        (AccessKeys::PATH, &[]),
        (IssueAccessKey::PATH, &[("username", "approver")]),
        (RevokeAccessKey::PATH, &[("id", "x")]),
        (Users::PATH, &[]),
        (AddUser::PATH, &[("username", "x"), ("role", "admin")]),
        (
            UpdateUser::PATH,
            &[("username", "approver"), ("role", "admin")],
        ),
        (ResetPassword::PATH, &[("username", "admin")]),
        (
            SetUserDisabled::PATH,
            &[("username", "admin"), ("disabled", "true")],
        ),
        (AuditLog::PATH, &[]),
    ];
    let staff: [(&str, &[(&str, &str)]); 5] = [
        (Inbox::PATH, &[]),
        (Approval::PATH, &[("id", "x")]),
        (Decide::PATH, &[("order_id", "x"), ("decision", "approve")]),
        (Claim::PATH, &[("order_id", "x"), ("action", "claim")]),
        (BulkApprove::PATH, &[("order_ids", "x")]),
    ];
    let stranger = Client::new();
    let approver = signed_in(&app, "approver", "approver-password").await;
    for (path, form) in admin_only {
        assert_eq!(call(&app, &stranger, path, form).await.0, 401, "{path}");
        assert_eq!(call(&app, &approver, path, form).await.0, 403, "{path}");
    }
    for (path, form) in staff {
        assert_eq!(call(&app, &stranger, path, form).await.0, 401, "{path}");
    }
    let roles: Vec<String> = sqlx::query_scalar("SELECT role FROM users ORDER BY username")
        .fetch_all(&app.state.db().reader)
        .await
        .unwrap();
    assert_eq!(roles, ["admin", "approver", "approver"], "nothing changed");
}

#[tokio::test]
async fn admins_manage_users_and_every_change_is_audited() {
    use orderflow::app::calls::*;
    let app = spawn_app().await;
    let admin = signed_in(&app, "admin", "admin-password-1").await;
    let (status, body) = call(
        &app,
        &admin,
        AddUser::PATH,
        &[
            ("username", "cleo"),
            ("role", "approver"),
            ("email", "Cleo@Example.com"),
            ("approval_limit", "250"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (name, password): (String, String) = serde_json::from_str(&body).unwrap();
    assert_eq!(name, "cleo");
    let cleo = signed_in(&app, "cleo", &password).await;
    let me = orderflow::auth::active_user(app.state.db(), "cleo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me.email.as_deref(), Some("cleo@example.com"));
    assert_eq!(me.approval_limit, Some(orderflow::model::Cents(25_000)));

    let (status, _) = call(
        &app,
        &admin,
        AddUser::PATH,
        &[("username", "cleo"), ("role", "approver")],
    )
    .await;
    assert_eq!(status, 400, "names are unique");
    let (status, _) = call(
        &app,
        &admin,
        AddUser::PATH,
        &[("username", "Bad Name"), ("role", "approver")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &app,
        &admin,
        AddUser::PATH,
        &[
            ("username", "dora"),
            ("role", "approver"),
            ("email", "not-an-email"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        orderflow::auth::active_user(app.state.db(), "dora")
            .await
            .unwrap()
            .is_none(),
        "nothing half-made"
    );

    let (status, _) = call(
        &app,
        &admin,
        UpdateUser::PATH,
        &[
            ("username", "cleo"),
            ("role", "admin"),
            ("approval_limit", ""),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let me = orderflow::auth::active_user(app.state.db(), "cleo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (me.role, me.email, me.approval_limit),
        (orderflow::model::Role::Admin, None, None)
    );
    let (status, _) = call(
        &app,
        &admin,
        UpdateUser::PATH,
        &[("username", "admin"), ("role", "approver")],
    )
    .await;
    assert_eq!(status, 400, "no admin demotes themself");
    let (status, _) = call(
        &app,
        &admin,
        SetUserDisabled::PATH,
        &[("username", "admin"), ("disabled", "true")],
    )
    .await;
    assert_eq!(status, 400, "nor disables themself");

    let (status, body) = call(&app, &admin, ResetPassword::PATH, &[("username", "cleo")]).await;
    assert_eq!(status, 200);
    let fresh: String = serde_json::from_str(&body).unwrap();
    assert_ne!(fresh, password);

    // Disabled: the open session stops working at once, and signing in is refused.
    let (status, _) = call(
        &app,
        &admin,
        SetUserDisabled::PATH,
        &[("username", "cleo"), ("disabled", "true")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(call(&app, &cleo, Inbox::PATH, &[]).await.0, 401);
    let login = <Login as ServerFn>::PATH;
    let res = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url(login))
        .header("origin", format!("http://{}", app.addr))
        .header("accept", "application/json")
        .form(&[("username", "cleo"), ("password", fresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    call(
        &app,
        &admin,
        SetUserDisabled::PATH,
        &[("username", "cleo"), ("disabled", "false")],
    )
    .await;
    signed_in(&app, "cleo", &fresh).await;

    let (status, body) = call(&app, &admin, AuditLog::PATH, &[]).await;
    assert_eq!(status, 200);
    let log: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "enable user",
            "disable user",
            "reset password",
            "update user",
            "add user"
        ]
    );
    assert!(log.iter().all(|e| e["actor"] == "admin"));
}

#[tokio::test]
async fn the_dashboard_counts_decisions_and_shows_what_is_due_soon() {
    let policy = orderflow::config::ApprovalPolicy {
        timeout_seconds: 3600,
        ..Default::default()
    };
    let app = common::spawn_app_with(policy).await;
    for (id, cost) in [
        ("d-1", 500.0),
        ("d-2", 500.0),
        ("d-3", 500.0),
        ("d-4", 20.0),
    ] {
        place(&app, id, cost).await;
    }
    for (id, body) in [
        ("d-1", r#"{"approved": true}"#),
        ("d-2", r#"{"approved": false, "reason": "No"}"#),
    ] {
        let (status, _) = app
            .post_json(
                &format!("/api/orders/{id}/decision"),
                Some(&app.approver_token),
                body,
            )
            .await;
        assert_eq!(status, 200);
    }
    let d = orderflow::orders::dashboard(&app.state, 14).await.unwrap();
    let count = |s: &str| {
        d.by_status
            .iter()
            .find(|(st, _)| st.as_str() == s)
            .map(|(_, n)| *n)
    };
    assert_eq!(count("processed"), Some(2));
    assert_eq!(count("rejected"), Some(1));
    assert_eq!(count("awaiting_approval"), Some(1));
    assert_eq!(d.days.len(), 14);
    let today = d.days.last().unwrap();
    assert_eq!(
        today.day,
        time::OffsetDateTime::now_utc().date().to_string()
    );
    assert_eq!(
        (today.approved, today.rejected),
        (1, 1),
        "d-4 was approved by nobody"
    );
    assert_eq!(today.median_minutes, Some(0));
    assert!(d.days[..13].iter().all(|d| d.approved + d.rejected == 0));
    let due: Vec<_> = d.due_soon.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(due, ["d-3"]);
}

/// Asserts that the roll-ups the dashboard reads equal counts over `orders` right now: orders
/// per status, and decided orders per decision day and minutes from order to decision. The
/// roll-up keeps no empty buckets, so the comparison is exact.
async fn assert_roll_ups_match(db: &sqlx::SqlitePool, when: &str) {
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status")
            .fetch_all(db)
            .await
            .unwrap();
    let rolled: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, how_many FROM order_counts WHERE how_many <> 0 ORDER BY status",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(rolled, counted, "orders by status, {when}");
    let counted: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT substr(decided_at, 1, 10) AS day,
             CAST((julianday(decided_at) - julianday(created_at)) * 1440 AS INTEGER) AS minutes,
             SUM(status <> 'rejected'), COUNT(*)
         FROM orders WHERE decided_by IS NOT NULL AND decided_at IS NOT NULL
         GROUP BY day, minutes ORDER BY day, minutes",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let rolled: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, minutes, approved, decided FROM order_decisions ORDER BY day, minutes",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(rolled, counted, "decisions by day and minutes, {when}");
    let counted: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT stage, COALESCE(claimed_by, ''), COUNT(*) FROM orders
         WHERE status = 'awaiting_approval' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let rolled: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT stage, claimed_by, how_many FROM inbox_counts ORDER BY stage, claimed_by",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(
        rolled, counted,
        "awaiting orders by stage and claim, {when}"
    );
}

/// Asserts that the inbox's counts as it opens (read from the roll-up) equal counts over the
/// awaiting orders, for an approver (escalated orders left out) and for an admin.
async fn assert_inbox_counts_match(app: &TestApp, when: &str) {
    use orderflow::model::{CurrentUser, Role};
    let soon =
        orderflow::db::format_time(time::OffsetDateTime::now_utc() + time::Duration::hours(4));
    for (username, role, visible) in [
        ("approver", Role::Approver, "stage <> 'escalated'"),
        ("admin", Role::Admin, "1"),
    ] {
        let who = CurrentUser {
            id: 0,
            username: username.into(),
            role,
            email: None,
            approval_limit: None,
        };
        let request = orderflow::orders::InboxRequest {
            limit: 50,
            ..Default::default()
        };
        let c = orderflow::orders::inbox(&app.state, &who, &request)
            .await
            .unwrap()
            .counts;
        let counted: (i64, i64, i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), COALESCE(SUM(claimed_by = ?), 0),
                 COALESCE(SUM(claimed_by IS NULL), 0),
                 COALESCE(SUM(stage = 'escalated'), 0), COALESCE(SUM(due_at < ?), 0)
             FROM orders WHERE status = 'awaiting_approval' AND {visible}"
        ))
        .bind(username)
        .bind(&soon)
        .fetch_one(&app.state.db().reader)
        .await
        .unwrap();
        assert_eq!(
            (c.all, c.mine, c.unclaimed, c.escalated, c.due_soon),
            counted,
            "inbox counts for {username}, {when}"
        );
    }
}

async fn decide_as(app: &TestApp, token: &str, id: &str, body: &str) {
    let (status, answer) = app
        .post_json(&format!("/api/orders/{id}/decision"), Some(token), body)
        .await;
    assert_eq!(status, 200, "{id}: {answer}");
}

#[tokio::test]
async fn the_dashboard_roll_ups_equal_counts_over_the_orders_after_every_kind_of_change() {
    let app = spawn_app().await;
    let db = &app.state.db().reader;
    // Processed at once, awaiting one approval, invalid, awaiting two approvals.
    let mut arns = std::collections::HashMap::new();
    for (id, cost) in [
        ("r-1", 20.0),
        ("r-2", 500.0),
        ("r-3", 500.0),
        ("r-4", 500.0),
        ("r-5", 0.0),
        ("r-6", 6000.0),
        ("r-7", 6000.0),
        ("r-8", 6000.0),
        ("r-9", 500.0),
        ("r-10", 500.0),
    ] {
        arns.insert(id, place(&app, id, cost).await);
    }
    assert_roll_ups_match(db, "after placing").await;
    assert_inbox_counts_match(&app, "after placing").await;

    let user = |name: &str, role| orderflow::model::CurrentUser {
        id: 0,
        username: name.into(),
        role,
        email: None,
        approval_limit: None,
    };
    let approver_user = user("approver", orderflow::model::Role::Approver);
    let admin_user = user("admin", orderflow::model::Role::Admin);
    use orderflow::orders::{change_claim, ClaimChange};
    for (id, change, by) in [
        ("r-2", ClaimChange::Claim, &approver_user),
        ("r-9", ClaimChange::Claim, &admin_user),
        ("r-9", ClaimChange::TakeOver, &approver_user),
        ("r-4", ClaimChange::Claim, &approver_user),
        ("r-4", ClaimChange::Unclaim, &approver_user),
        ("r-7", ClaimChange::Claim, &approver_user),
    ] {
        change_claim(&app.state, id, change, by).await.unwrap();
    }
    assert_roll_ups_match(db, "after claiming").await;
    assert_inbox_counts_match(&app, "after claiming").await;

    let (approver, admin) = (app.approver_token.clone(), app.admin_token.clone());
    let approve = r#"{"approved": true}"#;
    let reject = r#"{"approved": false, "reason": "No"}"#;
    decide_as(&app, &approver, "r-2", approve).await;
    decide_as(&app, &approver, "r-3", reject).await;
    // Two approvals: the second (by someone else) overwrites the first decision.
    decide_as(&app, &approver, "r-6", approve).await;
    decide_as(&app, &admin, "r-6", approve).await;
    decide_as(&app, &approver, "r-7", approve).await;
    decide_as(&app, &approver, "r-8", approve).await;
    decide_as(&app, &admin, "r-8", reject).await;
    assert_roll_ups_match(db, "after deciding").await;
    assert_inbox_counts_match(&app, "after deciding").await;

    // Stopping rejects the order: one awaiting its first approval, one its second.
    for id in ["r-4", "r-7"] {
        orderflow::orders::stop_execution(&app.state, &arns[id], "Stopped", &admin_user, "test")
            .await
            .unwrap();
    }
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM orders WHERE id LIKE 'r-%' ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    let status = |id: &str| {
        statuses
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.as_str())
    };
    let expected = [
        ("r-1", "processed"),
        ("r-2", "processed"),
        ("r-3", "rejected"),
        ("r-4", "rejected"),
        ("r-5", "invalid"),
        ("r-6", "processed"),
        ("r-7", "rejected"),
        ("r-8", "rejected"),
        ("r-9", "awaiting_approval"),
        ("r-10", "awaiting_approval"),
    ];
    for (id, s) in expected {
        assert_eq!(status(id), Some(s), "{id}");
    }
    assert_roll_ups_match(db, "after stopping").await;
    assert_inbox_counts_match(&app, "after stopping").await;

    // Writes that bypass the app keep them too: a bulk load of orders decided over past days
    // (some by nobody), decisions moved, statuses changed, orders deleted.
    let state = &app.state;
    let write = |sql: &'static str| async move {
        let mut tx = state.db().begin().await.unwrap();
        sqlx::query(sql).execute(&mut **tx).await.unwrap();
        tx.commit().await.unwrap();
    };
    write(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
         INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
             currency, status, execution_id, decided_by, decided_at, created_at, updated_at)
         SELECT printf('bulk-%04d', i), printf('bulk-key-%d', i), 'Bulk', 'bulk@example.com',
             '[]', 100, 'USD', CASE WHEN i % 3 = 0 THEN 'rejected' ELSE 'processed' END,
             o.execution_id, CASE WHEN i % 5 <> 0 THEN 'bulk-approver' END,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d hours', i)),
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d hours', i),
                 printf('-%d minutes', (i * 37) % 900)),
             o.updated_at
         FROM n, orders o WHERE o.id = 'r-1'",
    )
    .await;
    assert_roll_ups_match(db, "after a bulk load").await;
    for sql in [
        "UPDATE orders SET decided_at = strftime('%Y-%m-%dT%H:%M:%fZ', decided_at, '-3 days')
         WHERE id LIKE 'bulk-01%'",
        "UPDATE orders SET decided_by = NULL, decided_at = NULL WHERE id LIKE 'bulk-02%'",
        "UPDATE orders SET decided_by = 'late', decided_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id LIKE 'bulk-0_5'",
        "UPDATE orders SET status = 'rejected' WHERE id LIKE 'bulk-03%' AND status = 'processed'",
        "UPDATE orders SET status = 'processed' WHERE id LIKE 'bulk-00%' AND status = 'rejected'",
        "UPDATE orders SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '-2 hours')
         WHERE id LIKE 'bulk-%7'",
        "DELETE FROM orders WHERE id LIKE 'bulk-04%'",
        "UPDATE orders SET due_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 hour')
         WHERE id IN ('r-9', 'r-10')",
        "UPDATE orders SET stage = 'escalated', claimed_by = NULL WHERE id = 'r-9'",
        "UPDATE orders SET claimed_by = 'admin' WHERE id = 'r-9'",
    ] {
        write(sql).await;
        assert_roll_ups_match(db, sql).await;
        assert_inbox_counts_match(&app, sql).await;
    }

    // The dashboard reads the roll-ups: the same figures as counting the orders.
    let d = orderflow::orders::dashboard(&app.state, 30).await.unwrap();
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status")
            .fetch_all(db)
            .await
            .unwrap();
    for (st, n) in &d.by_status {
        let counted = by_status.iter().find(|(s, _)| s == st.as_str());
        assert_eq!(*n, counted.map_or(0, |(_, n)| *n), "{}", st.as_str());
    }
    for day in &d.days {
        let (approved, decided): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(status <> 'rejected'), 0), COUNT(*) FROM orders
             WHERE decided_by IS NOT NULL AND substr(decided_at, 1, 10) = ?",
        )
        .bind(&day.day)
        .fetch_one(db)
        .await
        .unwrap();
        assert_eq!(
            (day.approved, day.rejected),
            (approved, decided - approved),
            "{}",
            day.day
        );
    }
    assert!(
        d.days
            .iter()
            .filter(|d| d.approved + d.rejected > 0)
            .count()
            > 10
    );
}

#[tokio::test]
async fn the_roll_ups_migration_counts_the_orders_already_there() {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = tempfile::tempdir().unwrap();
    // Foreign keys off: these orders point at executions that do not exist.
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("old.sqlite3"))
        .create_if_missing(true)
        .foreign_keys(false);
    let db = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let all = sqlx::migrate!("./migrations");
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version < 20261203000001)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert!(before.migrations.len() < all.migrations.len());
    before.run(&db).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
             currency, status, execution_id, decided_by, decided_at, created_at, updated_at)
         SELECT printf('old-%04d', i), printf('old-key-%d', i), 'Old', 'old@example.com',
             '[]', 100, 'USD',
             CASE i % 4 WHEN 0 THEN 'rejected' WHEN 1 THEN 'awaiting_approval'
                 WHEN 2 THEN 'processed' ELSE 'pending' END,
             'exec', CASE WHEN i % 4 IN (0, 2) THEN 'old-approver' END,
             CASE WHEN i % 4 IN (0, 2)
                 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d hours', i)) END,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d hours', i),
                 printf('-%d minutes', (i * 13) % 300)),
             'now'
         FROM n",
    )
    .execute(&db)
    .await
    .unwrap();
    all.run(&db).await.unwrap();
    let decided: i64 = sqlx::query_scalar("SELECT SUM(decided) FROM order_decisions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(decided, 250);
    assert_roll_ups_match(&db, "after the migration").await;
    // And the triggers keep the backfilled figures from then on.
    sqlx::query(
        "UPDATE orders SET status = 'rejected', decided_by = 'later',
             decided_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE status = 'awaiting_approval' AND id < 'old-0100'",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_roll_ups_match(&db, "after deciding backfilled orders").await;
}

/// The order list's amount filters, whether most orders match (found among the newest), few
/// do, or only old ones do (past the newest the list looks through first): every page is the
/// next orders in the range, newest first, and paging reaches all of them.
#[tokio::test]
async fn the_order_list_pages_through_amount_ranges_of_any_size() {
    let app = spawn_app().await;
    place_for(&app, "seed", "Seed", "seed@example.com").await;
    // bulk-0001 … bulk-6000, newer as they go; the oldest thousand cost 9,000.01 and more,
    // the others 1.00 … 91.00 in steps of ten dollars.
    let total = |i: i64| {
        if i <= 1000 {
            900_000 + i
        } else {
            (i % 10) * 1000 + 100
        }
    };
    let mut tx = app.state.db().begin().await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
         INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
             currency, status, execution_id, created_at, updated_at)
         SELECT printf('bulk-%04d', i), printf('bulk-key-%d', i), 'Bulk Buyer',
             'bulk@buyer.example', '[]',
             CASE WHEN i <= 1000 THEN 900000 + i ELSE (i % 10) * 1000 + 100 END,
             'USD', 'processed', o.execution_id,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('+%d seconds', i)), o.updated_at
         FROM n, orders o WHERE o.id = 'seed'",
    )
    .execute(&mut **tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let all_pages = |min: Option<i64>, max: Option<i64>| {
        let app = &app;
        async move {
            let filter = orderflow::orders::OrderFilter {
                min_cents: min,
                max_cents: max,
                ..Default::default()
            };
            let (mut ids, mut cursor, mut pages) = (Vec::new(), None, 0);
            loop {
                let page = orderflow::orders::list(&app.state, &filter, cursor.as_deref(), 50)
                    .await
                    .unwrap();
                pages += 1;
                ids.extend(page.orders.into_iter().map(|o| o.id));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return (ids, pages),
                }
            }
        }
    };
    // Newest first; the seed order (20.00) is the oldest.
    let expected = |min: i64, max: i64| {
        let mut ids = (1..=6000)
            .rev()
            .filter(|&i| (min..=max).contains(&total(i)))
            .map(|i| format!("bulk-{i:04}"))
            .collect::<Vec<_>>();
        if (min..=max).contains(&2000) {
            ids.push("seed".into());
        }
        ids
    };
    let same = |got: &[String], want: Vec<String>| {
        assert_eq!(got.len(), want.len());
        let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(
            first_difference,
            None,
            "{:?}",
            first_difference.map(|i| (&got[i], &want[i]))
        );
    };
    let (most, pages) = all_pages(Some(100), Some(9100)).await;
    same(&most, expected(100, 9100));
    assert_eq!((most.len(), pages), (5001, 101));
    let (old_only, _) = all_pages(Some(900_000), None).await;
    same(&old_only, expected(900_000, i64::MAX));
    assert_eq!(old_only.len(), 1000);
    let (cheap, _) = all_pages(None, Some(1100)).await;
    same(&cheap, expected(i64::MIN, 1100));
    let (none, pages) = all_pages(Some(9200), Some(899_999)).await;
    assert!(none.is_empty());
    assert_eq!(pages, 1);
}
