//! The CUDA kernels' shared arithmetic, generated from the WGSL (`shaders/common.wgsl`) by
//! sextant-kernelgen: `$OUT_DIR/common.cu`, which the CUDA backend puts before
//! `kernels/simulate.cu`. A WGSL function outside the generator's subset fails the build here,
//! with its name.

use sextant_kernelgen::{wgsl_to_cuda, Override};

/// Philox's 32×32→64 product: WGSL builds it from 16-bit halves; CUDA has it in hardware.
const MULHILO: &str = "\
__device__ __forceinline__ uint2 mulhilo(u32 a, u32 b) {
    return make_uint2(__umulhi(a, b), a * b);
}";

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let common = root.join("shaders/common.wgsl");
    println!("cargo::rerun-if-changed={}", common.display());
    let wgsl = std::fs::read_to_string(&common).expect("reading shaders/common.wgsl");
    let cuda = wgsl_to_cuda(
        &wgsl,
        &[Override {
            name: "mulhilo",
            cuda: MULHILO,
        }],
    )
    .unwrap_or_else(|e| panic!("shaders/common.wgsl is outside the CUDA generator's subset: {e}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("common.cu"), cuda).expect("writing common.cu");
}
