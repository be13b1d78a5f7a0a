// The arithmetic every GPU kernel shares, written once: Philox4x32-10 and the Box-Muller
// normals with the CPU's polynomials (engine/src/normal.rs). The WGSL kernels are this file
// followed by their own; the CUDA kernels get it as C, generated at build time by
// sextant-kernelgen (kernelgen/), with `mulhilo` replaced by the hardware's `__umulhi`. Keep
// to the generator's subset (functions over scalars and small vectors; see kernelgen's top
// comment): anything else fails the build with the function's name.
//
// WGSL has no 64-bit integers: the 32×32→64 products of Philox are built from 16-bit halves.

// ---- Philox4x32-10 -------------------------------------------------------------------------

// (hi, lo) of the 64-bit product a·b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (mid << 16u) | (p00 & 0xffffu);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, lo);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// ---- Box-Muller with the CPU's polynomials (engine/src/normal.rs) --------------------------

fn open_unit(x: u32) -> f32 {
    return f32(i32(x >> 8u) + 1) * (1.0 / 16777216.0);
}

fn half_open_unit(x: u32) -> f32 {
    return f32(x >> 8u) * (1.0 / 16777216.0);
}

fn ln_poly(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    var e = i32((bits >> 23u) & 0xffu) - 126;
    var m = bitcast<f32>((bits & 0x807fffffu) | 0x3f000000u);
    if (m < 0.70710677) {
        e = e - 1;
        m = m + m - 1.0;
    } else {
        m = m - 1.0;
    }
    let ef = f32(e);
    let z = m * m;
    var p = 7.0376836e-2;
    p = p * m - 1.1514610e-1;
    p = p * m + 1.1676999e-1;
    p = p * m - 1.2420141e-1;
    p = p * m + 1.4249323e-1;
    p = p * m - 1.6668057e-1;
    p = p * m + 2.0000714e-1;
    p = p * m - 2.4999994e-1;
    p = p * m + 3.3333331e-1;
    var y = p * m * z;
    y = y + ef * -2.12194440e-4;
    y = y + -0.5 * z;
    return (m + y) + ef * 0.693359375;
}

fn exp_poly(x_in: f32) -> f32 {
    let x = clamp(x_in, -87.0, 87.0);
    let n = floor(x * 1.44269504 + 0.5);
    let r = x - n * 0.693359375 - n * -2.12194440e-4;
    let z = r * r;
    var p = 1.9875691e-4;
    p = p * r + 1.3981999e-3;
    p = p * r + 8.3334519e-3;
    p = p * r + 4.1665796e-2;
    p = p * r + 1.6666665e-1;
    p = p * r + 0.5;
    let y = p * z + r + 1.0;
    let scale = bitcast<f32>(u32(i32(n) + 127) << 23u);
    return y * scale;
}

// (cos 2πu, sin 2πu) for u in [0, 1).
fn cos_sin_turns(u: f32) -> vec2<f32> {
    let q = floor(u * 4.0 + 0.5);
    let v = u - q * 0.25;
    let v2 = v * v;
    var s = 42.058694;
    s = s * v2 - 76.70586;
    s = s * v2 + 81.60525;
    s = s * v2 - 41.3417;
    s = s * v2 + 6.2831855;
    s = s * v;
    var c = -26.426257;
    c = c * v2 + 60.24464;
    c = c * v2 - 85.45682;
    c = c * v2 + 64.93939;
    c = c * v2 - 19.739208;
    c = c * v2 + 1.0;
    let quadrant = u32(i32(q)) & 3u;
    var r = vec2<f32>(c, s);
    if ((quadrant & 1u) != 0u) {
        r = vec2<f32>(-s, c);
    }
    if ((quadrant & 2u) != 0u) {
        r = -r;
    }
    return r;
}

fn box_muller(x_radius: u32, x_angle: u32) -> vec2<f32> {
    let r = sqrt(-2.0 * ln_poly(open_unit(x_radius)));
    return r * cos_sin_turns(half_open_unit(x_angle));
}

fn normals_of_block(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(box_muller(w.x, w.y), box_muller(w.z, w.w));
}

// ---- Per-asset paths' normals (docs/model.md §4.5; engine/src/backend/cpu/assets.rs) ------
// Shared by the goal kernel's per-asset month (shaders/assets.wgsl) and the plan kernel's
// portfolio (shaders/plan.wgsl).

// Most assets per-asset paths hold (engine/src/rebalance.rs, MAX_ASSET_PATHS).
const MAX_ASSETS: u32 = 16u;

// The normals of months 4q … 4q + 3 of every asset: asset k's block at counter
// (path, q, 0, k), the shocks' stream with the asset in c3 (asset 0's are §1's).
fn asset_normals(normals: ptr<function, array<vec4<f32>, MAX_ASSETS>>, path: u32, month: u32, key: vec2<u32>, count: u32) {
    for (var k = 0u; k < count; k++) {
        (*normals)[k] = normals_of_block(philox(vec4<u32>(path, month >> 2u, 0u, k), key));
    }
}

// ---- Sobol' points (docs/model.md §6; engine/src/sobol.rs, which says why each step) -------
// Integer steps only, so every backend gives the CPU's bits: the nested uniform (Owen) scramble
// keyed per replicate and dimension (a point's coordinate, from the kernels' direction table,
// is shaders/sobol_paths.wgsl's `sobol_point`).

// The Philox stream (c2) of the scramble seeds.
const SCRAMBLE_STREAM: u32 = 6u;

// The bits of `x` in reverse order (WGSL's reverseBits, spelled out for the C generator).
fn reverse_bits32(x_in: u32) -> u32 {
    var x = x_in;
    x = ((x >> 1u) & 0x55555555u) | ((x & 0x55555555u) << 1u);
    x = ((x >> 2u) & 0x33333333u) | ((x & 0x33333333u) << 2u);
    x = ((x >> 4u) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4u);
    x = ((x >> 8u) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8u);
    return (x >> 16u) | (x << 16u);
}

// The scramble's seed for replicate `replicate` and dimension `d`.
fn scramble_seed(key: vec2<u32>, replicate: u32, d: u32) -> u32 {
    return philox(vec4<u32>(replicate, d, SCRAMBLE_STREAM, 0u), key).x;
}

// `x` under the nested uniform scramble of `seed`: Burley's Laine–Karras permutation of the
// bit-reversed point.
fn owen_scramble(x: u32, seed: u32) -> u32 {
    var y = reverse_bits32(x) + seed;
    y = y ^ (y * 0x6c50b47cu);
    y = y ^ (y * 0xb82f1e52u);
    y = y ^ (y * 0xc7afe638u);
    y = y ^ (y * 0x8d22f6e6u);
    return reverse_bits32(y);
}

// Φ⁻¹ of a scrambled coordinate's uniform (x + ½)·2⁻³² in f32 (engine/src/normal.rs,
// `inverse_cdf_of_words`, the definition): Wichura's AS241 PPND7, q = u − ½ and the tail
// probability min(u, 1 − u) from the integer, so that the words x and 2³² − 1 − x give ±z. The
// distances from the middle and the ends are below 2³¹ and convert as i32.
fn inverse_cdf_of_word(x: u32) -> f32 {
    let scale = 1.0 / 4294967296.0;
    let upper = x >= 0x80000000u;
    let m = select(0x7fffffffu - x, x - 0x80000000u, upper);
    let half = (f32(i32(m)) + 0.5) * scale;
    let q = select(-half, half, upper);
    if (half <= 0.425) {
        let r = 0.180625 - q * q;
        let num = ((59.109375 * r + 159.29113) * r + 50.434273) * r + 3.3871327;
        let den = ((67.18756 * r + 78.75776) * r + 17.89517) * r + 1.0;
        return (q * num) / den;
    }
    let below = select(x, 0xffffffffu - x, upper);
    let tail = (f32(i32(below)) + 0.5) * scale;
    let r = sqrt(-ln_poly(tail)) - 1.6;
    let num = ((0.17023821 * r + 1.3067285) * r + 2.7568154) * r + 1.4234373;
    let den = (0.12021133 * r + 0.7370016) * r + 1.0;
    return select(-num, num, upper) / den;
}

// ---- The Student-t month (docs/model.md §4.1; engine/src/student_t.rs) ---------------------

// Philox word c2 of the first proposals' blocks, (path, month / 2, 1, 0), and of the retries',
// (path, month, 2, pair); the retry blocks tried before the draw gives up.
const MIXING_FIRST: u32 = 1u;
const MIXING_RETRY: u32 = 2u;
const MIXING_PAIRS: u32 = 16u;

// One Marsaglia–Tsang proposal: v = (1 + c·x)³ when accepted, else 0.
fn gamma_proposal(x: f32, u: f32, d: f32, c: f32) -> f32 {
    let y = 1.0 + c * x;
    let v = y * y * y;
    if (!(v > 0.0)) {
        return 0.0;
    }
    if (ln_poly(u) < 0.5 * x * x + d - d * v + d * ln_poly(v)) {
        return v;
    }
    return 0.0;
}

// The block of months 2k and 2k+1's first proposals: counter (path, month / 2, MIXING_FIRST, 0).
fn student_t_block(path: u32, month: u32, key: vec2<u32>) -> vec4<u32> {
    return philox(vec4<u32>(path, month >> 1u, MIXING_FIRST, 0u), key);
}

// Month `month`'s first proposal from the block of counter (path, month / 2, MIXING_FIRST, 0):
// an even month takes the block's first proposal, an odd month its second (0 if rejected).
fn student_t_first(block: vec4<u32>, month: u32, d: f32, c: f32) -> f32 {
    let x = box_muller(block.x, block.y);
    if ((month & 1u) == 0u) {
        return gamma_proposal(x.x, open_unit(block.z), d, c);
    }
    return gamma_proposal(x.y, open_unit(block.w), d, c);
}

// After a rejected first proposal: the first accepted of the blocks of counter
// (path, month, MIXING_RETRY, pair), two proposals a block; 1 after MIXING_PAIRS blocks.
fn student_t_retry(path: u32, month: u32, key: vec2<u32>, d: f32, c: f32) -> f32 {
    for (var pair = 0u; pair < MIXING_PAIRS; pair++) {
        let w = philox(vec4<u32>(path, month, MIXING_RETRY, pair), key);
        let x = box_muller(w.x, w.y);
        let v0 = gamma_proposal(x.x, open_unit(w.z), d, c);
        let v1 = gamma_proposal(x.y, open_unit(w.w), d, c);
        if (v0 > 0.0) {
            return v0;
        }
        if (v1 > 0.0) {
            return v1;
        }
    }
    return 1.0;
}

// The mixing draw v = V_t / (2d) of (path, month), the definition of engine/src/student_t.rs
// (the kernels keep the shared block between two months instead of drawing it twice).
fn student_t_mixing(path: u32, month: u32, key: vec2<u32>, d: f32, c: f32) -> f32 {
    let v = student_t_first(student_t_block(path, month, key), month, d, c);
    if (v > 0.0) {
        return v;
    }
    return student_t_retry(path, month, key, d, c);
}

// 1 + vol·T_t before the clamp at 0, T_t = z·sqrt(scale / v).
fn student_t_gross(z: f32, vol: f32, v: f32, scale: f32) -> f32 {
    return 1.0 + vol * (z * sqrt(scale / v));
}

// ---- Regime switching (docs/model.md §4.2; engine/src/regime.rs) --------------------------

// Philox word c2 of the regime uniforms' blocks, (path, month / 4, 3, 0).
const REGIME_STREAM: u32 = 3u;

// The block of months 4q … 4q + 3's regime uniforms.
fn regime_block(path: u32, month: u32, key: vec2<u32>) -> vec4<u32> {
    return philox(vec4<u32>(path, month >> 2u, REGIME_STREAM, 0u), key);
}

// Month `month`'s uniform from its block: the word's top 24 bits, an integer that f32 holds
// exactly, compared with the chain's thresholds (integers up to 2^24, exact too).
fn regime_uniform(block: vec4<u32>, month: u32) -> f32 {
    let lane = month & 3u;
    var word = block.x;
    if (lane == 1u) {
        word = block.y;
    }
    if (lane == 2u) {
        word = block.z;
    }
    if (lane == 3u) {
        word = block.w;
    }
    return f32(word >> 8u);
}

// ---- Stochastic inflation (docs/model.md §4.4; engine/src/inflation.rs) ---------------------

// Philox word c2 of the inflation normals' blocks, (path, month / 4, 4, 0).
const INFLATION_STREAM: u32 = 4u;

// The own normals Z' of months 4q … 4q + 3, laid out as the shocks'.
fn inflation_normals(path: u32, month: u32, key: vec2<u32>) -> vec4<f32> {
    return normals_of_block(philox(vec4<u32>(path, month >> 2u, INFLATION_STREAM, 0u), key));
}

// The index's factor over a year (or part of one): the twelfth root of the product of its
// months' max(1 + π, 0.5), in f32.
fn index_factor(product: f32) -> f32 {
    return exp_poly(ln_poly(product) / 12.0);
}

// ---- Bootstrap from a history (docs/model.md §4.3; engine/src/bootstrap.rs) -----------------

// Philox word c2 of the bootstrap's blocks: (path, month / 4, 5, 0) for block starts and
// (path, month / 4, 5, 1) for stationary blocks' continuation draws.
const BOOTSTRAP_STREAM: u32 = 5u;

// The words of months 4q … 4q + 3: their block starts (`which` 0) or continuation draws (1).
fn bootstrap_words(path: u32, month: u32, key: vec2<u32>, which: u32) -> vec4<u32> {
    return philox(vec4<u32>(path, month >> 2u, BOOTSTRAP_STREAM, which), key);
}

// Month `month`'s history row of `rows`, from last month's `previous`, the month's start word
// and continuation draw: a block starts at months 0, b, 2b, … (circular) or at month 0 and
// where ⌊draw·b/2³²⌋ is 0 (stationary), at row ⌊start·rows/2³²⌋; otherwise the next row,
// wrapping.
fn bootstrap_row(previous: u32, month: u32, start: u32, draw: u32, rows: u32, block: u32, stationary: bool) -> u32 {
    var begins = (month % block) == 0u;
    if (stationary) {
        begins = month == 0u || mulhilo(draw, block).x == 0u;
    }
    if (begins) {
        return mulhilo(start, rows).x;
    }
    let next = previous + 1u;
    return select(next, 0u, next == rows);
}
