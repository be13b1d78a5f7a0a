#!/usr/bin/env bash
# Stage here everything one `device` call of benches/gpu-check.sh needs, in one ignored folder
# (.gpu/ by default), and check that it fits what one call carries (64 MiB with the working
# tree; this script fails above 60 MiB):
#   sextant-bench  the benchmarks' release binary (the suites and the backends report), stripped
#   debs/          the Vulkan loader and GLVND, which the lent machine does not have
#   wheels/        FastAPI, uvicorn and what they need that the lent machine does not have,
#                  for its Python 3.12 (/opt/torch/.venv), for the service baseline; monteplan
#                  (pure Python; its NumPy, SciPy, pydantic, PyYAML and click are there or
#                  staged) for the plan suite's baseline
#   glibc-needed.txt  the newest glibc symbol version the binary needs
# Nothing the lent machine already has is staged: its driver has CUDA 13.0 and its Python
# NVIDIA's CUDA 13 NVRTC wheel (the CUDA backend finds it), NumPy, anyio, click, h11, idna.
#
# Settings (environment): GPU_STAGE (.gpu), SEXTANT_BENCH_BIN (target/release/sextant-bench,
# built if missing), GPU_PYTHON_VERSION (3.12: the lent machine's), GPU_MACHINE_HAS (the Python
# packages not to stage; CI's rehearsal stages them all for this machine's Python).
# GPU_LIMIT_MIB (60, below the 64 MiB a call carries).
set -euo pipefail
cd "$(dirname "$0")/.."

stage=${GPU_STAGE:-.gpu}
bin=${SEXTANT_BENCH_BIN:-target/release/sextant-bench}
python_version=${GPU_PYTHON_VERSION:-3.12}
# From the device tool's KINDS.md: the lent machine's Python already has these. It has
# typing_extensions and anyio too, but pydantic and starlette need newer ones than it may have
# (pip installs with --no-deps there and cannot check), so those two are carried.
machine_has=${GPU_MACHINE_HAS-numpy click h11 idna annotated_doc sniffio certifi}
limit_mib=${GPU_LIMIT_MIB:-60}

rm -rf "$stage"
mkdir -p "$stage/debs" "$stage/wheels"

# 1. The binary, stripped.
if [ ! -x "$bin" ]; then
    echo "building $bin"
    cargo build --release -p sextant-benches
fi
strip --strip-all -o "$stage/sextant-bench" "$bin"
objdump -T "$stage/sextant-bench" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 >"$stage/glibc-needed.txt"
echo "binary: $(du -h "$stage/sextant-bench" | cut -f1) stripped (from $(du -h "$bin" | cut -f1)), needs $(cat "$stage/glibc-needed.txt")"

# 2. The Vulkan loader and GLVND (NVIDIA's Vulkan driver needs libGLdispatch), as .debs
#    for amd64 whatever this machine is, in a package list of their own.
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oAPT::Sandbox::User=root
    -oDir::State::Lists=/tmp/sextant-apt-amd64)
mkdir -p /tmp/sextant-apt-amd64/partial
if ! ls /tmp/sextant-apt-amd64/*Packages* >/dev/null 2>&1; then
    apt-get "${apt_options[@]}" update -qq
fi
(cd "$stage/debs" && apt-get "${apt_options[@]}" download -qq \
    libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2)

# 3. The baseline's wheels for the lent machine's Python, without what it already has.
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "$python_version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    -d "$stage/wheels" -r benches/requirements-gpu-baseline.txt
# monteplan alone: what it needs is on the lent machine (SciPy, PyYAML) or staged above (pydantic).
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
    --python-version "$python_version" --implementation cp --platform any \
    -d "$stage/wheels" "$(grep '^monteplan==' benches/requirements-bench.txt)"
for name in $machine_has; do
    rm -f "$stage/wheels/${name}"-*.whl
done

# 4. What one call carries: the working tree (tracked and untracked, not ignored) and the stage.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null |
    awk '{ s += $1 } END { print s + 0 }')
stage_bytes=$(du -sb "$stage" | cut -f1)
total=$((tree_bytes + stage_bytes))
echo "staged in $stage: $(ls "$stage/debs" | wc -l) debs, $(ls "$stage/wheels" | wc -l) wheels ($(ls "$stage/wheels" | sed 's/-[0-9].*//' | tr '\n' ' '))"
awk -v t="$tree_bytes" -v s="$stage_bytes" -v a="$total" -v l="$limit_mib" -v name="$stage" 'BEGIN {
    printf "carried: working tree %.1f MiB + %s %.1f MiB = %.1f MiB (limit %d MiB)\n",
        t / 1048576, name, s / 1048576, a / 1048576, l }'
if [ "$total" -gt $((limit_mib * 1024 * 1024)) ]; then
    echo "error: $stage and the working tree carry more than $limit_mib MiB" >&2
    exit 1
fi
echo "run there: device run, command \"benches/gpu-check.sh\", carry [\"$stage\"], timeout_s 540"
