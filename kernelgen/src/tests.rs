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
    let source = dir.join("run.cpp");
    let binary = dir.join("run");
    std::fs::write(
        &source,
        format!("{HOST_SHIM}\n{cuda}\n#include <stdio.h>\n{main}"),
    )
    .unwrap();
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let built = Command::new(&compiler)
        .args(["-O2", "-ffp-contract=off", "-std=c++17", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| {
            panic!("{compiler} (a host C++ compiler; scripts/install-deps.sh installs g++): {e}")
        });
    assert!(
        built.status.success(),
        "{compiler} failed:\n{}\n{}",
        String::from_utf8_lossy(&built.stderr),
        std::fs::read_to_string(&source).unwrap()
    );
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

#[test]
fn what_falls_outside_the_subset_is_an_error_naming_the_function() {
    let array = "fn sums(x: f32) -> f32 { var a = array<f32, 4>(x, x, x, x); return a[1]; }";
    let e = wgsl_to_cuda(array, &[]).unwrap_err();
    assert!(e.starts_with("fn sums:"), "{e}");
    let structure = "struct P { a: f32 }\nfn first(p: P) -> f32 { return p.a; }";
    let e = wgsl_to_cuda(structure, &[]).unwrap_err();
    assert!(e.starts_with("fn first:"), "{e}");
    let global = "var<private> g: f32;\nfn f() -> f32 { return g; }";
    assert!(wgsl_to_cuda(global, &[])
        .unwrap_err()
        .contains("module-scope variables"));
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
