//! The approval guarantee tried as an attacker would, over real HTTP: an order is processed only
//! through its own workflow and the right people's decisions, and every end of that workflow
//! reaches the order at once.

use crate::common::sfn::{access_key, call};
use crate::common::{spawn_app, spawn_app_on, TestApp};
use orderflow::config::ApprovalPolicy;
use orderflow::runtime::ManualClock;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::000000000000:role/any";

fn machine_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:000000000000:stateMachine:{name}")
}

/// A one-task machine calling `resource` with `OrderID` from the input.
fn one_task(resource: &str) -> String {
    json!({
        "StartAt": "Do",
        "States": { "Do": {
            "Type": "Task", "Resource": resource, "End": true,
            "Parameters": { "OrderID.$": "$.OrderID" }
        }}
    })
    .to_string()
}

/// An order of 150.00, which waits for an approval.
async fn waiting_order(app: &TestApp) -> String {
    let order = app
        .place_order(json!({"OrderItems": ["desk"], "Cost": 150}))
        .await;
    assert_eq!(order["status"], "awaiting_approval", "{order}");
    order["order_id"].as_str().unwrap().to_string()
}

async fn order(app: &TestApp, id: &str) -> Value {
    let (status, order) = app
        .get_json(&format!("/api/orders/{id}"), Some(&app.admin_token))
        .await;
    assert_eq!(status, 200, "{order}");
    order
}

async fn decide(app: &TestApp, token: &str, id: &str, approved: bool) -> (u16, Value) {
    let body = json!({"approved": approved, "reason": "checked"}).to_string();
    app.post_json(&format!("/api/orders/{id}/decision"), Some(token), &body)
        .await
}

#[tokio::test]
async fn machines_naming_the_order_handlers_are_refused_at_validation() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;
    let nested = json!({
        "StartAt": "Fan",
        "States": { "Fan": { "Type": "Parallel", "End": true, "Branches": [{
            "StartAt": "Sneak",
            "States": { "Sneak": {
                "Type": "Task", "Resource": "orderflow:request-approval.waitForTaskToken",
                "End": true
            }}
        }]}}
    })
    .to_string();
    for (name, definition) in [
        ("process", one_task("orderflow:process-order")),
        ("validate", one_task("orderflow:validate-order")),
        ("nested", nested),
    ] {
        let body = json!({"name": name, "definition": definition, "roleArn": ROLE});
        let (status, err) = call(&app, &admin, "CreateStateMachine", body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["__type"], "InvalidDefinition", "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("belongs to the 'order-approval' state machine"),
            "{message}"
        );

        let body = json!({"definition": definition});
        let (status, out) = call(&app, &admin, "ValidateStateMachineDefinition", body).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["result"], "FAIL", "{out}");
        let location = out["diagnostics"][0]["location"].as_str().unwrap();
        assert!(location.ends_with("/Resource"), "{location}");
    }
    let (_, listed) = call(&app, &admin, "ListStateMachines", json!({})).await;
    let names: Vec<_> = listed["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, [json!("order-approval")], "nothing else was stored");
    // The engine's own callback resource is anyone's.
    let body = json!({
        "name": "ask",
        "definition": one_task("orderflow:callback.waitForTaskToken"),
        "roleArn": ROLE,
    });
    let (status, out) = call(&app, &admin, "CreateStateMachine", body).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn test_state_cannot_run_an_order_handler_on_a_rejected_order() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;
    let id = waiting_order(&app).await;
    let (status, _) = decide(&app, &app.approver_token, &id, false).await;
    assert_eq!(status, 200);
    let state = json!({
        "Type": "Task", "Resource": "orderflow:process-order", "End": true,
        "Parameters": { "OrderID.$": "$.OrderID" }
    });
    let body = json!({
        "definition": state.to_string(),
        "roleArn": ROLE,
        "input": json!({"OrderID": id}).to_string(),
    });
    let (status, out) = call(&app, &admin, "TestState", body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["status"], "FAILED", "{out}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap()
            .contains("belongs to the 'order-approval'"),
        "{out}"
    );
    assert_eq!(order(&app, &id).await["status"], "rejected");
}

#[tokio::test]
async fn starting_the_order_workflow_over_the_aws_api_is_refused() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;
    let id = waiting_order(&app).await;
    let (status, _) = decide(&app, &app.approver_token, &id, false).await;
    assert_eq!(status, 200);
    let input = json!({"OrderID": id, "OrderItems": ["desk"], "Cost": 1});
    let body = json!({
        "stateMachineArn": machine_arn("order-approval"),
        "input": input.to_string(),
    });
    let (status, err) = call(&app, &admin, "StartExecution", body).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["__type"], "AccessDeniedException", "{err}");
    let after = order(&app, &id).await;
    assert_eq!(after["status"], "rejected", "{after}");
    let executions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM executions WHERE state_machine = 'order-approval'",
    )
    .fetch_one(&app.state.db().reader)
    .await
    .unwrap();
    assert_eq!(executions, 1, "no execution was started");
}

#[tokio::test]
async fn an_approvers_access_key_may_only_read() {
    let app = spawn_app().await;
    let approver = access_key(&app, "approver").await;
    let admin = access_key(&app, "admin").await;
    let id = waiting_order(&app).await;
    let execution = order(&app, &id).await["execution_arn"].clone();

    for action in ["ListStateMachines", "ListActivities"] {
        let (status, out) = call(&app, &approver, action, json!({})).await;
        assert_eq!(status, 200, "{action}: {out}");
    }
    let (status, out) = call(
        &app,
        &approver,
        "DescribeExecution",
        json!({"executionArn": execution}),
    )
    .await;
    assert_eq!(status, 200, "{out}");

    let create = json!({
        "name": "mine",
        "definition": one_task("orderflow:callback.waitForTaskToken"),
        "roleArn": ROLE,
    });
    let refused = [
        ("CreateStateMachine", create.clone()),
        ("StopExecution", json!({"executionArn": execution})),
        (
            "DeleteStateMachine",
            json!({"stateMachineArn": machine_arn("order-approval")}),
        ),
        (
            "SendTaskSuccess",
            json!({"taskToken": "0".repeat(64), "output": "{}"}),
        ),
        ("CreateActivity", json!({"name": "work"})),
        ("TestState", json!({"definition": "{}", "roleArn": ROLE})),
    ];
    for (action, body) in refused {
        let (status, err) = call(&app, &approver, action, body).await;
        assert_eq!(status, 400, "{action}: {err}");
        assert_eq!(err["__type"], "AccessDeniedException", "{action}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(&format!("states:{action}")), "{message}");
    }
    assert_eq!(order(&app, &id).await["status"], "awaiting_approval");
    let (status, out) = call(&app, &admin, "CreateStateMachine", create).await;
    assert_eq!(status, 200, "an admin's key may: {out}");
}

#[tokio::test]
async fn nobody_decides_an_order_they_placed() {
    let app = spawn_app().await;
    let body = json!({"OrderItems": ["desk"], "Cost": 150, "CustomerEmail": "someone@example.com"});
    let (status, placed) = app
        .post_json("/api/orders", Some(&app.approver_token), &body.to_string())
        .await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["placed_by"], "approver");
    let id = placed["order_id"].as_str().unwrap();
    for approved in [true, false] {
        let (status, err) = decide(&app, &app.approver_token, id, approved).await;
        assert_eq!(status, 403, "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("You placed this order"),
            "{err}"
        );
    }
    assert_eq!(order(&app, id).await["status"], "awaiting_approval");
    let (status, decided) = decide(&app, &app.admin_token, id, true).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "processed", "{decided}");
}

#[tokio::test]
async fn stopping_an_orders_execution_rejects_the_order_in_the_same_step() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;
    let id = waiting_order(&app).await;
    let execution = order(&app, &id).await["execution_arn"].clone();
    let body = json!({"executionArn": execution, "error": "Ops.Cancelled", "cause": "duplicate"});
    let (status, out) = call(&app, &admin, "StopExecution", body).await;
    assert_eq!(status, 200, "{out}");

    let stopped = order(&app, &id).await;
    assert_eq!(stopped["status"], "rejected", "{stopped}");
    assert_eq!(stopped["decision"]["reason"], "duplicate", "{stopped}");
    assert_eq!(stopped["decision"]["by"], "admin", "{stopped}");
    let (status, err) = decide(&app, &app.approver_token, &id, true).await;
    assert_eq!(status, 409, "already decided, not a server error: {err}");
    let trail = orderflow::orders::trail(&app.state, &id).await.unwrap();
    assert_eq!(trail.last().unwrap().action, "stopped", "{trail:?}");
}

#[tokio::test]
async fn an_order_whose_workflow_times_out_is_rejected_with_the_reason() {
    let clock = ManualClock::starting_now();
    let app = spawn_app_on(ApprovalPolicy::default(), &clock).await;
    let mut workflow: Value = serde_json::from_str(orderflow::orders::WORKFLOW_DEFINITION).unwrap();
    workflow["TimeoutSeconds"] = json!(1);
    app.state
        .runtime
        .put_state_machine(orderflow::orders::WORKFLOW, &workflow.to_string())
        .await
        .unwrap();
    let id = waiting_order(&app).await;
    app.advance(&clock, std::time::Duration::from_secs(1));
    app.wait_until(|| async { order(&app, &id).await["status"] != "awaiting_approval" })
        .await;
    let last = order(&app, &id).await;
    assert_eq!(last["status"], "rejected", "{last}");
    let reason = last["decision"]["reason"].as_str().unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    let (status, _) = decide(&app, &app.approver_token, &id, true).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_signed_in_approver_ordering_in_the_storefront_cannot_approve_it() {
    use leptos::server_fn::ServerFn;
    use orderflow::app::calls::{Login, PlaceOrder};
    let app = spawn_app().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &'static str, form: Vec<(&'static str, &'static str)>| {
        browser
            .post(app.url(path))
            .header("origin", format!("http://{}", app.addr))
            .header("accept", "application/json")
            .form(&form)
            .send()
    };
    let login = vec![("username", "approver"), ("password", "approver-password")];
    let res = post(<Login as ServerFn>::PATH, login).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let form = vec![
        ("customer_name", "Ann Example"),
        ("customer_email", "ann@example.com"),
        ("quantities[standing-desk]", "1"),
    ];
    let res = post(<PlaceOrder as ServerFn>::PATH, form).await.unwrap();
    assert!(res.status().as_u16() < 400, "{}", res.status());

    let (id, placed_by): (String, Option<String>) =
        sqlx::query_as("SELECT id, placed_by FROM orders")
            .fetch_one(&app.state.db().reader)
            .await
            .unwrap();
    assert_eq!(placed_by.as_deref(), Some("approver"));
    assert_eq!(order(&app, &id).await["status"], "awaiting_approval");
    let (status, err) = decide(&app, &app.approver_token, &id, true).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(order(&app, &id).await["status"], "awaiting_approval");
}
