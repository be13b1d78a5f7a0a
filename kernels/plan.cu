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
