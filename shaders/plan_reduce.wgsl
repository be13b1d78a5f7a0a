// The plans' yearly fan-chart columns reduced on the device (engine/src/backend/gpu.rs,
// `plan_years`): the samples the plan kernel left in a slice's buffer stay there, and these two
// passes run over one plan's piece of it. A piece is whole rows of `width` = 2 × years f32s
// (each year's wealth, then each year's real spending; 3 × years under a stochastic index,
// each year's real wealth after them), so a value's column is its place in the piece modulo
// `width`; NaN marks a year the path did not reach and is skipped.
//
// plan_tally counts each column's values and histograms them over `bins` bins per column;
// plan_collect keeps the values that fall in the wanted bins (one slot range each) for the
// host to select exactly. kernels/plan.cu has the same two passes for CUDA.

struct ReduceParams {
    // The piece: its first value in `samples`, its values, values per row.
    first: u32,
    count: u32,
    width: u32,
    // Wanted-bin entries per column (plan_collect).
    wanted_per_column: u32,
    bins: u32,
    // log2 of the lowest positive bin edge, and bins per unit of log2.
    log2_low: f32,
    bins_per_octave: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: ReduceParams;
@group(0) @binding(1) var<storage, read> samples: array<u32>;
// plan_tally: each column's count of values; plan_collect: each slot's cursor.
@group(0) @binding(2) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
// Per column, `wanted_per_column` entries (bin, slot, end of the slot's values, 0).
@group(0) @binding(4) var<storage, read> wanted: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> values: array<u32>;

const NAN_EXPONENT: u32 = 0x7f800000u;

// Bin 0: below +0 (−0 and negatives); bin 1: exactly +0; bins 2 … bins − 1: positive values,
// 64 per octave from 2^log2_low. Integer tests only: WGSL may assume no NaN in float compares.
fn plan_bin(bits: u32) -> u32 {
    if (bits == 0u) {
        return 1u;
    }
    if ((bits & 0x80000000u) != 0u) {
        return 0u;
    }
    let position = (log2(bitcast<f32>(bits)) - params.log2_low) * params.bins_per_octave;
    return u32(clamp(position, 0.0, f32(params.bins - 3u))) + 2u;
}

fn is_nan(bits: u32) -> bool {
    return (bits & NAN_EXPONENT) == NAN_EXPONENT && (bits & 0x007fffffu) != 0u;
}

fn value_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn plan_tally(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = value_index(id, groups);
    if (t >= params.count) {
        return;
    }
    let bits = samples[params.first + t];
    if (is_nan(bits)) {
        return;
    }
    let column = t % params.width;
    atomicAdd(&counters[column], 1u);
    atomicAdd(&hist[column * params.bins + plan_bin(bits)], 1u);
}

@compute @workgroup_size(64)
fn plan_collect(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = value_index(id, groups);
    if (t >= params.count) {
        return;
    }
    let bits = samples[params.first + t];
    if (is_nan(bits)) {
        return;
    }
    let column = t % params.width;
    let bin = plan_bin(bits);
    for (var k = 0u; k < params.wanted_per_column; k++) {
        let want = wanted[column * params.wanted_per_column + k];
        if (want.x == bin) {
            let slot = atomicAdd(&counters[want.y], 1u);
            if (slot < want.z) {
                values[slot] = bits;
            }
            return;
        }
    }
}
