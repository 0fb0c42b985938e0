#!/usr/bin/env bash
# Benchmark of flag evaluation and experiment enrolment, each against a
# baseline measured side by side in the same run:
#   - OFREP bulk evaluation of 50 flags (booleans, rollouts, multivariate,
#     targeting conditions, experiments) vs the same server answering a
#     precomputed body of the same size (requests/s at concurrency 4, wrk);
#   - POST /api/experiments/assign of new visitors (one participation row
#     each) at concurrency 4 vs pgbench single-row inserts into
#     "experiment_participations" at concurrency 4.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster with
# PostgreSQL's default durability, removed on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

source "$root/scripts/lib/wrk.sh"
ensure_wrk
command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release --locked -p migrate --manifest-path "$root/Cargo.toml"
cargo build --quiet --release --locked -p events --example bench_server --manifest-path "$root/Cargo.toml"

bench_server
PGBENCH="${PGBENCH:-$(pg_bin_dir)/pgbench}"
export BENCH_POSTGRES_URL PGBENCH
python3 "$root/bench/flags.py" "$root/target/release/migrate" "$root/target/release/examples/bench_server"
