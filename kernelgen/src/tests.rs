use super::*;
use std::process::Command;

/// Build `cuda` (generated C) with `main` on the host compiler, run it, and give its output.
fn host_run(cuda: &str, main: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "sextant-kernelgen-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("run");
    build_on_host(cuda, &format!("#include <stdio.h>\n{main}"), &binary)
        .unwrap_or_else(|e| panic!("{e}\n{cuda}"));
    // A mistranslated loop may never end: 60 s is a failure, not a hang.
    let ran = Command::new("timeout")
        .arg("60")
        .arg(&binary)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "the generated code failed or ran past 60 s: {ran:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(ran.stdout).unwrap()
}

const SAMPLE: &str = r#"
fn collatz_steps(n0: u32) -> u32 {
    var n = n0;
    var steps = 0u;
    loop {
        if (n == 1u) { break; }
        if ((n & 1u) == 0u) {
            n = n / 2u;
            steps++;
            continue;
        }
        n = 3u * n + 1u;
        steps++;
    }
    return steps;
}

fn odd_sum(limit: u32) -> u32 {
    var total = 0u;
    for (var i = 0u; i < limit; i++) {
        if ((i & 1u) == 0u) { continue; }
        total = total + i;
    }
    return total;
}

fn pick(v: vec4<f32>, i: u32) -> f32 {
    var w = v;
    w[i] = w[i] * 2.0;
    let s = w.yx;
    return w[i] + s.x - select(1.0, -1.0, i > 1u);
}

fn bits(x: f32) -> u32 {
    return bitcast<u32>(x) ^ u32(i32(-3));
}

fn shadow(a: f32) -> f32 {
    var r = a;
    if (a > 0.0) {
        let t = a * 2.0;
        r = r + t;
    } else {
        let t = a - 1.0;
        r = r * t;
    }
    let t = vec2<f32>(r, 1.0) * 3.0;
    return -t.x + t.y + clamp(a, -0.5, 0.5) + floor(a);
}

fn shadows_math(x: f64) -> f64 {
    let floor = floor(x) + 0.5;
    let sqrt = sqrt(floor);
    return sqrt + floor;
}

fn compose(a: vec2<u32>) -> vec4<u32> {
    let k = a + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    return vec4<u32>(k, k.yx);
}
"#;

/// The generated C computes what the WGSL says: loops whose `continue` must still run the
/// update, names shadowed across scopes, vector indexing and swizzles, bitcasts, `select`,
/// wrapping constants; each checked against the same steps in Rust.
#[test]
fn generated_functions_compute_what_the_wgsl_says_on_the_host() {
    let cuda = wgsl_to_cuda(SAMPLE, &[]).unwrap();
    let out = host_run(
        &cuda,
        r#"int main() {
    for (u32 n = 1; n <= 30; ++n) printf("%u %u\n", collatz_steps(n), odd_sum(n));
    for (u32 i = 0; i < 4; ++i) printf("%u\n", __float_as_uint(pick(make_float4(1.5f, -2.0f, 3.25f, 7.0f), i)));
    const float xs[5] = {-2.5f, -0.25f, 0.0f, 0.75f, 3.5f};
    for (float x : xs) printf("%u %u\n", bits(x), __float_as_uint(shadow(x)));
    printf("%.17g\n", shadows_math(7.25));
    const uint4 c = compose(make_uint2(0xFFFFFFFFu, 7u));
    printf("%u %u %u %u\n", c.x, c.y, c.z, c.w);
    return 0;
}"#,
    );
    let mut expected = String::new();
    for n in 1u32..=30 {
        let (mut m, mut steps) = (n, 0);
        while m != 1 {
            m = if m % 2 == 0 { m / 2 } else { 3 * m + 1 };
            steps += 1;
        }
        let odd: u32 = (0..n).filter(|i| i % 2 == 1).sum();
        expected += &format!("{steps} {odd}\n");
    }
    let mut lines = out.lines().skip(30);
    for i in 0..4usize {
        let mut w = [1.5f32, -2.0, 3.25, 7.0];
        w[i] *= 2.0;
        let want = w[i] + w[1] - if i > 1 { -1.0 } else { 1.0 };
        let got: u32 = lines.next().unwrap().parse().unwrap();
        assert_eq!(got, want.to_bits(), "pick(_, {i})");
    }
    for x in [-2.5f32, -0.25, 0.0, 0.75, 3.5] {
        let line = lines.next().unwrap();
        let (b, s) = line.split_once(' ').unwrap();
        assert_eq!(
            b.parse::<u32>().unwrap(),
            x.to_bits() ^ (-3i32 as u32),
            "bits({x})"
        );
        let r = if x > 0.0 { x + x * 2.0 } else { x * (x - 1.0) };
        let want = -(r * 3.0) + 3.0 + x.clamp(-0.5, 0.5) + x.floor();
        assert_eq!(s.parse::<u32>().unwrap(), want.to_bits(), "shadow({x})");
    }
    // A `let` named like a C math function does not hide the function.
    let floor = 7.25f64.floor() + 0.5;
    let got: f64 = lines.next().unwrap().parse().unwrap();
    assert_eq!(
        got.to_bits(),
        (floor.sqrt() + floor).to_bits(),
        "shadows_math"
    );
    let k = [
        0xFFFF_FFFFu32.wrapping_add(0x9E37_79B9),
        7u32.wrapping_add(0xBB67_AE85),
    ];
    assert_eq!(
        lines.next().unwrap(),
        format!("{} {} {} {}", k[0], k[1], k[1], k[0])
    );
    assert_eq!(
        out.lines().take(30).collect::<Vec<_>>().join("\n") + "\n",
        expected
    );
}

const HOUSEHOLD: &str = r#"
struct Account {
    balance: f64,
    basis: f64,
}

struct House {
    accounts: array<Account, 3>,
    cash: f64,
    count: u32,
}

fn after_taking(a: Account, taken: f64) -> Account {
    return Account(a.balance - taken, a.basis * (1.0 - taken / a.balance));
}

// Take `amount` from the accounts in order; what they could not pay.
fn withdraw(h: ptr<function, House>, amount: f64) -> f64 {
    var rest = amount;
    for (var i = 0u; i < (*h).count; i++) {
        if (rest <= 0.0) {
            break;
        }
        let taken = min(rest, (*h).accounts[i].balance);
        (*h).accounts[i] = after_taking((*h).accounts[i], taken);
        rest = rest - taken;
    }
    (*h).cash = (*h).cash + (amount - rest);
    return rest;
}

fn house_of(b: vec4<f64>) -> House {
    var accounts: array<Account, 3>;
    accounts[0] = Account(b.x, b.x * 0.5);
    accounts[1] = Account(b.y, b.y);
    accounts[2] = Account(b.z, 0.0);
    return House(accounts, b.w, 3u);
}

fn run(b: vec4<f64>, amount: f64) -> vec4<f64> {
    var house = house_of(b);
    let rest = withdraw(&house, amount);
    let total = house.accounts[0].balance + house.accounts[1].balance + house.accounts[2].balance;
    return vec4<f64>(rest, house.cash, total, house.accounts[0].basis + house.accounts[1].basis);
}
"#;

/// Structs, fixed-size arrays (copied by value) and `ptr<function, _>` arguments whose stores
/// reach the caller: a household's ordered withdrawal, checked against the same steps in Rust
/// to the bit.
#[test]
fn structs_arrays_and_pointer_arguments_behave_as_in_wgsl_on_the_host() {
    let cuda = wgsl_to_cuda(HOUSEHOLD, &[]).unwrap();
    let cases: [([f64; 4], f64); 4] = [
        ([1000.0, 500.0, 250.0, 10.0], 1200.0),
        ([1000.0, 500.0, 250.0, 0.0], 5000.0),
        ([0.0, 300.0, 250.0, 0.0], 100.0),
        ([812.5, 0.0, 99.25, 3.0], 0.0),
    ];
    let calls: String = cases
        .iter()
        .map(|(b, amount)| {
            format!(
                "    {{ const double4 r = run(make_double4({:?}, {:?}, {:?}, {:?}), {amount:?});\n      \
                 printf(\"%.17g %.17g %.17g %.17g\\n\", r.x, r.y, r.z, r.w); }}\n",
                b[0], b[1], b[2], b[3]
            )
        })
        .collect();
    let out = host_run(&cuda, &format!("int main() {{\n{calls}    return 0;\n}}"));
    for ((b, amount), line) in cases.iter().zip(out.lines()) {
        let mut accounts = [(b[0], b[0] * 0.5), (b[1], b[1]), (b[2], 0.0)];
        let mut rest = *amount;
        for a in &mut accounts {
            if rest <= 0.0 {
                break;
            }
            let taken = rest.min(a.0);
            *a = (a.0 - taken, a.1 * (1.0 - taken / a.0));
            rest -= taken;
        }
        let cash = b[3] + (amount - rest);
        let total = accounts[0].0 + accounts[1].0 + accounts[2].0;
        let want = [rest, cash, total, accounts[0].1 + accounts[1].1];
        let got: Vec<f64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.to_bits(), w.to_bits(), "{b:?} {amount}: {line}");
        }
    }
    assert_eq!(out.lines().count(), cases.len());
}

#[test]
fn what_falls_outside_the_subset_is_an_error_naming_the_function() {
    let barrier = "fn wait() { workgroupBarrier(); }";
    let e = wgsl_to_cuda(barrier, &[]).unwrap_err();
    assert!(e.starts_with("fn wait:"), "{e}");
    let switch =
        "fn pick(x: u32) -> u32 { switch x { case 0u: { return 1u; } default: { return 2u; } } }";
    let e = wgsl_to_cuda(switch, &[]).unwrap_err();
    assert!(e.starts_with("fn pick:"), "{e}");
    let global = "var<private> g: f32;\nfn f() -> f32 { return g; }";
    assert!(wgsl_to_cuda(global, &[])
        .unwrap_err()
        .contains("module-scope variables other than storage buffers"));
    let entry = "@compute @workgroup_size(1) fn main() {}";
    assert!(wgsl_to_cuda(entry, &[])
        .unwrap_err()
        .contains("entry points"));
    let bad = "fn f() -> f32 { return 1u; }";
    assert!(wgsl_to_cuda(bad, &[]).is_err());
}

#[test]
fn an_override_replaces_its_function_and_must_name_one() {
    let wgsl = "fn twice(x: u32) -> u32 { return x + x; }\nfn four(x: u32) -> u32 { return twice(twice(x)); }";
    let hand = "__device__ __forceinline__ u32 twice(u32 x) { return x << 1; }";
    let cuda = wgsl_to_cuda(
        wgsl,
        &[Override {
            name: "twice",
            cuda: hand,
        }],
    )
    .unwrap();
    assert!(cuda.contains(hand), "{cuda}");
    assert!(!cuda.contains("(x + x)"), "{cuda}");
    let out = host_run(
        &cuda,
        "int main() { printf(\"%u\\n\", four(5u)); return 0; }",
    );
    assert_eq!(out.trim(), "20");
    let e = wgsl_to_cuda(
        wgsl,
        &[Override {
            name: "thrice",
            cuda: hand,
        }],
    )
    .unwrap_err();
    assert!(e.contains("thrice"), "{e}");
}

const BUFFERS: &str = r#"
@group(0) @binding(0) var<storage, read> table: array<f64>;
@group(0) @binding(1) var<storage, read_write> sums: array<f64>;
@group(0) @binding(2) var<storage, read> counts: array<vec2<u32>>;

// Reads a buffer.
fn row_sum(row: u32, width: u32) -> f64 {
    var s = f64(0.0);
    for (var k = 0u; k < width; k++) {
        s = s + table[row * width + k];
    }
    return s + f64(counts[row].y) + f64(counts[0].x);
}

// Uses a buffer only through a call, and writes one.
fn store_rows(rows: u32, width: u32) {
    for (var r = 0u; r < rows; r++) {
        sums[r] = row_sum(r, width);
    }
}

// Touches no buffer: takes no hidden argument.
fn plain(x: f64) -> f64 {
    return x * 2.0;
}
"#;

#[test]
fn storage_buffers_become_one_struct_of_pointers_passed_to_the_functions_that_use_them() {
    let cuda = wgsl_to_cuda(BUFFERS, &[]).unwrap();
    assert!(cuda.contains("const double* table;"), "{cuda}");
    assert!(cuda.contains("    double* sums;"), "{cuda}");
    assert!(cuda.contains("const uint2* counts;"), "{cuda}");
    assert!(
        cuda.contains("store_rows(const sx_globals& sx_g,"),
        "{cuda}"
    );
    assert!(cuda.contains("plain(double x)"), "{cuda}");
    let out = host_run(
        &cuda,
        r#"int main() {
    double table[6] = {1, 2, 3, 4, 5, 6};
    double sums[2] = {0, 0};
    uint2 counts[2] = {{10, 100}, {20, 200}};
    sx_globals g{table, sums, counts};
    store_rows(g, 2u, 3u);
    printf("%g %g %g\n", sums[0], sums[1], plain(4.0));
    return 0;
}"#,
    );
    // Row 0: 1+2+3 + 100 + 10; row 1: 4+5+6 + 200 + 10.
    assert_eq!(out.trim(), "116 225 8");
    let uniform = "@group(0) @binding(0) var<uniform> u: vec4<f32>;\nfn f() -> f32 { return u.x; }";
    assert!(wgsl_to_cuda(uniform, &[])
        .unwrap_err()
        .contains("other than storage buffers"));
}
