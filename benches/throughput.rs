//! Prints how many engine steps per second the pure interpreter runs and how many state
//! transitions per second the durable runtime commits on a real SQLite file, for a small and a
//! large input, and their ratios, all measured in one run:
//! `cargo bench --features ssr --bench throughput`.

mod common;

use common::{context, definition, input, machine, run};
use orderflow::db::Db;
use orderflow::engine::StateMachine;
use orderflow::runtime::{Registry, Runtime};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Engine steps per second over two seconds.
fn engine_rate(machine: &StateMachine, input: &Value) -> f64 {
    let ctx = context();
    let start = Instant::now();
    let mut steps = 0;
    while start.elapsed() < Duration::from_secs(2) {
        steps += run(machine, input, &ctx);
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let machine = machine();
    let small = input(1);
    let large = input(500);
    let small_rate = engine_rate(&machine, &small);
    let large_rate = engine_rate(&machine, &large);

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let rt = Runtime::new(Db::open(&url).await.expect("db opens"), Registry::new());
    rt.put_state_machine("bench", &definition())
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
