// Goal Monte Carlo of docs/model.md §1 for a batch of goals, in CUDA C for NVRTC: the same buffers,
// steps and numbers as shaders/simulate.wgsl (read that file's header). One thread per path,
// one block of 256 paths of one goal, months in a loop; only counts, per-block sums,
// histograms and the collected bins go back to the host. Wealth is carried in double, as on
// the CPU.
//
// Philox, the normals, the per-asset month and the `sobol` path normals are not here: they are
// shaders/common.wgsl, shaders/assets.wgsl and shaders/sobol_paths.wgsl, translated to C at
// build time by sextant-kernelgen and put before this file (with Philox's products on the
// hardware's `__umulhi`). That C also defines `u32` (NVRTC has no standard headers), the vector
// operators, and `sx_globals`, the buffers (`months`, `vols`, `directions`) its functions read.

#define BLOCK 256u
#define NONE 0xffffffffu

struct Goal {
    u32 paths;
    u32 horizon;
    u32 month_base;
    u32 yearly;
    u32 seed_lo;
    u32 seed_hi;
    u32 snaps;
    u32 counts_base;
    u32 sums_base;
    u32 hist_base;
    u32 wanted_base;
    u32 wanted_per_snap;
    float target;
    float initial;
    float target_lo;
    float initial_lo;
    // 0: §1's lognormal month; 1: Student-t (docs/model.md §4.1); 2: regimes (§4.2); 3, 4: a
    // bootstrap in circular or stationary blocks (§4.3).
    u32 model;
    float t_d;
    float t_c;
    float t_scale;
    // K, and where the chain's thresholds sit in `vols` (shaders/simulate.wgsl).
    u32 regimes;
    u32 regime_table;
    // Stochastic inflation (§4.4): its six constants' place in `vols`, or NONE; then the
    // snapshots come twice, W_s and the real W_s / I_s. target_real: success compares W_T / I_T.
    u32 inflation_table;
    u32 target_real;
    // A bootstrap: N, b, the table's start in `months`, the inflation column's first entry or
    // NONE (shaders/simulate.wgsl).
    u32 bootstrap_rows;
    u32 bootstrap_block;
    u32 bootstrap_table;
    u32 bootstrap_inflation;
    // Per-asset paths (§4.5; shaders/assets.wgsl): K assets (0: one portfolio), the rule, and
    // where the asset table's f64 pairs and f32s start in `months`.
    u32 assets;
    u32 asset_rule;
    u32 asset_table;
    u32 asset_floats;
    // The sampler: 0 Philox, 1 antithetic pairs, 2 `sobol`; where its own counts start in
    // `counts`; a `sobol` goal's points per replicate (log2) and bridge table
    // (shaders/simulate.wgsl).
    u32 sampler;
    u32 spread_base;
    u32 points_log2;
    u32 sobol_table;
};

// Values per block in `sums`: each snapshot, the shortfall, and under per-asset paths the
// rebalances and turnover.
__device__ __forceinline__ u32 sums_width(const Goal& g) {
    return g.snaps + (g.assets > 0u ? 3u : 1u);
}

// ---- Reductions ----------------------------------------------------------------------------

__device__ __forceinline__ float block_sum(float x, float* scratch) {
    const u32 lid = threadIdx.x;
    // Warp shuffles, then one value per warp through shared memory.
    for (int offset = 16; offset > 0; offset >>= 1) {
        x += __shfl_down_sync(0xffffffffu, x, offset);
    }
    if ((lid & 31u) == 0u) {
        scratch[lid >> 5] = x;
    }
    __syncthreads();
    float total = 0.0f;
    if (lid < 32u) {
        total = lid < BLOCK / 32u ? scratch[lid] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) {
            total += __shfl_down_sync(0xffffffffu, total, offset);
        }
    }
    __syncthreads();
    return total;  // valid in thread 0
}

__device__ __forceinline__ void block_count(bool flag, u32* counter) {
    const u32 n = __syncthreads_count(flag ? 1 : 0);
    if (threadIdx.x == 0u && n > 0u) {
        atomicAdd(counter, n);
    }
}

__device__ __forceinline__ u32 bin_of(float w, u32 bins, float log2_low, float bins_per_octave) {
    if (w <= 0.0f) {
        return 0u;
    }
    const float position = (log2f(w) - log2_low) * bins_per_octave;
    return (u32)fminf(fmaxf(position, 0.0f), (float)(bins - 2u)) + 1u;
}

// One snapshot column's value: the block's sum, depleted count and histogram (mode 0), or
// the collection of the values in its wanted bins (mode 1). Every thread calls it.
__device__ __forceinline__ void record(const Goal& g, bool tally, u32 block, bool active,
                                       bool depleted, u32 snap, float value, u32 bins,
                                       float log2_low, float bins_per_octave, float* scratch,
                                       u32* counts, float* sums, u32* hist,
                                       const uint4* wanted, float* values) {
    const u32 bin = bin_of(value, bins, log2_low, bins_per_octave);
    if (tally) {
        const float total = block_sum(active ? value : 0.0f, scratch);
        if (threadIdx.x == 0u) {
            sums[g.sums_base + block * sums_width(g) + snap] = total;
        }
        block_count(active && depleted, &counts[g.counts_base + 1u + snap]);
        if (active && g.wanted_per_snap > 0u) {
            atomicAdd(&hist[g.hist_base + snap * bins + bin], 1u);
        }
    } else if (active) {
        for (u32 k = 0u; k < g.wanted_per_snap; ++k) {
            const uint4 want = wanted[g.wanted_base + snap * g.wanted_per_snap + k];
            if (want.x == bin) {
                const u32 slot = atomicAdd(&counts[want.y], 1u);
                if (slot < want.z) {
                    values[slot] = value;
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) simulate(
    u32 mode, u32 bins, u32 block_base, float log2_low, float bins_per_octave,
    const Goal* __restrict__ goals, const float4* __restrict__ months,
    const float* __restrict__ vols, u32* __restrict__ counts, float* __restrict__ sums,
    u32* __restrict__ hist, const uint4* __restrict__ wanted, float* __restrict__ values,
    const u32* __restrict__ directions) {
    __shared__ float scratch[BLOCK / 32u];
    const Goal g = goals[blockIdx.y];
    const u32 block = blockIdx.x + block_base;
    if (block * BLOCK >= g.paths) {
        return;
    }
    const u32 lid = threadIdx.x;
    const u32 path = block * BLOCK + lid;
    const bool active = path < g.paths;
    const bool tally = mode == 0u;
    // The path whose Philox streams this one reads, and whether it negates the market normals
    // (antithetic pairs: shaders/simulate.wgsl).
    const bool antithetic = g.sampler == 1u;
    const u32 stream = antithetic ? path >> 1 : path;
    const bool mirrored = antithetic && (path & 1u) == 1u;
    // `sobol`: the path's walk down its bridge (shaders/sobol_paths.wgsl).
    const bool sobol = g.sampler == 2u;
    const u32 replicate = path >> g.points_log2;

    double wealth = (double)g.initial + (double)g.initial_lo;
    const double target = (double)g.target + (double)g.target_lo;
    bool depleted = false;
    u32 snap = 0u;
    float4 normals = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    u32 clamped = 0u;
    uint4 mixing_block = make_uint4(0u, 0u, 0u, 0u);
    u32 regime = 0u;
    uint4 regime_words = make_uint4(0u, 0u, 0u, 0u);
    // Stochastic inflation: the rate, this year's product of max(1 + π, 0.5), the index at the
    // year's start and at the last year end or horizon (shaders/simulate.wgsl).
    const bool ar1 = g.inflation_table != NONE;
    double rate = ar1 ? (double)vols[g.inflation_table + 3u] : 0.0;
    double year_product = 1.0;
    double year_index = 1.0;
    double index = 1.0;
    float4 own = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    // A bootstrap: the month's history row, the quad's start words and draws, the month's
    // inflation factor (shaders/simulate.wgsl).
    const bool bootstrap = g.model >= 3u;
    const bool history_index = bootstrap && g.bootstrap_inflation != NONE;
    const bool stochastic = ar1 || history_index;
    u32 row = 0u;
    uint4 starts = make_uint4(0u, 0u, 0u, 0u);
    uint4 draws = make_uint4(0u, 0u, 0u, 0u);
    double price = 1.0;
    // The buffers the generated functions read (table_entry, the per-asset month).
    sx_globals sx;
    sx.months = months;
    sx.vols = vols;
    sx.directions = directions;
    SobolPath bridge;
    if (sobol && active) {
        bridge = sobol_path_start(sx, path & ((1u << g.points_log2) - 1u), replicate,
                                  make_uint2(g.seed_lo, g.seed_hi), g.sobol_table, g.horizon);
    }
    // Per-asset paths: each asset's holdings and the quad's normals; the path's rebalances and
    // turnover. W is then the holdings' sum.
    const bool per_asset = g.assets > 0u;
    sx_array_double_16 holdings;
    sx_array_float4_16 asset_z;
    u32 rebalances = 0u;
    double turnover = 0.0;
    if (per_asset) {
        wealth = asset_start(sx, holdings, g.assets, g.asset_table, wealth);
    }
    for (u32 t = 0u; t < g.horizon; ++t) {
        if ((t & 3u) == 0u) {
            const uint2 key = make_uint2(g.seed_lo, g.seed_hi);
            if (bootstrap) {
                starts = bootstrap_words(stream, t, key, 0u);
                if (g.model == 4u) {
                    draws = bootstrap_words(stream, t, key, 1u);
                }
            } else if (per_asset) {
                // Asset 0's normals are §1's Z (the AR(1) index's ρ·Z is 0 here: ρ = 0).
                asset_normals(asset_z, stream, t, key, g.assets);
                if (mirrored) {
                    for (u32 k = 0u; k < g.assets; ++k) {
                        asset_z.v[k] = -asset_z.v[k];
                    }
                }
                normals = asset_z.v[0];
            } else if (!sobol) {
                normals = normals_of_block(philox(make_uint4(stream, t >> 2, 0u, 0u), key));
                if (mirrored) {
                    normals = -normals;
                }
            }
            if (ar1) {
                own = inflation_normals(stream, t, make_uint2(g.seed_lo, g.seed_hi));
            }
        }
        const u32 lane = t & 3u;
        float z = lane == 0u ? normals.x : lane == 1u ? normals.y : lane == 2u ? normals.z : normals.w;
        if (sobol && active) {
            z = sobol_path_next(sx, bridge);
        }
        u32 m = g.month_base + t;
        if (g.model == 2u) {
            // Month 0 draws from row 0, month t from the row of month t − 1's regime.
            if ((t & 3u) == 0u) {
                regime_words = regime_block(stream, t, make_uint2(g.seed_lo, g.seed_hi));
            }
            const float u = regime_uniform(regime_words, t);
            const u32 width = g.regimes - 1u;
            const u32 row = g.regime_table + (t == 0u ? 0u : 1u + regime) * width;
            regime = 0u;
            for (u32 j = 0u; j < width; ++j) {
                if (u >= vols[row + j]) {
                    ++regime;
                }
            }
            m = g.month_base + regime * g.horizon + t;
        }
        const float4 flows = months[2u * m];
        const float4 drift = months[2u * m + 1u];
        const float vol = vols[m];
        float shock = 0.0f;
        double factor;
        if (bootstrap) {
            row = bootstrap_row(row, t, sx_at(starts, lane), sx_at(draws, lane), g.bootstrap_rows,
                                g.bootstrap_block, g.model == 4u);
            factor = table_entry(sx, g.bootstrap_table, (u32)vol + row);
            if (history_index) {
                price = table_entry(sx, g.bootstrap_table, g.bootstrap_inflation + row);
            }
        } else if (g.model == 1u) {
            // Months 2k and 2k+1 share their first proposals' block (shaders/common.wgsl).
            const uint2 key = make_uint2(g.seed_lo, g.seed_hi);
            if ((t & 1u) == 0u) {
                mixing_block = student_t_block(stream, t, key);
            }
            float v = student_t_first(mixing_block, t, g.t_d, g.t_c);
            if (!(v > 0.0f)) {
                v = student_t_retry(stream, t, key, g.t_d, g.t_c);
            }
            const float gross = student_t_gross(z, vol, v, g.t_scale);
            if (gross > 0.0f) {
                shock = gross;
            } else {
                shock = 0.0f;
                ++clamped;
            }
        } else {
            shock = exp_poly(vol * z);
        }
        if (!bootstrap) {
            factor = (double)shock;
        }
        if (depleted) {
            wealth = 0.0;
        } else {
            const double withdrawal = ((double)flows.z + (double)flows.w) * year_index;
            const double x = wealth + ((double)flows.x + (double)flows.y) - withdrawal;
            if (flows.z > 0.0f && x <= 0.0) {
                depleted = true;
                wealth = 0.0;
                if (tally && active) {
                    atomicAdd(&counts[g.counts_base + 1u + g.snaps + t], 1u);
                }
            } else if (per_asset) {
                const double net = ((double)flows.x + (double)flows.y) - withdrawal;
                const AssetMonth step = asset_month(sx, holdings, asset_z, g.assets, g.asset_rule,
                                                    g.asset_table, g.asset_floats, t, x, wealth, net);
                wealth = step.wealth;
                rebalances += step.rebalanced;
                turnover += step.turnover;
            } else {
                wealth = x * (((double)drift.x + (double)drift.y) * factor);
            }
        }
        const u32 month = t + 1u;
        if (ar1) {
            // π_{t+1} from ε_t = ρ·Z_t + sqrt(1 − ρ²)·Z'_t; the index at a year end or the
            // horizon (engine/src/inflation.rs).
            const u32 it = g.inflation_table;
            const double mean = (double)vols[it];
            year_product = year_product * fmax(1.0 + rate, 0.5);
            const float z_own = lane == 0u ? own.x : lane == 1u ? own.y : lane == 2u ? own.z : own.w;
            const double epsilon = (double)vols[it + 4u] * (double)z + (double)vols[it + 5u] * (double)z_own;
            rate = mean + (double)vols[it + 1u] * (rate - mean) + (double)vols[it + 2u] * epsilon;
            if (month % 12u == 0u || month == g.horizon) {
                const float product = (float)fmin(year_product, 3.40282347e38);
                index = year_index * (double)index_factor(product);
                if (month % 12u == 0u) {
                    year_index = index;
                    year_product = 1.0;
                }
            }
        } else if (history_index) {
            // I ← I·(1 + π) monthly (engine/src/inflation.rs, IndexLanes::advance_by).
            index = index * price;
            if (month % 12u == 0u) {
                year_index = index;
            }
        }
        const bool at_snapshot = month == g.horizon || (g.yearly == 1u && month % 12u == 0u);
        if (at_snapshot) {
            record(g, tally, block, active, depleted, snap, (float)wealth, bins, log2_low,
                   bins_per_octave, scratch, counts, sums, hist, wanted, values);
            if (stochastic) {
                record(g, tally, block, active, depleted, snap + g.snaps / 2u,
                       (float)(wealth / index), bins, log2_low, bins_per_octave, scratch, counts,
                       sums, hist, wanted, values);
            }
            ++snap;
        }
    }
    if (tally) {
        if (active && clamped > 0u) {
            atomicAdd(&counts[g.counts_base + 1u + g.snaps + g.horizon], clamped);
        }
        // A real target under stochastic inflation: the real W_T / I_T against it.
        const double measured = g.target_real == 1u ? wealth / index : wealth;
        const bool success = active && !depleted && measured >= target;
        block_count(success, &counts[g.counts_base]);
        const float shortfall =
            block_sum(active && !success ? (float)(target - measured) : 0.0f, scratch);
        if (lid == 0u) {
            sums[g.sums_base + block * sums_width(g) + g.snaps] = shortfall;
        }
        if (antithetic) {
            // The pairs whose two paths both succeeded, and both depleted, counted on the
            // second (the pair's two threads are neighbours in one warp).
            const u32 outcome = (success ? 1u : 0u) | (active && depleted ? 2u : 0u);
            const u32 both = outcome & __shfl_xor_sync(0xffffffffu, outcome, 1);
            const bool second = (lid & 1u) == 1u;
            block_count(second && (both & 1u) != 0u, &counts[g.spread_base]);
            block_count(second && (both & 2u) != 0u, &counts[g.spread_base + 1u]);
        }
        if (sobol) {
            // Each replicate's successes and depletions: once a block where its 256 paths
            // share a replicate, else path by path.
            const u32 slot = g.spread_base + 2u * replicate;
            if (g.points_log2 >= 8u) {
                block_count(success, &counts[slot]);
                block_count(active && depleted, &counts[slot + 1u]);
            } else if (active) {
                if (success) {
                    atomicAdd(&counts[slot], 1u);
                }
                if (depleted) {
                    atomicAdd(&counts[slot + 1u], 1u);
                }
            }
        }
        if (per_asset) {
            // Whole counts below 2^24 a block: exact in float.
            const float rebalanced = block_sum(active ? (float)rebalances : 0.0f, scratch);
            const float traded = block_sum(active ? (float)turnover : 0.0f, scratch);
            if (lid == 0u) {
                sums[g.sums_base + block * sums_width(g) + g.snaps + 1u] = rebalanced;
                sums[g.sums_base + block * sums_width(g) + g.snaps + 2u] = traded;
            }
        }
    }
}

// For each query (histogram offset, rank, bins): the bin holding that order statistic, the
// count below it and its count (shaders/locate.wgsl).
extern "C" __global__ void locate(const u32* __restrict__ hist, const uint4* __restrict__ queries,
                                  uint4* __restrict__ found, u32 n) {
    const u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const uint4 q = queries[i];
    u32 below = 0u;
    for (u32 b = 0u; b < q.z; ++b) {
        const u32 c = hist[q.x + b];
        if (below + c > q.y) {
            found[i] = make_uint4(b, below, c, 0u);
            return;
        }
        below += c;
    }
    found[i] = make_uint4(NONE, below, 0u, 0u);
}

// Philox blocks and their normals for given (counter, key) pairs: the parity tests' probes.
extern "C" __global__ void philox_probe(const uint4* __restrict__ in, uint4* __restrict__ out,
                                        float4* __restrict__ normals, u32 n) {
    const u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    const uint4 key = in[2u * i + 1u];
    const uint4 w = philox(in[2u * i], make_uint2(key.x, key.y));
    out[i] = w;
    normals[i] = normals_of_block(w);
}
