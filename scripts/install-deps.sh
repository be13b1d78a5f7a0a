#!/usr/bin/env bash
# Everything the tests need beyond the Rust toolchain, idempotent:
# - Mesa's lavapipe (a Vulkan device on the CPU), so the WGSL backend's tests run anywhere;
# - a host C++ compiler (g++), which runs the CUDA C generated from the WGSL on the CPU in the
#   tests (kernelgen, engine/tests/generated_cuda.rs);
# - NumPy (the reference the engine is compared with) and NVIDIA's NVRTC wheel (CUDA kernels
#   are compiled in the tests even without a GPU), from benches/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || ! command -v c++ >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        mesa-vulkan-drivers libvulkan1 g++ >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r benches/requirements.txt
