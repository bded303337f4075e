//! The REST API over real HTTP on a loopback port.

use crate::common::spawn_app;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn orders_api_refuses_missing_or_unknown_tokens() {
    let app = spawn_app().await;
    let body = r#"{"OrderItems": ["pen"], "Cost": 5}"#;
    let (status, err) = app.post_json("/api/orders", None, body).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"], "unauthorized");
    let (status, _) = app
        .post_json("/api/orders", Some("of_not-a-real-token"), body)
        .await;
    assert_eq!(status, 401);
    let (status, _) = app.get_json("/api/orders/anything", None).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_json("/api/orders/x/decision", None, r#"{"approved": true}"#)
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn small_order_is_processed_at_once() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderID": "small-1", "OrderItems": ["pen"], "Cost": 50}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order_id"], "small-1");
    assert_eq!(body["status"], "processed");
    let (status, body) = app
        .get_json("/api/orders/small-1", Some(&app.approver_token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "processed");
    assert_eq!(body["total"]["cents"], 5000);
}

#[tokio::test]
async fn threshold_is_exclusive_so_exactly_100_is_auto_approved() {
    let app = spawn_app().await;
    let (_, at) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": ["a"], "Cost": 100}"#,
        )
        .await;
    assert_eq!(at["status"], "processed");
    let (_, above) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": ["a"], "Cost": 100.01}"#,
        )
        .await;
    assert_eq!(above["status"], "awaiting_approval");
}

#[tokio::test]
async fn large_order_waits_and_approval_processes_it_keeping_the_order_data() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderID": "big-1", "OrderItems": ["chair", "desk"], "Cost": 150.5}"#,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["status"], "awaiting_approval");
    assert_eq!(body["total"]["cents"], 15050);

    let (status, body) = app
        .post_json(
            "/api/orders/big-1/decision",
            Some(&app.approver_token),
            r#"{"approved": true, "reason": "fine"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "processed");
    assert_eq!(body["decision"]["by"], "approver");
    assert_eq!(body["decision"]["approved"], true);

    // ResultPath keeps the order data through the callback: the execution's output still has it.
    let exec = app
        .state
        .runtime
        .describe_execution(body["execution_arn"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.status, "SUCCEEDED");
    let output = exec.output.unwrap();
    assert_eq!(output["OrderID"], "big-1");
    assert_eq!(output["OrderItems"], json!(["chair", "desk"]));
    assert_eq!(output["approval"]["approved"], true);
}

#[tokio::test]
async fn rejection_requires_a_reason_and_is_recorded() {
    let app = spawn_app().await;
    app.post_json(
        "/api/orders",
        Some(&app.admin_token),
        r#"{"OrderID": "big-2", "OrderItems": ["x"], "Cost": 500}"#,
    )
    .await;
    let (status, err) = app
        .post_json(
            "/api/orders/big-2/decision",
            Some(&app.approver_token),
            r#"{"approved": false}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["field"], "reason");
    let (_, still) = app
        .get_json("/api/orders/big-2", Some(&app.admin_token))
        .await;
    assert_eq!(still["status"], "awaiting_approval");

    let (status, body) = app
        .post_json(
            "/api/orders/big-2/decision",
            Some(&app.approver_token),
            r#"{"approved": false, "reason": "Over budget"}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["decision"]["reason"], "Over budget");
    let exec = app
        .state
        .runtime
        .describe_execution(body["execution_arn"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.status, "FAILED");
    assert_eq!(exec.error.as_deref(), Some("OrderRejected"));
    assert_eq!(
        exec.cause.as_deref(),
        Some("The order was rejected by its approver.")
    );
}

#[tokio::test]
async fn a_second_decision_gets_409_already_decided() {
    let app = spawn_app().await;
    app.post_json(
        "/api/orders",
        Some(&app.admin_token),
        r#"{"OrderID": "big-3", "OrderItems": ["x"], "Cost": 500}"#,
    )
    .await;
    let decide = |body: &'static str| {
        app.post_json(
            "/api/orders/big-3/decision",
            Some(&app.approver_token),
            body,
        )
    };
    let (first, second) = tokio::join!(
        decide(r#"{"approved": true}"#),
        decide(r#"{"approved": false, "reason": "no"}"#)
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 409],
        "exactly one decision wins: {first:?} {second:?}"
    );
    let loser = if first.0 == 409 { first.1 } else { second.1 };
    assert_eq!(loser["error"], "already_decided");
    assert!(loser["message"]
        .as_str()
        .unwrap()
        .contains("already decided by approver"));
}

#[tokio::test]
async fn orders_without_items_or_cost_are_accepted_and_found_invalid() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": [], "Cost": 20}"#,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["status"], "invalid");
    let (_, body) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": ["a"], "Cost": 0}"#,
        )
        .await;
    assert_eq!(body["status"], "invalid");
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_field_and_creates_nothing() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    let cases = [
        ("not json", "body"),
        ("[1, 2]", "body"),
        (r#"{"OrderItems": ["a"]}"#, "Cost"),
        (r#"{"OrderItems": ["a"], "Cost": "150"}"#, "Cost"),
        (r#"{"OrderItems": ["a"], "Cost": 1.234}"#, "Cost"),
        (r#"{"OrderItems": ["a"], "Cost": 1e300}"#, "Cost"),
        (r#"{"Cost": 5}"#, "OrderItems"),
        (r#"{"OrderItems": "pen", "Cost": 5}"#, "OrderItems"),
        (r#"{"OrderItems": [3], "Cost": 5}"#, "OrderItems"),
        (
            r#"{"OrderID": "has spaces", "OrderItems": ["a"], "Cost": 5}"#,
            "OrderID",
        ),
        (
            r#"{"OrderID": 7, "OrderItems": ["a"], "Cost": 5}"#,
            "OrderID",
        ),
        (
            r#"{"OrderItems": ["a"], "Cost": 5, "CustomerEmail": "nope"}"#,
            "customer_email",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = app.post_json("/api/orders", token, body).await;
        assert_eq!(status, 400, "{body} -> {err}");
        assert_eq!(err["field"], field, "{body} -> {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn duplicate_order_ids_get_409_and_unknown_ones_404() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    let body = r#"{"OrderID": "dup", "OrderItems": ["a"], "Cost": 5}"#;
    assert_eq!(app.post_json("/api/orders", token, body).await.0, 201);
    let (status, err) = app.post_json("/api/orders", token, body).await;
    assert_eq!(status, 409);
    assert_eq!(err["error"], "duplicate");
    assert_eq!(app.get_json("/api/orders/nope", token).await.0, 404);
    assert_eq!(
        app.post_json("/api/orders/nope/decision", token, r#"{"approved": true}"#)
            .await
            .0,
        404
    );
    let (status, err) = app
        .post_json("/api/orders/dup/decision", token, r#"{"approved": "yes"}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["field"], "approved");
    assert_eq!(app.order_count().await, 1);
}

#[tokio::test]
async fn deciding_an_order_that_is_not_waiting_gets_409() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    app.post_json(
        "/api/orders",
        token,
        r#"{"OrderID": "done", "OrderItems": ["a"], "Cost": 5}"#,
    )
    .await;
    let (status, err) = app
        .post_json("/api/orders/done/decision", token, r#"{"approved": true}"#)
        .await;
    assert_eq!(status, 409);
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("not awaiting approval"));
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(&app.admin_token)
        .header("origin", "https://evil.example")
        .body(r#"{"OrderItems": ["a"], "Cost": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn execution_history_uses_aws_event_names_in_order() {
    let app = spawn_app().await;
    let (_, body) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": ["a"], "Cost": 5}"#,
        )
        .await;
    let events = app
        .state
        .runtime
        .history(body["execution_arn"].as_str().unwrap())
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
    for kind in [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as i64 + 1);
        assert_eq!(e.previous_event_id, i as i64);
    }
}

#[tokio::test]
async fn metrics_count_orders_and_executions_by_status() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    app.post_json("/api/orders", token, r#"{"OrderItems": ["a"], "Cost": 5}"#)
        .await;
    app.post_json(
        "/api/orders",
        token,
        r#"{"OrderItems": ["a"], "Cost": 500}"#,
    )
    .await;
    let (status, _) = app.get_json("/metrics", None).await;
    assert_eq!(status, 401);
    let (status, body) = app.get_json("/metrics", Some(&app.approver_token)).await;
    assert_eq!(status, 403, "{body}");
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("orderflow_orders{status=\"processed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("orderflow_orders{status=\"awaiting_approval\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("orderflow_executions{status=\"RUNNING\"} 1"),
        "{text}"
    );
    assert!(text.contains("orderflow_pending_task_tokens 1"), "{text}");
    assert!(
        text.contains("# TYPE orderflow_steps_total counter"),
        "{text}"
    );
}
