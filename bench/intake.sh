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

cargo build --quiet --release -p migrate --manifest-path "$root/Cargo.toml"
cargo build --quiet --release -p events --example bench_server --manifest-path "$root/Cargo.toml"

if [ -z "${BENCH_POSTGRES_URL:-}" ]; then
  ensure_postgres_binaries
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cleanup() {
    as_server_user "$(pg_bin_dir)/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  start_cluster "$work" "$port"
  BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
fi
PGBENCH="${PGBENCH:-$(pg_bin_dir)/pgbench}"
export BENCH_POSTGRES_URL PGBENCH
python3 "$root/bench/intake.py" "$root/target/release/migrate" "$root/target/release/examples/bench_server"
