//! The worker cannot die: a step that panics fails its own execution with `States.Runtime`,
//! and every other execution, timers included, goes on.

use orderflow::db::Db;
use orderflow::db::WriteConn;
use orderflow::runtime::{HandlerFuture, ManualClock, Registry, Runtime, TaskCall};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A handler with a bug: it panics whenever it runs.
fn poisoned<'a>(_conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        let items: Vec<i64> = Vec::new();
        let index = call.parameters["index"].as_u64().unwrap_or(3) as usize;
        Ok(json!(items[index]))
    })
}

/// Waits `seconds`, then runs `then` (a Task on the poisoned handler, or a Pass).
fn after_wait(seconds: u64, then: serde_json::Value) -> String {
    json!({
        "StartAt": "Wait",
        "States": {
            "Wait": { "Type": "Wait", "Seconds": seconds, "Next": "Then" },
            "Then": then,
        }
    })
    .to_string()
}

/// Waits for the worker to end execution `id`, watching the runtime's commits.
async fn wait_for_end(rt: &Runtime, id: &str) -> orderflow::runtime::ExecutionInfo {
    let mut changes = rt.subscribe();
    loop {
        let info = rt.describe_execution(id).await.unwrap().unwrap();
        if info.status != "RUNNING" {
            return info;
        }
        let changed = tokio::time::timeout(Duration::from_secs(10), changes.changed()).await;
        assert!(changed.is_ok(), "execution {id} did not end");
    }
}

/// Moves the clock past the timers' second and tells the worker.
fn a_second_passes(rt: &Runtime, clock: &ManualClock) {
    clock.advance(Duration::from_secs(1));
    rt.wake();
}

#[tokio::test]
async fn a_panicking_step_fails_its_execution_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("worker.sqlite3").display());
    let mut registry = Registry::new();
    registry.register("test:poisoned", poisoned);
    let clock = ManualClock::starting_now();
    let db = Db::open(&url).await.unwrap();
    let rt = Runtime::with_clock(db, registry, std::sync::Arc::new(clock.clone()));
    let task = json!({ "Type": "Task", "Resource": "test:poisoned", "End": true });
    let pass = json!({ "Type": "Pass", "Result": "on time", "End": true });
    rt.put_state_machine("poisoned", &after_wait(0, task.clone()))
        .await
        .unwrap();
    rt.put_state_machine("timer", &after_wait(1, pass))
        .await
        .unwrap();
    rt.spawn_worker();

    let timer = rt.start_execution("timer", None, json!({})).await.unwrap();
    // Run by the worker (after its Wait), and by a request inline (no Wait).
    let by_worker = rt
        .start_execution("poisoned", None, json!({}))
        .await
        .unwrap();
    rt.put_state_machine(
        "inline",
        &json!({"StartAt": "Then", "States": {"Then": task}}).to_string(),
    )
    .await
    .unwrap();
    let inline = rt.start_execution("inline", None, json!({})).await.unwrap();

    for id in [&by_worker, &inline] {
        let failed = wait_for_end(&rt, id).await;
        assert_eq!(failed.status, "FAILED", "{failed:?}");
        assert_eq!(failed.error.as_deref(), Some("States.Runtime"));
        let cause = failed.cause.unwrap_or_default();
        assert!(cause.contains("index out of bounds"), "{cause}");
        let history = rt.history(id).await.unwrap();
        assert_eq!(history.last().unwrap().kind, "ExecutionFailed");
    }
    assert_eq!(
        rt.describe_execution(&timer).await.unwrap().unwrap().status,
        "RUNNING",
        "its second has not passed"
    );
    a_second_passes(&rt, &clock);
    let on_time = wait_for_end(&rt, &timer).await;
    assert_eq!(
        on_time.status, "SUCCEEDED",
        "the timer still fired: {on_time:?}"
    );
    assert_eq!(on_time.output, Some(json!("on time")));
    assert_eq!(rt.metrics().step_panics.load(Ordering::Relaxed), 2);

    // The worker is alive: new work after the panics still runs.
    let again = rt.start_execution("timer", None, json!({})).await.unwrap();
    a_second_passes(&rt, &clock);
    assert_eq!(wait_for_end(&rt, &again).await.status, "SUCCEEDED");
}
