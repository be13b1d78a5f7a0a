//! The CUDA kernels' shared arithmetic, generated from the WGSL by sextant-kernelgen:
//! `shaders/common.wgsl` → `$OUT_DIR/common.cu` (Philox and the normals, which the tests run
//! on the host); `shaders/common.wgsl` + `shaders/assets.wgsl` + `shaders/sobol_paths.wgsl` →
//! `$OUT_DIR/goal.cu` (with `real` = f64: the per-asset month and the `sobol` path normals),
//! which the CUDA backend puts before `kernels/simulate.cu`;
//! `shaders/common.wgsl` + `shaders/plan.wgsl` → `$OUT_DIR/plan.cu`, the plan kernel's month
//! loop, which `kernels/plan.cu` follows with its entry point. A WGSL
//! function outside the generator's subset fails the build here, with its name.

use sextant_kernelgen::{wgsl_to_cuda, Override};

/// Philox's 32×32→64 product: WGSL builds it from 16-bit halves; CUDA has it in hardware.
const MULHILO: &str = "\
__device__ __forceinline__ uint2 mulhilo(u32 a, u32 b) {
    return make_uint2(__umulhi(a, b), a * b);
}";

fn main() {
    let mulhilo = [Override {
        name: "mulhilo",
        cuda: MULHILO,
    }];
    // `shaders/X.wgsl` (after the files before it) → `$OUT_DIR/X.cu`.
    generate("common", "", &["common"], &mulhilo);
    // The goal kernel's wealth is f64 in CUDA (the WGSL backend's `real` follows the adapter).
    generate(
        "goal",
        "alias real = f64;\n",
        &["common", "assets", "sobol_paths"],
        &mulhilo,
    );
    generate("plan", "", &["common", "plan"], &mulhilo);
}

/// `prefix` (declarations the host puts first), then `files`, as CUDA C in `$OUT_DIR/name.cu`.
fn generate(name: &str, prefix: &str, files: &[&str], overrides: &[Override]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut wgsl = String::from(prefix);
    for file in files {
        let source = root.join(format!("shaders/{file}.wgsl"));
        println!("cargo::rerun-if-changed={}", source.display());
        wgsl += &std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
        wgsl.push('\n');
    }
    let cuda = wgsl_to_cuda(&wgsl, overrides).unwrap_or_else(|e| {
        panic!("shaders/{name}.wgsl is outside the CUDA generator's subset: {e}")
    });
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join(format!("{name}.cu")), cuda)
        .unwrap_or_else(|e| panic!("writing {name}.cu: {e}"));
}
