//! Running one definition to its end on the durable runtime, for tests of ASL features.

use orderflow::db::Db;
use orderflow::db::WriteConn;
use orderflow::runtime::{HandlerError, HandlerFuture, Registry, Runtime, TaskCall};
use serde_json::{json, Value};

/// Fails with `Exception` when asked to, else echoes its parameters.
pub fn task<'a>(_conn: &'a mut WriteConn, call: TaskCall) -> HandlerFuture<'a> {
    Box::pin(async move {
        if call.parameters.get("fail") == Some(&json!(true)) {
            return Err(HandlerError::task(
                "Exception",
                "Some exception was raised.",
            ));
        }
        Ok(json!({ "Payload": call.parameters }))
    })
}

pub async fn run(
    definition: Value,
    input: Value,
) -> (orderflow::runtime::ExecutionInfo, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vars.sqlite3").display());
    let mut registry = Registry::new();
    registry.register("test:task", task);
    let rt = Runtime::new(Db::open(&url).await.unwrap(), registry);
    rt.put_state_machine("m", &definition.to_string())
        .await
        .unwrap();
    let id = rt.start_execution("m", None, input).await.unwrap();
    rt.run_until_idle().await.unwrap();
    let info = rt.describe_execution(&id).await.unwrap().unwrap();
    let events = rt
        .history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut details: Value = serde_json::from_str(&e.details).unwrap();
            details["type"] = json!(e.kind);
            details
        })
        .collect();
    (info, events)
}

/// The `assignedVariables` of each exited event that has them, in order.
pub fn assignments(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| e.get("assignedVariables").cloned())
        .collect()
}
