//! Every CUDA kernel compiles with NVRTC 12 and 13 for sm_80 and sm_90, each found by the
//! search the binaries' set-up gives the engine ([`nvrtc_search_from_environment`]): what CI
//! can check of CUDA without a GPU (`SEXTANT_SKIP_NVRTC=1` skips knowingly).

#![cfg(feature = "cuda")]

use sextant_engine::backend::{compile_cuda_kernels_with, compile_cuda_plan_kernel_with, nvrtc};
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
            // The plan module: the month loop generated from shaders/plan.wgsl, then
            // kernels/plan.cu, with the backend's options.
            let text = compile_cuda_plan_kernel_with(nvrtc, arch)
                .unwrap_or_else(|log| panic!("NVRTC {major}.{minor} {arch}, plan.cu: {log}"));
            // The month loop, and the two passes that reduce a plan's yearly samples.
            for kernel in ["plan_paths", "plan_tally", "plan_collect"] {
                assert!(
                    text.contains(&format!(".entry {kernel}")),
                    "NVRTC {major}.{minor} {arch}: {kernel} missing"
                );
            }
        }
    }
}
