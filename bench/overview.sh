#!/usr/bin/env bash
# Benchmark of the admin overview: GET /api/admin/analytics/overview over
# 90 days of hourly snapshots (and of daily ones), each compared with the
# 90 days before, read from a database holding every metric of the rollup's
# catalogue with realistic dimensions, on the release-built admin router
# (functions/admin/examples/bench_server.rs) on loopback, as a super_admin
# session; against a plain SELECT of the same values run by pgbench, side by side in
# the same run. Prints p50 and p99 of each and their ratio; target: p99 of
# the hourly overview <= 50 ms.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster,
# removed on exit. Reads BENCH_ROUNDS (3), BENCH_REQUESTS (300 per round and
# contender), BENCH_DAYS (90), PGBENCH (the server's own).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release --locked -p migrate --manifest-path "$root/Cargo.toml"
cargo build --quiet --release --locked -p admin --example bench_server --manifest-path "$root/Cargo.toml"

bench_server
PGBENCH="${PGBENCH:-$(pg_bin_dir)/pgbench}"
export BENCH_POSTGRES_URL PGBENCH
python3 "$root/bench/overview.py" "$root/target/release/migrate" "$root/target/release/examples/bench_server"
