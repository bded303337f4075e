//! Criterion benchmark of the pure engine: steps per second through a ten-state machine on a
//! small and a large input. `throughput` compares these rates with the durable runtime's.

mod common;

use common::{context, input, machine, run};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn engine_steps(c: &mut Criterion) {
    let machine = machine();
    let ctx = context();
    let mut group = c.benchmark_group("engine steps");
    for (label, lines) in [("small", 1), ("large", 500)] {
        let input = input(lines);
        let size = input.to_string().len();
        group.throughput(Throughput::Elements(run(&machine, &input, &ctx)));
        group.bench_with_input(
            BenchmarkId::new(label, format!("{size} B")),
            &input,
            |b, input| b.iter(|| run(&machine, input, &ctx)),
        );
    }
    group.finish();
}

criterion_group!(benches, engine_steps);
criterion_main!(benches);
