#!/usr/bin/env bash
# The nightly re-score at scale, end to end on PostgreSQL: N synthetic goals (default
# 1,000,000) and PLANS synthetic household plans (default 0) in a fresh database, then `sextant
# rescore` at PATHS paths a goal (2,000) and PLAN_PATHS a plan (1,000) on the CPU backend, with
# the time spent in the database reported beside the engine's. Needs `psql` and the release
# binary (cargo build --release). The database is dropped afterwards.
#
#   benches/rescore.sh [N] [PATHS] [PLANS] [PLAN_PATHS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
paths=${2:-2000}
plans=${3:-0}
plan_paths=${4:-1000}
server=${SEXTANT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db="sextant_bench_$$"
bin=target/release/sextant
psql "$server/postgres" -qc "CREATE DATABASE $db"
trap 'psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
export DATABASE_URL="$server/$db"

echo "== $n goals ($paths paths each) and $plans plans ($plan_paths paths), on $(nproc) CPUs"
"$bin" --compact goals generate "$n" --as-of 2026-11-27
"$bin" --compact plans generate "$plans" --as-of 2026-11-27
/usr/bin/time -f "rescore wall %e s, max RSS %M KB" \
    "$bin" --backend cpu --compact --paths "$paths" rescore --as-of 2026-11-27 --quiet \
    --plan-paths "$plan_paths" --run-key bench | tee /tmp/sextant-rescore-report.json
python3 - <<'PY'
import json
r = json.load(open("/tmp/sextant-rescore-report.json"))
print(f"goals {r['goals']}, {r['seconds']:.1f} s, {r['goals_per_second']:.0f} goals/s, "
      f"{r['path_steps_per_second']:.3e} path-steps/s")
print(f"database {r['database_seconds']:.1f} s ({100 * r['database_seconds'] / r['seconds']:.1f}%), "
      f"engine {r['engine_seconds']:.1f} s ({100 * r['engine_seconds'] / r['seconds']:.1f}%)")
print("by status:", r["by_status"])
if r["plans"]:
    print(f"plans {r['plans']}, {r['plans_per_second']:.2f} plans/s, by status:",
          r["plans_by_status"])
PY
psql "$DATABASE_URL" -Atc "SELECT 'months per goal (mean): ' || round(avg(
    (extract(year from target_date::date) - 2026) * 12 + extract(month from target_date::date) - 11
    - CASE WHEN extract(day from target_date::date) < 27 THEN 1 ELSE 0 END), 1) FROM goals"
