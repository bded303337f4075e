//! The real binary: killed with SIGKILL while an order awaits approval, after a restart the order
//! is still there and can be approved to `processed`; its user and key commands are audited.

use crate::common::binary::{cli, free_port, start};

#[tokio::test]
async fn an_order_awaiting_approval_survives_kill_dash_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.sqlite3").display());
    cli(
        &db,
        &[
            "user",
            "add",
            "ann",
            "--role",
            "approver",
            "--password-stdin",
        ],
        "a-long-password\n",
    );
    let token = cli(&db, &["token", "create", "ann"], "").trim().to_string();
    // Orders come from another account: nobody decides an order they placed.
    let shop = [
        "user",
        "add",
        "shop",
        "--role",
        "approver",
        "--password-stdin",
    ];
    cli(&db, &shop, "another-long-password\n");
    let shop_token = cli(&db, &["token", "create", "shop"], "")
        .trim()
        .to_string();
    let port = free_port();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let mut server = start(&db, port).await;
    let res = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(&shop_token)
        .body(r#"{"OrderID": "crash-1", "OrderItems": ["server rack"], "Cost": 2500}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "awaiting_approval");
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().unwrap();

    let mut server = start(&db, port).await;
    let res = client
        .post(format!("{base}/api/orders/crash-1/decision"))
        .bearer_auth(&token)
        .body(r#"{"approved": true}"#)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "processed");
}

#[tokio::test]
async fn command_line_changes_are_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.sqlite3").display());
    let add = ["user", "add", "bo", "--role", "admin", "--password-stdin"];
    cli(&db, &add, "a-long-password\n");
    cli(
        &db,
        &["user", "passwd", "bo", "--password-stdin"],
        "another-password\n",
    );
    let profile = [
        "user",
        "profile",
        "bo",
        "--email",
        "bo@example.com",
        "--approval-limit",
        "250",
    ];
    cli(&db, &profile, "");
    cli(&db, &["token", "create", "bo"], "");
    let key = cli(&db, &["access-key", "create", "bo"], "");
    let key_id = key
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("AWS_ACCESS_KEY_ID=");

    let db = orderflow::db::Db::open(&db).await.unwrap();
    let log = orderflow::console::audit_log(&db, None, 10).await.unwrap();
    let seen: Vec<_> = log
        .iter()
        .rev()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.target.as_str(),
                e.detail.as_deref(),
            )
        })
        .collect();
    let cli = "(command line)";
    assert_eq!(
        seen,
        [
            (cli, "add user", "bo", Some("role admin")),
            (cli, "reset password", "bo", None),
            (
                cli,
                "update user",
                "bo",
                Some("e-mail bo@example.com, limit $250.00")
            ),
            (cli, "create API token", "bo", None),
            (cli, "create access key", key_id, Some("bo")),
        ]
    );
}
