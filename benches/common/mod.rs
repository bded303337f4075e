//! The workload both benchmarks run: ten Pass states using Parameters with a path, the
//! context object and ResultPath, on an order of one or many lines.
#![allow(dead_code)]

use orderflow::engine::{self, Action, Context, Next};
use serde_json::{json, Value};

/// The allocator the `orderflow` binary uses, so both benchmarks measure what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub fn definition() -> String {
    let states: serde_json::Map<String, Value> = (0..10)
        .map(|i| {
            let mut state = json!({
                "Type": "Pass",
                "Parameters": {"order.$": "$.order", "step": i, "exec.$": "$$.Execution.Id"},
                "ResultPath": "$.last",
            });
            if i == 9 {
                state["End"] = json!(true);
            } else {
                state["Next"] = json!(format!("S{}", i + 1));
            }
            (format!("S{i}"), state)
        })
        .collect();
    json!({"StartAt": "S0", "States": states}).to_string()
}

pub fn machine() -> engine::StateMachine {
    engine::parse(&definition()).expect("the bench definition is valid")
}

/// The small input has one order line, the large one 500 (about 30 KB).
pub fn input(lines: usize) -> Value {
    let lines: Vec<Value> = (0..lines)
        .map(|i| json!({"sku": format!("sku-{i}"), "name": "Widget", "quantity": i % 7, "cents": 1299}))
        .collect();
    json!({"order": {"id": "ORD-1", "lines": lines}})
}

pub fn context() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:000000000000:execution:bench:1".into(),
        ..Context::default()
    }
}

/// Runs the machine to its end on the engine alone; returns how many states it ran.
pub fn run(machine: &engine::StateMachine, input: &Value, ctx: &Context) -> u64 {
    let mut state = machine.start_at().to_string();
    let mut value = input.clone();
    let mut steps = 0;
    loop {
        steps += 1;
        match machine.enter(&state, &value, ctx).action {
            Action::Transition {
                output,
                next: Next::State(next),
            } => {
                state = next;
                value = output;
            }
            _ => return steps,
        }
    }
}
