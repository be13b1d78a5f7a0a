// The CUDA plan kernel: one thread per row of the packed plan (engine/src/plan/packed.rs),
// each running `plan_path`, the month loop generated from shaders/plan.wgsl, which this file
// follows. The buffers are the WGSL kernel's bindings, handed over as `sx_globals`; `base` is
// the first row of this launch's slice, whose outputs start at 0 (its samples at
// `samples_base`, the first row's samples start).

extern "C" __global__ void plan_paths(const u32* words, const double* reals, const uint4* lanes,
                                      double* money, u32* counts, u32* samples, u32 base,
                                      u32 rows, u32 samples_base) {
    const u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows) {
        return;
    }
    sx_globals g;
    g.plan_words = words;
    g.plan_reals = reals;
    g.plan_lanes = lanes;
    g.plan_money = money;
    g.plan_counts = counts;
    g.plan_samples = samples;
    plan_path(g, base + i, i, lanes[2 * (base + i) + 1].z - samples_base);
}

// ---- The yearly fan-chart columns reduced on the device (shaders/plan_reduce.wgsl) --------
// A piece is whole rows of `width` = 2 × years f32s (each year's wealth, then its real
// spending; then its real wealth, 3 × years, under a stochastic index) starting at `first`; a value's column is its place in the piece modulo `width`.
// NaN marks a year the path did not reach and is skipped.

__device__ __forceinline__ bool plan_is_nan(u32 bits) {
    return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

// Bin 0: below +0 (−0 and negatives); bin 1: exactly +0; bins 2 … bins − 1: positive values,
// `bins_per_octave` per octave from 2^log2_low.
__device__ __forceinline__ u32 plan_bin(u32 bits, u32 bins, float log2_low,
                                        float bins_per_octave) {
    if (bits == 0u) {
        return 1u;
    }
    if ((bits & 0x80000000u) != 0u) {
        return 0u;
    }
    const float position = (log2f(__uint_as_float(bits)) - log2_low) * bins_per_octave;
    return (u32)fminf(fmaxf(position, 0.0f), (float)(bins - 3u)) + 2u;
}

// Each column's count of values, and its histogram of `bins` bins.
extern "C" __global__ void plan_tally(const u32* __restrict__ samples, u32 first, u32 count,
                                      u32 width, u32 bins, float log2_low,
                                      float bins_per_octave, u32* counts, u32* hist) {
    const u32 t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) {
        return;
    }
    const u32 bits = samples[first + t];
    if (plan_is_nan(bits)) {
        return;
    }
    const u32 column = t % width;
    atomicAdd(&counts[column], 1u);
    atomicAdd(&hist[column * bins + plan_bin(bits, bins, log2_low, bins_per_octave)], 1u);
}

// The values in the wanted bins: per column `wanted_per_column` entries (bin, slot, end of
// the slot's values, 0); `cursors` hold each slot's next index.
extern "C" __global__ void plan_collect(const u32* __restrict__ samples, u32 first, u32 count,
                                        u32 width, u32 bins, float log2_low,
                                        float bins_per_octave, u32* cursors,
                                        const uint4* __restrict__ wanted,
                                        u32 wanted_per_column, u32* values) {
    const u32 t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) {
        return;
    }
    const u32 bits = samples[first + t];
    if (plan_is_nan(bits)) {
        return;
    }
    const u32 column = t % width;
    const u32 bin = plan_bin(bits, bins, log2_low, bins_per_octave);
    for (u32 k = 0u; k < wanted_per_column; ++k) {
        const uint4 want = wanted[column * wanted_per_column + k];
        if (want.x == bin) {
            const u32 slot = atomicAdd(&cursors[want.y], 1u);
            if (slot < want.z) {
                values[slot] = bits;
            }
            return;
        }
    }
}
