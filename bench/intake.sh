#!/usr/bin/env bash
# Benchmark of the public intake against PostgreSQL's own fastest paths, in
# one run, on the same table with the contract's indexes:
#   - 500-event batches through the events router on a loopback socket vs
#     psql COPY of the same rows (stored rows/s);
#   - single-event requests at concurrency 4 vs pgbench single-row inserts
#     at concurrency 4 (requests/s vs transactions/s);
#   - the server's peak RSS under that load.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster with
# PostgreSQL's default durability, removed on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

source "$root/scripts/lib/wrk.sh"
ensure_wrk
command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release -p migrate --manifest-path "$root/Cargo.toml"
# INTAKE_SERVER: a bench_server built from another tree, to compare trees
# (each run's ratios are against baselines measured in that run).
if [ -z "${INTAKE_SERVER:-}" ]; then
  cargo build --quiet --release -p events --example bench_server --manifest-path "$root/Cargo.toml"
  INTAKE_SERVER="$root/target/release/examples/bench_server"
fi

bench_server
PGBENCH="${PGBENCH:-$(pg_bin_dir)/pgbench}"
export BENCH_POSTGRES_URL PGBENCH
python3 "$root/bench/intake.py" "$root/target/release/migrate" "$INTAKE_SERVER"
