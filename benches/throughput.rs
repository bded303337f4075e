//! Prints how many engine steps per second the pure interpreter runs and how many state
//! transitions per second the durable runtime commits on a real SQLite file, for a small and a
//! large input, and their ratios, all measured in one run. Run with `cargo bench --features ssr --bench throughput`.

use orderflow::db::Db;
use orderflow::engine::{self, Action, Context, Next};
use orderflow::runtime::{Registry, Runtime};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Ten Pass states with the data-flow fields a real workflow uses.
fn definition() -> String {
    let mut states = serde_json::Map::new();
    for i in 0..10 {
        let next = if i == 9 {
            json!({"End": true})
        } else {
            json!({"Next": format!("S{}", i + 1)})
        };
        let mut state = json!({
            "Type": "Pass",
            "Parameters": {"order.$": "$.order", "step": i, "exec.$": "$$.Execution.Id"},
            "ResultPath": "$.last",
        });
        if let (Some(s), Some(n)) = (state.as_object_mut(), next.as_object()) {
            s.extend(n.clone());
        }
        states.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": states}).to_string()
}

fn input(items: usize) -> Value {
    let lines: Vec<Value> = (0..items)
        .map(|i| json!({"sku": format!("sku-{i}"), "name": "Widget", "quantity": i % 7, "cents": 1299}))
        .collect();
    json!({"order": {"id": "ORD-1", "lines": lines}})
}

/// Runs the machine to its end on the engine alone; returns the steps taken.
fn run_engine(machine: &engine::StateMachine, input: &Value) -> u64 {
    let ctx = Context {
        execution_id: "arn:aws:states:us-east-1:000000000000:execution:bench:1".into(),
        ..Context::default()
    };
    let mut state = machine.start_at().to_string();
    let mut value = input.clone();
    let mut steps = 0;
    loop {
        steps += 1;
        match machine.enter(&state, &value, &ctx).action {
            Action::Transition {
                output,
                next: Next::State(n),
            } => {
                state = n;
                value = output;
            }
            _ => return steps,
        }
    }
}

fn engine_rate(machine: &engine::StateMachine, input: &Value) -> f64 {
    let start = Instant::now();
    let mut steps = 0;
    while start.elapsed() < Duration::from_secs(2) {
        steps += run_engine(machine, input);
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let definition = definition();
    let machine = engine::parse(&definition).expect("the bench definition is valid");
    let small = input(1);
    let large = input(500);
    let small_rate = engine_rate(&machine, &small);
    let large_rate = engine_rate(&machine, &large);

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let rt = Runtime::new(Db::open(&url).await.expect("db opens"), Registry::new());
    rt.put_state_machine("bench", &definition)
        .await
        .expect("machine stored");
    let small_commits = durable_rate(&rt, &small).await;
    let large_commits = durable_rate(&rt, &large).await;

    println!(
        "engine steps/s, small input ({} B): {small_rate:>12.0}",
        small.to_string().len()
    );
    println!(
        "engine steps/s, large input ({} B): {large_rate:>12.0}",
        large.to_string().len()
    );
    println!(
        "durable transitions/s, small input (synchronous=FULL): {:>10.0}",
        small_commits * 10.0
    );
    println!(
        "durable transitions/s, large input (synchronous=FULL): {:>10.0}",
        large_commits * 10.0
    );
    println!(
        "engine / durable, small input: {:.0}x",
        small_rate / (small_commits * 10.0)
    );
    println!(
        "engine / durable, large input: {:.0}x",
        large_rate / (large_commits * 10.0)
    );
}

/// Executions of the 10-state machine per second, each started and run to its end in one
/// committed transaction.
async fn durable_rate(rt: &Runtime, input: &Value) -> f64 {
    let start = Instant::now();
    let mut executions = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        rt.start_execution("bench", None, input.clone())
            .await
            .expect("execution runs");
        executions += 1;
    }
    executions as f64 / start.elapsed().as_secs_f64()
}
