//! The admin console's data over a real server: an execution's graph and history, stopping
//! an order's workflow, and the audit log nobody can change.

mod common;

use common::{spawn_app, TestApp};
use leptos::server_fn::ServerFn;
use orderflow::app::calls::StopExecution;
use orderflow::graph::Visit;
use reqwest::Client;
use serde_json::json;

async fn place(app: &TestApp, id: &str, cost: f64) -> String {
    let body = json!({"OrderID": id, "OrderItems": ["thing"], "Cost": cost});
    let (status, order) = app
        .post_json("/api/orders", Some(&app.admin_token), &body.to_string())
        .await;
    assert_eq!(status, 201, "{order}");
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
    let edit = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&db.writer)
        .await;
    assert!(edit.is_err(), "the audit log cannot be changed");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&db.writer)
        .await;
    assert!(delete.is_err(), "nor emptied");
}
