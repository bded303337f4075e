//! TestState: one state run on a given input, reporting its output, error or next state, as
//! AWS's TestState does. Nothing is stored; a task's handler runs in a transaction that is
//! rolled back.

use super::SfnError;
use crate::engine::{self, Action, Context, Next, RetryDecision, Step};
use crate::state::AppState;
use serde_json::{json, Map, Value};

/// The name the tested state gets inside the one-state machine it is checked in.
const NAME: &str = "TestState";

/// Every state a state can move to (Next, Default, Choices and Catch targets).
fn targets(state: &Value) -> Vec<String> {
    let mut out: Vec<String> = ["Next", "Default"]
        .iter()
        .filter_map(|k| state.get(*k).and_then(Value::as_str).map(str::to_string))
        .collect();
    for list in ["Choices", "Catch"] {
        for rule in state
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(next) = rule.get("Next").and_then(Value::as_str) {
                out.push(next.to_string());
            }
        }
    }
    out
}

/// Runs TestState's `definition` (one state) on `input` with `variables`.
pub(super) async fn test_state(
    state: &AppState,
    definition: &str,
    input: Value,
    variables: Map<String, Value>,
    debug: bool,
) -> Result<Value, SfnError> {
    let tested: Value = serde_json::from_str(definition).map_err(|e| {
        SfnError::new(
            "InvalidDefinition",
            format!("Invalid State Definition: the definition is not valid JSON: {e}"),
        )
    })?;
    if !tested.is_object() {
        return Err(SfnError::new(
            "InvalidDefinition",
            "Invalid State Definition: a state must be a JSON object",
        ));
    }
    let kind = tested
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if matches!(kind, "Parallel" | "Map") {
        return Err(SfnError::new(
            "ValidationException",
            format!("TestState does not support {kind} states yet"),
        ));
    }
    // The state in a machine of its own, each of its targets a Succeed state.
    let mut states = Map::new();
    states.insert(NAME.into(), tested.clone());
    for target in targets(&tested) {
        states
            .entry(target)
            .or_insert_with(|| json!({"Type": "Succeed"}));
    }
    let machine =
        engine::parse(&json!({"StartAt": NAME, "States": states}).to_string()).map_err(|e| {
            let problems: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
            SfnError::new(
                "InvalidDefinition",
                format!("Invalid State Definition: {}", problems.join("; ")),
            )
        })?;
    let found = machine
        .state(NAME)
        .ok_or_else(|| SfnError::new("InvalidDefinition", "Invalid State Definition"))?;
    if found.needs_task_token() || engine::is_activity(tested["Resource"].as_str().unwrap_or("")) {
        return Err(SfnError::new(
            "ValidationException",
            "TestState does not support activities or .waitForTaskToken",
        ));
    }
    let ctx = Context {
        execution_id: format!(
            "arn:aws:states:{}:{}:execution:TestState:test",
            crate::runtime::REGION,
            crate::runtime::ACCOUNT
        ),
        execution_name: "test".into(),
        execution_input: input.clone(),
        execution_start_time: crate::db::now(),
        state_machine_id: format!(
            "arn:aws:states:{}:{}:stateMachine:TestState",
            crate::runtime::REGION,
            crate::runtime::ACCOUNT
        ),
        state_machine_name: "TestState".into(),
        state_name: NAME.into(),
        state_entered_time: crate::db::now(),
        task_token: None,
        random_seed: rand::random(),
        retry_count: 0,
        role_arn: crate::runtime::role_arn(),
        variables,
        entered_event_id: None,
    };
    let mut inspection = json!({ "input": input.to_string() });
    let mut step = machine.enter(NAME, &input, &ctx);
    let mut failed_task = None;
    if let Action::Invoke {
        resource,
        parameters,
        ..
    } = &step.action
    {
        inspection["afterParameters"] = json!(parameters.to_string());
        let result = state
            .runtime
            .try_task(NAME, resource, parameters.clone())
            .await
            .map_err(SfnError::internal)?;
        step = match result {
            Ok(output) => {
                inspection["result"] = json!(output.to_string());
                machine.task_succeeded(NAME, &input, output, &ctx)
            }
            Err(failure) => {
                let retry = engine::decide_retry(found, &failure.error, &[], 0.5);
                if matches!(retry, RetryDecision::Retry { .. }) {
                    return Ok(json!({
                        "status": "RETRIABLE",
                        "error": failure.error,
                        "cause": failure.cause,
                        "inspectionData": inspection,
                    }));
                }
                failed_task = Some(failure.clone());
                machine.task_failed(NAME, &input, failure, &ctx)
            }
        };
    }
    Ok(report(step, failed_task, debug.then_some(inspection)))
}

/// TestState's answer for the state's outcome.
fn report(step: Step, caught: Option<engine::Failure>, inspection: Option<Value>) -> Value {
    let mut out = match step.action {
        Action::Transition { output, next } | Action::Wait { output, next, .. } => {
            let mut out = json!({ "status": "SUCCEEDED", "output": output.to_string() });
            if let Next::State(name) = next {
                out["nextState"] = json!(name);
            }
            if let Some(failure) = caught {
                out["status"] = json!("CAUGHT_ERROR");
                out["error"] = json!(failure.error);
                out["cause"] = json!(failure.cause);
            }
            out
        }
        Action::Fail(failure) => {
            json!({ "status": "FAILED", "error": failure.error, "cause": failure.cause })
        }
        Action::Invoke { .. } | Action::Fork { .. } => json!({
            "status": "FAILED",
            "error": "States.Runtime",
            "cause": "TestState could not finish this state",
        }),
    };
    if let Some(inspection) = inspection {
        out["inspectionData"] = inspection;
    }
    out
}
