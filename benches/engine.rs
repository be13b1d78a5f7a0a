//! Criterion benchmarks of the engine: path-steps per second on the standard goal (30 years,
//! growing contributions, real target, yearly percentiles), for one large goal and for a batch
//! of small ones. Run with `cargo bench -p sextant-benches`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_benches::standard_goal;
use sextant_engine::Engine;

fn standard_goal_1m_paths(c: &mut Criterion) {
    let engine = Engine::default();
    let request = standard_goal(1_000_000);
    let steps = request.options.paths() * u64::from(request.goal.horizon_months);
    let mut group = c.benchmark_group("standard goal");
    group.sample_size(10);
    group.throughput(Throughput::Elements(steps));
    group.bench_function("1,000,000 paths (path-steps)", |b| {
        b.iter(|| engine.simulate(&request).unwrap())
    });
    group.finish();
}

fn batches_of_goals(c: &mut Criterion) {
    let engine = Engine::default();
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    // Many callers' goals in one dispatch (the service), and the nightly re-scoring's shape.
    for (goals, paths) in [(100u32, 10_000u64), (1_000, 2_000)] {
        let requests: Vec<_> = (0..goals)
            .map(|i| {
                let mut r = standard_goal(paths);
                r.goal.monthly_contribution = 500.0 + f64::from(i);
                r
            })
            .collect();
        let steps: u64 = requests
            .iter()
            .map(|r| r.options.paths() * u64::from(r.goal.horizon_months))
            .sum();
        group.throughput(Throughput::Elements(steps));
        group.bench_function(format!("{goals} goals x {paths} paths (path-steps)"), |b| {
            b.iter(|| engine.simulate_batch(&requests).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, standard_goal_1m_paths, batches_of_goals);
criterion_main!(benches);
