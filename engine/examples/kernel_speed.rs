//! Times the CPU block kernel alone (terminal wealth only, no fan-chart reductions) on the
//! standard goal:
//! `cargo run --release -p sextant-engine --example kernel_speed [paths] [threads] [kernel]
//! [sampler]` (kernel: avx512, avx2 or portable; default the widest this CPU has; sampler:
//! philox, antithetic or sobol, default philox).

use std::time::Instant;

use sextant_engine::backend::{CpuBackend, CpuKernel, SimulationBackend};
use sextant_engine::validate::prepare;
use sextant_engine::GoalRequest;

fn main() {
    let mut args = std::env::args().skip(1);
    let paths: u64 = args.next().map_or(400_000, |a| a.parse().expect("paths"));
    let threads: usize = args.next().map_or(1, |a| a.parse().expect("threads"));
    let mut request: GoalRequest =
        serde_json::from_str(include_str!("../../examples/accumulation-30y.json")).unwrap();
    request.options.paths = Some(paths);
    let kernel: CpuKernel = args
        .next()
        .map_or_else(CpuKernel::widest, |a| a.parse().expect("kernel"));
    if let Some(sampler) = args.next() {
        request.options.sampler =
            serde_json::from_value(serde_json::Value::String(sampler)).expect("sampler");
    }
    let goal = prepare(&request).unwrap();
    let backend = CpuBackend::with_threads(threads)
        .with_kernel(kernel)
        .expect("a kernel this CPU has");
    backend.terminal_wealth(&goal);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        std::hint::black_box(backend.terminal_wealth(&goal));
        best = best.min(start.elapsed().as_secs_f64());
    }
    let steps = goal.path_steps() as f64;
    println!("kernel {kernel}, {} sampler: {:.3e} path-steps/s ({threads} threads, best of 5, {:.1} ns per path-step per thread)", goal.sampler.name(), steps / best, best * 1e9 * threads as f64 / steps);
}
