//! The CUDA kernels' shared arithmetic (Philox, the normals), generated at build time from
//! `shaders/common.wgsl`, compiled by the host's C++ compiler with kernelgen's shim and run
//! against the engine's CPU arithmetic: the same bits, word for word and normal for normal.
//! What CI can check of the generated C without a GPU; the lent GPU's check runs the parity
//! tests on the device itself.

use sextant_engine::backend::COMMON_CUDA;
use sextant_engine::{normal, philox};
use std::io::Write;
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

#[test]
fn the_generated_cuda_philox_and_normals_are_the_cpus_bits() {
    let dir = std::env::temp_dir().join(format!("sextant-generated-cuda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("common.cpp");
    let binary = dir.join("common");
    std::fs::write(
        &source,
        format!("{}\n{COMMON_CUDA}\n{MAIN}", sextant_kernelgen::HOST_SHIM),
    )
    .unwrap();
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let built = Command::new(&compiler)
        .args(["-O2", "-ffp-contract=off", "-std=c++17", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("{compiler}: {e} (scripts/install-deps.sh installs g++)"));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

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
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(&binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text: String = inputs
        .iter()
        .map(|(c, k)| format!("{} {} {} {} {} {}\n", c[0], c[1], c[2], c[3], k[0], k[1]))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap()
        .lines()
        .collect();
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
