//! Prints how many engine steps per second the pure interpreter runs and how many commits (and
//! state transitions) per second the durable runtime makes on a real SQLite file, for a small
//! and a large input, and their ratios, all measured in one run:
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
    for (size, commits, rate) in [
        ("small", small_commits, small_rate),
        ("large", large_commits, large_rate),
    ] {
        println!(
            "durable commits/s, {size} input (synchronous=FULL, 10 transitions each): {commits:>8.0}"
        );
        println!(
            "durable transitions/s, {size} input: {:>10.0}",
            commits * 10.0
        );
        println!(
            "engine steps / durable commits, {size} input: {:.0}x (per transition: {:.0}x)",
            rate / commits,
            rate / (commits * 10.0)
        );
    }
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
