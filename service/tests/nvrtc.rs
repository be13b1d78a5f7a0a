//! Every CUDA kernel compiles with NVRTC 12 and 13 for sm_80 and sm_90, each found by the
//! search the binaries' set-up gives the engine ([`nvrtc_search_from_environment`]): what CI
//! can check of CUDA without a GPU (`SEXTANT_SKIP_NVRTC=1` skips knowingly).

#![cfg(feature = "cuda")]

use sextant_engine::backend::{compile_cuda_kernels_with, nvrtc, PLAN_CUDA};
use sextant_service::nvrtc_search_from_environment;

/// Both CUDA majors a lent machine may have: 12 (`nvidia-cuda-nvrtc-cu12`) and 13
/// (`nvidia-cuda-nvrtc`, what CUDA 13 drivers such as the H200's 580 come with), found by
/// the search the binaries install for the backend; each compiles every kernel for sm_80 and sm_90.
#[test]
fn every_kernel_compiles_with_nvrtc_12_and_13_for_sm80_and_sm90() {
    if std::env::var_os("SEXTANT_SKIP_NVRTC").is_some() {
        eprintln!("SEXTANT_SKIP_NVRTC set: NVRTC compile skipped");
        return;
    }
    let found = nvrtc::find_all(&nvrtc_search_from_environment(None));
    for failure in &found.failed {
        eprintln!("not loaded: {failure}");
    }
    let majors: Vec<u32> = found.loaded.iter().map(|n| n.version().0).collect();
    for wanted in [12, 13] {
        assert!(
            majors.contains(&wanted),
            "NVRTC {wanted} not found (found {majors:?}): scripts/install-deps.sh installs \
             both wheels; SEXTANT_SKIP_NVRTC=1 skips knowingly"
        );
    }
    for nvrtc in &found.loaded {
        let (major, minor) = nvrtc.version();
        for arch in ["sm_80", "sm_90"] {
            let text = compile_cuda_kernels_with(nvrtc, arch)
                .unwrap_or_else(|log| panic!("NVRTC {major}.{minor} {arch}: {log}"));
            assert!(text.contains(&format!(".target {arch}")), "{arch}");
            for kernel in ["simulate", "locate", "philox_probe"] {
                assert!(
                    text.contains(&format!(".entry {kernel}")),
                    "NVRTC {major}.{minor} {arch}: {kernel} missing"
                );
            }
            eprintln!(
                "NVRTC {major}.{minor} ({}) {arch}: {} bytes of PTX",
                nvrtc.path().display(),
                text.len()
            );
            // The plan kernels' arithmetic generated from shaders/plan.wgsl (no kernel runs it
            // yet): it compiles, called from a probe, with the backend's options.
            let source = format!("{PLAN_CUDA}\n{PLAN_PROBE}");
            let options = [
                format!("--gpu-architecture={arch}"),
                "--std=c++17".to_string(),
                "--fmad=false".to_string(),
            ];
            let text = nvrtc
                .compile_ptx(&source, "plan.cu", &options)
                .unwrap_or_else(|log| panic!("NVRTC {major}.{minor} {arch}, plan.cu: {log}"));
            assert!(
                text.contains(".entry plan_probe"),
                "{arch}: plan_probe missing"
            );
        }
    }
}

/// Calls every function of the generated plan arithmetic, so that NVRTC compiles them all.
const PLAN_PROBE: &str = r#"
extern "C" __global__ void plan_probe(const double* in, double* out, unsigned n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    TaxSchedule s = TaxSchedule{};
    s.count = 2;
    s.over.v[1] = 1000.0;
    s.rate.v[0] = 0.1;
    s.rate.v[1] = 0.2;
    SpendingRule r = SpendingRule{};
    r.kind = i % 5u;
    r.essential = 4000.0;
    r.upper = 1.2;
    r.lower = 0.8;
    SpendingState state = SpendingState{5000.0, 0.04, false};
    const u32 adjustment = yearly_spending(r, state, -0.1, i == 0u, in[i], 1.1, 1.05, 70.0, 0.5);
    out[i] = year_tax(s, in[i], 0.0, 1.0) + rmd_required(in[i], 75u + i % 40u) + state.spend
        + (double)adjustment;
}
"#;
