#!/usr/bin/env bash
# The GPU backends on a machine with an NVIDIA GPU, from a release binary built elsewhere (the
# GPU machine has no compiler and no registry): checks CUDA and wgpu against the CPU on the
# examples, then times the table of benches/RESULTS.md, then the service under load on the GPU
# (issue 5's throughput), and prints the short tables last.
#
# Prepare here, once (see /work/.library/device/README.md):
#   cargo build --release
#   echo /.gl/ >>.git/info/exclude; echo /.whl/ >>.git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial; o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
#   python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
#       -d .whl nvidia-cuda-nvrtc-cu12==12.9.86
#   # The service suite's FastAPI + NumPy baseline (issue 5), for the device's Python (3.X):
#   python3 -m pip download --only-binary=:all: --platform manylinux2014_x86_64 \
#       --python-version 3.X -d .whl/bench fastapi uvicorn numpy
# Run there, carrying target/release/sextant, .gl and .whl:
#   benches/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${SEXTANT_BIN:-target/release/sextant}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"

# The Vulkan loader, carried as .deb files when the machine has none.
if ! ldconfig -p | grep -q 'libvulkan.so.1' && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
# NVIDIA's Vulkan driver manifest.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
           /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# NVRTC from the carried wheel, unless the machine has one.
if [ -z "${SEXTANT_NVRTC_LIB:-}" ] && ls .whl/nvidia_cuda_nvrtc*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/nvrtc .whl/nvidia_cuda_nvrtc*.whl
    export SEXTANT_NVRTC_LIB=/tmp/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so.12
fi

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
"$bin" backends | tee "$out/backends.json"
# Parity and timings; the table goes to stderr, last.
"$bin" bench --suite gpu --gpu-batch "${GPU_BATCH:-1000}" >"$out/gpu-bench.json" 2>"$out/gpu-bench.log"
status=$?
# The service under load on the best GPU backend (`auto`), beside the FastAPI + NumPy baseline
# when its wheels were carried (else Sextant alone). SERVICE_SECONDS=0 skips it.
if [ "${SERVICE_SECONDS:-8}" != 0 ]; then
    baseline=--no-baseline
    if ls .whl/bench/*.whl >/dev/null 2>&1 &&
        python3 -m pip install -q --no-index --find-links .whl/bench fastapi uvicorn numpy; then
        baseline=
    fi
    "$bin" bench --suite service --seconds "${SERVICE_SECONDS:-8}" $baseline \
        >"$out/service-bench.json" 2>"$out/service-bench.log" || status=1
fi
cat "$out/gpu-bench.log"
[ -f "$out/service-bench.log" ] && cat "$out/service-bench.log"
exit $status
