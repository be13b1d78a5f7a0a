//! Unit tests of the CPU backend: the memory bound of the percentile plan, the kernel
//! against the reference normals of `normal::normal_at`, bit-identity of every kernel, and
//! the kernel choice by name.

use super::kernel::{simulate_block, PathRange};
use super::plan::{Plan, WHOLE_SAMPLE_PATHS};
use super::*;
use crate::normal;
use crate::validate::prepare;

#[test]
fn percentile_memory_is_bounded_for_the_largest_request() {
    // 10⁷ paths × 1200 months: the pilot sample is bounded (100 snapshots × 2¹⁸ values ×
    // 8 bytes ≈ 210 MB), and nothing of the size of paths × snapshots is ever held.
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"horizon_months": 1200, "initial_wealth": 1},
        "market": {"expected_return": 0.05, "volatility": 0.1},
        "options": {"paths": 10_000_000}
    }))
    .unwrap();
    let goal = prepare(&request).unwrap();
    let plan = Plan::new(&goal, Detail::Full, WHOLE_SAMPLE_PATHS, CpuKernel::widest());
    assert_eq!(plan.months.len(), 100);
    assert!(!plan.sample_is_everything());
    let sample_bytes = plan.months.len() as u64 * goal.paths.div_ceil(plan.stride) * 8;
    assert!(sample_bytes < 256 << 20, "{sample_bytes}");
    // Small goals keep every value: at most 2¹⁶ paths × 100 snapshots × 8 bytes ≈ 52 MB.
    let mut small = request.clone();
    small.options.paths = Some(WHOLE_SAMPLE_PATHS);
    let plan = Plan::new(
        &prepare(&small).unwrap(),
        Detail::Full,
        WHOLE_SAMPLE_PATHS,
        CpuKernel::widest(),
    );
    assert!(plan.sample_is_everything());
}

#[test]
fn the_kernel_draws_the_normals_of_the_reference_definition() {
    // `normal::normal_at(seed, path, month)` is the definition the GPU backends must match;
    // the kernel's wealth must be exactly W0 · Π drift · exp(vol · Z) with those Z.
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"horizon_months": 7, "initial_wealth": 1000},
        "market": {"expected_return": 0.06, "volatility": 0.25},
        "options": {"paths": 40, "seed": 123_456_789_012_u64}
    }))
    .unwrap();
    let goal = prepare(&request).unwrap();
    let terminal = CpuBackend::new().terminal_wealth(&goal);
    for (path, &w) in terminal.iter().enumerate() {
        let mut expected = 1000.0;
        for month in 0..7 {
            let z = normal::normal_at(goal.seed, path as u32, month);
            let shock = normal::exp(goal.volatility[month as usize] * z);
            expected *= goal.drift[month as usize] * f64::from(shock);
        }
        assert_eq!(w, expected, "path {path}");
    }
}

/// A Student-t goal with clamps: 7 months at σ = 200% and ν = 2.05.
fn clamping_student_t_goal(paths: u64) -> PreparedGoal {
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"horizon_months": 7, "initial_wealth": 1000},
        "market": {"expected_return": 0.06, "volatility": 2.0,
                   "model": {"kind": "student_t", "df": 2.05}},
        "options": {"paths": paths, "seed": 99}
    }))
    .unwrap();
    prepare(&request).unwrap()
}

#[test]
fn the_student_t_kernel_draws_the_reference_definition() {
    // W_T = W0 · Π drift · max(gross(Z, v), 0) with `normal_at`'s Z and `mixing_at`'s v, and
    // the clamped months are those whose gross return is ≤ 0.
    let goal = clamping_student_t_goal(4096);
    let t = goal.student_t.unwrap();
    let terminal = CpuBackend::new().terminal_wealth(&goal);
    let mut clamped = 0u64;
    for (path, &w) in terminal.iter().enumerate() {
        let mut expected = 1000.0;
        for month in 0..7 {
            let z = normal::normal_at(goal.seed, path as u32, month);
            let v = crate::student_t::mixing_at(goal.seed, path as u32, month, &t);
            let g = crate::student_t::gross(z, goal.volatility[month as usize], v, t.scale);
            clamped += u64::from(g <= 0.0);
            let shock = if g > 0.0 { g } else { 0.0 };
            expected *= goal.drift[month as usize] * f64::from(shock);
        }
        assert_eq!(w, expected, "path {path}");
    }
    assert!(clamped > 0, "the case reaches the clamp");
    let months = [goal.horizon];
    let mut counted = 0;
    for first in (0..4096).step_by(BLOCK_PATHS) {
        let mut snapshots = vec![0.0; BLOCK_PATHS];
        let mut depletion = vec![0.0; BLOCK_PATHS];
        counted += simulate_block(
            CpuKernel::widest(),
            &goal,
            &months,
            PathRange::contiguous(first, BLOCK_PATHS.min(4096 - first)),
            &mut snapshots,
            &mut depletion,
        )
        .clamped;
    }
    assert_eq!(counted, clamped);
}

/// A goal of `goal` in a market of three regimes (docs/model.md §4.2), 3,000 paths.
fn regime_goal(goal: serde_json::Value) -> PreparedGoal {
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": goal,
        "market": {"expected_return": 0.06, "volatility": 0.3, "inflation": 0.02,
                   "model": {"kind": "regime",
                             "regimes": [{"name": "a"},
                                         {"name": "b", "expected_return": -0.3, "volatility": 0.5},
                                         {"name": "c", "volatility": 0.05}],
                             "transition": [[0.8, 0.15, 0.05], [0.3, 0.4, 0.3], [0.0, 0.5, 0.5]]}},
        "options": {"paths": 3000, "seed": 77}
    }))
    .unwrap();
    prepare(&request).unwrap()
}

/// 75 months: contributions, then withdrawals from month 20 that deplete some paths.
fn drawdown_goal() -> serde_json::Value {
    serde_json::json!({"initial_wealth": 1000, "monthly_contribution": 50, "monthly_withdrawal": 80,
                       "withdrawal_start_month": 20, "horizon_months": 75})
}

#[test]
fn the_regime_kernel_draws_the_reference_definition() {
    // W_T = W0 · Π drift[s_t·T + t] · exp(vol[s_t·T + t] · Z_t) with the regimes s_t of
    // `regime::regimes_at` and the normals of `normal::normal_at`.
    let goal = regime_goal(serde_json::json!({"initial_wealth": 1000, "horizon_months": 29}));
    let chain = goal.regimes.clone().unwrap();
    let terminal = CpuBackend::new().terminal_wealth(&goal);
    let mut visited = [false; 3];
    for (path, &w) in terminal.iter().enumerate().take(500) {
        let regimes = crate::regime::regimes_at(goal.seed, path as u32, 29, &chain);
        let mut expected = 1000.0;
        for (month, &s) in regimes.iter().enumerate() {
            visited[s as usize] = true;
            let at = s as usize * 29 + month;
            let z = normal::normal_at(goal.seed, path as u32, month as u32);
            let shock = normal::exp(goal.volatility[at] * z);
            expected *= goal.drift[at] * f64::from(shock);
        }
        assert_eq!(w, expected, "path {path}");
    }
    assert_eq!(visited, [true; 3], "every regime is visited");
}

/// A drawdown under AR(1) inflation correlated with the market, over `target_real` or not.
fn inflation_goal(target_real: bool, horizon: u32) -> PreparedGoal {
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"initial_wealth": 4000, "monthly_contribution": 100, "monthly_withdrawal": 200,
                 "withdrawal_start_month": 5, "horizon_months": horizon,
                 "target_amount": 5000, "target_real": target_real},
        "market": {"expected_return": 0.05, "volatility": 0.15,
                   "inflation": {"kind": "ar1", "mean": 0.03, "volatility": 0.04,
                                 "half_life_years": 2, "initial": 0.06, "correlation": -0.3}},
        "options": {"paths": 3000, "seed": 5}
    }))
    .unwrap();
    prepare(&request).unwrap()
}

#[test]
fn the_inflation_kernel_draws_the_reference_definition() {
    // Month t withdraws d·I_{12⌊t/12⌋} with the index of `inflation::kernel_index_path` (the
    // market's Z_t and the model's own Z'_t), the wealth step of §1 otherwise; terminal wealth
    // is W_T (a nominal target) or W_T / I_T (a real one), to the bit.
    use crate::inflation::kernel_index_path;
    let horizon = 41;
    for target_real in [false, true] {
        let goal = inflation_goal(target_real, horizon);
        let model = goal.inflation.unwrap();
        assert_eq!(goal.target_real.is_some(), target_real);
        let terminal = CpuBackend::new().terminal_wealth(&goal);
        let mut depleted = 0;
        for (path, &w) in terminal.iter().enumerate().take(400) {
            let (index, year_start) = kernel_index_path(&model, goal.seed, path as u32, horizon);
            let mut expected = 4000.0f64;
            let mut dead = false;
            for t in 0..horizon as usize {
                let z = normal::normal_at(goal.seed, path as u32, t as u32);
                let growth = goal.drift[t] * f64::from(normal::exp(goal.volatility[t] * z));
                let d = goal.withdrawal[t];
                let x = expected + goal.contribution[t] - d * year_start[t / 12];
                if dead || (d > 0.0 && x <= 0.0) {
                    dead = true;
                    expected = 0.0;
                } else {
                    expected = x * growth;
                }
            }
            depleted += usize::from(dead);
            if target_real {
                expected /= index[horizon as usize];
            }
            assert_eq!(w, expected, "path {path}, real target {target_real}");
        }
        assert!(depleted > 0, "some paths deplete");
    }
}

/// A small two-asset history (with inflation or not) for bootstrap tests: 17 months of
/// varied returns, so blocks wrap and the portfolio's weights matter.
pub(crate) fn small_history(inflation: bool) -> serde_json::Value {
    let months: Vec<serde_json::Value> = (0..17)
        .map(|i| {
            let x = f64::from(i);
            let mut month = serde_json::json!({
                "returns": [0.04 * (x * 1.7).sin() + 0.005, 0.01 * (x * 0.9).cos() + 0.002]
            });
            if inflation {
                month["inflation"] = serde_json::json!(0.002 + 0.003 * (x * 0.5).sin());
            }
            month
        })
        .collect();
    serde_json::json!({"assets": ["stocks", "bonds"], "months": months})
}

/// A drawdown under a bootstrap of [`small_history`]: stationary blocks or circular ones over
/// a two-segment glide path, the history's inflation or none, a real target or a nominal one.
fn bootstrap_goal(
    stationary: bool,
    inflation: bool,
    target_real: bool,
    horizon: u32,
) -> PreparedGoal {
    let mut market = serde_json::json!({
        "model": {"kind": "bootstrap", "history": small_history(inflation),
                  "block_months": if stationary { 4 } else { 5 },
                  "method": if stationary { "stationary" } else { "circular" }},
        "fee": 0.01
    });
    if stationary {
        market["weights"] = serde_json::json!([0.7, 0.3]);
    } else {
        market["glide_path"] = serde_json::json!([
            {"start_month": 0, "weights": [0.9, 0.1]},
            {"start_month": 30, "weights": [0.2, 0.8]}
        ]);
    }
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"initial_wealth": 3000, "monthly_contribution": 60, "monthly_withdrawal": 140,
                 "withdrawal_start_month": 6, "horizon_months": horizon,
                 "target_amount": 2000, "target_real": target_real},
        "market": market,
        "options": {"paths": 3000, "seed": 11}
    }))
    .unwrap();
    prepare(&request).unwrap()
}

#[test]
fn the_bootstrap_kernel_draws_the_reference_definition() {
    // Month t grows by the fee's factor times g_s(row_t) with the rows of
    // `bootstrap::rows_at`; the history's inflation moves the index month by month, month t
    // withdraws d·I_{12⌊t/12⌋}, and a real target compares W_T / I_T: to the bit.
    use crate::bootstrap::rows_at;
    let horizon = 53;
    for (stationary, inflation, target_real) in [
        (true, true, true),
        (false, true, false),
        (false, false, true),
    ] {
        let goal = bootstrap_goal(stationary, inflation, target_real, horizon);
        let boot = goal.bootstrap.clone().unwrap();
        assert_eq!(goal.stochastic_index(), inflation);
        assert_eq!(goal.target_real.is_some(), inflation && target_real);
        let terminal = CpuBackend::new().terminal_wealth(&goal);
        let mut depleted = 0;
        for (path, &w) in terminal.iter().enumerate().take(500) {
            let rows = rows_at(&boot, goal.seed, path as u32, horizon);
            let (mut expected, mut index, mut year_index) = (3000.0f64, 1.0f64, 1.0f64);
            let mut dead = false;
            for (t, &row) in rows.iter().enumerate() {
                let row = row as usize;
                let growth = goal.drift[t] * boot.growth[boot.month_table[t] as usize + row];
                let x = expected + goal.contribution[t] - goal.withdrawal[t] * year_index;
                if dead || (goal.withdrawal[t] > 0.0 && x <= 0.0) {
                    dead = true;
                    expected = 0.0;
                } else {
                    expected = x * growth;
                }
                if let Some(factors) = &boot.inflation {
                    index *= factors[row];
                    if (t + 1) % 12 == 0 {
                        year_index = index;
                    }
                }
            }
            depleted += usize::from(dead);
            if goal.target_real.is_some() {
                expected /= index;
            }
            assert_eq!(
                w, expected,
                "path {path}, case {stationary} {inflation} {target_real}"
            );
        }
        assert!(depleted > 0, "some paths deplete");
    }
}

#[test]
fn every_kernel_computes_the_same_bits() {
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"initial_wealth": 1000, "monthly_contribution": 50, "monthly_withdrawal": 80,
                 "withdrawal_start_month": 20, "horizon_months": 75},
        "market": {"expected_return": 0.06, "volatility": 0.3, "inflation": 0.02}
    }))
    .unwrap();
    let goal = prepare(&request).unwrap();
    let months = goal.yearly_months();
    let paths = PathRange {
        first: 4096,
        step: 3,
        count: 1000,
    };
    let run_goal = |kernel: CpuKernel, goal: &PreparedGoal, months: &[u32]| {
        let mut snapshots = vec![0.0; months.len() * BLOCK_PATHS];
        let mut depletion = vec![0.0; BLOCK_PATHS];
        let clamped = simulate_block(kernel, goal, months, paths, &mut snapshots, &mut depletion);
        (snapshots, depletion, clamped)
    };
    let run = |kernel: CpuKernel| run_goal(kernel, &goal, &months);
    let drawdown = regime_goal(drawdown_goal());
    let regime_months = drawdown.yearly_months();
    let regime_run = |kernel: CpuKernel| run_goal(kernel, &drawdown, &regime_months);
    let t_goal = clamping_student_t_goal(4096 + 3000);
    let t_months = [3, 7];
    let t_run = |kernel: CpuKernel| run_goal(kernel, &t_goal, &t_months);
    let t_portable = t_run(CpuKernel::Portable);
    assert!(t_portable.2.clamped > 0, "the t case clamps");
    let portable = run(CpuKernel::Portable);
    assert!(
        portable.1[..1000].iter().any(|&d| d >= 0.0),
        "some paths deplete"
    );
    let no_withdrawal: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"initial_wealth": 1000, "monthly_contribution": 50, "horizon_months": 75},
        "market": {"expected_return": 0.06, "volatility": 0.3},
        "options": {"paths": 3000}
    }))
    .unwrap();
    let saver = prepare(&no_withdrawal).unwrap();
    let unit = vec![1.0; saver.horizon as usize];
    // The backend on one kernel; its affine pass of a goal at the unit schedule.
    let on = |kernel: CpuKernel| CpuBackend::new().with_kernel(kernel).unwrap();
    let affine_of =
        |kernel: CpuKernel, goal: &PreparedGoal| on(kernel).affine_terminal(goal, &unit);
    let affine = |kernel: CpuKernel| affine_of(kernel, &saver);
    let affine_portable = affine(CpuKernel::Portable);
    let regime_saver = regime_goal(serde_json::json!({
        "initial_wealth": 1000, "monthly_contribution": 50, "horizon_months": 75}));
    let regime_affine = |kernel: CpuKernel| affine_of(kernel, &regime_saver);
    let regime_affine_portable = regime_affine(CpuKernel::Portable);
    // The affine pass's W_T is the main kernel's.
    assert_eq!(
        regime_affine_portable.0,
        on(CpuKernel::Portable).terminal_wealth(&regime_saver)
    );
    let regime_portable = regime_run(CpuKernel::Portable);
    let inflation = inflation_goal(true, 75);
    let inflation_months = inflation.snapshot_columns(inflation.yearly_months());
    let inflation_run = |kernel: CpuKernel| run_goal(kernel, &inflation, &inflation_months);
    let inflation_portable = inflation_run(CpuKernel::Portable);
    let mut inflation_saver = inflation_goal(true, 75);
    inflation_saver.withdrawal.fill(0.0);
    let inflation_affine = |kernel: CpuKernel| affine_of(kernel, &inflation_saver);
    let inflation_affine_portable = inflation_affine(CpuKernel::Portable);
    // The affine pass's real W_T / I_T is the main kernel's.
    assert_eq!(
        inflation_affine_portable.0,
        on(CpuKernel::Portable).terminal_wealth(&inflation_saver)
    );
    let bootstrap = bootstrap_goal(true, true, true, 75);
    let bootstrap_months = bootstrap.snapshot_columns(bootstrap.yearly_months());
    let bootstrap_run = |kernel: CpuKernel| run_goal(kernel, &bootstrap, &bootstrap_months);
    let bootstrap_portable = bootstrap_run(CpuKernel::Portable);
    let mut bootstrap_saver = bootstrap_goal(false, true, true, 75);
    bootstrap_saver.withdrawal.fill(0.0);
    let bootstrap_affine = |kernel: CpuKernel| affine_of(kernel, &bootstrap_saver);
    let bootstrap_affine_portable = bootstrap_affine(CpuKernel::Portable);
    // The affine pass's real W_T / I_T is the main kernel's.
    assert_eq!(
        bootstrap_affine_portable.0,
        on(CpuKernel::Portable).terminal_wealth(&bootstrap_saver)
    );
    for kernel in CpuKernel::ALL {
        if !kernel.is_supported() {
            // Said where it shows: the harness captures eprintln!, not stderr itself.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOT TESTED on this CPU: the {kernel} kernel (every_kernel_computes_the_same_bits)"
            );
            continue;
        }
        assert_eq!(run(kernel), portable, "{kernel} block kernel");
        assert_eq!(
            t_run(kernel),
            t_portable,
            "{kernel} block kernel, Student-t"
        );
        assert_eq!(affine(kernel), affine_portable, "{kernel} affine kernel");
        assert_eq!(
            regime_run(kernel),
            regime_portable,
            "{kernel} block kernel, regimes"
        );
        assert_eq!(
            regime_affine(kernel),
            regime_affine_portable,
            "{kernel} affine kernel, regimes"
        );
        assert_eq!(
            inflation_run(kernel),
            inflation_portable,
            "{kernel} block kernel, inflation"
        );
        assert_eq!(
            inflation_affine(kernel),
            inflation_affine_portable,
            "{kernel} affine kernel, inflation"
        );
        assert_eq!(
            bootstrap_run(kernel),
            bootstrap_portable,
            "{kernel} block kernel, bootstrap"
        );
        assert_eq!(
            bootstrap_affine(kernel),
            bootstrap_affine_portable,
            "{kernel} affine kernel, bootstrap"
        );
    }
}

#[test]
fn a_kernel_the_cpu_lacks_is_refused_by_name() {
    for kernel in CpuKernel::ALL {
        let backend = CpuBackend::new().with_kernel(kernel);
        assert_eq!(backend.is_ok(), kernel.is_supported(), "{kernel}");
        if let Err(e) = backend {
            assert!(e.to_string().contains(kernel.name()), "{e}");
        }
        assert_eq!(kernel.name().parse::<CpuKernel>(), Ok(kernel));
    }
    assert!("avx3".parse::<CpuKernel>().unwrap_err().contains("avx512"));
}

/// A goal with per-asset paths: three correlated assets, a two-segment glide path, a fee,
/// contributions then withdrawals that deplete some paths, under `rebalancing`.
fn asset_goal(rebalancing: serde_json::Value, paths: u64) -> PreparedGoal {
    let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"initial_wealth": 5000, "monthly_contribution": 90, "contribution_months": 30,
                 "monthly_withdrawal": 160, "withdrawal_start_month": 30, "horizon_months": 75},
        "market": {
            "assets": [
                {"name": "stocks", "expected_return": 0.08, "volatility": 0.35},
                {"name": "bonds", "expected_return": 0.03, "volatility": 0.08},
                {"name": "gold", "expected_return": 0.04, "volatility": 0.25}
            ],
            "correlations": [[1, 0.3, -0.2], [0.3, 1, 0.1], [-0.2, 0.1, 1]],
            "glide_path": [
                {"start_month": 0, "weights": [0.7, 0.2, 0.1]},
                {"start_month": 40, "weights": [0.3, 0.6, 0.1]}
            ],
            "fee": 0.01, "inflation": 0.02, "rebalancing": rebalancing
        },
        "options": {"paths": paths, "seed": 21}
    }))
    .unwrap();
    prepare(&request).unwrap()
}

#[test]
fn the_per_asset_kernel_is_the_reference_definition_on_every_kernel() {
    // W at every year end, the depletion month, and the block's rebalances and turnover, of
    // `rebalance::simulate_path` path by path, to the bit, on every instruction set.
    use crate::rebalance::simulate_path;
    for rule in [
        serde_json::json!("annual"),
        serde_json::json!({"kind": "band", "band": 0.04}),
        serde_json::json!("none"),
    ] {
        let goal = asset_goal(rule.clone(), 700);
        let months = goal.yearly_months();
        let paths = PathRange::contiguous(0, 700);
        let run = |kernel: CpuKernel| {
            let mut snapshots = vec![0.0; months.len() * BLOCK_PATHS];
            let mut depletion = vec![0.0; BLOCK_PATHS];
            let counts = simulate_block(
                kernel,
                &goal,
                &months,
                paths,
                &mut snapshots,
                &mut depletion,
            );
            (snapshots, depletion, counts)
        };
        let (snapshots, depletion, counts) = run(CpuKernel::Portable);
        let (mut rebalances, mut turnover, mut depleted) = (0u64, 0.0f64, 0);
        for path in 0..700 {
            let expected = simulate_path(&goal, path as u32);
            for (s, &month) in months.iter().enumerate() {
                assert_eq!(
                    snapshots[s * BLOCK_PATHS + path],
                    expected.wealth[month as usize - 1],
                    "{rule}: path {path}, month {month}"
                );
            }
            assert_eq!(
                depletion[path],
                expected.depleted_at.map_or(-1.0, f64::from),
                "{rule}: path {path}"
            );
            depleted += usize::from(expected.depleted_at.is_some());
            rebalances += u64::from(expected.rebalances);
            turnover += expected.turnover;
        }
        assert!(
            depleted > 0 && depleted < 700,
            "{rule}: {depleted} depleted"
        );
        assert_eq!(counts.rebalances, rebalances, "{rule}");
        assert!(
            (counts.turnover - turnover).abs() <= 1e-12 * turnover.max(1.0),
            "{rule}: {} vs {turnover}",
            counts.turnover
        );
        if rule == "none" {
            assert_eq!(rebalances, 0);
        } else {
            assert!(rebalances > 0 && turnover > 0.0, "{rule}");
        }
        for kernel in CpuKernel::ALL {
            if kernel.is_supported() {
                assert_eq!(
                    run(kernel),
                    (snapshots.clone(), depletion.clone(), counts),
                    "{kernel}, {rule}"
                );
            }
        }
    }
}

/// A lane group's `sobol` normals are each lane's own path normals
/// ([`crate::sampler::SobolPaths::path_normals`]) bit for bit: consecutive paths (the
/// Gray-code shortcut), a group spanning replicates (8 points each), a group starting
/// mid-replicate, and the pilot's strided paths.
#[test]
fn sobol_lanes_are_each_paths_own_normals() {
    use super::kernel::SobolLanes;
    use crate::sampler::{PathSampler, SobolPaths};
    for (replicates, paths) in [(4, 32), (16, 16 * 1024)] {
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 37, "initial_wealth": 1},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": paths, "seed": 5, "sampler": "sobol", "replicates": replicates}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let PathSampler::Sobol { points_log2, .. } = goal.sampler else {
            unreachable!("a sobol goal")
        };
        let mut lanes = SobolLanes::of(&goal).unwrap();
        let mut one = SobolPaths::new(goal.seed, goal.horizon, points_log2);
        let mut path = vec![0.0f32; goal.horizon as usize];
        let groups: [[u32; LANES]; 4] = [
            std::array::from_fn(|l| l as u32),
            std::array::from_fn(|l| 9 + l as u32),
            std::array::from_fn(|l| 7 * l as u32),
            std::array::from_fn(|l| 1000 + l as u32),
        ];
        for group in groups {
            lanes.fill(&group);
            for (l, &p) in group.iter().enumerate() {
                one.path_normals(p, &mut path);
                for (t, &z) in path.iter().enumerate() {
                    assert_eq!(
                        lanes.months[t][l].to_bits(),
                        z.to_bits(),
                        "path {p}, month {t}"
                    );
                }
            }
        }
    }
}
