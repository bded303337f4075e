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
        .execute(&mut *tx)
        .await;
    assert!(edit.is_err(), "the audit log cannot be changed");
    let delete = sqlx::query("DELETE FROM audit_log").execute(&mut *tx).await;
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
    .execute(&mut *tx)
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
