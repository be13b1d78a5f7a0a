// Goal Monte Carlo of docs/model.md §1 for a batch of goals: one invocation per path, one
// workgroup of 256 paths of one goal, months in a loop. Reductions happen here: success and
// depletion counts and depletion months (atomics), per-workgroup sums for the means, and, for
// the percentiles, a histogram of every snapshot over log2 bins (mode 0); mode 1 re-simulates
// the same paths (same Philox numbers) and collects the values that fall in the bins that hold
// the wanted order statistics, which the host then selects exactly. Only these summaries are
// read back, never every path.
//
// The numbers: Philox4x32-10 keyed by the goal's seed, counter (path, month / 4, 0, 0) (and,
// for a Student-t market's mixing draws, (path, month / 2, 1, 0) and (path, month, 2, pair);
// for a regime market's uniforms, (path, month / 4, 3, 0); for stochastic inflation's own
// normals, (path, month / 4, 4, 0); for a bootstrap's block starts and draws, (path, month / 4,
// 5, 0 and 1), with no market normals drawn; under per-asset paths, asset k's normals at
// (path, month / 4, 0, k), shaders/assets.wgsl), and the Box-Muller transform with the same polynomial ln / sincos / exp as the CPU backend
// (engine/src/normal.rs), so the normals match the CPU's within 1e-6; both are in
// shaders/common.wgsl, which the backend puts before this file. Under the `sobol` sampler the
// market normals come from shaders/sobol_paths.wgsl instead (docs/model.md §6).
//
// Wealth is carried in `real`, which the host defines before this source: `f64` where the
// adapter has SHADER_F64 (as on the CPU: small balances near depletion keep their digits),
// else `f32`. Values leave the kernel as f32.

const BLOCK: u32 = 256u;
const NONE: u32 = 0xffffffffu;

struct Params {
    // 0: tally (counts, sums, histograms); 1: collect the values of the wanted bins.
    mode: u32,
    // Bins per snapshot histogram (bin 0 holds exact zeros).
    bins: u32,
    // The first block of this dispatch (a goal may need more than 65,535 workgroups).
    block_base: u32,
    // log2 of the lowest positive bin edge, and bins per unit of log2.
    log2_low: f32,
    bins_per_octave: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Goal {
    paths: u32,
    horizon: u32,
    month_base: u32,
    // 1: snapshots every 12 months and at the horizon; 0: the horizon only.
    yearly: u32,
    seed_lo: u32,
    seed_hi: u32,
    snaps: u32,
    // counts: [successes, depleted at each snapshot…, paths depleted in month t…]
    counts_base: u32,
    // sums (from sums_base): per block, a row (`sums_width`): each snapshot's sum, the
    // shortfall over failed paths and, under per-asset paths, the rebalances and turnover.
    sums_base: u32,
    // histograms: snaps × bins.
    hist_base: u32,
    // wanted: snaps × wanted_per_snap entries (bin, first slot, end slot, 0).
    wanted_base: u32,
    wanted_per_snap: u32,
    target_wealth: f32,
    initial: f32,
    // What f32 rounding left of the target and the initial wealth (hi + lo is the f64).
    target_lo: f32,
    initial_lo: f32,
    // 0: §1's lognormal month; 1: Student-t (docs/model.md §4.1) with Marsaglia–Tsang's d, c
    // and the shock's scale (ν − 2)/(2d); 2: regime switching (§4.2); 3, 4: a bootstrap from a
    // history (§4.3) in circular or stationary blocks.
    model: u32,
    t_d: f32,
    t_c: f32,
    t_scale: f32,
    // Regime switching: K, and where the chain's K + 1 rows of K − 1 thresholds sit in `vols`.
    // Regime k's months sit at month_base + k·horizon.
    regimes: u32,
    regime_table: u32,
    // Stochastic inflation (§4.4): where its six constants sit in `vols` (θ, φ, the
    // innovation's scale, π_0, ρ, sqrt(1 − ρ²)), or NONE. The snapshots then come twice, W_s
    // and the real W_s / I_s (snaps counts both).
    inflation_table: u32,
    // 1: success compares the real W_T / I_T with the target; 0: W_T.
    target_real: u32,
    // A bootstrap: the history's months N and the block length b; where its table starts in
    // `months` (entry e is the f32 pair at months[table + e / 2], .xy for even e, .zw for
    // odd), each month's segment's first entry sitting in `vols` as a float; and the entry of
    // the inflation column's first row in the table, or NONE.
    bootstrap_rows: u32,
    bootstrap_block: u32,
    bootstrap_table: u32,
    bootstrap_inflation: u32,
    // Per-asset paths (§4.5; shaders/assets.wgsl): K assets (0: one portfolio), the rule
    // (0 annual, 1 band, 2 none), and where the asset table's f64 pairs and f32s start in
    // `months`.
    assets: u32,
    asset_rule: u32,
    asset_table: u32,
    asset_floats: u32,
    // The sampler (docs/model.md §6): 0 Philox, 1 antithetic pairs (paths 2k and 2k + 1 read
    // path k's streams, the second negates the market normals), 2 `sobol` (path p is point
    // p mod 2^points_log2 of replicate p >> points_log2, its normals from
    // shaders/sobol_paths.wgsl, its bridge table at `sobol_table` in `months`). Where the
    // sampler's own counts start in `counts`: antithetic pairs' [both succeeded, both
    // depleted]; each `sobol` replicate's [successes, depleted].
    sampler: u32,
    spread_base: u32,
    points_log2: u32,
    sobol_table: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> goals: array<Goal>;
// Bindings 2 and 3 are declared in shaders/assets.wgsl (its functions read them), which
// comes before this file. `months`: two entries per month, each amount as an f32 pair (hi, lo)
// whose sum is the f64: (contribution hi, lo, withdrawal hi, lo), (drift hi, lo, 0, 0) with
// drift = exp(m/12); then each goal's tables. `vols`: one volatility per month (a bootstrap's:
// its segment's first table entry); after a regime goal's months, its chain's thresholds.
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(7) var<storage, read> wanted: array<vec4<u32>>;
@group(0) @binding(8) var<storage, read_write> values: array<f32>;

var<workgroup> goal_of_group: Goal;
var<workgroup> partial: array<f32, 256>;
var<workgroup> group_count: atomic<u32>;
// Antithetic pairs: each path's outcome (bit 0 success, bit 1 depleted), read by its partner.
var<workgroup> pair_outcome: array<u32, 256>;

// ---- Reductions ----------------------------------------------------------------------------

// Sum of `x` over the workgroup (every invocation must call it).
fn workgroup_sum(lid: u32, x: f32) -> f32 {
    partial[lid] = x;
    workgroupBarrier();
    for (var stride = BLOCK / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = partial[lid] + partial[lid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// Count of `flag` over the workgroup, added to counts[index] once (every invocation calls it).
fn workgroup_count(lid: u32, flag: bool, index: u32) {
    if (lid == 0u) {
        atomicStore(&group_count, 0u);
    }
    workgroupBarrier();
    if (flag) {
        atomicAdd(&group_count, 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = atomicLoad(&group_count);
        if (n > 0u) {
            atomicAdd(&counts[index], n);
        }
    }
}

// One snapshot column's value: the workgroup's sum, depleted count and histogram (mode 0),
// or the collection of the values in its wanted bins (mode 1). Every invocation calls it.
fn record(lid: u32, g: Goal, block: u32, live: bool, depleted: bool, snap: u32, value: f32) {
    // One bin per value, computed once, so both modes see the same bin.
    let bin = bin_of(value);
    if (params.mode == 0u) {
        let total = workgroup_sum(lid, select(0.0, value, live));
        if (lid == 0u) {
            sums[g.sums_base + block * sums_width(g) + snap] = total;
        }
        workgroup_count(lid, live && depleted, g.counts_base + 1u + snap);
        if (live && g.wanted_per_snap > 0u) {
            atomicAdd(&hist[g.hist_base + snap * params.bins + bin], 1u);
        }
    } else if (live) {
        for (var k = 0u; k < g.wanted_per_snap; k++) {
            let want = wanted[g.wanted_base + snap * g.wanted_per_snap + k];
            if (want.x == bin) {
                let slot = atomicAdd(&counts[want.y], 1u);
                if (slot < want.z) {
                    values[slot] = value;
                }
            }
        }
    }
}

// Values per block in `sums`: each snapshot, the shortfall, and under per-asset paths the
// rebalances and turnover.
fn sums_width(g: Goal) -> u32 {
    return g.snaps + select(1u, 3u, g.assets > 0u);
}

fn bin_of(w: f32) -> u32 {
    if (w <= 0.0) {
        return 0u;
    }
    let position = (log2(w) - params.log2_low) * params.bins_per_octave;
    return u32(clamp(position, 0.0, f32(params.bins - 2u))) + 1u;
}

@compute @workgroup_size(256)
fn simulate(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if (lid == 0u) {
        goal_of_group = goals[group.y];
    }
    let g = workgroupUniformLoad(&goal_of_group);
    let block = group.x + params.block_base;
    if (block * BLOCK >= g.paths) {
        return;
    }
    let path = block * BLOCK + lid;
    let live = path < g.paths;
    let key = vec2<u32>(g.seed_lo, g.seed_hi);
    let tally = params.mode == 0u;
    // The path whose Philox streams this one reads (under antithetic pairs, path 2k and 2k + 1
    // read path k's), and whether it negates the market normals (a pair's second).
    let antithetic = g.sampler == 1u;
    let stream = select(path, path >> 1u, antithetic);
    let mirrored = antithetic && (path & 1u) == 1u;
    // `sobol`: the path's walk down its bridge (the other streams stay Philox at `path`).
    let sobol = g.sampler == 2u;
    let replicate = path >> g.points_log2;
    var bridge: SobolPath;
    if (sobol && live) {
        let index = path & ((1u << g.points_log2) - 1u);
        bridge = sobol_path_start(index, replicate, key, g.sobol_table, g.horizon);
    }

    var wealth = real(g.initial) + real(g.initial_lo);
    let target_wealth = real(g.target_wealth) + real(g.target_lo);
    var depleted = false;
    var snap = 0u;
    var normals = vec4<f32>(0.0);
    var clamped = 0u;
    var mixing_block = vec4<u32>(0u);
    var regime = 0u;
    var regime_words = vec4<u32>(0u);
    // Stochastic inflation: the rate π_t, the product of this year's max(1 + π, 0.5), the
    // index at the year's start (it scales the year's withdrawals) and at the last year end or
    // horizon; 1 throughout under a deterministic rate.
    let ar1 = g.inflation_table != NONE;
    var rate = real(0.0);
    var year_product = real(1.0);
    var year_index = real(1.0);
    var index = real(1.0);
    var own = vec4<f32>(0.0);
    if (ar1) {
        rate = real(vols[g.inflation_table + 3u]);
    }
    // A bootstrap: the month's history row, the quad's start words and draws, the month's
    // growth and (history inflation) its factor 1 + π; the index moves every month then.
    let bootstrap = g.model >= 3u;
    let history_index = bootstrap && g.bootstrap_inflation != NONE;
    let stochastic = ar1 || history_index;
    var row = 0u;
    var starts = vec4<u32>(0u);
    var draws = vec4<u32>(0u);
    var price = real(1.0);
    // Per-asset paths: each asset's holdings and normals for the quad; the path's rebalances
    // and turnover. W is then the holdings' sum.
    let per_asset = g.assets > 0u;
    var holdings: array<real, MAX_ASSETS>;
    var asset_z: array<vec4<f32>, MAX_ASSETS>;
    var rebalances = 0u;
    var turnover = real(0.0);
    if (per_asset) {
        wealth = asset_start(&holdings, g.assets, g.asset_table, wealth);
    }
    for (var t = 0u; t < g.horizon; t++) {
        if ((t & 3u) == 0u) {
            if (bootstrap) {
                starts = bootstrap_words(stream, t, key, 0u);
                if (g.model == 4u) {
                    draws = bootstrap_words(stream, t, key, 1u);
                }
            } else if (per_asset) {
                // Asset 0's normals are §1's Z (the AR(1) index's ρ·Z is 0 here: ρ = 0).
                asset_normals(&asset_z, stream, t, key, g.assets);
                if (mirrored) {
                    // Every asset's normals, so the correlated shocks L·Z are negated too.
                    for (var k = 0u; k < g.assets; k++) {
                        asset_z[k] = -asset_z[k];
                    }
                }
                normals = asset_z[0];
            } else if (!sobol) {
                normals = normals_of_block(philox(vec4<u32>(stream, t >> 2u, 0u, 0u), key));
                if (mirrored) {
                    normals = -normals;
                }
            }
            if (ar1) {
                own = inflation_normals(stream, t, key);
            }
        }
        var z = normals[t & 3u];
        if (sobol && live) {
            z = sobol_path_next(&bridge);
        }
        var m = g.month_base + t;
        if (g.model == 2u) {
            // Month 0 draws from row 0, month t from the row of month t − 1's regime.
            if ((t & 3u) == 0u) {
                regime_words = regime_block(stream, t, key);
            }
            let u = regime_uniform(regime_words, t);
            let width = g.regimes - 1u;
            let row = g.regime_table + select(1u + regime, 0u, t == 0u) * width;
            regime = 0u;
            for (var j = 0u; j < width; j++) {
                if (u >= vols[row + j]) {
                    regime = regime + 1u;
                }
            }
            m = g.month_base + regime * g.horizon + t;
        }
        let flows = months[2u * m];
        let drift = months[2u * m + 1u];
        let vol = vols[m];
        var shock: f32;
        var factor: real;
        if (bootstrap) {
            row = bootstrap_row(row, t, starts[t & 3u], draws[t & 3u], g.bootstrap_rows, g.bootstrap_block, g.model == 4u);
            factor = table_entry(g.bootstrap_table, u32(vol) + row);
            if (history_index) {
                price = table_entry(g.bootstrap_table, g.bootstrap_inflation + row);
            }
        } else if (g.model == 1u) {
            // Months 2k and 2k+1 share their first proposals' block.
            if ((t & 1u) == 0u) {
                mixing_block = student_t_block(stream, t, key);
            }
            var v = student_t_first(mixing_block, t, g.t_d, g.t_c);
            if (!(v > 0.0)) {
                v = student_t_retry(stream, t, key, g.t_d, g.t_c);
            }
            let gross = student_t_gross(z, vol, v, g.t_scale);
            if (gross > 0.0) {
                shock = gross;
            } else {
                shock = 0.0;
                clamped = clamped + 1u;
            }
        } else {
            shock = exp_poly(vol * z);
        }
        if (!bootstrap) {
            factor = real(shock);
        }
        if (depleted) {
            wealth = real(0.0);
        } else {
            let withdrawal = (real(flows.z) + real(flows.w)) * year_index;
            let x = wealth + (real(flows.x) + real(flows.y)) - withdrawal;
            if (flows.z > 0.0 && x <= real(0.0)) {
                depleted = true;
                wealth = real(0.0);
                if (tally && live) {
                    atomicAdd(&counts[g.counts_base + 1u + g.snaps + t], 1u);
                }
            } else if (per_asset) {
                let net = (real(flows.x) + real(flows.y)) - withdrawal;
                let step = asset_month(&holdings, &asset_z, g.assets, g.asset_rule, g.asset_table, g.asset_floats, t, x, wealth, net);
                wealth = step.wealth;
                rebalances = rebalances + step.rebalanced;
                turnover = turnover + step.turnover;
            } else {
                wealth = x * ((real(drift.x) + real(drift.y)) * factor);
            }
        }
        let month = t + 1u;
        if (ar1) {
            // π_{t+1} from ε_t = ρ·Z_t + sqrt(1 − ρ²)·Z'_t; the index at a year end or the
            // horizon (engine/src/inflation.rs).
            let it = g.inflation_table;
            let mean = real(vols[it]);
            year_product = year_product * max(real(1.0) + rate, real(0.5));
            let epsilon = real(vols[it + 4u]) * real(z) + real(vols[it + 5u]) * real(own[t & 3u]);
            rate = mean + real(vols[it + 1u]) * (rate - mean) + real(vols[it + 2u]) * epsilon;
            if (month % 12u == 0u || month == g.horizon) {
                let product = f32(min(year_product, real(3.40282347e38)));
                index = year_index * real(index_factor(product));
                if (month % 12u == 0u) {
                    year_index = index;
                    year_product = real(1.0);
                }
            }
        } else if (history_index) {
            // I ← I·(1 + π) monthly (engine/src/inflation.rs, IndexLanes::advance_by).
            index = index * price;
            if (month % 12u == 0u) {
                year_index = index;
            }
        }
        let at_snapshot = month == g.horizon || (g.yearly == 1u && month % 12u == 0u);
        if (at_snapshot) {
            record(lid, g, block, live, depleted, snap, f32(wealth));
            if (stochastic) {
                record(lid, g, block, live, depleted, snap + g.snaps / 2u, f32(wealth / index));
            }
            snap = snap + 1u;
        }
    }
    if (tally) {
        if (live && clamped > 0u) {
            atomicAdd(&counts[g.counts_base + 1u + g.snaps + g.horizon], clamped);
        }
        // A real target under stochastic inflation: the real W_T / I_T against it.
        let measured = select(wealth, wealth / index, g.target_real == 1u);
        let success = live && !depleted && measured >= target_wealth;
        workgroup_count(lid, success, g.counts_base);
        let shortfall = workgroup_sum(lid, select(0.0, f32(target_wealth - measured), live && !success));
        if (lid == 0u) {
            sums[g.sums_base + block * sums_width(g) + g.snaps] = shortfall;
        }
        if (antithetic) {
            // The pairs whose two paths both succeeded, and both depleted (counted once, on
            // the second); the host has the rest of the pair classes from the totals.
            pair_outcome[lid] = u32(success) | (u32(live && depleted) << 1u);
            workgroupBarrier();
            let both = pair_outcome[lid] & pair_outcome[lid ^ 1u];
            let second = (lid & 1u) == 1u;
            workgroup_count(lid, second && (both & 1u) != 0u, g.spread_base);
            workgroup_count(lid, second && (both & 2u) != 0u, g.spread_base + 1u);
        }
        if (sobol) {
            // Each replicate's successes and depletions: once a workgroup where its 256 paths
            // share a replicate, else path by path.
            let slot = g.spread_base + 2u * replicate;
            if (g.points_log2 >= 8u) {
                workgroup_count(lid, success, slot);
                workgroup_count(lid, live && depleted, slot + 1u);
            } else if (live) {
                if (success) {
                    atomicAdd(&counts[slot], 1u);
                }
                if (depleted) {
                    atomicAdd(&counts[slot + 1u], 1u);
                }
            }
        }
        if (per_asset) {
            // Whole counts below 2^24 a workgroup: exact in f32.
            let rebalanced = workgroup_sum(lid, select(0.0, f32(rebalances), live));
            let traded = workgroup_sum(lid, select(0.0, f32(turnover), live));
            if (lid == 0u) {
                sums[g.sums_base + block * sums_width(g) + g.snaps + 1u] = rebalanced;
                sums[g.sums_base + block * sums_width(g) + g.snaps + 2u] = traded;
            }
        }
    }
}
