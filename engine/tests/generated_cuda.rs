//! The CUDA kernels' shared arithmetic (Philox, the normals), generated at build time from
//! `shaders/common.wgsl`, compiled by the host's C++ compiler with kernelgen's shim and run
//! against the engine's CPU arithmetic: the same bits, word for word and normal for normal.
//! The plan's month loop (generated from `shaders/plan.wgsl`) and kernels/plan.cu's own
//! reduction passes run the same way. What CI can check of the CUDA C without a GPU; the lent
//! GPU's check runs the parity tests on the device itself.

use sextant_engine::backend::{COMMON_CUDA, PLAN_CUDA};
use sextant_engine::plan::rmd;
use sextant_engine::plan::tax::{year_tax, Bracket};
use sextant_engine::{normal, philox};
use std::io::Write;

mod plan_cases;
use std::process::{Command, Stdio};

const MAIN: &str = r#"
#include <stdio.h>
int main() {
    unsigned c0, c1, c2, c3, k0, k1;
    while (scanf("%u %u %u %u %u %u", &c0, &c1, &c2, &c3, &k0, &k1) == 6) {
        const uint4 w = philox(make_uint4(c0, c1, c2, c3), make_uint2(k0, k1));
        const float4 z = normals_of_block(w);
        printf("%u %u %u %u %u %u %u %u\n", w.x, w.y, w.z, w.w, __float_as_uint(z.x),
               __float_as_uint(z.y), __float_as_uint(z.z), __float_as_uint(z.w));
    }
    return 0;
}
"#;

/// Build `cuda` with `main` on the host compiler; the binary's path (in a fresh folder).
fn host_binary(name: &str, cuda: &str, main: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sextant-generated-cuda-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(name);
    sextant_kernelgen::build_on_host(cuda, main, &binary).unwrap_or_else(|e| panic!("{e}"));
    binary
}

/// Run `binary` on `input`; its standard output.
fn run_on(binary: &std::path::Path, input: String) -> String {
    run_on_with(binary, &[], input)
}

/// [`run_on`] with arguments.
fn run_on_with(binary: &std::path::Path, args: &[&std::ffi::OsStr], input: String) -> String {
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "{}: {:?}",
        binary.display(),
        output.status
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Remove the folder [`host_binary`] made.
fn remove(binary: &std::path::Path) {
    if let Some(dir) = binary.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn the_generated_cuda_philox_and_normals_are_the_cpus_bits() {
    let binary = host_binary("common", COMMON_CUDA, MAIN);

    // Random123's known-answer counters and keys, the extremes, then 20,000 counters drawn
    // from Philox itself (paths and months as the kernels count them, and arbitrary words).
    let mut inputs: Vec<([u32; 4], [u32; 2])> = vec![
        ([0; 4], [0; 2]),
        ([u32::MAX; 4], [u32::MAX; 2]),
        (
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0],
        ),
    ];
    let mut word = [7u32, 0, 0, 0];
    for i in 0..20_000u32 {
        word = philox::philox4x32_10(word, [i, 99]);
        let counter = if i % 2 == 0 {
            [i / 2, i % 97, 0, 0]
        } else {
            word
        };
        inputs.push((
            counter,
            philox::key_of_seed(u64::from(word[1]) << 32 | u64::from(word[2])),
        ));
    }
    let text: String = inputs
        .iter()
        .map(|(c, k)| format!("{} {} {} {} {} {}\n", c[0], c[1], c[2], c[3], k[0], k[1]))
        .collect();
    let output = run_on(&binary, text);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), inputs.len());
    // Random123's known answer for the digits of pi (kat_vectors), before the CPU's.
    assert!(
        lines[2].starts_with(&format!(
            "{} {} {} {} ",
            0xd16c_fe09u32, 0x94fd_ccebu32, 0x5001_e420u32, 0x2412_6ea1u32
        )),
        "{}",
        lines[2]
    );
    for ((counter, key), line) in inputs.iter().zip(&lines) {
        let got: Vec<u32> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let words = philox::philox4x32_10(*counter, *key);
        assert_eq!(got[..4], words, "philox({counter:?}, {key:?})");
        let normals = normal::normals_of_block(words).map(f32::to_bits);
        assert_eq!(got[4..], normals, "normals of philox({counter:?}, {key:?})");
    }
}

const STUDENT_T_MAIN: &str = r#"
#include <stdio.h>
int main() {
    unsigned k0, k1, path, month, d, c, scale, z, vol;
    while (scanf("%u %u %u %u %u %u %u %u %u", &k0, &k1, &path, &month, &d, &c, &scale, &z,
                 &vol) == 9) {
        const float v = student_t_mixing(path, month, make_uint2(k0, k1), __uint_as_float(d),
                                         __uint_as_float(c));
        const float g = student_t_gross(__uint_as_float(z), __uint_as_float(vol), v,
                                        __uint_as_float(scale));
        printf("%u %u\n", __float_as_uint(v), __float_as_uint(g));
    }
    return 0;
}
"#;

/// argv: the direction table's file; then `index replicate dimension k0 k1` per line: the
/// coordinate, the scramble's seed and the scrambled coordinate.
const SOBOL_MAIN: &str = r#"
int main(int argc, char** argv) {
    sx_globals g;
    g.directions = (const u32*)slurp(argv[1], "directions");
    unsigned index, replicate, d, k0, k1;
    while (scanf("%u %u %u %u %u", &index, &replicate, &d, &k0, &k1) == 5) {
        const u32 x = sobol_point(g, index, d);
        const u32 seed = scramble_seed(make_uint2(k0, k1), replicate, d);
        printf("%u %u %u\n", x, seed, owen_scramble(x, seed));
    }
    return 0;
}
"#;

/// The Sobol' integer steps generated as C (shaders/common.wgsl, and the points from the
/// kernels' direction table in shaders/sobol_paths.wgsl) give engine/src/sobol.rs's bits:
/// every coordinate, seed and scrambled coordinate, over dimensions from the first to the
/// 1,200th, indices from 0 to 2^32 − 1, several replicates and keys.
#[test]
fn the_generated_cuda_sobol_points_and_scramble_are_the_cpus_bits() {
    use sextant_engine::backend::GOAL_CUDA;
    use sextant_engine::sobol::{direction_numbers, scramble, scramble_seed, SOBOL_DIMENSIONS};
    let binary = host_binary("sobol", GOAL_CUDA, &format!("{FILES_C}{SOBOL_MAIN}"));
    let dir = binary.parent().unwrap().to_path_buf();
    let numbers = direction_numbers();
    let directions: Vec<u32> = (0..SOBOL_DIMENSIONS)
        .flat_map(|d| numbers.of_dimension(d).iter().copied())
        .collect();
    std::fs::write(dir.join("directions"), bytemuck::cast_slice(&directions)).unwrap();
    let mut queries = Vec::new();
    let mut input = String::new();
    for (q, d) in [0usize, 1, 2, 7, 63, 500, SOBOL_DIMENSIONS - 1]
        .into_iter()
        .enumerate()
    {
        for index in [0u32, 1, 2, 3, 1023, 65_536, 999_999, 1 << 31, u32::MAX] {
            let replicate = (q as u32 * 7 + index) % 16;
            let key = philox::key_of_seed(u64::from(index) ^ 0x5eed);
            input += &format!("{index} {replicate} {d} {} {}\n", key[0], key[1]);
            let x = numbers.point(index, d);
            let seed = scramble_seed(key, replicate, d as u32);
            queries.push([x, seed, scramble(x, seed)]);
        }
    }
    let output = run_on_with(&binary, &[dir.as_os_str()], input);
    remove(&binary);
    let got: Vec<[u32; 3]> = output
        .lines()
        .map(|line| {
            let w: Vec<u32> = line.split(' ').map(|f| f.parse().unwrap()).collect();
            [w[0], w[1], w[2]]
        })
        .collect();
    assert_eq!(got, queries);
}

/// The Student-t month of the CUDA kernels (shaders/common.wgsl's `student_t_mixing` and
/// `student_t_gross`, generated as C and run on the host) is the CPU's to the bit: the mixing
/// draw of 30,000 (path, month) pairs for ν from 2.05 to 10⁶, rejections and second pairs
/// included, and the gross return from it.
#[test]
fn the_generated_cuda_student_t_month_is_the_cpus_bits() {
    use sextant_engine::student_t::{gross, mixing_at, StudentT};
    let binary = host_binary("student-t", COMMON_CUDA, STUDENT_T_MAIN);
    let mut queries = Vec::new();
    for (k, df) in [2.05, 3.0, 5.0, 12.5, 1e6].into_iter().enumerate() {
        let t = StudentT::new(df);
        for i in 0..6_000u32 {
            let seed = 1 + k as u64 * 0x9e37_79b9_7f4a_7c15;
            let z = normal::normal_at(seed, i, i % 5);
            let vol = 0.01 + 0.002 * (i % 50) as f32;
            queries.push((seed, i * 7919, i % 1200, t, z, vol));
        }
    }
    let text: String = queries
        .iter()
        .map(|(seed, path, month, t, z, vol)| {
            let key = philox::key_of_seed(*seed);
            format!(
                "{} {} {path} {month} {} {} {} {} {}\n",
                key[0],
                key[1],
                t.d.to_bits(),
                t.c.to_bits(),
                t.scale.to_bits(),
                z.to_bits(),
                vol.to_bits()
            )
        })
        .collect();
    let output = run_on(&binary, text);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), queries.len());
    for ((seed, path, month, t, z, vol), line) in queries.iter().zip(&lines) {
        let got: Vec<u32> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let v = mixing_at(*seed, *path, *month, t);
        assert_eq!(
            got[0],
            v.to_bits(),
            "ν {}: mixing of path {path} month {month}",
            t.df
        );
        let g = gross(*z, *vol, v, t.scale);
        assert_eq!(
            got[1],
            g.to_bits(),
            "ν {}: gross of path {path} month {month}",
            t.df
        );
    }
}

const REGIME_MAIN: &str = r#"
#include <stdio.h>
int main() {
    unsigned k0, k1, path, month;
    while (scanf("%u %u %u %u", &k0, &k1, &path, &month) == 4) {
        const float u = regime_uniform(regime_block(path, month, make_uint2(k0, k1)), month);
        printf("%u\n", __float_as_uint(u));
    }
    return 0;
}
"#;

/// The regime uniform of the CUDA kernels (shaders/common.wgsl's `regime_block` and
/// `regime_uniform`, generated as C and run on the host) is the CPU's: the top 24 bits of the
/// word of counter (path, ⌊t/4⌋, 3, 0) that `regime::regime_word` draws, as an exact `f32`,
/// for every month of a quad.
#[test]
fn the_generated_cuda_regime_uniform_is_the_cpus() {
    use sextant_engine::regime::regime_word;
    let binary = host_binary("regime", COMMON_CUDA, REGIME_MAIN);
    let queries: Vec<(u64, u32, u32)> = (0..20_000u32)
        .map(|i| {
            (
                3 + u64::from(i % 7) * 0x1234_5678_9abc,
                i * 104_729,
                i % 1200,
            )
        })
        .collect();
    let text: String = queries
        .iter()
        .map(|(seed, path, month)| {
            let key = philox::key_of_seed(*seed);
            format!("{} {} {path} {month}\n", key[0], key[1])
        })
        .collect();
    let output = run_on(&binary, text);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), queries.len());
    for ((seed, path, month), line) in queries.iter().zip(&lines) {
        let expected = (regime_word(*seed, *path, *month) >> 8) as f32;
        assert_eq!(
            line.parse::<u32>().unwrap(),
            expected.to_bits(),
            "path {path} month {month}"
        );
    }
}

const INFLATION_MAIN: &str = r#"
#include <stdio.h>
int main() {
    unsigned k0, k1, path, month, product_bits;
    while (scanf("%u %u %u %u %u", &k0, &k1, &path, &month, &product_bits) == 5) {
        const float4 own = inflation_normals(path, month, make_uint2(k0, k1));
        const unsigned lane = month & 3u;
        const float z = lane == 0u ? own.x : lane == 1u ? own.y : lane == 2u ? own.z : own.w;
        const float f = index_factor(__uint_as_float(product_bits));
        printf("%u %u\n", __float_as_uint(z), __float_as_uint(f));
    }
    return 0;
}
"#;

/// Stochastic inflation's own normal Z'_t and the index's yearly twelfth root in the CUDA
/// kernels (shaders/common.wgsl's `inflation_normals` and `index_factor`, generated as C and
/// run on the host) are the CPU's bits: `inflation::own_normal_at` (counter (path, ⌊t/4⌋, 4,
/// 0)) and `inflation::index_factor` over products from 0.5¹² (the least a year allows) to 300.
#[test]
fn the_generated_cuda_inflation_normals_and_index_are_the_cpus() {
    use sextant_engine::inflation::{index_factor, own_normal_at};
    let binary = host_binary("inflation", COMMON_CUDA, INFLATION_MAIN);
    let queries: Vec<(u64, u32, u32, f32)> = (0..20_000u32)
        .map(|i| {
            let product = 0.5f64.powi(12) * 1.0007f64.powi(i as i32);
            (
                9 + u64::from(i % 5) * 0x0f0f_1234_5678,
                i * 7_919,
                i % 1200,
                product.min(f64::from(f32::MAX)) as f32,
            )
        })
        .collect();
    let text: String = queries
        .iter()
        .map(|(seed, path, month, product)| {
            let key = philox::key_of_seed(*seed);
            format!(
                "{} {} {path} {month} {}\n",
                key[0],
                key[1],
                product.to_bits()
            )
        })
        .collect();
    let output = run_on(&binary, text);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), queries.len());
    for ((seed, path, month, product), line) in queries.iter().zip(&lines) {
        let words: Vec<u32> = line.split(' ').map(|w| w.parse().unwrap()).collect();
        let z = own_normal_at(*seed, *path, *month);
        assert_eq!(words[0], z.to_bits(), "path {path} month {month}");
        let f = index_factor(f64::from(*product)) as f32;
        assert_eq!(words[1], f.to_bits(), "product {product}");
    }
}

const BOOTSTRAP_MAIN: &str = r#"
#include <stdio.h>
int main() {
    unsigned k0, k1, path, horizon, rows, block, stationary;
    while (scanf("%u %u %u %u %u %u %u", &k0, &k1, &path, &horizon, &rows, &block, &stationary) == 7) {
        const uint2 key = make_uint2(k0, k1);
        u32 row = 0u;
        uint4 starts = make_uint4(0u, 0u, 0u, 0u);
        uint4 draws = make_uint4(0u, 0u, 0u, 0u);
        for (u32 t = 0u; t < horizon; ++t) {
            if ((t & 3u) == 0u) {
                starts = bootstrap_words(path, t, key, 0u);
                draws = bootstrap_words(path, t, key, 1u);
            }
            row = bootstrap_row(row, t, sx_at(starts, t & 3u), sx_at(draws, t & 3u), rows, block,
                                stationary != 0u);
            printf(t + 1u == horizon ? "%u\n" : "%u ", row);
        }
    }
    return 0;
}
"#;

/// A bootstrap's history rows in the CUDA kernels (shaders/common.wgsl's `bootstrap_words` and
/// `bootstrap_row`, generated as C and run on the host) are `bootstrap::rows_at`'s, month by
/// month, for circular and stationary blocks of several lengths (1 included) and histories
/// of 1 to 6000 months.
#[test]
fn the_generated_cuda_bootstrap_rows_are_the_cpus() {
    use sextant_engine::bootstrap::{rows_at, Bootstrap};
    let binary = host_binary("bootstrap", COMMON_CUDA, BOOTSTRAP_MAIN);
    let cases: Vec<(u64, u32, Bootstrap)> = (0..600u32)
        .map(|i| {
            let rows = [1, 2, 17, 240, 1873, 6000][i as usize % 6];
            let block = [1, 3, 12, 60][i as usize % 4].min(rows);
            let bootstrap = Bootstrap {
                rows,
                block,
                stationary: i % 2 == 1,
                growth: Vec::new(),
                month_table: Vec::new(),
                inflation: None,
            };
            (
                7 + u64::from(i % 3) * 0x5eed_0000_1234,
                i * 31_337,
                bootstrap,
            )
        })
        .collect();
    let horizon = 130;
    let text: String = cases
        .iter()
        .map(|(seed, path, b)| {
            let key = philox::key_of_seed(*seed);
            format!(
                "{} {} {path} {horizon} {} {} {}\n",
                key[0],
                key[1],
                b.rows,
                b.block,
                u32::from(b.stationary)
            )
        })
        .collect();
    let output = run_on(&binary, text);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((seed, path, b), line) in cases.iter().zip(&lines) {
        let rows: Vec<u32> = line.split(' ').map(|w| w.parse().unwrap()).collect();
        assert_eq!(rows, rows_at(b, *seed, *path, horizon), "{b:?} path {path}");
    }
}

const TAX_MAIN: &str = r#"
#include <stdio.h>
int main() {
    TaxSchedule s = TaxSchedule{};
    unsigned count;
    double ordinary, gains, index;
    if (scanf("%u %lf %lf", &count, &s.standard_deduction, &s.capital_gains_rate) != 3) return 1;
    s.count = count;
    for (unsigned k = 0; k < count; ++k) {
        if (scanf("%lf %lf", &s.over.v[k], &s.rate.v[k]) != 2) return 1;
    }
    while (scanf("%lf %lf %lf", &ordinary, &gains, &index) == 3) {
        printf("%a\n", year_tax(s, ordinary, gains, index));
    }
    return 0;
}
"#;

/// The plan kernels' tax (shaders/plan.wgsl), generated as C and run on the host, is the CPU's
/// `year_tax` to the bit: 2024's married-filing-jointly brackets, and a one-bracket schedule,
/// over incomes from nothing to the top bracket, with gains, losses and price levels.
#[test]
fn the_generated_cuda_tax_is_the_cpus_bits() {
    let binary = host_binary("tax", PLAN_CUDA, TAX_MAIN);
    let joint = plan_cases::JOINT_2024;
    // (brackets as (over, rate), standard deduction, capital-gains rate)
    type Schedule = (Vec<(f64, f64)>, f64, f64);
    let cases: Vec<Schedule> = vec![
        (joint.to_vec(), 29_200.0, 0.15),
        (vec![(10_000.0, 0.25)], 0.0, 0.2),
    ];
    for (brackets, deduction, gains_rate) in cases {
        let mut input = format!("{} {deduction:e} {gains_rate:e}\n", brackets.len());
        for (over, rate) in &brackets {
            input += &format!("{over:e} {rate:e}\n");
        }
        let mut queries = Vec::new();
        for k in 0..400u32 {
            let ordinary = f64::from(k) * 2_345.678_9;
            let gains = f64::from(k % 7) * 3_000.25 - 4_000.0;
            let index = 1.0 + f64::from(k % 13) * 0.037;
            queries.push((ordinary, gains, index));
        }
        for (ordinary, gains, index) in &queries {
            input += &format!("{ordinary:e} {gains:e} {index:e}\n");
        }
        let output = run_on(&binary, input);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), queries.len());
        let brackets: Vec<Bracket> = brackets
            .iter()
            .map(|&(over, rate)| Bracket { over, rate })
            .collect();
        for ((ordinary, gains, index), line) in queries.iter().zip(&lines) {
            let want = year_tax(&brackets, deduction, gains_rate, *ordinary, *gains, *index);
            let got = hex_f64(line);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "year_tax({ordinary}, {gains}, {index}): {got} against the CPU's {want}"
            );
        }
    }
    remove(&binary);
}

const RMD_MAIN: &str = r#"
#include <stdio.h>
int main() {
    double balance;
    unsigned age;
    while (scanf("%lf %u", &balance, &age) == 2) {
        printf("%a\n", rmd_required(balance, age));
    }
    return 0;
}
"#;

/// The plan kernels' required minimum distribution (shaders/plan.wgsl, with the Uniform
/// Lifetime Table as a constant table) is the CPU's `rmd::required` to the bit, for every age
/// from 60 to 130 and balances from negative to millions.
#[test]
fn the_generated_cuda_rmd_is_the_cpus_bits() {
    let binary = host_binary("rmd", PLAN_CUDA, RMD_MAIN);
    let mut queries = Vec::new();
    for age in 60..=130u32 {
        for balance in [-5.0, 0.0, 1.0, 12_345.67, 492_000.0, 3_141_592.653_589_793] {
            queries.push((balance, age));
        }
    }
    let input: String = queries
        .iter()
        .map(|(b, a)| format!("{b:e} {a}\n"))
        .collect();
    let output = run_on(&binary, input);
    remove(&binary);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), queries.len());
    for ((balance, age), line) in queries.iter().zip(&lines) {
        let want = rmd::required(*balance, *age);
        assert_eq!(
            hex_f64(line).to_bits(),
            want.to_bits(),
            "rmd_required({balance}, {age}): {line} against the CPU's {want}"
        );
    }
}

const SPENDING_MAIN: &str = r#"
#include <stdio.h>
int main() {
    SpendingRule r = SpendingRule{};
    double kind;
    if (scanf("%lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &kind, &r.essential,
              &r.discretionary, &r.rate, &r.ceiling, &r.real_return, &r.to_age, &r.upper,
              &r.lower, &r.adjust, &r.min_years_left, &r.planning_age) != 12) return 1;
    r.kind = (u32)kind;
    double spend, initial, infinite, last, first, wealth, index, previous, youngest, denominator;
    while (scanf("%lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &spend, &initial, &infinite, &last,
                 &first, &wealth, &index, &previous, &youngest, &denominator) == 10) {
        SpendingState s = SpendingState{spend, initial, infinite != 0.0};
        const u32 adjustment = yearly_spending(r, s, last, first != 0.0, wealth, index, previous,
                                               youngest, denominator);
        printf("%a %a %u %u\n", s.spend, s.initial_rate, (unsigned)s.initial_infinite, adjustment);
    }
    return 0;
}
"#;

/// The plan kernels' spending rules (shaders/plan.wgsl), generated as C and run on the host,
/// are the CPU's `yearly_spending` to the bit on every case of `plan_cases`.
#[test]
fn the_generated_cuda_spending_rules_are_the_cpus() {
    let binary = host_binary("spending", PLAN_CUDA, SPENDING_MAIN);
    let mut plan = plan_cases::plan();
    let queries = plan_cases::queries();
    let mut compared = 0;
    for rule in plan_cases::rules() {
        plan.spending.rule = rule;
        let line = |values: &[f64]| {
            let text: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
            text.join(" ") + "\n"
        };
        let mut input = line(&plan_cases::gpu_rule(&plan, rule));
        for q in &queries {
            input += &line(&q.gpu_inputs(rule));
        }
        let output = run_on(&binary, input);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), queries.len(), "{rule:?}");
        for (q, line) in queries.iter().zip(&lines) {
            let got: Vec<&str> = line.split(' ').collect();
            let number = |text: &str| text.parse::<f64>().unwrap();
            plan_cases::check(
                &plan,
                q,
                [
                    hex_f64(got[0]),
                    hex_f64(got[1]),
                    number(got[2]),
                    number(got[3]),
                ],
            );
            compared += 1;
        }
    }
    remove(&binary);
    assert_eq!(compared, 6 * 960);
}

/// C's `%a` text as an f64 (exact: hexadecimal digits hold the bits).
fn hex_f64(text: &str) -> f64 {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let text = text.strip_prefix("0x").expect("a hexadecimal float");
    let (mantissa, exponent) = text.split_once('p').expect("an exponent");
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let value = u64::from_str_radix(&digits, 16).expect("hexadecimal digits") as f64;
    let exponent: i32 = exponent.parse().expect("a decimal exponent");
    let value = value * 2f64.powi(exponent - 4 * fraction.len() as i32);
    if negative {
        -value
    } else {
        value
    }
}

/// Reading and writing whole files, for the mains that run kernels over buffers.
const FILES_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
// `dir/name` whole, into memory.
static long bytes_read;
static void* slurp(const char* dir, const char* name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE* f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    const long bytes = ftell(f);
    bytes_read = bytes;
    fseek(f, 0, SEEK_SET);
    void* data = malloc(bytes + 16);
    if (fread(data, 1, bytes, f) != (size_t)bytes) { perror(path); exit(2); }
    fclose(f);
    return data;
}
static void spill(const char* dir, const char* name, const void* data, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes) { perror(path); exit(2); }
    fclose(f);
}
"#;

const MONTH_LOOP_MAIN: &str = r#"
int main(int argc, char** argv) {
    const char* dir = argv[1];
    sx_globals g;
    g.plan_words = (const u32*)slurp(dir, "words");
    g.plan_reals = (const double*)slurp(dir, "reals");
    g.plan_lanes = (const uint4*)slurp(dir, "lanes");
    const u32 rows = bytes_read / 32;
    const u32 samples = atoi(argv[2]);
    g.plan_money = (double*)calloc(MONEY_PER_PATH * rows + 1, sizeof(double));
    g.plan_counts = (u32*)calloc(COUNTS_PER_PATH * rows + 1, sizeof(u32));
    g.plan_samples = (u32*)calloc(samples + 1, sizeof(u32));
    for (u32 row = 0; row < rows; row++) {
        plan_path(g, row, row, g.plan_lanes[2 * row + 1].z);
    }
    spill(dir, "money", g.plan_money, MONEY_PER_PATH * rows * sizeof(double));
    spill(dir, "counts", g.plan_counts, COUNTS_PER_PATH * rows * sizeof(u32));
    spill(dir, "samples", g.plan_samples, samples * sizeof(u32));
    return 0;
}
"#;

/// The whole month loop (`plan_path` of shaders/plan.wgsl), generated as C and run on the
/// host over every case of `plan_cases::month_loop_cases` packed as one batch (as a solver's
/// plans run on the GPU), gives the CPU's bits for every path's outcome and yearly samples:
/// what the CUDA plan kernel computes, short of the device.
#[test]
fn the_generated_cuda_month_loop_gives_the_cpus_bits_on_every_case() {
    use sextant_engine::backend::{CpuKernel, Watch};
    use sextant_engine::plan::packed::PackedBatch;
    use sextant_engine::plan::simulate::simulate_plan_on;
    use sextant_engine::plan::Yearly;
    let binary = host_binary(
        "month-loop",
        PLAN_CUDA,
        // The outputs' widths are packed.rs's, not written again here.
        &format!(
            "{FILES_C}#define MONEY_PER_PATH {}\n#define COUNTS_PER_PATH {}\n{MONTH_LOOP_MAIN}",
            sextant_engine::plan::packed::MONEY_PER_PATH,
            sextant_engine::plan::packed::COUNTS_PER_PATH
        ),
    );
    let dir = binary.parent().unwrap().to_path_buf();
    let bytes_of = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let (labels, plans): (Vec<String>, Vec<_>) =
        plan_cases::month_loop_cases(200).into_iter().unzip();
    // What the cases reach: failures, guardrail cuts and raises, goals paid and unpaid, taxes,
    // a per-asset portfolio's rebalances.
    let (mut failed, mut cuts, mut raises, mut unpaid, mut taxed) = (0, 0, 0, 0, 0);
    let mut rebalanced = 0;
    for yearly in [Yearly::Samples, Yearly::Skip] {
        let batch = PackedBatch::of(&plans, yearly).unwrap();
        std::fs::write(dir.join("words"), bytemuck::cast_slice(&batch.words)).unwrap();
        std::fs::write(dir.join("reals"), bytemuck::cast_slice(&batch.reals)).unwrap();
        std::fs::write(dir.join("lanes"), bytemuck::cast_slice(&batch.lanes)).unwrap();
        let ran = Command::new("timeout")
            .arg("120")
            .arg(&binary)
            .arg(&dir)
            .arg(batch.samples_before(batch.rows()).to_string())
            .status()
            .unwrap();
        assert!(ran.success(), "{yearly:?}: {ran:?}");
        let money: Vec<f64> = bytes_of("money")
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let words = |name: &str| -> Vec<u32> {
            bytes_of(name)
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        let gpu = batch.samples(&money, &words("counts"), &words("samples"));
        assert_eq!(gpu.len(), plans.len());
        for ((label, plan), gpu) in labels.iter().zip(&plans).zip(&gpu) {
            let cpu =
                simulate_plan_on(plan, &Watch::default(), CpuKernel::widest(), yearly).unwrap();
            plan_cases::assert_same_samples(&format!("{label}, {yearly:?}"), gpu, &cpu);
            for o in &cpu.outcomes {
                failed += usize::from(o.failed_at.is_some());
                cuts += usize::from(o.guardrail_cuts > 0);
                raises += usize::from(o.guardrail_raises > 0);
                unpaid += usize::from(o.goals_due & !o.goals_paid != 0);
                taxed += usize::from(o.taxes > 0.0);
                rebalanced += usize::from(o.rebalances > 0 && o.turnover > 0.0);
            }
        }
    }
    remove(&binary);
    for (what, paths) in [
        ("failed", failed),
        ("with a guardrail cut", cuts),
        ("with a guardrail raise", raises),
        ("with a goal unpaid", unpaid),
        ("taxed", taxed),
        ("rebalanced", rebalanced),
    ] {
        assert!(paths > 0, "no path {what}: the cases miss a branch");
    }
}

/// What lets the host compiler build kernels/plan.cu's own kernels: CUDA's launch indices as
/// globals that the main sets thread by thread, and `atomicAdd` as the plain add it is when
/// one thread runs after another.
const LAUNCH_SHIM: &str = r#"
#define __global__
struct sx_dim3 { unsigned x, y, z; };
static sx_dim3 threadIdx, blockIdx, blockDim;
inline unsigned atomicAdd(unsigned* at, unsigned value) {
    const unsigned old = *at;
    *at = old + value;
    return old;
}
"#;

/// `DIR MODE width wanted_per_column values bins log2_low bins_per_octave (first count)…`:
/// `plan_tally` (MODE `tally`: writes `counts` and `hist`) or `plan_collect` (MODE `collect`:
/// reads `wanted` and `cursors`, writes `after` and `values`) over every piece of `samples`,
/// one thread after another.
const REDUCE_MAIN: &str = r#"
int main(int argc, char** argv) {
    const char* dir = argv[1];
    const bool tally = strcmp(argv[2], "tally") == 0;
    const u32 width = atoi(argv[3]);
    const u32 wanted_per_column = atoi(argv[4]);
    const u32 values = atoi(argv[5]);
    const u32 bins = atoi(argv[6]);
    const float log2_low = atof(argv[7]);
    const float bins_per_octave = atof(argv[8]);
    const u32* samples = (const u32*)slurp(dir, "samples");
    u32* counts = (u32*)calloc(width + 1, sizeof(u32));
    u32* hist = (u32*)calloc(width * bins + 1, sizeof(u32));
    u32* cursors = tally ? nullptr : (u32*)slurp(dir, "cursors");
    const u32 slots = bytes_read / 4;
    const uint4* wanted = tally ? nullptr : (const uint4*)slurp(dir, "wanted");
    u32* found = (u32*)calloc(values + 1, sizeof(u32));
    blockIdx.x = 0;
    for (int a = 9; a + 1 < argc; a += 2) {
        const u32 first = atoi(argv[a]);
        const u32 count = atoi(argv[a + 1]);
        blockDim.x = count;
        for (u32 t = 0; t < count; t++) {
            threadIdx.x = t;
            if (tally) {
                plan_tally(samples, first, count, width, bins, log2_low, bins_per_octave, counts,
                           hist);
            } else {
                plan_collect(samples, first, count, width, bins, log2_low, bins_per_octave,
                             cursors, wanted, wanted_per_column, found);
            }
        }
    }
    if (tally) {
        spill(dir, "counts", counts, width * sizeof(u32));
        spill(dir, "hist", hist, (size_t)width * bins * sizeof(u32));
    } else {
        spill(dir, "after", cursors, slots * sizeof(u32));
        spill(dir, "values", found, values * sizeof(u32));
    }
    return 0;
}
"#;

/// kernels/plan.cu's two reduction passes, built on the host, as the device that the host
/// side of the reduction (`gpu::plan_years`) drives; the locate step is the goals' kernel's
/// scan, here in Rust.
struct HostColumns {
    binary: std::path::PathBuf,
    dir: std::path::PathBuf,
    /// (first value, values) of each piece of `dir/samples`.
    pieces: Vec<(u32, u32)>,
    width: u32,
    wanted_per_column: u32,
    hist: Vec<u32>,
}

impl HostColumns {
    fn run(&self, mode: &str, values: usize) {
        use sextant_engine::backend::gpu;
        let mut command = Command::new("timeout");
        command
            .arg("120")
            .arg(&self.binary)
            .arg(&self.dir)
            .arg(mode)
            .arg(self.width.to_string())
            .arg(self.wanted_per_column.to_string())
            .arg(values.to_string())
            .arg(gpu::BINS.to_string())
            .arg(gpu::LOG2_LOW.to_string())
            .arg(gpu::BINS_PER_OCTAVE.to_string());
        for (first, count) in &self.pieces {
            command.arg(first.to_string()).arg(count.to_string());
        }
        let ran = command.status().unwrap();
        assert!(ran.success(), "{mode}: {ran:?}");
    }

    fn words(&self, name: &str) -> Vec<u32> {
        std::fs::read(self.dir.join(name))
            .unwrap()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    fn write(&self, name: &str, words: &[u32]) {
        // One word at least: the main reads every file it names.
        let words = if words.is_empty() { &[0u32][..] } else { words };
        std::fs::write(self.dir.join(name), bytemuck::cast_slice(words)).unwrap();
    }
}

impl sextant_engine::backend::gpu::PlanColumnsRun for HostColumns {
    fn tally(&mut self) -> Result<Vec<u32>, String> {
        self.run("tally", 0);
        self.hist = self.words("hist");
        Ok(self.words("counts"))
    }
}

impl sextant_engine::backend::gpu::Select for HostColumns {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        Ok(queries
            .iter()
            .map(|&[offset, rank, bins, _]| {
                let mut below = 0;
                for b in 0..bins {
                    let count = self.hist[(offset + b) as usize];
                    if below + count > rank {
                        return [b, below, count, 0];
                    }
                    below += count;
                }
                [u32::MAX, below, 0, 0]
            })
            .collect())
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        self.write("wanted", wanted.as_flattened());
        self.write("cursors", cursors);
        self.run("collect", values);
        let found = self
            .words("values")
            .into_iter()
            .map(f32::from_bits)
            .collect();
        Ok((self.words("after"), found))
    }
}

/// The CUDA passes that reduce a plan's yearly samples on the device (`plan_tally` and
/// `plan_collect` of kernels/plan.cu), built on the host and driven by the backends' own host
/// side (`gpu::plan_years`), give the host reduction's percentiles to the bit on every case of
/// `plan_cases::month_loop_cases` (the CPU's samples: paths that end early, failed paths'
/// zeros): over two pieces that start past unrelated values (a plan's rows across two
/// launches), and in collect passes of at most 256 values (so several).
#[test]
fn the_cuda_plan_reduction_on_the_host_gives_the_host_reductions_bits() {
    use sextant_engine::backend::{gpu, CpuKernel, Watch};
    use sextant_engine::plan::simulate::simulate_plan_on;
    use sextant_engine::plan::{reduce_tables, Yearly};
    let cuda = format!(
        "{LAUNCH_SHIM}{PLAN_CUDA}\n{}",
        include_str!("../../kernels/plan.cu")
    );
    let binary = host_binary("plan-reduce", &cuda, &format!("{FILES_C}{REDUCE_MAIN}"));
    let dir = binary.parent().unwrap().to_path_buf();
    for (label, plan) in plan_cases::month_loop_cases(200) {
        let cpu = simulate_plan_on(
            &plan,
            &Watch::default(),
            CpuKernel::widest(),
            Yearly::Samples,
        )
        .unwrap();
        let (years, rows) = (cpu.years, plan.paths as usize);
        let sample_rows = if plan.stochastic_index() { 3 } else { 2 };
        let width = sample_rows * years;
        // A row of ones first (no piece covers it), then each row's wealth and spending (and
        // real wealth, under a stochastic index).
        let mut samples = vec![1f32.to_bits(); width];
        for row in 0..rows {
            let at = row * years..(row + 1) * years;
            samples.extend(cpu.wealth[at.clone()].iter().map(|x| x.to_bits()));
            samples.extend(cpu.real_spending[at.clone()].iter().map(|x| x.to_bits()));
            if sample_rows == 3 {
                samples.extend(cpu.real_wealth[at].iter().map(|x| x.to_bits()));
            }
        }
        std::fs::write(dir.join("samples"), bytemuck::cast_slice(&samples)).unwrap();
        let split = rows / 3;
        let mut run = HostColumns {
            binary: binary.clone(),
            dir: dir.clone(),
            pieces: vec![
                (width as u32, (split * width) as u32),
                (
                    ((split + 1) * width) as u32,
                    ((rows - split) * width) as u32,
                ),
            ],
            width: width as u32,
            wanted_per_column: gpu::plan_wanted_per_column(&plan.percentiles),
            hist: Vec::new(),
        };
        let reduced =
            gpu::plan_years(&mut run, years, sample_rows, &plan.percentiles, 256).unwrap();
        let host = reduce_tables(&cpu, &plan.percentiles);
        assert_eq!(
            plan_cases::reduced_bits(&reduced),
            plan_cases::reduced_bits(&host),
            "{label}"
        );
    }
    remove(&binary);
}

const ASSET_PATHS_MAIN: &str = r#"
// argv: dir count rule horizon paths seed_lo seed_hi floats. `table`: the asset table's
// entries; `flows`: W_0, then (c_t, d_t) per month. Writes `out`: per path, W after each month,
// then the depletion month (−1: none), the rebalances and the turnover.
int main(int argc, char** argv) {
    const char* dir = argv[1];
    const u32 count = atoi(argv[2]), rule = atoi(argv[3]), horizon = atoi(argv[4]);
    const u32 paths = atoi(argv[5]), floats = atoi(argv[8]);
    const uint2 key = make_uint2(strtoul(argv[6], 0, 10), strtoul(argv[7], 0, 10));
    sx_globals g;
    g.months = (const float4*)slurp(dir, "table");
    g.vols = 0;
    const double* flows = (const double*)slurp(dir, "flows");
    const u32 width = horizon + 3;
    double* out = (double*)calloc((size_t)paths * width, sizeof(double));
    for (u32 path = 0; path < paths; path++) {
        double* row = out + (size_t)path * width;
        sx_array_double_16 holdings;
        sx_array_float4_16 normals;
        double wealth = asset_start(g, holdings, count, 0u, flows[0]);
        double depleted_at = -1.0, turnover = 0.0;
        u32 rebalances = 0;
        for (u32 t = 0; t < horizon; t++) {
            if ((t & 3u) == 0u) {
                asset_normals(normals, path, t, key, count);
            }
            const double c = flows[1 + 2 * t], d = flows[2 + 2 * t];
            if (depleted_at >= 0.0) {
                wealth = 0.0;
            } else {
                const double x = wealth + c - d;
                if (d > 0.0 && x <= 0.0) {
                    depleted_at = t;
                    wealth = 0.0;
                } else {
                    const AssetMonth m = asset_month(g, holdings, normals, count, rule, 0u, floats,
                                                     t, x, wealth, c - d);
                    wealth = m.wealth;
                    rebalances += m.rebalanced;
                    turnover += m.turnover;
                }
            }
            row[t] = wealth;
        }
        row[horizon] = depleted_at;
        row[horizon + 1] = rebalances;
        row[horizon + 2] = turnover;
    }
    spill(dir, "out", out, (size_t)paths * width * sizeof(double));
    return 0;
}
"#;

/// A per-asset goal of `n` assets (correlations 0.3^|i−j|, a glide path from stocks to
/// bonds, a fee, contributions then withdrawals that deplete some paths) under `rebalancing`.
fn asset_goal(
    n: usize,
    rebalancing: serde_json::Value,
    paths: u64,
) -> sextant_engine::PreparedGoal {
    use serde_json::json;
    let assets: Vec<_> = (0..n)
        .map(|i| {
            let x = i as f64 / n as f64;
            json!({"name": format!("a{i}"), "expected_return": 0.09 - 0.06 * x,
                   "volatility": 0.38 - 0.3 * x})
        })
        .collect();
    let correlations: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| 0.3f64.powi((i as i32 - j as i32).abs()))
                .collect()
        })
        .collect();
    let tilt = |early: bool| -> Vec<f64> {
        let raw: Vec<f64> = (0..n)
            .map(|i| {
                if early {
                    (n - i) as f64
                } else {
                    (i + 1) as f64
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| w / total).collect()
    };
    let request: sextant_engine::GoalRequest = serde_json::from_value(json!({
        "goal": {"initial_wealth": 5000, "monthly_contribution": 90, "contribution_months": 30,
                 "monthly_withdrawal": 160, "withdrawal_start_month": 30, "horizon_months": 75},
        "market": {
            "assets": assets, "correlations": correlations,
            "glide_path": [{"start_month": 0, "weights": tilt(true)},
                           {"start_month": 40, "weights": tilt(false)}],
            "fee": 0.01, "inflation": 0.02, "rebalancing": rebalancing
        },
        "options": {"paths": paths, "seed": 21}
    }))
    .unwrap();
    sextant_engine::validate::prepare(&request).unwrap()
}

/// The per-asset month (`shaders/assets.wgsl`: the holdings' start, the assets' normals, the
/// flows, each rule's trades and the correlated growth), generated as C and run on the host,
/// gives `rebalance::simulate_path`'s bits: W after every month, the depletion month, the
/// rebalances and the turnover of every path, under each rule, for 3 and 16 assets. The
/// goal's drifts, weights and band are first made what the kernels' f32 pairs sum to.
#[test]
fn the_generated_cuda_per_asset_month_is_the_definitions_bits() {
    use sextant_engine::backend::gpu::{split, AssetTable};
    use sextant_engine::backend::GOAL_CUDA;
    use sextant_engine::rebalance::{simulate_path, Rule};
    let binary = host_binary("assets", GOAL_CUDA, &format!("{FILES_C}{ASSET_PATHS_MAIN}"));
    let dir = binary.parent().unwrap().to_path_buf();
    let paired = |x: f64| {
        let (hi, lo) = split(x);
        f64::from(hi) + f64::from(lo)
    };
    let (mut depleted, mut rebalanced) = (0, 0);
    for (n, rule) in [
        (3, serde_json::json!("annual")),
        (3, serde_json::json!({"kind": "band", "band": 0.04})),
        (3, serde_json::json!("none")),
        (16, serde_json::json!({"kind": "band", "band": 0.02})),
    ] {
        let paths = 300u32;
        let mut goal = asset_goal(n, rule.clone(), u64::from(paths));
        let assets = goal.asset_paths.as_mut().unwrap();
        for x in assets.drift.iter_mut().chain(assets.weights.iter_mut()) {
            *x = paired(*x);
        }
        if let Rule::Band(b) = assets.rule {
            assets.rule = Rule::Band(paired(b));
        }
        let assets = goal.asset_paths.clone().unwrap();
        let table = AssetTable::of(&assets);
        std::fs::write(dir.join("table"), bytemuck::cast_slice(&table.entries)).unwrap();
        let mut flows = vec![goal.initial_wealth];
        for t in 0..goal.horizon as usize {
            flows.extend([goal.contribution[t], goal.withdrawal[t]]);
        }
        std::fs::write(dir.join("flows"), bytemuck::cast_slice(&flows)).unwrap();
        let code = match assets.rule {
            Rule::Annual => 0,
            Rule::Band(_) => 1,
            Rule::None => 2,
        };
        let ran = Command::new("timeout")
            .arg("120")
            .arg(&binary)
            .arg(&dir)
            .args([n, code, goal.horizon as usize, paths as usize].map(|v| v.to_string()))
            .args([goal.seed as u32, (goal.seed >> 32) as u32].map(|v| v.to_string()))
            .arg(table.floats.to_string())
            .status()
            .unwrap();
        assert!(ran.success(), "{rule}: {ran:?}");
        let out: Vec<f64> = std::fs::read(dir.join("out"))
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let width = goal.horizon as usize + 3;
        for path in 0..paths {
            let row = &out[path as usize * width..(path as usize + 1) * width];
            let want = simulate_path(&goal, path);
            let label = format!("{n} assets, {rule}, path {path}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&row[..width - 3]), bits(&want.wealth), "{label}: W");
            let depleted_at = want.depleted_at.map_or(-1.0, f64::from);
            assert_eq!(row[width - 3], depleted_at, "{label}: depletion");
            assert_eq!(row[width - 2], f64::from(want.rebalances), "{label}");
            assert_eq!(row[width - 1].to_bits(), want.turnover.to_bits(), "{label}");
            depleted += usize::from(want.depleted_at.is_some());
            rebalanced += usize::from(want.rebalances > 0);
        }
    }
    remove(&binary);
    assert!(
        depleted > 0 && rebalanced > 0,
        "{depleted} depleted, {rebalanced} rebalanced"
    );
}

const SOBOL_PATHS_MAIN: &str = r#"
// argv: dir horizon points_log2 paths seed_lo seed_hi. `directions`: 32 words a dimension;
// `table`: the bridge table's entries. Writes `out`: per path, each month's normal's bits.
int main(int argc, char** argv) {
    const char* dir = argv[1];
    const u32 horizon = atoi(argv[2]), points_log2 = atoi(argv[3]), paths = atoi(argv[4]);
    const uint2 key = make_uint2(strtoul(argv[5], 0, 10), strtoul(argv[6], 0, 10));
    sx_globals g;
    g.directions = (const u32*)slurp(dir, "directions");
    g.months = (const float4*)slurp(dir, "table");
    g.vols = 0;
    u32* out = (u32*)calloc((size_t)paths * horizon, sizeof(u32));
    for (u32 path = 0; path < paths; path++) {
        SobolPath walk = sobol_path_start(g, path & ((1u << points_log2) - 1u), path >> points_log2,
                                          key, 0u, horizon);
        for (u32 t = 0; t < horizon; t++) {
            out[(size_t)path * horizon + t] = __float_as_uint(sobol_path_next(g, walk));
        }
    }
    spill(dir, "out", out, (size_t)paths * horizon * sizeof(u32));
    return 0;
}
"#;

/// The `sobol` sampler's path normals as the kernels make them (`shaders/sobol_paths.wgsl`:
/// the points from the direction table, the scramble, Φ⁻¹ in f32, and the bridge walked in
/// time order with a stack in place of the CPU's whole-path array), generated as C and run on
/// the host, are `SobolPaths::path_normals`' bits, month by month, for horizons that are and
/// are not powers of two (1 to the longest, 1,200), over two replicates.
#[test]
fn the_generated_cuda_sobol_path_normals_are_the_cpus_bits() {
    use sextant_engine::backend::gpu::sobol_table;
    use sextant_engine::backend::GOAL_CUDA;
    use sextant_engine::sampler::{PathSampler, SobolPaths};
    let binary = host_binary(
        "sobol-paths",
        GOAL_CUDA,
        &format!("{FILES_C}{SOBOL_PATHS_MAIN}"),
    );
    let dir = binary.parent().unwrap().to_path_buf();
    let numbers = sextant_engine::sobol::direction_numbers();
    for (horizon, points_log2) in [
        (1u32, 3u32),
        (2, 3),
        (7, 4),
        (64, 5),
        (360, 6),
        (421, 5),
        (1200, 4),
    ] {
        let seed = 0x5eed_0000_0000_0000 | u64::from(horizon);
        let paths = 2u32 << points_log2;
        let directions: Vec<u32> = (0..horizon as usize)
            .flat_map(|d| numbers.of_dimension(d).iter().copied())
            .collect();
        std::fs::write(dir.join("directions"), bytemuck::cast_slice(&directions)).unwrap();
        let request: sextant_engine::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 1000, "horizon_months": horizon},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": paths, "seed": seed, "sampler": "sobol", "replicates": 2}
        }))
        .unwrap();
        let goal = sextant_engine::validate::prepare(&request).unwrap();
        assert_eq!(
            goal.sampler,
            PathSampler::Sobol {
                replicates: 2,
                points_log2
            }
        );
        std::fs::write(dir.join("table"), bytemuck::cast_slice(&sobol_table(&goal))).unwrap();
        let key = sextant_engine::philox::key_of_seed(seed);
        let ran = Command::new("timeout")
            .arg("120")
            .arg(&binary)
            .arg(&dir)
            .args([horizon, points_log2, paths, key[0], key[1]].map(|v| v.to_string()))
            .status()
            .unwrap();
        assert!(ran.success(), "{horizon} months: {ran:?}");
        let out: Vec<u32> = std::fs::read(dir.join("out"))
            .unwrap()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let mut cpu = SobolPaths::new(seed, horizon, points_log2);
        let mut normals = vec![0.0f32; horizon as usize];
        for path in 0..paths {
            cpu.path_normals(path, &mut normals);
            let want: Vec<u32> = normals.iter().map(|z| z.to_bits()).collect();
            let got = &out[(path * horizon) as usize..((path + 1) * horizon) as usize];
            assert_eq!(got, &want[..], "{horizon} months, path {path}");
        }
    }
    remove(&binary);
}
