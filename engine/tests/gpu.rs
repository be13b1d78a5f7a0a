//! The GPU backends against the CPU reference.
//!
//! WGSL runs here on whatever Vulkan device wgpu finds — in CI, Mesa's lavapipe — and these
//! tests fail rather than skip when there is none (set `SEXTANT_SKIP_WGPU=1` to skip them
//! knowingly). The adapter is printed. Bounds (issue "GPU backends"): the Philox integer
//! streams equal; normals within 1e-6; success probability within 1e-4 absolute, percentiles
//! and means within 1e-4 relative, depletion counts within max(2, paths / 100,000).
//!
//! CUDA cannot run without a GPU; that every kernel compiles with NVRTC 12 and 13 is tested in
//! `service/tests/nvrtc.rs`, beside the binaries' search that finds them.

#![cfg(feature = "wgpu")]

use sextant_engine::backend::{Detail, SimulationBackend, Summary};
use sextant_engine::{CpuBackend, GoalRequest, PreparedGoal};

mod plan_cases;

fn goal(value: serde_json::Value) -> PreparedGoal {
    let request: GoalRequest = serde_json::from_value(value).unwrap();
    sextant_engine::validate::prepare(&request).unwrap()
}

/// Requests covering the model: accumulation with growth and a real target, a drawdown that
/// depletes, a glide path, a short odd horizon, zero volatility, custom percentiles, and
/// Student-t markets (docs/model.md §4.1): fat tails on a saver, and a drawdown at ν = 2.05
/// and 60% volatility whose months are clamped at −100%; regime markets (§4.2): three
/// portfolio regimes on an odd horizon with a late withdrawal start, and two regimes of
/// per-asset returns under a glide path started in the second; stochastic inflation (§4.4):
/// a saver with a real target, and a drawdown whose withdrawals follow the index under fat
/// tails; bootstraps (§4.3): stationary blocks with the history's inflation, and circular
/// blocks over a glide path with a fee and AR(1) inflation; per-asset paths (§4.5): three
/// assets rebalanced yearly over a glide path with a fee and AR(1) inflation (ρ = 0) and a
/// real target, two assets in a 5% band on a drawdown that depletes, and five assets never
/// rebalanced on a short odd horizon.
fn parity_goals(paths: u64) -> Vec<PreparedGoal> {
    use serde_json::json;
    vec![
        goal(json!({
            "goal": {"initial_wealth": 50000, "monthly_contribution": 1000, "contribution_growth": 0.03,
                     "horizon_months": 360, "target_amount": 1200000},
            "market": {"expected_return": 0.07, "volatility": 0.15, "inflation": 0.025},
            "options": {"paths": paths, "seed": 7}
        })),
        goal(json!({
            "goal": {"initial_wealth": 800000, "monthly_withdrawal": 5200, "withdrawal_start_month": 0,
                     "horizon_months": 420},
            "market": {"expected_return": 0.05, "volatility": 0.12, "inflation": 0.03, "fee": 0.008},
            "options": {"paths": paths, "seed": 11}
        })),
        goal(json!({
            "goal": {"initial_wealth": 20000, "monthly_contribution": 500, "horizon_months": 240,
                     "target_amount": 250000, "target_real": false},
            "market": {"glide_path": [
                {"start_month": 0, "expected_return": 0.08, "volatility": 0.18},
                {"start_month": 120, "expected_return": 0.06, "volatility": 0.10},
                {"start_month": 200, "expected_return": 0.04, "volatility": 0.05}]},
            "options": {"paths": paths, "seed": 3, "percentiles": [1, 2.5, 50, 97.5, 99]}
        })),
        goal(json!({
            "goal": {"initial_wealth": 1000, "monthly_contribution": 10, "horizon_months": 7,
                     "target_amount": 1050},
            "market": {"expected_return": 0.06, "volatility": 0.25},
            "options": {"paths": paths, "seed": 123456789012_u64}
        })),
        goal(json!({
            "goal": {"initial_wealth": 10000, "monthly_contribution": 100, "horizon_months": 60,
                     "target_amount": 16000, "target_real": false},
            "market": {"expected_return": 0.04, "volatility": 0.0},
            "options": {"paths": paths.min(2000), "seed": 1}
        })),
        goal(json!({
            "goal": {"initial_wealth": 50000, "monthly_contribution": 1000, "horizon_months": 300,
                     "target_amount": 900000},
            "market": {"expected_return": 0.07, "volatility": 0.16, "inflation": 0.02,
                       "model": {"kind": "student_t", "df": 4}},
            "options": {"paths": paths, "seed": 21}
        })),
        goal(json!({
            "goal": {"initial_wealth": 600000, "monthly_withdrawal": 3000, "withdrawal_start_month": 0,
                     "horizon_months": 240},
            "market": {"expected_return": 0.06, "volatility": 0.6, "fee": 0.01,
                       "model": {"kind": "student_t", "df": 2.05}},
            "options": {"paths": paths, "seed": 5}
        })),
        goal(json!({
            "goal": {"initial_wealth": 700000, "monthly_withdrawal": 3800, "withdrawal_start_month": 6,
                     "horizon_months": 301},
            "market": {"expected_return": 0.07, "volatility": 0.14, "inflation": 0.025,
                       "model": {"kind": "regime",
                                 "regimes": [{"name": "calm"},
                                             {"name": "crisis", "expected_return": -0.15, "volatility": 0.35},
                                             {"name": "recovery", "expected_return": 0.2, "volatility": 0.2}],
                                 "transition": [[0.97, 0.03, 0.0], [0.0, 0.85, 0.15], [0.1, 0.0, 0.9]]}},
            "options": {"paths": paths, "seed": 31}
        })),
        goal(json!({
            "goal": {"initial_wealth": 30000, "monthly_contribution": 800, "horizon_months": 240,
                     "target_amount": 400000},
            "market": {"assets": [{"name": "stocks", "expected_return": 0.08, "volatility": 0.17},
                                  {"name": "bonds", "expected_return": 0.035, "volatility": 0.06}],
                       "glide_path": [{"start_month": 0, "weights": [0.9, 0.1]},
                                      {"start_month": 120, "weights": [0.5, 0.5]}],
                       "model": {"kind": "regime", "initial": 1,
                                 "regimes": [{"name": "bull"},
                                             {"name": "bear", "assets": [
                                                 {"expected_return": -0.2, "volatility": 0.3}, {}]}],
                                 "transition": [[0.98, 0.02], [0.08, 0.92]]}},
            "options": {"paths": paths, "seed": 32}
        })),
        goal(json!({
            "goal": {"initial_wealth": 20000, "monthly_contribution": 700, "horizon_months": 365,
                     "target_amount": 300000, "target_real": true},
            "market": {"expected_return": 0.065, "volatility": 0.14,
                       "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.015,
                                     "correlation": 0.3}},
            "options": {"paths": paths, "seed": 33}
        })),
        goal(json!({
            "goal": {"initial_wealth": 500000, "monthly_withdrawal": 1000,
                     "withdrawal_start_month": 0, "horizon_months": 300},
            "market": {"expected_return": 0.06, "volatility": 0.12,
                       "inflation": {"kind": "ar1", "mean": 0.03, "volatility": 0.02,
                                     "half_life_years": 3, "initial": 0.07, "correlation": -0.2},
                       "model": {"kind": "student_t", "df": 6}},
            "options": {"paths": paths, "seed": 34}
        })),
        // Bootstrap from a history (§4.3): stationary blocks with the history's inflation
        // indexing withdrawals and a real target; circular blocks over a glide path with a
        // fee and AR(1) inflation (ρ = 0).
        goal(json!({
            "goal": {"initial_wealth": 400000, "monthly_withdrawal": 1600,
                     "withdrawal_start_month": 24, "horizon_months": 300,
                     "target_amount": 100000, "target_real": true},
            "market": {"weights": [0.6, 0.4],
                       "model": {"kind": "bootstrap", "history": history(true),
                                 "block_months": 12, "method": "stationary"}},
            "options": {"paths": paths, "seed": 35}
        })),
        goal(json!({
            "goal": {"initial_wealth": 10000, "monthly_contribution": 400, "horizon_months": 250,
                     "target_amount": 150000},
            "market": {"fee": 0.005,
                       "glide_path": [{"start_month": 0, "weights": [0.9, 0.1]},
                                      {"start_month": 120, "weights": [0.4, 0.6]}],
                       "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.01},
                       "model": {"kind": "bootstrap", "history": history(false),
                                 "block_months": 36}},
            "options": {"paths": paths, "seed": 36}
        })),
        goal(json!({
            "goal": {"initial_wealth": 30000, "monthly_contribution": 800, "horizon_months": 240,
                     "target_amount": 350000, "target_real": true},
            "market": {"assets": [
                           {"name": "stocks", "expected_return": 0.08, "volatility": 0.17},
                           {"name": "bonds", "expected_return": 0.035, "volatility": 0.06},
                           {"name": "gold", "expected_return": 0.04, "volatility": 0.22}],
                       "correlations": [[1, 0.2, -0.1], [0.2, 1, 0.3], [-0.1, 0.3, 1]],
                       "glide_path": [{"start_month": 0, "weights": [0.7, 0.2, 0.1]},
                                      {"start_month": 150, "weights": [0.4, 0.5, 0.1]}],
                       "fee": 0.004,
                       "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.01},
                       "rebalancing": "annual"},
            "options": {"paths": paths, "seed": 37}
        })),
        goal(json!({
            "goal": {"initial_wealth": 600000, "monthly_withdrawal": 3600,
                     "withdrawal_start_month": 0, "horizon_months": 360},
            "market": {"assets": [
                           {"name": "stocks", "expected_return": 0.07, "volatility": 0.18},
                           {"name": "bonds", "expected_return": 0.03, "volatility": 0.05}],
                       "weights": [0.6, 0.4], "correlations": [[1, 0.1], [0.1, 1]],
                       "inflation": 0.025,
                       "rebalancing": {"kind": "band", "band": 0.05}},
            "options": {"paths": paths, "seed": 38}
        })),
        goal(json!({
            "goal": {"initial_wealth": 10000, "monthly_contribution": 250, "horizon_months": 37,
                     "target_amount": 20000},
            "market": {"assets": [
                           {"name": "a", "expected_return": 0.09, "volatility": 0.3},
                           {"name": "b", "expected_return": 0.07, "volatility": 0.2},
                           {"name": "c", "expected_return": 0.05, "volatility": 0.12},
                           {"name": "d", "expected_return": 0.03, "volatility": 0.05},
                           {"name": "e", "expected_return": 0.02, "volatility": 0.01}],
                       "weights": [0.3, 0.25, 0.2, 0.15, 0.1],
                       "rebalancing": "none"},
            "options": {"paths": paths, "seed": 39, "percentiles": [5, 50, 95]}
        })),
    ]
}

/// A synthetic two-asset history of 150 months (with monthly inflation or not).
fn history(inflation: bool) -> serde_json::Value {
    use serde_json::json;
    let months: Vec<serde_json::Value> = (0..150)
        .map(|i| {
            let x = f64::from(i);
            let mut month = json!({
                "returns": [0.045 * (x * 1.3).sin() + 0.006, 0.012 * (x * 0.7).cos() + 0.003]
            });
            if inflation {
                month["inflation"] = json!(0.0025 + 0.002 * (x * 0.21).sin());
            }
            month
        })
        .collect();
    json!({"assets": ["stocks", "bonds"], "months": months})
}

fn relative(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(1e-300)
    }
}

/// Assert the parity bounds between a GPU summary and the CPU's.
fn assert_parity(label: &str, gpu: &Summary, cpu: &Summary) {
    let n = cpu.paths;
    assert_eq!(gpu.paths, n);
    let p = |s: &Summary| s.successes as f64 / n as f64;
    assert!(
        (p(gpu) - p(cpu)).abs() <= 1e-4,
        "{label}: success {} vs {}",
        p(gpu),
        p(cpu)
    );
    let slack = 2u64.max(n / 100_000);
    assert!(
        gpu.depleted.abs_diff(cpu.depleted) <= slack,
        "{label}: depleted {} vs {}",
        gpu.depleted,
        cpu.depleted
    );
    assert_eq!(gpu.snapshots.len(), cpu.snapshots.len(), "{label}");
    for (g, c) in gpu.snapshots.iter().zip(&cpu.snapshots) {
        assert_eq!(g.month, c.month);
        assert!(
            relative(g.mean, c.mean) <= 1e-4,
            "{label} month {}: mean {} vs {}",
            c.month,
            g.mean,
            c.mean
        );
        assert!(
            g.depleted.abs_diff(c.depleted) <= slack,
            "{label} month {}",
            c.month
        );
        assert_eq!(g.percentiles.len(), c.percentiles.len());
        for (&(pg, vg), &(pc, vc)) in g.percentiles.iter().zip(&c.percentiles) {
            assert_eq!(pg, pc);
            assert!(
                relative(vg, vc) <= 1e-4 || (vg - vc).abs() <= 1e-6,
                "{label} month {} p{pc}: {vg} vs {vc}",
                c.month
            );
        }
    }
    assert!(
        gpu.clamped_months.abs_diff(cpu.clamped_months) <= slack,
        "{label}: clamped months {} vs {}",
        gpu.clamped_months,
        cpu.clamped_months
    );
    // Per-asset paths: a band's rebalances can flip with the last digit of a weight.
    assert!(
        gpu.rebalances.abs_diff(cpu.rebalances) <= slack,
        "{label}: rebalances {} vs {}",
        gpu.rebalances,
        cpu.rebalances
    );
    assert!(
        relative(gpu.turnover, cpu.turnover) <= 1e-4,
        "{label}: turnover {} vs {}",
        gpu.turnover,
        cpu.turnover
    );
    match (gpu.median_depletion_month, cpu.median_depletion_month) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 1.0, "{label}: median depletion {a} vs {b}"),
        (a, b) => assert_eq!(a, b, "{label}"),
    }
}

/// [`assert_parity`], with each percentile allowed to be any value between the CPU's a few
/// ranks either side (`wide`: the CPU's summary of the same goal with, for each percentile p,
/// p − δ, p and p + δ), widened by 1e-4 relative. A path whose depletion flips with the last
/// bits of its normals (which the depletion slack allows) moves every rank above the zeros by
/// one, so the percentiles just above them move by the gap between neighbouring paths.
fn assert_parity_within_ranks(label: &str, gpu: &Summary, cpu: &Summary, wide: &Summary) {
    let strip = |s: &Summary| {
        let mut s = s.clone();
        for snapshot in &mut s.snapshots {
            snapshot.percentiles.clear();
        }
        s
    };
    assert_parity(label, &strip(gpu), &strip(cpu));
    for ((g, c), w) in gpu
        .snapshots
        .iter()
        .zip(&cpu.snapshots)
        .zip(&wide.snapshots)
    {
        assert_eq!(3 * c.percentiles.len(), w.percentiles.len(), "{label}");
        for (k, (&(p, vg), &(_, vc))) in g.percentiles.iter().zip(&c.percentiles).enumerate() {
            let (low, high) = (w.percentiles[3 * k].1, w.percentiles[3 * k + 2].1);
            assert_eq!(
                w.percentiles[3 * k + 1].1,
                vc,
                "{label}: the wide run's own p{p}"
            );
            let slack = 1e-4 * vc.abs().max(1e-2);
            assert!(
                relative(vg, vc) <= 1e-4 || (low - slack <= vg && vg <= high + slack),
                "{label} month {} p{p}: {vg} vs {vc} (the ranks either side: {low} … {high})",
                c.month
            );
        }
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::*;
    use sextant_engine::backend::WgpuBackend;

    /// The WGSL backend on any adapter, software included; a missing device fails the test.
    /// `plan` on an engine on `b` and on the CPU engine: the first says `wgpu`, and its success
    /// and mean estate are the CPU's within 4 standard errors (at least one path's worth) and
    /// 1e-4 (lavapipe's f32 rounding, see `the_plan_month_loop_in_wgsl_is_the_cpus_on_every_case`).
    fn plan_on_wgpu_near_the_cpu(
        b: &WgpuBackend,
        plan: &sextant_engine::plan::PreparedPlan,
    ) -> (sextant_engine::PlanResult, sextant_engine::PlanResult) {
        use sextant_engine::backend::Device;
        use sextant_engine::Engine;
        let on_gpu = Engine::new(Device::Wgpu(b.clone())).run_plan(plan).unwrap();
        let on_cpu = Engine::new(Device::Cpu(CpuBackend::new()))
            .run_plan(plan)
            .unwrap();
        assert_eq!(on_gpu.backend, "wgpu");
        assert_eq!(on_cpu.backend, "cpu");
        let bound = 4.0 * on_cpu.standard_error.max(1.0 / plan.paths as f64);
        assert!(
            (on_gpu.success_probability - on_cpu.success_probability).abs() <= bound,
            "success {} on wgpu, {} on the CPU (bound {bound})",
            on_gpu.success_probability,
            on_cpu.success_probability
        );
        let (g, c) = (on_gpu.estate.mean, on_cpu.estate.mean);
        assert!(
            (g - c).abs() <= 1e-4 * c.abs(),
            "estate {g} on wgpu, {c} on the CPU"
        );
        (on_gpu, on_cpu)
    }

    fn backend() -> Option<WgpuBackend> {
        if std::env::var_os("SEXTANT_SKIP_WGPU").is_some() {
            eprintln!("SEXTANT_SKIP_WGPU set: WGSL tests skipped");
            return None;
        }
        let backend = WgpuBackend::open(true)
            .unwrap_or_else(|e| panic!("no wgpu adapter ({e}); set SEXTANT_SKIP_WGPU=1 to skip"));
        eprintln!("wgpu adapter: {}", backend.adapter());
        Some(backend)
    }

    fn inputs() -> Vec<([u32; 4], [u32; 2])> {
        let mut out = vec![
            ([0, 0, 0, 0], [0, 0]),
            ([u32::MAX; 4], [u32::MAX; 2]),
            (
                [0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344],
                [0xA409_3822, 0x299F_31D0],
            ),
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.push((
                [i, (x >> 40) as u32, 0, 0],
                [(x >> 7) as u32, (x >> 29) as u32],
            ));
        }
        out
    }

    #[test]
    fn philox_streams_are_bit_identical_to_the_rust_ones() {
        let Some(b) = backend() else { return };
        let inputs = inputs();
        let got = b.philox_blocks(&inputs).unwrap();
        for ((counter, key), g) in inputs.iter().zip(&got) {
            assert_eq!(
                *g,
                sextant_engine::philox::philox4x32_10(*counter, *key),
                "{counter:?} {key:?}"
            );
        }
    }

    #[test]
    fn normals_are_within_1e6_of_the_cpu_ones() {
        let Some(b) = backend() else { return };
        let inputs = inputs();
        let got = b.normal_blocks(&inputs).unwrap();
        let mut worst = 0.0f32;
        for ((counter, key), g) in inputs.iter().zip(&got) {
            let words = sextant_engine::philox::philox4x32_10(*counter, *key);
            let want = sextant_engine::normal::normals_of_block(words);
            for (bits, w) in g.iter().zip(want) {
                worst = worst.max((f32::from_bits(*bits) - w).abs());
            }
        }
        eprintln!("largest normal difference: {worst:e}");
        assert!(worst <= 1e-6, "{worst}");
    }

    /// The plan arithmetic written once in shaders/plan.wgsl, run by the WGSL backend, gives
    /// the CPU's tax and RMDs to the bit: f64 arithmetic in the same order (lavapipe has
    /// SHADER_F64; a device without it fails here by name).
    #[test]
    fn the_plan_tax_and_rmds_in_wgsl_are_the_cpus_bits() {
        let Some(b) = backend() else { return };
        use sextant_engine::plan::{rmd, tax};
        let joint = plan_cases::JOINT_2024;
        let queries: Vec<[f64; 5]> = (0..600u32)
            .map(|k| {
                [
                    f64::from(k) * 1_567.891_3,
                    f64::from(k % 7) * 3_000.25 - 4_000.0,
                    1.0 + f64::from(k % 13) * 0.037,
                    f64::from(k % 11) * 98_765.43 - 10.0,
                    f64::from(60 + k % 71),
                ]
            })
            .collect();
        let got = b.plan_probe(&joint, 29_200.0, 0.15, &queries).unwrap();
        assert_eq!(got.len(), queries.len());
        let brackets: Vec<tax::Bracket> = joint
            .iter()
            .map(|&(over, rate)| tax::Bracket { over, rate })
            .collect();
        for (q, g) in queries.iter().zip(&got) {
            let tax = tax::year_tax(&brackets, 29_200.0, 0.15, q[0], q[1], q[2]);
            let required = rmd::required(q[3], q[4] as u32);
            assert_eq!(
                g[0].to_bits(),
                tax.to_bits(),
                "year_tax{q:?}: {} vs {tax}",
                g[0]
            );
            assert_eq!(
                g[1].to_bits(),
                required.to_bits(),
                "rmd{q:?}: {} vs {required}",
                g[1]
            );
        }
    }

    /// The spending rules of shaders/plan.wgsl, run by the WGSL backend, are the CPU's
    /// `yearly_spending` to the bit on every case of `plan_cases`.
    #[test]
    fn the_plan_spending_rules_in_wgsl_are_the_cpus() {
        let Some(b) = backend() else { return };
        let mut plan = plan_cases::plan();
        let queries = plan_cases::queries();
        for rule in plan_cases::rules() {
            plan.spending.rule = rule;
            let inputs: Vec<[f64; 10]> = queries.iter().map(|q| q.gpu_inputs(rule)).collect();
            let got = b
                .spending_probe(&plan_cases::gpu_rule(&plan, rule), &inputs)
                .unwrap();
            assert_eq!(got.len(), queries.len());
            for (q, g) in queries.iter().zip(got) {
                plan_cases::check(&plan, q, g);
            }
        }
    }

    /// The whole month loop of shaders/plan.wgsl (`plan_path`), run by the WGSL backend, on
    /// every case of `plan_cases::month_loop_cases`. Without volatility every step is f64
    /// arithmetic in the CPU's order, and every path's outcome and yearly samples are the
    /// CPU's bits, with the samples kept and skipped (the lifetimes still differ path by path).
    /// With it, the shocks come from the f32 polynomials, which lavapipe's compiler contracts
    /// into multiply-adds (its normals are the CPU's within 1e-6, not to the bit; CUDA
    /// compiles with `--fmad=false`, and its generated C gives the CPU's bits in
    /// generated_cuda.rs): amounts agree within 1e-4 of the larger of themselves and the
    /// plan's starting wealth, and a path whose rounding tips a discrete outcome (a guardrail,
    /// a failure month) is allowed on at most 2% of paths.
    #[test]
    fn the_plan_month_loop_in_wgsl_is_the_cpus_on_every_case() {
        use sextant_engine::backend::{CpuKernel, Watch};
        use sextant_engine::plan::simulate::simulate_plan_on;
        use sextant_engine::plan::Yearly;
        let Some(b) = backend() else { return };
        let cpu_run = |plan: &sextant_engine::plan::PreparedPlan, yearly: Yearly| {
            simulate_plan_on(plan, &Watch::default(), CpuKernel::widest(), yearly).unwrap()
        };
        let (labels, plans): (Vec<String>, Vec<_>) =
            plan_cases::month_loop_cases(200).into_iter().unzip();
        let still: Vec<_> = plans
            .iter()
            .map(|plan| {
                let mut still = plan.clone();
                still.volatility.iter_mut().for_each(|v| *v = 0.0);
                if let Some(assets) = &mut still.asset_paths {
                    assets.volatility.iter_mut().for_each(|v| *v = 0.0);
                }
                still
            })
            .collect();
        // Every case in one batch, as a solver's plans run; whole, and in small slices (a
        // 64 KiB binding) that cross from one plan to the next.
        let small = b.clone().with_max_binding(1 << 16);
        for (backend, slices) in [(&b, "whole"), (&small, "in 64 KiB slices")] {
            for yearly in [Yearly::Samples, Yearly::Skip] {
                let watch = Watch::default();
                let gpu = backend.simulate_plans(&still, yearly, &watch).unwrap();
                let mut steps = 0;
                for ((label, plan), gpu) in labels.iter().zip(&still).zip(&gpu) {
                    let cpu = cpu_run(plan, yearly);
                    let label = format!("{label} without volatility, {yearly:?}, {slices}");
                    if plan.inflation_model.is_some() {
                        // AR(1)'s index still moves by f32 normals and F(P) (polynomials
                        // lavapipe contracts): near, as with volatility. (A history's index
                        // is f64 products: the CPU's bits.)
                        let wealth: f64 = plan.accounts.iter().map(|a| a.balance).sum();
                        assert_near_samples(&label, gpu, &cpu, wealth, 1e-4, 0.02);
                    } else {
                        plan_cases::assert_same_samples(&label, gpu, &cpu);
                    }
                    steps += cpu
                        .outcomes
                        .iter()
                        .map(|o| u64::from(o.end_month))
                        .sum::<u64>();
                }
                assert_eq!(watch.done(), steps, "progress counts every path-month");
            }
        }
        let gpu = b
            .simulate_plans(&plans, Yearly::Samples, &Watch::default())
            .unwrap();
        for ((label, plan), gpu) in labels.iter().zip(&plans).zip(&gpu) {
            let cpu = cpu_run(plan, Yearly::Samples);
            let wealth: f64 = plan.accounts.iter().map(|a| a.balance).sum();
            assert_near_samples(label, gpu, &cpu, wealth, 1e-4, 0.02);
        }
    }

    /// The yearly fan charts reduced on the device (`Yearly::Percentiles`: the tally, locate
    /// and collect passes of shaders/plan_reduce.wgsl over the samples the plan kernel left
    /// there) are, to the bit, what the host's reduction gives from the same kernel's samples
    /// (`Yearly::Samples`, `reduce_tables`): on every case with volatility (paths end at
    /// different months, failed ones hold zeros), as one batch, whole and in 64 KiB slices (a
    /// plan's samples then lie in several buffers). The plan's whole result is the same too.
    #[test]
    fn the_plans_fan_charts_reduced_on_the_device_are_the_hosts() {
        use sextant_engine::backend::Watch;
        use sextant_engine::plan::{build_plan_result, reduce_tables, Yearly};
        let Some(b) = backend() else { return };
        let bits = plan_cases::reduced_bits;
        let (labels, plans): (Vec<String>, Vec<_>) =
            plan_cases::month_loop_cases(200).into_iter().unzip();
        let small = b.clone().with_max_binding(1 << 16);
        let (mut zeros, mut ended) = (false, false);
        for (backend, slices) in [(&b, "whole"), (&small, "in 64 KiB slices")] {
            let tables = backend
                .simulate_plans(&plans, Yearly::Samples, &Watch::default())
                .unwrap();
            let reduced = backend
                .simulate_plans(&plans, Yearly::Percentiles, &Watch::default())
                .unwrap();
            for (((label, plan), t), r) in labels.iter().zip(&plans).zip(&tables).zip(&reduced) {
                let label = format!("{label}, {slices}");
                assert!(r.wealth.is_empty() && r.years == 0, "{label}: no tables");
                let host = reduce_tables(t, &plan.percentiles);
                assert_eq!(r.reduced.len(), t.years, "{label}: a column pair a year");
                assert_eq!(bits(&r.reduced), bits(&host), "{label}");
                zeros |= host.iter().any(|y| {
                    y.wealth
                        .as_ref()
                        .is_some_and(|w| w[0] == 0.0 && w[w.len() - 1] > 0.0)
                });
                ended |= host.iter().any(|y| 0 < y.running && y.running < plan.paths);
                let from_tables = build_plan_result(plan, t.clone(), "wgpu");
                let from_reduced = build_plan_result(plan, r.clone(), "wgpu");
                assert_eq!(
                    serde_json::to_string(&from_reduced).unwrap(),
                    serde_json::to_string(&from_tables).unwrap(),
                    "{label}: the whole result"
                );
            }
        }
        assert!(
            zeros,
            "some year's lowest percentile is a depleted path's zero"
        );
        assert!(
            ended,
            "some year has paths that ended before it (NaN skipped)"
        );
    }

    /// A plan on an engine whose device is the WGSL backend runs there (the result says
    /// `wgpu`) and reports what the CPU engine reports, up to lavapipe's f32 rounding (see
    /// the test above); a cancelled one stops.
    #[test]
    fn an_engine_on_wgpu_runs_plans_there() {
        use sextant_engine::backend::Device;
        use sextant_engine::Engine;
        let Some(b) = backend() else { return };
        let request: sextant_engine::plan::PlanRequest =
            serde_json::from_str(include_str!("../../examples/plan-couple.json")).unwrap();
        let mut plan = sextant_engine::plan::prepare_plan(&request).unwrap();
        plan.paths = 300;
        let (on_gpu, on_cpu) = plan_on_wgpu_near_the_cpu(&b, &plan);
        let bound = 4.0 * on_cpu.standard_error.max(1.0 / 300.0);
        assert_eq!(on_gpu.yearly.len(), on_cpu.yearly.len());
        // A plan whose paths carry their own index (AR(1) inflation) runs there too, and
        // its real figures are the CPU's within the same bounds.
        let mut indexed = request.clone();
        indexed.market.inflation = serde_json::from_value(
            serde_json::json!({"kind": "ar1", "mean": 0.025, "volatility": 0.01}),
        )
        .unwrap();
        let mut indexed = sextant_engine::plan::prepare_plan(&indexed).unwrap();
        indexed.paths = 300;
        let on_gpu = Engine::new(Device::Wgpu(b.clone()))
            .run_plan(&indexed)
            .unwrap();
        let on_cpu = Engine::new(Device::Cpu(CpuBackend::new()))
            .run_plan(&indexed)
            .unwrap();
        assert_eq!(on_gpu.backend, "wgpu");
        assert!(
            (on_gpu.success_probability - on_cpu.success_probability).abs() <= bound,
            "success {} on wgpu, {} on the CPU (bound {bound})",
            on_gpu.success_probability,
            on_cpu.success_probability
        );
        let median = |r: &sextant_engine::PlanResult| r.estate.real_percentiles.get(50.0).unwrap();
        let (g, c) = (median(&on_gpu), median(&on_cpu));
        assert!(
            (g - c).abs() <= 1e-4 * c.abs(),
            "median real estate {g} on wgpu, {c} on the CPU"
        );
        let real = |r: &sextant_engine::PlanResult| {
            r.yearly[10]
                .wealth_real
                .as_ref()
                .unwrap()
                .get(50.0)
                .unwrap()
        };
        let (g, c) = (real(&on_gpu), real(&on_cpu));
        assert!(
            (g - c).abs() <= 1e-4 * c.abs(),
            "year 10's median real wealth {g} on wgpu, {c} on the CPU"
        );
        let watch = sextant_engine::backend::Watch::default();
        watch.cancel();
        assert_eq!(
            b.simulate_plans(
                std::slice::from_ref(&plan),
                sextant_engine::plan::Yearly::Skip,
                &watch
            )
            .unwrap_err(),
            sextant_engine::backend::BackendError::Cancelled
        );
    }

    /// A plan with per-asset paths runs on the WGSL plan kernel: an engine on wgpu names
    /// itself, and its success, estate and rebalancing are the CPU engine's within lavapipe's
    /// f32 rounding (the bounds of `an_engine_on_wgpu_runs_plans_there`).
    #[test]
    fn an_engine_on_wgpu_runs_per_asset_plans_there() {
        let Some(b) = backend() else { return };
        let mut request: sextant_engine::plan::PlanRequest =
            serde_json::from_str(include_str!("../../examples/plan-couple.json")).unwrap();
        let rebalancing: sextant_engine::GoalRequest =
            serde_json::from_str(include_str!("../../examples/rebalancing.json")).unwrap();
        request.market = rebalancing.market;
        request.options.paths = Some(300);
        let plan = sextant_engine::plan::prepare_plan(&request).unwrap();
        let (on_gpu, on_cpu) = plan_on_wgpu_near_the_cpu(&b, &plan);
        let (g, c) = (
            on_gpu.rebalancing.as_ref().unwrap(),
            on_cpu.rebalancing.as_ref().unwrap(),
        );
        assert!(c.mean_rebalances > 10.0, "{c:?}");
        assert_eq!(g.rule, c.rule);
        assert!(
            (g.mean_rebalances - c.mean_rebalances).abs() <= 0.02 * c.mean_rebalances,
            "{g:?} vs {c:?}"
        );
        assert!(
            relative(g.mean_annual_turnover, c.mean_annual_turnover) <= 1e-3,
            "{g:?} vs {c:?}"
        );
    }

    /// Per-asset paths run on the WGSL kernel: an engine on wgpu names itself for them, and
    /// their rebalancing statistics are the CPU's within the parity bounds.
    #[test]
    fn an_engine_on_wgpu_runs_per_asset_goals_there() {
        use sextant_engine::backend::Device;
        use sextant_engine::Engine;
        let Some(b) = backend() else { return };
        let mut per_asset: sextant_engine::GoalRequest =
            serde_json::from_str(include_str!("../../examples/rebalancing.json")).unwrap();
        per_asset.options.paths = Some(2_000);
        let on_gpu = Engine::new(Device::Wgpu(b)).simulate(&per_asset).unwrap();
        let on_cpu = Engine::new(Device::Cpu(CpuBackend::new()))
            .simulate(&per_asset)
            .unwrap();
        assert_eq!(on_gpu.backend, "wgpu");
        let (g, c) = (
            on_gpu.rebalancing.as_ref().unwrap(),
            on_cpu.rebalancing.as_ref().unwrap(),
        );
        assert_eq!(g.rule, c.rule);
        assert!(
            (g.mean_rebalances - c.mean_rebalances).abs() <= 1e-3,
            "{g:?} vs {c:?}"
        );
        assert!(
            relative(g.mean_turnover, c.mean_turnover) <= 1e-4,
            "{g:?} vs {c:?}"
        );
        assert!((on_gpu.success_probability - on_cpu.success_probability).abs() <= 1e-3);
    }

    #[test]
    fn full_results_match_the_cpu_backend() {
        let Some(b) = backend() else { return };
        let goals = parity_goals(20_000);
        let gpu = b.simulate(&goals, Detail::Full).unwrap();
        let cpu = CpuBackend::new().simulate(&goals, Detail::Full).unwrap();
        for (k, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            assert_parity(&format!("goal {k}"), g, c);
        }
        // The ν = 2.05 drawdown (the seventh goal) clamps; the per-asset goals (the last
        // three) rebalance, all but the one that never does, and the band's drawdown depletes.
        let clamping = &cpu[6];
        assert!(clamping.clamped_months > 100, "{}", clamping.clamped_months);
        let n = goals.len();
        assert!(cpu[n - 3].rebalances > 0 && cpu[n - 2].rebalances > 0);
        assert_eq!(cpu[n - 1].rebalances, 0);
        assert!(cpu[n - 2].depleted > 0, "{}", cpu[n - 2].depleted);
        // Success-only batches agree too.
        let gpu = b.simulate(&goals, Detail::Success).unwrap();
        let cpu = CpuBackend::new().simulate(&goals, Detail::Success).unwrap();
        for (k, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            assert_parity(&format!("success-only goal {k}"), g, c);
        }
    }

    /// Antithetic pairs (docs/model.md §6) on the WGSL kernel: on every parity goal the
    /// sampler covers (all but the bootstraps: Student-t, regimes, AR(1) inflation and
    /// per-asset paths included) the results are the CPU's within the parity bounds, and so
    /// are the pair classes the standard errors come from (each class within the bounds'
    /// slack, the standard errors then within 1e-3 relative), at 20,000 paths as
    /// `full_results_match_the_cpu_backend`. Beside them in the same batch, a Philox goal's
    /// results are those it has alone, to the bit.
    #[test]
    fn antithetic_pairs_match_the_cpu_backend() {
        use sextant_engine::sampler::{PathSampler, Spread};
        let Some(b) = backend() else { return };
        let philox = parity_goals(20_000).remove(0);
        let mut goals: Vec<PreparedGoal> = parity_goals(20_000)
            .into_iter()
            .filter(|g| g.bootstrap.is_none())
            .map(|mut g| {
                g.sampler = PathSampler::Antithetic;
                g
            })
            .collect();
        assert!(goals.len() >= 10, "{}", goals.len());
        goals.push(philox.clone());
        for detail in [Detail::Full, Detail::Success] {
            let gpu = b.simulate(&goals, detail).unwrap();
            let cpu = CpuBackend::new().simulate(&goals, detail).unwrap();
            let n = goals.len();
            for (k, (g, c)) in gpu.iter().zip(&cpu).take(n - 1).enumerate() {
                let label = format!("antithetic goal {k} ({detail:?})");
                assert_parity(&label, g, c);
                let (
                    Spread::Pairs {
                        successes: gs,
                        depleted: gd,
                    },
                    Spread::Pairs {
                        successes: cs,
                        depleted: cd,
                    },
                ) = (&g.spread, &c.spread)
                else {
                    panic!(
                        "{label}: pairs on both, got {:?} and {:?}",
                        g.spread, c.spread
                    );
                };
                assert_eq!(gs.iter().sum::<u64>(), c.paths / 2, "{label}");
                assert_eq!(gd.iter().sum::<u64>(), c.paths / 2, "{label}");
                for (x, y) in gs.iter().zip(cs).chain(gd.iter().zip(cd)) {
                    assert!(
                        x.abs_diff(*y) <= 2,
                        "{label}: pair classes {gs:?} {gd:?} vs {cs:?} {cd:?}"
                    );
                }
                let se = |s: &Summary| s.spread.standard_errors(s.paths, s.successes, s.depleted);
                let ((gs, gd), (cs, cd)) = (se(g), se(c));
                assert!(
                    relative(gs, cs) <= 1e-3 || (gs - cs).abs() <= 1e-6,
                    "{label}: success SE {gs} vs {cs}"
                );
                assert!(
                    relative(gd, cd) <= 1e-3 || (gd - cd).abs() <= 1e-6,
                    "{label}: depletion SE {gd} vs {cd}"
                );
            }
            let alone = b.simulate(std::slice::from_ref(&philox), detail).unwrap();
            assert_eq!(gpu[n - 1], alone[0], "the Philox goal beside the pairs");
            assert_eq!(gpu[n - 1].spread, Spread::Paths);
        }
        // Pairs on the drawdown do both: some pairs lose one path only, and some both.
        let cpu = CpuBackend::new()
            .simulate(&goals[1..2], Detail::Success)
            .unwrap();
        let Spread::Pairs { depleted, .. } = &cpu[0].spread else {
            unreachable!()
        };
        assert!(depleted[1] > 0 && depleted[2] > 0, "{depleted:?}");
    }

    /// The `sobol` sampler (docs/model.md §6) on the WGSL kernel, its points, scramble, Φ⁻¹
    /// and bridge walked on the device: on every parity goal it covers (all but the bootstraps
    /// and per-asset paths: Student-t, regimes and AR(1) inflation included), 16 replicates of
    /// 2,048 points, the results are the CPU's within the parity bounds, and so is each
    /// replicate's count of successes and depletions (within the bounds' slack), hence the
    /// standard errors (within 2%: a count off by one moves a replicate's estimate by 1/2,048).
    /// A percentile may also fall between the CPU's three ranks either side
    /// ([`assert_parity_within_ranks`]: the drawdown's percentiles just above its depleted
    /// paths do, where a depletion flip moves them). Replicates of 16 points (a workgroup then
    /// spans several) count alike.
    #[test]
    fn sobol_paths_match_the_cpu_backend() {
        use sextant_engine::sampler::{PathSampler, Spread};
        let Some(b) = backend() else { return };
        let with = |points_log2: u32| -> Vec<PreparedGoal> {
            parity_goals(20_000)
                .into_iter()
                .filter(|g| g.bootstrap.is_none() && g.asset_paths.is_none())
                .map(|mut g| {
                    g.sampler = PathSampler::Sobol {
                        replicates: 16,
                        points_log2,
                    };
                    g.paths = 16 << points_log2;
                    g
                })
                .collect()
        };
        for (goals, detail) in [
            (with(11), Detail::Full),
            (with(11), Detail::Success),
            (with(4), Detail::Success),
        ] {
            assert!(goals.len() >= 8, "{}", goals.len());
            let gpu = b.simulate(&goals, detail).unwrap();
            let cpu = CpuBackend::new().simulate(&goals, detail).unwrap();
            let wide: Vec<PreparedGoal> = goals
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    let delta = 100.0 * 3.0 / g.paths as f64;
                    g.percentiles = g
                        .percentiles
                        .iter()
                        .flat_map(|&p| [(p - delta).max(0.0), p, (p + delta).min(100.0)])
                        .collect();
                    g
                })
                .collect();
            let wide = CpuBackend::new().simulate(&wide, detail).unwrap();
            for (k, ((g, c), w)) in gpu.iter().zip(&cpu).zip(&wide).enumerate() {
                let label = format!("sobol goal {k} ({detail:?}, {} paths)", c.paths);
                assert_parity_within_ranks(&label, g, c, w);
                let (Spread::Replicates(gr), Spread::Replicates(cr)) = (&g.spread, &c.spread)
                else {
                    panic!(
                        "{label}: replicates on both, got {:?} and {:?}",
                        g.spread, c.spread
                    );
                };
                assert_eq!(gr.len(), 16, "{label}");
                for (x, y) in gr.iter().zip(cr) {
                    assert_eq!(x.paths, y.paths, "{label}");
                    assert!(
                        x.successes.abs_diff(y.successes) <= 2
                            && x.depleted.abs_diff(y.depleted) <= 2,
                        "{label}: replicate {x:?} vs {y:?}"
                    );
                }
                let se = |s: &Summary| s.spread.standard_errors(s.paths, s.successes, s.depleted);
                let ((gs, gd), (cs, cd)) = (se(g), se(c));
                assert!(
                    relative(gs, cs) <= 0.02 || (gs - cs).abs() <= 1e-4,
                    "{label}: success SE {gs} vs {cs}"
                );
                assert!(
                    relative(gd, cd) <= 0.02 || (gd - cd).abs() <= 1e-4,
                    "{label}: depletion SE {gd} vs {cd}"
                );
            }
        }
    }

    /// An engine on the WGSL backend runs every sampler there (each result's `backend` says
    /// `wgpu`) and reports what the CPU engine does; a precision target's rounds run there too.
    #[test]
    fn an_engine_on_wgpu_runs_every_sampler_there() {
        use sextant_engine::backend::Device;
        use sextant_engine::Engine;
        let Some(b) = backend() else { return };
        let request = |sampler: &str| -> GoalRequest {
            serde_json::from_value(serde_json::json!({
                "goal": {"initial_wealth": 800000, "monthly_withdrawal": 5200, "horizon_months": 360},
                "market": {"expected_return": 0.05, "volatility": 0.12},
                "options": {"seed": 5, "sampler": sampler, "precision": {"success_probability": 0.004}}
            }))
            .unwrap()
        };
        let samplers = ["antithetic", "sobol", "philox"];
        let requests: Vec<GoalRequest> = samplers.iter().map(|s| request(s)).collect();
        let on_gpu = Engine::new(Device::Wgpu(b))
            .simulate_batch(&requests)
            .unwrap();
        let on_cpu = Engine::new(Device::Cpu(CpuBackend::new()))
            .simulate_batch(&requests)
            .unwrap();
        for ((sampler, g), c) in samplers.iter().zip(&on_gpu).zip(&on_cpu) {
            assert_eq!(g.backend, "wgpu", "{sampler}");
            let report = |r: &sextant_engine::SimulationResult| {
                let s = r.sampling.as_ref().unwrap();
                (
                    s.sampler.clone(),
                    s.precision.as_ref().unwrap().met,
                    r.paths,
                )
            };
            assert_eq!(report(g), report(c), "{sampler}");
            assert!(g.standard_error <= 0.004, "{sampler}: {}", g.standard_error);
            assert!(
                (g.success_probability - c.success_probability).abs() <= 1e-3,
                "{sampler}: {} vs {}",
                g.success_probability,
                c.success_probability
            );
        }
    }

    #[test]
    fn chunked_batches_and_sliced_dispatches_give_the_same_results() {
        let Some(b) = backend() else { return };
        let goals = parity_goals(3_000);
        let whole = b.simulate(&goals, Detail::Full).unwrap();
        // One goal per chunk (its histograms alone exceed 8 kB), collect passes of 2,000
        // values, and 4 workgroups per dispatch.
        let small = b.clone().with_max_binding(8_000).with_max_workgroups(4);
        let split = small.simulate(&goals, Detail::Full).unwrap();
        assert_eq!(whole, split);
    }
}

/// `gpu` is `cpu` up to rounding: every path's discrete outcome (end, failure month, goals,
/// guardrails, deaths) is the same on all but a fraction `flipped` of the paths, and on the
/// others every amount is within `relative` of the larger of it and `scale` (the plan's
/// starting wealth: a small estate is a large one less nearly as large a spending, and
/// carries the rounding of both).
pub fn assert_near_samples(
    label: &str,
    gpu: &sextant_engine::plan::PlanSamples,
    cpu: &sextant_engine::plan::PlanSamples,
    scale: f64,
    relative: f64,
    flipped: f64,
) {
    assert_eq!(gpu.outcomes.len(), cpu.outcomes.len(), "{label}: paths");
    let near = |a: f64, b: f64| (a - b).abs() <= relative * b.abs().max(a.abs()).max(scale);
    let mut tipped = 0;
    for (path, (g, c)) in gpu.outcomes.iter().zip(&cpu.outcomes).enumerate() {
        let (gb, cb) = (plan_cases::outcome_bits(g), plan_cases::outcome_bits(c));
        let discrete = [0, 1, 6, 7, 8, 9, 10, 11, 12, 14, 15];
        if discrete.iter().any(|&k| gb[k] != cb[k]) {
            tipped += 1;
            continue;
        }
        for (name, a, b) in [
            ("estate", g.estate, c.estate),
            ("accounts", g.estate_accounts, c.estate_accounts),
            ("tax-deferred", g.estate_tax_deferred, c.estate_tax_deferred),
            ("taxes", g.taxes, c.taxes),
        ] {
            assert!(near(a, b), "{label}: path {path}: {name} {a} vs {b}");
        }
        let (a, b) = (g.turnover, c.turnover);
        assert!(
            (a - b).abs() <= relative * a.abs().max(b.abs()).max(1.0),
            "{label}: path {path}: turnover {a} vs {b}"
        );
        let (a, b) = (g.end_index, c.end_index);
        assert!(
            (a - b).abs() <= relative * a.abs().max(b.abs()),
            "{label}: path {path}: index at the end {a} vs {b}"
        );
    }
    let allowed = (flipped * cpu.outcomes.len() as f64).ceil() as usize;
    assert!(
        tipped <= allowed,
        "{label}: {tipped} paths' discrete outcomes differ (at most {allowed} allowed)"
    );
    eprintln!("{label}: {tipped} of {} paths tipped", cpu.outcomes.len());
}
