//! Same seed, same bits: for any thread count, chunk size, memory mode and batch composition,
//! and percentiles that are exact order statistics.

mod common;

use common::*;
use sextant_engine::backend::{CpuBackend, SimulationBackend};
use sextant_engine::quantile::percentile_in_place;
use sextant_engine::validate::prepare;
use sextant_engine::{Device, Engine, GoalRequest};

fn drawdown(paths: u64) -> GoalRequest {
    let mut g = goal(150);
    g.initial_wealth = 200_000.0;
    g.monthly_contribution = 500.0;
    g.contribution_months = Some(40);
    g.monthly_withdrawal = 1_800.0;
    g.withdrawal_start_month = Some(30);
    g.target_amount = 50_000.0;
    let mut m = market(0.05, 0.2);
    m.inflation = 0.03.into();
    let mut r = request(g, m, paths, 77);
    r.options.percentiles = vec![0.0, 2.5, 10.0, 50.0, 97.5, 100.0];
    r
}

fn json_on(backend: CpuBackend, request: &GoalRequest) -> String {
    let result = Engine::new(Device::Cpu(backend)).simulate(request).unwrap();
    serde_json::to_string(&result).unwrap()
}

#[test]
fn identical_json_for_any_threads_chunks_and_percentile_method() {
    // 300,001 paths: a partial last block, a sample stride above 1, and depleted paths. The
    // percentiles come from bracketing a sample, or from selecting among every path.
    for paths in [1_000, 300_001] {
        let request = drawdown(paths);
        let reference = json_on(CpuBackend::with_threads(1), &request);
        assert!(reference.contains("\"median_month\":"), "{reference}");
        for backend in [
            CpuBackend::with_threads(2),
            CpuBackend::with_threads(2).with_chunk_paths(1),
            CpuBackend::with_threads(2).with_chunk_paths(37 * 1024),
            CpuBackend::with_threads(3).with_chunk_paths(5000),
            CpuBackend::with_threads(2).with_whole_sample_paths(0),
            CpuBackend::with_threads(2).with_whole_sample_paths(u64::MAX),
        ] {
            assert_eq!(
                json_on(backend.clone(), &request),
                reference,
                "{backend:?} with {paths} paths"
            );
        }
    }
}

#[test]
fn missed_percentile_brackets_are_retried_to_the_same_answer() {
    // With no margin the sampled brackets (±2 sample ranks) nearly always miss the wanted
    // order statistics, so every percentile goes through the retry pass.
    for (paths, backend) in [
        (
            100_000,
            CpuBackend::with_threads(2).with_bracket_margin(0.0),
        ),
        (
            300_001,
            CpuBackend::with_threads(3)
                .with_bracket_margin(0.0)
                .with_chunk_paths(1),
        ),
    ] {
        let mut request = drawdown(paths);
        request.goal.horizon_months = 40;
        let reference = json_on(CpuBackend::with_threads(2), &request);
        assert_eq!(json_on(backend.clone(), &request), reference, "{backend:?}");
    }
}

#[test]
fn a_goal_gives_the_same_result_alone_and_inside_a_batch() {
    let engine = Engine::default();
    let alone = engine.simulate(&drawdown(20_000)).unwrap();
    let mut other = standard_goal(5_000);
    other.options.seed = 1;
    let batch = engine
        .simulate_batch(&[standard_goal(3_000), drawdown(20_000), other])
        .unwrap();
    assert_eq!(batch[1], alone);
}

#[test]
fn percentiles_are_numpy_linear_order_statistics() {
    // Sampled brackets, and selection among every path, give exactly the sorted values' answer.
    let mut request = drawdown(150_000);
    request.goal.withdrawal_start_month = Some(150);
    request.options.percentiles = vec![0.0, 1.0, 5.0, 33.3, 50.0, 90.0, 99.9, 100.0];
    let goal = prepare(&request).unwrap();
    for backend in [
        CpuBackend::new(),
        CpuBackend::new().with_whole_sample_paths(u64::MAX),
    ] {
        let mut terminal = backend.terminal_wealth(&goal);
        assert_eq!(terminal.len(), 150_000);
        let result = Engine::new(Device::Cpu(backend))
            .simulate(&request)
            .unwrap();
        for (p, v) in &result.terminal.percentiles.0 {
            assert_eq!(*v, percentile_in_place(&mut terminal, *p), "p{p}");
        }
        let mean = terminal.iter().sum::<f64>() / terminal.len() as f64;
        assert!((result.terminal.mean - mean).abs() <= 1e-9 * mean);
    }
}

#[test]
fn the_seed_changes_the_numbers_and_repeats_them() {
    let engine = Engine::default();
    let mut a = standard_goal(10_000);
    let first = engine.simulate(&a).unwrap();
    assert_eq!(engine.simulate(&a).unwrap(), first);
    a.options.seed += 1;
    let other = engine.simulate(&a).unwrap();
    assert_ne!(other.terminal.mean, first.terminal.mean);
}
