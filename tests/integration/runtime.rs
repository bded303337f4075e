//! The durable runtime on real SQLite files: transitions, callbacks, timers and restarts.

use orderflow::db::Db;
use orderflow::db::WriteConn;
use orderflow::runtime::{
    CallbackError, Clock, HandlerError, HandlerFuture, ManualClock, Registry, Runtime, TaskCall,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("rt.sqlite3").display())
}

/// A task that records its call in a table, then fails if asked to.
fn record<'a>(conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        sqlx::query("CREATE TABLE IF NOT EXISTS calls (state TEXT, params TEXT)")
            .execute(&mut **conn)
            .await?;
        sqlx::query("INSERT INTO calls VALUES (?, ?)")
            .bind(&call.state_name)
            .bind(call.parameters.to_string())
            .execute(&mut **conn)
            .await?;
        if call.parameters.get("fail") == Some(&json!(true)) {
            return Err(HandlerError::task("Boom", "asked to fail"));
        }
        Ok(json!({ "recorded": call.state_name, "token": call.task_token }))
    })
}

/// A runtime on a clock of its own that stands still (the tests here that need time to
/// pass use [`runtime_on`]).
async fn runtime(dir: &tempfile::TempDir) -> Runtime {
    runtime_on(dir, &ManualClock::starting_now()).await
}

/// A runtime over the database in `dir` that reads the time from `clock`; runtimes opened one
/// after the other on one clock see time go on across a restart.
async fn runtime_on(dir: &tempfile::TempDir, clock: &ManualClock) -> Runtime {
    let db = Db::open(&url(dir)).await.unwrap();
    let mut registry = Registry::new();
    registry.register("test:record", record);
    Runtime::with_clock(db, registry, Arc::new(clock.clone()))
}

/// Moves `clock` on by `ms` milliseconds and runs whatever became due.
async fn advance(rt: &Runtime, clock: &ManualClock, ms: u64) {
    clock.advance(Duration::from_millis(ms));
    rt.run_until_idle().await.unwrap();
}

async fn status(rt: &Runtime, id: &str) -> String {
    rt.describe_execution(id).await.unwrap().unwrap().status
}

const CALLBACK: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": { "Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.prepared", "Next": "Ask" },
    "Ask": {
      "Type": "Task",
      "Resource": "test:record.waitForTaskToken",
      "Parameters": { "who.$": "$.who", "token.$": "$$.Task.Token" },
      "ResultPath": "$.answer",
      "Next": "Done"
    },
    "Done": { "Type": "Succeed" }
  }
}"#;

async fn token_of(rt: &Runtime, execution: &str) -> String {
    sqlx::query_scalar(
        "SELECT token FROM task_tokens WHERE execution_id = ? AND status = 'pending'",
    )
    .bind(execution)
    .fetch_one(&rt.db().reader)
    .await
    .unwrap()
}

/// The execution's history event types, in order.
async fn history_kinds(rt: &Runtime, execution: &str) -> Vec<String> {
    rt.history(execution)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn calls(rt: &Runtime) -> Vec<(String, String)> {
    sqlx::query_as("SELECT state, params FROM calls")
        .fetch_all(&rt.db().reader)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn callback_task_pauses_until_its_token_comes_back_and_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine("cb", CALLBACK).await.unwrap();
    let id = rt
        .start_execution("cb", Some("one"), json!({"who": "ann"}))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "RUNNING");
    assert_eq!(info.current_state.as_deref(), Some("Ask"));

    let token = token_of(&rt, &id).await;
    assert_eq!(token.len(), 64);
    // The handler got the token through Parameters' $$.Task.Token.
    let (_, params) = calls(&rt).await.pop().unwrap();
    let params: Value = serde_json::from_str(&params).unwrap();
    assert_eq!(params, json!({"who": "ann", "token": token}));

    rt.send_task_success(&token, json!({"ok": true}))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(
        info.output.unwrap(),
        json!({"who": "ann", "prepared": {"n": 1}, "answer": {"ok": true}})
    );
}

#[tokio::test]
async fn a_token_resumes_exactly_once_and_bad_tokens_get_aws_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine("cb", CALLBACK).await.unwrap();
    let id = rt
        .start_execution("cb", None, json!({"who": "bo"}))
        .await
        .unwrap();
    let token = token_of(&rt, &id).await;

    let (a, b) = tokio::join!(
        rt.send_task_success(&token, json!(1)),
        rt.send_task_success(&token, json!(2))
    );
    assert!(a.is_ok() != b.is_ok(), "exactly one resume wins");
    let loser = if a.is_err() { a } else { b };
    assert!(matches!(loser, Err(CallbackError::TaskTimedOut)));
    assert!(matches!(
        rt.send_task_success(&token, json!(3)).await,
        Err(CallbackError::TaskTimedOut)
    ));
    assert!(matches!(
        rt.send_task_success("not a token", json!(3)).await,
        Err(CallbackError::InvalidToken)
    ));
    assert!(matches!(
        rt.send_task_success(&"ab".repeat(32), json!(3)).await,
        Err(CallbackError::TaskDoesNotExist)
    ));
    let history = rt.history(&id).await.unwrap();
    let succeeded = history.iter().filter(|e| e.kind == "TaskSucceeded").count();
    assert_eq!(succeeded, 1);
}

#[tokio::test]
async fn task_failure_by_callback_fails_the_execution_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine("cb", CALLBACK).await.unwrap();
    let id = rt
        .start_execution("cb", None, json!({"who": "cy"}))
        .await
        .unwrap();
    let token = token_of(&rt, &id).await;
    rt.send_task_failure(&token, "Denied", "nope")
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("Denied"));
    assert_eq!(info.cause.as_deref(), Some("nope"));
}

#[tokio::test]
async fn a_paused_execution_survives_a_restart_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let rt = runtime(&dir).await;
        rt.put_state_machine("cb", CALLBACK).await.unwrap();
        rt.start_execution("cb", Some("restart-me"), json!({"who": "di"}))
            .await
            .unwrap()
    };
    // A new process: new pools, new runtime, nothing cached.
    let rt = runtime(&dir).await;
    let token = token_of(&rt, &id).await;
    rt.send_task_success(&token, json!("yes")).await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output.unwrap()["answer"], "yes");
}

#[tokio::test]
async fn an_execution_committed_but_not_yet_run_is_picked_up_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let rt = runtime(&dir).await;
        rt.put_state_machine(
            "p",
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 7, "End": true}}}"#,
        )
        .await
        .unwrap();
        let mut tx = rt.db().begin().await.unwrap();
        let started = rt
            .start_execution_in(&mut tx, "p", None, json!({}))
            .await
            .unwrap();
        let id = started.id().to_string();
        // Written, no step run.
        rt.run_started(&mut tx, started, 0, orderflow::runtime::RunGuard::Savepoint)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let rt = runtime(&dir).await;
    assert_eq!(rt.run_until_idle().await.unwrap(), 1);
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output, Some(json!(7)));
}

#[tokio::test]
async fn wait_timers_are_durable_and_fire_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let id = {
        let rt = runtime_on(&dir, &clock).await;
        rt.put_state_machine(
            "w",
            r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "E"}, "E": {"Type": "Succeed"}}}"#,
        )
        .await
        .unwrap();
        let id = rt
            .start_execution("w", None, json!({"k": 1}))
            .await
            .unwrap();
        assert_eq!(
            rt.describe_execution(&id).await.unwrap().unwrap().status,
            "RUNNING"
        );
        id
    };
    // After a restart, not a millisecond early.
    let rt = runtime_on(&dir, &clock).await;
    advance(&rt, &clock, 999).await;
    assert_eq!(status(&rt, &id).await, "RUNNING");
    advance(&rt, &clock, 1).await;
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output, Some(json!({"k": 1})));
    let kinds = history_kinds(&rt, &id).await;
    assert!(kinds.contains(&"WaitStateEntered".to_string()));
    assert!(kinds.contains(&"WaitStateExited".to_string()));
}

#[tokio::test]
async fn a_failed_task_leaves_none_of_its_writes_behind() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine(
        "f",
        r#"{"StartAt": "T", "States": {
            "Seed": {"Type": "Pass", "End": true},
            "T": {"Type": "Task", "Resource": "test:record", "Next": "Seed"}}}"#,
    )
    .await
    .unwrap();
    // A first, successful call creates the table and one row.
    rt.start_execution("f", None, json!({"fail": false}))
        .await
        .unwrap();
    let id = rt
        .start_execution("f", None, json!({"fail": true}))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("Boom"));
    assert_eq!(
        calls(&rt).await.len(),
        1,
        "the failing call's insert was rolled back"
    );
}

/// A task that fails after the run's earlier tasks wrote: only its own writes go, the steps
/// before it and the Catch after it stand, with their events.
#[tokio::test]
async fn a_failed_task_takes_only_its_own_writes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine(
        "c",
        r#"{"StartAt": "First", "States": {
            "First": {"Type": "Task", "Resource": "test:record", "Parameters": {"n": 1},
                      "ResultPath": "$.first", "Next": "Second"},
            "Second": {"Type": "Task", "Resource": "test:record",
                       "Parameters": {"n": 2, "fail": true},
                       "Catch": [{"ErrorEquals": ["Boom"], "Next": "Third"}], "End": true},
            "Third": {"Type": "Task", "Resource": "test:record", "Parameters": {"n": 3},
                      "End": true}}}"#,
    )
    .await
    .unwrap();
    let id = rt.start_execution("c", None, json!({})).await.unwrap();
    assert_eq!(status(&rt, &id).await, "SUCCEEDED");
    let states: Vec<_> = calls(&rt).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, ["First", "Third"], "the failing call's insert went");
    let kinds = history_kinds(&rt, &id).await;
    let tasks: Vec<_> = kinds
        .iter()
        .filter(|k| k.starts_with("TaskSucceeded") || k.starts_with("TaskFailed"))
        .collect();
    assert_eq!(tasks, ["TaskSucceeded", "TaskFailed", "TaskSucceeded"]);
    assert_eq!(
        rt.metrics()
            .reruns
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the run was undone once and run again step by step"
    );
}

#[tokio::test]
async fn unknown_resources_fail_the_task_and_bad_definitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine(
        "u",
        r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "test:nothing", "End": true}}}"#,
    )
    .await
    .unwrap();
    let id = rt.start_execution("u", None, json!({})).await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.TaskFailed"));

    let err = rt
        .put_state_machine("bad", r#"{"StartAt": "Nope", "States": {}}"#)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Nope") || err.to_string().contains("States"),
        "{err}"
    );
    assert!(rt.start_execution("bad", None, json!({})).await.is_err());
    assert!(rt
        .start_execution("u", Some("has space"), json!({}))
        .await
        .is_err());
}

#[tokio::test]
async fn the_built_in_callback_resource_only_waits_for_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let machine = |resource: &str| {
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource,
            "Parameters": {"token.$": "$$.Task.Token"}, "End": true}}})
        .to_string()
    };
    rt.put_state_machine("waits", &machine("orderflow:callback.waitForTaskToken"))
        .await
        .unwrap();
    let id = rt.start_execution("waits", None, json!({})).await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "RUNNING");
    rt.send_task_success(&token_of(&rt, &id).await, json!("answered"))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output, Some(json!("answered")));

    let returns = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "orderflow:callback", "End": true}}}"#;
    rt.put_state_machine("returns", returns).await.unwrap();
    let id = rt
        .start_execution("returns", None, json!({}))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
    assert!(info.cause.unwrap().contains(".waitForTaskToken"));
}

#[tokio::test]
async fn a_pass_loop_is_stopped_by_the_history_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine(
        "loop",
        r#"{"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "Done"}], "Default": "A"},
            "Done": {"Type": "Succeed"}}}"#,
    )
    .await
    .unwrap();
    let id = rt.start_execution("loop", None, json!({})).await.unwrap();
    rt.run_until_idle().await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
}

/// Fails with `Flaky` until it has failed `fail_times` times. A failed call's own writes roll
/// back, so earlier failures are counted from the execution's history.
fn flaky<'a>(conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let failures: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM history_events WHERE execution_id = ? AND type = 'TaskFailed'",
        )
        .bind(&call.execution_id)
        .fetch_one(&mut **conn)
        .await?;
        let fail_times = call.parameters["fail_times"].as_i64().unwrap_or(0);
        if failures < fail_times {
            return Err(HandlerError::task(
                "Flaky",
                format!("failure {}", failures + 1),
            ));
        }
        Ok(json!({ "after_failures": failures }))
    })
}

async fn retry_runtime(dir: &tempfile::TempDir, clock: &ManualClock) -> Runtime {
    let db = Db::open(&url(dir)).await.unwrap();
    let mut registry = Registry::new();
    registry.register("test:record", record);
    registry.register("test:flaky", flaky);
    Runtime::with_clock(db, registry, Arc::new(clock.clone()))
}

/// Runs the worker's steps, moving `clock` on 100 ms at a time, until the execution ends or
/// `seconds` have passed on the clock.
async fn run_until_done(
    rt: &Runtime,
    clock: &ManualClock,
    id: &str,
    seconds: u64,
) -> orderflow::runtime::ExecutionInfo {
    for _ in 0..seconds * 10 {
        rt.run_until_idle().await.unwrap();
        let info = rt.describe_execution(id).await.unwrap().unwrap();
        if info.status != "RUNNING" {
            return info;
        }
        clock.advance(Duration::from_millis(100));
    }
    rt.describe_execution(id).await.unwrap().unwrap()
}

/// The times (milliseconds after `start`) of the execution's `kind` events.
async fn times_of(rt: &Runtime, id: &str, kind: &str, start: time::OffsetDateTime) -> Vec<i64> {
    rt.history(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            let at = orderflow::db::parse_time(&e.timestamp).unwrap();
            (at - start).whole_milliseconds() as i64
        })
        .collect()
}

const RETRYING: &str = r#"{
  "StartAt": "Try",
  "States": {
    "Try": {
      "Type": "Task",
      "Resource": "test:flaky",
      "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
      "End": true
    },
    "Caught": {"Type": "Pass", "End": true}
  }
}"#;

#[tokio::test]
async fn retry_runs_the_task_again_after_a_durable_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = retry_runtime(&dir, &clock).await;
    rt.put_state_machine("r", RETRYING).await.unwrap();
    let id = rt
        .start_execution("r", None, json!({"fail_times": 2}))
        .await
        .unwrap();
    assert_eq!(
        rt.describe_execution(&id).await.unwrap().unwrap().status,
        "RUNNING"
    );
    // IntervalSeconds 1, BackoffRate 1: each retry exactly one second after the failure.
    for (ms, attempts) in [(999, 1), (1, 2)] {
        advance(&rt, &clock, ms).await;
        let kinds = history_kinds(&rt, &id).await;
        let scheduled = kinds.iter().filter(|k| *k == "TaskScheduled").count();
        assert_eq!(scheduled, attempts, "after {ms} ms more");
    }
    assert_eq!(status(&rt, &id).await, "RUNNING");
    advance(&rt, &clock, 1000).await;
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output, Some(json!({"after_failures": 2})));
    let kinds = history_kinds(&rt, &id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "TaskStateEntered").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "TaskScheduled").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "TaskFailed").count(), 2);
}

#[tokio::test]
async fn exhausted_retries_go_to_catch_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = retry_runtime(&dir, &clock).await;
    rt.put_state_machine("r", RETRYING).await.unwrap();
    let id = rt
        .start_execution("r", None, json!({"fail_times": 5}))
        .await
        .unwrap();
    let info = run_until_done(&rt, &clock, &id, 20).await;
    assert_eq!(info.status, "SUCCEEDED");
    let output = info.output.unwrap();
    assert_eq!(output["error"]["Error"], "Flaky");
    assert_eq!(output["error"]["Cause"], "failure 3");
}

#[tokio::test]
async fn a_callback_past_its_timeout_fails_with_states_timeout_and_its_token_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = runtime_on(&dir, &clock).await;
    // The same one-second limit written in the state, and read from the input.
    for (name, limit) in [
        ("fixed", r#""TimeoutSeconds": 1"#),
        ("from-input", r#""TimeoutSecondsPath": "$.limit""#),
    ] {
        rt.put_state_machine(
            name,
            &format!(
                r#"{{"StartAt": "Ask", "States": {{"Ask": {{"Type": "Task", "Resource": "test:record.waitForTaskToken",
                "Parameters": {{"token.$": "$$.Task.Token"}}, {limit}, "End": true}}}}}}"#
            ),
        )
        .await
        .unwrap();
        let id = rt
            .start_execution(name, None, json!({"limit": 1}))
            .await
            .unwrap();
        let token = token_of(&rt, &id).await;
        advance(&rt, &clock, 999).await;
        assert_eq!(status(&rt, &id).await, "RUNNING", "{name}");
        advance(&rt, &clock, 1).await;
        let info = rt.describe_execution(&id).await.unwrap().unwrap();
        assert_eq!(info.status, "FAILED", "{name}");
        assert_eq!(info.error.as_deref(), Some("States.Timeout"), "{name}");
        assert!(matches!(
            rt.send_task_success(&token, json!({})).await,
            Err(CallbackError::TaskTimedOut)
        ));
        let kinds = history_kinds(&rt, &id).await;
        assert!(kinds.contains(&"TaskTimedOut".to_string()), "{kinds:?}");
    }
    let id = rt
        .start_execution("from-input", None, json!({"limit": "soon"}))
        .await
        .unwrap();
    rt.run_until_idle().await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
    assert!(info
        .cause
        .unwrap_or_default()
        .contains("TimeoutSecondsPath"));
}

#[tokio::test]
async fn heartbeats_keep_a_callback_alive_and_a_missed_one_times_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = runtime_on(&dir, &clock).await;
    rt.put_state_machine(
        "h",
        r#"{"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "test:record.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"}, "HeartbeatSeconds": 2, "TimeoutSeconds": 60, "End": true}}}"#,
    )
    .await
    .unwrap();
    let id = rt.start_execution("h", None, json!({})).await.unwrap();
    let token = token_of(&rt, &id).await;
    advance(&rt, &clock, 1200).await;
    rt.send_task_heartbeat(&token).await.unwrap();
    advance(&rt, &clock, 1200).await;
    // 2.4 s after the start, but only 1.2 s after the heartbeat.
    assert_eq!(status(&rt, &id).await, "RUNNING");
    advance(&rt, &clock, 799).await;
    assert_eq!(status(&rt, &id).await, "RUNNING");
    // Two seconds after the heartbeat.
    advance(&rt, &clock, 1).await;
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.HeartbeatTimeout"));
    assert!(matches!(
        rt.send_task_heartbeat(&token).await,
        Err(CallbackError::TaskTimedOut)
    ));
    assert!(matches!(
        rt.send_task_heartbeat("zz").await,
        Err(CallbackError::InvalidToken)
    ));
}

#[tokio::test]
async fn an_execution_past_its_timeout_seconds_times_out_and_its_token_dies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = runtime_on(&dir, &clock).await;
    rt.put_state_machine(
        "to",
        r#"{"TimeoutSeconds": 1, "StartAt": "Ask", "States": {"Ask": {"Type": "Task",
            "Resource": "test:record.waitForTaskToken", "Parameters": {"t.$": "$$.Task.Token"}, "End": true}}}"#,
    )
    .await
    .unwrap();
    let id = rt.start_execution("to", None, json!({})).await.unwrap();
    let token = token_of(&rt, &id).await;
    advance(&rt, &clock, 999).await;
    assert_eq!(status(&rt, &id).await, "RUNNING");
    advance(&rt, &clock, 1).await;
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "TIMED_OUT");
    assert!(matches!(
        rt.send_task_success(&token, json!({})).await,
        Err(CallbackError::TaskTimedOut)
    ));
    let kinds = history_kinds(&rt, &id).await;
    assert_eq!(kinds.last().map(String::as_str), Some("ExecutionTimedOut"));
}

#[tokio::test]
async fn payloads_over_256_kib_are_refused_or_fail_with_data_limit_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    rt.put_state_machine("cb", CALLBACK).await.unwrap();
    let big = "x".repeat(300 * 1024);
    assert!(matches!(
        rt.start_execution("cb", None, json!({ "who": big })).await,
        Err(orderflow::runtime::RuntimeError::InputTooLarge(_))
    ));
    let id = rt
        .start_execution("cb", None, json!({"who": "e"}))
        .await
        .unwrap();
    let token = token_of(&rt, &id).await;
    assert!(matches!(
        rt.send_task_success(&token, json!({ "big": big })).await,
        Err(CallbackError::InvalidOutput(_))
    ));
    // The refused output consumed nothing: a normal answer still works.
    rt.send_task_success(&token, json!("ok")).await.unwrap();

    rt.put_state_machine(
        "grow",
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}, "End": true}}}"#,
    )
    .await
    .unwrap();
    let half = "y".repeat(200 * 1024);
    let id = rt
        .start_execution("grow", None, json!({ "s": half }))
        .await
        .unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.DataLimitExceeded"));
}

#[tokio::test]
async fn an_execution_whose_definition_is_unusable_fails_instead_of_blocking_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let id = {
        let rt = runtime_on(&dir, &clock).await;
        rt.put_state_machine(
            "broken",
            r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
                "P": {"Type": "Pass", "End": true}}}"#,
        )
        .await
        .unwrap();
        rt.start_execution("broken", None, json!({})).await.unwrap()
    };
    // The stored definition is damaged while the execution waits.
    let db = Db::open(&url(&dir)).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    sqlx::query("UPDATE definitions SET body = 'not json'")
        .execute(&mut **tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rt = runtime_on(&dir, &clock).await;
    rt.put_state_machine(
        "fine",
        r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
    )
    .await
    .unwrap();
    advance(&rt, &clock, 1000).await;
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
    assert!(info.cause.unwrap_or_default().contains("no longer parses"));
    assert_eq!(
        history_kinds(&rt, &id).await.last().map(String::as_str),
        Some("ExecutionFailed")
    );
    let other = rt
        .start_execution("fine", None, json!({"ok": 1}))
        .await
        .unwrap();
    rt.run_until_idle().await.unwrap();
    let info = rt.describe_execution(&other).await.unwrap().unwrap();
    assert_eq!(
        info.status, "SUCCEEDED",
        "the worker carries on with other executions"
    );
}

/// Runs a task on `test:flaky` that fails `fail_times` times under Retry rule `rule` to its
/// end, on a manual clock; returns the times of its attempts (ms after the start).
async fn attempts_under(rule: Value, fail_times: u64) -> Vec<i64> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let start = clock.now();
    let rt = retry_runtime(&dir, &clock).await;
    let definition = json!({"StartAt": "Try", "States": {"Try": {"Type": "Task",
        "Resource": "test:flaky", "Retry": [rule], "End": true}}});
    rt.put_state_machine("r", &definition.to_string())
        .await
        .unwrap();
    let id = rt
        .start_execution("r", None, json!({ "fail_times": fail_times }))
        .await
        .unwrap();
    let info = run_until_done(&rt, &clock, &id, 60).await;
    assert_eq!(info.status, "SUCCEEDED");
    times_of(&rt, &id, "TaskScheduled", start).await
}

#[tokio::test]
async fn retry_back_off_grows_by_its_rate_up_to_max_delay_seconds() {
    let rule = json!({"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3,
        "MaxDelaySeconds": 10, "MaxAttempts": 4});
    // 2 s, then 6 s, then 18 s and 54 s capped at 10 s.
    assert_eq!(
        attempts_under(rule, 4).await,
        vec![0, 2000, 8000, 18000, 28000]
    );
}

#[tokio::test]
async fn full_jitter_retries_somewhere_within_the_back_off() {
    let rule = json!({"ErrorEquals": ["Flaky"], "IntervalSeconds": 10, "MaxAttempts": 1,
        "JitterStrategy": "FULL"});
    let times = attempts_under(rule, 1).await;
    assert_eq!(times.len(), 2, "{times:?}");
    assert!(times[1] <= 10_000, "{times:?}");
}

#[tokio::test]
async fn a_wait_until_a_timestamp_fires_at_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let rt = runtime_on(&dir, &clock).await;
    let at = orderflow::db::format_time(clock.now() + time::Duration::seconds(5));
    rt.put_state_machine(
        "ts",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": at, "End": true}}})
            .to_string(),
    )
    .await
    .unwrap();
    let id = rt.start_execution("ts", None, json!({})).await.unwrap();
    advance(&rt, &clock, 4999).await;
    assert_eq!(status(&rt, &id).await, "RUNNING");
    advance(&rt, &clock, 1).await;
    assert_eq!(status(&rt, &id).await, "SUCCEEDED");
    let history = rt.history(&id).await.unwrap();
    assert_eq!(history.last().unwrap().timestamp, at);
}
