//! The AWS Step Functions API at `/sfn`: SigV4 authentication over real HTTP, and the actions
//! driven by the real boto3 client and AWS CLI (installed by `scripts/setup test` into `.venv`).

use crate::common;

use crate::common::spawn_app;
use orderflow::sfn::sigv4::{signature, Authorization, Signed};
use serde_json::Value;
use std::path::{Path, PathBuf};

const TARGET: &str = "AWSStepFunctions.ListStateMachines";

/// Sends a JSON 1.0 request with the given `Authorization` and `X-Amz-Date` headers.
async fn send(
    app: &common::TestApp,
    authorization: Option<&str>,
    amz_date: &str,
    body: &str,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/sfn"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", TARGET)
        .header("x-amz-date", amz_date)
        .body(body.to_string());
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// An `Authorization` header signing the request of [`send`] at `amz_date`.
fn sign(app: &common::TestApp, key: &str, secret: &str, amz_date: &str, body: &str) -> String {
    let date = &amz_date[..8];
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={key}/{date}/us-east-1/states/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
    );
    let auth = Authorization::parse(&header).unwrap();
    let request = Signed {
        method: "POST",
        path: "/sfn",
        query: "",
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("host".into(), app.addr.to_string()),
            ("x-amz-date".into(), amz_date.into()),
            ("x-amz-target".into(), TARGET.into()),
        ],
        body: body.as_bytes(),
    };
    let sig = signature(&request, &auth, amz_date, secret).unwrap();
    header.replace("Signature=0", &format!("Signature={sig}"))
}

fn amz_date(offset_minutes: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(offset_minutes);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap()
}

#[tokio::test]
async fn requests_need_a_valid_fresh_signature_from_a_known_key() {
    let app = spawn_app().await;
    let (key, secret) = orderflow::auth::create_access_key(app.state.db(), "admin")
        .await
        .unwrap();
    let body = "{}";
    let now = amz_date(0);
    let last_used = || async {
        let keys = orderflow::auth::access_keys(app.state.db()).await.unwrap();
        keys[0].last_used_at.clone()
    };
    assert_eq!(last_used().await, None);

    let signed = sign(&app, &key, &secret, &now, body);
    let (status, ok) = send(&app, Some(&signed), &now, body).await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok["stateMachines"].is_array(), "{ok}");
    // The note is written behind the request's back: it shows up soon after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while last_used().await.is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        last_used().await.is_some(),
        "a signed request marks its key used"
    );

    let cases = [
        (
            None,
            now.clone(),
            403,
            "MissingAuthenticationTokenException",
        ),
        (
            Some(sign(&app, "AKOFNOSUCHKEY0000000", &secret, &now, body)),
            now.clone(),
            400,
            "UnrecognizedClientException",
        ),
        (
            Some(sign(&app, &key, "not-the-secret", &now, body)),
            now.clone(),
            400,
            "InvalidSignatureException",
        ),
        (
            Some(sign(&app, &key, &secret, &amz_date(-20), body)),
            amz_date(-20),
            400,
            "InvalidSignatureException",
        ),
        (
            Some("Bearer whatever".to_string()),
            now.clone(),
            400,
            "IncompleteSignatureException",
        ),
    ];
    for (authorization, date, expected_status, kind) in cases {
        let (status, error) = send(&app, authorization.as_deref(), &date, body).await;
        assert_eq!(
            (status, error["__type"].as_str()),
            (expected_status, Some(kind)),
            "{error}"
        );
    }
    // A body changed after signing no longer matches.
    let (status, error) = send(&app, Some(&signed), &now, "{\"maxResults\": 1}").await;
    assert_eq!(
        (status, error["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    let stale = sign(&app, &key, &secret, &amz_date(-20), body);
    let (_, error) = send(&app, Some(&stale), &amz_date(-20), body).await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Signature expired:")),
        "{error}"
    );
}

/// A program from `.venv/bin` (made by `scripts/setup test`, which the README's test command runs).
fn venv(program: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(program);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/setup test` (the README's test command does)",
        path.display()
    );
    path
}

/// Runs an AWS client with the endpoint and the access key in its environment. The server runs
/// on the test's runtime, so the client waits on another thread.
async fn run_client(
    program: PathBuf,
    args: Vec<String>,
    endpoint: String,
    (key, secret): (String, String),
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .env("ENDPOINT", endpoint)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
    })
    .await
    .expect("the client thread ends")
    .expect("the client runs")
}

#[tokio::test]
async fn boto3_drives_state_machines_executions_and_history() {
    let python = venv("python");
    let app = spawn_app().await;
    let key = orderflow::auth::create_access_key(app.state.db(), "admin")
        .await
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/boto3_flow.py");
    let args = vec![script.display().to_string()];
    let out = run_client(python, args, app.url("/sfn"), key).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// `aws --endpoint-url … stepfunctions <args>`: the exit status, and stdout as JSON (or stderr).
async fn aws(
    app: &common::TestApp,
    key: &(String, String),
    args: &[&str],
) -> (bool, Value, String) {
    let mut all = vec![
        "--endpoint-url".to_string(),
        app.url("/sfn"),
        "--output".into(),
        "json".into(),
    ];
    all.push("stepfunctions".into());
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run_client(venv("aws"), all, app.url("/sfn"), key.clone()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_aws_cli_runs_a_callback_workflow() {
    let app = spawn_app().await;
    let key = orderflow::auth::create_access_key(app.state.db(), "admin")
        .await
        .unwrap();
    let definition = serde_json::json!({
        "StartAt": "Ask",
        "States": {"Ask": {"Type": "Task", "Resource": "orderflow:callback.waitForTaskToken",
            "Parameters": {"TaskToken.$": "$$.Task.Token"}, "End": true}}
    })
    .to_string();
    let role = "arn:aws:iam::000000000000:role/cli";
    let (ok, created, err) = aws(
        &app,
        &key,
        &[
            "create-state-machine",
            "--name",
            "cli",
            "--role-arn",
            role,
            "--definition",
            &definition,
        ],
    )
    .await;
    assert!(ok, "{err}");
    let machine = created["stateMachineArn"].as_str().unwrap().to_string();
    assert_eq!(
        machine,
        "arn:aws:states:us-east-1:000000000000:stateMachine:cli"
    );

    let (ok, started, err) = aws(
        &app,
        &key,
        &[
            "start-execution",
            "--state-machine-arn",
            &machine,
            "--name",
            "run-1",
            "--input",
            r#"{"n": 1}"#,
        ],
    )
    .await;
    assert!(ok, "{err}");
    let execution = started["executionArn"].as_str().unwrap().to_string();
    let (_, history, err) = aws(
        &app,
        &key,
        &["get-execution-history", "--execution-arn", &execution],
    )
    .await;
    let scheduled = history["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["type"] == "TaskScheduled"))
        .unwrap_or_else(|| panic!("no TaskScheduled event: {history} {err}"));
    let parameters: Value = serde_json::from_str(
        scheduled["taskScheduledEventDetails"]["parameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let token = parameters["TaskToken"].as_str().unwrap();

    let (ok, _, err) = aws(
        &app,
        &key,
        &[
            "send-task-success",
            "--task-token",
            token,
            "--task-output",
            r#"{"done": true}"#,
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (_, described, _) = aws(
        &app,
        &key,
        &["describe-execution", "--execution-arn", &execution],
    )
    .await;
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    assert_eq!(described["output"], r#"{"done":true}"#);
    let (ok, _, err) = aws(
        &app,
        &key,
        &[
            "send-task-success",
            "--task-token",
            token,
            "--task-output",
            "{}",
        ],
    )
    .await;
    assert!(!ok && err.contains("TaskTimedOut"), "{err}");

    let (_, listed, _) = aws(
        &app,
        &key,
        &["list-executions", "--state-machine-arn", &machine],
    )
    .await;
    assert_eq!(listed["executions"][0]["executionArn"], execution.as_str());

    // An order's approval is decided in the inbox (or the REST API), not by its raw token.
    let (status, order) = app
        .post_json(
            "/api/orders",
            Some(&app.admin_token),
            r#"{"OrderItems": ["desk"], "Cost": 500}"#,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap();
    let order_token: String = sqlx::query_scalar("SELECT task_token FROM orders WHERE id = ?")
        .bind(order_id)
        .fetch_one(&app.state.db().reader)
        .await
        .unwrap();
    let (ok, _, err) = aws(
        &app,
        &key,
        &[
            "send-task-success",
            "--task-token",
            &order_token,
            "--task-output",
            r#"{"approved": true}"#,
        ],
    )
    .await;
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    let (ok, _, err) = aws(
        &app,
        &key,
        &[
            "send-task-failure",
            "--task-token",
            &order_token,
            "--error",
            "X",
        ],
    )
    .await;
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    let (_, order) = app
        .get_json(&format!("/api/orders/{order_id}"), Some(&app.admin_token))
        .await;
    assert_eq!(order["status"], "awaiting_approval", "{order}");
    let workflow = "arn:aws:states:us-east-1:000000000000:stateMachine:order-approval";
    let (ok, _, err) = aws(
        &app,
        &key,
        &[
            "update-state-machine",
            "--state-machine-arn",
            workflow,
            "--definition",
            &definition,
        ],
    )
    .await;
    assert!(!ok && err.contains("ValidationException"), "{err}");

    let wrong = (key.0.clone(), "x".repeat(40));
    let (ok, _, err) = aws(&app, &wrong, &["list-state-machines"]).await;
    assert!(!ok && err.contains("InvalidSignatureException"), "{err}");
}
