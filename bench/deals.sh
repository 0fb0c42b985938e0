#!/usr/bin/env bash
# Benchmark of the public deal list: GET /api/deals (50 per page, the
# default sort) over 10,000 deals at concurrency 4 (wrk), against the same
# SELECT run by pgbench at concurrency 4, side by side in the same run.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster,
# removed on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

source "$root/scripts/lib/wrk.sh"
ensure_wrk
command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release --locked -p migrate --manifest-path "$root/Cargo.toml"
cargo build --quiet --release --locked -p cms --example bench_server --manifest-path "$root/Cargo.toml"

bench_server
PGBENCH="${PGBENCH:-$(pg_bin_dir)/pgbench}"
export BENCH_POSTGRES_URL PGBENCH
python3 "$root/bench/deals.py" "$root/target/release/migrate" "$root/target/release/examples/bench_server"
