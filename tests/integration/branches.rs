//! Parallel and Map states on the durable runtime: branch runs, their results, failures,
//! concurrency limits, callbacks inside iterations, and restarts in the middle.

use orderflow::db::Db;
use orderflow::db::WriteConn;
use orderflow::runtime::{HandlerError, HandlerFuture, ManualClock, Registry, Runtime, TaskCall};
use serde_json::{json, Value};

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("branches.sqlite3").display())
}

/// Echoes its parameters; fails with `Bad` when they hold `"fail": true`.
fn echo<'a>(_conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        if call.parameters.get("fail") == Some(&json!(true)) {
            return Err(HandlerError::task(
                "Bad",
                format!("item {}", call.parameters),
            ));
        }
        Ok(json!({ "echo": call.parameters }))
    })
}

async fn runtime(dir: &tempfile::TempDir) -> Runtime {
    runtime_on(dir, &ManualClock::starting_now()).await
}

/// A runtime that reads the time from `clock`.
async fn runtime_on(dir: &tempfile::TempDir, clock: &ManualClock) -> Runtime {
    let db = Db::open(&url(dir)).await.unwrap();
    let mut registry = Registry::new();
    registry.register("test:echo", echo);
    Runtime::with_clock(db, registry, std::sync::Arc::new(clock.clone()))
}

async fn run(rt: &Runtime, definition: Value, input: Value) -> orderflow::runtime::ExecutionInfo {
    rt.put_state_machine("m", &definition.to_string())
        .await
        .unwrap();
    let id = rt.start_execution("m", None, input).await.unwrap();
    rt.run_until_idle().await.unwrap();
    rt.describe_execution(&id).await.unwrap().unwrap()
}

async fn kinds(rt: &Runtime, id: &str) -> Vec<String> {
    rt.history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn parallel_branches_run_and_their_outputs_come_back_in_branch_order() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "ResultPath": "$.results",
                "End": true,
                "Branches": [
                    {"StartAt": "Slow", "States": {
                        "Slow": {"Type": "Wait", "Seconds": 0, "Next": "Add"},
                        "Add": {"Type": "Pass", "Parameters": {"branch": 0, "v.$": "$.v"}, "End": true}
                    }},
                    {"StartAt": "Call", "States": {
                        "Call": {"Type": "Task", "Resource": "test:echo",
                                 "Parameters": {"branch": 1}, "End": true}
                    }}
                ]
            }
        }
    });
    let info = run(&rt, definition, json!({"v": 7})).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!({"v": 7, "results": [{"branch": 0, "v": 7}, {"echo": {"branch": 1}}]}))
    );
    let kinds = kinds(&rt, &info.id).await;
    for expected in [
        "ParallelStateEntered",
        "ParallelStateStarted",
        "WaitStateEntered",
        "TaskSucceeded",
        "ParallelStateSucceeded",
        "ParallelStateExited",
        "ExecutionSucceeded",
    ] {
        assert!(
            kinds.contains(&expected.to_string()),
            "{expected} in {kinds:?}"
        );
    }
    assert_eq!(kinds.last().map(String::as_str), Some("ExecutionSucceeded"));
    let history = rt.history(&info.id).await.unwrap();
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.id, i as i64 + 1, "ids run on across branches");
        assert!(e.previous_event_id < e.id);
    }
}

#[tokio::test]
async fn a_failed_branch_fails_the_parallel_state_into_its_catch() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Next": "Fine",
                "Catch": [{"ErrorEquals": ["Bad"], "ResultPath": "$.error", "Next": "Handled"}],
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": true}}},
                    {"StartAt": "No", "States": {
                        "No": {"Type": "Task", "Resource": "test:echo",
                               "Parameters": {"fail": true}, "End": true}
                    }}
                ]
            },
            "Fine": {"Type": "Succeed"},
            "Handled": {"Type": "Pass", "End": true}
        }
    });
    let info = run(&rt, definition, json!({"k": 1})).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let output = info.output.unwrap_or_default();
    assert_eq!(output["error"]["Error"], json!("Bad"));
    assert_eq!(output["k"], json!(1));
    let kinds = kinds(&rt, &info.id).await;
    assert!(
        kinds.contains(&"ParallelStateFailed".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"ParallelStateSucceeded".to_string()));
}

#[tokio::test]
async fn map_runs_each_item_through_item_selector_with_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemSelector": {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "tag.$": "$.tag"},
                "ItemProcessor": {"StartAt": "Call", "States": {
                    "Call": {"Type": "Task", "Resource": "test:echo", "ResultSelector": {"got.$": "$.echo"}, "End": true}
                }},
                "ResultSelector": {"count.$": "States.ArrayLength($)", "all.$": "$"},
                "End": true
            }
        }
    });
    let info = run(
        &rt,
        definition,
        json!({"items": ["a", "b", "c"], "tag": "t"}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let output = info.output.unwrap_or_default();
    assert_eq!(output["count"], json!(3));
    assert_eq!(
        output["all"],
        json!([
            {"got": {"item": "a", "index": 0, "tag": "t"}},
            {"got": {"item": "b", "index": 1, "tag": "t"}},
            {"got": {"item": "c", "index": 2, "tag": "t"}}
        ])
    );
    let kinds = kinds(&rt, &info.id).await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("MapIterationStarted"), 3);
    assert_eq!(count("MapIterationSucceeded"), 3);
    assert_eq!(count("MapStateStarted"), 1);
    assert_eq!(kinds.last().map(String::as_str), Some("ExecutionSucceeded"));
}

#[tokio::test]
async fn an_empty_map_succeeds_with_an_empty_array_and_a_non_array_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "End": true,
            "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}
    });
    let info = run(&rt, definition.clone(), json!([])).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!([])));
    let info = run(&rt, definition, json!({"not": "an array"})).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn map_failures_within_tolerance_are_reported_and_beyond_it_fail_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let map = |tolerated: u64| {
        json!({
            "StartAt": "Each",
            "States": {"Each": {"Type": "Map", "End": true, "MaxConcurrency": 1,
                "ToleratedFailureCount": tolerated,
                "ItemProcessor": {"StartAt": "Call", "States": {
                    "Call": {"Type": "Task", "Resource": "test:echo", "End": true}}}}}
        })
    };
    let items = json!([{"n": 1}, {"fail": true}, {"n": 3}, {"fail": true}]);
    let info = run(&rt, map(2), items.clone()).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let output = info.output.unwrap_or_default();
    assert_eq!(output[0], json!({"echo": {"n": 1}}));
    assert_eq!(output[1]["Error"], json!("Bad"));
    assert_eq!(output[2], json!({"echo": {"n": 3}}));

    let info = run(&rt, map(1), items).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(
        info.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    let kinds = kinds(&rt, &info.id).await;
    assert!(
        kinds.contains(&"MapIterationFailed".to_string()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"MapStateFailed".to_string()), "{kinds:?}");
}

const APPROVE_EACH: &str = r#"{
  "StartAt": "Each",
  "States": {
    "Each": {
      "Type": "Map",
      "MaxConcurrency": 1,
      "ItemProcessor": {
        "StartAt": "Ask",
        "States": {
          "Ask": {"Type": "Task", "Resource": "test:echo.waitForTaskToken",
                  "Parameters": {"item.$": "$"}, "End": true}
        }
      },
      "End": true
    }
  }
}"#;

async fn pending_tokens(rt: &Runtime) -> Vec<String> {
    sqlx::query_scalar("SELECT token FROM task_tokens WHERE status = 'pending' ORDER BY created_at")
        .fetch_all(&rt.db().reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn map_iterations_wait_for_callbacks_one_at_a_time_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let rt = runtime(&dir).await;
        rt.put_state_machine("approve", APPROVE_EACH).await.unwrap();
        let id = rt
            .start_execution("approve", None, json!(["x", "y"]))
            .await
            .unwrap();
        rt.run_until_idle().await.unwrap();
        let tokens = pending_tokens(&rt).await;
        assert_eq!(tokens.len(), 1, "MaxConcurrency 1: one iteration at a time");
        rt.send_task_success(&tokens[0], json!("first"))
            .await
            .unwrap();
        rt.run_until_idle().await.unwrap();
        id
    };
    // A new process on the same file carries on with the second iteration.
    let rt = runtime(&dir).await;
    rt.run_until_idle().await.unwrap();
    let tokens = pending_tokens(&rt).await;
    assert_eq!(
        tokens.len(),
        1,
        "the second iteration waits for its callback"
    );
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "RUNNING");
    rt.send_task_success(&tokens[0], json!("second"))
        .await
        .unwrap();
    rt.run_until_idle().await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!(["first", "second"])));
}

#[tokio::test]
async fn a_failing_execution_aborts_its_running_branches_and_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Wait", "States": {"Wait": {"Type": "Task",
                "Resource": "test:echo.waitForTaskToken", "End": true}}},
            {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
        ]}}
    });
    let info = run(&rt, definition, json!({})).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("E"));
    assert!(
        pending_tokens(&rt).await.is_empty(),
        "the waiting branch's token is cancelled"
    );
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'")
            .fetch_one(&rt.db().reader)
            .await
            .unwrap();
    assert_eq!(running, 0);
}

#[tokio::test]
async fn nested_map_inside_parallel_with_batches() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Outer",
        "States": {"Outer": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Batches", "States": {"Batches": {"Type": "Map", "End": true,
                "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"label": "b"}},
                "ItemProcessor": {"StartAt": "Count", "States": {"Count": {"Type": "Pass",
                    "Parameters": {"n.$": "States.ArrayLength($.Items)", "label.$": "$.BatchInput.label"},
                    "End": true}}}}}},
            {"StartAt": "Id", "States": {"Id": {"Type": "Pass", "Result": "second", "End": true}}}
        ]}}
    });
    let info = run(&rt, definition, json!([1, 2, 3, 4, 5])).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!([
            [{"n": 2, "label": "b"}, {"n": 2, "label": "b"}, {"n": 1, "label": "b"}],
            "second"
        ]))
    );
}

#[tokio::test]
async fn a_failed_parallel_state_is_retried_as_a_whole_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = runtime_on(&dir, &clock).await;
    let definition = json!({
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": true,
            "Retry": [{"ErrorEquals": ["Bad"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "Branches": [
                {"StartAt": "No", "States": {"No": {"Type": "Task", "Resource": "test:echo",
                    "Parameters": {"fail": true}, "End": true}}}
            ]}}
    });
    rt.put_state_machine("m", &definition.to_string())
        .await
        .unwrap();
    let id = rt.start_execution("m", None, json!({})).await.unwrap();
    // IntervalSeconds 1: the state runs again a second after it failed, not before.
    for (ms, status) in [(0, "RUNNING"), (999, "RUNNING"), (1, "FAILED")] {
        clock.advance(std::time::Duration::from_millis(ms));
        rt.run_until_idle().await.unwrap();
        let info = rt.describe_execution(&id).await.unwrap().unwrap();
        assert_eq!(info.status, status, "after {ms} ms more");
    }
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("Bad"));
    let kinds = kinds(&rt, &id).await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("ParallelStateEntered"), 1, "{kinds:?}");
    assert_eq!(count("ParallelStateStarted"), 2, "one retry: {kinds:?}");
    assert_eq!(count("ParallelStateFailed"), 1, "{kinds:?}");
}

#[tokio::test]
async fn a_failing_iteration_aborts_the_running_ones_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let definition = json!({
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "Route", "States": {
                "Route": {"Type": "Choice", "Choices": [
                    {"Variable": "$.wait", "IsPresent": true, "Next": "Ask"}], "Default": "Boom"},
                "Ask": {"Type": "Task", "Resource": "test:echo.waitForTaskToken", "End": true},
                "Boom": {"Type": "Fail", "Error": "E", "Cause": "c"}
            }}}}
    });
    let info = run(&rt, definition, json!([{"wait": 1}, {"fail": 1}])).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("E"));
    let kinds = kinds(&rt, &info.id).await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("MapIterationStarted"), 2, "{kinds:?}");
    assert_eq!(count("MapIterationFailed"), 1, "{kinds:?}");
    assert_eq!(count("MapIterationAborted"), 1, "{kinds:?}");
    assert!(pending_tokens(&rt).await.is_empty());
}
