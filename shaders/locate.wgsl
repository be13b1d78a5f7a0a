// For each query (histogram offset, rank, bins): the bin that holds the order statistic of
// that rank, the count of values below the bin, and the bin's count. One invocation per query,
// a scan over one snapshot's histogram; the host turns the answers into the bins to collect.

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> hist: array<u32>;
@group(0) @binding(1) var<storage, read> queries: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> found: array<vec4<u32>>;

@compute @workgroup_size(64)
fn locate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.x + id.y * groups.x * 64u;
    if (i >= arrayLength(&queries)) {
        return;
    }
    let q = queries[i];
    var below = 0u;
    for (var b = 0u; b < q.z; b++) {
        let c = hist[q.x + b];
        if (below + c > q.y) {
            found[i] = vec4<u32>(b, below, c, 0u);
            return;
        }
        below = below + c;
    }
    found[i] = vec4<u32>(NONE, below, 0u, 0u);
}
