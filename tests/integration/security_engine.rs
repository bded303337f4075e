//! Definitions and data built to break the engine, sent over real HTTP to `/sfn`: each is
//! refused or fails its own execution with a clear error, and the service and its worker stay
//! up for everyone else.

use crate::common::sfn::{access_key, call};
use crate::common::{spawn_app, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::000000000000:role/any";

/// A Pass state that reads `path` into `x`.
fn reads(path: &str) -> String {
    json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"x.$": path}, "End": true
    }}})
    .to_string()
}

/// The diagnostics ValidateStateMachineDefinition gives `definition` (empty when valid).
async fn diagnostics(app: &TestApp, key: &(String, String), definition: &str) -> Vec<String> {
    let body = json!({"definition": definition});
    let (status, out) = call(app, key, "ValidateStateMachineDefinition", body).await;
    assert_eq!(status, 200, "{out}");
    out["diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("no diagnostics in {out}"))
        .iter()
        .map(|d| d["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn still_up(app: &TestApp) {
    let res = app.client.get(app.url("/healthz")).send().await;
    assert_eq!(res.expect("the server answers").status(), 200);
}

/// Creates `name` from `definition`, runs it on `input` and waits for its end.
async fn run(
    app: &TestApp,
    key: &(String, String),
    name: &str,
    definition: &str,
    input: Value,
) -> Value {
    let body = json!({"name": name, "definition": definition, "roleArn": ROLE});
    let (status, created) = call(app, key, "CreateStateMachine", body).await;
    assert_eq!(status, 200, "{created}");
    let body = json!({"stateMachineArn": created["stateMachineArn"], "input": input.to_string()});
    let (status, started) = call(app, key, "StartExecution", body).await;
    assert_eq!(status, 200, "{started}");
    let arn = json!({"executionArn": started["executionArn"]});
    for _ in 0..100 {
        let (_, described) = call(app, key, "DescribeExecution", arn.clone()).await;
        if described["status"] != "RUNNING" {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} did not end");
}

#[tokio::test]
async fn deeply_nested_filters_and_expressions_are_refused_and_the_server_stays_up() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;

    // Far past the limit: once, this overflowed the stack and aborted the process.
    let deep = format!("$.a[?({}@.b{})]", "!(".repeat(150_000), ")".repeat(150_000));
    let found = diagnostics(&app, &admin, &reads(&deep)).await;
    assert!(
        found.iter().any(|m| m.contains("at most 32 deep")),
        "{found:?}"
    );
    still_up(&app).await;

    // One level past the limit is refused; at the limit is fine.
    let nested = |n: usize| format!("$.a[?({}@.b{})]", "(".repeat(n), ")".repeat(n));
    assert_eq!(
        diagnostics(&app, &admin, &reads(&nested(32))).await,
        Vec::<String>::new()
    );
    let found = diagnostics(&app, &admin, &reads(&nested(33))).await;
    assert!(
        found.iter().any(|m| m.contains("at most 32 deep")),
        "{found:?}"
    );

    let long = format!("$.a[?({})]", vec!["@.b"; 65].join(" && "));
    let found = diagnostics(&app, &admin, &reads(&long)).await;
    assert!(found.iter().any(|m| m.contains("at most 64")), "{found:?}");

    let steps = format!("${}", ".a".repeat(65));
    let found = diagnostics(&app, &admin, &reads(&steps)).await;
    assert!(
        found.iter().any(|m| m.contains("at most 64 steps")),
        "{found:?}"
    );

    let calls = format!("{}1{}", "States.Array(".repeat(50_000), ")".repeat(50_000));
    let found = diagnostics(&app, &admin, &reads(&calls)).await;
    assert!(found.iter().any(|m| m.contains("nested")), "{found:?}");

    let expression = format!("{{% {}1{} %}}", "(".repeat(100_000), ")".repeat(100_000));
    let jsonata = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {
        "Type": "Pass", "Output": expression, "End": true
    }}});
    let found = diagnostics(&app, &admin, &jsonata.to_string()).await;
    assert!(!found.is_empty(), "a 100,000-deep expression is refused");
    still_up(&app).await;
}

#[tokio::test]
async fn hostile_paths_and_data_fail_their_own_execution_and_the_worker_goes_on() {
    let app = spawn_app().await;
    let admin = access_key(&app, "admin").await;

    // A slice step of i64::MAX once overflowed and killed the worker on every restart.
    let sliced = run(
        &app,
        &admin,
        "sliced",
        &reads("$.a[1::9223372036854775807]"),
        json!({"a": [1, 2, 3]}),
    )
    .await;
    assert_eq!(sliced["status"], "SUCCEEDED", "{sliced}");
    assert_eq!(sliced["output"], json!({"x": [2]}).to_string());

    // A loop that wraps its data once per lap stops at the depth limit, with a reason.
    let wraps = json!({"StartAt": "Wrap", "States": {
        "Wrap": {"Type": "Pass", "Parameters": {"a.$": "$"}, "Next": "Again"},
        "Again": {"Type": "Choice", "Default": "Wrap",
            "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "Done"}]},
        "Done": {"Type": "Succeed"}
    }});
    let wrapped = run(&app, &admin, "wraps", &wraps.to_string(), json!({})).await;
    assert_eq!(wrapped["status"], "FAILED", "{wrapped}");
    assert_eq!(wrapped["error"], "States.DataLimitExceeded", "{wrapped}");
    assert!(
        wrapped["cause"].as_str().unwrap().contains("levels deep"),
        "{wrapped}"
    );

    // A union repeating a large subtree would multiply the data past any output.
    let big = json!({"s": ["x".repeat(100_000)]});
    let repeated = run(&app, &admin, "repeats", &reads("$.s[0,0,0]"), big).await;
    assert_eq!(repeated["status"], "FAILED", "{repeated}");
    assert_eq!(repeated["error"], "States.DataLimitExceeded", "{repeated}");

    // The worker is still there for the next execution, timers included.
    let timer = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
        "P": {"Type": "Pass", "Result": "on time", "End": true}
    }});
    let later = run(&app, &admin, "timer", &timer.to_string(), json!({})).await;
    assert_eq!(later["status"], "SUCCEEDED", "{later}");
    assert_eq!(later["output"], "\"on time\"");
    still_up(&app).await;
}
