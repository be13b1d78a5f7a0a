#!/usr/bin/env bash
# The GPU backends on the lent machine (an NVIDIA H200, CUDA 13.0 driver, Python 3.12, no Rust,
# no registry), in one bounded call, from what benches/gpu-prepare.sh staged here:
#   1. the machine: GPU, driver, glibc against what the binary needs;
#   2. `sextant-bench --suite backends` (the `sextant backends` report): what each backend opens, the CUDA driver and NVRTC versions found
#      (Vulkan diagnostics printed when wgpu finds no adapter);
#   3. one row each for CUDA, wgpu and the CPU, each in its own process under its own timeout:
#      parity against the CPU on every goal example, then the timing of a batch of 1,000
#      standard goals × 10,000 paths and of one goal end to end (a software adapter is checked
#      but never timed as a GPU);
#   3b. the standard goal under Student-t months, in two regimes, under AR(1) inflation,
#      bootstrapped from a history and in five assets (one portfolio, and per-asset paths
#      under annual rebalancing) beside the lognormal on CUDA (the CPU where there is no
#      NVIDIA GPU), one process;
#   3c. the samplers (philox, antithetic, sobol) on the same backend: variance reduction and
#      time to a standard error of 0.005 (`sextant-bench --suite sampler`);
#   4. the service under load on the best backend, beside the FastAPI + NumPy baseline run by the
#      machine's own Python (/opt/torch/.venv) with the staged wheels;
#   5. household plans on the machine's CPU cores, beside monteplan on the same Python
#      (`sextant-bench --suite plan`), then on the GPU kernels: CUDA where there is an NVIDIA
#      GPU, and wgpu (on a software adapter: checked, not timed as a GPU), each with the
#      couple's whole result checked against the CPU's bits, also under Student-t months,
#      regimes, a bootstrap, AR(1) inflation and five assets held per asset (each model's
#      plan kernel);
#   6. where Nsight Compute runs (`ncu`, Firecracker machines), one launch of the CUDA `simulate`
#      kernel profiled: speed of light, occupancy, launch statistics (clocks left alone);
#   7. the tables, last, in Markdown, also written to $OUT/tables.md.
# A step that fails or hangs is recorded in its row and the next one runs; progress is printed
# as it goes. Under 8 minutes in all on that machine; each step's limit below.
#
# Prepare here:    benches/gpu-prepare.sh          (stages .gpu/, checks the 60 MiB budget)
# Run there, with the device tool's `run`:
#     command: benches/gpu-check.sh
#     carry:   [".gpu"]
#     timeout_s: 540
# Exit status: 0 when every row that can run passed; 1 when a row failed, timed out, a parity
# check failed, the baseline could not run, or (on a machine with nvidia-smi) CUDA or wgpu was
# unavailable.
#
# Settings (environment): GPU_STAGE (.gpu), SEXTANT_BENCH_BIN ($GPU_STAGE/sextant-bench: the benchmarks'
# binary, which also prints the backends report), OUT (where the
# logs and tables go), GPU_BATCH (1000), PARITY_PATHS (100000), SERVICE_SECONDS (8; 0 skips
# the service), SAMPLER_SEEDS (100: seeds per sampler in 3c), SERVICE_SMALL_PATHS (100: the service again on the CPU backend with small
# requests, no baseline; 0 skips), PLAN_PATHS (10000; 0 skips the plans), NCU (1; 0 skips the profile),
# SEXTANT_PYTHON (the baselines' Python).
set -uo pipefail
cd "$(dirname "$0")/.."

stage=${GPU_STAGE:-.gpu}
bin=${SEXTANT_BENCH_BIN:-$stage/sextant-bench}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
# At most 8 files come back from $OUT: the seven that matter go there, the rest here.
scratch=$(mktemp -d)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
status=0
started=$(date +%s)
notes=()

say() { echo "[gpu-check $(($(date +%s) - started))s] $*"; }
# step NAME LIMIT_S LOG COMMAND...: run under `timeout`, stderr and stdout to LOG and the
# console as they come; its exit status (124 when it ran past its limit) is returned. The
# output goes to a file, not a pipe, so a process the step leaves behind (a killed
# benchmark's baseline) cannot hold the script up.
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    say "$name: start (limit ${limit}s)"
    local t0 rc pid
    t0=$(date +%s)
    : >"$log"
    timeout -k 10 "$limit" "$@" >"$log" 2>&1 &
    pid=$!
    tail -n +1 -f --pid="$pid" "$log"
    wait "$pid"
    rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        say "$name: TIMED OUT after ${limit}s"
    else
        say "$name: exit $rc in $(($(date +%s) - t0))s"
    fi
    return "$rc"
}

# 1. The machine.
say "machine: $(uname -m), $(nproc) cores"
nvidia=0
if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
    nvidia=1
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/nvidia-smi.txt"
    nvidia-smi | grep -o 'CUDA Version: [0-9.]*' | tee -a "$out/nvidia-smi.txt"
else
    say "no NVIDIA GPU here (nvidia-smi absent or failing): a rehearsal"
fi
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
needed=$(sed 's/GLIBC_//' "$stage/glibc-needed.txt" 2>/dev/null || echo unknown)
if [ "$needed" != unknown ] && [ "$(printf '%s\n%s\n' "$needed" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
    notes+=("glibc $glibc here is older than the $needed the binary needs")
    status=1
fi
say "glibc here $glibc; the binary needs $needed"
if [ ! -x "$bin" ]; then
    echo "error: no binary at $bin: run benches/gpu-prepare.sh here first and carry $stage" >&2
    exit 1
fi

# The Vulkan loader and GLVND from the staged .debs when the machine has no loader; NVIDIA's
# Vulkan driver manifest where the driver mount keeps it.
if ! ldconfig -p | grep -q 'libvulkan.so.1' && ls "$stage"/debs/*.deb >/dev/null 2>&1; then
    say "installing the staged Vulkan loader"
    for f in "$stage"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
        /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
        if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
    done
fi

# 2. The backends.
# (stdout alone to the JSON file, so that a driver's warnings cannot spoil it)
step backends 90 "$scratch/backends.log" \
    bash -c '"$0" --suite backends >"$1"; rc=$?; cat "$1"; exit $rc' "$bin" "$out/backends.json" || status=1
wgpu_available() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(b["backend"] == "wgpu" and b["available"] for b in d["backends"]) else 1)' "$out/backends.json" 2>/dev/null
}
if ! wgpu_available; then
    say "wgpu found no adapter: Vulkan diagnostics"
    echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
    for d in /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d; do
        [ -d "$d" ] && { echo "$d:"; ls -l "$d"; cat "$d"/*.json 2>/dev/null; }
    done
    ldconfig -p | grep -iE 'vulkan|GLX|GLdispatch|nvidia' || echo "ldconfig: no Vulkan, GLX or NVIDIA libraries"
fi

# 3. One row a backend.
rows=()
for kind in cuda wgpu cpu; do
    # A GPU backend's parity on a software adapter (the CI's rehearsal) may need longer:
    # GPU_STEP_LIMIT raises its limit there; a device's run keeps 150 s.
    case $kind in cpu) limit=90 ;; *) limit=${GPU_STEP_LIMIT:-150} ;; esac
    step "$kind" "$limit" "$out/gpu-$kind.log" \
        "$bin" --suite gpu --gpu-backends "$kind" --gpu-batch "${GPU_BATCH:-1000}" \
        --parity-paths "${PARITY_PATHS:-100000}" --compact
    rc=$?
    row=$(grep "^| $kind" "$out/gpu-$kind.log" | tail -1)
    if [ -z "$row" ]; then
        row="| $kind | — | — | ERROR: exit $rc$( [ "$rc" = 124 ] && echo " (timed out after ${limit}s)") before its row | | |"
    fi
    rows+=("$row")
    case $row in
        *ERROR*|*FAIL*) status=1 ;;
        *unavailable*) [ "$nvidia" = 1 ] && [ "$kind" != cpu ] && status=1 ;;
    esac
    [ "$rc" = 0 ] || status=1
done

# 3b. Market models (docs/model.md §4) on the best backend: the standard goal under Student-t
# months, in two regimes, under AR(1) inflation, bootstrapped from the synthetic history and in
# five assets (one portfolio, and per asset under annual rebalancing; the row names the
# backend that ran it) beside the lognormal, in one process (the ratios are the figures).
models_table=""
models_backend=cpu
[ "$nvidia" = 1 ] && models_backend=cuda
step market-models 120 "$scratch/market-models.log" \
    bash -c '"$0" --backend "$1" --suite engine --student-t 5 --regimes --inflation --bootstrap --per-asset --no-numpy --paths 1000000 --repeat 5 --compact >"$2"; rc=$?; cat "$2"; exit $rc' \
    "$bin" "$models_backend" "$scratch/market-models.json" || status=1
models_table=$(python3 - "$scratch/market-models.json" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
t = r["student_t"]
print(f"market models on {r['engine']['backend']}, the standard goal ({r['paths']} paths × {r['months']} months), median of 5:")
print()
print("| model | path-steps/s | over the lognormal |")
print("| --- | --- | --- |")
print(f"| lognormal | {r['engine']['path_steps_per_second']:.3g} | 1 |")
print(f"| student_t, df {t['model']['df']:g} | {t['engine']['path_steps_per_second']:.3g} | {t['over_lognormal']:.2f} |")
g = r["regimes"]
names = ", ".join(x["name"] for x in g["model"]["regimes"])
print(f"| regimes ({names}) | {g['engine']['path_steps_per_second']:.3g} | {g['over_lognormal']:.2f} |")
i = r["inflation"]
print(f"| AR(1) inflation, sd {i['model']['volatility']:g} | {i['engine']['path_steps_per_second']:.3g} | {i['over_lognormal']:.2f} |")
b = r["bootstrap"]
print(f"| bootstrap ({b['model']['method']}, {b['model']['block_months']} months) | {b['engine']['path_steps_per_second']:.3g} | {b['over_lognormal']:.2f} |")
b = r["bootstrap_without_inflation"]
print(f"| bootstrap, no history inflation | {b['engine']['path_steps_per_second']:.3g} | {b['over_lognormal']:.2f} |")
a = r["five_assets_monthly"]
print(f"| five assets, monthly (one portfolio) | {a['engine']['path_steps_per_second']:.3g} | {a['over_lognormal']:.2f} |")
a = r["five_assets_annual"]
print(f"| five assets, per-asset, annual (ran on {a['engine']['backend']}) | {a['engine']['path_steps_per_second']:.3g} | {a['over_lognormal']:.2f} |")
PY
)
[ -n "$models_table" ] || models_table="market models: no report (see market-models.log)"

# 3c. The samplers (docs/model.md §6) on the same backend: each sampler's variance reduction
# against Philox at equal paths (over SAMPLER_SEEDS seeds) and its time to a standard error of
# 0.005 on success, on the standard goal, a drawdown and a glide path; the row names the
# backend that ran it (a sampler the kernels lack runs on the CPU and says so).
samplers_table=""
step samplers 120 "$scratch/samplers.log" \
    bash -c '"$0" --backend "$1" --suite sampler --sampler-seeds "$3" --compact >"$2"; rc=$?; cat "$2"; exit $rc' \
    "$bin" "$models_backend" "$scratch/samplers.json" "${SAMPLER_SEEDS:-100}" || status=1
samplers_table=$(python3 - "$scratch/samplers.json" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
print(f"samplers, success at {r['paths']} paths over {r['seeds']} seeds; time to a standard error of {r['precision']:g}, median:")
print()
print("| goal | sampler | ran on | variance reduction | precision (ms) | paths | over Philox |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for x in r["rows"]:
    print(f"| {x['case']} | {x['sampler']} | {x['backend']} | {x['variance_reduction']:.1f} | {1e3 * x['precision_seconds']:.1f} | {x['precision_paths']} | {x['speedup_to_precision']:.2f} |")
PY
)
[ -n "$samplers_table" ] || samplers_table="samplers: no report (see samplers.log)"

# The baselines' Python (the machine's own), with the staged wheels.
python=${SEXTANT_PYTHON:-}
if [ -z "$python" ]; then
    if [ -x /opt/torch/.venv/bin/python3 ]; then python=/opt/torch/.venv/bin/python3; else python=python3; fi
fi
if ls "$stage"/wheels/*.whl >/dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/sextant-baseline-site "$stage"/wheels/*.whl &&
        export PYTHONPATH=/tmp/sextant-baseline-site${PYTHONPATH:+:$PYTHONPATH}
fi

# 4. The service on the best backend, beside the baseline on the machine's Python.
service_table=""
if [ "${SERVICE_SECONDS:-8}" != 0 ]; then
    if "$python" -c 'import fastapi, uvicorn, numpy' 2>"$scratch/baseline-import.txt"; then
        say "baseline: $python ($("$python" --version 2>&1)), fastapi and uvicorn import"
    else
        say "baseline: FAILED to import with $python: $(tail -1 "$scratch/baseline-import.txt")"
    fi
    step service 180 "$out/service-bench.log" \
        "$bin" --backend auto --suite service --seconds "${SERVICE_SECONDS:-8}" \
        --python "$python" --compact || status=1
    grep -q '^baseline: FAILED' "$out/service-bench.log" && status=1
    # A service step killed by its timeout cannot stop its baseline's uvicorn: stop it here.
    pkill -f 'benches/service_baseline.py' 2>/dev/null
    service_table=$(sed -n '/^service on /,/^sextant \/ FastAPI/p' "$out/service-bench.log")
    # Small requests on the CPU backend, where the transport shows: typed gRPC beside HTTP
    # JSON with cores to spare for the clients (issue 12), no baseline.
    if [ "${SERVICE_SMALL_PATHS:-100}" != 0 ]; then
        step service-small 90 "$scratch/service-small.log" \
            "$bin" --backend cpu --suite service --seconds "${SERVICE_SECONDS:-8}" \
            --paths "${SERVICE_SMALL_PATHS:-100}" --no-baseline --compact || status=1
        service_table+=$'\n\n'$(sed -n '/^service on /,/^typed gRPC/p' "$scratch/service-small.log")
    fi
fi

# 5. Household plans on the CPU cores, beside monteplan.
plan_table=""
if [ "${PLAN_PATHS:-10000}" != 0 ]; then
    plan_flags=()
    if ! "$python" -c 'import monteplan' 2>"$scratch/monteplan-import.txt"; then
        notes+=("monteplan did not import ($(tail -1 "$scratch/monteplan-import.txt")): plans timed without it")
        plan_flags+=(--no-monteplan)
    fi
    step plans 150 "$out/plan-bench.log" \
        bash -c '"$0" --backend cpu --suite plan --plan-paths "$1" --plan-repeat "$2" --python "$3" --compact "${@:5}" >"$4"; rc=$?; cat "$4"; exit $rc' \
        "$bin" "${PLAN_PATHS:-10000}" "${PLAN_REPEAT:-5}" "$python" "$scratch/plan.json" "${plan_flags[@]}" || status=1
    plan_table=$(python3 - "$scratch/plan.json" "$(nproc)" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
cores = sys.argv[2]
def row(t):
    return f"| {t['what']} | {r['paths']} | {t['seconds'] * 1e3:.1f} | {t['path_steps_per_second']:.3g} | {t['success_probability']:.4f} |"
print(f"plans on {cores} CPU cores, {r['paths']} paths, median of the runs:")
print()
print("| plan | paths | ms | path-steps/s | success |")
print("| --- | --- | --- | --- | --- |")
print(row(r["monteplan_default"]))
m = r.get("monteplan")
if m:
    print(f"| monteplan {m.get('monteplan_version', '?')} on its default plan (NumPy {m.get('numpy_version', '?')}) | {m['paths']} | {m['seconds'] * 1e3:.1f} | {m['path_steps_per_second']:.3g} | {m['success_probability']:.4f} |")
print(row(r["couple"]))
print(row(r["couple_claiming"]))
for m in r.get("couple_models", []):
    print(row(m["timed"])[:-1] + f" ({m['over_lognormal']:.2f}x the lognormal) |")
st = r.get("student_t")
if st:
    print(row(st["sextant"]))
    m = st["monteplan"]
    print(f"| monteplan {m.get('monteplan_version', '?')} on its default plan, Student-t (df {m.get('degrees_of_freedom')}) | {m['paths']} | {m['seconds'] * 1e3:.1f} | {m['path_steps_per_second']:.3g} | {m['success_probability']:.4f} |")
pa = r.get("per_asset")
if pa:
    print(row(pa["sextant"]))
    m = pa["monteplan"]
    print(f"| monteplan {m.get('monteplan_version', '?')} on its default plan, rebalanced each January | {m['paths']} | {m['seconds'] * 1e3:.1f} | {m['path_steps_per_second']:.3g} | {m['success_probability']:.4f} |")
if r.get("speedup_over_monteplan"):
    print()
    print(f"sextant / monteplan: {r['speedup_over_monteplan']:.1f}x path-steps/s")
if st and st.get("speedup_over_monteplan"):
    print(f"sextant / monteplan under Student-t returns: {st['speedup_over_monteplan']:.1f}x path-steps/s")
pa = r.get("per_asset")
if pa and pa.get("speedup_over_monteplan"):
    print(f"sextant / monteplan holding six assets, rebalanced each January: {pa['speedup_over_monteplan']:.1f}x path-steps/s")
PY
)
    [ -n "$plan_table" ] || plan_table="plans: no report (see plan-bench.log)"

    # The plan kernel on each GPU backend: the couple's result against the CPU's bits, then
    # the same timings (no monteplan: it ran above).
    gpu_plan_backends=(wgpu)
    [ "$nvidia" = 1 ] && gpu_plan_backends=(cuda wgpu)
    [ "$nvidia" = 1 ] || notes+=("no NVIDIA GPU: the CUDA plan kernel was not run")
    plan_table+=$'\n\nplans on the GPU kernels (the whole result of the couple against the CPU: CUDA must give its bits, wgpu shows its first difference; wgpu on a software adapter is a check, not a GPU timing):\n\n| backend | plan | paths | ms | path-steps/s | success | against the CPU |\n| --- | --- | --- | --- | --- | --- | --- |'
    for b in "${gpu_plan_backends[@]}"; do
        step "plans-$b" 120 "$scratch/plan-$b.log" \
            bash -c '"$0" --backend "$1" --suite plan --no-monteplan --plan-paths "$2" --plan-repeat "$3" --compact >"$4"; rc=$?; cat "$4"; exit $rc' \
            "$bin" "$b" "${PLAN_PATHS:-10000}" "${PLAN_REPEAT:-3}" "$scratch/plan-$b.json" || status=1
        rows_of_b=$(python3 - "$scratch/plan-$b.json" "$b" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
b = sys.argv[2]
parity = r.get("parity_with_cpu") or "not checked"
for t in (r["monteplan_default"], r["couple"], r["couple_claiming"]):
    print(f"| {r['backend']} | {t['what']} | {r['paths']} | {t['seconds'] * 1e3:.1f} | {t['path_steps_per_second']:.3g} | {t['success_probability']:.4f} | {parity} |")
# The couple under each market model (docs/model.md §4), each with its own check.
models = r.get("couple_models", [])
for m in models:
    t = m["timed"]
    print(f"| {r['backend']} | {t['what']} | {r['paths']} | {t['seconds'] * 1e3:.1f} | {t['path_steps_per_second']:.3g} | {t['success_probability']:.4f} | {m.get('parity_with_cpu') or 'not checked'} |")
# CUDA compiles with --fmad=false: the CPU's bits. A Vulkan compiler may contract the f32
# shocks' multiply-adds, so wgpu's column shows the first difference, not a failure.
exact = all(m.get("parity_with_cpu") == "bit-identical" for m in models)
if r["backend"] != b or (b == "cuda" and (parity != "bit-identical" or not exact)):
    sys.exit(1)
PY
        ) || { status=1; notes+=("plans on $b: not on the device, or (CUDA) not the CPU's bits (see plan-$b.log)"); }
        plan_table+=$'\n'"${rows_of_b:-| $b | no report (see plan-$b.log) | | | | | |}"
    done
fi

# 6. One launch of the CUDA kernel under Nsight Compute, where it runs; clocks as found.
ncu_summary=""
ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | tail -1 || true)
if [ "${NCU:-1}" != 0 ] && [ "$nvidia" = 1 ] && [ -n "$ncu_bin" ]; then
    step ncu 120 "$scratch/ncu.log" \
        "$ncu_bin" --clock-control none --kernel-name simulate --launch-skip 12 --launch-count 1 \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
        "$bin" --suite gpu --gpu-backends cuda --gpu-batch "${GPU_BATCH:-1000}" --parity-paths 10000 --compact
    ncu_summary=$(sed -n '/simulate/,$p' "$scratch/ncu.log" | grep -E 'simulate|Section:|Throughput|Duration|Elapsed Cycles|SM Frequency|Registers|Occupancy|Block Size|Grid Size|Waves|Executed Ipc|Issue Slots|Pipe' | head -60)
fi

# 7. The tables, last.
{
    echo
    echo "## GPU check, $(date -u +%Y-%m-%d), $(head -2 "$out/nvidia-smi.txt" 2>/dev/null | tail -1 || echo 'no NVIDIA GPU')"
    echo
    echo "glibc here $glibc; the binary needs $needed"
    grep -o '"driver": "[^"]*"\|"version": "[^"]*"' "$out/backends.json" | tr '\n' ' '
    echo
    echo
    echo "| backend | device | parity | full path-steps/s | success-only path-steps/s | one goal (ms) |"
    echo "| --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
    phase_lines=$(grep -h '^\[[a-z]*\] full batch:' "$out"/gpu-*.log 2>/dev/null)
    [ -n "$phase_lines" ] && { echo; echo "Where each GPU's full-results batch spends its time (ms):"; echo "$phase_lines"; }
    [ -n "$models_table" ] && { echo; echo "$models_table"; }
    [ -n "$samplers_table" ] && { echo; echo "$samplers_table"; }
    [ -n "$service_table" ] && { echo; echo "$service_table"; }
    [ -n "$plan_table" ] && { echo; echo "$plan_table"; }
    [ -n "$ncu_summary" ] && { echo; echo "Nsight Compute, one launch of simulate:"; echo '```'; echo "$ncu_summary"; echo '```'; }
    for n in "${notes[@]}"; do echo "note: $n"; done
    echo
    echo "gpu-check: $([ $status = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s"
} | tee "$out/tables.md"
exit $status
